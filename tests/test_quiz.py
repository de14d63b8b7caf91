"""Quiz banks, schema, renderers and CLI (fast: no Spark)."""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from medilake_lab.contract.labs import all_labs
from medilake_lab.quiz import (
    QuizFormatError,
    QuizUsageError,
    build_exam,
    build_quiz,
    load_bank,
    run_exam,
    run_quiz,
)
from medilake_lab.quiz.loader import CATALOGUE_FILE, bank_files
from medilake_lab.quiz.session import apportion

BANK_DIR = Path(__file__).resolve().parent.parent / "quizzes"
LABS = tuple(lab.id for lab in all_labs())


@pytest.fixture(scope="module")
def bank():
    return load_bank(BANK_DIR)


@pytest.fixture()
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDILAKE_STATE", str(tmp_path))
    return tmp_path


def quiet() -> Console:
    return Console(file=open("/dev/null", "w"), width=120)


def scripted(answers):
    it = iter(answers)

    def _input(_prompt: str) -> str:
        try:
            return next(it)
        except StopIteration:
            raise EOFError from None

    return _input


def wrong_letter(shown) -> str:
    return next(letter for letter in shown.letters if letter not in shown.correct)


def progress_json(state_dir: Path) -> dict:
    return json.loads((state_dir / "progress.json").read_text())


# ---------------------------------------------------------------- the banks themselves

def test_every_bank_file_validates():
    files = bank_files(BANK_DIR)
    assert {f.name for f in files} >= {f"lab{lab}.yaml" for lab in LABS} | {"databricks_only.yaml"}
    for file in files:
        load_bank(file)  # raises QuizFormatError on any problem


def test_question_counts(bank):
    counts = Counter(q.lab for q in bank.questions)
    for lab in LABS:
        assert counts[lab] >= 20, f"lab {lab} has only {counts[lab]} questions"
    assert counts[None] >= 60


def test_ids_unique_and_objectives_known(bank):
    ids = [q.id for q in bank.questions]
    assert len(ids) == len(set(ids))
    known = bank.catalogue.objective_ids()
    for q in bank.questions:
        assert set(q.objectives) <= known, q.id


def test_every_distractor_explained(bank):
    for q in bank.questions:
        wrong = set(q.options) - set(q.answer)
        assert set(q.distractors) == wrong, q.id
        assert all(text.strip() for text in q.distractors.values()), q.id


def test_catalogue_matches_exam_guides(bank):
    assoc, pro = bank.catalogue.exams["associate"], bank.catalogue.exams["professional"]
    assert (len(assoc.domains), assoc.scored_questions, assoc.minutes) == (7, 45, 90)
    assert (len(pro.domains), pro.scored_questions, pro.minutes) == (9, 60, 120)
    for exam in (assoc, pro):
        assert sum(d.weight for d in exam.domains) == pytest.approx(100)


def test_mock_exam_says_which_domain_weights_are_estimates(bank, state, tmp_path):
    pro = bank.catalogue.exams["professional"]
    assert pro.weight_note == ("Domain weights are estimates: no primary source confirms them, so the "
                               "number of questions per domain may differ from the real exam.")
    one_known = pro.model_copy(update={"domains": [pro.domains[0].model_copy(update={"weight_estimate": False}),
                                                   *pro.domains[1:]]})
    assert one_known.weight_note.startswith("Domain weights (DEP-2, DEP-3, ") and "DEP-1," not in one_known.weight_note
    confirmed = pro.model_copy(update={"domains": [d.model_copy(update={"weight_estimate": False})
                                                   for d in pro.domains]})
    assert confirmed.weight_note is None
    screen = tmp_path / "screen.txt"
    with open(screen, "w") as out:
        run_exam("professional", BANK_DIR, shuffle_seed=3, count=2, input_fn=scripted([]),
                 console=Console(file=out, width=300), record=False)
    assert pro.weight_note in screen.read_text()


def test_every_objective_has_a_question(bank):
    used = {oid for q in bank.questions for oid in q.objectives}
    assert bank.catalogue.objective_ids() - used == set()


def test_lab_questions_name_the_lab_in_their_ids(bank):
    for q in bank.questions:
        if q.lab is not None:
            assert q.id.startswith(f"L{q.lab}-"), q.id


# ---------------------------------------------------------------- schema errors

def _write_bank(tmp_path: Path, question: dict, version: int = 1) -> Path:
    folder = tmp_path / "bank"
    folder.mkdir(exist_ok=True)
    (folder / CATALOGUE_FILE).write_text((BANK_DIR / CATALOGUE_FILE).read_text())
    path = folder / "broken.yaml"
    path.write_text(yaml.safe_dump({"format_version": version, "questions": [question]}))
    return path


