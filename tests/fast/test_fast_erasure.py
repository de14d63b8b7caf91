"""Labs 01–05 after lab 07's erasure of one patient, no JVM: with the request recorded in
audit.erasure_requests every check still passes (the graders treat the patient's raw lines as never
delivered), and the same warehouse without the audit record fails with the specific finding. Also:
a table with deletion vectors is one clear finding, a damaged audit table too."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fast import erase_patient as er
from fast.conftest import copy_of
from fast.grading import assert_all_pass, results
from fast.test_fast_lab03 import layout_warehouse  # noqa: F401 - session fixture (labs 01–03 solved)
from fast.test_fast_lab04 import gold_warehouse  # noqa: F401 - session fixture (labs 01, 02, 04 solved)
from fast.test_fast_lab05 import stream_warehouse  # noqa: F401 - session fixture (lab 05 solved)
from medilake_lab import grader
from medilake_lab.contract import feeds
from medilake_lab.contract.labs import get_lab
from medilake_lab.grader import Context, Status

DV_FIXTURE = Path(__file__).parents[1] / "fixtures" / "delta_logs" / "sandbox.encounters_dv"


def _ids(lab: str) -> list[str]:
    return [c.id for c in get_lab(lab).checks]


def _without_audit(warehouse: Path) -> Path:
    shutil.rmtree(warehouse / "audit")
    return warehouse


@pytest.fixture(scope="session")
def erased_silver(silver_warehouse: Path, fast_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Labs 01 and 02 solved, then the subject erased from every bronze and silver table with the
    request recorded. Read-only (copy it)."""
    warehouse = Path(shutil.copytree(silver_warehouse, tmp_path_factory.mktemp("fast-erased") / "wh"))
    er.erase_with_audit(warehouse, fast_data)
    return warehouse


def test_the_fixture_erases_the_subject_from_bronze_and_silver(erased_silver: Path, fast_data: Path) -> None:
    """The erasure is real: the subject has lines in every feed, and every bronze and silver table
    holding them was changed by a DELETE labelled with the request."""
    patient = er.subject(fast_data)
    assert all(er.lines_naming(fast_data, feed, patient) for feed in er.SUBJECT_FEEDS)
    ctx = Context(erased_silver, fast_data)
    assert ctx.erased_patients == frozenset({patient})
    for feed in feeds.FEED_NAMES:
        last = ctx.require(f"bronze.{feed}").history()[-1]
        assert last.operation == "DELETE" and last.erasure_request == er.REQUEST
        assert patient in last.predicate


def test_lab01_passes_after_an_audited_erasure(erased_silver: Path, fast_data: Path) -> None:
    report = grader.grade("01", erased_silver, fast_data)
    assert_all_pass(report, _ids("01"))
    ctx = Context(erased_silver, fast_data)
    deletes = sum(c.erasure_request == er.REQUEST for feed in feeds.FEED_NAMES
                  for c in ctx.require(f"bronze.{feed}").history())
    assert deletes >= len(er.SUBJECT_FEEDS)
    assert f"{deletes} audited erasure DELETEs (audit.erasure_requests)" in results(report)["append_only"][1]


def test_lab01_without_the_audit_record_names_the_delete(erased_silver: Path, fast_data: Path,
                                                         tmp_path: Path) -> None:
    warehouse = _without_audit(copy_of(erased_silver, tmp_path))
    found = results(grader.grade("01", warehouse, fast_data))
    status, finding = found["append_only"]
    assert status is Status.FAIL
    assert "bronze.encounters has v" in finding and "DELETE without an erasure audit record" in finding
    assert "userMetadata erasure:ER-2026-0001 names no request in audit.erasure_requests" in finding
    patient = er.subject(fast_data)
    named = er.lines_naming(fast_data, "encounters", patient)
    status, finding = found["row_counts"]
    assert status is Status.FAIL and "bronze.encounters has" in finding
    rows, lines = (int(x) for x in finding.split("bronze.encounters has ")[1].split(" delivered")[0]
                   .split(" rows for "))
    assert lines - rows == named  # the erased lines are expected again without the record


