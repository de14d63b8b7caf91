"""Independent silver expectations, recomputed from the RAW feeds with DuckDB (no Spark, no bronze).

The lab 02 grader compares a learner's silver tables with these results. They are computed from
the delivered files only — never from the learner's bronze tables nor from the generator's own
bookkeeping — by applying the silver rules in SQL:

Validation
    A line is *malformed* when it is not a JSON object or a typed field (DOUBLE, DATE, TIMESTAMP)
    holds a value of the wrong type (what Spark's PERMISSIVE mode puts in ``_corrupt_record``).
    A parsed record is *rejected* when a field of ``Feed.required`` is null or missing, or its
    code column holds a code that :func:`medilake_lab.contract.codes.is_valid_code` refuses. Rejected
    records go to quarantine; every other record is *valid*.
Clean tables (``silver.<feed>_clean``)
    Per business key, the valid version with the greatest ``updated_at`` wins (on a tie the
    first delivered, i.e. a MERGE that updates only on a strictly newer ``updated_at``). When
    that version is an ``op = 'D'`` the key is deleted. This is what batch-by-batch MERGEs with
    a "source is newer" condition give when deletes are remembered (tombstones), so that a stale
    copy arriving after its key's delete is not inserted again.
Derived columns
    ``length_of_stay_days`` = discharge date − admit date in whole days (UTC dates; null while not
    discharged); ``abnormal_flag`` = ``'H'`` above ``ref_high``, ``'L'`` below ``ref_low``,
    ``'N'`` within the closed range, null when a bound is missing; ``is_active`` = started on or
    before the as-of date and not ended on or before it (``end_date`` null or after it);
    ``is_chronic`` is ``'Y'``/``'N'`` cast to boolean.
Patients (``silver.patients_scd``, SCD Type 2)
    Batches are applied in order; in each, the latest valid record per patient (intermediate
    versions inside one batch are not kept) is compared with the patient's latest version so far.
    A record not newer than it is ignored (out of order); on an open version, an ``op = 'D'``
    closes it, a change of a tracked attribute (null-safe comparison) closes it and opens a new
    version, anything else is ignored; after a delete, only a newer non-delete record opens a
    version again. ``effective_from`` is the record's
    ``updated_at``; the closed version's ``effective_to`` is the next ``effective_from`` (or the
    delete's ``updated_at``).

Erasure
    Every public function takes ``erased``: patient ids of lab 07's recorded erasure requests. A
    line that names one of them as a JSON string counts as never delivered (the rule of
    :func:`medilake_lab.grader.reference.raw.erased_line`): its record, malformed or not, is left
    out before any rule above applies.

All timestamps are naive UTC (``timestamp[us]``); dates are ``date32``. Results are cached per
data folder, file stamp (name, mtime, size) and set of erased ids, in memory and on disk
(:mod:`medilake_lab.grader.cache`); each file is parsed once. Every
batch file of a feed is read: the bundled batches, and later deliveries in lab 05's landing volume.
Every public function raises
:class:`medilake_lab.errors.DataError` when a feed it needs has no file under
``<data>/landing/<feed>/``.
"""

from __future__ import annotations

import gc
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from medilake_lab.contract import codes, feeds
from medilake_lab.errors import DataError
from medilake_lab.grader.cache import in_memory, memoized
from medilake_lab.grader.reference.raw import lines, needles, records_of
from medilake_lab.grader.toolkit import connect, one
from medilake_lab.runtime import config

#: SCD Type 2 tracked attributes of patients (a change in any of them opens a new version).
TRACKED: tuple[str, ...] = ("first_name", "last_name", "address_line", "city", "state", "zip",
                            "insurance_payer", "insurance_member_id")
#: Feeds that become ``silver.<feed>_clean`` tables (patients become ``silver.patients_scd``).
CLEAN_FEEDS: tuple[str, ...] = ("encounters", "diagnoses", "procedures", "lab_results",
                                "medications")
#: Derived column per clean feed (absent feeds have none).
DERIVED: dict[str, tuple[str, str]] = {
    "encounters": ("length_of_stay_days", "int"),
    "lab_results": ("abnormal_flag", "string"),
    "medications": ("is_active", "boolean"),
}
#: Contract columns a silver table stores with another type than in the feed.
RECAST: dict[tuple[str, str], str] = {("diagnoses", "is_chronic"): "boolean"}

_TEXT_TYPES = (feeds.DATE, feeds.TIMESTAMP)  # kept as text while parsing, cast by DuckDB


