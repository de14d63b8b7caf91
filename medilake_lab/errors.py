"""Every exception the kit raises on purpose: one root, one module, each class with its exit code.

The command line (:mod:`medilake_lab.cli`) handles them in one place: the message in red on
stderr, no traceback, and the process exits with the class's ``exit_code``:

* **2**, usage errors (:class:`UsageError` and its subclasses): the caller asked for something
  that does not exist or passed a bad argument (an unknown lab, check, quiz or exam; a warehouse
  that is not a folder; a data folder without raw feeds);
* **1**, failures (every other class): the machine is not set up, raw data or a progress file
  cannot be read, a notebook raised, a question bank is broken.

Any other exception escaping a command is a bug and keeps its traceback. Grader errors raised
inside a check never reach the command line: the check runner turns them into a FAIL whose
finding is the message. ``tests/test_errors.py`` keeps this true: every exception class of the
package is defined here and derives from :class:`MediLakeError`.
"""

from __future__ import annotations

import os
import shlex
from typing import ClassVar

EXIT_FAILURE = 1
EXIT_USAGE = 2


class MediLakeError(Exception):
    """Root of every error this package raises on purpose; ``exit_code`` is the CLI's status (1)."""

    exit_code: ClassVar[int] = EXIT_FAILURE


# --------------------------------------------------------------------------- usage errors (exit 2)

class UsageError(MediLakeError):
    """The caller asked for something that does not exist or passed a bad argument (exit 2)."""

    exit_code = EXIT_USAGE


class LabNotFoundError(UsageError, ValueError):
    """An unknown lab id was asked for (e.g. ``check 09``)."""


class CheckNotFoundError(UsageError, LookupError):
    """A lab has no check of that id (e.g. ``hint 01 no_such_check``); the message lists its checks."""


class QuizUsageError(UsageError, ValueError):
    """The caller asked for a quiz or exam that does not exist (unknown lab, unknown exam)."""


class ScaleError(UsageError, ValueError):
    """A data-generation scale that is not a finite number in the allowed range (the message
    gives the range and what one scale unit costs)."""


class AnswerError(UsageError, ValueError):
    """What the learner typed is not a valid answer; the message says what is expected (the
    terminal quiz shows it and asks again)."""


# ------------------------------------------------------------------------------ failures (exit 1)

class SetupError(MediLakeError):
    """The machine is not ready: Java missing or too old, Delta jars not resolved."""


class WidgetUnavailableError(SetupError, ImportError):
    """ipywidgets is not installed; the message names the ``pip install`` to run."""


class DataError(MediLakeError):
    """Raw data missing or unreadable; the message names the file."""


class SyntheaFormatError(DataError):
    """A Synthea export that cannot be converted. The message names the file, and where one row
    is at fault also its line number and column."""


class NotebookError(MediLakeError):
    """A notebook failed to execute or has unbalanced solution markers (names the file/cell)."""


class TodoNotImplementedError(MediLakeError, NotImplementedError):
    """A learner notebook ran a TODO the learner has not written yet: the stub that
    ``medilake_lab dev build-labs`` puts in place of a solution raises it
    (:func:`medilake_lab.course.todo.todo`). The message names the lab, the section and
    ``medilake_lab hint NN``; ``lab``, ``section`` and ``grade`` (a one-line grade summary, or "")
    are attributes too. In a notebook it shows as a few lines of guidance instead of a traceback
    (IPython calls ``_render_traceback_``)."""

    def __init__(self, lab: str, section: str = "", grade: str = "") -> None:
        where = f'section "{section}"' if section else "this cell"
        super().__init__(f"TODO in lab {lab}, {where}: write your code in place of the TODO lines "
                         f"(a hint: `medilake_lab hint {lab}`)")
        self.lab, self.section, self.grade = lab, section, grade

    def _render_traceback_(self) -> list[str]:
        """IPython's hook: the guidance shown in the cell's output, one line per item."""
        where = f'section "{self.section}"' if self.section else "this cell"
        lines = [f"\x1b[1;33mTODO — lab {self.lab}, {where}: your next step is in this cell.\x1b[0m",
                 "  Replace the TODO lines with your code, run this cell again, then the cells below it.",
                 f"  A hint: `medilake_lab hint {self.lab}` in a terminal (in JupyterLab: File › New › "
                 "Terminal); each run tells a little more.",
                 "  Your grade: the \"Your grade\" cell near the end of this notebook, or "
                 f"`medilake_lab check {self.lab}`."]
        if self.grade:
            lines.append(f"  Now: {self.grade}")
        return lines


