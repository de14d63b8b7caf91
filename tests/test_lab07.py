"""Lab 07 grader, both directions, on real Delta tables: the solution notebook's warehouse passes
every check of lab 07 and still passes labs 01–06, and realistic wrong answers built with Spark on
copies of it (or of the warehouse as lab 07 found it) fail the right check with a specific finding."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import copy_warehouse
from medilake_lab import grader
from medilake_lab.contract.labs import all_labs, get_lab
from medilake_lab.course.notebooks import NotebookError, execute_notebook, labs_dir
from medilake_lab.grader import Status
from medilake_lab.runtime import config

pytestmark = [pytest.mark.spark, pytest.mark.notebooks]

USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"


def _failures(report: grader.LabReport) -> dict[str, str]:
    return {r.id.split(".", 1)[1]: r.finding for r in report.results if r.status is Status.FAIL}


@pytest.fixture(scope="module")
def solution_warehouse(solution_runs: dict) -> Path:
    assert "07" not in solution_runs["errors"], solution_runs["errors"].get("07")
    assert "07" in solution_runs["executed"]
    return solution_runs["warehouse"]


@pytest.fixture(scope="module")
def request_row(solution_warehouse: Path) -> dict:
    """The solution's erasure request (audit.erasure_requests has exactly one row)."""
    from deltalake import DeltaTable

    rows = DeltaTable(str(config.table_path("audit", "erasure_requests", solution_warehouse))).to_pyarrow_table()
    assert rows.num_rows == 1
    return rows.to_pylist()[0]


@pytest.fixture
def wh(solution_warehouse: Path, tmp_path: Path) -> Path:
    """A private copy of the solution warehouse that a test may break."""
    return copy_warehouse(solution_warehouse, tmp_path / "wh")


def _path(wh: Path, table: str) -> str:
    schema, name = table.split(".")
    return str(config.table_path(schema, name, wh))


def _create_copy(spark, source: str, version: int, target: str, feature: str) -> None:
    """``target`` = ``source`` AS OF ``version``, created in one commit with ``delta.<feature>`` on
    (a path-based CREATE TABLE … AS SELECT is refused by the kit's session: SCHEMA_NOT_FOUND delta)."""
    default = f"spark.databricks.delta.properties.defaults.{feature}"
    spark.conf.set(default, "true")
    try:
        spark.read.format("delta").option("versionAsOf", version).load(source).write.format("delta").save(target)
    finally:
        spark.conf.unset(default)


def test_solution_passes_every_check(solution_warehouse: Path, bundled_data: Path) -> None:
    report = grader.grade("07", solution_warehouse, bundled_data)
    assert _failures(report) == {}
    assert report.ok and report.total == len(get_lab("07").checks)


@pytest.mark.parametrize("lab", [spec.id for spec in all_labs() if spec.id < "07"])
def test_earlier_labs_still_pass_after_the_erasure(solution_warehouse: Path, bundled_data: Path, lab: str) -> None:
    assert _failures(grader.grade(lab, solution_warehouse, bundled_data)) == {}


def test_gold_fully_overwritten_fails(spark_session, wh: Path, bundled_data: Path) -> None:
    """Re-running lab 04's full refresh after the erasure instead of MERGEing the changed keys."""
    path = _path(wh, "gold.patient_clinical_summary")
    spark_session.read.format("delta").load(path).localCheckpoint() \
        .write.format("delta").mode("overwrite").save(path)
    finding = _failures(grader.grade("07", wh, bundled_data))["gold_from_changes"]
    assert "gold.patient_clinical_summary" in finding
    assert "a full rewrite, not a refresh of the changed keys by MERGE" in finding


def test_delete_without_purge_fails(spark_session, wh: Path, bundled_data: Path, request_row: dict) -> None:
    """Deletion vectors on, the patient DELETEd, but no REORG … APPLY (PURGE): the rows' bytes stay."""
    silver = _path(wh, "silver.encounters_clean")
    before = (spark_session.sql(f"DESCRIBE HISTORY delta.`{silver}`")
              .where(f"userMetadata = 'erasure:{request_row['request_id']}'").agg({"version": "min"}).first()[0] - 1)
    dv = _path(wh, "sandbox.encounters_dv")
    shutil.rmtree(dv)
    _create_copy(spark_session, silver, before, dv, "enableDeletionVectors")
    spark_session.conf.set(USER_METADATA, f"erasure:{request_row['request_id']}")
    try:
        spark_session.sql(f"DELETE FROM delta.`{dv}` WHERE patient_id = '{request_row['patient_id']}'")
    finally:
        spark_session.conf.unset(USER_METADATA)
    finding = _failures(grader.grade("07", wh, bundled_data))["deletion_vectors"]
    assert "the patient is still in deletion-vectored file" in finding
    assert "sandbox.encounters_dv" in finding


