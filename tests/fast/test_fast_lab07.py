"""Lab 07 grader on small fixture tables, no JVM: the fixture solution (:mod:`fast.cdf_erasure`, labs
01, 02 and 04 solved first) passes every check, and each wrong answer of issue 21 fails its check
with a specific finding; the erasure scan places files with the Delta log the way delta-rs and
Spark do."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from fast import cdf_erasure as lab
from fast import deltafix as dx
from fast.conftest import copy_of
from fast.grading import Wrong, assert_all_pass, assert_wrong
from medilake_lab import grader
from medilake_lab.contract.labs import get_lab
from medilake_lab.grader import erasure_scan as es

LAB = "07"
AUDIT_NAME = "audit.erasure_requests"
#: A table Spark 4.2 / Delta 4.4 wrote (tests/test_commits.py reads its history).
SPARK_DV = Path(__file__).parents[1] / "fixtures" / "delta_logs" / "sandbox.encounters_dv"


def _variant(**knobs: object):
    def build(warehouse: Path, data: Path) -> None:
        lab.solve(warehouse, data, **knobs)  # type: ignore[arg-type]
    return build


WRONG_ANSWERS = [
    Wrong("gold_overwritten", _variant(overwrite=("gold.hospital_utilization_metrics",)),
          {"gold_from_changes": ("gold.hospital_utilization_metrics: v", "CREATE OR REPLACE TABLE AS SELECT since "
                                 "the erasure", "not a refresh of the changed keys by MERGE")},
          passes=("cdf_enabled", "erasure_complete")),
    Wrong("cdf_enabled_after_the_erasure", _variant(cdf_late=("silver.diagnoses_clean",)),
          {"cdf_enabled": ("silver.diagnoses_clean: CDF enabled at v", "after the erasure v",
                           "table_changes cannot return a change made before CDF was on")},
          passes=("erasure_complete", "deletion_vectors")),
    Wrong("delete_without_purge", _variant(purge=False),
          {"deletion_vectors": ("the patient is still in deletion-vectored file part-",
                                "REORG TABLE … APPLY (PURGE) rewrites it",
                                "still has the deletionVectors reader feature (reader version 3)"),
           "erasure_complete": ("sandbox.encounters_dv: part-", "in the current snapshot, deletion-vectored",
                                "REORG TABLE … APPLY (PURGE) rewrites it without the masked rows")},
          passes=("erasure_audited", "time_travel_proof")),
    Wrong("erasure_forgot_a_table", _variant(skip=("bronze.lab_results",)),
          {"erasure_complete": ("bronze.lab_results: part-", "in the current snapshot",
                                "the erasure missed this table", "scanned ")},
          passes=("erasure_audited", "deletion_vectors", "time_travel_proof")),
    Wrong("erasure_forgot_the_change_data", _variant(spark_vacuum=False),
          {"time_travel_proof": ("sandbox.erasure_proof: 1 file still holds the patient: _change_data/",
                                 "change data"),
           "erasure_complete": ("sandbox.erasure_proof: _change_data/", "VACUUM START: retention 0 h",
                                "should have deleted it")},
          passes=("erasure_audited", "deletion_vectors")),
    Wrong("time_travel_still_returns_the_patient", _variant(vacuum=False),
          {"time_travel_proof": ("sandbox.erasure_proof: VERSION AS OF 0 (before the erasure DELETE at v1) still "
                                 "returns", "time travel brings the patient back")},
          passes=("erasure_complete", "erasure_audited")),
    Wrong("proof_copied_after_the_erasure", _variant(proof_held=False, vacuum=False),  # nothing to vacuum
          {"time_travel_proof": ("sandbox.erasure_proof: its erasure DELETE removed no row",
                                 "copy the table from a version before the erasure")},
          passes=("erasure_complete", "erasure_audited")),
    Wrong("bronze_delete_without_audit", lab.delete_in_bronze_without_audit,
          {"erasure_audited": ("bronze.encounters: v", "DELETE without an erasure audit record",
                               "no userMetadata erasure:<request_id>")},
          passes=("deletion_vectors", "time_travel_proof")),
    Wrong("vacuum_after_before_the_retention_ends", lab.vacuum_after_too_early,
          {"erasure_complete": ("the request's vacuum_after", "comes before VACUUM may delete",
                                "count the change-data files and the table's own retention")},
          passes=("erasure_audited",)),
    Wrong("proof_table_missing", lab.proof_missing,
          {"tables_exist": ("sandbox.erasure_proof", "run lab 07")}),
]


def test_solution_passes_every_check(erased_warehouse: Path, fast_data: Path) -> None:
    report = grader.grade(LAB, erased_warehouse, fast_data)
    assert_all_pass(report, [c.id for c in get_lab(LAB).checks])
    finding = {r.id: r.finding for r in report.results}[f"{LAB}.erasure_complete"]
    assert "scanned " in finding and "VACUUM may delete them from" in finding


@pytest.mark.parametrize("wrong", WRONG_ANSWERS, ids=lambda w: w.name)
def test_wrong_answer_fails_the_right_check(wrong: Wrong, lab04_warehouse: Path, fast_data: Path,
                                            tmp_path: Path) -> None:
    warehouse = copy_of(lab04_warehouse, tmp_path)
    wrong.build(warehouse, fast_data)
    assert_wrong(grader.grade(LAB, warehouse, fast_data), wrong, fast_data)


def test_untouched_warehouse_fails_with_hints(lab04_warehouse: Path, fast_data: Path) -> None:
    """Before lab 07: the first check names the missing tables and the lab that builds them; the
    rest are skipped or fail without a traceback."""
    report = grader.grade(LAB, lab04_warehouse, fast_data)
    first = report.results[0]
    assert first.status is grader.Status.FAIL and AUDIT_NAME in first.finding and "run lab 07" in first.finding
    assert all("Traceback" not in r.finding and "could not inspect" not in r.finding for r in report.results)


def test_a_damaged_unrelated_table_is_one_line_of_the_erasure_findings(erased_warehouse: Path, fast_data: Path,
                                                                         tmp_path: Path) -> None:
    """A table whose data file is gone cannot be judged: the erasure checks say so in one line and
    still report on the erasure, instead of failing with the damage message alone."""
    warehouse = copy_of(erased_warehouse, tmp_path)
    for part in (warehouse / "silver" / "procedures_clean").rglob("*.parquet"):
        part.unlink()
    found = {r.id.split(".", 1)[1]: r for r in grader.grade(LAB, warehouse, fast_data).results}
    audited = found["erasure_audited"]
    assert audited.status is grader.Status.FAIL
    assert audited.finding.startswith("cannot read silver.procedures_clean: ")


# ----------------------------------------------------------------------------- the erasure scan


def _table(tmp_path: Path, name: str = "t") -> Path:
    table = tmp_path / "wh" / "sandbox" / name
    write_deltalake(str(table), pa.table({"patient_id": ["P1", "P2", "P3"], "note": ["a", '{"id": "P9"}', None]}),
                    configuration=lab.CDF)
    return table


def test_log_replay_lists_the_files_delta_rs_reads(tmp_path: Path) -> None:
    table = _table(tmp_path)
    dx.delete(table, "patient_id = 'P1'")
    dx.update(table, {"note": "'b'"}, "patient_id = 'P2'")
    state = es.log_state(table)
    current = {Path(uri).name for uri in DeltaTable(str(table)).file_uris()}
    assert set(state.live) == current and not any(state.live.values())
    on_disk = {p.name for p in table.glob("*.parquet")}
    assert set(state.removed) == on_disk - current and all(state.removed.values())
    assert state.changes and all(p.startswith("_change_data/") for p in state.changes)


def test_log_replay_starts_from_a_checkpoint_when_the_first_commits_are_gone(tmp_path: Path) -> None:
    table = _table(tmp_path)
    dx.delete(table, "patient_id = 'P1'")
    DeltaTable(str(table)).create_checkpoint()
    dx.delete(table, "patient_id = 'P2'")
    before = es.log_state(table)
    dx.commit_file(table, 0).unlink()
    after = es.log_state(table)
    assert after.live == before.live and set(after.removed) == set(before.removed)


def test_log_replay_on_a_spark_deletion_vector_table(tmp_path: Path) -> None:
    """Spark 4.2 / Delta 4.4's own log: DELETE and UPDATE with deletion vectors, REORG PURGE, DROP FEATURE."""
    table = Path(shutil.copytree(SPARK_DV, tmp_path / "wh" / "sandbox" / "encounters_dv"))
    done = es.log_state(table)
    assert set(done.live) == {Path(uri).name for uri in DeltaTable(str(table)).file_uris()}
    assert not any(done.live.values()) and done.changes
    for version in range(4, 11):  # back to before the REORG: the deletion vectors are live again
        dx.commit_file(table, version).unlink()
    before = es.log_state(table)
    assert any(before.live.values()) and set(before.live) != set(done.live)


