"""The full-screen mock exam (no JVM): the exam state on its own, and the Textual app driven by its
test pilot through skip, flag, back, review, submit, time-out and quitting early."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from rich.console import Console
from textual.widgets import Button, Static

from medilake_lab.errors import AnswerError
from medilake_lab.quiz import build_exam, load_bank
from medilake_lab.quiz.session import ExamPlan, shuffle_options
from medilake_lab.quiz.tui import ExamScreen, ExamState, MockExamApp, ResultsScreen, ReviewScreen

BANK_DIR = Path(__file__).resolve().parent.parent / "quizzes"
pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def bank():
    return load_bank(BANK_DIR)


class FakeClock:
    """Monotonic seconds that only move when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def wrong_letter(shown) -> str:
    return next(letter for letter in shown.letters if letter not in shown.correct)


def progress_json() -> dict:
    path = Path(os.environ["MEDILAKE_STATE"]) / "progress.json"
    return json.loads(path.read_text()) if path.exists() else {}


def mixed_plan(bank) -> ExamPlan:
    """Four associate questions, the second a multiple-answer one, options in bank order."""
    questions, catalogue = bank
    eligible = [q for q in questions if catalogue.domain_of(q, "associate") is not None]
    multi = next(q for q in eligible if q.multiple)
    singles = [q for q in eligible if not q.multiple][:3]
    shown = [shuffle_options(q, None, catalogue.domain_of(q, "associate"))
             for q in (singles[0], multi, *singles[1:])]
    domains = {d.id: 0 for d in catalogue.exams["associate"].domains}
    return ExamPlan("associate", shown, domains, domains, target=len(shown))


# ------------------------------------------------------------------------------ the state alone

def test_state_moves_skips_and_flags(bank):
    state = ExamState(mixed_plan(bank), minutes=10, clock=FakeClock())
    assert (state.position, state.seen) == (0, {0})
    assert not state.back(), "there is nothing before the first question"
    assert state.next() and state.position == 1
    state.choose(state.current.correct[0])  # half of a two-answer question: still unanswered
    assert state.skip() and state.position == 2
    assert state.toggle_flag() and state.flagged() == [2]
    state.choose(state.current.correct[0])
    assert state.skip() and state.position == 3, "skip goes to the next unanswered question"
    assert state.skip() and state.position == 0, "…wrapping round to the first"
    assert state.unanswered() == [0, 1, 3] and state.seen == {0, 1, 2, 3}
    state.go(2)
    assert not state.toggle_flag() and state.flagged() == []
    with pytest.raises(IndexError, match="no question 5 in this exam"):
        state.go(4)
    state.go(3)
    assert not state.next(), "there is nothing after the last question"


def test_state_choices_single_and_multiple(bank):
    state = ExamState(mixed_plan(bank), minutes=10, clock=FakeClock())
    first, other = state.current.letters[:2]
    state.choose(first)
    state.choose(other)
    assert state.chosen() == (other,), "a single-answer question keeps one pick"
    state.next()
    multi = state.current
    assert multi.choose == 2
    spare = [letter for letter in multi.letters if letter not in multi.correct]
    state.choose(multi.correct[1])
    state.choose(spare[0])
    with pytest.raises(AnswerError, match="takes 2 options: unpick one first"):
        state.choose(spare[1])
    state.choose(spare[0])  # picked again: unpicked
    state.choose(multi.correct[0])
    assert state.chosen() == tuple(multi.correct) and state.is_answered(1)
    with pytest.raises(AnswerError, match="choose A–"):
        state.choose("F")


def test_state_submit_grades_all_and_review_lists(bank):
    plan = mixed_plan(bank)
    state = ExamState(plan, minutes=10, clock=FakeClock())
    state.choose(plan.shown[0].correct[0])
    state.go(2)
    state.choose(wrong_letter(plan.shown[2]))
    state.toggle_flag()
    assert state.unanswered() == [1, 3] and state.flagged() == [2]
    result = state.submit()
    assert (result.score, result.total, result.unanswered, result.timed_out) == (1, 4, 2, False)
    assert [o.chosen for o in result.outcomes] == [tuple(plan.shown[0].correct), (),
                                                   (wrong_letter(plan.shown[2]),), ()]
    assert sum(asked for _, asked in result.by_domain.values()) == 4
    assert state.submit() is result
    with pytest.raises(AnswerError, match="no longer accepted"):
        state.choose("A")