def _good_question() -> dict:
    return {
        "id": "T-001", "lab": "01", "objectives": ["DEA-2.1"], "difficulty": "easy",
        "stem": "Which read mode keeps malformed lines?",
        "options": {"A": "PERMISSIVE", "B": "DROPMALFORMED", "C": "FAILFAST"},
        "answer": "A", "explanation": "PERMISSIVE keeps them.",
        "distractors": {"B": "Drops them.", "C": "Aborts the read."},
        "reference": "https://spark.apache.org/docs/latest/sql-data-sources-json.html",
    }


def test_good_question_loads(tmp_path):
    questions, _ = load_bank(_write_bank(tmp_path, _good_question()))
    assert questions[0].answer == ["A"]


@pytest.mark.parametrize("mutate, field", [
    (lambda q: q["distractors"].pop("C"), "distractors"),
    (lambda q: q.update(objectives=["DEA-99.9"]), "objectives"),
    (lambda q: q.update(answer="D"), "answer"),
    (lambda q: q.update(answer="A,B"), "multiple"),
    (lambda q: q.pop("reference"), "reference"),
    (lambda q: q.update(explanation="Option B is wrong, so A."), "explanation"),
])
def test_broken_question_names_file_id_and_field(tmp_path, mutate, field):
    question = copy.deepcopy(_good_question())
    mutate(question)
    path = _write_bank(tmp_path, question)
    with pytest.raises(QuizFormatError) as err:
        load_bank(path)
    message = str(err.value)
    assert "broken.yaml" in message and "T-001" in message and field in message
    assert err.value.question_id == "T-001" and err.value.field == field


@pytest.mark.parametrize("version, word", [(2, "newer"), (0, "older")])
def test_format_version_mismatch(tmp_path, version, word):
    path = _write_bank(tmp_path, _good_question(), version=version)
    with pytest.raises(QuizFormatError, match=word):
        load_bank(path)


def test_duplicate_ids_rejected(tmp_path):
    path = _write_bank(tmp_path, _good_question())
    (path.parent / "copy.yaml").write_text(path.read_text())
    with pytest.raises(QuizFormatError, match="duplicate id"):
        load_bank(path.parent)


# ---------------------------------------------------------------- terminal quiz

def test_quiz_all_right_scores_full_and_saves(bank, state):
    plan = build_quiz(bank.questions, "01", seed=7)
    answers = [",".join(s.correct) for s in plan]
    result = run_quiz("01", BANK_DIR, shuffle_seed=7, input_fn=scripted(answers),
                      console=quiet())
    assert (result.score, result.total) == (len(plan), len(plan))
    saved = progress_json(state)["quizzes"]["01"]
    assert saved["last"] == saved["best"] == saved["total"] == len(plan)


def test_quiz_all_wrong_scores_zero(bank, state):
    plan = build_quiz(bank.questions, "02", seed=3)
    answers = [",".join([x for x in s.letters if x not in s.correct][: s.choose]) for s in plan]
    result = run_quiz("2", BANK_DIR, shuffle_seed=3, input_fn=scripted(answers),
                      console=quiet())
    assert result.score == 0 and result.total == len(plan)
    assert progress_json(state)["quizzes"]["02"]["last"] == 0


def test_quiz_reprompts_on_invalid_input_and_shuffles(bank, state):
    plan = build_quiz(bank.questions, "03", seed=11, count=2)
    first = plan[0]
    answers = ["Z", "", ",".join(first.correct), ",".join(plan[1].correct)]
    result = run_quiz("03", BANK_DIR, shuffle_seed=11, count=2, input_fn=scripted(answers),
                      console=quiet())
    assert (result.score, result.total) == (2, 2)
    orders = {s.order for s in build_quiz(bank.questions, "03", seed=11)}
    assert len(orders) > 1, "options should be shuffled"


def test_quiz_stopping_early_counts_rest_wrong(bank, state):
    plan = build_quiz(bank.questions, "04", seed=5)
    result = run_quiz("04", BANK_DIR, shuffle_seed=5,
                      input_fn=scripted([",".join(plan[0].correct), "q"]), console=quiet())
    assert (result.score, result.total) == (1, len(plan))
    saved = progress_json(state)
    assert saved["quizzes"] == {} and not saved.get("practice_quizzes"), "a quiz quit early has no score"
    assert list(saved["history"]) == [plan[0].question.id], "the one answer checked is in the history"


