"""The notebook tier's plumbing (root conftest.py): nbval's reference outputs in the solution
notebooks, what a changed number does, the order and markers of the collected cells, and when
the grader tests may reuse the warehouse nbval built. Nothing here starts Spark."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from medilake_lab.contract.labs import all_labs
from medilake_lab.course.notebooks import (
    checks_output,
    learner_notebook,
    solutions_dir,
    with_reference_outputs,
)
from medilake_lab.runtime import pipelines

ROOT = Path(__file__).resolve().parent.parent
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"


def _pytest(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def _root_conftest():
    """The root conftest.py as a plain module (its name collides with tests/conftest.py)."""
    spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
    module = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    return module


def test_solutions_store_outputs_of_checked_cells_only() -> None:
    for lab in all_labs():
        cells = [c for c in nbformat.read(solutions_dir() / lab.notebook, as_version=4).cells
                 if c.cell_type == "code"]
        checked = [c for c in cells if checks_output(c)]
        assert checked, f"{lab.notebook}: no # NBVAL_CHECK_OUTPUT cell"
        for cell in cells:
            if checks_output(cell):  # nbval compares only cells with a stored execution count
                assert cell.outputs and cell.execution_count, f"{lab.notebook}: {cell.source[:80]}"
            else:
                assert not cell.outputs and cell.execution_count is None, f"{lab.notebook}: {cell.source[:80]}"


def test_learner_notebook_drops_marker_and_outputs() -> None:
    cell = new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)", execution_count=3,
                         outputs=[new_output("stream", name="stdout", text="1\n")])
    learner = learner_notebook(new_notebook(cells=[cell]))
    assert learner.cells[0].source == "print(1)"
    assert learner.cells[0].outputs == [] and learner.cells[0].execution_count is None


def test_reference_outputs_come_from_the_executed_twin_of_each_checked_cell() -> None:
    solution = new_notebook(cells=[
        new_markdown_cell("# Lab"),
        new_code_cell("warehouse = None", metadata={"tags": ["parameters"]}),
        new_code_cell("# NBVAL_CHECK_OUTPUT\nshow_metrics()"),
        new_code_cell("print('not checked')"),
    ])
    executed = nbformat.from_dict(solution)
    executed.cells.insert(2, new_code_cell("warehouse = '/tmp/wh'", metadata={"tags": ["injected-parameters"]},
                                           execution_count=2))
    executed.cells[3].execution_count, executed.cells[3].outputs = 3, [
        new_output("stream", name="stdout", text="batch 001\n  inserted "),
        new_output("stream", name="stderr", text="WARN something\n"),
        new_output("stream", name="stdout", text="1,200\n"),
        new_output("display_data", data={"text/plain": "<Figure>", "image/png": "iVBORw0KGgo="}),
    ]
    executed.cells[4].execution_count = 4
    executed.cells[4].outputs = [new_output("stream", name="stdout", text="not checked\n")]

    stored = with_reference_outputs(solution, executed).cells
    assert [o.get("text") or o.get("data") for o in stored[2].outputs] == [
        "batch 001\n  inserted 1,200\n", {"text/plain": "<Figure>"}]
    assert stored[2].execution_count == 3
    assert stored[3].outputs == [] and stored[3].execution_count is None


def test_changed_merge_metric_fails_its_nbval_item_naming_notebook_and_cell(tmp_path: Path) -> None:
    """nbval with the project's options and sanitizers: a cell whose stored output differs only in
    sanitized parts passes; a changed MERGE count fails, and the failure names notebook and cell."""
    source = ("# NBVAL_CHECK_OUTPUT\nimport tempfile\n"
              "print(f'warehouse {tempfile.gettempdir()}/pytest-of-ci/wh, committed 2026-01-02 03:04:05.678')\n"
              "print(f'  silver.encounters_clean inserted {1200:6,d}   updated {85:5,d}   deleted {9:4,d}')\n"
              "print(object.__repr__(object()))")

    def notebook(name: str, stored: str) -> None:
        cell = new_code_cell(source, execution_count=1, outputs=[new_output("stream", name="stdout", text=stored)])
        nbformat.write(new_notebook(cells=[new_code_cell("x = 1", execution_count=1), cell]), tmp_path / name)

    same = ("warehouse /tmp/pytest-of-dev/wh, committed 2025-06-30 23:59:59.001\n"
            "  silver.encounters_clean inserted  1,200   updated    85   deleted    9\n"
            "<object object at 0x7f0000000000>\n")
    notebook("story_unchanged.ipynb", same)
    notebook("story_changed.ipynb", same.replace("updated    85", "updated    86"))

    result = _pytest("--nbval-lax", "--nbval-current-env", f"--nbval-sanitize-with={SANITIZE}", "-vv",
                     "--color=no", "-o", "addopts=", "story_unchanged.ipynb", "story_changed.ipynb", cwd=tmp_path)
    out = result.stdout
    assert result.returncode == 1, out
    assert "1 failed, 3 passed" in out, out
    assert "FAILED story_changed.ipynb::Cell 1" in out, out
    assert "Cell 1: Cell outputs differ" in out, out
    assert "-   silver.encounters_clean inserted  1,200   updated    85" in out, out  # stored
    assert "+   silver.encounters_clean inserted  1,200   updated    86" in out, out  # computed now


def test_solution_cells_are_collected_first_in_lab_order_and_marked() -> None:
    """Marked before ``-m`` deselects (else none would be selected), and ordered before the test
    modules whatever the order of the arguments."""
    listed = _pytest("--co", "-q", "-m", "spark and notebooks", "tests/test_lab01.py", "solutions",
                     cwd=ROOT).stdout.splitlines()
    cells = [line for line in listed if "::Cell " in line]
    notebooks = list(dict.fromkeys(line.split("::")[0] for line in cells))
    assert notebooks == [f"solutions/{lab.notebook}" for lab in all_labs()], listed
    assert listed[:len(cells)] == cells, "a test module collected before a solution cell"
    assert listed[len(cells)].startswith("tests/test_lab01.py::"), listed
    first = all_labs()[0].notebook
    assert cells[:2] == [f"solutions/{first}::Cell 0", f"solutions/{first}::Cell 1"]


@pytest.mark.parametrize(("states", "reused"), [
    ({}, []),                                                               # nbval did not run
    ({"01": "complete", "02": "complete"}, ["01", "02"]),                   # later labs: papermill
    ({"01": "complete", "02": "error", "03": "complete"}, ["01", "02"]),    # stop at the error
    ({"01": "complete", "02": "partial"}, []),                              # cells deselected
    ({"02": "complete"}, []),                                               # lab 01 not run first
])
def test_warehouse_is_reused_only_after_a_prefix_of_finished_notebooks(states: dict, reused: list,
                                                                       tmp_path: Path) -> None:
    module = _root_conftest()
    notebooks = module.SolutionNotebooks(warehouse=tmp_path)
    for lab, state in states.items():
        run = notebooks.runs[lab] = module.NotebookRun(lab, cells=10, before=tmp_path / lab)
        run.executed = 10 if state == "complete" else 4
        run.error = "solutions/x.ipynb::Cell 4 failed" if state == "error" else None
    assert [run.lab for run in notebooks.reusable(["01", "02", "03", "04"])] == reused


STRIP_GROUPS = '''
import pytest

@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    for item in items:  # what pytest 9.2 does to xdist's suffix (pytest-xdist#1386)
        item._nodeid = item._nodeid.split("@")[0]
'''


def test_make_test_workers_run_each_file_as_one_work_unit_and_stop_when_xdist_cannot_group(tmp_path: Path) -> None:
    workers = ("-n", "2", "--dist", "loadgroup", "--no-loadscope-reorder", "-v")
    grouped = _pytest(*workers, "tests/test_lab_list.py", cwd=ROOT)
    assert grouped.returncode == 0, grouped.stdout[-2000:]
    ran = [line for line in grouped.stdout.splitlines() if " PASSED " in line]
    assert ran and all(line.rstrip().endswith("@test_lab_list") for line in ran), ran
    assert len({line.split()[0] for line in ran}) == 1  # one work unit: one worker ran them all

    (tmp_path / "strip_groups.py").write_text(STRIP_GROUPS)
    ungrouped = _pytest("-p", "strip_groups", *workers, "tests/test_lab_list.py", cwd=ROOT,
                        env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert ungrouped.returncode == 3, ungrouped.stdout[-2000:]
    assert "pytest-xdist did not group the tests by work unit" in ungrouped.stdout
    assert "TEST_WORKERS=0 make test" in ungrouped.stdout


def test_short_jvms_get_the_c1_jit_only_and_course_kernels_the_default(default_jit, monkeypatch, tmp_path) -> None:
    """The root conftest.py appends ``TEST_JAVA_OPTIONS`` (default: C1 only) to ``JAVA_TOOL_OPTIONS``
    for every JVM the suite starts; :func:`default_jit` takes exactly what it appended out again for
    the kernels that run the whole course, and keeps what the developer had set; their pipeline runs
    get it back through the kit's ``MEDILAKE_PIPELINE_JAVA_OPTIONS``."""
    added = os.environ.get("MEDILAKE_TEST_ADDED_JAVA_OPTIONS")
    if not added:
        pytest.skip("TEST_JAVA_OPTIONS is empty: the suite sets no JVM options")
    assert added == os.environ.get("TEST_JAVA_OPTIONS", "-XX:TieredStopAtLevel=1").strip()
    assert os.environ["JAVA_TOOL_OPTIONS"].endswith(added)  # inherited by this worker's JVMs and kernels
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", f"-Xss4m -XX:TieredStopAtLevel=1 {added}")  # the developer's own
    with default_jit():
        assert os.environ["JAVA_TOOL_OPTIONS"] == "-Xss4m -XX:TieredStopAtLevel=1"
    assert os.environ["JAVA_TOOL_OPTIONS"] == f"-Xss4m -XX:TieredStopAtLevel=1 {added}"
    monkeypatch.setenv("JAVA_TOOL_OPTIONS", added)
    monkeypatch.delenv(pipelines.JAVA_OPTIONS_ENV, raising=False)
    pipeline = pipelines.Pipeline(tmp_path / pipelines.SPEC_NAME, "p", tmp_path)
    with default_jit():
        assert "JAVA_TOOL_OPTIONS" not in os.environ
        # but the pipeline runs of those kernels are short-lived JVMs again
        assert pipelines.environment(pipeline)["JAVA_TOOL_OPTIONS"] == added
    assert os.environ["JAVA_TOOL_OPTIONS"] == added
    assert pipelines.JAVA_OPTIONS_ENV not in os.environ
    assert pipelines.environment(pipeline)["JAVA_TOOL_OPTIONS"] == added  # not twice