def test_scan_finds_ids_quoted_in_raw_text_and_names_of_the_patient_only(tmp_path: Path) -> None:
    folder = tmp_path / "wh" / "bronze" / "patients"
    rows = pa.table({"patient_id": ["P1", None, "P2", "P10"],
                     "first_name": ["Ann", None, "Ann", None], "last_name": ["Lee", None, "Lee", None],
                     "_corrupt_record": [None, '{"patient_id": "P9", "mrn": "M9"', None, None]})
    write_deltalake(str(folder), rows)
    subjects = [es.Subject("P9", ("M9",), (("Ann", "Lee"),)), es.Subject("P1", ("M1",), (("Ann", "Lee"),))]
    scan = es.scan(tmp_path / "wh", subjects)
    found = {(f.patient_id, f.holds, f.rows, f.state) for f in scan.found}
    assert found == {("P9", ("id", "MRN"), 1, "live"), ("P1", ("id", "name"), 1, "live")}
    assert (scan.files, len(scan.tables)) == (1, 1)
    assert scan.bytes == sum(p.stat().st_size for p in folder.glob("*.parquet"))


def test_scan_finds_a_patient_named_unquoted_in_a_csv_or_python_style_raw_line(tmp_path: Path) -> None:
    """The generator's malformed lines come in CSV and Python style too; an id inside a longer id
    is not the patient."""
    folder = tmp_path / "wh" / "bronze" / "encounters"
    raw = ["ENC0000007,PAT000155,inpatient,broken", "{'patient_id': 'PAT000155', 'op': 'I'", "PAT0001551,x"]
    write_deltalake(str(folder), pa.table({"patient_id": [None, None, None], "_corrupt_record": raw}))
    scan = es.scan(tmp_path / "wh", [es.Subject("PAT000155", ("MRN-SYN-000155",))])
    assert {(f.patient_id, f.holds, f.rows, f.state) for f in scan.found} == {("PAT000155", ("id",), 2, "live")}


