"""Lab 01 grader, both directions: the solution notebook's warehouse passes every check, and
realistic wrong answers each fail the right check with the observed value in the finding."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bronze_variants import read, rebuild
from conftest import copy_warehouse
from medilake_lab import grader
from medilake_lab.cli import app
from medilake_lab.contract import feeds
from medilake_lab.contract.labs import get_lab
from medilake_lab.course.notebooks import NotebookError, execute_notebook, labs_dir
from medilake_lab.grader import Status

pytestmark = [pytest.mark.spark, pytest.mark.notebooks]


def _status(report: grader.LabReport) -> dict[str, Status]:
    return {r.id.split(".", 1)[1]: r.status for r in report.results}


def _finding(report: grader.LabReport, check_id: str) -> str:
    return next(r.finding for r in report.results if r.id == f"01.{check_id}")


@pytest.fixture(scope="module")
def solution_warehouse(solution_runs: dict) -> Path:
    assert "01" not in solution_runs["errors"], solution_runs["errors"].get("01")
    return solution_runs["warehouse"]


def test_solution_passes_every_check(solution_warehouse: Path, bundled_data: Path) -> None:
    report = grader.grade("01", solution_warehouse, bundled_data)
    failures = [(r.id, r.finding) for r in report.results if r.status is not Status.PASS]
    assert failures == []
    assert report.ok and report.total == len(get_lab("01").checks)


def test_cli_check_json_on_solution(solution_warehouse: Path, bundled_data: Path) -> None:
    result = CliRunner().invoke(app, ["check", "01", "-w", str(solution_warehouse),
                                      "-d", str(bundled_data), "--json"])
    assert result.exit_code == 0, result.output
    assert '"status": "PASS"' in result.output and '"FAIL"' not in result.output


def test_empty_warehouse_fails_cleanly_with_hint(tmp_path: Path, bundled_data: Path) -> None:
    result = CliRunner().invoke(app, ["check", "01", "-w", str(tmp_path), "-d", str(bundled_data)])
    assert result.exit_code == 1
    assert "run lab 01" in result.output and "Traceback" not in result.output
    report = grader.grade("01", tmp_path, bundled_data)
    assert _status(report)["tables_exist"] is Status.FAIL
    assert {s for k, s in _status(report).items() if k != "tables_exist"} == {Status.SKIP}


def test_unknown_lab_is_usage_error() -> None:
    result = CliRunner().invoke(app, ["check", "42"])
    assert result.exit_code == 2 and "known labs" in result.output


def test_overwrite_instead_of_append_fails(spark_session, solution_warehouse, bundled_data, tmp_path):
    wh = copy_warehouse(solution_warehouse, tmp_path / "wh")
    rebuild(spark_session, wh, bundled_data, "lab_results", write_mode="overwrite")
    report = grader.grade("01", wh, bundled_data)
    status = _status(report)
    assert status["append_only"] is Status.FAIL
    assert "bronze.lab_results" in _finding(report, "append_only")
    assert "mode=Overwrite" in _finding(report, "append_only")
    assert status["all_batches"] is Status.FAIL and "lacks batch 001" in _finding(report, "all_batches")
    assert status["row_counts"] is Status.FAIL


def test_dropmalformed_fails(spark_session, solution_warehouse, bundled_data, tmp_path):
    wh = copy_warehouse(solution_warehouse, tmp_path / "wh")
    rebuild(spark_session, wh, bundled_data, "encounters", mode="DROPMALFORMED", corrupt=False)
    report = grader.grade("01", wh, bundled_data)
    assert _status(report)["malformed_kept"] is Status.FAIL
    assert "has no _corrupt_record column" in _finding(report, "malformed_kept")
    assert _status(report)["row_counts"] is Status.FAIL
    assert _status(report)["append_only"] is Status.PASS


def test_double_ingestion_fails(spark_session, solution_warehouse, bundled_data, tmp_path):
    wh = copy_warehouse(solution_warehouse, tmp_path / "wh")
    read(spark_session, bundled_data, "diagnoses", "002").write.format("delta").mode("append") \
        .save(str(wh / "bronze" / "diagnoses"))
    report = grader.grade("01", wh, bundled_data)
    assert _status(report)["no_double_ingestion"] is Status.FAIL
    assert "diagnoses_002.json.gz ingested 2×" in _finding(report, "no_double_ingestion")
    assert _status(report)["append_only"] is Status.PASS  # an append is still an append


def test_missing_metadata_fails(spark_session, solution_warehouse, bundled_data, tmp_path):
    wh = copy_warehouse(solution_warehouse, tmp_path / "wh")
    rebuild(spark_session, wh, bundled_data, "medications", metadata=("_ingested_at", "_source_file"))
    report = grader.grade("01", wh, bundled_data)
    assert _status(report)["metadata_columns"] is Status.FAIL
    assert "bronze.medications lacks _batch_id" in _finding(report, "metadata_columns")


def test_schema_inference_fails(spark_session, solution_warehouse, bundled_data, tmp_path):
    wh = copy_warehouse(solution_warehouse, tmp_path / "wh")
    rebuild(spark_session, wh, bundled_data, "procedures", explicit=False)
    report = grader.grade("01", wh, bundled_data)
    assert _status(report)["explicit_schema"] is Status.FAIL
    assert "procedure_ts is string, expected timestamp" in _finding(report, "explicit_schema")


def test_dropped_drift_column_fails(spark_session, solution_warehouse, bundled_data, tmp_path):
    wh = copy_warehouse(solution_warehouse, tmp_path / "wh")
    path = wh / "bronze" / "encounters"
    import shutil
    shutil.rmtree(path)
    for batch in feeds.BATCHES:  # the learner kept the batch-001 schema for every batch
        df = read(spark_session, bundled_data, "encounters", "001").limit(0).unionByName(
            read(spark_session, bundled_data, "encounters", batch).drop(feeds.DRIFT_COLUMN),
            allowMissingColumns=True)
        df.write.format("delta").mode("append").save(str(path))
    report = grader.grade("01", wh, bundled_data)
    assert _status(report)["schema_drift"] is Status.FAIL
    assert "admission_source is missing" in _finding(report, "schema_drift")


def test_untouched_learner_notebook_fails(tmp_path: Path, bundled_data: Path) -> None:
    wh = tmp_path / "learner-wh"
    with pytest.raises(NotebookError, match="NotImplementedError"):
        execute_notebook(labs_dir() / "01_bronze_ingestion.ipynb", tmp_path / "out.ipynb",
                         {"warehouse": str(wh), "data_dir": str(bundled_data)}, progress=False)
    assert not grader.grade("01", wh, bundled_data).ok
