"""Independent lab 05 expectations, recomputed from the landing files with DuckDB (no Spark).

Drifted field per file
    :func:`carried` counts, per landing file of a feed, the well-formed lines (not malformed in
    the sense of :func:`medilake_lab.grader.reference.silver.malformed`) whose JSON object holds a
    non-null value of a field (lab 05: ``specimen_type`` of ``lab_results`` from batch 005 on).
Hourly abnormal lab results under a watermark (``gold.abnormal_labs_hourly``)
    Rows: parsed lab_results records (:func:`medilake_lab.grader.reference.silver.records`) with
    ``op <> 'D'`` and ``result_ts``, ``value``, ``ref_low``, ``ref_high`` all non-null; abnormal
    when ``value < ref_low`` or ``value > ref_high``; windows of one hour aligned to the epoch
    (UTC). A file belongs to the micro-batch that read it (the query's source log). In
    micro-batch ``b`` a row is dropped as late when its window's end is at or before the
    watermark of micro-batch ``b - 1`` (nothing is dropped in micro-batch 0); in append mode a
    window is written once, when its end is at or before the watermark of the last micro-batch.
    These are Spark's rules for a windowed aggregation with ``withWatermark`` (late rows are
    filtered with the previous batch's watermark, state is evicted with the current one), checked
    against Spark 4.2's output.
Erasure
    Both take ``erased`` (lab 07's erased patient ids): their lines count as never delivered
    (:func:`medilake_lab.grader.reference.raw.erased_line`), except for the watermark delays, which
    Spark computed from every row it read before the erasure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from medilake_lab.contract import feeds
from medilake_lab.grader.cache import memoized
from medilake_lab.grader.reference import silver
from medilake_lab.grader.reference.raw import erased_line, lines, needles, records_of
from medilake_lab.grader.toolkit import connect, one
from medilake_lab.runtime import config

HOUR_MS = 3_600_000
LAB_FEED = "lab_results"


def carried(feed: str, column: str, data: str | os.PathLike | None = None,
            erased: frozenset[str] = frozenset()) -> dict[str, int]:
    """File name → well-formed lines of that file carrying a non-null ``column``, for every batch
    file of ``feed`` under ``<data>/landing/<feed>/`` (files without such a line map to 0), lines
    of ``erased`` patients left out.

    Raises DataError (from the reference readers) when the feed has no file. Cached per file
    stamp and set of erased ids (:mod:`medilake_lab.grader.cache`).
    """
    root, stamp = silver.file_stamp(feed, data)
    return _carried(feed, column, root, stamp, frozenset(erased))


@memoized
def _carried(feed: str, column: str, root: Path, stamp: tuple, erased: frozenset[str]) -> dict[str, int]:
    spec = feeds.FEEDS[feed]
    malformed = silver.malformed(feed, root)
    bad = set(zip(malformed["_batch"].to_pylist(), malformed["_line"].to_pylist(), strict=True))
    marks = needles(erased)
    out = {}
    for batch in silver.stamped_batches(stamp):
        path = Path(spec.path(str(root), batch))
        count = 0
        for number, line, _ in lines(path):  # a line that is not UTF-8 is in ``bad``
            if (batch, number) in bad or not line.strip() or (marks and erased_line(line, marks)):
                continue
            count += sum(record.get(column) is not None for record in records_of(line) or [])
        out[path.name] = count
    return out


@dataclass(frozen=True)
class HourlyAbnormal:
    """The expected ``gold.abnormal_labs_hourly`` and what the watermark did.

    ``rows``: ``window_start``, ``window_end`` (naive UTC ``timestamp[us]``), ``results``,
    ``abnormal_results`` (int64), one row per emitted window, by ``window_start``;
    ``dropped``: valid rows dropped as late; ``open_windows``: windows not emitted yet (their end
    is after the last watermark); ``unread``: valid rows in files the query has not read;
    ``delays_ms``: the watermark delay each advance of the watermark shows, in ms (the latest
    valid ``result_ts`` read up to micro-batch ``m`` minus micro-batch ``m + 1``'s watermark), as
    a set (``{21_600_000}`` for ``withWatermark(..., "6 hours")``; empty before any advance).
    """

    rows: pa.Table
    dropped: int
    open_windows: int
    unread: int
    delays_ms: frozenset[int] = frozenset()


def abnormal_hourly(read: list[tuple[str, int]], watermarks: dict[int, int], last_batch: int,
                    data: str | os.PathLike | None = None, erased: frozenset[str] = frozenset()) -> HourlyAbnormal:
    """Recompute the hourly abnormal-results aggregate under the watermark rules (module docstring).

    Parameters
    ----------
    read: ``(file name, micro-batch id)`` per file the query read (its source log), e.g.
        ``[("lab_results_001.json.gz", 0), …]``; a file listed twice counts twice.
    watermarks: micro-batch id → its watermark (``batchWatermarkMs``, ms since the epoch).
    last_batch: the last committed micro-batch id (its watermark decides what was emitted).
    data: the data folder holding the files (lab 05: the landing volume).
    erased: patient ids whose rows count as never delivered (not for ``delays_ms``: module docstring).
    """
    root = config.data_dir(data)
    spec = feeds.FEEDS[LAB_FEED]
    batch_of = {Path(spec.path(str(root), b)).name: b for b in feeds.delivered_batches(root, LAB_FEED)}
    listed = [(batch_of[name], micro) for name, micro in read if name in batch_of]
    reads = pa.table({"_batch": pa.array([b for b, _ in listed], pa.string()),
                      "micro": pa.array([m for _, m in listed], pa.int64()),
                      "late_ms": pa.array([watermarks.get(m - 1, 0) if m > 0 else 0 for _, m in listed],
                                          pa.int64())})
    con = connect(r=silver.records(LAB_FEED, root, erased), seen=silver.records(LAB_FEED, root), reads=reads)
    valid = ("op <> 'D' AND result_ts IS NOT NULL AND value IS NOT NULL AND ref_low IS NOT NULL "
             "AND ref_high IS NOT NULL")
    con.execute(f"""
        CREATE TEMP TABLE rows_ AS
        SELECT r._batch, date_trunc('hour', r.result_ts) AS window_start,
               date_trunc('hour', r.result_ts) + INTERVAL 1 HOUR AS window_end,
               epoch_ms(date_trunc('hour', r.result_ts)) + {HOUR_MS} AS end_ms,
               epoch_ms(r.result_ts) AS event_ms,
               (r.value < r.ref_low OR r.value > r.ref_high) AS abnormal
        FROM r WHERE {valid}""")
    until = watermarks.get(last_batch, 0)
    con.execute("CREATE TEMP TABLE kept AS SELECT rows_.* FROM rows_ JOIN reads USING (_batch) "
                "WHERE rows_.end_ms > reads.late_ms")
    rows = con.sql(f"SELECT window_start, window_end, count(*)::BIGINT AS results, "
                   f"count(*) FILTER (WHERE abnormal)::BIGINT AS abnormal_results FROM kept "
                   f"WHERE end_ms <= {until} GROUP BY ALL ORDER BY window_start").to_arrow_table()
    dropped, open_windows, unread = one(
        con, f"SELECT (SELECT count(*) FROM rows_ JOIN reads USING (_batch) WHERE end_ms <= late_ms), "
        f"(SELECT count(DISTINCT window_start) FROM kept WHERE end_ms > {until}), "
        "(SELECT count(*) FROM rows_ WHERE _batch NOT IN (SELECT _batch FROM reads))")
    latest = con.execute(f"SELECT micro, max(max(epoch_ms(result_ts))) OVER (ORDER BY micro) FROM seen JOIN reads "
                         f"USING (_batch) WHERE {valid} GROUP BY micro ORDER BY micro").fetchall()
    delays = frozenset(int(seen) - watermarks[m + 1] for m, seen in latest
                       if watermarks.get(m + 1, 0) > watermarks.get(m, 0))
    return HourlyAbnormal(rows, int(dropped), int(open_windows), int(unread), delays)
