"""The learner's answer history (no JVM): every place an answer is checked records it, `quiz --missed`
replays the questions last answered wrong until each is answered right twice in a row, `status` shows
the mock exams and the next domain to study, and the notebook widget saves each answer and shows once."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from medilake_lab import cli
from medilake_lab.contract.labs import all_labs
from medilake_lab.course import progress
from medilake_lab.quiz import build_exam, build_quiz, load_bank, run_exam, run_quiz
from medilake_lab.quiz.history import LEAVES_QUEUE_AFTER, build_missed, missed_ids
from medilake_lab.quiz.tui import ExamState, MockExamApp

BANK_DIR = Path(__file__).resolve().parent.parent / "quizzes"


@pytest.fixture(scope="module")
def bank():
    return load_bank(BANK_DIR)


def saved() -> dict:
    path = Path(os.environ["MEDILAKE_STATE"]) / "progress.json"
    return json.loads(path.read_text()) if path.exists() else {}


def quiet() -> Console:
    return Console(file=open(os.devnull, "w"), width=120)


def scripted(answers):
    it = iter(answers)

    def _input(_prompt: str) -> str:
        try:
            return next(it)
        except StopIteration:
            raise EOFError from None

    return _input


def right(shown) -> str:
    return ",".join(shown.correct)


def wrong(shown) -> str:
    return ",".join([letter for letter in shown.letters if letter not in shown.correct][: shown.choose])


# ------------------------------------------------------------------------- progress file

def test_old_progress_file_without_history_still_loads_and_keeps_its_data():
    old = {"format_version": 1, "labs": {"01": {"passed": 7, "total": 7, "last_run": "2026-11-29T15:00:00+00:00"}},
           "quizzes": {"01": {"best": 18, "total": 20, "last": 15, "last_run": "2026-11-29T15:10:00+00:00"}},
           "exams": []}
    path = progress.progress_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(old))
    assert progress.load()["history"] == {}
    progress.record_answers([("L01-001", False), ("L01-001", True), ("L01-002", True)])
    data = saved()
    assert data["labs"] == old["labs"] and data["quizzes"] == old["quizzes"]
    assert data["history"]["L01-001"] | {"last_answered": ""} == {
        "right": 1, "wrong": 1, "streak": 1, "last_result": "right", "last_answered": ""}
    assert data["history"]["L01-002"]["streak"] == 1
    when = datetime.fromisoformat(data["history"]["L01-001"]["last_answered"])
    assert when.utcoffset() == UTC.utcoffset(None), "last answered is a UTC time"


def test_a_malformed_history_is_moved_aside_and_the_answer_recorded(capsys):
    path = progress.progress_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"format_version": 1, "history": {"L01-001": {"right": "2", "wrong": 0}}})
    path.write_text(text)
    progress.record_answers([("L01-001", True)])
    [aside] = path.parent.glob("progress.json.unreadable-*")
    assert aside.read_text() == text, "the malformed file is kept as it was"
    assert "history.L01-001" in capsys.readouterr().err, "the note says what is wrong"
    assert progress.load()["history"]["L01-001"]["right"] == 1


# ------------------------------------------------------------------------- recorded everywhere

def test_lab_quiz_records_each_answer(bank):
    plan = build_quiz(bank.questions, "03", seed=8)
    answers = [right(s) if i % 2 else wrong(s) for i, s in enumerate(plan)]
    run_quiz("03", BANK_DIR, shuffle_seed=8, input_fn=scripted(answers), console=quiet())
    history = saved()["history"]
    assert set(history) == {s.question.id for s in plan}
    for i, shown in enumerate(plan):
        entry = history[shown.question.id]
        ok = bool(i % 2)
        assert (entry["right"], entry["wrong"], entry["streak"]) == (int(ok), int(not ok), int(ok))
        assert entry["last_result"] == ("right" if ok else "wrong")
    assert saved()["quizzes"]["03"]["last"] == len(plan) // 2, "the whole quiz is the lab's quiz score"


def test_line_exam_records_the_questions_answered_in_time_only(bank):
    plan = build_exam(bank.questions, bank.catalogue, "associate", seed=6, count=5)
    now = [0.0]
    first, second, third = plan.shown[:3]

    def answer(_prompt: str) -> str:
        asked = answer.calls
        answer.calls += 1
        if asked == 2:
            now[0] = 600.0  # the third answer arrives after the limit
            return right(third)
        return right(first) if asked == 0 else wrong(second)

    answer.calls = 0
    run_exam("associate", BANK_DIR, minutes=5, shuffle_seed=6, count=5, input_fn=answer,
             console=quiet(), clock=lambda: now[0])
    data = saved()
    assert {qid: e["last_result"] for qid, e in data["history"].items()} == {
        first.question.id: "right", second.question.id: "wrong"}, "late and unanswered questions say nothing"
    assert data["exams"] == [] and len(data["practice_exams"]) == 1


def test_line_exam_quit_early_records_nothing(bank):
    plan = build_exam(bank.questions, bank.catalogue, "associate", seed=6, count=5)
    run_exam("associate", BANK_DIR, shuffle_seed=6, count=5, console=quiet(),
             input_fn=scripted([right(plan.shown[0]), "q"]))
    assert saved() == {}


@pytest.fixture()
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_full_screen_exam_records_answered_questions_at_submit(bank):
    questions, catalogue = bank
    spec = catalogue.exams["associate"]
    plan = build_exam(questions, catalogue, "associate", seed=12)
    state = ExamState(plan, minutes=spec.minutes)
    app = MockExamApp(state, spec)
    q1, q2 = plan.shown[:2]
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press(*(c.lower() for c in q1.correct), "right")
        await pilot.press(*(c.lower() for c in wrong(q2).split(",")))
        assert saved() == {}, "nothing is recorded before submitting (answers may still change)"
        await pilot.press("r")
        await pilot.click("#submit")
        await pilot.pause()
    data = saved()
    assert {qid: e["last_result"] for qid, e in data["history"].items()} == {
        q1.question.id: "right", q2.question.id: "wrong"}, "only the answered questions are recorded"
    assert [e["score"] for e in data["exams"]] == [1]


# ------------------------------------------------------------------------- quiz --missed

def test_missed_queue_shrinks_as_questions_are_answered_right_twice(bank):
    runner = CliRunner()
    first = build_quiz(bank.questions, "02", seed=4, count=3)
    out = runner.invoke(cli.app, ["quiz", "02", "--seed", "4", "--count", "3", "--bank-dir", str(BANK_DIR)],
                        input="".join(wrong(s) + "\n" for s in first))
    assert out.exit_code == 0, out.output
    queue = {s.question.id for s in first}
    assert set(missed_ids(saved()["history"])) == queue

    def replay(seed: int, answer) -> str:
        """One `quiz --missed` run answering each queued question with answer(question id, shown)."""
        shown = build_missed(bank.questions, saved()["history"], seed=seed)
        typed = "".join(answer(s.question.id, s) + "\n" for s in shown)
        result = runner.invoke(cli.app, ["quiz", "--missed", "--seed", str(seed), "--bank-dir", str(BANK_DIR)],
                               input=typed)
        assert result.exit_code == 0, result.output
        return " ".join(result.output.split())

    keep = sorted(queue)[0]
    assert f"{len(queue)} queued" in replay(1, lambda _qid, s: right(s))
    assert set(missed_ids(saved()["history"])) == queue, "one right answer is not enough"
    assert f"{len(queue)} queued" in replay(2, lambda qid, s: wrong(s) if qid == keep else right(s))
    assert missed_ids(saved()["history"]) == [keep], "right twice in a row leaves the queue"
    assert saved()["history"][keep]["streak"] == 0, "a wrong answer starts the streak again"
    for seed in range(3, 3 + LEAVES_QUEUE_AFTER):
        assert "1 queued" in replay(seed, lambda _qid, s: right(s))
    assert missed_ids(saved()["history"]) == []
    done = runner.invoke(cli.app, ["quiz", "--missed", "--bank-dir", str(BANK_DIR)])
    assert done.exit_code == 0 and "No missed questions queued" in done.output
    assert saved()["quizzes"] == {}, "neither the partial quiz nor the replays are a lab's quiz score"


def test_missed_by_lab_and_count_says_what_is_queued(bank):
    lab02 = next(q for q in bank.questions if q.lab == "02")
    lab03 = next(q for q in bank.questions if q.lab == "03")
    progress.record_answers([(lab02.id, False), (lab03.id, False)])
    runner = CliRunner()
    one_lab = runner.invoke(cli.app, ["quiz", "--missed", "3", "--bank-dir", str(BANK_DIR)], input="q\n")
    assert one_lab.exit_code == 0 and "1 queued from lab 03" in " ".join(one_lab.output.split())
    assert lab03.stem.strip()[:30] in " ".join(one_lab.output.split())
    fewer = runner.invoke(cli.app, ["quiz", "--missed", "--count", "1", "--bank-dir", str(BANK_DIR)], input="q\n")
    assert fewer.exit_code == 0 and "2 queued; asking 1" in " ".join(fewer.output.split())
    assert set(missed_ids(saved()["history"])) == {lab02.id, lab03.id}, "quitting answers nothing"


def test_quiz_without_a_lab_or_missed_is_a_usage_error():
    result = CliRunner().invoke(cli.app, ["quiz"])
    assert result.exit_code == 2 and "--missed" in result.output


# ------------------------------------------------------------------------- status

def _by_domain(spec, weak: str) -> dict[str, list[int]]:
    """Every domain 4/4 except ``weak`` at 1/4."""
    return {d.id: [1 if d.id == weak else 4, 4] for d in spec.domains}


def _record_mock(spec, weak: str, practice: bool = False) -> None:
    by_domain = _by_domain(spec, weak)
    progress.record_exam(spec_name(spec), sum(c for c, _ in by_domain.values()),
                         sum(a for _, a in by_domain.values()), by_domain, practice=practice)


def spec_name(spec) -> str:
    return "associate" if spec.id_prefix == "DEA" else "professional"


@pytest.fixture()
def clock(monkeypatch):
    """progress timestamps one day apart, from 2026-11-01, so the latest mock is unambiguous."""
    days = iter(range(1, 29))
    monkeypatch.setattr(progress, "_now", lambda: f"2026-11-{next(days):02d}T10:00:00+00:00")


@pytest.fixture()
def wide_status(monkeypatch):
    console = Console(width=400, record=True, file=open(os.devnull, "w"))
    monkeypatch.setattr(cli, "console", console)

    def run() -> str:
        result = CliRunner().invoke(cli.app, ["status"])
        assert result.exit_code == 0, result.output
        return console.export_text()

    return run


def test_status_shows_exam_history_and_a_lab_for_the_weakest_domain(bank, wide_status, clock):
    spec = bank.catalogue.exams["associate"]
    labs = all_labs()
    with_lab = next(d for d in spec.domains if any(d.id in lab.objectives for lab in labs))
    lab = next(lab for lab in labs if with_lab.id in lab.objectives)
    other = next(d for d in spec.domains if d.id != with_lab.id)
    _record_mock(spec, other.id)
    _record_mock(spec, with_lab.id, practice=True)
    text = wide_status()
    asked = 4 * len(spec.domains)
    score = f"{asked - 3}/{asked} ({100 * (asked - 3) / asked:.0f}%)"
    [first] = [line for line in text.splitlines() if "2026-11-01" in line]
    [second] = [line for line in text.splitlines() if "2026-11-02" in line]
    assert "associate" in first and score in first and f"{other.id} {other.name} 1/4" in first
    assert "(practice)" in second and "(practice)" not in first
    assert f"{with_lab.id} {with_lab.name} 1/4" in second
    assert (f"next domain to study: {with_lab.id} {with_lab.name} (1/4 right in your last associate "
            "mock)") in text, "the latest mock, practice or not, says what to study next"
    assert f"labs/{lab.notebook}" in text and f"medilake_lab quiz {lab.id}" in text


def test_status_points_at_a_missed_questions_doc_page_when_no_lab_covers_the_domain(bank, wide_status, clock):
    questions, catalogue = bank
    spec = catalogue.exams["associate"]
    covered = {objective for lab in all_labs() for objective in lab.objectives}
    bare = next(d for d in spec.domains
                if d.id not in covered and not {o.id for o in d.objectives} & covered)
    in_domain = [q for q in questions if catalogue.domain_of(q, "associate") == bare]
    missed = in_domain[-1]
    progress.record_answers([(missed.id, False)])
    _record_mock(spec, bare.id)
    text = wide_status()
    assert f"next domain to study: {bare.id} {bare.name}" in text
    assert f"read {missed.reference}" in text, "the doc page of a question the learner missed"
    assert "1 queued for replay" in text


def test_status_without_mock_exams_suggests_one(wide_status):
    assert "mock exams: none yet" in wide_status()


# ------------------------------------------------------------------------- notebook widget

def _pick(card, letters) -> None:
    if card.radio is not None:
        card.radio.index = card.shown.letters.index(letters[0])
    else:
        for box in card.boxes:
            box.value = False
        for letter in letters:
            card.boxes[card.shown.letters.index(letter)].value = True


def test_widget_records_each_answer_as_it_is_checked(bank):
    pytest.importorskip("ipywidgets")
    from medilake_lab.quiz.widget import show_quiz

    root = show_quiz("04", BANK_DIR, shuffle_seed=3, display=False)
    for done, card in enumerate(root.cards, start=1):
        ok = done % 3 != 0
        _pick(card, card.shown.correct if ok else wrong(card.shown).split(","))
        card._check()
        history = saved()["history"]
        assert len(history) == done, "each check is saved at once"
        assert history[card.shown.question.id]["last_result"] == ("right" if ok else "wrong")
        if done < len(root.cards):
            assert "04" not in saved()["quizzes"], "the score waits for the last question"
    score = sum(1 for n in range(1, len(root.cards) + 1) if n % 3 != 0)
    assert saved()["quizzes"]["04"]["best"] == score


def test_show_quiz_displays_once_and_returns_nothing_to_display_again(monkeypatch):
    pytest.importorskip("ipywidgets")
    import IPython.display

    from medilake_lab.quiz.widget import show_quiz

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **_kw: shown.extend(objs))
    quiz = show_quiz("01", BANK_DIR, shuffle_seed=1)
    assert len(shown) == 1 and hasattr(shown[0], "cards"), "the quiz widget is displayed once"
    assert quiz is None, "IPython shows a cell's last value again unless it is None"
