"""Lab 03 grader, both directions: the solution notebook's warehouse passes every check, realistic
wrong answers (built with Spark on a copy, see optimization_variants.py) each fail the right check
with the observed value in the finding, and the untouched learner notebook fails."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import optimization_variants as variants
from conftest import copy_warehouse
from medilake_lab import grader
from medilake_lab.cli import app
from medilake_lab.contract.labs import all_labs, get_lab
from medilake_lab.course.notebooks import NotebookError, execute_notebook, labs_dir
from medilake_lab.grader import Status
from medilake_lab.grader.lab03 import MAX_LOOKUP_SHARE

pytestmark = [pytest.mark.spark, pytest.mark.notebooks]

CHECKS = tuple(spec.id for spec in get_lab("03").checks)


def _status(report: grader.LabReport) -> dict[str, Status]:
    return {r.id.split(".", 1)[1]: r.status for r in report.results}


def _finding(report: grader.LabReport, check_id: str) -> str:
    return next(r.finding for r in report.results if r.id == f"03.{check_id}")


@pytest.fixture(scope="module")
def solution_warehouse(solution_runs: dict) -> Path:
    for lab in (x.id for x in all_labs() if x.id <= "03"):
        assert lab not in solution_runs["errors"], solution_runs["errors"].get(lab)
    return solution_runs["warehouse"]


@pytest.fixture()
def broken(solution_warehouse: Path, tmp_path: Path) -> Path:
    """A private copy of the solution warehouse a test may break."""
    return copy_warehouse(solution_warehouse, tmp_path / "wh")


# ---------------------------------------------------------------------------- right answers

def test_solution_passes_every_check(solution_warehouse: Path, bundled_data: Path) -> None:
    report = grader.grade("03", solution_warehouse, bundled_data)
    failures = [(r.id, r.finding) for r in report.results if r.status is not Status.PASS]
    assert failures == []
    assert report.total == len(CHECKS) and report.ok
    assert "ZORDER BY (patient_id)" in _finding(report, "zorder")
    assert "pruned by result_month" in _finding(report, "pruned_merge")


def test_cli_check_json_on_solution(solution_warehouse: Path, bundled_data: Path) -> None:
    result = CliRunner().invoke(app, ["check", "03", "-w", str(solution_warehouse),
                                      "-d", str(bundled_data), "--json"])
    assert result.exit_code == 0, result.output
    assert '"status": "PASS"' in result.output and '"FAIL"' not in result.output


def test_empty_warehouse_fails_cleanly_with_hint(tmp_path: Path, bundled_data: Path) -> None:
    result = CliRunner().invoke(app, ["check", "03", "-w", str(tmp_path), "-d", str(bundled_data)])
    assert result.exit_code == 1
    assert "finish lab 02" in result.output and "Traceback" not in result.output
    report = grader.grade("03", tmp_path, bundled_data)
    # lab 03 starts from lab 02's tables: the fix for those is lab 02, for its own sandbox lab 03
    assert "finish lab 02 (or `medilake_lab catchup 03`" in _finding(report, "tables_exist")
    assert "run lab 03 (or `medilake_lab catchup 04`" in _finding(report, "vacuum_sandbox")
    status = _status(report)
    assert status["tables_exist"] is Status.FAIL and status["vacuum_sandbox"] is Status.FAIL
    assert {status[c] for c in CHECKS[1:-1]} == {Status.SKIP}


# ---------------------------------------------------------------------------- wrong answers

def test_no_optimize_leaves_small_files(spark_session, broken: Path, bundled_data: Path) -> None:
    variants.no_optimize(spark_session, broken)
    report = grader.grade("03", broken, bundled_data)
    assert _status(report)["optimize"] is Status.FAIL
    finding = _finding(report, "optimize")
    assert "silver.lab_results_clean: no OPTIMIZE since" in finding
    assert "small files remain" in finding and "mean" in finding
    assert "silver.encounters_clean" not in finding  # encounters were optimized
    assert _status(report)["zorder"] is Status.FAIL
    assert _status(report)["partitioning"] is Status.PASS


def test_zorder_by_other_column_fails(spark_session, broken: Path, bundled_data: Path) -> None:
    variants.zorder_by(spark_session, broken, "loinc_code")
    report = grader.grade("03", broken, bundled_data)
    status = _status(report)
    assert status["zorder"] is Status.FAIL
    assert "ZORDER BY (loinc_code): patient lookups need patient_id" in _finding(report, "zorder")
    assert status["data_skipping"] is Status.FAIL
    assert f"at most {MAX_LOOKUP_SHARE:.0%} expected" in _finding(report, "data_skipping")
    assert status["optimize"] is Status.PASS


def test_partitioned_by_patient_id_fails(spark_session, broken: Path, bundled_data: Path) -> None:
    variants.partition_by_patient(spark_session, broken)
    report = grader.grade("03", broken, bundled_data)
    assert _status(report)["partitioning"] is Status.FAIL
    finding = _finding(report, "partitioning")
    assert "silver.lab_results_clean is partitioned by patient_id, an identifier" in finding
    assert "rows per partition" in finding
    assert "silver.encounters_clean" not in finding


def test_unsafe_vacuum_on_production_fails(spark_session, broken: Path, bundled_data: Path) -> None:
    variants.unsafe_vacuum(spark_session, broken)
    report = grader.grade("03", broken, bundled_data)
    assert _status(report)["vacuum"] is Status.FAIL
    finding = _finding(report, "vacuum")
    assert "silver.lab_results_clean" in finding
    assert "retention 0 h, retention check disabled" in finding
    assert _status(report)["vacuum_sandbox"] is Status.PASS


def test_merge_without_partition_predicate_fails(spark_session, broken: Path, bundled_data: Path) -> None:
    variants.unpruned_merge(spark_session, broken)
    report = grader.grade("03", broken, bundled_data)
    assert _status(report)["pruned_merge"] is Status.FAIL
    finding = _finding(report, "pruned_merge")
    assert "has no literal condition on partition column result_month" in finding
    assert "it searched all" in finding


def test_restore_to_wrong_version_fails(spark_session, broken: Path, bundled_data: Path) -> None:
    target = variants.restore_wrong_version(spark_session, broken)
    report = grader.grade("03", broken, bundled_data)
    assert _status(report)["restore"] is Status.FAIL
    finding = _finding(report, "restore")
    assert f"to v{target} after the incident" in finding
    assert "went back past the pre-incident version" in finding and "MERGE" in finding


def test_untouched_learner_notebook_fails(solution_runs: dict, tmp_path: Path,
                                          bundled_data: Path) -> None:
    assert "03" in solution_runs["before"], "lab 03 never started in the solution run"
    wh = tmp_path / "learner-wh"
    shutil.copytree(solution_runs["before"]["03"], wh)
    with pytest.raises(NotebookError, match="NotImplementedError"):
        execute_notebook(labs_dir() / "03_delta_optimization.ipynb", tmp_path / "out.ipynb",
                         {"warehouse": str(wh), "data_dir": str(bundled_data)}, progress=False)
    report = grader.grade("03", wh, bundled_data)
    assert not report.ok
    assert "silver.lab_results_clean is not partitioned" in _finding(report, "partitioning")
