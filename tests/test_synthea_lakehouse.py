"""End to end on data nobody here wrote: import the Synthea sample, run every lab's solution
notebook on it (in ``labs.yaml`` order, one warehouse) and require every check to pass.

The sample is far smaller and sparser than the bundled data (27 patients: a few lab results a
month, encounters spread over decades), so it also proves that the notebooks pick their demo
months and tests from the data they find and that the checks state their rules for any data size
— and, with a wrong answer built on a copy, that a rule restated for small data still fails a
wrong answer there.

Skips cleanly when the sample folder (``../shared/data/synthea-csv`` beside the project, or
``$MEDILAKE_SYNTHEA_SAMPLE``) is absent. The sample is read in place, never copied here.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from medilake_lab import grader
from medilake_lab.contract.labs import all_labs
from medilake_lab.grader import Status

# the fixture runs seven notebooks: 800 s in one process, 1360 s beside a second xdist worker
# (benchmarks/RESULTS.md, "CI time"); the suite's 30-minute limit per item left too little margin
pytestmark = [pytest.mark.spark, pytest.mark.notebooks, pytest.mark.timeout(3600)]

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = Path(os.environ.get("MEDILAKE_SYNTHEA_SAMPLE",
                             ROOT.parent / "shared" / "data" / "synthea-csv"))
#: Labs run on the sample: all of them. Lab 07's first run there found two gaps the bundled data hides
#: (a silver table the erased patient had no row in; a facility whose only encounters were theirs),
#: both fixed; a full run of labs 01–07 on the sample then passed all 58 checks (2 Dec 2026).
LAB_IDS = [spec.id for spec in all_labs()]


@pytest.fixture(scope="module")
def synthea_runs(tmp_path_factory: pytest.TempPathFactory, default_jit) -> dict:
    """Import the sample, then execute the solution notebooks in order into one warehouse.

    Returns ``{"data": Path, "warehouse": Path, "errors": {lab_id: str}}``; after a notebook
    raises, the later labs are recorded as not run (they build on it).
    """
    if not (SAMPLE / "patients.csv").is_file():
        pytest.skip(f"Synthea sample not found at {SAMPLE} (set MEDILAKE_SYNTHEA_SAMPLE to a "
                    "Synthea output/csv folder to run this test)")
    from medilake_lab.course.notebooks import NotebookError, WarmKernel, execute_notebook, solutions_dir
    from medilake_lab.importers import import_synthea

    data = tmp_path_factory.mktemp("synthea-data")
    import_synthea(SAMPLE, data)
    warehouse = tmp_path_factory.mktemp("synthea-warehouse")
    executed = tmp_path_factory.mktemp("synthea-executed")
    runs: dict = {"data": data, "warehouse": warehouse, "errors": {}}
    failed = None
    # one kernel for the labs, as `medilake_lab run all`, with the JVM's default JIT (root conftest.py)
    with default_jit(), WarmKernel(solutions_dir()) as kernel:
        for spec in (spec for spec in all_labs() if spec.id in LAB_IDS):
            if failed:
                runs["errors"][spec.id] = f"not run: lab {failed}'s notebook failed"
                continue
            try:
                execute_notebook(solutions_dir() / spec.notebook, executed / spec.notebook,
                                 {"warehouse": str(warehouse), "data_dir": str(data)},
                                 progress=False, kernel=kernel)
            except NotebookError as exc:
                runs["errors"][spec.id] = str(exc)
                failed = spec.id
    return runs


@pytest.mark.parametrize("lab_id", LAB_IDS)
def test_solution_passes_every_check_on_synthea(synthea_runs: dict, lab_id: str) -> None:
    assert lab_id not in synthea_runs["errors"], synthea_runs["errors"].get(lab_id)
    report = grader.grade(lab_id, synthea_runs["warehouse"], synthea_runs["data"])
    failures = [f"{r.id}: {r.status.name} — {r.finding}" for r in report.results
                if r.status is not Status.PASS]
    assert failures == [], "\n".join(failures)
    assert report.ok


def test_day_partitioning_still_fails_on_synthea(synthea_runs: dict, tmp_path: Path) -> None:
    """On the sample no month holds 200 rows, so 03.partitioning accepts a monthly grain there;
    the same tables partitioned by day (more partitions than months with data) must still fail.
    Rewritten with delta-rs on a copy: no JVM needed."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable, write_deltalake

    assert "03" not in synthea_runs["errors"], synthea_runs["errors"].get("03")
    warehouse = shutil.copytree(synthea_runs["warehouse"], tmp_path / "wh")
    for table, event, day in (("lab_results_clean", "result_ts", "result_date"),
                              ("encounters_clean", "admit_ts", "admit_date")):
        location = str(warehouse / "silver" / table)
        data = DeltaTable(location).to_pyarrow_table()
        data = data.append_column(day, pc.cast(data[event], pa.date32()))
        write_deltalake(location, data, mode="overwrite", schema_mode="overwrite",
                        partition_by=[day])
    report = grader.grade("03", warehouse, synthea_runs["data"])
    result = next(r for r in report.results if r.id == "03.partitioning")
    assert result.status is Status.FAIL
    for table, day in (("lab_results_clean", "result_date"), ("encounters_clean", "admit_date")):
        assert f"silver.{table} is over-partitioned by {day}" in result.finding
    assert "more partitions than the" in result.finding and "calendar months" in result.finding
