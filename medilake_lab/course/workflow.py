"""Learner workflow: status, progressive hints, reset and catch-up (see ``labs.yaml``)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from medilake_lab import grader
from medilake_lab.contract.labs import LabSpec, all_labs, get_lab
from medilake_lab.course import progress
from medilake_lab.errors import CheckNotFoundError
from medilake_lab.grader.model import CheckResult, Status
from medilake_lab.runtime import config

HINT_LEVELS = 3


def later_labs(lab_id: str) -> list[LabSpec]:
    """Lab ``lab_id`` and every lab after it, in course order."""
    start = get_lab(lab_id).id
    return [lab for lab in all_labs() if lab.id >= start]


def reset(lab_id: str, warehouse: str | os.PathLike | None = None) -> list[str]:
    """Delete the tables (and folders, e.g. checkpoints) lab ``lab_id`` and later labs create;
    earlier labs' tables stay.

    Returns the qualified names of the tables removed and the folders (``"volumes/landing/"``),
    only those that existed. In the
    learner's configured warehouse, the recorded grades of those labs are dropped too.

    Raises
    ------
    LabNotFoundError: unknown ``lab_id``.
    ProgressFileError: resetting the configured warehouse, and its progress file cannot be read
        (checked before anything is removed) or written (after the tables are removed).
    """
    labs, removed = later_labs(lab_id), []
    mine = config.warehouse_dir(warehouse) == config.warehouse_dir()
    if mine:
        progress.load()  # a broken progress file stops the reset before anything is removed
    root = config.warehouse_dir(warehouse)
    for lab in labs:
        for name in lab.tables:
            schema, table = name.split(".", 1)
            path = config.table_path(schema, table, warehouse)
            if path.exists():
                shutil.rmtree(path)
                removed.append(name)
        for folder in lab.folders:
            if (root / folder).exists():
                shutil.rmtree(root / folder)
                removed.append(f"{folder}/")
    if mine:
        progress.forget_grades([lab.id for lab in labs])
    return removed


def catchup(lab_id: str, warehouse: str | os.PathLike | None = None,
            data: str | os.PathLike | None = None, console: Console | None = None) -> list[str]:
    """Build the warehouse state lab ``lab_id`` starts from, by running earlier solutions.

    Idempotent: an earlier lab whose checks already all pass is left alone; the first one that
    does not is reset (with every later lab) and re-run from its solution notebook. Each lab
    run is graded and recorded as built by catchup (see :func:`progress.record_report`).
    Returns the ids of the labs that were executed.

    Raises
    ------
    NotebookError: a solution notebook failed (names the notebook and cell).
    ProgressFileError: in the configured warehouse, its progress file cannot be read (found by
        the first reset, before anything is removed).
    """
    from medilake_lab.course.notebooks import execute_lab

    target = get_lab(lab_id).id
    earlier = [lab for lab in all_labs() if lab.id < target]
    ran: list[str] = []
    for lab in earlier:
        if not ran and grader.grade(lab.id, warehouse, data).ok:
            if console:
                console.print(f"[green]✓[/] lab {lab.id} already complete")
            continue
        if not ran:
            removed = reset(lab.id, warehouse)
            if console and removed:
                console.print(f"reset: removed {', '.join(removed)}")
        execute_lab(lab, warehouse=warehouse, data=data, console=console)
        ran.append(lab.id)
        report = grader.grade(lab.id, warehouse, data)
        not_recorded = progress.record_report(report, by="catchup")
        if console:
            console.print(f"  lab {lab.id}: {report.passed}/{report.total} checks pass"
                          + (f"; {not_recorded}" if not_recorded else " (recorded as catchup)"))
    return ran


@dataclass(frozen=True)
class LabStatus:
    """One row of ``medilake_lab status``."""

    lab: LabSpec
    grade: str          # "7/9", "16/16 by catchup", or "—" when never graded
    last_run: str
    quiz: str           # best quiz score "18/20" or "—"
    done: bool


def _todo(lab: LabSpec, grade: dict | None, quiz: dict | None) -> tuple[str, str] | None:
    """What is left to do in one lab as ``(what, command)``, or None."""
    if not grade:
        return (f"open labs/{lab.notebook} (make lab), do its TODOs, then grade it",
                f"medilake_lab check {lab.id}")
    if grade["passed"] != grade["total"]:
        return f"fix lab {lab.id}", f"medilake_lab hint {lab.id}"
    if not quiz and grade.get("by") != "catchup":
        return f"take the lab {lab.id} quiz", f"medilake_lab quiz {lab.id}"
    return None


def status(state: str | os.PathLike | None = None) -> tuple[list[LabStatus], tuple[str, str]]:
    """Rows for every lab from the progress file, and the next step as ``(what, command)``.

    The next step is found from the lab graded most recently (lab 01 when none was): the
    first lab from there on, then wrapping round to the earlier ones, that is not passed (fix
    it, or open it if never graded) or whose quiz is not taken (labs built by catchup are not
    quizzed); when there is none, a mock exam.

    Raises
    ------
    ProgressFileError: the progress file cannot be read (names the file and the fix).
    """
    data = progress.load(state)
    labs = list(all_labs())
    rows = []
    for lab in labs:
        grade = data["labs"].get(lab.id)
        quiz = data["quizzes"].get(lab.id)
        rows.append(LabStatus(
            lab, (f"{grade['passed']}/{grade['total']}"
                  + (f" by {grade['by']}" if grade.get("by") else "")) if grade else "—",
            grade["last_run"][:16].replace("T", " ") if grade else "—",
            f"{quiz['best']}/{quiz['total']}" if quiz else "—",
            bool(grade) and grade["passed"] == grade["total"]))
    graded = [(data["labs"][lab.id]["last_run"], i) for i, lab in enumerate(labs)
              if lab.id in data["labs"]]
    start = max(graded)[1] if graded else 0
    for lab in labs[start:] + labs[:start]:
        step = _todo(lab, data["labs"].get(lab.id), data["quizzes"].get(lab.id))
        if step:
            return rows, step
    return rows, ("all labs done — try a mock exam", "medilake_lab exam associate")


def next_hint(lab_id: str, check_id: str | None = None,
              warehouse: str | os.PathLike | None = None,
              data: str | os.PathLike | None = None) -> tuple[CheckResult | None, list[str]]:
    """The first failing check of a lab (or ``check_id``) and its hints up to the next level.

    Each call for the same check reveals one more level: 1 the finding and hint, 2 the exam
    rule, 3 (the last, repeated on later calls) that there are no more hints and where the
    solution is. Returns ``(None, [])`` when every check passes.

    Raises
    ------
    LabNotFoundError, CheckNotFoundError: unknown lab or check id.
    ProgressFileError: the progress file (which counts the levels) cannot be read, checked
        before grading, or written.
    """
    lab = get_lab(lab_id)
    wanted = f"{lab.id}.{check_id}" if check_id and "." not in check_id else check_id
    if wanted and wanted not in {f"{lab.id}.{c.id}" for c in lab.checks}:
        known = ", ".join(c.id for c in lab.checks)
        raise CheckNotFoundError(f"lab {lab.id} has no check {check_id!r}; checks: {known}")
    state = progress.load()
    report = grader.grade(lab.id, warehouse, data)
    candidates = [r for r in report.results
                  if (r.id == wanted if wanted else r.status is Status.FAIL)]
    if not candidates:
        return None, []
    result = candidates[0]
    seen = state.setdefault("hints", {}).get(result.id, 0)
    level = min(seen + 1, HINT_LEVELS)
    state["hints"][result.id] = level
    progress.save(state)
    lines = [f"{result.finding}", f"hint: {result.hint}"]
    if level >= 2:
        lines.append(f"exam rule: {result.rule}")
    if level >= HINT_LEVELS:
        later = [x.id for x in all_labs() if x.id > lab.id]
        rebuild = f" (`medilake_lab catchup {later[0]}` rebuilds this lab from it)" if later else ""
        lines.append(f"no more hints for {result.id}; the solution is in "
                     f"{Path('solutions') / lab.notebook}{rebuild}")
    return result, lines