def test_scan_dates_vacuum_with_the_tables_retention_and_skips_the_audit(tmp_path: Path) -> None:
    table = _table(tmp_path)
    DeltaTable(str(table)).alter.set_table_properties({es.RETENTION_PROPERTY: "interval 2 days"})
    dx.delete(table, "patient_id = 'P2'")
    audit = tmp_path / "wh" / "audit" / "erasure_requests"
    write_deltalake(str(audit), pa.table({"patient_id": ["P2"]}))
    scan = es.scan(tmp_path / "wh", [es.Subject("P2")])
    assert scan.tables == ["sandbox.t"]
    states = {f.state: f for f in scan.found}
    assert set(states) == {"removed", "change data"}
    for found in states.values():
        assert found.since is not None and found.vacuum_after == found.since + timedelta(days=2)


def test_scan_reports_a_live_deletion_vectored_file_and_an_unreadable_file(tmp_path: Path) -> None:
    rows = pa.table({"patient_id": ["P1", "P2"], "facility_id": ["F1", "F1"], "encounter_class": ["inpatient"] * 2})
    lab.deletion_vectors(tmp_path / "wh", rows, "P1", purge=False)
    broken = tmp_path / "wh" / "sandbox" / "encounters_dv" / "part-broken.parquet"
    broken.write_bytes(b"not parquet")
    (broken.parent / "part-empty.parquet").touch()  # a crashed write's empty file holds nothing
    scan = es.scan(tmp_path / "wh", [es.Subject("P1")])
    assert [(f.state, f.deletion_vector) for f in scan.found] == [("live", True)]
    assert len(scan.unreadable) == 1 and "part-broken.parquet" in scan.unreadable[0]


@pytest.mark.parametrize(("text", "expected"), [("interval 7 days", timedelta(days=7)),
                                                ("interval 168 hours", timedelta(hours=168)),
                                                ("1 week", timedelta(weeks=1)), ("interval 0 hours", timedelta(0))])
def test_retention_intervals(tmp_path: Path, text: str, expected: timedelta) -> None:
    table = _table(tmp_path)
    DeltaTable(str(table)).alter.set_table_properties({es.RETENTION_PROPERTY: text})
    assert es.retention(table) == expected