def test_state_submits_itself_at_the_deadline(bank):
    clock = FakeClock()
    plan = mixed_plan(bank)
    state = ExamState(plan, minutes=2, clock=clock)
    state.choose(plan.shown[0].correct[0])
    clock.now += 119
    assert state.poll() is None and state.deadline.label() == "00:01"
    clock.now += 1
    result = state.poll()
    assert result is not None and result.timed_out and (result.score, result.total) == (1, 4)
    assert state.poll() is None, "submitted once"
    with pytest.raises(AnswerError, match="time is up"):
        state.choose("A")


def test_state_stop_says_nothing_about_unanswered_questions(bank):
    plan = mixed_plan(bank)
    state = ExamState(plan, minutes=10, clock=FakeClock())
    state.choose(plan.shown[0].correct[0])
    state.go(1)
    state.choose(plan.shown[1].correct[0])  # incomplete: not graded either
    result = state.stop()
    assert state.stopped and (result.score, result.total, result.unanswered) == (1, 1, 3)
    assert [o.shown for o in result.outcomes] == [plan.shown[0]]
    asked = {d: cell[1] for d, cell in result.by_domain.items() if cell[1]}
    assert asked == {plan.shown[0].domain.id: 1}, "no domain is scored from unanswered questions"


# ------------------------------------------------------------------------------ the app, piloted

def screen_text(app) -> str:
    """The text of every Static on the current screen (rich renderables printed without styles)."""
    console = Console(width=200, file=io.StringIO(), color_system=None)
    for widget in app.screen.query(Static):
        console.print(widget.content)
    return console.file.getvalue()


async def test_pilot_full_mock_exam_skip_flag_back_review_submit(bank):
    questions, catalogue = bank
    spec = catalogue.exams["associate"]
    plan = build_exam(questions, catalogue, "associate", seed=21)
    assert len(plan.shown) == spec.scored_questions
    state = ExamState(plan, minutes=spec.minutes, clock=FakeClock())
    app = MockExamApp(state, spec)
    q1, q2, q3 = plan.shown[:3]
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, ExamScreen)
        text = screen_text(app)
        assert "Question 1 of 45" in text and q1.question.stem.strip()[:40] in text
        assert q1.question.id not in text and q1.question.difficulty not in text, "id and difficulty hidden"
        assert "01:30:00" in text or "1:30:00" in text
        await pilot.press(*(str("ABCDE".index(c) + 1) for c in q1.correct))  # 1 right, by digit
        await pilot.press("right")
        await pilot.press("s")  # skip question 2
        assert state.position == 2 and 1 not in state.answers
        await pilot.click(f"#option-{wrong_letter(q3)}")  # 3 wrong, by a click
        await pilot.press("f")  # flag question 3
        assert "Question 3 of 45 · ⚑ flagged" in screen_text(app)
        cells = [app.screen.query_one(f"#goto-{i}", Button) for i in range(4)]
        assert [str(cell.label) for cell in cells] == ["1✓", "2", "3✓⚑", "4"], "the palette shows the state"
        assert [cell.has_class("unseen") for cell in cells] == [False, False, False, True]
        await pilot.press("left", "left")  # back to question 1: its answer is still there
        assert state.position == 0 and state.chosen() == tuple(q1.correct)
        await pilot.click("#goto-1")  # palette → question 2, answered right by letter keys
        await pilot.press(*(c.lower() for c in q2.correct))
        await pilot.press("r")
        assert isinstance(app.screen, ReviewScreen)
        review = screen_text(app)
        assert "answered 3 of 45" in review and "Unanswered: 42" in review
        assert "Flagged for review: 1" in review
        await pilot.click("#f-2")  # jump to the flagged question from the review
        assert isinstance(app.screen, ExamScreen) and state.position == 2
        await pilot.press("f", "r")  # unflag, review again, submit
        assert "Flagged for review: none" in screen_text(app)
        await pilot.click("#submit")
        await pilot.pause()
        assert isinstance(app.screen, ResultsScreen)
        results = screen_text(app)
        assert "Score: 2/45 (4%)" in results and "42 question(s) unanswered" in results
        assert "Recorded as an exam attempt" in results
        assert "Missed questions: 43" in results
        assert f"Question 3 · {q3.question.id}" in results, "the review names the question after the exam"
        assert f"Your choice: {wrong_letter(q3)} · Key: {', '.join(q3.correct)}" in results
        for letter in q3.letters:  # every option's explanation
            original = q3.to_original(letter)
            why = q3.question.explanation if letter in q3.correct else q3.question.distractors[original]
            assert why.strip()[:50] in results
        assert q1.question.id + " " not in results.split("Missed questions")[1], "a right answer is not reviewed"
        await pilot.press("q")
    assert app.return_value is state.result
    saved = progress_json()
    assert not saved.get("practice_exams")
    [attempt] = saved["exams"]
    assert (attempt["exam"], attempt["score"], attempt["total"]) == ("associate", 2, 45)
    assert attempt["by_domain"] == state.result.by_domain


