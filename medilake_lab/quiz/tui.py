"""Full-screen mock exam (Textual) that behaves like the real one.

One question per screen; options chosen with 1–6 / A–E or a click (multiple-answer questions take
as many as they ask for); skip, flag for review, go back and forth or jump to any question from a
palette (answered / flagged / unseen); a live countdown that submits the exam when it runs out; a
review screen (unanswered and flagged questions) before submitting; then the score, the score by
domain and every missed question with its text, your choice, the key and each option's
explanation. Question ids and difficulty stay hidden until the results.

:class:`ExamState` is the exam in progress (answers, flags, position, deadline) without any
widget, so tests drive it on its own; :class:`MockExamApp` displays it and maps keys and clicks
onto its methods. Drawing, grading and recording reuse :func:`~medilake_lab.quiz.session.build_exam`,
:func:`~medilake_lab.quiz.session.grade` and :func:`medilake_lab.course.progress.record_exam`.
The line-based mode (:func:`medilake_lab.quiz.terminal.run_exam`) stays for scripts and tests.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import cast

from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Static

from medilake_lab.course import progress
from medilake_lab.errors import AnswerError, ProgressFileError
from medilake_lab.quiz.loader import load_bank
from medilake_lab.quiz.model import LETTERS, Exam
from medilake_lab.quiz.session import (
    Deadline,
    ExamPlan,
    Outcome,
    ShownQuestion,
    Tally,
    answered,
    build_exam,
    check_exam,
    grade,
    is_practice,
)
from medilake_lab.quiz.terminal import WEAK_BELOW, ExamResult

TICK_SECONDS = 0.5  # how often the countdown is redrawn and the deadline checked
SUBMIT = -1  # what the review screen returns when the learner submits


class ExamState:
    """One mock exam in progress: answers, review flags, position and deadline; no widgets.

    Questions are addressed by their 0-based position in ``plan.shown``; letters are display
    letters (``"A"``…). Once time is up no answer is accepted and :meth:`poll` submits the exam.

    Parameters
    ----------
    plan : ExamPlan
        The drawn exam (:func:`~medilake_lab.quiz.session.build_exam`); must hold a question.
    minutes : float
        Time limit; the countdown starts now.
    clock : callable
        Monotonic seconds (injectable, so tests can expire the deadline).
    """

    def __init__(self, plan: ExamPlan, minutes: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not plan.shown:
            raise ValueError(f"the {plan.exam} mock exam has no questions to ask")
        self.plan = plan
        self.minutes = minutes
        self.deadline = Deadline(minutes, clock)
        self.answers: dict[int, tuple[str, ...]] = {}
        self.flags: set[int] = set()
        self.seen: set[int] = {0}
        self.position = 0
        self.result: ExamResult | None = None
        self.stopped = False

    @property
    def total(self) -> int:
        """Number of questions in the exam."""
        return len(self.plan.shown)

    @property
    def current(self) -> ShownQuestion:
        """The question on screen."""
        return self.plan.shown[self.position]

    def chosen(self, index: int | None = None) -> tuple[str, ...]:
        """Sorted display letters chosen for question ``index`` (default: the current one)."""
        return self.answers.get(self.position if index is None else index, ())

    def is_answered(self, index: int) -> bool:
        """True when question ``index`` has as many options chosen as it asks for."""
        return len(self.chosen(index)) == self.plan.shown[index].choose

    def go(self, index: int) -> None:
        """Show question ``index``. Raises IndexError outside ``0 … total - 1``."""
        if not 0 <= index < self.total:
            raise IndexError(f"no question {index + 1} in this exam (1–{self.total})")
        self.position = index
        self.seen.add(index)

    def next(self) -> bool:
        """Go to the next question; False (and stay) on the last one."""
        if self.position + 1 >= self.total:
            return False
        self.go(self.position + 1)
        return True

    def back(self) -> bool:
        """Go to the previous question; False (and stay) on the first one."""
        if self.position == 0:
            return False
        self.go(self.position - 1)
        return True

    def skip(self) -> bool:
        """Leave this question as it is and go to the next unanswered one after it (wrapping
        round); False (and stay) when no other question is unanswered."""
        after = [i for i in self.unanswered() if i != self.position]
        if not after:
            return False
        self.go(min(after, key=lambda i: (i - self.position) % self.total))
        return True

    def choose(self, letter: str) -> None:
        """Pick option ``letter`` of the current question, or unpick it if it was picked.

        A single-answer question keeps one pick (a new one replaces it); a multiple-answer
        question takes up to as many as it asks for.

        Raises
        ------
        AnswerError
            Time is up or the exam is over; the letter is not an option; a multiple-answer
            question already has all its picks (unpick one first).
        """
        if self.result is not None or self.deadline.expired():
            raise AnswerError("time is up: answers are no longer accepted")
        shown = self.current
        if letter not in shown.letters:
            raise AnswerError(f"choose {shown.letters[0]}–{shown.letters[-1]}")
        picked = set(self.chosen())
        if shown.choose == 1:
            picked = {letter}
        elif letter in picked:
            picked.discard(letter)
        elif len(picked) >= shown.choose:
            raise AnswerError(f"this question takes {shown.choose} options: unpick one first")
        else:
            picked.add(letter)
        if picked:
            self.answers[self.position] = tuple(sorted(picked))
        else:
            self.answers.pop(self.position, None)

    def toggle_flag(self) -> bool:
        """Flag the current question for review, or unflag it; returns whether it is flagged."""
        self.flags ^= {self.position}
        return self.position in self.flags

    def unanswered(self) -> list[int]:
        """Positions of the questions without a complete answer, in order."""
        return [i for i in range(self.total) if not self.is_answered(i)]

    def flagged(self) -> list[int]:
        """Positions of the questions flagged for review, in order."""
        return sorted(self.flags)

    def submit(self, timed_out: bool = False) -> ExamResult:
        """End the exam and grade every question (unanswered ones count as wrong).

        Submitting again returns the same result.
        """
        if self.result is None:
            graded = range(self.total)
            self.result = self._grade(graded, timed_out, unanswered=len(self.unanswered()))
        return self.result

    def stop(self) -> ExamResult:
        """Quit early: grade only the answered questions, so unseen or unanswered ones say
        nothing (they are neither in the score nor in any domain). Never an exam attempt."""
        if self.result is None:
            answered = [i for i in range(self.total) if self.is_answered(i)]
            self.stopped = True
            self.result = self._grade(answered, False, unanswered=self.total - len(answered))
        return self.result

    def poll(self) -> ExamResult | None:
        """Submit the exam if time is up and it is still open; the result when this call did."""
        if self.result is None and self.deadline.expired():
            return self.submit(timed_out=True)
        return None

    def _grade(self, indices: range | list[int], timed_out: bool, unanswered: int) -> ExamResult:
        tally = Tally(by_domain={domain_id: [0, 0] for domain_id in self.plan.planned})
        for i in indices:
            tally.add(grade(self.plan.shown[i], self.chosen(i)))
        return ExamResult(self.plan.exam, tally.score, tally.total, tally.by_domain, timed_out,
                          unanswered, tally.outcomes)


def clock_text(deadline: Deadline) -> Text:
    """The countdown as shown, red in the last five minutes."""
    return Text(f"⏱ {deadline.label()} left", style="bold red" if deadline.remaining() < 300 else "bold")


def weak_domains(result: ExamResult) -> list[str]:
    """Domain ids scored below :data:`~medilake_lab.quiz.terminal.WEAK_BELOW` (asked ones only)."""
    return [d for d, (right, asked) in result.by_domain.items() if asked and right / asked < WEAK_BELOW]


# ---------------------------------------------------------------------------------------------
# Screens
# ---------------------------------------------------------------------------------------------

class OptionRow(Static):
    """One option of the question on screen; a click picks it."""

    class Picked(Message):
        """The learner clicked the option shown under ``letter``."""

        def __init__(self, letter: str) -> None:
            self.letter = letter
            super().__init__()

    def __init__(self, letter: str) -> None:
        super().__init__(id=f"option-{letter}", classes="option")
        self.letter = letter

    def on_click(self) -> None:
        self.post_message(self.Picked(self.letter))


class ExamScreen(Screen[None]):
    """The question on screen, the palette of all questions and the countdown."""

    BINDINGS = [
        Binding("1,a", "choose('A')", "Choose", key_display="1-4/A-D"),
        *(Binding(f"{n},{letter.lower()}", f"choose('{letter}')", show=False)
          for n, letter in enumerate("BCDE", 2)),
        Binding("6", "choose('F')", show=False),  # f flags
        Binding("left,p", "back", "Back", key_display="←"),
        Binding("right,n", "next", "Next", key_display="→"),
        Binding("s", "skip", "Skip"),
        Binding("f", "flag", "Flag"),
        Binding("r", "review", "Review & submit"),
        Binding("escape", "app.request_quit", "Quit", show=False),
    ]

    def __init__(self, state: ExamState, title: str, note: str | None) -> None:
        super().__init__()
        self.state = state
        self.title_text = title
        self.note = note

    def compose(self) -> ComposeResult:
        with Horizontal(id="top"):
            yield Static(id="where")
            yield Static(clock_text(self.state.deadline), id="clock")
        if self.note:
            yield Static(self.note, id="note")
        with Grid(id="palette"):
            for i in range(self.state.total):
                yield Button(str(i + 1), id=f"goto-{i}", classes="cell", compact=True)
        yield Static(Text("✓ answered · ⚑ flagged · dim: not seen yet · click a number to go there",
                          style="dim"), id="legend")
        with VerticalScroll(id="body"):
            yield Static(id="stem")
            for letter in LETTERS:
                yield OptionRow(letter)
        yield Static(id="message")
        yield Footer()

    def on_mount(self) -> None:
        self.show_question()

    def show_question(self, message: str = "") -> None:
        """Redraw the question on screen, the palette and ``message`` (a refused action)."""
        state, shown = self.state, self.state.current
        where = f"{self.title_text} · Question {state.position + 1} of {state.total}"
        if state.position in state.flags:
            where += " · ⚑ flagged"
        self.query_one("#where", Static).update(Text(where, style="bold"))
        stem = Text(shown.question.stem.strip())
        if shown.choose > 1 and "(choose" not in shown.question.stem.lower():
            stem.append(f"\n(Choose {shown.choose}.)", style="bold")
        self.query_one("#stem", Static).update(stem)
        chosen = state.chosen()
        for row in self.query(OptionRow):
            row.display = row.letter in shown.letters
            if row.display:
                picked = row.letter in chosen
                box = ("[x]" if picked else "[ ]") if shown.choose > 1 else ("(•)" if picked else "( )")
                row.update(Text(f"{box} {row.letter}. {shown.option_text(row.letter)}"))
                row.set_class(picked, "picked")
        for i in range(state.total):
            cell = self.query_one(f"#goto-{i}", Button)
            cell.label = f"{i + 1}{'✓' if state.is_answered(i) else ''}{'⚑' if i in state.flags else ''}"
            cell.set_class(i == state.position, "current")
            cell.set_class(state.is_answered(i), "answered")
            cell.set_class(i in state.flags, "flagged")
            cell.set_class(i not in state.seen, "unseen")
        self.query_one("#message", Static).update(Text(message, style="yellow"))
        self.query_one("#clock", Static).update(clock_text(state.deadline))

    def action_choose(self, letter: str) -> None:
        try:
            self.state.choose(letter)
        except AnswerError as exc:
            self.show_question(str(exc))
        else:
            self.show_question()

    def on_option_row_picked(self, event: OptionRow.Picked) -> None:
        self.action_choose(event.letter)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id and event.button.id.startswith("goto-"):
            self.state.go(int(event.button.id.removeprefix("goto-")))
            self.show_question()

    def action_back(self) -> None:
        self.show_question("" if self.state.back() else "This is the first question.")

    def action_next(self) -> None:
        self.show_question("" if self.state.next() else "This is the last question: R reviews and submits.")

    def action_skip(self) -> None:
        self.show_question("" if self.state.skip() else "No other question is unanswered: R reviews and submits.")

    def action_flag(self) -> None:
        self.state.toggle_flag()
        self.show_question()

    def action_review(self) -> None:
        self.app.push_screen(ReviewScreen(self.state), self._after_review)

    def _after_review(self, target: int | None) -> None:
        if target == SUBMIT:
            cast(MockExamApp, self.app).action_submit()
            return
        if target is not None:
            self.state.go(target)
        self.show_question()


class ReviewScreen(Screen[int | None]):
    """Before submitting: what is unanswered and flagged, with a jump to each. Dismissed with the
    position to go back to, None (where the learner was) or :data:`SUBMIT`."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Back to the exam"),
                Binding("ctrl+s", f"dismiss({SUBMIT})", "Submit")]

    def __init__(self, state: ExamState) -> None:
        super().__init__()
        self.state = state

    def compose(self) -> ComposeResult:
        state = self.state
        unanswered, flagged = state.unanswered(), state.flagged()
        with Horizontal(id="top"):
            yield Static(Text(f"Review before submitting — answered {state.total - len(unanswered)} "
                              f"of {state.total}", style="bold"), id="where")
            yield Static(clock_text(state.deadline), id="clock")
        with VerticalScroll(id="review"):
            for label, positions in (("Unanswered", unanswered), ("Flagged for review", flagged)):
                yield Static(Text(f"{label}: {len(positions) or 'none'}"), classes="heading")
                with Grid(classes="jumps"):
                    for i in positions:
                        yield Button(str(i + 1), id=f"{label[0].lower()}-{i}", classes="cell", compact=True)
            yield Static(Text("Unanswered questions count as wrong. Click a number to go back to it."))
            with Horizontal(id="actions"):
                yield Button("Submit the exam", id="submit", variant="primary")
                yield Button("Back to the exam", id="return")
        yield Footer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        button = event.button.id or ""
        if button == "submit":
            self.dismiss(SUBMIT)
        elif button == "return":
            self.dismiss(None)
        elif "-" in button:
            self.dismiss(int(button.split("-")[1]))