def _collect(value: object, ddl_type: str) -> object:
    """A JSON value ready for an arrow column of the declared type (dates/timestamps as text).
    Raises ValueError for a value Spark's JSON reader would not accept for that type."""
    if value is None:
        return None
    if ddl_type == feeds.STRING:
        return value if type(value) is str else json.dumps(value, separators=(",", ":"))
    if ddl_type == feeds.DOUBLE and (type(value) is int or type(value) is float):
        return float(value)
    if ddl_type == feeds.INT and type(value) is int:
        return value
    if ddl_type in _TEXT_TYPES and type(value) is str:
        return value
    raise ValueError(f"a JSON {type(value).__name__} is not a {ddl_type}")


def _fields(feed: feeds.Feed) -> list[tuple[str, str]]:
    cols = list(feed.fields)
    if feed.name == feeds.DRIFT_FEED:
        cols.append((feeds.DRIFT_COLUMN, feeds.STRING))
    return cols


def _typed_sql(feed: feeds.Feed) -> tuple[str, str]:
    """Two DuckDB SELECTs: ``typed`` casts the staged dates/timestamps and flags values of the
    wrong type (``_bad``: Spark would mark the line corrupt); the second keeps the good rows and
    states each record's rejection ``_reason``."""
    casts, bad = [], []
    for name, ddl_type in _fields(feed):
        if ddl_type in _TEXT_TYPES:
            sql_type = "DATE" if ddl_type == feeds.DATE else "TIMESTAMP"
            casts.append(f"TRY_CAST({name} AS {sql_type}) AS {name}")
            bad.append(f"({name} IS NOT NULL AND TRY_CAST({name} AS {sql_type}) IS NULL)")
        else:
            casts.append(name)
    reasons = [f"CASE WHEN {c} IS NULL THEN 'null {c}' END" for c in feed.required]
    if feed.code_column:
        quote = "''''"
        reasons.append(f"CASE WHEN NOT _code_ok THEN 'invalid {feed.code_system} code ' || "
                       f"{quote} || {feed.code_column} || {quote} END")
    typed = (f"SELECT {', '.join(casts)}, _batch, _line, _raw, _code_ok, _seq, "
             f"{' OR '.join(bad) or 'false'} AS _bad FROM staged")
    # _seq orders the records of one JSON-array line as they were delivered (a sort is not stable)
    valid = (f"SELECT * EXCLUDE (_bad, _code_ok, _seq), "
             f"NULLIF(concat_ws('; ', {', '.join(reasons)}), '') AS _reason "
             "FROM typed WHERE NOT _bad ORDER BY _batch, _line, _seq")
    return typed, valid


#: Records staged per arrow batch while parsing: Python rows are turned into columns and freed
#: every so many, so the whole feed is never held as Python objects (at scale 30, lab_results'
#: parse peaked at 5.0 GiB with one list, 2.3 GiB in batches: benchmarks/RESULTS.md).
CHUNK_RECORDS = 50_000


def _staged_batch(fields: list[tuple[str, str]], rows: list[list], meta: list[tuple],
                  first: int) -> pa.RecordBatch:
    """One arrow batch of parsed records: the feed's ``fields`` (doubles as float64, ints as
    int32, the rest as text) and ``_batch``, ``_line``, ``_raw``, ``_code_ok``, ``_seq`` (int64
    record number in the feed, from ``first``)."""
    arrow_type = {feeds.DOUBLE: pa.float64(), feeds.INT: pa.int32()}
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(fields)
    extra = list(zip(*meta, strict=True)) if meta else [()] * 4
    return pa.record_batch({**{name: pa.array(col, arrow_type.get(t, pa.string()))
                               for (name, t), col in zip(fields, columns, strict=True)},
                            "_batch": pa.array(extra[0], pa.string()),
                            "_line": pa.array(extra[1], pa.int64()),
                            "_raw": pa.array(extra[2], pa.string()),
                            "_code_ok": pa.array(extra[3], pa.bool_()),
                            "_seq": pa.array(range(first, first + len(rows)), pa.int64())})


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector (process-wide) while a parse builds acyclic rows:
    reference counting still frees them, and the collections it triggers cost about a quarter of
    the parse time (lab_results at scale 30, in batches: 15.7 s with the collector, 12.0 s
    without). Restores the collector's state on exit, exception or not."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@memoized
