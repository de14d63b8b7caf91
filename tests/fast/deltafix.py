"""Delta tables that look as Spark + Delta 4.4 writes them, built without a JVM (fast-tier fixtures).

The grader reads DESCRIBE HISTORY (operation, operationParameters, operationMetrics), file
statistics, partition columns and data. Each function here does the data change with delta-rs
(``deltalake``), then :func:`spark_commit` rewrites the ``commitInfo`` action of the new commit to
the shape Spark writes (see ``_delta_log/*.json`` of a warehouse built by the solution notebooks):

* ``operation`` is Spark's name (``"CREATE TABLE AS SELECT"``, ``"WRITE"``, ``"MERGE"``,
  ``"DELETE"``, ``"UPDATE"``, ``"OPTIMIZE"``, ``"VACUUM START"``, ``"RESTORE"``…);
* ``operationParameters`` values are strings, lists and maps JSON-encoded (``"partitionBy": "[]"``,
  ``"zOrderBy": "[\\"patient_id\\"]"``), booleans stay JSON booleans (``"canMergeSchema": true``),
  ``mode`` is the bare save mode (``"Append"``, ``"Overwrite"``);
* ``operationMetrics`` use Spark's camelCase names with every value a string of an integer.

Every operation takes a table directory and returns the version it committed (int). Tables are
``<warehouse>/<schema>/<table>`` as in :func:`medilake_lab.runtime.config.table_path`.
Timestamps must be timezone-aware (``pa.timestamp("us", tz="UTC")``): Delta's ``timestamp``
type, as Spark writes it (naive ones would become ``timestamp_ntz``).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)
from deltalake import DeltaTable, write_deltalake
from deltalake.table import TableMerger

ENGINE = "Apache-Spark/4.2.0 Delta-Lake/4.4.0"
#: Parameters Spark records for table creation by ``saveAsTable`` / CTAS (without partitionBy).
CREATE_PARAMETERS = {"clusterBy": [], "description": None, "isManaged": "true", "properties": {}}


def table_dir(warehouse: str | os.PathLike, name: str) -> Path:
    """Directory of ``schema.table`` in a warehouse (``<warehouse>/<schema>/<table>``)."""
    schema, table = name.split(".", 1)
    return Path(warehouse) / schema / table


def commit_file(path: str | os.PathLike, version: int) -> Path:
    """The JSON commit file of ``version`` in the table at ``path``."""
    return Path(path) / "_delta_log" / f"{version:020d}.json"


def actions(path: str | os.PathLike, version: int) -> list[dict]:
    """The actions (one dict per line) of one commit file."""
    return [json.loads(line) for line in commit_file(path, version).read_text().splitlines() if line]


def _param(value: Any) -> Any:
    """Spark's encoding of one operationParameters value: lists and maps as JSON strings, the rest
    as JSON values (Spark 4.2 / Delta 4.4 log ``RESTORE``'s ``"version": 4`` and ``VACUUM START``'s
    ``"specifiedRetentionMillis": 0`` as JSON numbers, ``"auto": false`` as a boolean)."""
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, separators=(",", ":"))
    return value


def spark_commit(path: str | os.PathLike, version: int, operation: str, parameters: Mapping[str, Any],
                 metrics: Mapping[str, int], *, blind_append: bool = False,
                 timestamp_ms: int | None = None) -> dict:
    """Rewrite the ``commitInfo`` of commit ``version`` to Spark's shape; returns the new commitInfo.

    ``parameters`` values are encoded as Spark does (lists/dicts → JSON strings; str, numbers,
    bool and None kept); ``metrics`` are Spark metric names → ints (written as strings).
    ``timestamp_ms`` replaces the commit time (ms since the epoch) when given. Other actions of
    the commit (add, remove, metaData, protocol) are kept byte for byte.

    Raises FileNotFoundError when the commit does not exist.
    """
    file = commit_file(path, version)
    lines = [line for line in file.read_text().splitlines() if line]
    old = next((json.loads(line)["commitInfo"] for line in lines if line.startswith('{"commitInfo"')), {})
    info: dict[str, Any] = {
        "timestamp": timestamp_ms if timestamp_ms is not None else old.get("timestamp", 0),
        "operation": operation,
        "operationParameters": {k: _param(v) for k, v in parameters.items()},
    }
    if version > 0:
        info["readVersion"] = version - 1
    info.update({"isolationLevel": "Serializable", "isBlindAppend": blind_append,
                 "operationMetrics": {k: str(int(v)) for k, v in metrics.items()},
                 "engineInfo": ENGINE, "txnId": str(uuid.uuid4())})
    rest = [line for line in lines if not line.startswith('{"commitInfo"')]
    file.write_text("\n".join([json.dumps({"commitInfo": info}, separators=(",", ":")), *rest]) + "\n")
    return info


def file_changes(path: str | os.PathLike, version: int) -> dict[str, int]:
    """Counts of one commit's file actions: ``added``/``removed`` files, ``added_bytes``,
    ``removed_bytes`` and ``added_rows`` (from the add actions' stats)."""
    out = dict.fromkeys(("added", "removed", "added_bytes", "removed_bytes", "added_rows"), 0)
    for action in actions(path, version):
        if "add" in action:
            add = action["add"]
            out["added"] += 1
            out["added_bytes"] += int(add.get("size", 0))
            out["added_rows"] += int(json.loads(add.get("stats") or "{}").get("numRecords", 0))
        elif "remove" in action:
            out["removed"] += 1
            out["removed_bytes"] += int(action["remove"].get("size") or 0)
    return out


def _version(path: str | os.PathLike) -> int:
    return DeltaTable(str(path)).version()


def _exists(path: str | os.PathLike) -> bool:
    return (Path(path) / "_delta_log").is_dir()


def write(path: str | os.PathLike, data: pa.Table, mode: str = "append", *, partition_by: list[str] | None = None,
          merge_schema: bool = False, operation: str | None = None, timestamp_ms: int | None = None) -> int:
    """``df.write.format("delta").mode(mode)[.option("mergeSchema", "true")].save(path)``.

    ``mode`` is ``"append"`` or ``"overwrite"``. ``operation`` defaults to ``"WRITE"``; pass e.g.
    ``"CREATE TABLE AS SELECT"`` (``saveAsTable`` on a new table) or ``"CREATE OR REPLACE TABLE AS
    SELECT"``. An overwrite replaces the schema too (like Spark's ``overwriteSchema``).
    """
    new = not _exists(path)
    schema_mode = "merge" if merge_schema else ("overwrite" if mode == "overwrite" else None)
    write_deltalake(str(path), data, mode=mode, partition_by=partition_by, schema_mode=schema_mode)
    version = _version(path)
    change = file_changes(path, version)
    op = operation or "WRITE"
    parameters: dict[str, Any] = {"partitionBy": list(partition_by or [])}
    if op == "WRITE":
        parameters = {"mode": mode.capitalize(), **parameters}
        if merge_schema:
            parameters["canMergeSchema"] = True
    else:
        parameters.update(CREATE_PARAMETERS)
    metrics = {"numFiles": change["added"], "numOutputRows": change["added_rows"],
               "numOutputBytes": change["added_bytes"]}
    if change["removed"]:
        metrics.update(numRemovedFiles=change["removed"], numRemovedBytes=change["removed_bytes"])
    spark_commit(path, version, op, parameters, metrics,
                 blind_append=mode == "append" or new, timestamp_ms=timestamp_ms)
    return version


def merge(path: str | os.PathLike, source: pa.Table, predicate: str,
          clauses: Callable[[TableMerger], TableMerger], *, timestamp_ms: int | None = None) -> int:
    """``MERGE INTO <path> t USING source s ON <predicate>`` with the clauses ``clauses`` adds to a
    delta-rs :class:`TableMerger` (aliases ``t`` and ``s``), e.g.
    ``lambda m: m.when_matched_update_all().when_not_matched_insert_all()``.

    The commit carries Spark's MERGE metrics (``numTargetRowsInserted``, ``numTargetRowsUpdated``,
    ``numTargetRowsDeleted``, ``numSourceRows``, ``numTargetFilesAdded``…).
    """
    merger = DeltaTable(str(path)).merge(source, predicate, source_alias="s", target_alias="t")
    result = clauses(merger).execute()
    version = _version(path)
    old = actions(path, version)[0].get("commitInfo", {}).get("operationParameters", {})
    change = file_changes(path, version)
    metrics = {
        "numSourceRows": result["num_source_rows"],
        "numTargetRowsInserted": result["num_target_rows_inserted"],
        "numTargetRowsUpdated": result["num_target_rows_updated"],
        "numTargetRowsMatchedUpdated": result["num_target_rows_updated"],
        "numTargetRowsNotMatchedBySourceUpdated": 0,
        "numTargetRowsDeleted": result["num_target_rows_deleted"],
        "numTargetRowsMatchedDeleted": result["num_target_rows_deleted"],
        "numTargetRowsNotMatchedBySourceDeleted": 0,
        "numTargetRowsCopied": result["num_target_rows_copied"],
        "numOutputRows": result["num_output_rows"],
        "numTargetFilesAdded": change["added"], "numTargetFilesRemoved": change["removed"],
        "numTargetBytesAdded": change["added_bytes"], "numTargetBytesRemoved": change["removed_bytes"],
        "numTargetChangeFilesAdded": 0, "numTargetDeletionVectorsAdded": 0,
        "numTargetDeletionVectorsRemoved": 0, "numTargetDeletionVectorsUpdated": 0,
        "executionTimeMs": result.get("execution_time_ms", 0), "scanTimeMs": result.get("scan_time_ms", 0),
        "rewriteTimeMs": result.get("rewrite_time_ms", 0), "materializeSourceTimeMs": 0,
    }
    parameters = {"predicate": [predicate],
                  "matchedPredicates": json.loads(old.get("matchedPredicates", "[]")),
                  "notMatchedPredicates": json.loads(old.get("notMatchedPredicates", "[]")),
                  "notMatchedBySourcePredicates": json.loads(old.get("notMatchedBySourcePredicates", "[]"))}
    spark_commit(path, version, "MERGE", parameters, metrics, timestamp_ms=timestamp_ms)
    return version


def _dml_metrics(change: dict[str, int], result: Mapping[str, Any]) -> dict[str, int]:
    return {"numAddedFiles": change["added"], "numRemovedFiles": change["removed"],
            "numAddedBytes": change["added_bytes"], "numRemovedBytes": change["removed_bytes"],
            "numCopiedRows": int(result.get("num_copied_rows", 0)), "numAddedChangeFiles": 0,
            "numDeletionVectorsAdded": 0, "numDeletionVectorsRemoved": 0, "numDeletionVectorsUpdated": 0,
            "executionTimeMs": int(result.get("execution_time_ms", 0)),
            "scanTimeMs": int(result.get("scan_time_ms", 0)),
            "rewriteTimeMs": int(result.get("rewrite_time_ms", 0))}


def delete(path: str | os.PathLike, predicate: str, *, timestamp_ms: int | None = None) -> int:
    """``DELETE FROM <path> WHERE <predicate>`` (DataFusion SQL); metrics ``numDeletedRows``…"""
    result = DeltaTable(str(path)).delete(predicate)
    version = _version(path)
    metrics = {**_dml_metrics(file_changes(path, version), result),
               "numDeletedRows": int(result.get("num_deleted_rows", 0))}
    spark_commit(path, version, "DELETE", {"predicate": [predicate]}, metrics, timestamp_ms=timestamp_ms)
    return version


def update(path: str | os.PathLike, updates: Mapping[str, str], predicate: str | None = None, *,
           timestamp_ms: int | None = None) -> int:
    """``UPDATE <path> SET col = <sql expr>, … [WHERE <predicate>]``; metrics ``numUpdatedRows``…"""
    result = DeltaTable(str(path)).update(updates=dict(updates), predicate=predicate)
    version = _version(path)
    metrics = {**_dml_metrics(file_changes(path, version), result),
               "numUpdatedRows": int(result.get("num_updated_rows", 0))}
    spark_commit(path, version, "UPDATE", {"predicate": [predicate] if predicate else []}, metrics,
                 timestamp_ms=timestamp_ms)
    return version


def optimize(path: str | os.PathLike, z_order: list[str] | None = None, *, target_size: int | None = None,
             timestamp_ms: int | None = None) -> int:
    """``OPTIMIZE <path> [ZORDER BY (cols)]``; metrics ``numAddedFiles``, ``numRemovedFiles``,
    ``numAddedBytes``, ``numRemovedBytes``. Returns the table version (unchanged when delta-rs
    found nothing to compact and wrote no commit)."""
    table = DeltaTable(str(path))
    before = table.version()
    if z_order:
        table.optimize.z_order(z_order, target_size=target_size)
    else:
        table.optimize.compact(target_size=target_size)
    version = _version(path)
    if version == before:
        return version
    change = file_changes(path, version)
    metrics = {"numAddedFiles": change["added"], "numRemovedFiles": change["removed"],
               "numAddedBytes": change["added_bytes"], "numRemovedBytes": change["removed_bytes"],
               "numBatches": 1, "totalConsideredFiles": change["removed"], "totalFilesSkipped": 0,
               "preserveInsertionOrder": 0, "numDeletionVectorsRemoved": 0}
    parameters = {"predicate": [], "auto": False, "clusterBy": [], "zOrderBy": list(z_order or [])}
    spark_commit(path, version, "OPTIMIZE", parameters, metrics, timestamp_ms=timestamp_ms)
    return version


def create_empty(path: str | os.PathLike, schema: pa.Schema, *, partition_by: list[str] | None = None,
                 operation: str = "CREATE TABLE", timestamp_ms: int | None = None) -> int:
    """``DeltaTable.createIfNotExists(...).addColumns(schema)`` / ``CREATE TABLE``: version 0
    with no data."""
    write_deltalake(str(path), schema.empty_table(), partition_by=partition_by)
    version = _version(path)
    spark_commit(path, version, operation, {"partitionBy": list(partition_by or []), **CREATE_PARAMETERS}, {},
                 blind_append=True, timestamp_ms=timestamp_ms)
    return version


def vacuum(path: str | os.PathLike, retention_hours: int = 0, *, timestamp_ms: int | None = None) -> tuple[int, int]:
    """``VACUUM <path> RETAIN <hours> HOURS`` with the retention check off; returns the versions
    of the ``VACUUM START`` and ``VACUUM END`` commits Spark writes around the deletion."""
    table = DeltaTable(str(path))
    before = table.version()
    deleted = table.vacuum(retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False)
    versions = [v for v in range(before + 1, _version(path) + 1)]
    if len(versions) != 2:
        raise RuntimeError(f"{path}: expected delta-rs to write VACUUM START and END, got versions {versions}")
    start, end = versions
    spark_commit(path, start, "VACUUM START",
                 {"retentionCheckEnabled": False, "specifiedRetentionMillis": retention_hours * 3_600_000,
                  "defaultRetentionMillis": 604_800_000},
                 {"numFilesToDelete": len(deleted), "sizeOfDataToDelete": 0}, timestamp_ms=timestamp_ms)
    spark_commit(path, end, "VACUUM END", {"status": "COMPLETED"},
                 {"numDeletedFiles": len(deleted), "numVacuumedDirectories": 1}, timestamp_ms=timestamp_ms)
    return start, end


def restore(path: str | os.PathLike, version: int, *, timestamp_ms: int | None = None) -> int:
    """``RESTORE TABLE <path> TO VERSION AS OF <version>``; metrics ``numRestoredFiles``…"""
    DeltaTable(str(path)).restore(version)
    table = DeltaTable(str(path))
    new = table.version()
    change = file_changes(path, new)
    sizes = pa.RecordBatchReader.from_stream(table.get_add_actions()).read_all()["size_bytes"]
    metrics = {"numRestoredFiles": change["added"], "numRemovedFiles": change["removed"],
               "restoredFilesSize": change["added_bytes"], "removedFilesSize": change["removed_bytes"],
               "numOfFilesAfterRestore": len(sizes), "tableSizeAfterRestore": pa.compute.sum(sizes).as_py() or 0}
    spark_commit(path, new, "RESTORE", {"version": version, "timestamp": None}, metrics, timestamp_ms=timestamp_ms)
    return new


# ------------------------------------------------- many files per commit, layout-only rewrites (lab 03)

def squash(path: str | os.PathLike, first: int) -> int:
    """Fold every commit after ``first`` into commit ``first`` and delete their files: one atomic
    commit holding all their file actions (Spark writes one file per task and partition in one
    commit; delta-rs one file per partition and write). Keeps ``first``'s commitInfo, the last
    metaData and protocol. Returns ``first``. Only for freshly written commits (no checkpoint)."""
    last = _version(path)
    lines = [line for line in commit_file(path, first).read_text().splitlines() if line]
    for version in range(first + 1, last + 1):
        for action in actions(path, version):
            kind = next(iter(action))
            if kind in ("metaData", "protocol"):
                lines = [line for line in lines if not line.startswith(f'{{"{kind}"')]
            if kind != "commitInfo":
                lines.append(json.dumps(action, separators=(",", ":")))
        commit_file(path, version).unlink()
    commit_file(path, first).write_text("\n".join(lines) + "\n")
    return first


def write_parts(path: str | os.PathLike, parts: list[pa.Table], mode: str = "append", *,
                partition_by: list[str] | None = None, operation: str | None = None,
                timestamp_ms: int | None = None) -> int:
    """Like :func:`write`, but each of ``parts`` becomes its own file in every partition it
    touches, all in one commit: ``df.repartition(len(parts)).write…`` (many small files)."""
    version = write(path, parts[0], mode, partition_by=partition_by, operation=operation,
                    timestamp_ms=timestamp_ms)
    for part in parts[1:]:
        write_deltalake(str(path), part, mode="append", partition_by=partition_by)
    squash(path, version)
    info = actions(path, version)[0]["commitInfo"]
    change = file_changes(path, version)
    metrics = {**{k: int(v) for k, v in info["operationMetrics"].items()}, "numFiles": change["added"],
               "numOutputRows": change["added_rows"], "numOutputBytes": change["added_bytes"]}
    spark_commit(path, version, info["operation"], info["operationParameters"], metrics,
                 blind_append=info["isBlindAppend"], timestamp_ms=info["timestamp"])
    return version


def read(path: str | os.PathLike, version: int | None = None) -> pa.Table:
    """The rows of a table (at ``version``), through delta-rs' DataFusion reader (string views as
    plain strings)."""
    from deltalake import QueryBuilder

    table = DeltaTable(str(path), version=version)
    rows = pa.RecordBatchReader.from_stream(QueryBuilder().register("t", table).execute("SELECT * FROM t")).read_all()
    return rows.cast(pa.schema([f.with_type(_plain(f.type)) for f in rows.schema]))


def _plain(dtype: pa.DataType) -> pa.DataType:
    """``dtype`` with string views (also inside lists) as plain strings."""
    if pa.types.is_string_view(dtype):
        return pa.string()
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype) or pa.types.is_list_view(dtype):
        return pa.list_(_plain(dtype.value_type))
    return dtype