class ConfirmQuit(ModalScreen[bool]):
    """Asks before quitting early; dismissed with True to quit."""

    BINDINGS = [Binding("y", "dismiss(True)", "Quit"), Binding("n,escape", "dismiss(False)", "Keep going")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield Static(Text("Quit the mock exam? It is not recorded; you see how you did on the "
                              "questions you answered, nothing else.", style="bold"))
            with Horizontal():
                yield Button("Quit (y)", id="yes", variant="error")
                yield Button("Keep going (n)", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


def _domain_table(result: ExamResult, spec: Exam) -> Table:
    table = Table(title="Score by domain", title_justify="left")
    for column in ("Domain", "Weight", "Correct", "Asked", "Score", ""):
        table.add_column(column, justify="left" if column in ("Domain", "") else "right")
    for domain in spec.domains:
        right, asked = result.by_domain.get(domain.id, [0, 0])
        weight = f"~{domain.weight:g}%" if domain.weight_estimate else f"{domain.weight:g}%"
        if not asked:
            table.add_row(f"{domain.id} {domain.name}", weight, "-", "0", "-", "")
            continue
        verdict = Text("weak", style="bold red") if right / asked < WEAK_BELOW else Text("ok", style="green")
        table.add_row(f"{domain.id} {domain.name}", weight, str(right), str(asked),
                      f"{100 * right / asked:.0f}%", verdict)
    return table


def _review_of(number: int, outcome: Outcome) -> Group:
    """A missed question: its text, the learner's choice, the key and why each option is right or
    wrong."""
    shown, q = outcome.shown, outcome.shown.question
    head = Text(f"Question {number} · {q.id} · {q.difficulty}", style="bold")
    lines: list[RenderableType] = [head, Text(q.stem.strip())]
    choice = ", ".join(outcome.chosen) if outcome.chosen else "not answered"
    lines.append(Text(f"Your choice: {choice} · Key: {', '.join(shown.correct)}", style="bold"))
    for letter in shown.letters:
        original = shown.to_original(letter)
        keyed = letter in shown.correct
        mark = "✓" if keyed else ("✗" if letter in outcome.chosen else " ")
        line = Text(f" {mark} {letter}. {shown.option_text(letter)}", style="green" if keyed else "")
        why = q.explanation if keyed else q.distractors[original]
        lines += [line, Padding(Text(why.strip(), style="dim"), (0, 0, 0, 5))]
    lines.append(Text(f"Read more: {q.reference}", style="dim italic"))
    return Group(*lines, Text(""))


class ResultsScreen(Screen[None]):
    """Score, score by domain, weak domains, whether it was saved, and every missed question."""

    BINDINGS = [Binding("q,escape", "app.leave", "Close")]

    def __init__(self, state: ExamState, spec: Exam, saved: str) -> None:
        super().__init__()
        self.state, self.spec, self.saved = state, spec, saved

    def compose(self) -> ComposeResult:
        state, result = self.state, self.state.result
        assert result is not None
        with VerticalScroll(id="results"):
            yield Static(Text(f"{self.spec.title}: mock exam results", style="bold underline"))
            if state.stopped:
                head = (f"Stopped early: {result.score} right of the {result.total} you answered "
                        f"({state.total} in the exam).")
            else:
                pct = 100 * result.score / result.total
                head = f"Score: {result.score}/{result.total} ({pct:.0f}%)"
                if result.timed_out:
                    head = "Time is up — the exam was submitted. " + head
            yield Static(Text(head, style="bold"), id="score")
            if not state.stopped:
                yield Static(Text("Databricks publishes no fixed pass mark; aim well above 70% here."))
            if result.unanswered and not state.stopped:
                yield Static(Text(f"{result.unanswered} question(s) unanswered, counted as wrong."))
            yield Static(_domain_table(result, self.spec), id="domains")
            if self.spec.weight_note:
                yield Static(Text("~ " + self.spec.weight_note, style="dim"))
            weak = weak_domains(result)
            if weak:
                names = {d.id: d.name for d in self.spec.domains}
                yield Static(Text("Weak domains to revisit: " + "; ".join(f"{d} {names[d]}" for d in weak),
                                  style="bold"), id="weak")
            yield Static(Text(self.saved, style="dim"), id="saved")
            position = {id(shown): i for i, shown in enumerate(state.plan.shown)}
            missed = [o for o in result.outcomes if not o.correct]
            yield Static(Text(f"Missed questions: {len(missed) or 'none'}", style="bold"))
            for outcome in missed:
                yield Static(_review_of(position[id(outcome.shown)] + 1, outcome), classes="missed")
        yield Footer()


class MockExamApp(App[ExamResult | None]):
    """The mock exam: :class:`ExamScreen`, then :class:`ReviewScreen` as often as wanted, then
    :class:`ResultsScreen`. Exits with the result, or None when closed before it was submitted.

    After submitting (not after quitting), the result and the answered questions' results (for the
    answer history) are recorded with :func:`~medilake_lab.course.progress.record_exam` when
    ``record`` is set: as practice when ``practice``; a progress file that cannot be written is kept
    in :attr:`save_error`.
    """

    CSS = """
    #top { height: 1; }
    #where { width: 1fr; }
    #clock { width: auto; }
    #note { color: $text-muted; }
    #palette, .jumps { grid-size: 15; height: auto; margin-top: 1; }
    #legend { margin-bottom: 1; }
    .cell { width: 1fr; min-width: 4; }
    .cell.unseen { text-style: dim; }
    .cell.answered { background: $success-darken-2; }
    .cell.flagged { background: $warning-darken-2; }
    .cell.current { text-style: bold reverse; }
    #stem { margin-bottom: 1; }
    .option { padding: 0 1; margin-bottom: 1; }
    .option:hover { background: $boost; }
    .option.picked { background: $primary-darken-2; }
    #message { height: 1; }
    #actions { height: auto; margin-top: 1; }
    #actions Button { margin-right: 2; }
    .missed { margin-top: 1; }
    ConfirmQuit { align: center middle; }
    #dialog { width: 60; height: auto; max-height: 12; border: thick $error; padding: 1 2; }
    #dialog Horizontal { height: auto; margin-top: 1; }
    """
    BINDINGS = [Binding("ctrl+q", "request_quit", "Quit", priority=True)]
    ENABLE_COMMAND_PALETTE = False

    def __init__(self, state: ExamState, spec: Exam, *, record: bool = True, practice: bool = False,
                 progress_state: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        self.state, self.spec = state, spec
        self.record, self.practice, self.progress_state = record, practice, progress_state
        self.save_error: ProgressFileError | None = None

    def on_mount(self) -> None:
        note = f"{self.state.total} questions · {self.state.minutes:g} minutes"
        if self.practice:
            note += " · shorter than the real exam: recorded as practice"
        if self.spec.weight_note:
            note += " · domain weights are estimates (see the results)"
        heading = f"{self.state.plan.exam.title()} mock exam"
        self.push_screen(ExamScreen(self.state, heading, note))
        self.set_interval(TICK_SECONDS, self.tick)

    def tick(self) -> None:
        """Redraw the countdown; submit the exam when time is up."""
        if self.state.poll() is not None:
            self._finish()
        elif self.state.result is None:
            for clock in self.screen.query("#clock").results(Static):
                clock.update(clock_text(self.state.deadline))

    def action_submit(self) -> None:
        """Submit the exam (from the review screen)."""
        self.state.submit()
        self._finish()

    def action_request_quit(self) -> None:
        """Quit: after the results, at once; during the exam, after confirmation (not recorded)."""
        if self.state.result is not None:
            self.action_leave()
        elif not isinstance(self.screen, ConfirmQuit):
            self.push_screen(ConfirmQuit(), self._quit_confirmed)

    def _quit_confirmed(self, quit_: bool | None) -> None:
        if quit_ and self.state.result is None:
            self.state.stop()
            self._finish()

    def action_leave(self) -> None:
        """Close the app with the result."""
        self.exit(self.state.result)

    def _finish(self) -> None:
        result = self.state.result
        assert result is not None
        if self.state.stopped:
            saved = "Stopped early: nothing recorded."
        elif not self.record:
            saved = "Not recorded (record=False)."
        else:
            try:
                progress.record_exam(result.exam, result.score, result.total, result.by_domain,
                                     state=self.progress_state, practice=self.practice,
                                     answers=answered(result.outcomes))
                kind = "practice (shorter than the real exam)" if self.practice else "an exam attempt"
                saved = f"Recorded as {kind} in {progress.progress_file(self.progress_state)}."
            except ProgressFileError as exc:
                self.save_error = exc
                saved = f"Not saved: {exc}"
        while len(self.screen_stack) > 2:  # the default screen and the exam screen stay
            self.pop_screen()
        self.switch_screen(ResultsScreen(self.state, self.spec, saved))


def run_exam_tui(exam: str, bank_dir: str | os.PathLike[str] | None = None,
                 minutes: float | None = None, shuffle_seed: int | None = None,
                 count: int | None = None, state: str | os.PathLike[str] | None = None,
                 record: bool = True, console: Console | None = None) -> ExamResult | None:
    """Run the full-screen mock exam in this terminal, then print a one-line summary.

    Parameters are those of :func:`medilake_lab.quiz.terminal.run_exam`. A mock with fewer
    questions (``count``) or fewer ``minutes`` than the real exam is recorded as practice.

    Returns
    -------
    ExamResult or None
        None when the app was closed before the exam was submitted or stopped.

    Raises
    ------
    QuizUsageError
        Unknown exam name.
    QuizFormatError
        A bank or the catalogue file is broken.
    ProgressFileError
        The result (shown on the results screen) could not be saved.
    """
    name = check_exam(exam)
    questions, catalogue = load_bank(bank_dir)
    spec = catalogue.exams[name]
    plan = build_exam(questions, catalogue, name, seed=shuffle_seed, count=count)
    limit = float(minutes) if minutes is not None else float(spec.minutes)
    if record:  # before the full screen: a progress file moved aside is said where it stays visible
        with contextlib.suppress(ProgressFileError):  # the results screen says why it is not saved
            progress.load(state)
    app = MockExamApp(ExamState(plan, limit), spec, record=record,
                      practice=is_practice(plan, limit, spec), progress_state=state)
    result = app.run()
    if result is not None:
        out = console or Console()
        what = ("stopped early, not recorded" if app.state.stopped
                else "recorded as practice" if app.practice and record else "")
        out.print(f"[bold]{spec.title} mock exam[/]: {result.score}/{result.total}"
                  + (f" ({what})" if what else ""))
    if app.save_error is not None:
        app.save_error.add_note(f"Your score {result.score}/{result.total} was not saved."
                                if result else "The score was not saved.")
        raise app.save_error
    return result
