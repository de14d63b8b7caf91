"""The learner's progress: one small human-readable JSON file in the state folder.

Shape of ``<state>/progress.json``::

    {"format_version": 1,
     "labs": {"01": {"passed": 7, "total": 7, "last_run": "2026-11-29T15:00:00+00:00"},
              "02": {"passed": 16, "total": 16, "last_run": "...", "by": "catchup"}},
     "quizzes": {"01": {"best": 18, "total": 20, "last": 15, "last_run": "..."}},
     "exams": [{"exam": "associate", "score": 33, "total": 45, "taken": "...",
                "by_domain": {"...": [3, 4]}}]}

A lab's optional ``"by": "catchup"`` marks a grade of tables built from the solution by
``medilake_lab catchup``; readers of format 1 ignore keys they do not know.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medilake_lab.runtime import config

if TYPE_CHECKING:
    from medilake_lab.grader.model import LabReport

FORMAT_VERSION = 1
FILE_NAME = "progress.json"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def progress_file(state: str | os.PathLike | None = None) -> Path:
    """Path of the progress file (``<state>/progress.json``)."""
    return config.state_dir(state) / FILE_NAME


def load(state: str | os.PathLike | None = None) -> dict[str, Any]:
    """Read progress; a missing file gives an empty record.

    Raises
    ------
    ValueError: the file is not valid JSON or has a newer format version than this kit reads.
    """
    path = progress_file(state)
    if not path.exists():
        return {"format_version": FORMAT_VERSION, "labs": {}, "quizzes": {}, "exams": []}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); delete it to start afresh") from exc
    if data.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path}: format {data['format_version']} is newer than this kit "
                         f"reads ({FORMAT_VERSION}); upgrade medilake_lab")
    data.setdefault("labs", {}), data.setdefault("quizzes", {}), data.setdefault("exams", [])
    return data


def save(data: dict[str, Any], state: str | os.PathLike | None = None) -> Path:
    """Write progress atomically; returns the file path."""
    path = progress_file(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
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
    except (OSError, ValueError) as exc:  # grading must work on a read-only checkout too
        return f"not recorded in your progress: {exc}"
    return None


def forget_grades(labs: list[str], state: str | os.PathLike | None = None) -> None:
    """Drop the recorded grades of ``labs`` (their tables were removed)."""
    data = load(state)
    if any(data["labs"].pop(lab, None) for lab in labs):
        save(data, state)


def record_quiz(lab: str, score: int, total: int, state: str | os.PathLike | None = None) -> None:
    """Store a quiz score for a lab, keeping the best one."""
    data = load(state)
    prev = data["quizzes"].get(lab, {})
    best = max(score, prev.get("best", 0))
    data["quizzes"][lab] = {"best": best, "total": total, "last": score, "last_run": _now()}
    save(data, state)


def record_exam(exam: str, score: int, total: int, by_domain: dict[str, list[int]],
                state: str | os.PathLike | None = None) -> None:
    """Append a mock-exam result; ``by_domain`` maps domain → [correct, asked]."""
    data = load(state)
    data["exams"].append({"exam": exam, "score": score, "total": total, "taken": _now(),
                          "by_domain": by_domain})
    save(data, state)
