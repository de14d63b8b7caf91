"""A correct bronze + silver warehouse built without a JVM, for the fast grader tests.

The contents come from the kit's independent reference code (:mod:`medilake_lab.grader.reference`),
applied to a raw-data folder; the Delta history is the one the solution notebooks leave
(bronze: CREATE TABLE AS SELECT of batch 001, then one append per batch; silver: CREATE TABLE, then
one MERGE per batch). A silver table's state after each batch is the reference result
on a data folder that holds only the batches delivered so far (:func:`data_upto`), so each MERGE
changes exactly what that delivery changes and its metrics count it.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from fast import deltafix as dx
from medilake_lab.contract import feeds
from medilake_lab.grader.reference import silver as ref

METADATA = ("_corrupt_record", "_ingested_at", "_source_file", "_batch_id")
#: Commit/ingestion time of batch n: 2025-10-0n 06:00 UTC (one day per batch).
BATCH_TIME = {b: datetime(2025, 10, i + 1, 6, tzinfo=UTC) for i, b in enumerate(feeds.BATCHES)}


def utc(table: pa.Table) -> pa.Table:
    """Naive timestamps (the reference's naive UTC) as UTC-aware ones: Delta's ``timestamp`` type."""
    fields = [pa.field(f.name, pa.timestamp("us", tz="UTC")) if pa.types.is_timestamp(f.type) else f
              for f in table.schema]
    return table.cast(pa.schema(fields))


def ms(batch: str) -> int:
    """Commit time of a batch's load, milliseconds since the epoch."""
    return int(BATCH_TIME[batch].timestamp() * 1000)


# ------------------------------------------------------------------------------------------- bronze

def bronze_batch(feed: str, batch: str, data: Path, *, drift: bool | None = None) -> pa.Table:
    """What ``spark.read.schema(<contract DDL> + _corrupt_record).json(file)`` plus the metadata
    columns gives for one batch file: every line in file order, a malformed line as nulls with its
    text in ``_corrupt_record``. The drift column is present from its first batch on (or as
    ``drift`` says)."""
    spec = feeds.FEEDS[feed]
    columns = list(spec.columns)
    if feed == feeds.DRIFT_FEED and (drift if drift is not None else batch >= feeds.DRIFT_FIRST_BATCH):
        columns.append(feeds.DRIFT_COLUMN)
    con = ref.connect(r=ref.records(feed, data), m=ref.malformed(feed, data))
    cols = ", ".join(columns)
    nulls = ", ".join(f"NULL AS {c}" for c in columns)
    rows = con.sql(f"SELECT {cols}, NULL::VARCHAR AS _corrupt_record, _line FROM r WHERE _batch = '{batch}' "
                   f"UNION ALL BY NAME SELECT {nulls}, _raw AS _corrupt_record, _line FROM m "
                   f"WHERE _batch = '{batch}' ORDER BY _line").to_arrow_table()
    typed = ref.records(feed, data).schema
    rows = rows.drop_columns(["_line"]).cast(pa.schema(
        [typed.field(c) for c in columns] + [pa.field("_corrupt_record", pa.string())]))
    source = "file:" + str(Path(spec.path(str(data), batch)).resolve())
    n = rows.num_rows
    rows = rows.append_column("_ingested_at", pa.array([BATCH_TIME[batch]] * n, pa.timestamp("us", tz="UTC")))
    rows = rows.append_column("_source_file", pa.array([source] * n, pa.string()))
    return utc(rows.append_column("_batch_id", pa.array([batch] * n, pa.string())))


def build_bronze(warehouse: Path, data: Path) -> None:
    """The six ``bronze.<feed>`` tables as lab 01's solution leaves them: version 0 is a
    CREATE TABLE AS SELECT of batch 001, each later batch an append with mergeSchema."""
    for feed in feeds.FEED_NAMES:
        path = dx.table_dir(warehouse, f"bronze.{feed}")
        for i, batch in enumerate(feeds.BATCHES):
            dx.write(path, bronze_batch(feed, batch, data), merge_schema=i > 0,
                     operation="CREATE TABLE AS SELECT" if i == 0 else None, timestamp_ms=ms(batch))


# ------------------------------------------------------------------------------------------- silver

def data_upto(data: Path, batch: str) -> Path:
    """A data folder holding the batches up to ``batch`` (symlinks) and the manifest: what had
    been delivered when that batch arrived. It sits beside ``data`` (``<data>-upto-<batch>``)
    and is made once, so the reference's per-folder caches serve every caller."""
    out = data.parent / f"{data.name}-upto-{batch}"
    manifest = out / feeds.LANDING_DIR / feeds.MANIFEST_NAME
    if manifest.exists():
        return out
    for spec in feeds.FEEDS.values():
        for b in feeds.BATCHES:
            if b <= batch:
                link = Path(spec.path(str(out), b))
                link.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(Path(spec.path(str(data), b)).resolve(), link)
    shutil.copy(data / feeds.LANDING_DIR / feeds.MANIFEST_NAME, manifest)
    return out


def scd_versions(data: Path, versions: pa.Table | None = None) -> pa.Table:
    """``silver.patients_scd`` rows: the reference versions (or ``versions``, shaped like
    :func:`ref.patient_versions`) with every patient column (from the record that opened the
    version), ``effective_from``, ``effective_to``, ``is_current``."""
    columns = [c for c in feeds.FEEDS["patients"].columns if c != "op"]
    versions = ref.patient_versions(data) if versions is None else versions
    con = ref.connect(v=versions, r=ref.records("patients", data))
    select = ", ".join(f"v.{c}" if c in ("patient_id", *ref.TRACKED) else f"r.{c}" for c in columns)
    return con.sql(
        f"SELECT {select}, v.effective_from, v.effective_to, v.is_current FROM v JOIN ("
        "SELECT * FROM r WHERE _reason IS NULL QUALIFY row_number() OVER (PARTITION BY patient_id, "
        "updated_at, _batch ORDER BY _line) = 1) r ON r.patient_id = v.patient_id AND "
        "r.updated_at = v.effective_from AND r._batch = v.batch ORDER BY v.patient_id, v.effective_from"
    ).to_arrow_table()


def _changes(before: pa.Table, after: pa.Table, key: list[str]) -> pa.Table:
    """MERGE source turning ``before`` into ``after``: changed/new rows of ``after`` with
    ``_op = 'U'``, and keys of ``before`` absent from ``after`` with ``_op = 'D'``."""
    on = " AND ".join(f"a.{k} = b.{k}" for k in key)
    con = ref.connect(b=before, a=after)
    return con.sql(f"SELECT *, 'U' AS _op FROM (SELECT * FROM a EXCEPT SELECT * FROM b) "
                   f"UNION ALL BY NAME SELECT b.*, 'D' AS _op FROM b WHERE NOT EXISTS "
                   f"(SELECT 1 FROM a WHERE {on})").to_arrow_table()


def merge_state(path: Path, before: pa.Table, after: pa.Table, key: list[str], batch: str) -> int:
    """One MERGE that turns the table's rows ``before`` into ``after`` (same columns, naive or
    aware timestamps): deletes vanished keys, updates changed rows, inserts new ones. Returns the
    version."""
    source = utc(_changes(before, after, key))
    values = {c: f"s.{c}" for c in after.column_names}
    return dx.merge(path, source, " AND ".join(f"t.{k} = s.{k}" for k in key), lambda m: m
                    .when_matched_delete("s._op = 'D'")
                    .when_matched_update(values, "s._op = 'U'")
                    .when_not_matched_insert(values, "s._op = 'U'"), timestamp_ms=ms(batch))


def merge_states(path: Path, states: dict[str, pa.Table], key: list[str]) -> None:
    """CREATE TABLE (empty, the first state's schema), then one :func:`merge_state` per batch
    (``states``: batch id → rows after it), as the solution does."""
    empty = states[feeds.BATCHES[0]].schema.empty_table()
    dx.create_empty(path, utc(empty).schema, timestamp_ms=ms(feeds.BATCHES[0]))
    for before, batch in zip((empty, *(states[b] for b in feeds.BATCHES)), feeds.BATCHES, strict=False):
        merge_state(path, before, states[batch], key, batch)


def quarantine_rows(data: Path, batch: str) -> pa.Table:
    """``silver.quarantine`` rows of one batch: rejected records (with key and reason) and
    malformed lines (key null, reason ``"malformed"``), all strings."""
    parts = []
    for feed in feeds.FEED_NAMES:
        con = ref.connect(r=ref.rejected(feed, data), m=ref.malformed(feed, data))
        parts.append(con.sql(
            f"SELECT '{feed}' AS feed, key, reason, batch, raw FROM r WHERE batch = '{batch}' UNION ALL "
            f"SELECT DISTINCT '{feed}', NULL::VARCHAR, 'malformed', _batch, _raw FROM m WHERE _batch = '{batch}'"
        ).to_arrow_table())
    return pa.concat_tables(parts)


def build_silver(warehouse: Path, data: Path) -> None:
    """The seven silver tables as lab 02's solution leaves them."""
    as_of = ref.as_of_date(data)
    upto = {batch: data_upto(data, batch) for batch in feeds.BATCHES}
    for feed in ref.CLEAN_FEEDS:
        states = {b: ref.expected_clean(feed, upto[b], as_of) for b in feeds.BATCHES}
        merge_states(dx.table_dir(warehouse, f"silver.{feed}_clean"), states, [feeds.FEEDS[feed].key])
    states = {b: scd_versions(upto[b]) for b in feeds.BATCHES}
    merge_states(dx.table_dir(warehouse, "silver.patients_scd"), states, ["patient_id", "effective_from"])
    path = dx.table_dir(warehouse, "silver.quarantine")
    dx.create_empty(path, quarantine_rows(data, feeds.BATCHES[0]).schema, timestamp_ms=ms(feeds.BATCHES[0]))
    for batch in feeds.BATCHES:  # insert-only MERGE: re-running a batch adds nothing
        dx.merge(path, quarantine_rows(data, batch), "t.feed = s.feed AND t.batch = s.batch AND t.raw = s.raw",
                 lambda m: m.when_not_matched_insert_all(), timestamp_ms=ms(batch))
