"""The notebook tier: the solution notebooks run as nbval test items, one item per code cell.

``pytest`` (``testpaths`` and ``--nbval-lax`` in pyproject.toml) collects ``solutions/*.ipynb``
with nbval: every code cell is a test item (``solutions/02_silver_transformations.ipynb::Cell 14``)
that fails when the cell raises or, for a cell marked ``# NBVAL_CHECK_OUTPUT``, when its output
differs from the output stored in the notebook (after tests/nbval_sanitize.cfg; stderr is not
compared). The hooks below

* collect only the notebooks of the lab list, order them as the lab list does and before every
  other test, and mark their cells ``spark`` and ``notebooks`` (``make test-fast`` deselects them);
* point each notebook's kernel at one session warehouse: the kernel starts when a notebook's first
  cell is set up and inherits the environment then, so ``MEDILAKE_WAREHOUSE``/``MEDILAKE_DATA``/
  ``MEDILAKE_STATE`` are set around that set-up only (the notebooks' parameters cell leaves
  ``warehouse``/``data_dir`` at None, so ``medilake_lab.config`` reads them from the environment).
  tests/conftest.py's autouse per-test warehouse does not apply: these items live outside tests/;
* copy the warehouse before each notebook's first cell (what the lab found, for learner runs) and
  record what each notebook's cells did, so that tests/conftest.py's ``solution_runs`` grades the
  warehouse nbval built instead of executing the notebooks a second time;
* give the suite's short-lived JVMs the C1 JIT only (:data:`SHORT_JVM_OPTIONS`), and the kernels
  that run the whole course the JVM's default JIT (:func:`default_jit`; not their pipeline runs);
* run the solution notebooks in one kernel, as ``medilake_lab run all`` does
  (:class:`medilake_lab.course.notebooks.WarmKernel`): nbval starts a kernel for the first and
  keeps it; before each later one the kernel runs ``fresh_start_code`` (no variables, that lab's
  environment, a new SparkSession with default settings on the warm JVM). The learner notebooks'
  tests still start a kernel each, as JupyterLab does.

This file sits at the root because hooks in tests/conftest.py do not see items outside tests/.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from nbval.plugin import IPyNbCell, IPyNbFile, NbCellError

from medilake_lab.contract.labs import all_labs
from medilake_lab.course.notebooks import fresh_start_code
from medilake_lab.runtime.pipelines import JAVA_OPTIONS_ENV as PIPELINE_JAVA_OPTIONS

ROOT = Path(__file__).resolve().parent
SOLUTIONS = ROOT / "solutions"
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"
#: JVM options (``JAVA_TOOL_OPTIONS``) of the suite's JVMs but the course kernels': each worker's test
#: session, learner-notebook kernels, CLI, benchmark and pipeline subprocesses, the standalone
#: cluster. C1 JIT only: a cold Spark JVM spends about half its CPU in the C2 compiler (lab 01: 47 of
#: 92 CPU s in the compiler threads, benchmarks/RESULTS.md "CI time"), which a short run never earns
#: back, and the suite is CPU-bound. The kernels that run the whole course keep the default JIT
#: (:func:`default_jit`): with C1 only, labs 01-05 took 24.4 min there instead of ~18.
#: ``TEST_JAVA_OPTIONS=`` (empty) sets nothing.
SHORT_JVM_OPTIONS = os.environ.get("TEST_JAVA_OPTIONS", "-XX:TieredStopAtLevel=1").strip()
ADDED_ENV = "MEDILAKE_TEST_ADDED_JAVA_OPTIONS"  # what pytest_configure appended to JAVA_TOOL_OPTIONS


@dataclass
class NotebookRun:
    """What nbval did with one solution notebook in this session."""

    lab: str
    cells: int = 0  # cell items collected
    executed: int = 0  # cells that ran without raising (an output mismatch still ran)
    before: Path | None = None  # copy of the warehouse as this notebook found it
    error: str | None = None  # the first cell that raised, or a failed set-up

    @property
    def complete(self) -> bool:
        return self.error is None and self.executed == self.cells


@dataclass
class SolutionNotebooks:
    """The session's nbval runs: ``runs`` in lab order, all into ``warehouse``."""

    warehouse: Path | None = None
    runs: dict[str, NotebookRun] = field(default_factory=dict)  # lab id -> run, in lab order
    kernel: Any = None  # nbval's RunningKernel shared by the solution notebooks, while it runs
    env: dict[str, str] = field(default_factory=dict)  # the environment of the notebook setting up

    def reusable(self, lab_ids: list[str]) -> list[NotebookRun]:
        """The runs whose warehouse a grader may use, in lab order: the notebooks nbval started
        must be the first ones of ``lab_ids``, each finished or stopped by a cell error (recorded in
        ``error``). Otherwise (none started; cells deselected; a notebook started out of order)
        returns ``[]`` and the notebooks must be executed afresh."""
        started = [self.runs[lab] for lab in lab_ids if lab in self.runs and self.runs[lab].before]
        if [run.lab for run in started] != lab_ids[:len(started)]:
            return []
        reused = []
        for run in started:
            if not (run.complete or run.error):
                return []
            reused.append(run)
            if run.error:
                break
        return reused


