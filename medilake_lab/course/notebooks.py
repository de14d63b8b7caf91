"""Lab notebooks: build learner versions from solutions, and execute notebooks headlessly.

Solution notebooks in ``solutions/`` are the single source of lab content. In a code cell, the
learner's part is marked::

    # BEGIN SOLUTION  read each batch with an explicit schema
    ...solution code...
    # END SOLUTION

and :func:`learner_notebook` replaces it by ``# TODO: read each batch with an explicit schema``
(wrapped to fit the cell) plus a stub raising :func:`medilake_lab.course.todo.todo` with the lab and
the section heading above the cell, so an untouched learner notebook stops at its first TODO with
guidance (section, ``medilake_lab hint NN``, grade) instead of a traceback.

A code cell whose output the lab text relies on (counts, MERGE metrics…) starts with the line
``# NBVAL_CHECK_OUTPUT``: the solution notebook stores that cell's output, and the test suite runs
the solutions under nbval (``--nbval-lax``), which fails when the cell prints something else.
:func:`refresh_reference_outputs` re-executes the solutions and stores those outputs (and no
other); learner notebooks carry neither the outputs nor the marker.
"""

from __future__ import annotations

import copy
import json
import os
import re
import tempfile
import textwrap
from collections.abc import Mapping
from pathlib import Path

import nbformat
from rich.console import Console
from rich.markup import escape

from medilake_lab.contract.labs import LabSpec, all_labs
from medilake_lab.errors import NotebookError
from medilake_lab.runtime import config

BEGIN = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION\b(?P<todo>.*)$")
END = re.compile(r"^\s*# END SOLUTION\s*$")
#: The stub's two code lines, after its ``# TODO:`` comment (see medilake_lab/course/todo.py)
TODO_STUB = ("from medilake_lab import todo  # replace these TODO lines with your code",
             "raise todo({lab}, {section})")
#: ``# TODO:`` comments are wrapped to this many characters, so they fit a JupyterLab cell
TODO_WIDTH = 88
HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*$", re.MULTILINE)
#: Configuration of the kernels the kit starts: manager-provisioned CurveZMQ keys (the kernel
#: declares support), so ipykernel does not warn "running over TCP without encryption" per notebook
KERNEL_CONFIG = {"KernelManager": {"transport_encryption": "auto"}}
#: nbval's marker for a cell whose output is compared with the output stored in the notebook
CHECK_OUTPUT = re.compile(r"^\s*#+\s*NBVAL_CHECK_OUTPUT\s*$")


def solutions_dir() -> Path:
    return config.project_root() / "solutions"


def notebooks_dir(learner: bool = False) -> Path:
    """The learner notebooks' folder (``labs/``) or the solutions' (``solutions/``)."""
    return labs_dir() if learner else solutions_dir()


def labs_dir() -> Path:
    return config.project_root() / "labs"


def todo_stub(indent: str, instruction: str, lab: str = "", section: str = "") -> list[str]:
    """The lines replacing one solution region: ``# TODO: instruction`` wrapped to
    :data:`TODO_WIDTH` characters, then :data:`TODO_STUB` naming ``lab`` and ``section``."""
    comment = textwrap.wrap(instruction or "your code here", TODO_WIDTH - len(indent) - 8,
                            break_on_hyphens=False) or [""]
    lines = [f"{indent}# TODO: {comment[0]}", *(f"{indent}#       {more}" for more in comment[1:])]
    code = [line.format(lab=json.dumps(lab), section=json.dumps(section, ensure_ascii=False))
            for line in TODO_STUB]
    return lines + [f"{indent}{line}" for line in code]


def strip_solution(source: str, where: str = "", lab: str = "", section: str = "") -> str:
    """Replace every BEGIN/END SOLUTION region of a cell's source with a TODO stub
    (:func:`todo_stub`) naming lab ``lab`` and ``section``.

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
            out += todo_stub(begin["indent"], begin["todo"].strip(), lab, section)
        elif END.match(line):
            if not inside:
                raise NotebookError(f"{where}: # END SOLUTION without BEGIN")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise NotebookError(f"{where}: # BEGIN SOLUTION without END")
    return "\n".join(out)


def checks_output(cell: nbformat.NotebookNode) -> bool:
    """Whether a cell is a code cell marked ``# NBVAL_CHECK_OUTPUT`` (nbval compares its output)."""
    return cell.cell_type == "code" and any(CHECK_OUTPUT.match(line) for line in cell.source.splitlines())