def _parse(feed_name: str, root: Path, stamp: tuple) -> tuple[pa.Table, pa.Table]:
    with _cyclic_gc_paused():
        return _parse_feed(feeds.FEEDS[feed_name], root, stamp)


def _parse_feed(feed: feeds.Feed, root: Path, stamp: tuple) -> tuple[pa.Table, pa.Table]:
    """(parsed records, malformed lines) of the feed's files in ``stamp`` (see :func:`records`)."""
    fields = _fields(feed)
    # text values pass as they are, except for numeric columns (a string there is a wrong type)
    text_ok = [t not in (feeds.DOUBLE, feeds.INT) for _, t in fields]
    plan = list(zip((name for name, _ in fields), (t for _, t in fields), text_ok, strict=True))
    rows: list[list] = []
    meta: list[tuple] = []  # (_batch, _line, _raw, _code_ok) per parsed record
    chunks: list[pa.RecordBatch] = []
    staged_rows = 0  # records in chunks
    malformed: list[tuple] = []  # (_batch, _line, _raw) per malformed line
    code_column, system = feed.code_column, feed.code_system
    for batch in stamped_batches(stamp):  # the files of the key, not those there now (a delivery meanwhile)
        path = Path(feed.path(str(root), batch))
        for number, text, utf8 in lines(path):
            if not text.strip():
                continue
            records = records_of(text) if utf8 else None  # a JSON array of objects: one record each
            try:
                if records is None:
                    raise ValueError("not UTF-8, not JSON, or not an object nor an array of objects")
                values_of = [[value if value is None or (ok and type(value) is str) else _collect(value, ddl_type)
                              for name, ddl_type, ok in plan for value in (record.get(name),)]
                             for record in records]
            except ValueError:
                malformed.append((batch, number, text))
                continue
            for record, values in zip(records, values_of, strict=True):
                rows.append(values)
                code = record.get(code_column) if code_column else None
                valid = None if code is None or system is None else codes.is_valid_code(system, code)
                meta.append((batch, number, text, valid))
            if len(rows) >= CHUNK_RECORDS:
                chunks.append(_staged_batch(fields, rows, meta, staged_rows))
                staged_rows, rows, meta = staged_rows + len(rows), [], []
    chunks.append(_staged_batch(fields, rows, meta, staged_rows))
    staged = pa.Table.from_batches(chunks)
    del chunks, rows, meta
    typed_sql, valid_sql = _typed_sql(feed)
    # a view and a cursor closed at once: DuckDB keeps no copy of the feed once the results are out
    with connect(staged=staged) as con:
        con.execute(f"CREATE TEMP VIEW typed AS {typed_sql}")
        parsed = con.sql(valid_sql).to_arrow_table()
        wrong = con.sql("SELECT _batch, _line, _raw FROM typed WHERE _bad").to_arrow_table()
    bad_cols = list(zip(*malformed, strict=True)) if malformed else [(), (), ()]
    bad = pa.table({"_batch": pa.array(bad_cols[0], pa.string()),
                    "_line": pa.array(bad_cols[1], pa.int64()),
                    "_raw": pa.array(bad_cols[2], pa.string())})
    bad = pa.concat_tables([bad, wrong]).sort_by([("_batch", "ascending"), ("_line", "ascending")])
    return parsed, bad


def file_stamp(feed: str, data: str | os.PathLike | None = None) -> tuple[Path, tuple]:
    """The data folder and a stamp of the feed's files: ``(batch id, mtime in ns, size)`` per
    file, in batch order — the cache key of every result read from them, which reads exactly these
    batches (:func:`stamped_batches`), so a file delivered while a grade runs cannot end up in a
    result stored under a key without it. Raises DataError when the feed has no file."""
    root = config.data_dir(data)
    spec = feeds.FEEDS[feed]
    stamp = tuple((b, stat.st_mtime_ns, stat.st_size) for b in feeds.delivered_batches(root, feed)
                  for stat in (Path(spec.path(str(root), b)).stat(),))
    if not stamp:
        raise DataError(f"no raw files for feed {feed!r} under {root / feeds.LANDING_DIR / feed}; "
                        "run `medilake_lab generate` or pass --data DIR")
    return root, stamp


def stamped_batches(stamp: tuple) -> list[str]:
    """The batch ids of a :func:`file_stamp` stamp, in batch order."""
    return [batch for batch, *_ in stamp]


