"""Shared fixtures. Spark-backed fixtures are session-scoped: each notebook runs once per test
run (as nbval items, see the root conftest.py, or else here with papermill), and the grader tests
inspect the warehouse it built (see tests/test_lab01.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_state(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the developer's own progress file or warehouse from a test."""
    monkeypatch.setenv("MEDILAKE_STATE", str(tmp_path_factory.mktemp("state")))
    monkeypatch.setenv("MEDILAKE_WAREHOUSE", str(tmp_path_factory.mktemp("default-warehouse")))
    monkeypatch.setenv("MEDILAKE_JARS", str(ROOT / ".medilake" / "jars"))


@pytest.fixture(scope="session")
def bundled_data() -> Path:
    """The committed default raw feeds."""
    data = ROOT / "data"
    if not (data / "landing" / "manifest.json").exists():
        pytest.fail("bundled data missing: run `medilake_lab generate`")
    return data


@pytest.fixture(scope="session")
def spark_session(tmp_path_factory: pytest.TempPathFactory):
    """One Delta-enabled local session for tests that build wrong answers with Spark."""
    from medilake_lab.runtime.spark import get_spark

    spark = get_spark(tmp_path_factory.mktemp("spark-warehouse"), app_name="medilake-tests")
    yield spark
    spark.stop()


def copy_warehouse(src: Path, dst: Path) -> Path:
    """A private copy of a built warehouse that a test may break."""
    shutil.copytree(src, dst)
    return dst


@pytest.fixture(scope="session")
def solution_runs(tmp_path_factory: pytest.TempPathFactory, bundled_data: Path, solution_notebooks,
                  default_jit) -> dict:
    """The solution notebooks executed once, in lab order, into one warehouse.

    When nbval ran them in this session (``make test``: see the root conftest.py) this is the
    warehouse nbval built; the notebooks nbval did not run (``pytest tests/test_lab02.py``,
    ``-m "not notebooks"``) are executed here with papermill, after the ones it ran.

    Returns ``{"warehouse": Path, "executed": {lab_id: Path}, "errors": {lab_id: str},
    "before": {lab_id: Path}}``: ``executed`` maps a lab to its executed notebook (papermill's
    output copy, or the solution notebook itself when nbval ran it); a lab whose notebook raised is
    recorded in ``errors`` (naming the notebook and cell) and later labs are not run.
    ``before[lab_id]`` is a copy of the warehouse as that lab found it (to run its untouched
    learner notebook on; copy it again before changing it).
    """
    from medilake_lab.contract.labs import all_labs
    from medilake_lab.course.notebooks import NotebookError, WarmKernel, execute_notebook, solutions_dir

    labs = all_labs()
    reused = {run.lab: run for run in solution_notebooks.reusable([spec.id for spec in labs])}
    warehouse = solution_notebooks.warehouse if reused else tmp_path_factory.mktemp("solution-warehouse")
    out_dir = tmp_path_factory.mktemp("executed")
    runs: dict = {"warehouse": warehouse, "executed": {}, "errors": {}, "before": {}}
    # one kernel for the labs nbval did not run, as `run all`, with the JVM's default JIT (root conftest.py)
    with default_jit(), WarmKernel(solutions_dir()) as kernel:
        for spec in labs:
            if spec.id in reused:
                runs["before"][spec.id] = reused[spec.id].before
                if reused[spec.id].error:
                    runs["errors"][spec.id] = reused[spec.id].error
                    break
                runs["executed"][spec.id] = solutions_dir() / spec.notebook
                continue
            if not (solutions_dir() / spec.notebook).exists():  # a lab still being written
                runs["errors"][spec.id] = f"no solution notebook {spec.notebook}"
                break
            runs["before"][spec.id] = tmp_path_factory.mktemp(f"before-{spec.id}")
            shutil.copytree(warehouse, runs["before"][spec.id], dirs_exist_ok=True)
            try:
                runs["executed"][spec.id] = execute_notebook(
                    solutions_dir() / spec.notebook, out_dir / spec.notebook,
                    {"warehouse": str(warehouse), "data_dir": str(bundled_data)}, progress=False, kernel=kernel)
            except NotebookError as exc:
                runs["errors"][spec.id] = str(exc)
                break
    return runs