def learner_notebook(solution: nbformat.NotebookNode, name: str = "") -> nbformat.NotebookNode:
    """The learner version of a solution notebook: solution regions stubbed, outputs and
    ``# NBVAL_CHECK_OUTPUT`` markers removed."""
    nb = copy.deepcopy(solution)
    lab = re.match(r"\d*", Path(name).name)[0]  # type: ignore[index]  # "01_bronze_ingestion.ipynb" → "01"
    section = ""  # the last Markdown heading above the cell
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            section = ([m["title"] for m in HEADING.finditer(cell.source)] or [section])[-1]
        elif cell.cell_type == "code":
            source = "\n".join(line for line in cell.source.splitlines() if not CHECK_OUTPUT.match(line))
            cell.source = strip_solution(source, f"{name} cell {index}", lab, section)
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


def fresh_start_code(env: Mapping[str, str] | None = None) -> str:
    """The code a shared kernel runs before its next notebook (:class:`WarmKernel`, and the test
    suite's nbval run): forget the previous notebook's variables (``%reset -f``), set ``env`` in
    ``os.environ``, and give the notebook a SparkSession of its own on the running JVM
    (:func:`medilake_lab.runtime.spark.fresh_session`)."""
    lines = ["%reset -f"]
    if env:
        lines.append(f"import os; os.environ.update({dict(env)!r}); del os")
    lines.append("from medilake_lab.runtime.spark import fresh_session as _fresh; _fresh(); del _fresh")
    return "\n".join(lines) + "\n"


class WarmKernel:
    """One Jupyter kernel (the current Python environment's) that executes several notebooks in turn:
    ``run all``, ``catchup``, the reference-output refresh and the test suite. The Spark JVM the
    first notebook starts stays up, and warm (its JIT-compiled Delta and Spark code), for the next:
    labs 01 and 02 took 195 s in one kernel against 270 s in a kernel each (benchmarks/RESULTS.md).

    Before every notebook after the first the kernel runs :func:`fresh_start_code`, so a notebook
    finds what a kernel of its own would give it (no variables, a new SparkSession with default SQL
    settings, no temporary views or running streams) except Python's imported modules and the warm
    JVM. Learners' notebooks in JupyterLab still run in a kernel each; this is the kit's own runner.

    Use as a context manager (``with WarmKernel(folder) as kernel: execute_notebook(..., kernel=kernel)``):
    the kernel starts with the first notebook and stops, and with it the JVM, when the block ends.
    ``cwd`` is the kernel's working folder (the notebooks' folder). The notebooks of one kernel must
    work on one warehouse: the Spark session's warehouse is fixed when the JVM starts.
    """

    def __init__(self, cwd: Path) -> None:
        from jupyter_client.manager import AsyncKernelManager
        from traitlets.config import Config

        self.cwd = cwd
        # asynchronous, as the manager nbclient makes for itself: with a blocking one, nbclient's
        # wait for a cell's output blocks its event loop, so it never sees that the kernel died
        self.km = AsyncKernelManager(kernel_name="python3", config=Config(KERNEL_CONFIG))
        self.notebooks = 0  # notebooks started in this kernel

    def __enter__(self) -> WarmKernel:
        return self

    def __exit__(self, *exc: object) -> None:
        from jupyter_core.utils import run_sync

        if self.km.has_kernel:
            run_sync(self.km.shutdown_kernel)(now=True)

    def prepare(self, notebook: Path) -> None:
        """Ready the kernel for ``notebook``: start it for the first (papermill then waits until it
        answers), run :func:`fresh_start_code` before the others.

        Raises
        ------
        NotebookError: the kernel died or could not run the fresh start (names ``notebook``).
        """
        from jupyter_core.utils import run_sync

        self.notebooks += 1
        if self.notebooks == 1:
            run_sync(self.km.start_kernel)(cwd=str(self.cwd))
            return
        if not run_sync(self.km.is_alive)():
            raise NotebookError(f"{notebook.name}: the shared Jupyter kernel died before this notebook started "
                                "(the previous notebook's run, most likely out of memory); run it again")
        client = self.km.blocking_client()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=config.kernel_timeout())
            reply = client.execute_interactive(fresh_start_code(), timeout=config.kernel_timeout(),
                                               output_hook=lambda msg: None)
        except (RuntimeError, TimeoutError) as exc:
            raise NotebookError(f"{notebook.name}: the shared Jupyter kernel did not answer before this "
                                f"notebook ({exc}); run it again") from None
        finally:
            client.stop_channels()
        if reply["content"]["status"] != "ok":
            content = reply["content"]
            raise NotebookError(f"{notebook.name}: the shared kernel could not start a fresh Spark session "
                                f"for it: {content.get('ename')}: {content.get('evalue')}")


