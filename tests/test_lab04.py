"""Lab 04 grader, both directions: the solution notebook's warehouse passes every check, and realistic
wrong gold tables each fail the right check with a specific finding (the reference's clinical
definitions on hand-made silver rows are tested without a JVM in tests/fast/test_fast_lab04.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import gold_variants as gv
from conftest import copy_warehouse
from medilake_lab import grader
from medilake_lab.cli import app
from medilake_lab.contract.labs import all_labs, get_lab
from medilake_lab.course.notebooks import NotebookError, execute_notebook, labs_dir
from medilake_lab.grader import Status

pytestmark = [pytest.mark.spark, pytest.mark.notebooks]


def _status(report: grader.LabReport) -> dict[str, Status]:
    return {r.id.split(".", 1)[1]: r.status for r in report.results}


def _finding(report: grader.LabReport, check_id: str) -> str:
    return next(r.finding for r in report.results if r.id == f"04.{check_id}")


@pytest.fixture(scope="module")
def solution_warehouse(solution_runs: dict) -> Path:
    up_to_04 = {lab.id for lab in all_labs() if lab.id <= "04"}
    assert not up_to_04 & set(solution_runs["errors"]), solution_runs["errors"]
    assert "04" in solution_runs["executed"]
    return solution_runs["warehouse"]


@pytest.fixture
def wh(solution_warehouse: Path, tmp_path: Path) -> Path:
    """A private copy of the solution warehouse that a test may break."""
    return copy_warehouse(solution_warehouse, tmp_path / "wh")


# ------------------------------------------------------------------ the solution and the basics


def test_solution_passes_every_check(solution_warehouse: Path, bundled_data: Path) -> None:
    report = grader.grade("04", solution_warehouse, bundled_data)
    failures = [(r.id, r.finding) for r in report.results if r.status is not Status.PASS]
    assert failures == []
    assert report.ok and report.total == len(get_lab("04").checks)


def test_cli_check_json_on_solution(solution_warehouse: Path, bundled_data: Path) -> None:
    result = CliRunner().invoke(app, ["check", "04", "-w", str(solution_warehouse),
                                      "-d", str(bundled_data), "--json"])
    assert result.exit_code == 0, result.output
    assert '"FAIL"' not in result.output


def test_missing_gold_table_fails_with_hint(wh: Path, bundled_data: Path) -> None:
    shutil.rmtree(wh / "gold" / "lab_abnormal_trends")
    result = CliRunner().invoke(app, ["check", "04", "-w", str(wh), "-d", str(bundled_data)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    report = grader.grade("04", wh, bundled_data)
    assert _status(report)["tables_exist"] is Status.FAIL
    finding = _finding(report, "tables_exist")
    assert "gold.lab_abnormal_trends" in finding and "run lab 04" in finding
    later = [lab.id for lab in all_labs() if lab.id > "04"]
    assert f"medilake_lab catchup {later[0] if later else '04'}" in finding  # builds labs up to 04


def test_missing_silver_is_a_finding_not_a_traceback(wh: Path, bundled_data: Path) -> None:
    shutil.rmtree(wh / "silver" / "diagnoses_clean")
    report = grader.grade("04", wh, bundled_data)
    assert _status(report)["summary_values"] is Status.FAIL
    assert "silver.diagnoses_clean is missing" in _finding(report, "summary_values")
    assert "could not inspect" not in _finding(report, "summary_values")


# ------------------------------------------------------------------------- wrong answers


def test_los_in_hours_fails(spark_session, wh: Path, bundled_data: Path) -> None:
    gv.merge_utilization(spark_session, wh, gv.utilization(spark_session, wh, los=gv.LOS_HOURS))
    report = grader.grade("04", wh, bundled_data)
    status = _status(report)
    assert status["utilization_values"] is Status.FAIL
    finding = _finding(report, "utilization_values")
    assert "mean_los_days differs" in finding and "observed" in finding and "expected" in finding
    assert "hours, not days" in finding
    assert status["readmissions"] is Status.PASS
    assert status["refresh_pattern"] is Status.PASS


def test_readmission_window_of_31_days_fails(spark_session, wh: Path, bundled_data: Path) -> None:
    gv.merge_utilization(spark_session, wh, gv.utilization(spark_session, wh, window_days=31))
    report = grader.grade("04", wh, bundled_data)
    status = _status(report)
    assert status["readmissions"] is Status.FAIL
    finding = _finding(report, "readmissions")
    assert "readmissions_30d differs" in finding
    assert "31-day window" in finding and "transfers" not in finding
    assert status["utilization_values"] is Status.PASS


def test_counting_transfers_as_index_stays_fails(spark_session, wh: Path,
                                                 bundled_data: Path) -> None:
    gv.merge_utilization(spark_session, wh,
                         gv.utilization(spark_session, wh, transfers_are_index=True))
    report = grader.grade("04", wh, bundled_data)
    assert _status(report)["readmissions"] is Status.FAIL
    finding = _finding(report, "readmissions")
    assert "index_stays differs" in finding
    assert "counting transfers as index stays" in finding


def test_prevalence_counting_encounters_fails(spark_session, wh: Path, bundled_data: Path) -> None:
    gv.prevalence_by_encounters(spark_session, wh)
    report = grader.grade("04", wh, bundled_data)
    status = _status(report)
    assert status["prevalence_values"] is Status.FAIL
    finding = _finding(report, "prevalence_values")
    assert "gold.disease_prevalence_daily: patients differs" in finding
    assert "count(DISTINCT patient_id)" in finding
    assert status["grain"] is Status.PASS and status["refresh_pattern"] is Status.PASS


def test_ssn_and_name_columns_fail(spark_session, wh: Path, bundled_data: Path) -> None:
    gv.summary_with_identifiers(spark_session, wh, {"ssn": gv.FAKE_SSN, "first_name": "first_name",
                                                    "last_name": "last_name"})
    report = grader.grade("04", wh, bundled_data)
    assert _status(report)["no_identifiers"] is Status.FAIL
    finding = _finding(report, "no_identifiers")
    assert "gold.patient_clinical_summary.ssn: the name marks a direct identifier (SSN)" in finding
    assert "gold.patient_clinical_summary.first_name: the name marks a direct identifier (patient name)" in finding
    assert _status(report)["summary_values"] is Status.PASS  # extra columns are not a value error


def test_names_under_an_innocent_column_name_fail(spark_session, wh: Path,
                                                  bundled_data: Path) -> None:
    gv.summary_with_identifiers(spark_session, wh, {
        "analyst_label": "concat(first_name, ' ', last_name)", "ref_code": gv.FAKE_SSN})
    report = grader.grade("04", wh, bundled_data)
    finding = _finding(report, "no_identifiers")
    assert _status(report)["no_identifiers"] is Status.FAIL
    assert "analyst_label holds patient name values" in finding
    assert "ref_code holds SSN-like values" in finding


def test_append_instead_of_merge_fails_refresh_pattern(spark_session, wh: Path,
                                                      bundled_data: Path) -> None:
    path = str(wh / "gold" / "hospital_utilization_metrics")
    spark_session.read.format("delta").load(path).localCheckpoint() \
        .write.format("delta").mode("append").save(path)
    report = grader.grade("04", wh, bundled_data)
    status = _status(report)
    assert status["refresh_pattern"] is Status.FAIL
    assert "WRITE (mode=Append) after the first MERGE" in _finding(report, "refresh_pattern")
    assert status["grain"] is Status.FAIL
    assert "duplicate facility_id/month_start" in _finding(report, "grain")


def test_untouched_learner_notebook_fails(solution_warehouse: Path, tmp_path: Path,
                                          bundled_data: Path) -> None:
    wh = copy_warehouse(solution_warehouse, tmp_path / "learner-wh")
    shutil.rmtree(wh / "gold")
    with pytest.raises(NotebookError, match="NotImplementedError"):
        execute_notebook(labs_dir() / "04_gold_analytics.ipynb", tmp_path / "out.ipynb",
                         {"warehouse": str(wh), "data_dir": str(bundled_data)}, progress=False)
    assert not grader.grade("04", wh, bundled_data).ok
