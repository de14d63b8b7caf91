"""Lab 02 grader, both directions: the solution notebook's warehouse passes every check, and
realistic wrong answers each fail the right check with the observed value in the finding."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

import silver_variants as bad
from conftest import copy_warehouse
from medilake_lab import grader
from medilake_lab.cli import app
from medilake_lab.contract import feeds
from medilake_lab.contract.labs import all_labs, get_lab
from medilake_lab.course.notebooks import NotebookError, execute_notebook, labs_dir
from medilake_lab.grader import Status
from medilake_lab.grader.reference import silver as ref

pytestmark = [pytest.mark.spark, pytest.mark.notebooks]


def _status(report: grader.LabReport) -> dict[str, Status]:
    return {r.id.split(".", 1)[1]: r.status for r in report.results}


def _finding(report: grader.LabReport, check_id: str) -> str:
    return next(r.finding for r in report.results if r.id == f"02.{check_id}")


def _fails(report: grader.LabReport, check_id: str, *fragments: str) -> str:
    """Assert that a check failed and its finding holds every fragment; returns the finding."""
    finding = _finding(report, check_id)
    assert _status(report)[check_id] is Status.FAIL, finding
    for fragment in fragments:
        assert fragment in finding, finding
    return finding


@pytest.fixture(scope="module")
def solution_warehouse(solution_runs: dict) -> Path:
    for lab in (x.id for x in all_labs() if x.id <= "02"):
        assert lab not in solution_runs["errors"], solution_runs["errors"].get(lab)
    assert "02" in solution_runs["executed"]
    return solution_runs["warehouse"]


@pytest.fixture()
def warehouse(solution_warehouse: Path, tmp_path: Path) -> Path:
    """A private copy of the solution warehouse that a test may break."""
    return copy_warehouse(solution_warehouse, tmp_path / "wh")


def test_solution_passes_every_check(solution_warehouse: Path, bundled_data: Path) -> None:
    report = grader.grade("02", solution_warehouse, bundled_data)
    failures = [(r.id, r.finding) for r in report.results if r.status is not Status.PASS]
    assert failures == []
    assert report.ok and report.total == len(get_lab("02").checks)


def test_cli_check_json_on_solution(solution_warehouse: Path, bundled_data: Path) -> None:
    result = CliRunner().invoke(app, ["check", "02", "-w", str(solution_warehouse),
                                      "-d", str(bundled_data), "--json"])
    assert result.exit_code == 0, result.output
    assert '"status": "PASS"' in result.output and '"FAIL"' not in result.output


def test_missing_silver_fails_cleanly_with_hint(tmp_path: Path, bundled_data: Path) -> None:
    result = CliRunner().invoke(app, ["check", "02", "-w", str(tmp_path), "-d", str(bundled_data)])
    assert result.exit_code == 1
    assert "run lab 02" in result.output and "catchup 03" in result.output
    assert "Traceback" not in result.output
    status = _status(grader.grade("02", tmp_path, bundled_data))
    assert status.pop("tables_exist") is Status.FAIL
    assert set(status.values()) == {Status.SKIP}


def test_type1_overwrite_loses_history(spark_session, warehouse, bundled_data) -> None:
    bad.patients_type1(spark_session, warehouse)
    report = grader.grade("02", warehouse, bundled_data)
    finding = _fails(report, "scd2_versions")
    assert re.match(r"patient PAT\d+ has 1 version \(effective [^)]+\), expected \d+ versions",
                    finding), finding
    assert _status(report)["scd2_one_current"] is Status.PASS
    assert _status(report)["merge_history"] is Status.PASS  # a MERGE, just the wrong one


def test_close_without_insert_leaves_no_current_row(spark_session, warehouse,
                                                    bundled_data) -> None:
    bad.patients_close_without_insert(spark_session, warehouse)
    report = grader.grade("02", warehouse, bundled_data)
    _fails(report, "scd2_one_current", "has no current row (versions effective")
    _fails(report, "scd2_versions")


def test_two_current_rows(spark_session, warehouse, bundled_data) -> None:
    bad.patients_never_closed(spark_session, warehouse)
    report = grader.grade("02", warehouse, bundled_data)
    finding = _fails(report, "scd2_one_current")
    assert re.match(r"patient PAT\d+ has [2-9] current rows \(effective \d{4}-\d\d-\d\d[^,]*, ",
                    finding), finding
    _fails(report, "scd2_intervals", "overlapping intervals")


def test_overlapping_intervals(spark_session, warehouse, bundled_data) -> None:
    bad.patients_closed_at_load_time(spark_session, warehouse)
    report = grader.grade("02", warehouse, bundled_data)
    _fails(report, "scd2_intervals", "after the next version starts", "overlapping intervals")
    assert _status(report)["scd2_one_current"] is Status.PASS


def test_scd2_plain_inequality_misses_null_changes(spark_session, warehouse, bundled_data) -> None:
    manifest = json.loads((bundled_data / feeds.LANDING_DIR / feeds.MANIFEST_NAME).read_text())
    assert manifest["null_changes"]["to_null"] and manifest["null_changes"]["from_null"]
    bad.patients_plain_inequality(spark_session, warehouse)
    report = grader.grade("02", warehouse, bundled_data)
    finding = _fails(report, "scd2_versions", "changes only from or to NULL (insurance_member_id",
                     "compare with NOT (s.c <=> t.c)")
    assert re.match(r"patient PAT\d+ has \d versions? \(effective [^)]+\), expected \d versions", finding), finding
    for passing in ("scd2_one_current", "scd2_intervals", "scd2_changes_only", "merge_history"):
        assert _status(report)[passing] is Status.PASS, _finding(report, passing)


def test_plain_append_keeps_duplicates(spark_session, warehouse, bundled_data) -> None:
    bad.append_batches(spark_session, warehouse, "encounters")
    report = grader.grade("02", warehouse, bundled_data)
    _fails(report, "unique_keys", "silver.encounters_clean has", "keys on more than one row")
    _fails(report, "merge_history", "silver.encounters_clean has 0 MERGE commit(s)",
           "WRITE (mode=Append)")
    assert _status(report)["merge_metrics"] is Status.SKIP


def _stale_feed(data: Path) -> str:
    """The clean feed with the most records that arrive after a newer version of their key."""
    counts = {}
    for feed in ref.CLEAN_FEEDS:
        key = feeds.FEEDS[feed].key
        con = duckdb.connect()
        con.register("r", ref.records(feed, data))
        counts[feed] = con.execute(
            f"WITH b AS (SELECT {key}, _batch, max(updated_at) AS t FROM r "
            f"WHERE _reason IS NULL GROUP BY 1, 2) SELECT count(*) FROM b x JOIN b y "
            f"USING ({key}) WHERE y._batch > x._batch AND y.t < x.t").fetchone()[0]
    feed = max(counts, key=counts.get)
    assert counts[feed] > 0, "the data holds no out-of-order record in a later batch"
    return feed


def test_late_record_overwrites_newer(spark_session, warehouse, bundled_data) -> None:
    feed = _stale_feed(bundled_data)
    bad.merge_batches(spark_session, warehouse, feed, newer_check=False)
    report = grader.grade("02", warehouse, bundled_data)
    _fails(report, "latest_wins", f"silver.{feed}_clean holds another version than the newest",
           "updated_at 20", ", newest 20")
    assert _status(report)["unique_keys"] is Status.PASS


def test_cdc_deletes_ignored(spark_session, warehouse, bundled_data) -> None:
    bad.merge_batches(spark_session, warehouse, "encounters", apply_deletes=False)
    report = grader.grade("02", warehouse, bundled_data)
    _fails(report, "deletes_applied", "silver.encounters_clean still holds",
           "keys the source deleted, e.g. ENC", "(deleted 20")
    if ref.cdc_effects("encounters", bundled_data)["deletes"]:
        _fails(report, "merge_metrics", "silver.encounters_clean: MERGE metrics show 0 rows "
                                        "deleted")


def test_active_medications_ignoring_end_date(spark_session, warehouse, bundled_data) -> None:
    bad.medications_ignore_end_date(spark_session, warehouse, str(ref.as_of_date(bundled_data)))
    report = grader.grade("02", warehouse, bundled_data)
    _fails(report, "active_medications", "medications ended on or before",
           "are marked active, e.g. MED", "(end_date 20")
    assert _status(report)["latest_wins"] is Status.PASS


def test_untouched_learner_notebook_fails(solution_warehouse, bundled_data, tmp_path) -> None:
    wh = copy_warehouse(solution_warehouse, tmp_path / "learner-wh")
    for schema in ("silver", "gold"):  # back to the state lab 02 starts from
        shutil.rmtree(wh / schema, ignore_errors=True)
    with pytest.raises(NotebookError, match="NotImplementedError"):
        execute_notebook(labs_dir() / "02_silver_transformations.ipynb", tmp_path / "out.ipynb",
                         {"warehouse": str(wh), "data_dir": str(bundled_data)}, progress=False)
    report = grader.grade("02", wh, bundled_data)
    assert not report.ok
    assert _status(report)["tables_exist"] is Status.FAIL


# -- the independent recomputation on a tiny hand-written feed (no Spark) ----------------------

def _write(data: Path, feed: str, batch: str, lines: list[object]) -> None:
    path = Path(feeds.FEEDS[feed].path(str(data), batch))
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"
    path.write_bytes(gzip.compress(text.encode()))


def _patient(pid: str, when: str, op: str = "I", **changes: str) -> dict:
    row = {"patient_id": pid, "mrn": f"MRN-{pid}", "first_name": "Ann", "last_name": "Lee",
           "sex": "F", "birth_date": "1980-01-01", "address_line": "1 Main St", "city": "Oak",
           "state": "WA", "zip": "98000", "phone": "206-555-0100", "insurance_payer": "Self-pay",
           "insurance_member_id": None, "op": op, "updated_at": when}
    row.update(changes)
    return row


def _med(mid: str, when: str, op: str = "I", **changes: object) -> dict:
    row = {"medication_id": mid, "patient_id": "P1", "encounter_id": "E1", "rxnorm_code": "314076",
           "drug_name": "lisinopril", "dose": 10.0, "dose_unit": "mg", "route": "oral",
           "frequency": "daily", "start_date": "2025-01-01", "end_date": None, "op": op,
           "updated_at": when}
    row.update(changes)
    return row


def test_reference_applies_the_silver_rules(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _write(data, "medications", "001", [
        _med("M1", "2025-01-01T00:00:00Z"),
        _med("M1", "2025-01-02T00:00:00Z", "U", end_date="2025-09-30"),  # ends on the as-of day
        _med("M2", "2025-01-01T00:00:00Z"),
        _med("M2", "2025-02-01T00:00:00Z", "D"),
        _med("M3", "2025-01-01T00:00:00Z", rxnorm_code="ASPIRIN"),      # invalid code
        _med("M4", "2025-01-01T00:00:00Z", patient_id=None),            # null required
        '{"medication_id": "M9", "dose": ',                              # malformed
    ])
    _write(data, "medications", "002", [
        _med("M2", "2025-01-01T00:00:00Z"),                              # late copy, deleted key
        _med("M1", "2025-01-01T12:00:00Z", "U"),                         # out of order: loses
        _med("M5", "2025-07-01T00:00:00Z", start_date="2025-10-01"),     # not started yet
    ])
    clean = {r["medication_id"]: r for r in
             ref.expected_clean("medications", data, "2025-09-30").to_pylist()}
    assert sorted(clean) == ["M1", "M5"]
    assert clean["M1"]["is_active"] is False and str(clean["M1"]["end_date"]) == "2025-09-30"
    assert clean["M5"]["is_active"] is False
    assert ref.deleted_keys("medications", data) == ["M2"]
    rejected = {r["key"]: r["reason"] for r in ref.rejected("medications", data).to_pylist()}
    assert rejected == {"M3": "invalid RxNorm code 'ASPIRIN'", "M4": "null patient_id"}
    assert ref.malformed("medications", data).num_rows == 1

    _write(data, "patients", "001", [_patient("P1", "2025-01-01T00:00:00Z")])
    _write(data, "patients", "002", [
        _patient("P1", "2025-03-01T00:00:00Z", "U", insurance_member_id="M-1",
                 insurance_payer="Medicare"),                           # change from NULL
        _patient("P1", "2025-02-01T00:00:00Z", "U", city="Elm"),        # older in same batch
    ])
    _write(data, "patients", "003", [
        _patient("P1", "2025-04-01T00:00:00Z", "U", insurance_member_id="M-1",
                 insurance_payer="Medicare"),                           # unchanged re-delivery
        _patient("P2", "2025-05-01T00:00:00Z"),
    ])
    versions = ref.patient_versions(data).to_pylist()
    p1 = [v for v in versions if v["patient_id"] == "P1"]
    assert [(str(v["effective_from"]), str(v["effective_to"]), v["is_current"]) for v in p1] == [
        ("2025-01-01 00:00:00", "2025-03-01 00:00:00", False),
        ("2025-03-01 00:00:00", "None", True)]
    assert p1[1]["insurance_member_id"] == "M-1" and p1[1]["city"] == "Oak"
    assert [v["patient_id"] for v in versions].count("P2") == 1
    assert ref.patient_cdc_effects(data) == {"closed": 1, "opened": 2}