def test_erasure_that_forgot_a_table_fails(solution_runs: dict, wh: Path, bundled_data: Path,
                                           request_row: dict) -> None:
    """bronze.procedures left as lab 07 found it: the patient is still in its current snapshot."""
    shutil.rmtree(_path(wh, "bronze.procedures"))
    shutil.copytree(_path(solution_runs["before"]["07"], "bronze.procedures"), _path(wh, "bronze.procedures"))
    finding = _failures(grader.grade("07", wh, bundled_data))["erasure_complete"]
    assert "bronze.procedures" in finding
    assert "the erasure missed this table" in finding


def test_bronze_delete_without_audit_fails(spark_session, wh: Path, bundled_data: Path, request_row: dict) -> None:
    """A 'clean-up' DELETE in bronze that no erasure request covers: lab 01 and lab 07 both object."""
    path = _path(wh, "bronze.encounters")
    other = spark_session.read.format("delta").load(path).where(
        f"patient_id <> '{request_row['patient_id']}'").agg({"patient_id": "min"}).first()[0]
    spark_session.sql(f"DELETE FROM delta.`{path}` WHERE patient_id = '{other}'")
    assert "DELETE without an erasure audit record" in _failures(grader.grade("01", wh, bundled_data))["append_only"]
    finding = _failures(grader.grade("07", wh, bundled_data))["erasure_audited"]
    assert "bronze.encounters" in finding
    assert "without an erasure audit record" in finding


def test_cdf_enabled_after_the_erasure_fails(spark_session, solution_runs: dict, tmp_path: Path,
                                            bundled_data: Path, request_row: dict) -> None:
    """The warehouse as lab 07 found it: the patient erased from silver first, CDF switched on after."""
    wh = copy_warehouse(solution_runs["before"]["07"], tmp_path / "wh")
    spark_session.sql(f"SELECT '{request_row['request_id']}' AS request_id, '{request_row['patient_id']}' AS "
                      f"patient_id, '{request_row['mrn']}' AS mrn, current_timestamp() AS requested_at, "
                      "CAST(NULL AS TIMESTAMP) AS completed_at, 'GDPR Art. 17' AS legal_basis, "
                      "CAST(NULL AS ARRAY<STRING>) AS tables, CAST(NULL AS INT) AS retention_hours, "
                      "CAST(NULL AS TIMESTAMP) AS vacuum_after") \
        .write.format("delta").save(_path(wh, "audit.erasure_requests"))
    silver = _path(wh, "silver.encounters_clean")
    spark_session.conf.set(USER_METADATA, f"erasure:{request_row['request_id']}")
    try:
        spark_session.sql(f"DELETE FROM delta.`{silver}` WHERE patient_id = '{request_row['patient_id']}'")
    finally:
        spark_session.conf.unset(USER_METADATA)
    spark_session.sql(f"ALTER TABLE delta.`{silver}` SET TBLPROPERTIES (delta.enableChangeDataFeed = true)")
    finding = _failures(grader.grade("07", wh, bundled_data))["cdf_enabled"]
    assert "silver.encounters_clean: CDF enabled at" in finding
    assert "table_changes cannot return a change made before CDF was on" in finding


def test_untouched_learner_notebook_fails(solution_runs: dict, tmp_path: Path, bundled_data: Path) -> None:
    wh = copy_warehouse(solution_runs["before"]["07"], tmp_path / "learner-wh")
    with pytest.raises(NotebookError, match="NotImplementedError"):
        execute_notebook(labs_dir() / get_lab("07").notebook, tmp_path / "out.ipynb",
                         {"warehouse": str(wh), "data_dir": str(bundled_data)}, progress=False)
    assert not grader.grade("07", wh, bundled_data).ok


def test_proof_without_vacuum_still_time_travels(spark_session, wh: Path, bundled_data: Path,
                                                 request_row: dict) -> None:
    """sandbox.erasure_proof erased but never vacuumed: VERSION AS OF 0 still returns the patient."""
    proof = _path(wh, "sandbox.erasure_proof")
    silver = _path(wh, "silver.encounters_clean")
    before = (spark_session.sql(f"DESCRIBE HISTORY delta.`{silver}`")
              .where(f"userMetadata = 'erasure:{request_row['request_id']}'").agg({"version": "min"}).first()[0] - 1)
    shutil.rmtree(proof)
    _create_copy(spark_session, silver, before, proof, "enableChangeDataFeed")
    spark_session.conf.set(USER_METADATA, f"erasure:{request_row['request_id']}")
    try:
        spark_session.sql(f"DELETE FROM delta.`{proof}` WHERE patient_id = '{request_row['patient_id']}'")
    finally:
        spark_session.conf.unset(USER_METADATA)
    finding = _failures(grader.grade("07", wh, bundled_data))["time_travel_proof"]
    assert "VERSION AS OF 0 (before the erasure DELETE at v1) still returns" in finding
    assert "time travel brings the patient back" in finding
