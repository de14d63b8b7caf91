"""What a Delta commit means (medilake_lab.grader.commits), without a JVM: on hand-built commits
named as Delta 4.x names them (DeltaOperations.scala), and on small ``_delta_log`` fixtures copied
from a warehouse the solution notebooks built with Spark (tests/fixtures/delta_logs, read through
delta-rs)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from medilake_lab.grader.commits import Commit, Kind, decode, kind_of
from medilake_lab.grader.delta import open_table

FIXTURES = Path(__file__).parent / "fixtures" / "delta_logs"


def _commit(operation: str, version: int = 1, metrics: dict[str, str] | None = None, **parameters: str) -> Commit:
    return Commit(version, operation, parameters, metrics or {})


#: operation name, parameters (as Spark writes them) → kind and the predicates
#: (only_adds, rewrites_data, changes_data, is_destructive, is_bookkeeping).
CASES = [
    ("WRITE", {"mode": "Append"}, Kind.APPEND, (True, False, True, False, False)),
    ("WRITE", {"mode": '"Append"'}, Kind.APPEND, (True, False, True, False, False)),
    ("WRITE", {"mode": "ErrorIfExists"}, Kind.APPEND, (True, False, True, False, False)),
    ("WRITE", {"mode": "Overwrite"}, Kind.OVERWRITE, (False, True, True, True, False)),
    ("WRITE", {"mode": '"Overwrite"', "predicate": '["(month = 1)"]'}, Kind.OVERWRITE,
     (False, True, True, True, False)),
    ("STREAMING UPDATE", {"outputMode": "Append"}, Kind.APPEND, (True, False, True, False, False)),
    ("STREAMING UPDATE", {"outputMode": "Complete"}, Kind.OVERWRITE, (False, True, True, True, False)),
    ("STREAMING UPDATE", {"outputMode": "Update"}, Kind.STREAMING_UPDATE, (False, False, True, False, False)),
    ("CREATE TABLE", {}, Kind.CREATE, (True, True, False, False, False)),
    ("CREATE TABLE AS SELECT", {}, Kind.CREATE_AS_SELECT, (True, True, True, False, False)),
    ("REPLACE TABLE", {}, Kind.REPLACE, (False, True, True, True, False)),
    ("CREATE OR REPLACE TABLE", {}, Kind.REPLACE, (False, True, True, True, False)),
    ("REPLACE TABLE AS SELECT", {}, Kind.REPLACE_AS_SELECT, (False, True, True, True, False)),
    ("CREATE OR REPLACE TABLE AS SELECT", {}, Kind.REPLACE_AS_SELECT, (False, True, True, True, False)),
    ("MERGE", {}, Kind.MERGE, (False, False, True, True, False)),
    ("UPDATE", {}, Kind.UPDATE, (False, False, True, True, False)),
    ("DELETE", {}, Kind.DELETE, (False, False, True, True, False)),
    ("TRUNCATE", {}, Kind.TRUNCATE, (False, True, True, True, False)),
    ("OPTIMIZE", {}, Kind.OPTIMIZE, (False, False, False, False, False)),
    ("REORG", {}, Kind.REORG, (False, False, False, False, False)),
    ("VACUUM START", {}, Kind.VACUUM_START, (False, False, False, False, True)),
    ("VACUUM END", {}, Kind.VACUUM_END, (False, False, False, False, True)),
    ("RESTORE", {}, Kind.RESTORE, (False, False, True, False, False)),
    ("CLONE", {}, Kind.CLONE, (False, False, True, False, False)),
    ("SET TBLPROPERTIES", {}, Kind.SET_PROPERTIES, (True, False, False, False, True)),
    ("UNSET TBLPROPERTIES", {}, Kind.SET_PROPERTIES, (True, False, False, False, True)),
    ("ADD COLUMNS", {}, Kind.SCHEMA_CHANGE, (True, False, False, False, False)),
    ("DROP COLUMNS", {}, Kind.SCHEMA_CHANGE, (False, False, False, False, False)),
    ("RENAME COLUMN", {}, Kind.SCHEMA_CHANGE, (False, False, False, False, False)),
    ("REPLACE COLUMNS", {}, Kind.SCHEMA_CHANGE, (False, False, False, False, False)),
    ("CHANGE COLUMN", {}, Kind.SCHEMA_CHANGE, (True, False, False, False, False)),
    ("UPDATE SCHEMA", {}, Kind.SCHEMA_CHANGE, (True, False, False, False, False)),
    ("ADD CONSTRAINT", {}, Kind.METADATA, (False, False, False, False, False)),
    ("UPGRADE PROTOCOL", {}, Kind.METADATA, (False, False, False, False, False)),
    ("CLUSTER BY", {}, Kind.METADATA, (False, False, False, False, False)),
    # lab 07: dropping the deletion-vectors feature (Delta 4.4 writes these before DROP FEATURE)
    ("Deletion Vector Tombstones", {}, Kind.METADATA, (False, False, False, False, False)),
    ("Empty Commit", {}, Kind.METADATA, (False, False, False, False, False)),
    ("DROP FEATURE", {"featureName": "deletionVectors", "truncateHistory": "false"}, Kind.METADATA,
     (False, False, False, False, False)),
    ("CONVERT", {}, Kind.OTHER, (False, False, False, False, False)),
]


@pytest.mark.parametrize(("operation", "parameters", "kind", "flags"), CASES,
                         ids=[f"{c[0]}-{'-'.join(c[1].values())}" for c in CASES])
def test_kind_and_predicates(operation: str, parameters: dict, kind: Kind, flags: tuple) -> None:
    commit = _commit(operation, **parameters)
    assert commit.kind is kind_of(operation, parameters) is kind
    assert (commit.only_adds, commit.rewrites_data, commit.changes_data, commit.is_destructive,
            commit.is_bookkeeping) == flags
    assert commit.is_append is (kind is Kind.APPEND)


#: Commits that change no row (files, properties, protocol): accepted even where rows must only be added.
MAINTENANCE = {"OPTIMIZE", "REORG", "VACUUM START", "VACUUM END", "SET TBLPROPERTIES", "UNSET TBLPROPERTIES",
               "ADD CONSTRAINT", "UPGRADE PROTOCOL", "CLUSTER BY", "Deletion Vector Tombstones", "Empty Commit",
               "DROP FEATURE"}


@pytest.mark.parametrize(("operation", "parameters"), [(c[0], c[1]) for c in CASES],
                         ids=[f"{c[0]}-{'-'.join(c[1].values())}" for c in CASES])
def test_maintenance_changes_no_row(operation: str, parameters: dict) -> None:
    commit = _commit(operation, **parameters)
    assert commit.is_maintenance is (operation in MAINTENANCE)
    assert not (commit.is_maintenance and commit.changes_data)


def test_erasure_request_and_predicate() -> None:
    erasure = Commit(4, "DELETE", {"predicate": '["((patient_id#12 = PAT000123) OR _corrupt_record#15 LIKE '
                                                 '%\\"PAT000123\\"%)"]'}, {}, user_metadata="erasure:ER-1")
    assert erasure.erasure_request == "ER-1" and "PAT000123" in erasure.predicate
    assert erasure.predicate.startswith("((patient_id#12 = PAT000123) OR _corrupt_record#15 LIKE")
    assert Commit(4, "DELETE", {}, {}, user_metadata=" erasure: ER-2 ").erasure_request == "ER-2"
    for other in (None, "", "erasure:", "backfill:ER-1", "ERASURE:ER-1"):
        assert Commit(4, "DELETE", {}, {}, user_metadata=other).erasure_request is None
    assert _commit("DELETE").predicate == "" and _commit("DELETE", predicate='["a = 1","b = 2"]').predicate == \
        "a = 1 AND b = 2"


def test_mode_is_unquoted_once() -> None:
    assert _commit("WRITE", mode='"Overwrite"').mode == "Overwrite"
    assert _commit("WRITE", mode="Append").mode == "Append"
    assert _commit("MERGE").mode == ""
    assert _commit("WRITE", 3, mode='"Overwrite"').describe() == "v3 WRITE (mode=Overwrite)"


def test_decode_parameters() -> None:
    assert decode('"Append"') == "Append" and decode("Append") == "Append"
    assert decode('["a","b"]') == ["a", "b"] and decode("true") is True and decode("604800000") == 604800000
    assert decode("[\"((id#1 = id#2))\"]") == ["((id#1 = id#2))"] and decode(None) is None


def test_list_parameters() -> None:
    assert _commit("OPTIMIZE", zOrderBy='["patient_id","result_ts"]').list_param("zOrderBy") == [
        "patient_id", "result_ts"]
    assert _commit("OPTIMIZE", zOrderBy="[]").list_param("zOrderBy") == []
    assert _commit("OPTIMIZE").list_param("zOrderBy") == []
    assert _commit("CREATE TABLE", partitionBy="[result_month]").list_param("partitionBy") == ["result_month"]
    assert _commit("CREATE TABLE", clusterBy='["a"]').list_param("clusterBy") == ["a"]


def test_metrics_are_integers() -> None:
    commit = _commit("MERGE", metrics={"numTargetRowsUpdated": "12", "numOutputRows": "3.0", "bad": "n/a"})
    assert commit.metric("numTargetRowsUpdated") == 12 and commit.metric("numOutputRows") == 3
    assert commit.metric("bad") == 0 and commit.metric("absent") == 0


def test_vacuum_retention() -> None:
    short = _commit("VACUUM START", 7, retentionCheckEnabled="false", specifiedRetentionMillis="0",
                    defaultRetentionMillis="604800000")
    default = _commit("VACUUM START", 9, retentionCheckEnabled="true", defaultRetentionMillis="604800000")
    assert short.retention_hours == 0 and short.retention_check_enabled is False
    assert default.retention_hours == 168 and default.retention_check_enabled is True
    assert short.describe_vacuum() == "v7 VACUUM START: retention 0 h, retention check disabled"
    assert default.describe_vacuum() == "v9 VACUUM START: retention 168 h, retention check on"
    assert _commit("OPTIMIZE").retention_hours is None


# ------------------------------------------------------------------ real Spark logs via delta-rs


def _history(tmp_path: Path, name: str) -> list[Commit]:
    """The history of fixture table ``name`` (a copied ``_delta_log`` only: no data files)."""
    schema, table = name.split(".")
    shutil.copytree(FIXTURES / name, tmp_path / schema / table)
    return open_table(name, tmp_path).history()


def test_bronze_fixture_is_appends_only(tmp_path: Path) -> None:
    history = _history(tmp_path, "bronze.medications")
    assert [c.kind for c in history] == [Kind.CREATE_AS_SELECT] + [Kind.APPEND] * (len(history) - 1)
    assert len(history) > 1 and all(c.only_adds for c in history)
    assert history[1].is_append and history[1].mode == "Append" and history[1].metric("numOutputRows") > 0


def test_silver_fixture_merges_then_relayout(tmp_path: Path) -> None:
    history = _history(tmp_path, "silver.lab_results_clean")
    logged = [json.loads(f.read_text().splitlines()[0])["commitInfo"]["operation"]
              for f in sorted((FIXTURES / "silver.lab_results_clean" / "_delta_log").glob("*.json"))]
    assert [c.operation for c in history] == logged
    # lab 02: created, one MERGE per CDC delivery; lab 03: partitioned rewrite, OPTIMIZE, Z-ORDER,
    # a pruned MERGE, the DELETE incident and its RESTORE, VACUUM
    assert [c.kind for c in history] == [
        Kind.CREATE, Kind.MERGE, Kind.MERGE, Kind.MERGE, Kind.REPLACE_AS_SELECT, Kind.OPTIMIZE,
        Kind.OPTIMIZE, Kind.MERGE, Kind.DELETE, Kind.RESTORE, Kind.VACUUM_START, Kind.VACUUM_END]
    relayout = [c for c in history[1:] if c.rewrites_data]
    assert [c.version for c in relayout] == [4] and relayout[0].list_param("partitionBy") == ["result_month"]
    assert history[5].list_param("zOrderBy") == [] and history[6].list_param("zOrderBy") == ["patient_id"]
    assert history[6].metric("numRemovedFiles") > history[6].metric("numAddedFiles") > 0
    assert history[7].metric("numTargetFilesAdded") > 0 and history[7].metric("numTargetRowsUpdated") >= 0
    assert [c.version for c in history if c.is_destructive] == [1, 2, 3, 4, 7, 8]
    assert str(history[9].param("version")) == "7"  # RESTORE to the version before the DELETE
    assert history[10].retention_hours == 168 and history[10].retention_check_enabled
    assert all(c.is_bookkeeping for c in history[10:])


def test_deletion_vector_fixture_purge_then_drop_feature(tmp_path: Path) -> None:
    """Delta 4.4's own commits: DVs enabled, DELETE and UPDATE with DVs, REORG … APPLY (PURGE),
    then DROP FEATURE deletionVectors (UNSET TBLPROPERTIES, tombstones, three empty commits)."""
    history = _history(tmp_path, "sandbox.encounters_dv")
    assert [c.operation for c in history] == [
        "WRITE", "SET TBLPROPERTIES", "DELETE", "UPDATE", "REORG", "UNSET TBLPROPERTIES",
        "Deletion Vector Tombstones", "Empty Commit", "Empty Commit", "Empty Commit", "DROP FEATURE"]
    assert [c.kind for c in history[4:]] == [Kind.REORG, Kind.SET_PROPERTIES] + [Kind.METADATA] * 5
    assert all(c.is_maintenance and not c.changes_data for c in history[4:])
    assert history[4].param("applyPurge") is True and history[10].param("featureName") == "deletionVectors"
    assert history[2].metric("numDeletionVectorsAdded") == 1 and history[2].metric("numRemovedFiles") == 0
    assert history[2].predicate == "(patient_id#506 = 5)" and history[2].erasure_request is None


def test_user_metadata_is_read_from_the_log(tmp_path: Path) -> None:
    """``spark.databricks.delta.commitInfo.userMetadata`` lands in commitInfo.userMetadata."""
    log = tmp_path / "sandbox" / "encounters_dv" / "_delta_log"
    shutil.copytree(FIXTURES / "sandbox.encounters_dv", log.parent)
    commit = log / "00000000000000000002.json"
    lines = commit.read_text().splitlines()
    info = json.loads(lines[0])
    info["commitInfo"]["userMetadata"] = "erasure:ER-7"
    commit.write_text("\n".join([json.dumps(info), *lines[1:]]) + "\n")
    history = open_table("sandbox.encounters_dv", tmp_path).history()
    assert [c.erasure_request for c in history] == [None, None, "ER-7"] + [None] * 8
    assert history[2].user_metadata == "erasure:ER-7"


def test_sandbox_fixture_short_vacuum(tmp_path: Path) -> None:
    history = _history(tmp_path, "sandbox.lab_results_vacuum_demo")
    vacuum = next(c for c in history if c.kind is Kind.VACUUM_START)
    assert vacuum.retention_hours is not None and vacuum.retention_hours < 168
    assert not vacuum.retention_check_enabled
    assert any(c.is_destructive for c in history if c.version < vacuum.version)
