"""The learner's progress: one small human-readable JSON file in the state folder.

Shape of ``<state>/progress.json``::

    {"format_version": 1,
     "labs": {"01": {"passed": 7, "total": 7, "last_run": "2026-11-29T15:00:00+00:00"}},
     "quizzes": {"01": {"best": 18, "total": 20, "last": 15, "last_run": "..."}},
     "exams": [{"exam": "associate", "score": 33, "total": 45, "taken": "...",
                "by_domain": {"...": [3, 4]}}]}
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medilake_lab import config

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


def record_grade(lab: str, passed: int, total: int, state: str | os.PathLike | None = None) -> None:
    """Store the latest grade of a lab (``passed`` of ``total`` checks)."""
    data = load(state)
    data["labs"][lab] = {"passed": passed, "total": total, "last_run": _now()}
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
