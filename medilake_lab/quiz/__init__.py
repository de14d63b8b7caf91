"""Certification quizzes: YAML banks tied to the exam guides, a terminal and a notebook renderer.

Public API::

    from medilake_lab.quiz import load_bank, run_quiz, run_exam, show_quiz

    questions, catalogue = load_bank()           # <project root>/quizzes
    run_quiz("01")                               # terminal quiz for lab 01
    run_exam("associate", minutes=30)            # timed mock exam
    show_quiz("02")                              # in a notebook (needs ipywidgets)
"""

from __future__ import annotations

import importlib

from medilake_lab.errors import QuizFormatError, QuizUsageError, WidgetUnavailableError

#: Public name → submodule. Loaded on first use (PEP 562), so that the CLI, which only
#: registers the quiz commands, does not pay pydantic's import (0.2 s) on every command.
_LAZY = {
    "LoadedBank": "loader", "load_bank": "loader", "load_catalogue": "loader",
    "FORMAT_VERSION": "model", "Catalogue": "model", "Objective": "model", "Question": "model",
    "build_exam": "session", "build_quiz": "session",
    "ExamResult": "terminal", "QuizResult": "terminal", "run_exam": "terminal",
    "run_quiz": "terminal",
    "show_quiz": "widget",
}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)


__all__ = [
    "FORMAT_VERSION",
    "Catalogue",
    "ExamResult",
    "LoadedBank",
    "Objective",
    "Question",
    "QuizFormatError",
    "QuizResult",
    "QuizUsageError",
    "WidgetUnavailableError",
    "build_exam",
    "build_quiz",
    "load_bank",
    "load_catalogue",
    "run_exam",
    "run_quiz",
    "show_quiz",
]