async def test_pilot_time_up_submits_a_shortened_exam_as_practice(bank):
    questions, catalogue = bank
    spec = catalogue.exams["professional"]
    plan = build_exam(questions, catalogue, "professional", seed=5)
    clock = FakeClock()
    state = ExamState(plan, minutes=1, clock=clock)
    app = MockExamApp(state, spec, practice=True)
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press(plan.shown[0].correct[0].lower(), "r")
        assert isinstance(app.screen, ReviewScreen)
        clock.now += 60
        # the countdown's next tick submits (every TICK_SECONDS; later on a loaded machine)
        for _ in range(150):
            await pilot.pause(0.1)
            if isinstance(app.screen, ResultsScreen):
                break
        assert isinstance(app.screen, ResultsScreen)
        results = screen_text(app)
        assert f"Time is up — the exam was submitted. Score: 1/{len(plan.shown)}" in results
        assert "Recorded as practice" in results
    saved = progress_json()
    assert not saved.get("exams"), "a shortened exam is not an exam attempt"
    assert [p["score"] for p in saved["practice_exams"]] == [1]


async def test_pilot_quitting_early_records_nothing_and_hides_the_rest(bank):
    questions, catalogue = bank
    spec = catalogue.exams["associate"]
    plan = build_exam(questions, catalogue, "associate", seed=8)
    state = ExamState(plan, minutes=spec.minutes, clock=FakeClock())
    app = MockExamApp(state, spec)
    q1, q2 = plan.shown[:2]
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press(wrong_letter(q1).lower(), "right", "escape")
        await pilot.press("n")  # keep going
        assert isinstance(app.screen, ExamScreen) and state.result is None
        await pilot.press("ctrl+q", "y")
        await pilot.pause()
        assert isinstance(app.screen, ResultsScreen)
        results = screen_text(app)
        assert "Stopped early: 0 right of the 1 you answered" in results
        assert "Stopped early: nothing recorded." in results
        assert q1.question.id in results and q2.question.id not in results, "unseen questions say nothing"
        assert "weak" in results.lower().split("missed questions")[0]  # the one answered domain, wrong
        weak_lines = [line for line in results.splitlines() if line.startswith("Weak domains")]
        assert weak_lines == [f"Weak domains to revisit: {q1.domain.id} {q1.domain.name}"]
        await pilot.press("escape")
    assert app.return_value is state.result and state.stopped
    assert progress_json() == {}, "quitting early records nothing"


async def test_pilot_unwritable_progress_is_shown_and_kept(bank):
    questions, catalogue = bank
    spec = catalogue.exams["associate"]
    progress_file = Path(os.environ["MEDILAKE_STATE"]) / "progress.json"
    newer = '{"format_version": 99}'  # refused and kept (an unreadable one is moved aside: test_errors)
    progress_file.write_text(newer)
    state = ExamState(build_exam(questions, catalogue, "associate", seed=2), minutes=spec.minutes, clock=FakeClock())
    app = MockExamApp(state, spec)
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("r", "ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ResultsScreen)
        assert "Not saved:" in screen_text(app) and "newer than this kit reads" in screen_text(app)
    assert app.save_error is not None and progress_file.read_text() == newer