def zorder(path: str | os.PathLike, columns: list[str], files_per_partition: int, *,
           timestamp_ms: int | None = None) -> int:
    """``OPTIMIZE <path> ZORDER BY (columns)``: every partition rewritten, sorted by ``columns``,
    into ``files_per_partition`` files of consecutive values (narrow per-file min/max ranges, as
    Z-ordering gives with a small target file size; delta-rs' z_order writes one file per
    partition here). Layout only: the add and remove actions carry ``dataChange: false``."""
    table = DeltaTable(str(path))
    partition_by = list(table.metadata().partition_columns)
    rows = read(path).sort_by([(c, "ascending") for c in partition_by + list(columns)])
    keys = [tuple(r.values()) for r in rows.select(partition_by).to_pylist()] if partition_by else [()] * rows.num_rows
    starts = [i for i in range(rows.num_rows) if i == 0 or keys[i] != keys[i - 1]] + [rows.num_rows]
    parts: list[list[pa.Table]] = [[] for _ in range(files_per_partition)]
    for lo, hi in zip(starts, starts[1:], strict=False):
        size = -(-(hi - lo) // files_per_partition)
        for j in range(files_per_partition):
            if lo + j * size < hi:
                parts[j].append(rows.slice(lo + j * size, min(size, hi - lo - j * size)))
    before = table.version()
    for j, chunk in enumerate(p for p in parts if p):
        write_deltalake(str(path), pa.concat_tables(chunk), mode="overwrite" if j == 0 else "append",
                        partition_by=partition_by or None)
    version = squash(path, before + 1)
    lines = []
    for action in actions(path, version):
        kind = next(iter(action))
        if kind in ("add", "remove"):
            action[kind]["dataChange"] = False
        if kind not in ("metaData", "protocol"):
            lines.append(json.dumps(action, separators=(",", ":")))
    commit_file(path, version).write_text("\n".join(lines) + "\n")
    change = file_changes(path, version)
    metrics = {"numAddedFiles": change["added"], "numRemovedFiles": change["removed"],
               "numAddedBytes": change["added_bytes"], "numRemovedBytes": change["removed_bytes"],
               "numBatches": 1, "totalConsideredFiles": change["removed"], "totalFilesSkipped": 0,
               "preserveInsertionOrder": 0, "numDeletionVectorsRemoved": 0}
    spark_commit(path, version, "OPTIMIZE",
                 {"predicate": [], "auto": False, "clusterBy": [], "zOrderBy": list(columns)}, metrics,
                 timestamp_ms=timestamp_ms)
    return version


def set_parameters(path: str | os.PathLike, version: int, **parameters: Any) -> dict:
    """Replace some ``operationParameters`` of commit ``version`` (Spark's encoding, see
    :func:`spark_commit`), e.g. a MERGE ``predicate`` as Spark logs it with attribute ids:
    ``set_parameters(p, 5, predicate=["((id#1 = id#2) AND month#3 IN (2025-08-01))"])``."""
    info = actions(path, version)[0]["commitInfo"]
    return spark_commit(path, version, info["operation"], {**info["operationParameters"], **parameters},
                        {k: int(v) for k, v in info["operationMetrics"].items()},
                        blind_append=info["isBlindAppend"], timestamp_ms=info["timestamp"])


def commit_only(path: str | os.PathLike, operation: str, parameters: Mapping[str, Any],
                metrics: Mapping[str, int], *, timestamp_ms: int | None = None) -> int:
    """Append a commit that holds only a commitInfo (no data change: what Spark's VACUUM START/END
    write when nothing is deleted); returns its version."""
    version = _version(path) + 1
    commit_file(path, version).write_text("")
    now = int(datetime.now(UTC).timestamp() * 1000)
    spark_commit(path, version, operation, parameters, metrics,
                 timestamp_ms=timestamp_ms if timestamp_ms is not None else now)
    return version


def vacuum_nothing(path: str | os.PathLike, retention_hours: int | None = None, *,
                   timestamp_ms: int | None = None) -> tuple[int, int]:
    """A VACUUM that finds nothing to delete (delta-rs then commits nothing; Spark still writes
    VACUUM START and END). ``retention_hours`` None: ``VACUUM <path>`` with the default 7-day
    retention and the retention check on; a number: ``RETAIN <n> HOURS`` with the check off.
    Returns the START and END versions."""
    parameters: dict[str, Any] = {"retentionCheckEnabled": retention_hours is None,
                                  "defaultRetentionMillis": 604_800_000}
    if retention_hours is not None:
        parameters["specifiedRetentionMillis"] = retention_hours * 3_600_000
    start = commit_only(path, "VACUUM START", parameters, {"numFilesToDelete": 0, "sizeOfDataToDelete": 0},
                        timestamp_ms=timestamp_ms)
    end = commit_only(path, "VACUUM END", {"status": "COMPLETED"},
                      {"numDeletedFiles": 0, "numVacuumedDirectories": 1}, timestamp_ms=timestamp_ms)
    return start, end
