"""Lab 05 on a fixture warehouse without a JVM: the streaming tables, their checkpoints and
realistic mistakes.

:func:`solve` builds what ``solutions/05_streaming_ingestion.ipynb`` leaves, on a landing volume
prepared from the fast data set with two extra deliveries (004, 005: 005 carries
``specimen_type``):

* ``bronze.<feed>_stream`` (encounters, lab_results): CREATE TABLE, then one STREAMING UPDATE per
  landing file (``maxFilesPerTrigger=1``), each carrying the query id and ``txn(queryId, epochId)``
  as Delta's streaming sink writes them; lab_results' last file after a restart with the new
  column and ``mergeSchema`` (same checkpoint, same query id);
* ``silver.encounters_stream``: CREATE TABLE, then one MERGE per bronze micro-batch with
  ``txn("medilake-silver-encounters", batch_id)``; the state after each is lab 02's clean rule on
  the files read so far;
* ``gold.abnormal_labs_hourly``: one STREAMING UPDATE per lab_results file and a last no-data
  micro-batch, the rows emitted by a simulation of Spark's stateful windowed aggregation
  (:func:`simulate_hourly`: late rows filtered with the previous micro-batch's watermark, windows
  evicted with the current one, watermark = max event time − 6 hours) — the grader recomputes
  the table in closed form from the checkpoint, so passing is evidence, not an echo;
* the four checkpoints as Spark writes them (``metadata``, ``offsets/<b>``, ``commits/<b>``,
  ``sources/0/<b>``; layout in :mod:`medilake_lab.grader.checkpoint`).

The commits are Spark-shaped (:mod:`fast.deltafix`, operation names and parameters from a Spark
4.2 / Delta 4.4 warehouse). Each wrong answer below rebuilds part of a copy of that warehouse.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from fast import deltafix as dx
from fast.medallion import merge_state, utc
from medilake_lab.contract import feeds
from medilake_lab.datagen.delivery import deliver, prepare_landing
from medilake_lab.grader.reference import silver as ref
from medilake_lab.grader.reference.raw import decode_line
from medilake_lab.runtime import config

TXN_APP = "medilake-silver-encounters"
BRONZE_QUERY = {"encounters": "bronze_encounters", "lab_results": "bronze_lab_results"}
SILVER_QUERY, GOLD_QUERY = "silver_encounters", "gold_abnormal_labs_hourly"
HOUR_MS, DELAY_MS = 3_600_000, 6 * 3_600_000
#: Extra deliveries the lab asks for (004 plain, 005 with specimen_type).
DELIVERIES = 2
T0 = int(datetime(2025, 11, 3, 9, tzinfo=UTC).timestamp() * 1000)


def query_id(name: str, run: int = 0) -> str:
    """A fixed query id per checkpoint (``run`` > 0: the id of a fresh checkpoint)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"medilake-fast/{name}/{run}"))


def table(warehouse: Path, name: str) -> Path:
    return dx.table_dir(warehouse, name)


def checkpoint_dir(warehouse: Path, query: str) -> Path:
    return config.checkpoint_dir(query, warehouse)


def volume(warehouse: Path) -> Path:
    return config.volume_dir(warehouse)


def files(warehouse: Path, feed: str) -> list[Path]:
    """The feed's landing files in the volume, in batch order."""
    root = volume(warehouse)
    return [Path(feeds.FEEDS[feed].path(str(root), b)) for b in feeds.delivered_batches(root, feed)]


# --------------------------------------------------------------------------------- checkpoints

@dataclass
class MicroBatch:
    """What one micro-batch leaves in a checkpoint: the files it read (file source), its source
    offset (JSON value), its watermark (ms) and whether it committed."""

    offset: object
    files: list[Path] = field(default_factory=list)
    watermark: int = 0
    committed: bool = True


def _log(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(["v1", *lines]))