NOTEBOOKS = pytest.StashKey[SolutionNotebooks]()


def _lab_of(item: pytest.Item) -> str | None:
    """The lab id of a solution notebook's cell item, else None."""
    return _lab_of_path(item.path) if isinstance(item, IPyNbCell) else None


def _lab_of_path(path: Path) -> str | None:
    """The lab id of a solution notebook, else None."""
    if path.parent != SOLUTIONS:
        return None
    return next((spec.id for spec in all_labs() if spec.notebook == path.name), None)


def _nbval_setup(notebook: IPyNbFile, nbval_setup=IPyNbFile.setup) -> None:
    """IPyNbFile.setup for the solution notebooks: the first starts nbval's kernel and keeps it for
    the others; a later one gets it after a fresh start in its own lab's environment."""
    notebooks = notebook.config.stash[NOTEBOOKS]
    if notebook.path.parent != SOLUTIONS:
        return nbval_setup(notebook)
    shared = notebooks.kernel
    if shared is None or not shared.is_alive():
        nbval_setup(notebook)
        notebooks.kernel = notebook.kernel
        return None
    notebook.kernel = shared
    notebook.setup_sanitize_files()
    msg_id = shared.execute_cell_input(fresh_start_code(notebooks.env), allow_stdin=False)
    timeout = notebook.config.option.nbval_kernel_startup_timeout
    shared.await_reply(msg_id, timeout=timeout)
    while True:  # its output, up to the kernel's idle status: an error message means it failed
        msg = shared.get_message(stream="iopub", timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "error":
            raise RuntimeError(f"{notebook.path.name}: the shared kernel's fresh start failed: "
                               f"{msg['content']['ename']}: {msg['content']['evalue']}")
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return None


def _nbval_teardown(notebook: IPyNbFile, nbval_teardown=IPyNbFile.teardown) -> None:
    """IPyNbFile.teardown: the shared kernel stops after the last solution notebook of the lab list
    (or at the end of the session), not after each."""
    notebooks = notebook.config.stash[NOTEBOOKS]
    if notebook.kernel is not None and notebook.kernel is notebooks.kernel \
            and _lab_of_path(notebook.path) != next(reversed(notebooks.runs), None):
        return None
    notebooks.kernel = None
    return nbval_teardown(notebook)


@contextmanager
def default_jit() -> Iterator[None]:
    """Within the block, JVMs started by this process or its children (the kernels that run the whole
    course, and their Spark) get the JVM's default JIT: the options :func:`pytest_configure` added
    leave ``JAVA_TOOL_OPTIONS``, anything the developer had set there stays. The short-lived JVMs of
    the pipeline runs those kernels start (lab 06) keep them, through the kit's
    ``MEDILAKE_PIPELINE_JAVA_OPTIONS``: a scale-1 run then costs about 82 CPU s instead of 109."""
    with pytest.MonkeyPatch.context() as env:
        options, added = os.environ.get("JAVA_TOOL_OPTIONS", ""), os.environ.get(ADDED_ENV, "")
        kept = options.removesuffix(added).strip() if added else options
        if kept:
            env.setenv("JAVA_TOOL_OPTIONS", kept)
        else:
            env.delenv("JAVA_TOOL_OPTIONS", raising=False)
        if added:
            env.setenv(PIPELINE_JAVA_OPTIONS, f"{os.environ.get(PIPELINE_JAVA_OPTIONS, '')} {added}".strip())
        yield


@pytest.fixture(name="default_jit", scope="session")
def default_jit_fixture():
    """:func:`default_jit`, for the fixtures under tests/ that run the whole course in one kernel."""
    return default_jit


def pytest_configure(config: pytest.Config) -> None:
    if SHORT_JVM_OPTIONS and ADDED_ENV not in os.environ:  # xdist's workers inherit both
        env = pytest.MonkeyPatch()  # undone when pytest ends (a run inside another Python process)
        options = os.environ.get("JAVA_TOOL_OPTIONS", "")
        env.setenv("JAVA_TOOL_OPTIONS", f"{options} {SHORT_JVM_OPTIONS}".strip())
        env.setenv(ADDED_ENV, SHORT_JVM_OPTIONS)
        config.add_cleanup(env.undo)
    config.stash[NOTEBOOKS] = SolutionNotebooks()
    IPyNbFile.setup = _nbval_setup  # type: ignore[method-assign]
    IPyNbFile.teardown = _nbval_teardown  # type: ignore[method-assign]
    if config.option.nbval_sanitize_with is None:  # a path in addopts would depend on the cwd
        config.option.nbval_sanitize_with = str(SANITIZE)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Collect only the solution notebooks of labs in the lab list (a scaffold may be unlisted)."""
    if collection_path.suffix == ".ipynb" and collection_path.parent == SOLUTIONS:
        return True if collection_path.name not in {spec.notebook for spec in all_labs()} else None
    return None


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    order = [spec.id for spec in all_labs()]
    runs = config.stash[NOTEBOOKS].runs
    for item in items:
        lab = _lab_of(item)
        if lab is None:
            continue
        item.add_marker(pytest.mark.spark)
        item.add_marker(pytest.mark.notebooks)
        if "stderr" not in item.parent.skip_compare:  # JVM and Python warnings: not part of a lab's story
            item.parent.skip_compare += ("stderr",)
        runs.setdefault(lab, NotebookRun(lab)).cells += 1
    config.stash[NOTEBOOKS].runs = {lab: runs[lab] for lab in order if lab in runs}
    position = {lab: i for i, lab in enumerate(order)}
    # stable sort: solution cells first, by lab, in cell order; every other test after them, as collected
    items.sort(key=lambda item: (position[lab], 0) if (lab := _lab_of(item)) else (len(order), 1))
    _group_for_workers(items)


#: fixtures that read the warehouse the solution notebooks built in this process
SOLUTION_FIXTURES = frozenset({"solution_runs", "solution_notebooks"})
#: markers of tests that start a JVM, a kernel or a browser: the long work units
HEAVY_MARKERS = ("spark", "notebooks", "cluster", "browser")


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook, run by the controller
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """Stop unless xdist really put every item in its work unit: with ``--dist loadgroup`` it
    suffixes each node id with ``@<group>`` (pytest 9.2 ignores that, see pyproject.toml), and
    solution notebooks split over two workers fail cell after cell with NameErrors."""
    lost = next((nodeid for nodeid in ids if "@" not in nodeid), None)
    if node.config.getoption("dist") == "loadgroup" and lost:
        pytest.exit(f"pytest-xdist did not group the tests by work unit (e.g. {lost}): this pytest and "
                    "pytest-xdist cannot run `make test` on workers; install the versions pyproject.toml "
                    "allows (`make setup`), or run TEST_WORKERS=0 make test", returncode=3)


def _group_for_workers(items: list[pytest.Item]) -> None:
    """Group the items into work units for ``pytest -n N --dist loadgroup`` (``make test``), and
    order the units longest-first (xdist hands them out in collection order with
    ``--no-loadscope-reorder``; each worker runs its units one after another).

    * ``solutions``: the solution notebooks' cells and every test that grades the warehouse they
      built (``solution_runs``), in one worker, so that each notebook still runs once per session;
    * every other test file is a unit of its own, so its module fixtures are built once;
    * order: ``solutions``, then the files with a test marked as starting a JVM, kernel or browser,
      then the rest (fill-in work for whichever worker is free first).

    Without xdist the marker does nothing; the order is the same in one process too (no test depends
    on running before or after another file's).
    """
    def group(item: pytest.Item) -> str:
        if _lab_of(item) or SOLUTION_FIXTURES & set(getattr(item, "fixturenames", ())):
            return "solutions"
        return item.path.stem  # (xdist shows it after each node id: keep it short)

    groups = {id(item): group(item) for item in items}
    heavy = {groups[id(item)] for item in items if any(item.get_closest_marker(m) for m in HEAVY_MARKERS)}
    for item in items:
        item.add_marker(pytest.mark.xdist_group(groups[id(item)]))
    items.sort(key=lambda item: 0 if groups[id(item)] == "solutions" else 1 if groups[id(item)] in heavy else 2)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    lab = _lab_of(item)
    notebooks = item.config.stash[NOTEBOOKS]
    run = notebooks.runs.get(lab) if lab else None
    if run is None or run.before is not None:
        return (yield)
    if notebooks.warehouse is None:
        notebooks.warehouse = item.config._tmp_path_factory.mktemp("nbval-warehouse")  # tmp_path_factory's
    run.before = item.config._tmp_path_factory.mktemp(f"before-{lab}")
    shutil.copytree(notebooks.warehouse, run.before, dirs_exist_ok=True)
    state = item.config._tmp_path_factory.mktemp(f"nbval-state-{lab}")
    notebooks.env = {
        "MEDILAKE_WAREHOUSE": str(notebooks.warehouse),
        "MEDILAKE_DATA": str(ROOT / "data"),  # what solution_runs grades against
        "MEDILAKE_STATE": str(state),
        "MEDILAKE_JARS": os.environ.get("MEDILAKE_JARS", str(ROOT / ".medilake" / "jars")),
    }
    # a kernel started by this set-up keeps this environment, and the default JIT (it runs every lab)
    with default_jit(), pytest.MonkeyPatch.context() as env:
        for name, value in notebooks.env.items():
            env.setenv(name, value)
        return (yield)


def pytest_sessionfinish(session: pytest.Session) -> None:
    kernel = session.config.stash[NOTEBOOKS].kernel
    if kernel is not None and kernel.is_alive():
        kernel.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    lab = _lab_of(item)
    run = item.config.stash[NOTEBOOKS].runs.get(lab) if lab else None
    if run is None or run.error or (report.when != "call" and not report.failed):
        return report
    mismatch = call.excinfo is not None and isinstance(call.excinfo.value, NbCellError) \
        and str(call.excinfo.value) == "Cell outputs differ"
    if report.when == "call" and (report.passed or report.skipped or mismatch):
        run.executed += 1
    elif report.failed:
        what = str(call.excinfo.value).splitlines()[0] if call.excinfo else report.when
        run.error = f"{item.nodeid} failed in nbval ({report.when}): {what}"
    return report


@pytest.fixture(scope="session")
def solution_notebooks(pytestconfig: pytest.Config) -> SolutionNotebooks:
    """What nbval did with the solution notebooks in this session (see this module's docstring)."""
    return pytestconfig.stash[NOTEBOOKS]
