"""Certification quizzes: YAML banks tied to the exam guides, a terminal and a notebook renderer.

Public API::

    from medilake_lab.quiz import load_bank, run_quiz, run_exam, show_quiz

    questions, catalogue = load_bank()           # <project root>/quizzes
    run_quiz("01")                               # terminal quiz for lab 01
    run_exam("associate", minutes=30)            # timed mock exam
    show_quiz("02")                              # in a notebook (needs ipywidgets)
"""

from __future__ import annotations

from medilake_lab.quiz.errors import QuizFormatError, QuizUsageError, WidgetUnavailableError
from medilake_lab.quiz.loader import LoadedBank, load_bank, load_catalogue
from medilake_lab.quiz.model import FORMAT_VERSION, Catalogue, Objective, Question
from medilake_lab.quiz.session import build_exam, build_quiz
from medilake_lab.quiz.terminal import ExamResult, QuizResult, run_exam, run_quiz
from medilake_lab.quiz.widget import show_quiz

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