def _kept(rows: pa.Table, erased: frozenset[str]) -> pa.ChunkedArray | None:
    """Mask of the ``rows`` whose ``_raw`` line names no erased patient (raw.erased_line's rule);
    None when nobody is erased."""
    hit = None
    for mark in needles(erased):
        found = pc.match_substring_regex(rows["_raw"], rf"\b{re.escape(mark)}\b")  # raw.names_id's rule
        hit = found if hit is None else pc.or_(hit, found)
    return None if hit is None else pc.invert(hit)


@memoized  # the regular expressions over every line cost more than reading the masks
def _erasure_masks(feed: str, root: Path, stamp: tuple, erased: frozenset[str]) -> tuple:
    """(parsed records, malformed lines) masks of :func:`_kept` for a feed."""
    parsed, bad = _parse(feed, root, stamp)
    return _kept(parsed, erased), _kept(bad, erased)


@in_memory  # the erasure filter over the cached parse: cheap
def _delivered(feed: str, root: Path, stamp: tuple, erased: frozenset[str]) -> tuple[pa.Table, pa.Table]:
    """(parsed records, malformed lines) of a feed without the erased patients' lines."""
    parsed, bad = _parse(feed, root, stamp)
    if not erased:
        return parsed, bad
    keep_parsed, keep_bad = _erasure_masks(feed, root, stamp, erased)
    return parsed.filter(keep_parsed), bad.filter(keep_bad)


def _raw(feed: str, data: str | os.PathLike | None, erased: frozenset[str]) -> tuple[pa.Table, pa.Table]:
    return _delivered(feed, *file_stamp(feed, data), frozenset(erased))


def records(feed: str, data: str | os.PathLike | None = None, erased: frozenset[str] = frozenset()) -> pa.Table:
    """Every parsed record of a feed, in delivery order.

    Returns
    -------
    pa.Table: the contract columns (typed: ``string``, ``double``, ``date32``, naive UTC
    ``timestamp[us]``; encounters also ``admission_source``), plus ``_batch`` (string, "001"…),
    ``_line`` (int64, 0-based line number in its file), ``_raw`` (the line) and ``_reason``
    (string rejection reason, e.g. ``"null patient_id"``; null for a valid record).

    Raises
    ------
    DataError: no file of the feed under ``<data>/landing/<feed>/``.
    """
    return _raw(feed, data, erased)[0]


def cdc_batches_with_valid_records(feed: str, data: str | os.PathLike | None = None,
                                   erased: frozenset[str] = frozenset()) -> int:
    """How many CDC deliveries (batches after the initial load) hold at least one valid record.

    A delivery whose records are all rejected leaves an empty MERGE source, and Delta writes no
    commit for it, so the grader expects one MERGE per delivery counted here.
    """
    rows = records(feed, data, erased)
    valid = {b for b, r in zip(rows["_batch"].to_pylist(), rows["_reason"].to_pylist(), strict=True)
             if r is None}
    return sum(1 for b in valid if b != feeds.BATCHES[0])


def malformed(feed: str, data: str | os.PathLike | None = None, erased: frozenset[str] = frozenset()) -> pa.Table:
    """Malformed lines of a feed: ``_batch`` (string), ``_line`` (int64), ``_raw`` (string)."""
    return _raw(feed, data, erased)[1]


def _latest_sql(key: str, where: str = "_reason IS NULL") -> str:
    """Latest valid version per key: greatest updated_at, ties → first delivered."""
    return (f"SELECT * EXCLUDE (rn) FROM (SELECT *, row_number() OVER (PARTITION BY {key} "
            f"ORDER BY updated_at DESC, _batch, _line) AS rn FROM r WHERE {where}) WHERE rn = 1")


def latest_versions(feed: str, data: str | os.PathLike | None = None, erased: frozenset[str] = frozenset()) -> pa.Table:
    """Per business key, the valid version that wins (deletes included, ``op`` kept).

    Returns
    -------
    pa.Table: one row per key delivered in at least one valid record; columns as
    :func:`records` (``op`` tells whether the key ends deleted).
    """
    return _latest(feed, *file_stamp(feed, data), frozenset(erased))


@memoized
def _latest(feed: str, root: Path, stamp: tuple, erased: frozenset[str]) -> pa.Table:
    con = connect(r=_delivered(feed, root, stamp, erased)[0])
    return con.sql(_latest_sql(feeds.FEEDS[feed].key)).to_arrow_table()