def execute_notebook(source: Path, output: Path, parameters: Mapping[str, object],
                     progress: bool = True, kernel: WarmKernel | None = None) -> Path:
    """Run a notebook with papermill in the current Python environment's kernel, which may take
    :func:`config.kernel_timeout` seconds to start; in ``kernel`` when given (one kernel for several
    notebooks: :class:`WarmKernel`), else in a kernel of its own.

    Raises
    ------
    NotebookError: a cell raised, the kernel died (memory, killed) or did not start in time; the
        message names the notebook, the cell as the learner finds it, and what to do.
    UsageError: ``$MEDILAKE_KERNEL_TIMEOUT`` is not a number of seconds.
    KeyboardInterrupt: re-raised with a note naming the notebook and the cell it stopped in.
    """
    import papermill as pm
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError
    from traitlets.config import Config

    timeout = config.kernel_timeout()
    output.parent.mkdir(parents=True, exist_ok=True)
    shared = {}
    if kernel is not None:
        kernel.prepare(source)
        shared["km"] = kernel.km
    try:
        pm.execute_notebook(str(source), str(output), parameters=parameters, kernel_name="python3",
                            progress_bar=progress, cwd=str(source.parent), log_output=False,
                            start_timeout=timeout, config=Config(KERNEL_CONFIG), **shared)
    except PapermillExecutionError as exc:
        error = f"{exc.ename}: {exc.evalue}".strip().splitlines()[0]
        raise NotebookError(f"{source.name}: {cell_label(source, exc.source)} raised {error} "
                            f"(executed copy: {output})") from exc
    except DeadKernelError:
        raise NotebookError(
            f"{source.name}: the kernel died while running {_running_cell(source, output)}, most likely "
            f"out of memory or killed. Close other notebooks and Spark sessions, or set "
            f"{config.DRIVER_MEMORY_ENV} (now {config.driver_memory()}) to what this machine can spare, "
            f"then run it again (executed copy: {output})") from None
    except RuntimeError as exc:  # jupyter_client's only signals that the kernel did not start
        if "didn't respond" in str(exc):
            raise NotebookError(
                f"{source.name}: the Jupyter kernel did not start within {timeout} s. On a busy machine "
                f"give it longer, e.g. {config.KERNEL_TIMEOUT_ENV}=600, and run it again") from None
        if "died before replying" in str(exc):
            raise NotebookError(
                f"{source.name}: the Jupyter kernel 'python3' died while starting; `medilake_lab doctor` "
                "checks the kernel (reinstall it with `python -m ipykernel install --user` if it "
                "fails)") from None
        raise
    except KeyboardInterrupt as exc:
        exc.add_note(f"{source.name}: stopped in {_running_cell(source, output)} "
                     f"(executed copy: {output})")
        raise
    return output


def _running_cell(source: Path, output: Path) -> str:
    """The cell papermill started last in its executed copy ``output``, labelled as in
    ``source`` (:func:`cell_label`); "a cell" when the copy cannot tell."""
    try:
        cells = nbformat.read(output, as_version=4).cells
    except (OSError, ValueError):
        return "a cell"
    started = [cell for cell in cells
               if cell.cell_type == "code" and cell.get("metadata", {}).get("papermill", {}).get("start_time")]
    return cell_label(source, started[-1].source) if started else "a cell"


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


