"""Errors raised by the quiz package (all derive from :class:`medilake_lab.errors.MediLakeError`)."""

from __future__ import annotations

from medilake_lab.errors import MediLakeError

#: Shown when a notebook asks for the widget renderer without ipywidgets installed.
MISSING_IPYWIDGETS = (
    "The notebook quiz needs ipywidgets, which is not installed in this environment. "
    "Run `pip install ipywidgets` (or `pip install -e .` in the repo) and restart the kernel; "
    "the terminal quiz works without it: `medilake_lab quiz {lab}`."
)


class QuizFormatError(MediLakeError, ValueError):
    """A bank or catalogue file breaks the schema.

    Attributes
    ----------
    file : str
        The YAML file that holds the problem.
    question_id : str | None
        The question's ``id`` (None for file-level problems such as a wrong format version).
    field : str | None
        The offending field, dotted for nested fields (e.g. ``distractors.C``).
    problem : str
        What is wrong, in one sentence.
    """

    def __init__(self, file: str, problem: str, question_id: str | None = None,
                 field: str | None = None) -> None:
        self.file = str(file)
        self.question_id = question_id
        self.field = field
        self.problem = problem
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file
        if self.question_id is not None:
            where += f", question {self.question_id!r}"
        if self.field is not None:
            where += f", field {self.field!r}"
        return f"{where}: {self.problem}"


class QuizUsageError(MediLakeError, ValueError):
    """The caller asked for something that does not exist (unknown lab, unknown exam)."""


class WidgetUnavailableError(MediLakeError, ImportError):
    """ipywidgets is not installed; the message names the ``pip install`` to run."""