def _derived_sql(feed: str, as_of: date) -> str:
    spec = feeds.FEEDS[feed]
    cols = [c for c, _ in _fields(spec) if c != "op"]
    select = []
    for c in cols:
        if (feed, c) == ("diagnoses", "is_chronic"):
            select.append("CASE is_chronic WHEN 'Y' THEN true WHEN 'N' THEN false END "
                          "AS is_chronic")
        else:
            select.append(c)
    if feed == "encounters":
        select.append("CAST(date_diff('day', CAST(admit_ts AS DATE), CAST(discharge_ts AS DATE))"
                      " AS INTEGER) AS length_of_stay_days")
    elif feed == "lab_results":
        select.append("CASE WHEN ref_high IS NOT NULL AND value > ref_high THEN 'H' "
                      "WHEN ref_low IS NOT NULL AND value < ref_low THEN 'L' "
                      "WHEN ref_low IS NULL OR ref_high IS NULL THEN NULL ELSE 'N' END "
                      "AS abnormal_flag")
    elif feed == "medications":
        select.append(f"(start_date <= DATE '{as_of.isoformat()}' AND (end_date IS NULL OR "
                      f"end_date > DATE '{as_of.isoformat()}')) AS is_active")
    return ", ".join(select)


def expected_clean(feed: str, data: str | os.PathLike | None = None,
                   as_of: date | str | None = None, erased: frozenset[str] = frozenset()) -> pa.Table:
    """The rows ``silver.<feed>_clean`` should hold: one per key whose winning version is not a
    delete.

    Parameters
    ----------
    feed: one of :data:`CLEAN_FEEDS`.
    data: raw-data folder (default :func:`medilake_lab.runtime.config.data_dir`).
    as_of: as-of date for ``is_active`` (default :func:`as_of_date`).
    erased: patient ids whose lines count as never delivered (module docstring).

    Returns
    -------
    pa.Table: the contract columns without ``op`` (``is_chronic`` as boolean), ``updated_at``,
    and the feed's derived column (``length_of_stay_days`` int32 days, ``abnormal_flag``
    string H/L/N, ``is_active`` boolean).
    """
    day = _as_date(as_of) if as_of is not None else as_of_date(data)
    con = connect(w=latest_versions(feed, data, erased))
    return con.sql(f"SELECT {_derived_sql(feed, day)} FROM w WHERE op <> 'D'").to_arrow_table()