class PipelineError(MediLakeError):
    """A declarative pipeline run (``medilake_lab pipeline``) failed: the message names the
    pipeline, the failed flows, the error and the run's log file (``pipeline``, ``action``,
    ``log``, ``summary``: the same, as attributes)."""

    def __init__(self, pipeline: str, action: str, log: object, summary: str) -> None:
        super().__init__(f"pipeline {pipeline!r} {action} failed: {summary}. Full output: {log}")
        self.pipeline, self.action, self.log, self.summary = pipeline, action, log, summary


class WarehouseError(MediLakeError):
    """Tables could not be set aside or put back (``catchup``); names the table or folder, the
    warehouse and the backup folder that keeps what was not restored."""


class ProgressFileError(MediLakeError):
    """The learner's progress file cannot be read or written. The file is left as it is.

    Attributes
    ----------
    path : str
        The progress file (``<state>/progress.json``).
    problem : str
        What is wrong, e.g. ``"is not valid JSON (…)"``.
    fix : str
        What to do, e.g. the ``mv`` command that moves it aside.
    """

    def __init__(self, path: str | os.PathLike[str], problem: str, fix: str | None = None) -> None:
        self.path, self.problem = str(path), problem
        self.fix = fix if fix is not None else (
            "Move it aside (or delete it) and the kit starts a fresh one: "
            f"`mv {shlex.quote(self.path)} {shlex.quote(self.path + '.bak')}`")
        super().__init__(f"progress file {self.path} {problem}. {self.fix}")


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


# --------------------------------------------------------------------------------- grader errors
# Raised while grading; the check runner turns each into a FAIL whose finding is the message.

class TableMissingError(MediLakeError):
    """A table directory does not exist or holds no Delta log (``name``: ``schema.table``,
    ``path``: the directory looked at)."""

    def __init__(self, name: str, path: object) -> None:
        super().__init__(f"{name}: no Delta table at {path}")
        self.name, self.path = name, path


class DamagedTableError(MediLakeError):
    """A table is there but cannot be trusted: its latest commit is empty, cut short or unreadable,
    a data file its log lists is missing, or its folder has no Delta log.

    Attributes
    ----------
    name : str
        The table, ``schema.table``.
    file : str
        The damaged file or folder (a commit JSON, a Parquet data file, the table folder).
    problem : str
        What is wrong with it, e.g. ``"is empty (0 bytes)"``.
    fix : str | None
        What to do (the grader sets it from the lab list, e.g. ``medilake_lab reset 02`` …).
    """

    def __init__(self, name: str, file: object, problem: str, fix: str | None = None) -> None:
        self.name, self.file, self.problem, self.fix = name, str(file), problem, fix
        super().__init__(str(self))

    #: How later checks refer to the table after the first one described it ("<name> is damaged (see …)").
    state = "is damaged"

    def __str__(self) -> str:
        fix = f" — fix: {self.fix}" if self.fix else ""
        return f"{self.name} is damaged: {self.file} {self.problem}{fix}"


class UnreadableTableError(DamagedTableError):
    """A sound table whose protocol needs a reader feature the grader's reader (delta-rs) does not
    support, e.g. deletion vectors (``feature``: the feature's name, ``words``: it in a finding,
    ``fix``: how to make the table readable). Handled like a damaged table: described once, in
    full, by the first check that needs it."""

    state = "cannot be read by the grader"

    def __init__(self, name: str, file: object, feature: str, words: str, fix: str) -> None:
        self.feature, self.words = feature, words
        super().__init__(name, file, f"needs reader feature {feature}", fix)

    def __str__(self) -> str:
        return f"{self.name} uses {self.words}, which the grader's reader (delta-rs) cannot read: {self.fix}"


class MissingTables(MediLakeError):
    """Tables a check needs are missing: the message names them and how to build them
    (``names``: the missing ``schema.table`` names, ``hint``: e.g. "run lab 02 (or …)")."""

    def __init__(self, names: list[str], hint: str) -> None:
        super().__init__(f"missing Delta table(s): {', '.join(names)} — {hint}")
        self.names, self.hint = names, hint


class ColumnsMissing(MediLakeError):
    """A table lacks columns a check needs (the message names the table and the columns)."""


class SilverInputError(MediLakeError):
    """A silver table lab 04 reads is missing, lacks a column or is empty (the message says which)."""


class EventLogError(MediLakeError):
    """A declarative pipeline's event log is missing, or an event's details or the pipeline spec
    cannot be read (the message names the table, event or file and what is wrong)."""


class CheckpointError(MediLakeError):
    """A Structured Streaming checkpoint file is missing or cannot be read (``path``: the file,
    ``problem``: what is wrong, e.g. ``"is not JSON (…)"``); the message names both."""

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"checkpoint file {path} {problem}")
        self.path, self.problem = path, problem