def test_exam_quit_early_is_not_saved_but_a_timed_out_one_is(bank, state):
    plan = build_exam(bank.questions, bank.catalogue, "associate", seed=4, count=5)
    out = Console(record=True, width=200, file=open("/dev/null", "w"))
    result = run_exam("associate", BANK_DIR, shuffle_seed=4, count=5, console=out,
                      input_fn=scripted([wrong_letter(plan.shown[0]), ",".join(plan.shown[1].correct), "q"]))
    assert (result.score, result.total, result.unanswered) == (1, 2, 3), "scored on the answered ones"
    text = out.export_text()
    assert not any(s.question.id in text for s in plan.shown[2:]), "ids hidden; unanswered say nothing"
    asked = {d for d, (_, n) in result.by_domain.items() if n}
    assert asked == {s.domain.id for s in plan.shown[:2]}, "no domain is scored from unanswered questions"
    assert not (state / "progress.json").exists(), "an exam quit early must not be saved"
    now = [0.0]
    run_exam("associate", BANK_DIR, minutes=1, shuffle_seed=4, count=5, console=quiet(),
             input_fn=lambda _prompt: now.__setitem__(0, 120) or ",".join(plan.shown[0].correct),
             clock=lambda: now[0])
    saved = progress_json(state)
    assert saved["practice_exams"][-1]["score"] == 0 and saved["exams"] == [], \
        "a timed-out attempt is saved; with 5 questions in 1 minute, as practice"


def test_unknown_lab_is_usage_error(state):
    with pytest.raises(QuizUsageError, match="01"):
        run_quiz("09", BANK_DIR, input_fn=scripted([]), console=quiet())


# ---------------------------------------------------------------- mock exams

def test_apportion_follows_weights_and_caps():
    seats = apportion(45, {"a": 50, "b": 30, "c": 20}, {"a": 100, "b": 100, "c": 100})
    assert seats == {"a": 23, "b": 13, "c": 9}
    capped = apportion(45, {"a": 50, "b": 30, "c": 20}, {"a": 5, "b": 100, "c": 100})
    assert capped["a"] == 5 and sum(capped.values()) == 45
    short = apportion(45, {"a": 50, "b": 50}, {"a": 3, "b": 4})
    assert short == {"a": 3, "b": 4}


@pytest.mark.parametrize("exam", ["associate", "professional"])
def test_exam_draws_by_domain_weight(bank, exam):
    spec = bank.catalogue.exams[exam]
    plan = build_exam(bank.questions, bank.catalogue, exam, seed=1)
    assert len(plan.shown) == spec.scored_questions
    per_domain = Counter(s.domain.id for s in plan.shown)
    assert per_domain == Counter({d: n for d, n in plan.planned.items() if n})
    for domain in spec.domains:
        ideal = spec.scored_questions * domain.weight / 100
        if plan.available[domain.id] >= ideal + 1:
            assert abs(per_domain[domain.id] - ideal) <= 1, domain.id
    assert len({s.question.id for s in plan.shown}) == len(plan.shown)


def test_exam_uses_all_questions_when_bank_is_short(bank):
    few = [q for q in bank.questions if q.lab == "01"]
    plan = build_exam(few, bank.catalogue, "associate", seed=2)
    eligible = [q for q in few if bank.catalogue.domain_of(q, "associate")]
    assert plan.short and len(plan.shown) == len(eligible)


def test_exam_all_right_and_saved(bank, state):
    plan = build_exam(bank.questions, bank.catalogue, "associate", seed=4, count=10)
    answers = [",".join(s.correct) for s in plan.shown]
    result = run_exam("associate", BANK_DIR, shuffle_seed=4, count=10,
                      input_fn=scripted(answers), console=quiet())
    assert (result.score, result.total, result.timed_out) == (10, 10, False)
    assert progress_json(state)["exams"] == [], "10 of 45 questions is practice, not an exam attempt"
    saved = progress_json(state)["practice_exams"][-1]
    assert saved["exam"] == "associate" and saved["score"] == 10
    assert sum(asked for _, asked in saved["by_domain"].values()) == 10