def write_checkpoint(folder: Path, qid: str, batches: list[MicroBatch], *, first: int = 0) -> None:
    """Write (or extend, from batch id ``first``) a checkpoint: ``metadata`` (when absent),
    ``offsets/<b>``, ``commits/<b>`` for committed batches and ``sources/0/<b>`` for batches that
    read files."""
    if not (folder / "metadata").exists():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "metadata").write_text(json.dumps({"id": qid}))
    for i, mb in enumerate(batches):
        b = first + i
        meta = {"batchWatermarkMs": mb.watermark, "batchTimestampMs": T0 + b * 60_000,
                "conf": {"spark.sql.shuffle.partitions": "4"}}
        _log(folder / "offsets" / str(b), [json.dumps(meta), json.dumps(mb.offset)])
        if mb.files:
            _log(folder / "sources" / "0" / str(b),
                 [json.dumps({"path": f.resolve().as_uri(), "timestamp": T0, "batchId": b}) for f in mb.files])
        if mb.committed:
            following = batches[i + 1].watermark if i + 1 < len(batches) else mb.watermark
            _log(folder / "commits" / str(b), [json.dumps({"nextBatchWatermarkMs": following})])


# ---------------------------------------------------------------------------------- streaming sink

def add_txn(path: Path, version: int, app_id: str, txn_version: int) -> None:
    """Add a ``txn`` action to a commit (what Delta writes for a streaming sink's epoch, and for a
    write under ``spark.databricks.delta.write.txnAppId``/``txnVersion``)."""
    file = dx.commit_file(path, version)
    action = {"txn": {"appId": app_id, "version": txn_version, "lastUpdated": T0}}
    file.write_text(file.read_text() + json.dumps(action, separators=(",", ":")) + "\n")


def streaming_update(path: Path, rows: pa.Table, qid: str, epoch: int, *, mode: str = "Append",
                     merge_schema: bool = False) -> int:
    """One micro-batch through Delta's streaming sink (``writeStream.toTable``): a STREAMING UPDATE
    commit with ``outputMode``, ``queryId``, ``epochId`` and ``txn(queryId, epochId)``; Complete
    mode replaces the table's rows."""
    version = dx.write(path, rows, "overwrite" if mode == "Complete" else "append", merge_schema=merge_schema)
    change = dx.file_changes(path, version)
    dx.spark_commit(path, version, "STREAMING UPDATE", {"outputMode": mode, "queryId": qid, "epochId": str(epoch)},
                    {"numRemovedFiles": change["removed"], "numAddedFiles": change["added"],
                     "numOutputRows": change["added_rows"], "numOutputBytes": change["added_bytes"]},
                    blind_append=mode == "Append")
    add_txn(path, version, qid, epoch)
    return version


# ----------------------------------------------------------------------------------------- bronze

def bronze_rows(feed: str, file: Path, *, drift: bool) -> pa.Table:
    """What the bronze stream's ``readStream.schema(<contract DDL> + _corrupt_record).json`` plus
    the metadata columns gives for one file: every line in file order, a malformed line as nulls
    with its text in ``_corrupt_record``; lab_results with ``specimen_type`` when ``drift``."""
    root, batch = file.parents[2], file.name.removeprefix(f"{feed}_").removesuffix(feeds.FILE_SUFFIX)
    spec = feeds.FEEDS[feed]
    columns = list(spec.columns) + ([feeds.DRIFT_COLUMN] if feed == feeds.DRIFT_FEED else [])
    con = ref.connect(r=ref.records(feed, root), m=ref.malformed(feed, root))
    nulls = ", ".join(f"NULL AS {c}" for c in columns)
    rows = con.sql(f"SELECT {', '.join(columns)}, NULL::VARCHAR AS _corrupt_record, _line FROM r "
                   f"WHERE _batch = '{batch}' UNION ALL BY NAME SELECT {nulls}, _raw AS _corrupt_record, _line "
                   f"FROM m WHERE _batch = '{batch}' ORDER BY _line").to_arrow_table()
    typed = ref.records(feed, root).schema
    lines = rows["_line"].to_pylist()
    rows = rows.drop_columns(["_line"]).cast(pa.schema(
        [typed.field(c) for c in columns] + [pa.field("_corrupt_record", pa.string())]))
    if drift and feed == feeds.DELIVERY_DRIFT_FEED:
        values = _field_by_line(file, feeds.DELIVERY_DRIFT_COLUMN)
        corrupt = rows["_corrupt_record"].to_pylist()
        rows = rows.append_column(feeds.DELIVERY_DRIFT_COLUMN, pa.array(
            [None if bad is not None else values.get(line) for line, bad in zip(lines, corrupt, strict=True)],
            pa.string()))
    k = rows.num_rows
    rows = rows.append_column("_source_file", pa.array([file.resolve().as_uri()] * k, pa.string()))
    rows = rows.append_column("_ingested_at", pa.array([datetime.fromtimestamp(T0 / 1000, UTC)] * k,
                                                       pa.timestamp("us", tz="UTC")))
    return utc(rows.append_column("_batch_id", pa.array([batch] * k, pa.string())))


