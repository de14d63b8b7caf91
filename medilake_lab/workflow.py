"""Learner workflow: status, progressive hints, reset and catch-up (see ``labs.yaml``)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from medilake_lab import checks, config, progress
from medilake_lab.checks.model import CheckResult, Status
from medilake_lab.labs import LabSpec, all_labs, get_lab

HINT_LEVELS = 3


def later_labs(lab_id: str) -> list[LabSpec]:
    """Lab ``lab_id`` and every lab after it, in course order."""
    start = get_lab(lab_id).id
    return [lab for lab in all_labs() if lab.id >= start]


def reset(lab_id: str, warehouse: str | os.PathLike | None = None) -> list[str]:
    """Delete the tables lab ``lab_id`` and later labs create; earlier labs' tables stay.

    Returns the qualified names of the tables removed (only those that existed).
    """
    removed = []
    for lab in later_labs(lab_id):
        for name in lab.tables:
            schema, table = name.split(".", 1)
            path = config.table_path(schema, table, warehouse)
            if path.exists():
                shutil.rmtree(path)
                removed.append(name)
    return removed


def catchup(lab_id: str, warehouse: str | os.PathLike | None = None,
            data: str | os.PathLike | None = None, console: Console | None = None) -> list[str]:
    """Build the warehouse state lab ``lab_id`` starts from, by running earlier solutions.

    Idempotent: an earlier lab whose checks already all pass is left alone; the first one that
    does not is reset (with every later lab) and re-run from its solution notebook.
    Returns the ids of the labs that were executed.

    Raises
    ------
    NotebookError: a solution notebook failed (names the notebook and cell).
    """
    from medilake_lab.notebooks import execute_lab

    target = get_lab(lab_id).id
    earlier = [lab for lab in all_labs() if lab.id < target]
    ran: list[str] = []
    for lab in earlier:
        if not ran and checks.grade(lab.id, warehouse, data).ok:
            if console:
                console.print(f"[green]✓[/] lab {lab.id} already complete")
            continue
        if not ran:
            removed = reset(lab.id, warehouse)
            if console and removed:
                console.print(f"reset: removed {', '.join(removed)}")
        execute_lab(lab, warehouse=warehouse, data=data, console=console)
        ran.append(lab.id)
    return ran


@dataclass(frozen=True)
class LabStatus:
    """One row of ``medilake_lab status``."""

    lab: LabSpec
    grade: str          # "7/9", or "—" when never graded
    last_run: str
    quiz: str           # best quiz score "18/20" or "—"
    done: bool


def status(state: str | os.PathLike | None = None) -> tuple[list[LabStatus], str]:
    """Rows for every lab from the progress file, and the next thing to do."""
    data = progress.load(state)
    rows, next_step = [], ""
    for lab in all_labs():
        grade = data["labs"].get(lab.id)
        quiz = data["quizzes"].get(lab.id)
        done = bool(grade) and grade["passed"] == grade["total"]
        rows.append(LabStatus(
            lab, f"{grade['passed']}/{grade['total']}" if grade else "—",
            grade["last_run"][:16].replace("T", " ") if grade else "—",
            f"{quiz['best']}/{quiz['total']}" if quiz else "—", done))
        if not next_step and not done:
            next_step = (f"open labs/{lab.notebook} (`make lab`), then `medilake_lab check {lab.id}`"
                         if not grade else f"fix lab {lab.id}: `medilake_lab hint {lab.id}`")
        elif not next_step and not quiz:
            next_step = f"take the lab {lab.id} quiz: `medilake_lab quiz {lab.id}`"
    return rows, next_step or "all labs done — try `medilake_lab exam associate`"


def next_hint(lab_id: str, check_id: str | None = None,
              warehouse: str | os.PathLike | None = None,
              data: str | os.PathLike | None = None) -> tuple[CheckResult | None, list[str]]:
    """The first failing check of a lab (or ``check_id``) and its hints up to the next level.

    Each call for the same check reveals one more level: 1 the finding and hint, 2 the exam
    rule, 3 where the solution is. Returns ``(None, [])`` when every check passes.
    """
    lab = get_lab(lab_id)
    report = checks.grade(lab.id, warehouse, data)
    wanted = f"{lab.id}.{check_id}" if check_id and "." not in check_id else check_id
    candidates = [r for r in report.results
                  if (r.id == wanted if wanted else r.status is Status.FAIL)]
    if wanted and not candidates:
        known = ", ".join(c.id for c in lab.checks)
        raise KeyError(f"lab {lab.id} has no check {check_id!r}; checks: {known}")
    if not candidates:
        return None, []
    result = candidates[0]
    state = progress.load()
    seen = state.setdefault("hints", {}).get(result.id, 0)
    level = min(seen + 1, HINT_LEVELS)
    state["hints"][result.id] = level
    progress.save(state)
    lines = [f"{result.finding}", f"hint: {result.hint}"]
    if level >= 2:
        lines.append(f"exam rule: {result.rule}")
    if level >= 3:
        solution = Path("solutions") / lab.notebook
        lines.append(f"solution: the matching TODO is solved in {solution}; "
                     f"`medilake_lab catchup {int(lab.id) + 1:02d}` rebuilds this lab from it")
    return result, lines
