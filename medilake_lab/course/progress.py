"""The learner's progress: one small human-readable JSON file in the state folder.

Shape of ``<state>/progress.json``::

    {"format_version": 1,
     "labs": {"01": {"passed": 7, "total": 7, "last_run": "2026-11-29T15:00:00+00:00"},
              "02": {"passed": 16, "total": 16, "last_run": "...", "by": "catchup"}},
     "quizzes": {"01": {"best": 18, "total": 20, "last": 15, "last_run": "..."}},
     "practice_quizzes": [{"lab": "01", "score": 3, "total": 5, "taken": "..."}],
     "exams": [{"exam": "associate", "score": 33, "total": 45, "taken": "...",
                "by_domain": {"...": [3, 4]}}],
     "practice_exams": [{"exam": "professional", "score": 4, "total": 10, "taken": "...",
                         "by_domain": {"...": [1, 2]}}],
     "history": {"L01-003": {"right": 2, "wrong": 1, "last_answered": "2026-11-29T15:02:11+00:00",
                             "last_result": "right", "streak": 2}}}

``exams`` holds full attempts only (the exam's own question count and time limit); a mock with
fewer questions or a shorter limit goes to ``practice_exams`` and never counts as an attempt.
Likewise ``quizzes`` holds whole lab quizzes only; a partial one (``--count``) goes to
``practice_quizzes`` and never becomes the best score.

``history`` maps a question id to how the learner fared with it wherever it was checked (lab quiz,
mock exam, notebook widget, replay of missed questions): times right and wrong, when last answered
(UTC ISO 8601), the last result, and ``streak``, the right answers in a row since the last wrong one
(the replay queue of :mod:`medilake_lab.quiz.history` uses it). Files written before it existed
load with an empty history.

A lab's optional ``"by": "catchup"`` marks a grade of tables built from the solution by
``medilake_lab catchup``; ``"hints"`` maps a check id to the hint level shown last; readers of
format 1 ignore keys they do not know.

A path that holds no such record (an empty file, not JSON, JSON of another shape, a folder) is
never overwritten nor erased: :func:`load` moves it aside to ``progress.json.unreadable-<UTC time>``
(``…-20261202T140000Z``), prints one line on stderr naming both paths, and starts a fresh record,
so every command carries on. Two cases still raise :class:`~medilake_lab.errors.ProgressFileError`
and leave the file where it is, because it probably holds a good record that a fresh one would
hide: a file of a newer ``format_version`` (upgrade the kit) and a file the OS will not let the kit
read (a permission to fix).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from medilake_lab.errors import ProgressFileError
from medilake_lab.runtime import config

if TYPE_CHECKING:
    from medilake_lab.grader.model import LabReport

FORMAT_VERSION = 1
FILE_NAME = "progress.json"


class _Record(BaseModel):
    """Strict (no ``"1"`` for 1) and open (unknown keys allowed, see the module docstring)."""

    model_config = ConfigDict(strict=True, extra="allow")


class _Grade(_Record):
    passed: int
    total: int
    last_run: str
    by: str | None = None


class _Quiz(_Record):
    best: int
    total: int
    last: int
    last_run: str


class _Exam(_Record):
    exam: str
    score: int
    total: int
    taken: str
    by_domain: dict[str, list[int]]


class _PracticeQuiz(_Record):
    lab: str
    score: int
    total: int
    taken: str


class _Answers(_Record):
    right: int
    wrong: int
    last_answered: str
    last_result: Literal["right", "wrong"]
    streak: int


class _Progress(_Record):
    format_version: int
    labs: dict[str, _Grade] = {}
    quizzes: dict[str, _Quiz] = {}
    practice_quizzes: list[_PracticeQuiz] = []
    exams: list[_Exam] = []
    practice_exams: list[_Exam] = []
    hints: dict[str, int] = {}
    history: dict[str, _Answers] = {}


def _json_kind(value: object) -> str:
    """How JSON calls what ``json.loads`` gave, e.g. ``"a list"``, ``"null"``."""
    kinds = {type(None): "null", bool: "true/false", int: "a number", float: "a number",
             str: "a string", list: "a list", dict: "an object"}
    return kinds.get(type(value), type(value).__name__)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _now_stamp() -> str:
    """The UTC time for a file name, e.g. ``20261202T140000Z``."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def progress_file(state: str | os.PathLike | None = None) -> Path:
    """Path of the progress file (``<state>/progress.json``)."""
    return config.state_dir(state) / FILE_NAME