def deleted_keys(feed: str, data: str | os.PathLike | None = None, erased: frozenset[str] = frozenset()) -> list[str]:
    """Keys whose winning valid version is an ``op = 'D'`` (sorted)."""
    spec = feeds.FEEDS[feed]
    con = connect(w=latest_versions(feed, data, erased))
    rows = con.execute(f"SELECT {spec.key} FROM w WHERE op = 'D' ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def rejected(feed: str, data: str | os.PathLike | None = None, erased: frozenset[str] = frozenset()) -> pa.Table:
    """Distinct rejected (parsed but invalid) records.

    Returns
    -------
    pa.Table: ``batch`` (string), ``key`` (string, null when the key itself is missing),
    ``reason`` (string), ``raw`` (the line); one row per distinct line of a batch.
    """
    spec = feeds.FEEDS[feed]
    con = connect(r=records(feed, data, erased))
    return con.sql(
        f"SELECT DISTINCT _batch AS batch, {spec.key} AS key, _reason AS reason, _raw AS raw "
        "FROM r WHERE _reason IS NOT NULL ORDER BY batch, key").to_arrow_table()


def delivered_keys(feed: str, data: str | os.PathLike | None = None, erased: frozenset[str] = frozenset()) -> list[str]:
    """Distinct non-null business keys of every parsed record, valid or not (sorted)."""
    spec = feeds.FEEDS[feed]
    con = connect(r=records(feed, data, erased))
    rows = con.execute(f"SELECT DISTINCT {spec.key} FROM r WHERE {spec.key} IS NOT NULL "
                       "ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def cdc_effects(feed: str, data: str | os.PathLike | None = None,
                erased: frozenset[str] = frozenset()) -> dict[str, int]:
    """What the CDC deliveries (batches after the first) change when applied batch by batch.

    Returns
    -------
    dict: ``{"updates": n, "deletes": n}`` — keys present (not deleted) before a CDC batch
    whose latest valid record in that batch is newer and is an update (``op`` I/U) or a delete.
    """
    spec = feeds.FEEDS[feed]
    con = connect(r=records(feed, data, erased))
    out = {"updates": 0, "deletes": 0}
    for batch in feeds.BATCHES[1:]:
        before = _latest_sql(spec.key, f"_reason IS NULL AND _batch < '{batch}'")
        now = _latest_sql(spec.key, f"_reason IS NULL AND _batch = '{batch}'")
        row = one(
            con, f"SELECT count(*) FILTER (WHERE n.op <> 'D'), count(*) FILTER (WHERE n.op = 'D') "
            f"FROM ({now}) n JOIN ({before}) b USING ({spec.key}) "
            "WHERE b.op <> 'D' AND n.updated_at > b.updated_at")
        out["updates"] += int(row[0])
        out["deletes"] += int(row[1])
    return out


_SCD_COLUMNS = ("patient_id",) + TRACKED


def patient_versions(data: str | os.PathLike | None = None, erased: frozenset[str] = frozenset()) -> pa.Table:
    """The versions ``silver.patients_scd`` should hold (rules in the module docstring).

    Returns
    -------
    pa.Table: ``patient_id`` (string), the :data:`TRACKED` attributes (string),
    ``effective_from`` (naive UTC timestamp), ``effective_to`` (timestamp, null for the open
    version), ``is_current`` (bool), ``batch`` (string, the batch that opened the version),
    ``closed_by`` (string, the batch that closed it, or null); ordered by patient_id,
    effective_from.
    """
    return _patients(*file_stamp("patients", data), frozenset(erased))


@memoized
def _patients(root: Path, stamp: tuple, erased: frozenset[str]) -> pa.Table:
    con = connect(r=_delivered("patients", root, stamp, erased)[0])
    cols = ", ".join(_SCD_COLUMNS)
    con.execute(f"CREATE TEMP TABLE scd AS SELECT {cols}, updated_at AS effective_from, "
                "updated_at AS effective_to, true AS is_current, _batch AS batch, "
                "_batch AS closed_by FROM r WHERE false")
    changed = " OR ".join(f"s.{c} IS DISTINCT FROM l.{c}" for c in TRACKED)
    for batch in feeds.BATCHES:
        src = _latest_sql("patient_id", f"_reason IS NULL AND _batch = '{batch}'")
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE chg AS
            WITH last AS (
                SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY patient_id
                                                            ORDER BY effective_from DESC) AS rn
                               FROM scd) WHERE rn = 1)
            SELECT s.*, coalesce(l.is_current, false) AS closes
            FROM ({src}) s LEFT JOIN last l ON s.patient_id = l.patient_id
            WHERE (l.patient_id IS NULL AND s.op <> 'D')
               OR (l.is_current AND s.updated_at > l.effective_from AND (s.op = 'D' OR {changed}))
               OR (NOT l.is_current AND s.updated_at > l.effective_to AND s.op <> 'D')""")
        con.execute(f"UPDATE scd SET effective_to = chg.updated_at, is_current = false, "
                    f"closed_by = '{batch}' FROM chg "
                    "WHERE scd.patient_id = chg.patient_id AND scd.is_current AND chg.closes")
        con.execute(f"INSERT INTO scd SELECT {cols}, updated_at, NULL, true, '{batch}', NULL "
                    "FROM chg WHERE op <> 'D'")
    return con.sql("SELECT * FROM scd ORDER BY patient_id, effective_from").to_arrow_table()


def patient_cdc_effects(data: str | os.PathLike | None = None, erased: frozenset[str] = frozenset()) -> dict[str, int]:
    """SCD2 effects of the CDC deliveries: ``{"closed": n, "opened": n}`` — versions closed
    (changes and deletes) and opened (new patients and new versions) by batches after the first."""
    con = connect(v=patient_versions(data, erased))
    first = feeds.BATCHES[0]
    opened, closed = one(
        con, f"SELECT count(*) FILTER (WHERE batch <> '{first}'), "
        f"count(*) FILTER (WHERE closed_by IS NOT NULL AND closed_by <> '{first}') FROM v")
    return {"closed": int(closed), "opened": int(opened)}


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def as_of_date(data: str | os.PathLike | None = None) -> date:
    """The as-of date of the data: the manifest's ``as_of_date``, else the generator default."""
    manifest = config.data_dir(data) / feeds.LANDING_DIR / feeds.MANIFEST_NAME
    try:
        return _as_date(json.loads(manifest.read_text())["as_of_date"])
    except (OSError, ValueError, KeyError, TypeError):
        from medilake_lab.datagen.timeline import AS_OF_DATE

        return _as_date(AS_OF_DATE)
