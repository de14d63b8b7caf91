"""Lab notebooks: build learner versions from solutions, and execute notebooks headlessly.

Solution notebooks in ``solutions/`` are the single source of lab content. In a code cell, the
learner's part is marked::

    # BEGIN SOLUTION  read each batch with an explicit schema
    ...solution code...
    # END SOLUTION

and :func:`learner_notebook` replaces it by ``# TODO: read each batch with an explicit schema``
plus a ``raise NotImplementedError`` line, so an untouched learner notebook stops at its first TODO.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import nbformat
from rich.console import Console

from medilake_lab.contract.labs import LabSpec, all_labs
from medilake_lab.errors import NotebookError
from medilake_lab.runtime import config

BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION\b(?P<todo>.*)$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
TODO_RAISE = 'raise NotImplementedError("TODO: your code here")'


def solutions_dir() -> Path:
    return config.project_root() / "solutions"


def labs_dir() -> Path:
    return config.project_root() / "labs"


def strip_solution(source: str, where: str = "") -> str:
    """Replace every BEGIN/END SOLUTION region of a cell's source with a TODO stub.

    Raises
    ------
    NotebookError: a BEGIN without END (or the reverse); ``where`` names the notebook cell.
    """
    out, inside = [], False
    for line in source.splitlines():
        begin = BEGIN.match(line)
        if begin:
            if inside:
                raise NotebookError(f"{where}: nested # BEGIN SOLUTION")
            inside = True
            indent, todo = begin["indent"], begin["todo"].strip() or "your code here"
            out += [f"{indent}# TODO: {todo}", f"{indent}{TODO_RAISE}"]
        elif END.match(line):
            if not inside:
                raise NotebookError(f"{where}: # END SOLUTION without BEGIN")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise NotebookError(f"{where}: # BEGIN SOLUTION without END")
    return "\n".join(out)


def learner_notebook(solution: nbformat.NotebookNode, name: str = "") -> nbformat.NotebookNode:
    """The learner version of a solution notebook: solution regions stubbed, outputs cleared."""
    nb = copy.deepcopy(solution)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.source = strip_solution(cell.source, f"{name} cell {index}")
            cell.outputs, cell.execution_count = [], None
    return nb


def build_learner_notebooks(write: bool = True) -> list[str]:
    """Regenerate ``labs/`` from ``solutions/``; returns names of notebooks that were stale."""
    stale = []
    labs_dir().mkdir(exist_ok=True)
    for spec in all_labs():
        src = solutions_dir() / spec.notebook
        if not src.exists():
            continue
        wanted = nbformat.writes(learner_notebook(nbformat.read(src, as_version=4), spec.notebook))
        target = labs_dir() / spec.notebook
        if not target.exists() or target.read_text() != wanted + "\n":
            stale.append(spec.notebook)
            if write:
                target.write_text(wanted + "\n")
    return stale


def execute_notebook(source: Path, output: Path, parameters: dict[str, object],
                     progress: bool = True) -> Path:
    """Run a notebook with papermill in the current Python environment's kernel.

    Raises
    ------
    NotebookError: a cell raised; the message names the notebook, cell number and error.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(str(source), str(output), parameters=parameters, kernel_name="python3",
                            progress_bar=progress, cwd=str(source.parent), log_output=False)
    except PapermillExecutionError as exc:
        error = f"{exc.ename}: {exc.evalue}".strip().splitlines()[0]
        raise NotebookError(f"{source.name}: {cell_label(source, exc.source)} raised {error} "
                            f"(executed copy: {output})") from exc
    return output


def cell_label(notebook: Path, source: str) -> str:
    """A cell as the learner finds it in ``notebook`` (not as numbered in papermill's executed
    copy, which has an extra parameters cell): its position counted from 1 among all cells, and
    the function holding its TODO, else its first code line, e.g. "cell 9 of 19 (def ingest)"."""
    cells = nbformat.read(notebook, as_version=4).cells
    index = next((i for i, cell in enumerate(cells) if cell.source == source), None)
    lines = [line.strip() for line in source.splitlines() if line.strip()]
    todo = next((i for i, line in enumerate(lines) if line.startswith("# TODO")), 0)
    defs = [m[1] for line in lines[:todo] if (m := re.match(r"(?:async\s+)?def\s+(\w+)", line))]
    first = next((line for line in lines if not line.startswith("#")), "")
    what = f"def {defs[-1]}" if defs else (first[:60] + "…" if len(first) > 60 else first)
    where = f"cell {index + 1} of {len(cells)}" if index is not None else "a cell"
    return f"{where} ({what})" if what else where


def execute_lab(spec: LabSpec, warehouse: str | os.PathLike | None = None,
                data: str | os.PathLike | None = None, learner: bool = False,
                console: Console | None = None) -> Path:
    """Execute a lab's solution (or learner) notebook against a warehouse; returns the executed
    copy under ``<state>/runs/``."""
    source = (labs_dir() if learner else solutions_dir()) / spec.notebook
    if not source.exists():
        raise NotebookError(f"no notebook {source}")
    output = config.state_dir() / "runs" / ("learner" if learner else "solution") / spec.notebook
    params = {"warehouse": str(config.warehouse_dir(warehouse)), "data_dir": str(config.data_dir(data))}
    if console:
        console.print(f"[bold]▶ lab {spec.id}[/] {spec.title}: executing {source.name}")
    return execute_notebook(source, output, params)