def test_lab01_rejects_a_delete_of_another_patient_under_the_request(erased_silver: Path, fast_data: Path,
                                                                     tmp_path: Path) -> None:
    """The audit record covers its own patient only: a DELETE labelled with the request whose
    predicate names someone else is still rejected."""
    warehouse = copy_of(erased_silver, tmp_path)
    other = "PAT999999"
    path = er.dx.table_dir(warehouse, "bronze.patients")
    er._label(path, er.dx.delete(path, f"patient_id = '{other}'"), f"erasure:{er.REQUEST}")  # noqa: SLF001
    status, finding = results(grader.grade("01", warehouse, fast_data))["append_only"]
    assert status is Status.FAIL
    assert "DELETE without an erasure audit record" in finding and f"does not name patient {er.subject(fast_data)}" \
        in finding


def test_lab02_passes_after_an_audited_erasure(erased_silver: Path, fast_data: Path) -> None:
    assert_all_pass(grader.grade("02", erased_silver, fast_data), _ids("02"))


def test_lab02_without_the_audit_record_expects_the_patient(erased_silver: Path, fast_data: Path,
                                                            tmp_path: Path) -> None:
    warehouse = _without_audit(copy_of(erased_silver, tmp_path))
    patient = er.subject(fast_data)
    found = results(grader.grade("02", warehouse, fast_data))
    status, finding = found["nothing_lost"]
    assert status is Status.FAIL and "silver.encounters_clean lacks" in finding
    assert found["scd2_versions"][0] is Status.FAIL and f"patient {patient} is missing" in found["scd2_versions"][1]


def test_lab03_passes_after_an_audited_erasure(layout_warehouse: Path, fast_data: Path,  # noqa: F811
                                               tmp_path: Path) -> None:
    """Lab 03 grades layout and history, not contents: the erasure's DELETEs (after the RESTORE, on
    the partitioned, Z-ordered tables) leave every check passing, with the audit record or without."""
    warehouse = copy_of(layout_warehouse, tmp_path)
    _, changed = er.erase_with_audit(warehouse, fast_data)
    assert {"silver.lab_results_clean", "silver.encounters_clean"} <= set(changed)
    assert_all_pass(grader.grade("03", warehouse, fast_data), _ids("03"))
    assert_all_pass(grader.grade("03", _without_audit(warehouse), fast_data), _ids("03"))


