"""CLI wiring: ``medilake_lab quiz NN``, ``medilake_lab quiz stats`` and ``medilake_lab exam associate|professional``.

``medilake_lab/cli.py`` calls :func:`register` on its typer app, which maps the kit errors these
commands raise (see :mod:`medilake_lab.errors`). Exit codes: 0 when the session ran (and its
score was saved, or the stats were printed), 1 when a bank file is broken or the score could not be saved (the progress
file cannot be read or written), 2 on a usage error (unknown lab or exam).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from medilake_lab.errors import QuizUsageError

#: The ``quiz`` argument that prints the bank's coverage figures instead of starting a quiz.
STATS = "stats"


def print_stats(bank_dir: Path | None = None) -> None:
    """Print the bank's coverage against the mock draw (:mod:`medilake_lab.quiz.coverage`): per exam
    and domain the questions in the bank, drawn per mock and their ratio, the expected overlap of two
    mocks, the bank size, the thin local/partial objectives, then one warning per threshold broken.

    Raises
    ------
    QuizFormatError
        A bank file or the catalogue is broken.
    """
    from rich.console import Console

    from medilake_lab.quiz.coverage import coverage_report
    from medilake_lab.quiz.loader import load_bank

    report = coverage_report(*load_bank(bank_dir))
    console = Console(highlight=False)
    for line in report.table():
        console.print(line, markup=False, soft_wrap=True)
    for warning in report.warnings():
        console.print(f"[yellow]![/] {warning}")


def print_study_status(console: Console, bank_dir: Path | None = None, recent: int = 10) -> None:
    """Print the ``status`` lines about quizzes: the last ``recent`` mock exams (date, exam, score,
    weakest domains; practice marked), the next domain to study with its lab or doc page
    (:func:`medilake_lab.quiz.history.next_domain`) and how many missed questions are queued.

    Raises
    ------
    ProgressFileError
        The progress file cannot be read.
    QuizFormatError
        A bank file or the catalogue is broken (only read once a mock exam was taken).
    """
    from rich.table import Table

    from medilake_lab.course import progress
    from medilake_lab.quiz.history import exam_history, missed_ids, next_domain

    data = progress.load()
    queued = len(missed_ids(data["history"]))
    if queued:
        console.print(f"[bold]missed questions:[/] {queued} queued for replay: "
                      "[bold]medilake_lab quiz --missed[/]")
    if not data["exams"] and not data.get("practice_exams"):
        console.print("[bold]mock exams:[/] none yet: [bold]medilake_lab exam associate[/] "
                      "(a shortened one counts as practice)")
        return
    from medilake_lab.quiz.loader import load_bank

    questions, catalogue = load_bank(bank_dir)
    rows = exam_history(data, catalogue)
    table = Table(title=f"Mock exams (latest {min(recent, len(rows))} of {len(rows)})",
                  title_justify="left")
    for column in ("date", "exam", "score", "weakest domains (< 70 %)"):
        table.add_column(column)
    for row in rows[-recent:]:
        pct = 100 * row.score / row.total if row.total else 0.0
        weak = "; ".join(f"{d} {name} {right}/{asked}" for d, name, right, asked in row.weakest)
        table.add_row(row.taken[:10], row.exam + (" [dim](practice)[/]" if row.practice else ""),
                      f"{row.score}/{row.total} ({pct:.0f}%)", escape(weak) or "[green]none[/]")
    console.print(table)
    tip = next_domain(data, questions, catalogue)
    if tip is None:
        return
    where = (f"lab {tip.lab.id} ({tip.lab.title}): labs/{tip.lab.notebook}, then "
             f"[bold]medilake_lab quiz {tip.lab.id}[/]" if tip.lab is not None
             else f"read {escape(tip.reference)}" if tip.reference else "no lab or question covers it yet")
    console.print(f"[bold]next domain to study:[/] {tip.domain.id} {escape(tip.domain.name)} "
                  f"({tip.right}/{tip.asked} right in your last {tip.exam} mock): {where}")


def register(app: typer.Typer) -> None:
    """Add the ``quiz`` and ``exam`` commands to a typer app.

    Parameters
    ----------
    app : typer.Typer
        The application to extend: the kit's ``medilake_lab`` CLI, whose root command turns the
        kit errors raised here into a message and an exit code.
    """

    @app.command("quiz")
    def quiz(
        lab: Annotated[str | None, typer.Argument(
            help="Lab id (01, 02, …; `medilake_lab status` lists them), dbx for the Databricks-only "
                 "questions, or stats for the bank's coverage against the mock-exam draw; optional "
                 "with --missed (then only that lab's missed questions).")] = None,
        bank_dir: Annotated[Path | None, typer.Option(
            "--bank-dir", help="Question-bank folder (default: <project root>/quizzes).")] = None,
        seed: Annotated[int | None, typer.Option(
            "--seed", help="Fix the question and option order.")] = None,
        count: Annotated[int | None, typer.Option(
            "--count", min=1, help="Ask only this many questions (recorded as practice).")] = None,
        missed: Annotated[bool, typer.Option(
            "--missed", help="Replay the questions you last answered wrong, until each is answered "
                             "right twice in a row.")] = False,
    ) -> None:
        """Certification-style quiz for a lab, with explanations after each answer (`quiz --missed`:
        replay what you got wrong; `quiz stats`: how many questions each exam domain holds against
        what a mock draws)."""
        if missed:
            from medilake_lab.quiz.terminal import run_missed

            run_missed(lab, bank_dir=bank_dir, shuffle_seed=seed, count=count)
            return
        if lab is None:
            raise QuizUsageError("name a lab (e.g. `medilake_lab quiz 01`), or replay your missed "
                                 "questions with `medilake_lab quiz --missed`")
        if lab.strip().lower() == STATS:
            print_stats(bank_dir)
            return
        from medilake_lab.quiz.terminal import run_quiz

        run_quiz(lab, bank_dir=bank_dir, shuffle_seed=seed, count=count)

    @app.command("exam")
    def exam(
        which: Annotated[str, typer.Argument(metavar="associate|professional",
                                             help="Which certification to simulate.")],
        minutes: Annotated[float | None, typer.Option(
            "--minutes", min=0.1,
            help="Time limit in minutes (default: 90 associate, 120 professional).")] = None,
        seed: Annotated[int | None, typer.Option(
            "--seed", help="Fix the draw and the option order.")] = None,
        bank_dir: Annotated[Path | None, typer.Option(
            "--bank-dir", help="Question-bank folder (default: <project root>/quizzes).")] = None,
        plain: Annotated[bool, typer.Option(
            "--plain", help="Line-based questions and answers (the default when stdin or stdout "
                            "is not a terminal) instead of the full-screen exam.")] = False,
    ) -> None:
        """Timed mock exam drawn by domain weight: full screen (skip, flag, go back, review before
        submitting, then every missed question explained); a shortened one counts as practice."""
        if not plain and sys.stdin.isatty() and sys.stdout.isatty():
            from medilake_lab.quiz.tui import run_exam_tui

            run_exam_tui(which, bank_dir=bank_dir, minutes=minutes, shuffle_seed=seed)
            return
        from medilake_lab.quiz.terminal import run_exam

        run_exam(which, bank_dir=bank_dir, minutes=minutes, shuffle_seed=seed)
