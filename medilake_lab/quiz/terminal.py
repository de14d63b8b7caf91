"""Terminal renderer (rich): lab quizzes with feedback, and timed mock exams.

Input comes from an injectable ``input_fn`` (default :func:`input`), so tests and scripts can
drive a session with answers such as ``"A"`` or ``"A,C"``; ``q`` ends the session early.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from medilake_lab.course import progress
from medilake_lab.errors import ProgressFileError
from medilake_lab.quiz.loader import load_bank
from medilake_lab.quiz.session import (
    WEAK_BELOW,
    AnswerError,
    Deadline,
    ExamPlan,
    Outcome,
    ShownQuestion,
    Tally,
    answered,
    build_exam,
    build_quiz,
    check_exam,
    grade,
    is_partial_quiz,
    is_practice,
    normalise_lab,
    parse_answer,
)

QUIT_WORDS = {"q", "quit", "exit"}

InputFn = Callable[[str], str]


@dataclass(frozen=True)
class QuizResult:
    """Result of :func:`run_quiz`: ``score`` correct out of ``total`` asked."""

    lab: str
    score: int
    total: int
    outcomes: list[Outcome]


@dataclass(frozen=True)
class ExamResult:
    """Result of :func:`run_exam`.

    Attributes
    ----------
    by_domain : dict[str, list[int]]
        Domain id → ``[correct, asked]``.
    timed_out : bool
        The time limit ran out before every question was answered.
    unanswered : int
        Questions not answered in time (each counts as wrong) or left when quitting early (those
        are not in ``total``: a stopped exam is scored on the questions answered).
    """

    exam: str
    score: int
    total: int
    by_domain: dict[str, list[int]]
    timed_out: bool
    unanswered: int
    outcomes: list[Outcome]


def _render_question(console: Console, shown: ShownQuestion, number: int, total: int,
                     clock_label: str | None = None) -> None:
    q = shown.question
    head = f"Question {number}/{total}"
    if clock_label is None:
        head += f" · {q.id} · {q.difficulty}"
    else:  # a mock exam, like the real one, hides ids and difficulty
        head += f" · time left {clock_label}"
    body = Text(q.stem.strip() + "\n")
    if shown.choose > 1 and "(choose" not in q.stem.lower():
        body.append(f"(Choose {shown.choose}.)\n", style="bold")
    for letter in shown.letters:
        body.append(f"\n{letter}. ", style="bold cyan")
        body.append(shown.option_text(letter))
    console.print(Panel(body, title=head, title_align="left"))


def _ask(console: Console, shown: ShownQuestion, input_fn: InputFn) -> tuple[str, ...] | None:
    """Prompt until a valid answer; None when the learner quits or input ends."""
    prompt = ("Your answer (one letter" if shown.choose == 1
              else f"Your answer ({shown.choose} letters, e.g. A,C") + ", q to stop): "
    while True:
        try:
            raw = input_fn(prompt)
        except EOFError:
            return None
        if raw.strip().lower() in QUIT_WORDS:
            return None
        try:
            return parse_answer(raw, shown)
        except AnswerError as exc:
            console.print(f"[yellow]{exc}[/]")


def _render_feedback(console: Console, outcome: Outcome) -> None:
    shown, q = outcome.shown, outcome.shown.question
    right = ", ".join(shown.correct)
    if outcome.correct:
        console.print(f"[bold green]Correct[/] ({right}).")
    else:
        console.print(f"[bold red]Not quite[/]: the answer is {right}.")
    console.print(Text("Why: ", style="bold").append(q.explanation.strip(), style=""))
    for letter in outcome.wrong_choices:
        reason = q.distractors[shown.to_original(letter)]
        console.print(Text(f"Why {letter} is wrong: ", style="bold").append(reason.strip(),
                                                                            style=""))
    console.print(Text(f"Read more: {q.reference}", style="dim"))
    console.print()


@contextmanager
def _not_saved(score: str) -> Iterator[None]:
    """Let a :class:`ProgressFileError` through with a note that ``score`` (shown) was not saved."""
    try:
        yield
    except ProgressFileError as exc:
        exc.add_note(f"Your score {score} (shown above) was not saved.")
        raise


def run_quiz(lab: str, bank_dir: str | os.PathLike[str] | None = None,
             shuffle_seed: int | None = None, input_fn: InputFn = input,
             console: Console | None = None, count: int | None = None,
             state: str | os.PathLike[str] | None = None, record: bool = True) -> QuizResult:
    """Run a lab quiz interactively in the terminal and save the score.

    Parameters
    ----------
    lab : str
        A lab id from ``labs.yaml`` (``"1"`` works for ``"01"``) or ``"dbx"`` for the Databricks-only questions.
    bank_dir : str, PathLike or None
        Bank folder; default ``<project root>/quizzes``.
    shuffle_seed : int or None
        Fix the question and option order (None: a fresh shuffle each run).
    input_fn : callable
        Reads one answer given a prompt, like :func:`input`.
    console : rich.console.Console or None
        Where to print; default a new console on stdout.
    count : int or None
        Ask only this many of the lab's questions (random subset).
    state : str, PathLike or None
        Learner-state folder for the progress file (default: ``$MEDILAKE_STATE`` or
        ``<root>/.medilake``).
    record : bool
        Save the score and each answer's result with :func:`medilake_lab.course.progress.record_quiz`
        (as practice when ``count`` leaves questions out); a quiz stopped early saves only its
        answers (:func:`~medilake_lab.course.progress.record_answers`), never a score.

    Returns
    -------
    QuizResult
        Score out of the number of questions in the quiz; questions left when the learner
        quits count as wrong.

    Raises
    ------
    QuizUsageError
        No questions for that lab.
    QuizFormatError
        A bank file is broken.
    ProgressFileError
        The score (already printed) could not be saved: the progress file is unreadable or not
        writable; the file is left as it is.
    """
    out = console or Console()
    questions, _ = load_bank(bank_dir)
    lab_id = normalise_lab(lab)
    shown_all = build_quiz(questions, lab_id, seed=shuffle_seed, count=count)
    practice = is_partial_quiz(questions, lab_id, shown_all)
    out.print(f"[bold]Lab {lab_id} quiz[/]: {len(shown_all)} questions"
              + (" (part of the lab's quiz: recorded as practice)" if practice else "")
              + ". Type the letter(s) of your answer; q stops.\n")
    tally = _ask_all(out, shown_all, input_fn)
    unanswered = len(shown_all) - tally.total
    total = len(shown_all)
    pct = 100 * tally.score / total if total else 0.0
    out.print(f"[bold]Score: {tally.score}/{total}[/] ({pct:.0f}%)")
    if not record:
        return QuizResult(lab_id, tally.score, total, tally.outcomes)
    with _not_saved(f"{tally.score}/{total}"):
        if unanswered:  # stopped early: the answers checked count, the score does not
            progress.record_answers(answered(tally.outcomes), state=state)
        else:
            progress.record_quiz(lab_id, tally.score, total, state=state,
                                 answers=answered(tally.outcomes), practice=practice)
    if unanswered:
        out.print(f"[yellow]Stopped early with {unanswered} unanswered question(s): score not saved[/] "
                  "(the answers you checked are in your history).")
    else:
        kind = "as practice (part of the quiz) " if practice else ""
        out.print(f"[dim]Saved {kind}to {progress.progress_file(state)}[/]")
    return QuizResult(lab_id, tally.score, total, tally.outcomes)


def _ask_all(out: Console, shown_all: list[ShownQuestion], input_fn: InputFn) -> Tally:
    """Ask each question with feedback after each answer, until the last one or the learner quits."""
    tally = Tally()
    for number, shown in enumerate(shown_all, start=1):
        _render_question(out, shown, number, len(shown_all))
        chosen = _ask(out, shown, input_fn)
        if chosen is None:
            break
        outcome = grade(shown, chosen)
        tally.add(outcome)
        _render_feedback(out, outcome)
    return tally


def run_missed(lab: str | None = None, bank_dir: str | os.PathLike[str] | None = None,
               shuffle_seed: int | None = None, input_fn: InputFn = input,
               console: Console | None = None, count: int | None = None,
               state: str | os.PathLike[str] | None = None) -> QuizResult:
    """Replay the questions last answered wrong (:func:`medilake_lab.quiz.history.build_missed`):
    each answer goes to the history, and a question answered right twice in a row leaves the queue.
    No quiz score is saved.

    Parameters
    ----------
    lab : str or None
        Only that lab's queued questions (``"01"``…, ``"dbx"``); None: every queued question.
    bank_dir, shuffle_seed, input_fn, console, count, state
        As for :func:`run_quiz`.

    Returns
    -------
    QuizResult
        ``lab`` is ``"missed"``; score over the questions asked (0/0 when none is queued).

    Raises
    ------
    QuizUsageError
        ``lab`` has no questions.
    QuizFormatError
        A bank file is broken.
    ProgressFileError
        The progress file cannot be read, or the answers (already shown) cannot be saved.
    """
    from medilake_lab.quiz.history import LEAVES_QUEUE_AFTER, build_missed

    out = console or Console()
    questions, _ = load_bank(bank_dir)
    queue = build_missed(questions, progress.load(state)["history"], lab=lab, seed=shuffle_seed)
    shown_all = queue[:count]
    where = f" from lab {normalise_lab(lab)}" if lab else ""
    if not shown_all:
        out.print(f"[green]No missed questions queued{where}[/]: every question you answered wrong has "
                  f"since been answered right {LEAVES_QUEUE_AFTER} times in a row, or none was wrong. "
                  "Try a lab quiz (`medilake_lab quiz 01`) or a mock exam (`medilake_lab exam associate`).")
        return QuizResult("missed", 0, 0, [])
    asking = f"; asking {len(shown_all)}" if len(shown_all) < len(queue) else ""
    out.print(f"[bold]Missed questions[/]: {len(queue)} queued{where}{asking}. A question leaves the queue "
              f"once answered right {LEAVES_QUEUE_AFTER} times in a row. Type the letter(s); q stops.\n")
    tally = _ask_all(out, shown_all, input_fn)
    out.print(f"[bold]Score: {tally.score}/{tally.total}[/] on the replayed questions.")
    with _not_saved(f"{tally.score}/{tally.total}"):
        progress.record_answers(answered(tally.outcomes), state=state)
    left = len(build_missed(questions, progress.load(state)["history"], lab=lab))
    out.print(f"[dim]{left} question(s) still queued; history saved to {progress.progress_file(state)}[/]")
    return QuizResult("missed", tally.score, tally.total, tally.outcomes)


def _render_exam_intro(console: Console, plan: ExamPlan, minutes: float, title: str,
                       weight_note: str | None = None) -> None:
    console.print(f"[bold]{title}: mock exam[/] — {len(plan.shown)} questions, "
                  f"{minutes:g} minutes. Answers are not revealed until the end.")
    if weight_note:
        console.print(f"[dim]{weight_note}[/]")
    if plan.short:
        console.print(f"[yellow]The bank holds only {len(plan.shown)} eligible questions, "
                      f"fewer than the exam's {plan.target}; all of them are used.[/]")
    console.print("[dim]Unanswered questions when time runs out count as wrong; an answer "
                  "typed after the limit does not count.[/]\n")


def _render_domain_table(console: Console, result: ExamResult, plan: ExamPlan,
                         names: dict[str, str], weights: dict[str, float]) -> None:
    table = Table(title="Score by domain", show_lines=False)
    for col, justify in (("Domain", "left"), ("Weight", "right"), ("Correct", "right"),
                         ("Asked", "right"), ("Score", "right"), ("", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for domain_id, name in names.items():
        correct, asked = result.by_domain.get(domain_id, [0, 0])
        if asked == 0:
            table.add_row(f"{domain_id} {name}", f"{weights[domain_id]:g}%", "-", "0", "-",
                          "[dim]no questions in bank[/]" if plan.available[domain_id] == 0
                          else "")
            continue
        ratio = correct / asked
        flag = "[bold red]weak[/]" if ratio < WEAK_BELOW else "[green]ok[/]"
        table.add_row(f"{domain_id} {name}", f"{weights[domain_id]:g}%", str(correct),
                      str(asked), f"{100 * ratio:.0f}%", flag)
    console.print(table)


def run_exam(exam: str, bank_dir: str | os.PathLike[str] | None = None,
             minutes: float | None = None, shuffle_seed: int | None = None,
             input_fn: InputFn = input, console: Console | None = None,
             clock: Callable[[], float] = time.monotonic, count: int | None = None,
             state: str | os.PathLike[str] | None = None, record: bool = True) -> ExamResult:
    """Run a timed mock exam drawn by domain weight, then show a per-domain score table.

    Parameters
    ----------
    exam : str
        ``"associate"`` (45 questions, 90 minutes) or ``"professional"`` (60, 120).
    bank_dir : str, PathLike or None
        Bank folder; default ``<project root>/quizzes``.
    minutes : float or None
        Time limit override; default the exam's own limit from the catalogue.
    shuffle_seed : int or None
        Fix the draw and the option order.
    input_fn : callable
        Reads one answer given a prompt, like :func:`input`.
    console : rich.console.Console or None
        Where to print.
    clock : callable
        Monotonic seconds; injectable so tests can expire the timer.
    count : int or None
        Draw this many questions instead of the exam's count (still by domain weight).
    state : str, PathLike or None
        Learner-state folder for the progress file.
    record : bool
        Save the result with :func:`medilake_lab.course.progress.record_exam`; an exam quit early with
        questions unanswered is never saved (one that ran out of time is: that is an attempt); one
        with fewer questions (``count``) or ``minutes`` than the real exam is saved as practice. The
        questions answered in time go to the answer history in the same write.

    Returns
    -------
    ExamResult
        Score over every drawn question: questions not answered before the limit count as
        wrong; after quitting early, score over the questions answered (``unanswered``: the
        rest). The limit is checked before each question and when each answer arrives, since a
        terminal prompt cannot be interrupted mid-typing.

    Raises
    ------
    QuizUsageError
        Unknown exam name.
    QuizFormatError
        A bank or the catalogue file is broken.
    ProgressFileError
        The result (already printed) could not be saved; the progress file is left as it is.
    """
    out = console or Console()
    name = check_exam(exam)
    questions, catalogue = load_bank(bank_dir)
    spec = catalogue.exams[name]
    plan = build_exam(questions, catalogue, name, seed=shuffle_seed, count=count)
    limit = float(minutes) if minutes is not None else float(spec.minutes)
    _render_exam_intro(out, plan, limit, spec.title, spec.weight_note)
    deadline = Deadline(limit, clock)
    tally = Tally()
    for domain in spec.domains:
        tally.by_domain[domain.id] = [0, 0]
    timed_out = stopped = False
    for number, shown in enumerate(plan.shown, start=1):
        if deadline.expired():
            timed_out = True
            break
        _render_question(out, shown, number, len(plan.shown), deadline.label())
        chosen = _ask(out, shown, input_fn)
        if chosen is None:
            stopped = True
            break
        late = deadline.expired()
        tally.add(grade(shown, chosen, late=late))
        if late:
            timed_out = True
            out.print("[bold red]Time is up[/]: that answer came after the limit.")
            break
    answered_in_time = sum(1 for o in tally.outcomes if not o.late)
    unanswered = len(plan.shown) - answered_in_time
    if stopped:  # only the answered questions are scored: unseen ones say nothing, weaken no domain
        out.print(f"[yellow]Stopped early: the score below covers the {tally.total} question(s) "
                  "you answered.[/]")
    else:
        for shown in plan.shown[tally.total:]:
            tally.add(grade(shown, (), late=True))
    if timed_out:
        out.print(f"[bold red]Time is up.[/] {unanswered} question(s) not answered in time "
                  "count as wrong.")
    result = ExamResult(name, tally.score, tally.total, tally.by_domain, timed_out,
                        unanswered, tally.outcomes)
    names = {d.id: d.name for d in spec.domains}
    weights = {d.id: d.weight for d in spec.domains}
    out.print()
    _render_domain_table(out, result, plan, names, weights)
    total = result.total
    pct = 100 * result.score / total if total else 0.0
    out.print(f"[bold]Score: {result.score}/{total}[/] ({pct:.0f}%). Databricks publishes no "
              "fixed pass mark; aim well above 70% here.")
    weak = [f"{d} {names[d]}" for d, (c, a) in result.by_domain.items() if a and c / a < WEAK_BELOW]
    if weak:
        out.print("[bold]Weak domains to revisit:[/] " + "; ".join(weak))
    missed = [o for o in tally.outcomes if not o.correct]
    if missed:
        out.print("[bold]Review:[/]")
        for o in missed:
            q = o.shown.question
            mark = "unanswered" if o.late else f"you chose {','.join(o.chosen)}"
            out.print(f"  {q.id} ({mark}; answer {','.join(o.shown.correct)}) — {q.reference}")
    if stopped and unanswered:
        out.print("[yellow]Stopped early: result not saved[/] (a timed-out attempt is).")
    elif record:
        with _not_saved(f"{result.score}/{total}"):
            practice = is_practice(plan, limit, spec)
            progress.record_exam(name, result.score, total, result.by_domain, state=state, practice=practice,
                                 answers=answered(result.outcomes))
        kind = "as practice (shorter than the real exam) " if practice else ""
        out.print(f"[dim]Saved {kind}to {progress.progress_file(state)}[/]")
    return result