def _field_by_line(file: Path, column: str) -> dict[int, object]:
    out = {}
    with gzip.open(file, "rt", encoding="utf-8") as fh:
        for number, line in enumerate(fh):
            try:
                record = decode_line(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                out[number] = record.get(column)
    return out


def build_bronze(warehouse: Path, feed: str, *, qid: str | None = None, query: str | None = None,
                 first: int = 0, upto: int | None = None, evolve: bool = True) -> None:
    """``bronze.<feed>_stream`` and its checkpoint: CREATE TABLE when the table is new, then one
    micro-batch per landing file (``upto``: only the first files); lab_results' drifted batches
    are read after a restart with the new column and mergeSchema when ``evolve``. ``query``/
    ``qid``/``first``: the checkpoint folder, its query id and first batch id (defaults: the
    feed's own checkpoint)."""
    query = query or BRONZE_QUERY[feed]
    qid = qid or query_id(query)
    path = table(warehouse, f"bronze.{feed}_stream")
    chosen = files(warehouse, feed)[:upto]
    batches = []
    for i, file in enumerate(chosen):
        drift = evolve and file.name >= f"{feed}_{feeds.DELIVERY_DRIFT_FIRST_BATCH}"
        rows = bronze_rows(feed, file, drift=drift)
        if not (path / "_delta_log").exists():
            dx.create_empty(path, rows.schema)
        streaming_update(path, rows, qid, first + i, merge_schema=drift)
        batches.append(MicroBatch({"logOffset": first + i}, [file]))
    write_checkpoint(checkpoint_dir(warehouse, query), qid, batches, first=first)


# ----------------------------------------------------------------------------------------- silver

def volume_upto(warehouse: Path, batch: str) -> Path:
    """A data folder beside the warehouse with the encounters files up to ``batch`` (symlinks)
    and the manifest: what the silver stream had read after that micro-batch."""
    out = warehouse.parent / f"{warehouse.name}-silver-upto-{batch}"
    manifest = out / feeds.LANDING_DIR / feeds.MANIFEST_NAME
    if manifest.exists():
        return out
    for file in files(warehouse, "encounters"):
        if file.name <= f"encounters_{batch}{feeds.FILE_SUFFIX}":
            link = out / feeds.LANDING_DIR / "encounters" / file.name
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(file.resolve(), link)
    shutil.copy(volume(warehouse) / feeds.LANDING_DIR / feeds.MANIFEST_NAME, manifest)
    return out


def silver_state(warehouse: Path, batch: str) -> pa.Table:
    """``silver.encounters_stream`` after the micro-batch that read ``batch``: lab 02's clean
    encounters (without the derived length of stay) on the files read so far."""
    state = ref.expected_clean("encounters", volume_upto(warehouse, batch))
    return state.drop_columns([ref.DERIVED["encounters"][0]])


def build_silver(warehouse: Path) -> None:
    """``silver.encounters_stream`` and checkpoint ``silver_encounters``: CREATE TABLE, then per
    bronze micro-batch one MERGE from the previous state to the next, carrying
    ``txn(TXN_APP, batch_id)`` (a crash between a MERGE and its checkpoint commit, then a
    restart, leaves exactly this: Delta skips the replayed MERGE)."""
    path = table(warehouse, "silver.encounters_stream")
    batches = [f.name.removeprefix("encounters_").removesuffix(feeds.FILE_SUFFIX)
               for f in files(warehouse, "encounters")]
    before = silver_state(warehouse, batches[0]).schema.empty_table()
    dx.create_empty(path, utc(before).schema)
    marks = []
    for b, batch in enumerate(batches):
        after = silver_state(warehouse, batch)
        add_txn(path, merge_state(path, before, after, [feeds.FEEDS["encounters"].key], feeds.BATCHES[0]), TXN_APP, b)
        before = after
        marks.append(MicroBatch({"sourceVersion": 1, "reservoirId": "bronze-encounters", "reservoirVersion": b + 2,
                                 "index": -1, "isStartingVersion": False}))
    write_checkpoint(checkpoint_dir(warehouse, SILVER_QUERY), query_id(SILVER_QUERY), marks)


# ------------------------------------------------------------------------------------------- gold

GOLD_SCHEMA = pa.schema([("window_start", pa.timestamp("us", tz="UTC")), ("window_end", pa.timestamp("us", tz="UTC")),
                         ("results", pa.int64()), ("abnormal_results", pa.int64())])


def _valid_lab_rows(file: Path, inclusive: bool = False) -> list[tuple[int, bool]]:
    """(result_ts in ms, abnormal) of the file's rows the gold query keeps: not malformed, op not
    'D', result_ts, value, ref_low and ref_high present (``inclusive``: a value on a bound counts
    as abnormal, a mistake)."""
    root, batch = file.parents[2], file.name.removeprefix("lab_results_").removesuffix(feeds.FILE_SUFFIX)
    records = ref.records("lab_results", root)
    rows = records.filter(pc.equal(records["_batch"], batch))
    out = []
    for r in rows.select(["op", "result_ts", "value", "ref_low", "ref_high"]).to_pylist():
        if r["op"] is None or r["op"] == "D" or None in (r["result_ts"], r["value"], r["ref_low"], r["ref_high"]):
            continue
        ms = int(r["result_ts"].replace(tzinfo=UTC).timestamp() * 1000)
        if inclusive:
            out.append((ms, r["value"] <= r["ref_low"] or r["value"] >= r["ref_high"]))
        else:
            out.append((ms, r["value"] < r["ref_low"] or r["value"] > r["ref_high"]))
    return out


def _window_rows(windows: dict[int, list[int]]) -> pa.Table:
    starts = sorted(windows)
    ts = pa.timestamp("us", tz="UTC")
    return pa.table({"window_start": pa.array([s * 1000 for s in starts], ts),
                     "window_end": pa.array([(s + HOUR_MS) * 1000 for s in starts], ts),
                     "results": pa.array([windows[s][0] for s in starts], pa.int64()),
                     "abnormal_results": pa.array([windows[s][1] for s in starts], pa.int64())}, schema=GOLD_SCHEMA)


@dataclass
class Simulated:
    """The gold query's micro-batches (checkpoint entry, rows the sink receives) and how many
    valid rows it dropped as late."""

    batches: list[tuple[MicroBatch, pa.Table]]
    dropped: int


def simulate_hourly(chosen: list[Path], *, complete: bool = False, inclusive: bool = False,
                    delay_ms: int = DELAY_MS) -> Simulated:
    """Spark's micro-batches of the gold query, one file each, then a no-data batch when the
    watermark moved: per batch its checkpoint entry and the rows the sink receives (append: the
    windows evicted by this batch's watermark; complete: every window so far, nothing dropped)."""
    state: dict[int, list[int]] = {}
    out, watermark, previous, newest, dropped = [], 0, 0, None, 0
    for b, file in enumerate(chosen):
        rows = _valid_lab_rows(file, inclusive)
        for ts, abnormal in rows:
            start = ts - ts % HOUR_MS
            if not complete and b > 0 and start + HOUR_MS <= previous:
                dropped += 1  # late: its window ended before the previous batch's watermark
                continue
            cell = state.setdefault(start, [0, 0])
            cell[0] += 1
            cell[1] += abnormal
        out.append((MicroBatch({"logOffset": b}, [file], watermark), _emit(state, watermark, complete)))
        newest = max([newest or 0, *(ts for ts, _ in rows)])
        previous, watermark = watermark, max(watermark, newest - delay_ms)
    if chosen and watermark > previous:
        out.append((MicroBatch({"logOffset": len(chosen) - 1}, [], watermark), _emit(state, watermark, complete)))
    return Simulated(out, dropped)


def _emit(state: dict[int, list[int]], watermark: int, complete: bool) -> pa.Table:
    if complete:
        return _window_rows(state)
    done = {s: state.pop(s) for s in sorted(state) if s + HOUR_MS <= watermark}
    return _window_rows(done)


def build_gold(warehouse: Path, *, complete: bool = False, inclusive: bool = False,
               delay_ms: int = DELAY_MS) -> None:
    """``gold.abnormal_labs_hourly`` and checkpoint ``gold_abnormal_labs_hourly`` (append mode, or
    complete mode when ``complete``; ``inclusive``: values on a reference bound counted abnormal;
    ``delay_ms``: the watermark delay)."""
    path = table(warehouse, "gold.abnormal_labs_hourly")
    qid = query_id(GOLD_QUERY)
    dx.create_empty(path, GOLD_SCHEMA)
    batches = simulate_hourly(files(warehouse, "lab_results"), complete=complete, inclusive=inclusive,
                              delay_ms=delay_ms).batches
    for b, (_, rows) in enumerate(batches):
        streaming_update(path, rows, qid, b, mode="Complete" if complete else "Append")
    write_checkpoint(checkpoint_dir(warehouse, GOLD_QUERY), qid, [mb for mb, _ in batches])


# ------------------------------------------------------------------------------- the whole lab

def solve(warehouse: Path, data: Path) -> None:
    """The lab as the solution leaves it: the volume with :data:`DELIVERIES` extra batches, the
    four streaming tables and their checkpoints."""
    prepare_landing(data, warehouse)
    for _ in range(DELIVERIES):
        deliver(warehouse, data)
    for feed in BRONZE_QUERY:
        build_bronze(warehouse, feed)
    build_silver(warehouse)
    build_gold(warehouse)


def undo_last_batch(warehouse: Path, name: str, query: str) -> None:
    """Remove a table's last commit and its checkpoint's last micro-batch: the query was not run
    for the last file."""
    path = table(warehouse, name)
    dx.commit_file(path, DeltaTable(str(path)).version()).unlink()
    folder = checkpoint_dir(warehouse, query)
    last = str(max(int(f.name) for f in (folder / "commits").iterdir() if f.name.isdigit()))
    for log in (folder / "offsets", folder / "commits", folder / "sources" / "0"):
        (log / last).unlink(missing_ok=True)


def drop(warehouse: Path, name: str, query: str) -> None:
    """Remove a table and its checkpoint (before rebuilding them another way)."""
    shutil.rmtree(table(warehouse, name))
    shutil.rmtree(checkpoint_dir(warehouse, query))


# ------------------------------------------------------------------------------- wrong answers

def shared_checkpoint(warehouse: Path, data: Path) -> None:
    """The lab_results bronze stream given checkpoint bronze_encounters: ``toTable`` creates the
    table, then the query fails at start (Spark 4.2 re-reads the encounters query's last files
    under the lab_results folder: "Wrong basePath"), so the table holds only its CREATE TABLE and
    bronze_lab_results never exists."""
    drop(warehouse, "bronze.lab_results_stream", BRONZE_QUERY["lab_results"])
    dx.create_empty(table(warehouse, "bronze.lab_results_stream"),
                    bronze_rows("lab_results", files(warehouse, "lab_results")[0], drift=False).schema)


def checkpoint_lists_two_feeds(warehouse: Path, data: Path) -> None:
    """A source log holding files of two feeds, as if the lab_results query had run on checkpoint
    bronze_encounters (Spark 4.2 refuses at start, see :func:`shared_checkpoint`; the grader still
    names the state): its files appended as later batches, its table written under that id."""
    drop(warehouse, "bronze.lab_results_stream", BRONZE_QUERY["lab_results"])
    first = len(files(warehouse, "encounters"))
    build_bronze(warehouse, "lab_results", query=BRONZE_QUERY["encounters"],
                 qid=query_id(BRONZE_QUERY["encounters"]), first=first)


def fresh_checkpoint(warehouse: Path, data: Path) -> None:
    """The encounters stream restarted from a new, empty checkpoint: a new query id, every file
    read again and appended to the table a second time."""
    shutil.rmtree(checkpoint_dir(warehouse, BRONZE_QUERY["encounters"]))
    build_bronze(warehouse, "encounters", qid=query_id(BRONZE_QUERY["encounters"], run=1))


def no_txn_replayed(warehouse: Path, data: Path) -> None:
    """The foreachBatch MERGE without txnAppId/txnVersion, and a crash after the last micro-batch's
    MERGE and before its checkpoint commit: the restart replays that micro-batch, whose MERGE
    finds nothing newer and still commits."""
    path = table(warehouse, "silver.encounters_stream")
    for file in (path / "_delta_log").glob("*.json"):
        file.write_text("".join(line for line in file.read_text().splitlines(keepends=True) if '"txn"' not in line))
    last = dx.actions(path, DeltaTable(str(path)).version())[0]["commitInfo"]
    dx.commit_only(path, "MERGE", {k: json.loads(v) for k, v in last["operationParameters"].items()},
                   {"numSourceRows": int(last["operationMetrics"].get("numSourceRows", 0))})


def stale_silver(warehouse: Path, data: Path) -> None:
    """The silver stream not run after the last delivery: its last MERGE and micro-batch never
    happened."""
    undo_last_batch(warehouse, "silver.encounters_stream", SILVER_QUERY)


def batch_overwrite(warehouse: Path, data: Path) -> None:
    """bronze.encounters_stream replaced by a batch job: ``spark.read.json(landing)`` over every
    file, written with ``mode("overwrite")`` after the stream (the same rows, but not streamed)."""
    rows = pa.concat_tables([bronze_rows("encounters", f, drift=False) for f in files(warehouse, "encounters")])
    dx.write(table(warehouse, "bronze.encounters_stream"), rows, "overwrite")


def complete_mode(warehouse: Path, data: Path) -> None:
    """The hourly aggregate written with outputMode("complete"): every window rewritten each
    micro-batch, late rows kept."""
    drop(warehouse, "gold.abnormal_labs_hourly", GOLD_QUERY)
    build_gold(warehouse, complete=True)


def short_watermark(warehouse: Path, data: Path) -> None:
    """The aggregate written with withWatermark("result_ts", "10 minutes"): consistent with its own
    checkpoint, but it drops results the lab's 6-hour delay keeps."""
    drop(warehouse, "gold.abnormal_labs_hourly", GOLD_QUERY)
    build_gold(warehouse, delay_ms=10 * 60_000)


def bounds_abnormal(warehouse: Path, data: Path) -> None:
    """The aggregate counts a value equal to ref_low or ref_high as abnormal (``<=``/``>=``)."""
    drop(warehouse, "gold.abnormal_labs_hourly", GOLD_QUERY)
    build_gold(warehouse, inclusive=True)


def no_schema_restart(warehouse: Path, data: Path) -> None:
    """bronze.lab_results_stream never restarted with the new column: specimen_type is ignored."""
    drop(warehouse, "bronze.lab_results_stream", BRONZE_QUERY["lab_results"])
    build_bronze(warehouse, "lab_results", evolve=False)


def bronze_not_rerun(warehouse: Path, data: Path) -> None:
    """The lab_results bronze stream not run after the last delivery: its file is never read."""
    undo_last_batch(warehouse, "bronze.lab_results_stream", BRONZE_QUERY["lab_results"])


def never_delivered(warehouse: Path, data: Path) -> None:
    """No extra delivery: the volume holds only the bundled batches, and bronze streamed them."""
    for feed in feeds.FEEDS.values():
        for file in files(warehouse, feed.name):
            if file.name.removeprefix(f"{feed.name}_").removesuffix(feeds.FILE_SUFFIX) not in feeds.BATCHES:
                file.unlink()
    for feed, query in BRONZE_QUERY.items():
        drop(warehouse, f"bronze.{feed}_stream", query)
        build_bronze(warehouse, feed)


def gold_missing(warehouse: Path, data: Path) -> None:
    """The aggregate step not run: no gold table, no checkpoint."""
    drop(warehouse, "gold.abnormal_labs_hourly", GOLD_QUERY)
