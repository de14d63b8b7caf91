"""CLI wiring: ``medilake_lab quiz NN`` and ``medilake_lab exam associate|professional``.

``medilake_lab/cli.py`` calls :func:`register` on its typer app, which maps the kit errors these
commands raise (see :mod:`medilake_lab.errors`). Exit codes: 0 when the session ran (and its
score was saved), 1 when a bank file is broken or the score could not be saved (the progress
file cannot be read or written), 2 on a usage error (unknown lab or exam).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


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
    ) -> None:
        """Timed mock exam drawn by domain weight, with a per-domain score table."""
        from medilake_lab.quiz.terminal import run_exam

        run_exam(which, bank_dir=bank_dir, minutes=minutes, shuffle_seed=seed)
