"""Lab 04 grader, both directions: the solution notebook's warehouse passes every check, realistic
wrong gold tables each fail the right check with a specific finding, and the reference's clinical
definitions hold on hand-made silver rows."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

import gold_variants as gv
from conftest import copy_warehouse
from medilake_lab import grader
from medilake_lab.cli import app
from medilake_lab.contract.labs import all_labs, get_lab
from medilake_lab.course.notebooks import NotebookError, execute_notebook, labs_dir
from medilake_lab.grader import Status
from medilake_lab.grader.reference import gold as ref

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
    assert "medilake_lab catchup 04" in finding


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


# ------------------------------------------- the clinical definitions, on hand-made silver rows


def _ts(day: str, hour: int = 12) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:00:00")


_TYPES = {"admit_ts": pa.timestamp("us"), "discharge_ts": pa.timestamp("us"),
          "result_ts": pa.timestamp("us"), "birth_date": pa.date32(), "onset_date": pa.date32(),
          "resolved_date": pa.date32(), "start_date": pa.date32(), "end_date": pa.date32(),
          "is_current": pa.bool_(), "is_chronic": pa.bool_(), "value": pa.float64(),
          "ref_low": pa.float64(), "ref_high": pa.float64()}


def _silver(encounters: list[dict]) -> ref.Silver:
    """Silver inputs with only these encounters (every other table empty), as of 2025-03-31."""
    tables = {name: pa.table({c: pa.array([r.get(c) for r in
                                           (encounters if name.endswith("encounters_clean")
                                            else [])], _TYPES.get(c, pa.string()))
                              for c in cols})
              for name, cols in ref.SILVER_COLUMNS.items()}
    return ref.Silver(tables, date(2025, 3, 31))


def _stay(eid: str, admit: str, discharge: str, *, patient: str = "P1", kind: str = "urgent",
          disposition: str = "home", cls: str = "inpatient") -> dict:
    return {"encounter_id": eid, "patient_id": patient, "encounter_class": cls,
            "admission_type": kind, "admit_ts": _ts(admit), "discharge_ts": _ts(discharge, 15),
            "facility_id": "F1", "facility_name": "Hospital", "discharge_disposition": disposition}


def test_readmission_definition_edges() -> None:
    silver = _silver([
        _stay("E1", "2025-01-01", "2025-01-03"),                       # index, readmitted day 30
        _stay("E2", "2025-02-02", "2025-02-04"),                       # day 30 after E1 → readmit
        _stay("E3", "2025-01-05", "2025-01-06", patient="P2"),         # index, next at day 31
        _stay("E4", "2025-02-06", "2025-02-07", patient="P2"),         # day 31 → not a readmission
        _stay("E5", "2025-01-10", "2025-01-11", patient="P3", disposition="transfer"),  # no index
        _stay("E6", "2025-01-12", "2025-01-15", patient="P3"),
        _stay("E7", "2025-01-10", "2025-01-11", patient="P4", disposition="expired"),  # no index
        _stay("E8", "2025-01-20", "2025-01-21", patient="P5"),         # index, only elective after
        _stay("E9", "2025-01-25", "2025-01-26", patient="P5", kind="elective"),
        _stay("E10", "2025-01-28", "2025-01-28", patient="P6"),        # index, ED visit after
        _stay("E11", "2025-01-29", "2025-01-29", patient="P6", cls="emergency"),
    ])
    idx = {r["encounter_id"]: r["readmitted"] for r in ref.index_stays(silver).to_pylist()}
    assert "E5" not in idx and "E7" not in idx
    assert idx["E1"] is True and idx["E3"] is False and idx["E8"] is False and idx["E10"] is False
    with31 = {r["encounter_id"]: r["readmitted"]
              for r in ref.index_stays(silver, window_days=31).to_pylist()}
    assert with31["E3"] is True
    assert "E5" in {r["encounter_id"] for r in
                    ref.index_stays(silver, transfers_are_index=True).to_pylist()}


def test_utilization_grid_and_los_in_days() -> None:
    silver = _silver([_stay("E1", "2025-01-01", "2025-01-03"),
                      _stay("E2", "2025-01-31", "2025-02-01", patient="P2"),
                      _stay("E3", "2025-03-30", "2025-03-30", patient="P3", cls="emergency")])
    rows = {r["month_start"]: r for r in ref.utilization(silver).to_pylist()}
    assert list(rows) == [date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)]
    jan, feb, mar = rows.values()
    assert (jan["admissions"], jan["discharges"], jan["inpatient_days"]) == (2, 1, 2)
    assert (feb["discharges"], feb["mean_los_days"], feb["median_los_days"]) == (1, 1.0, 1.0)
    assert (mar["admissions"], mar["ed_visits"], mar["mean_los_days"]) == (0, 1, None)
    assert mar["readmission_rate"] is None and jan["index_stays"] == 1