def reference_outputs(outputs: list) -> list[nbformat.NotebookNode]:
    """The part of a cell's executed outputs that nbval compares: stdout as one stream (the kernel
    splits it into chunks at random points), results and displays without images; stderr (JVM and
    Python warnings) is dropped — the test suite does not compare it either."""
    kept: list[nbformat.NotebookNode] = []
    stdout = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stdout")
    for output in outputs:
        if output.output_type == "stream" and output.name == "stdout" and stdout:
            kept.append(nbformat.v4.new_output("stream", name="stdout", text=stdout))
            stdout = ""
        elif output.output_type in ("execute_result", "display_data"):
            data = {mime: value for mime, value in output.data.items() if not mime.startswith("image/")}
            count = {"execution_count": output.execution_count} if "execution_count" in output else {}
            kept.append(nbformat.v4.new_output(output.output_type, data=data, **count))
    return kept


def with_reference_outputs(solution: nbformat.NotebookNode,
                           executed: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``solution`` whose ``# NBVAL_CHECK_OUTPUT`` cells carry the outputs of the same
    cells (matched by cell id) in ``executed`` — e.g. papermill's output copy — and whose other
    code cells carry none.

    Raises
    ------
    NotebookError: a marked cell is missing from the executed notebook, or did not run.
    """
    ran = {cell.get("id"): cell for cell in executed.cells}
    nb = copy.deepcopy(solution)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        if checks_output(cell):
            twin = ran.get(cell.get("id"))
            if twin is None or twin.source != cell.source or twin.execution_count is None:
                raise NotebookError(f"cell {index + 1} ({cell.get('id')}) did not run in the executed notebook")
            cell.outputs, cell.execution_count = reference_outputs(twin.outputs), twin.execution_count
    return nb


def refresh_reference_outputs(data: str | os.PathLike | None = None, progress: bool = True) -> list[str]:
    """Execute the solution notebooks in lab order into a scratch warehouse and store in each the
    outputs of its ``# NBVAL_CHECK_OUTPUT`` cells, the reference the test suite's nbval run compares
    with. Returns the names of the notebooks whose stored outputs changed (and were rewritten).

    Raises
    ------
    NotebookError: a solution notebook failed (names the notebook and cell).
    """
    changed = []
    with tempfile.TemporaryDirectory(prefix="medilake-refresh-") as tmp, WarmKernel(solutions_dir()) as kernel:
        params = {"warehouse": str(Path(tmp) / "warehouse"), "data_dir": str(config.data_dir(data))}
        for spec in all_labs():
            source = solutions_dir() / spec.notebook
            if not source.exists():
                continue
            executed = execute_notebook(source, Path(tmp) / "runs" / spec.notebook, params, progress, kernel)
            text = nbformat.writes(with_reference_outputs(nbformat.read(source, as_version=4),
                                                         nbformat.read(executed, as_version=4))) + "\n"
            if text != source.read_text():
                source.write_text(text)
                changed.append(spec.notebook)
    return changed


def execute_lab(spec: LabSpec, warehouse: str | os.PathLike | None = None,
                data: str | os.PathLike | None = None, learner: bool = False,
                console: Console | None = None, kernel: WarmKernel | None = None) -> Path:
    """Execute a lab's solution (or learner) notebook against a warehouse, in ``kernel`` when given
    (:class:`WarmKernel` on :func:`notebooks_dir`), else in a kernel of its own; returns the executed
    copy under ``<state>/runs/``."""
    source = notebooks_dir(learner) / spec.notebook
    if not source.exists():
        raise NotebookError(f"no notebook {source}")
    output = config.state_dir() / "runs" / ("learner" if learner else "solution") / spec.notebook
    params = {"warehouse": str(config.warehouse_dir(warehouse)), "data_dir": str(config.data_dir(data))}
    if console:
        console.print(f"[bold]▶ lab {spec.id}[/] {escape(spec.title)}: executing {escape(source.name)}")
    return execute_notebook(source, output, params, kernel=kernel)
