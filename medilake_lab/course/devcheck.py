"""``medilake_lab dev check``: the kit tests itself (after rustlings' ``dev check``).

For every lab in ``labs.yaml``: each check has a hint and a rule, the learner notebook is
up to date with its solution and has a TODO, the solution scores 100 % on its grader, and the
untouched learner notebook fails at least one check.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import nbformat
from rich.console import Console

from medilake_lab import grader
from medilake_lab.contract.labs import all_labs
from medilake_lab.course.notebooks import (
    NotebookError,
    build_learner_notebooks,
    execute_notebook,
    labs_dir,
    solutions_dir,
)


def static_problems() -> list[str]:
    """Problems found without executing anything (hints, TODOs, stale labs/)."""
    problems = [f"labs/{name} is out of date: run `medilake_lab dev build-labs`"
                for name in build_learner_notebooks(write=False)]
    for lab in all_labs():
        problems += [f"lab {lab.id} check {c.id} has no hint" for c in lab.checks if not c.hint.strip()]
        learner = labs_dir() / lab.notebook
        if not learner.exists():
            problems.append(f"lab {lab.id}: {learner} is missing")
            continue
        cells = nbformat.read(learner, as_version=4).cells
        if not any("# TODO:" in c.source for c in cells if c.cell_type == "code"):
            problems.append(f"lab {lab.id}: {learner.name} has no TODO for the learner")
    return problems


def run(data: str | os.PathLike | None = None, console: Console | None = None) -> list[str]:
    """Full self-check; returns the problems found (empty = the kit is sound)."""
    console = console or Console()
    problems = static_problems()
    with tempfile.TemporaryDirectory(prefix="medilake-devcheck-") as tmp:
        warehouse, runs = Path(tmp) / "warehouse", Path(tmp) / "runs"
        warehouse.mkdir()
        for lab in all_labs():
            before = Path(tmp) / f"before-{lab.id}"
            shutil.copytree(warehouse, before)
            params = {"warehouse": str(before), "data_dir": str(data) if data else None}
            try:
                execute_notebook(labs_dir() / lab.notebook, runs / f"learner-{lab.notebook}", params,
                                 progress=False)
            except NotebookError:
                pass  # an untouched learner notebook is expected to stop at a TODO
            if grader.grade(lab.id, before, data).ok:
                problems.append(f"lab {lab.id}: the untouched learner notebook already passes")
            console.print(f"lab {lab.id}: learner notebook fails its grader as it should")
            params["warehouse"] = str(warehouse)
            try:
                execute_notebook(solutions_dir() / lab.notebook, runs / lab.notebook, params,
                                 progress=False)
            except NotebookError as exc:
                problems.append(f"lab {lab.id}: solution failed: {exc}")
                break
            report = grader.grade(lab.id, warehouse, data)
            console.print(f"lab {lab.id}: solution scores {report.passed}/{report.total}")
            if not report.ok:
                failed = [r.id for r in report.results if r.status is not grader.Status.PASS]
                problems.append(f"lab {lab.id}: solution fails {', '.join(failed)}")
    return problems
