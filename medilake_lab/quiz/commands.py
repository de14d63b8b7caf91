"""CLI wiring: ``medilake_lab quiz NN`` and ``medilake_lab exam associate|professional``.

``medilake_lab/cli.py`` calls :func:`register` on its typer app. Exit codes: 0 when the session
ran, 1 when a bank file is broken, 2 on a usage error (unknown lab or exam).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from medilake_lab.quiz.errors import QuizFormatError, QuizUsageError

EXIT_BROKEN_BANK = 1
EXIT_USAGE = 2


def _fail(message: str, code: int) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]Error:[/] {message}", highlight=False)
    return typer.Exit(code=code)


def register(app: typer.Typer) -> None:
    """Add the ``quiz`` and ``exam`` commands to a typer app.

    Parameters
    ----------
    app : typer.Typer
        The application to extend (the kit's ``medilake_lab`` CLI, or any test app).
    """

    @app.command("quiz")
    def quiz(
        lab: Annotated[str, typer.Argument(help="Lab id (01, 02, …; `medilake_lab status` lists "
                                           "them), or dbx for the Databricks-only questions.")],
        bank_dir: Annotated[Path | None, typer.Option(
            "--bank-dir", help="Question-bank folder (default: <project root>/quizzes).")] = None,
        seed: Annotated[int | None, typer.Option(
            "--seed", help="Fix the question and option order.")] = None,
        count: Annotated[int | None, typer.Option(
            "--count", min=1, help="Ask only this many questions.")] = None,
    ) -> None:
        """Certification-style quiz for a lab, with explanations after each answer."""
        from medilake_lab.quiz.terminal import run_quiz

        try:
            run_quiz(lab, bank_dir=bank_dir, shuffle_seed=seed, count=count)
        except QuizUsageError as exc:
            raise _fail(str(exc), EXIT_USAGE) from None
        except QuizFormatError as exc:
            raise _fail(str(exc), EXIT_BROKEN_BANK) from None

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
    ) -> None:
        """Timed mock exam drawn by domain weight, with a per-domain score table."""
        from medilake_lab.quiz.terminal import run_exam

        try:
            run_exam(which, bank_dir=bank_dir, minutes=minutes, shuffle_seed=seed)
        except QuizUsageError as exc:
            raise _fail(str(exc), EXIT_USAGE) from None
        except QuizFormatError as exc:
            raise _fail(str(exc), EXIT_BROKEN_BANK) from None