def _empty() -> dict[str, Any]:
    return {"format_version": FORMAT_VERSION, "labs": {}, "quizzes": {}, "exams": [], "history": {}}


def _read(path: Path) -> str | dict[str, Any] | None:
    """Read ``path``: its record (a dict), None when there is no file, or what makes the path no
    progress record (``"is empty"``, ``"is a folder, not a file"``, …; the path is left as it is).

    Raises
    ------
    ProgressFileError: the file cannot be read (permission…) or is of a newer format version.
    """
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        return "is a folder, not a file"
    except OSError as exc:
        raise ProgressFileError(path, f"cannot be read ({exc.strerror or exc})",
                                fix="Make it readable, or set MEDILAKE_STATE to another "
                                    "folder") from None
    if not text.strip():
        return "is empty"
    try:
        data = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, or bytes that are no Unicode text
        return f"is not valid JSON ({exc})"
    if not isinstance(data, dict):
        return f"holds {_json_kind(data)}, not the JSON object of a MediLake progress file"
    version = data.get("format_version")
    if type(version) is int and version > FORMAT_VERSION:
        raise ProgressFileError(path, f"has format_version {version}, newer than this kit reads "
                                      f"({FORMAT_VERSION})",
                                fix="Upgrade medilake_lab to read it (`pip install -e .` in an "
                                    "updated checkout), or move it aside to start a fresh one: "
                                    f"`mv {shlex.quote(str(path))} {shlex.quote(str(path) + '.bak')}`")
    try:
        _Progress.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"is not a MediLake progress file of format {FORMAT_VERSION}: {where}: {first['msg']}"
    return data


def _move_aside(path: Path, problem: str) -> Path | None:
    """Rename ``path`` (a file or folder) to ``<path>.unreadable-<UTC time>`` and say so on stderr;
    None when another process moved it first.

    Raises
    ------
    ProgressFileError: it cannot be renamed (names the file, the problem and the fix).
    """
    stamp = _now_stamp()
    aside = path.with_name(f"{path.name}.unreadable-{stamp}")
    for n in range(2, 100):  # never onto an earlier one moved aside in the same second
        if not aside.exists():
            break
        aside = path.with_name(f"{path.name}.unreadable-{stamp}-{n}")
    try:
        path.rename(aside)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ProgressFileError(path, f"{problem}, and cannot be moved aside ({exc.strerror or exc})") from None
    print(f"note: progress file {path} {problem}; moved it to {aside} (nothing erased) and started a "
          "fresh progress record.", file=sys.stderr, flush=True)
    return aside


def load(state: str | os.PathLike | None = None) -> dict[str, Any]:
    """Read progress (the shape in the module docstring); a missing file gives an empty record,
    and so does a path holding no progress record, after it is moved aside with a note on stderr
    (see the module docstring).

    Raises
    ------
    ProgressFileError: the file cannot be read (permission) or is of a newer format version than
        this kit reads (both left untouched), or a path holding no record cannot be moved aside.
        The message names the file and the fix.
    """
    path = progress_file(state)
    found = _read(path)
    if isinstance(found, str):
        _move_aside(path, found)
        found = _read(path)  # None, or the record another process just started
        if isinstance(found, str):
            raise ProgressFileError(path, found)
    data = found if found is not None else _empty()
    for key, empty in (("labs", {}), ("quizzes", {}), ("exams", []), ("history", {})):
        data.setdefault(key, empty)
    return data


def save(data: dict[str, Any], state: str | os.PathLike | None = None) -> Path:
    """Write progress atomically; returns the file path. Callers :func:`load` first, so a file
    that is not a progress record is never overwritten.

    Raises
    ------
    ProgressFileError: the state folder or the file cannot be written (names the folder).
    """
    path = progress_file(state)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # a temporary file of its own: two saves at once (a notebook's grade cell and a terminal
        # `check`) each replace the record whole, never one half-written by the other
        fd, tmp = tempfile.mkstemp(prefix=".progress-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ProgressFileError(path, f"cannot be written ({exc.strerror or exc})",
                                fix=f"Make {path.parent} writable, or set MEDILAKE_STATE to a "
                                    "writable folder") from None
    return path