@pytest.fixture(scope="session")
def erased_gold(gold_warehouse: Path, fast_data: Path,  # noqa: F811
                tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Lab 04 solved, then the subject erased (gold.patient_clinical_summary included) and the
    four gold tables refreshed from the erased silver by keyed MERGEs. Read-only (copy it)."""
    warehouse = Path(shutil.copytree(gold_warehouse, tmp_path_factory.mktemp("fast-erased-gold") / "wh"))
    _, changed = er.erase_with_audit(warehouse, fast_data)
    assert "gold.patient_clinical_summary" in changed
    er.refresh_gold(warehouse, fast_data)
    return warehouse


def test_lab04_passes_after_an_audited_erasure_and_keyed_refresh(erased_gold: Path, fast_data: Path) -> None:
    assert_all_pass(grader.grade("04", erased_gold, fast_data), _ids("04"))


def test_lab04_without_the_audit_record_rejects_the_refresh(erased_gold: Path, fast_data: Path,
                                                            tmp_path: Path) -> None:
    warehouse = _without_audit(copy_of(erased_gold, tmp_path))
    status, finding = results(grader.grade("04", warehouse, fast_data))["refresh_pattern"]
    assert status is Status.FAIL
    assert "gold.patient_clinical_summary: latest write is v" in finding and "MERGE" in finding
    assert "the decision is a full overwrite" in finding


def test_lab04_erasure_without_the_gold_refresh_fails_the_values(gold_warehouse: Path, fast_data: Path,  # noqa: F811
                                                                 tmp_path: Path) -> None:
    """The gold expectations follow the erased silver: forgetting to refresh gold after the erasure
    (the patient's diagnoses and lab results still counted by day) is a value finding."""
    warehouse = copy_of(gold_warehouse, tmp_path)
    er.erase_with_audit(warehouse, fast_data)
    found = results(grader.grade("04", warehouse, fast_data))
    status, finding = found["prevalence_values"]
    assert status is Status.FAIL and "gold.disease_prevalence_daily:" in finding and "patients differs" in finding
    status, finding = found["lab_trend_values"]
    assert status is Status.FAIL and "gold.lab_abnormal_trends:" in finding
    assert found["summary_values"][0] is Status.PASS and found["refresh_pattern"][0] is Status.PASS


@pytest.fixture(scope="session")
def erased_stream(stream_warehouse: Path, fast_data: Path,  # noqa: F811
                  tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Lab 05 solved, then the subject erased from the streaming tables and the hourly windows that
    counted its results refreshed by a keyed MERGE. Read-only (copy it)."""
    warehouse = Path(shutil.copytree(stream_warehouse, tmp_path_factory.mktemp("fast-erased-stream") / "wh"))
    patient, changed = er.erase_with_audit(warehouse, fast_data)
    assert {"bronze.encounters_stream", "bronze.lab_results_stream", "silver.encounters_stream"} <= set(changed)
    assert er.refresh_hourly(warehouse, patient) > 0
    return warehouse


def test_lab05_passes_after_an_audited_erasure(erased_stream: Path, fast_data: Path) -> None:
    assert_all_pass(grader.grade("05", erased_stream, fast_data), _ids("05"))


def test_lab05_without_the_audit_record_expects_the_patient(erased_stream: Path, fast_data: Path,
                                                            tmp_path: Path) -> None:
    warehouse = _without_audit(copy_of(erased_stream, tmp_path))
    found = results(grader.grade("05", warehouse, fast_data))
    assert found["files_once"][0] is Status.FAIL and "bronze.encounters_stream has" in found["files_once"][1]
    status, finding = found["streaming_writes"]
    assert status is Status.FAIL and "bronze.encounters_stream has batch writes: v" in finding and "DELETE" in finding
    assert found["silver_values"][0] is Status.FAIL and "expected row(s) missing" in found["silver_values"][1]
    assert found["watermark_aggregate"][0] is Status.FAIL


# ------------------------------------------------------------------- the reader's clear findings

def _dv_table(warehouse: Path, name: str, upto: int) -> Path:
    """The Spark-written deletion-vector fixture as ``name`` in ``warehouse``, cut after version
    ``upto`` (≤ 5: the protocol still has the deletionVectors reader feature; 10: after DROP FEATURE)."""
    path = er.dx.table_dir(warehouse, name)
    if path.exists():
        shutil.rmtree(path)
    shutil.copytree(DV_FIXTURE, path)
    for commit in (path / "_delta_log").glob("*.json"):
        if int(commit.stem) > upto:
            commit.unlink()
    return path


def test_a_table_with_deletion_vectors_is_one_finding_with_the_fix(gold_warehouse: Path,  # noqa: F811
                                                                   fast_data: Path, tmp_path: Path) -> None:
    """Deletion vectors enabled on a silver table lab 04 reads: the first check that reads it
    explains, with the fix; later ones point to it; no traceback, no "could not inspect"."""
    warehouse = copy_of(gold_warehouse, tmp_path)
    _dv_table(warehouse, "silver.encounters_clean", 5)
    report = grader.grade("04", warehouse, fast_data)
    about = [r for r in report.results if "silver.encounters_clean" in r.finding]
    full = [r for r in about if "uses deletion vectors, which the grader's reader (delta-rs) cannot read" in r.finding]
    assert len(full) == 1 and full[0].status is Status.FAIL
    assert ("REORG TABLE silver.encounters_clean APPLY (PURGE), then ALTER TABLE silver.encounters_clean "
            "DROP FEATURE deletionVectors") in full[0].finding
    later = [r for r in about if r is not full[0] and r.status is Status.FAIL]
    assert later and all(f"cannot be read by the grader (see {full[0].id})" in r.finding for r in later)
    assert not any("could not inspect" in r.finding or "Traceback" in r.finding for r in report.results)


def test_a_table_after_drop_feature_reads_normally(tmp_path: Path) -> None:
    _dv_table(tmp_path, "sandbox.encounters_dv", 10)
    table = Context(tmp_path).require("sandbox.encounters_dv")
    assert table.delta.protocol().min_reader_version == 1
    assert "checkpointProtection" in (table.delta.protocol().writer_features or [])
    rows = table.to_arrow(["patient_id"])["patient_id"].to_pylist()
    assert len(rows) == 999 and "5" not in rows  # 1,000 written, patient 5 deleted (then purged)


def test_a_damaged_audit_table_is_a_clear_finding(erased_silver: Path, fast_data: Path, tmp_path: Path) -> None:
    warehouse = copy_of(erased_silver, tmp_path)
    latest = sorted((warehouse / "audit" / "erasure_requests" / "_delta_log").glob("*.json"))[-1]
    latest.write_text("")
    found = results(grader.grade("01", warehouse, fast_data))
    status, finding = found["append_only"]
    assert status is Status.FAIL
    assert finding.startswith("audit.erasure_requests is damaged:") and "is empty" in finding
    assert "medilake_lab reset 07" in finding