def test_expired_timer_counts_remaining_questions_wrong(bank, state):
    plan = build_exam(bank.questions, bank.catalogue, "professional", seed=9, count=6)
    now = [0.0]

    def clock() -> float:
        return now[0]

    answers = iter(",".join(s.correct) for s in plan.shown)

    def answer_then_wait(_prompt: str) -> str:
        reply = next(answers)
        now[0] += 60  # each answer takes a minute
        return reply

    result = run_exam("professional", BANK_DIR, minutes=2.5, shuffle_seed=9, count=6,
                      input_fn=answer_then_wait, clock=clock, console=quiet())
    assert result.timed_out
    assert result.score == 2 and result.total == 6 and result.unanswered == 4
    assert sum(asked for _, asked in result.by_domain.values()) == 6


def test_answer_after_the_limit_does_not_count(bank, state):
    plan = build_exam(bank.questions, bank.catalogue, "associate", seed=9, count=3)
    now = [0.0]

    def slow(_prompt: str) -> str:
        now[0] += 600
        return ",".join(plan.shown[0].correct)

    result = run_exam("associate", BANK_DIR, minutes=5, shuffle_seed=9, count=3,
                      input_fn=slow, clock=lambda: now[0], console=quiet())
    assert result.score == 0 and result.unanswered == 3 and result.timed_out


# ---------------------------------------------------------------- notebook widget

def test_widget_check_and_score(bank, state):
    pytest.importorskip("ipywidgets")
    from medilake_lab.quiz.widget import show_quiz

    root = show_quiz("01", BANK_DIR, shuffle_seed=2, count=2, display=False)
    for card in root.cards:
        letters = card.shown.correct
        if card.radio is not None:
            card.radio.index = card.shown.letters.index(letters[0])
        else:
            for letter in letters:
                card.boxes[card.shown.letters.index(letter)].value = True
        card.button.click()
        assert "Correct" in card.feedback.value and card.button.disabled
    saved = progress_json(state)
    assert "01" not in saved["quizzes"], "2 of the lab's questions (count) is practice"
    assert [(p["lab"], p["score"], p["total"]) for p in saved["practice_quizzes"]] == [("01", 2, 2)]


def test_widget_missing_ipywidgets_names_pip(monkeypatch):
    import importlib

    from medilake_lab.errors import WidgetUnavailableError
    from medilake_lab.quiz import widget

    real = importlib.import_module

    def fake(name, *args, **kwargs):
        if name == "ipywidgets":
            raise ImportError("No module named 'ipywidgets'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(widget.importlib, "import_module", fake)
    with pytest.raises(WidgetUnavailableError, match=re.escape("pip install ipywidgets")):
        widget.show_quiz("01", BANK_DIR, display=False)


# ---------------------------------------------------------------- CLI

@pytest.fixture()
def cli():
    """The kit's CLI: ``register`` adds the quiz commands, its root maps their errors."""
    from medilake_lab.cli import app

    return app


def test_cli_quiz_runs_and_saves(bank, cli, state):
    plan = build_quiz(bank.questions, "01", seed=5, count=3)
    answers = "\n".join(",".join(s.correct) for s in plan) + "\n"
    result = CliRunner().invoke(cli, ["quiz", "01", "--seed", "5", "--count", "3",
                                      "--bank-dir", str(BANK_DIR)], input=answers)
    assert result.exit_code == 0, result.output
    assert "Score: 3/3" in result.output
    saved = progress_json(state)
    assert "01" not in saved["quizzes"], "3 of the lab's questions (--count) is never the quiz score"
    assert [(p["lab"], p["score"], p["total"]) for p in saved["practice_quizzes"]] == [("01", 3, 3)]


def test_cli_bad_lab_exits_2(cli, state):
    result = CliRunner().invoke(cli, ["quiz", "99", "--bank-dir", str(BANK_DIR)])
    assert result.exit_code == 2
    assert "no quiz for '99'" in result.output


def test_cli_exam_runs(bank, cli, state):
    result = CliRunner().invoke(cli, ["exam", "associate", "--minutes", "5", "--seed", "1",
                                      "--bank-dir", str(BANK_DIR)], input="q\n")
    assert result.exit_code == 0, result.output
    assert "Score by domain" in result.output and "Score: 0/0" in result.output
    assert "result not saved" in result.output and not (state / "progress.json").exists()


def test_cli_bad_exam_exits_2(cli, state):
    result = CliRunner().invoke(cli, ["exam", "expert"])
    assert result.exit_code == 2
    assert "associate or professional" in result.output


def test_cli_broken_bank_exits_1(cli, state, tmp_path):
    path = _write_bank(tmp_path, {**_good_question(), "answer": "D"})
    result = CliRunner().invoke(cli, ["quiz", "01", "--bank-dir", str(path.parent)])
    assert result.exit_code == 1
    assert "T-001" in result.output