def record_grade(lab: str, passed: int, total: int, state: str | os.PathLike | None = None,
                 by: str | None = None) -> None:
    """Store the latest grade of a lab (``passed`` of ``total`` checks); ``by="catchup"`` marks
    tables built from the solution."""
    data = load(state)
    data["labs"][lab] = {"passed": passed, "total": total, "last_run": _now()}
    if by:
        data["labs"][lab]["by"] = by
    save(data, state)


def record_report(report: LabReport, by: str | None = None,
                  state: str | os.PathLike | None = None) -> str | None:
    """Store a grade as progress only if it graded the learner's configured warehouse and data
    folder (defaults or ``MEDILAKE_*``): a grade of other folders says nothing of their work.

    Returns None when stored, else why not (a line to show the learner).
    """
    mine = {"warehouse": config.warehouse_dir(), "data": config.data_dir()}
    graded = {"warehouse": report.warehouse, "data": report.data}
    other = [f"{what} {graded[what]} (yours: {mine[what]})" for what in mine
             if graded[what] != mine[what]]
    if other:
        return f"not recorded in your progress: graded {' and '.join(other)}"
    try:
        record_grade(report.lab, report.passed, report.total, state, by=by)
    except ProgressFileError as exc:  # the grade is shown all the same; the file is kept
        return f"not recorded in your progress: {exc}"
    return None


def forget_grades(labs: list[str], state: str | os.PathLike | None = None) -> None:
    """Drop the recorded grades of ``labs`` (their tables were removed)."""
    data = load(state)
    if any(data["labs"].pop(lab, None) for lab in labs):
        save(data, state)


#: One checked answer for :func:`record_answers`: ``(question id, answered right)``.
Answer = tuple[str, bool]


def _add_answers(data: dict[str, Any], answers: Iterable[Answer], now: str) -> None:
    """Count ``answers`` into ``data["history"]`` (in order, so a streak follows them), answered at
    ``now`` (UTC ISO)."""
    history = data.setdefault("history", {})
    for question_id, right in answers:
        entry = history.setdefault(question_id, {"right": 0, "wrong": 0, "streak": 0})
        entry["right" if right else "wrong"] += 1
        entry["streak"] = entry["streak"] + 1 if right else 0
        entry["last_result"] = "right" if right else "wrong"
        entry["last_answered"] = now


def record_answers(answers: Iterable[Answer], state: str | os.PathLike | None = None) -> None:
    """Add checked answers to the per-question history (see the module docstring); nothing is
    written when ``answers`` is empty.

    Raises
    ------
    ProgressFileError: the progress file cannot be read or written (names the file).
    """
    answers = list(answers)
    if answers:
        data = load(state)
        _add_answers(data, answers, _now())
        save(data, state)


def record_quiz(lab: str, score: int, total: int, state: str | os.PathLike | None = None,
                answers: Iterable[Answer] = (), practice: bool = False) -> None:
    """Store a lab quiz score (``score`` right of ``total`` asked), keeping the best one, and its
    ``answers`` in the history, in one write.

    ``practice=True`` (a partial quiz: fewer questions than the lab has) files the score under
    ``practice_quizzes`` instead, so it never becomes the lab's best or last score.

    Raises
    ------
    ProgressFileError: the progress file cannot be read or written (names the file).
    """
    data, now = load(state), _now()
    _add_answers(data, answers, now)
    if practice:
        data.setdefault("practice_quizzes", []).append(
            {"lab": lab, "score": score, "total": total, "taken": now})
    else:
        prev = data["quizzes"].get(lab, {})
        best = max(score, prev.get("best", 0))
        data["quizzes"][lab] = {"best": best, "total": total, "last": score, "last_run": now}
    save(data, state)


def record_exam(exam: str, score: int, total: int, by_domain: dict[str, list[int]],
                state: str | os.PathLike | None = None, practice: bool = False,
                answers: Iterable[Answer] = ()) -> None:
    """Append a mock-exam result; ``by_domain`` maps domain → [correct, asked]; ``answers`` (the
    questions answered, not those left blank) go to the history in the same write.

    ``practice=True`` (a mock shortened in questions or minutes) files it under ``practice_exams``
    instead of ``exams``, so it is never taken for an exam attempt.

    Raises
    ------
    ProgressFileError: the progress file cannot be read or written (names the file).
    """
    data, now = load(state), _now()
    _add_answers(data, answers, now)
    data.setdefault("practice_exams" if practice else "exams", []).append(
        {"exam": exam, "score": score, "total": total, "taken": now, "by_domain": by_domain})
    save(data, state)
