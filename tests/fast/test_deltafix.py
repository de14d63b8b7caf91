"""The layout primitives of :mod:`fast.deltafix` (lab 03's fixtures) write what Spark writes: one
commit per statement, many files per partition, layout-only OPTIMIZE commits, and commitInfo
shapes as recorded from Spark 4.2 / Delta 4.4 (keys copied from a real ``_delta_log``)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from fast import deltafix as dx

#: operationParameters / operationMetrics keys of real Spark commits (Spark 4.2.0, Delta 4.4.0).
SPARK_ZORDER_PARAMETERS = {"predicate", "zOrderBy", "clusterBy", "auto"}
SPARK_OPTIMIZE_METRICS = {"numRemovedFiles", "numRemovedBytes", "numAddedFiles", "numAddedBytes"}
SPARK_VACUUM_DEFAULT = {"retentionCheckEnabled": True, "defaultRetentionMillis": 604800000}


def _rows(n: int = 120) -> pa.Table:
    return pa.table({"id": [f"R{i:04d}" for i in range(n)],
                     "patient_id": [f"P{(i * 37) % 50:03d}" for i in range(n)],
                     "month": pa.array([date(2025, 1 + i % 3, 1) for i in range(n)], pa.date32())})


def _files(path: Path) -> pa.Table:
    return pa.RecordBatchReader.from_stream(DeltaTable(str(path)).get_add_actions(flatten=True)).read_all()


@pytest.fixture()
def table(tmp_path: Path) -> Path:
    """A table written by 4 tasks into 3 month partitions in one commit (version 0)."""
    path = tmp_path / "t"
    rows = _rows()
    dx.write_parts(path, [rows.slice(i, 30) for i in range(0, 120, 30)], partition_by=["month"],
                   operation="CREATE TABLE AS SELECT")
    return path


def test_write_parts_is_one_commit_with_a_file_per_part_and_partition(table: Path) -> None:
    assert DeltaTable(str(table)).version() == 0
    assert _files(table).num_rows == 4 * 3
    metrics = dx.actions(table, 0)[0]["commitInfo"]["operationMetrics"]
    assert (metrics["numFiles"], metrics["numOutputRows"]) == ("12", "120")
    assert dx.read(table).num_rows == 120


def test_zorder_rewrites_layout_only_into_narrow_ranges(table: Path) -> None:
    version = dx.zorder(table, ["patient_id"], 2)
    commit = dx.actions(table, version)
    info = commit[0]["commitInfo"]
    assert info["operation"] == "OPTIMIZE" and info["operationParameters"]["zOrderBy"] == '["patient_id"]'
    assert set(info["operationParameters"]) == SPARK_ZORDER_PARAMETERS
    assert SPARK_OPTIMIZE_METRICS <= set(info["operationMetrics"])
    assert {a[k]["dataChange"] for a in commit for k in ("add", "remove") if k in a} == {False}
    files = _files(table)
    assert files.num_rows == 3 * 2
    for month in (date(2025, m, 1) for m in (1, 2, 3)):
        ranges = sorted((lo, hi) for lo, hi, m in zip(files["min.patient_id"].to_pylist(),
                                                       files["max.patient_id"].to_pylist(),
                                                       files["partition.month"].to_pylist(), strict=True)
                        if m == month)
        assert ranges[0][1] <= ranges[1][0], f"{month}: overlapping ranges {ranges}"
    assert sorted(dx.read(table)["id"].to_pylist()) == sorted(_rows()["id"].to_pylist())


def test_set_parameters_keeps_the_rest_of_the_commit(table: Path) -> None:
    before = dx.actions(table, 0)
    dx.set_parameters(table, 0, predicate=["(id#1 = id#2)"])
    after = dx.actions(table, 0)
    assert after[0]["commitInfo"]["operationParameters"]["predicate"] == '["(id#1 = id#2)"]'
    assert after[0]["commitInfo"]["operationMetrics"] == before[0]["commitInfo"]["operationMetrics"]
    assert after[1:] == before[1:]


def test_vacuum_nothing_writes_spark_start_and_end(table: Path) -> None:
    start, end = dx.vacuum_nothing(table)
    history = {c["version"]: c for c in DeltaTable(str(table)).history()}
    assert (history[start]["operation"], history[end]["operation"]) == ("VACUUM START", "VACUUM END")
    assert history[start]["operationParameters"] == SPARK_VACUUM_DEFAULT
    start, _ = dx.vacuum_nothing(table, 0)
    assert dx.actions(table, start)[0]["commitInfo"]["operationParameters"] == {
        "retentionCheckEnabled": False, "defaultRetentionMillis": 604800000, "specifiedRetentionMillis": 0}
