"""Lab 05 — Streaming ingestion. Evidence: the streaming queries' checkpoints in the landing
volume (:mod:`medilake_lab.grader.checkpoint`: query ids, committed micro-batches, watermarks,
the files each file source read), the tables' Delta history (STREAMING UPDATE commits and their
query ids, MERGE commits and their ``txn`` versions), and values recomputed from the landing files
(:mod:`medilake_lab.grader.reference.silver`, :mod:`medilake_lab.grader.reference.stream`).

The landing volume (``<warehouse>/volumes``, :func:`medilake_lab.runtime.config.volume_dir`) is
the stream's input and the data folder of every recomputation here; the bundled data folder is
not read.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path, PurePath

import pyarrow as pa

from medilake_lab.contract import feeds
from medilake_lab.contract.labs import get_lab
from medilake_lab.errors import CheckpointError, ColumnsMissing, DataError
from medilake_lab.grader import Context, Outcome, check
from medilake_lab.grader.checkpoint import Checkpoint, read_checkpoint
from medilake_lab.grader.commits import Commit, Kind
from medilake_lab.grader.delta import Table
from medilake_lab.grader.erasure import made_for_erasure
from medilake_lab.grader.reference import raw, stream
from medilake_lab.grader.reference import silver as ref
from medilake_lab.grader.toolkit import Diff, compare, connect, describe, fmt, key_text, n, plural
from medilake_lab.runtime import config

TABLES = get_lab("05").tables
BRONZE = {"encounters": "bronze.encounters_stream", "lab_results": "bronze.lab_results_stream"}
SILVER = "silver.encounters_stream"
GOLD = "gold.abnormal_labs_hourly"
#: Checkpoint folder (``volumes/checkpoints/<query>``) → the table its query writes.
QUERIES = {"bronze_encounters": BRONZE["encounters"], "bronze_lab_results": BRONZE["lab_results"],
           "silver_encounters": SILVER, "gold_abnormal_labs_hourly": GOLD}
#: File-source queries → the feed whose landing folder they read.
FEED_OF = {"bronze_encounters": "encounters", "bronze_lab_results": "lab_results",
           "gold_abnormal_labs_hourly": "lab_results"}
#: The ``spark.databricks.delta.write.txnAppId`` of the silver foreachBatch MERGE.
TXN_APP = "medilake-silver-encounters"
KEY = feeds.FEEDS["encounters"].key
GOLD_COLUMNS = ["window_start", "window_end", "results", "abnormal_results"]
#: The gold aggregate's ``withWatermark("result_ts", "6 hours")`` delay, in ms.
WATERMARK_DELAY_MS = 6 * stream.HOUR_MS
HOUR_MS = stream.HOUR_MS


def _volume(ctx: Context) -> Path:
    return config.volume_dir(ctx.warehouse)


def _checkpoint(ctx: Context, query: str) -> Checkpoint:
    """A query's checkpoint, read once per run; raises CheckpointError naming the damaged file."""
    def build() -> Checkpoint | CheckpointError:
        try:
            return read_checkpoint(config.checkpoint_dir(query, ctx.warehouse))
        except CheckpointError as exc:
            return exc
    found = ctx.memo(("05.checkpoint", query), build)
    if isinstance(found, CheckpointError):
        raise found
    return found


def _batches(count: int, noun: str) -> str:
    """``(3, "micro-batch")`` → ``"3 micro-batches"``."""
    return f"{count:,d} {noun}{'' if count == 1 else 'es'}"


def _when(ms: int) -> str:
    """A watermark (ms since the epoch) as a UTC timestamp."""
    return fmt(datetime.fromtimestamp(ms / 1000, UTC).replace(tzinfo=None))


def _duration(ms: int) -> str:
    """A delay in ms as words: ``21_600_000`` → ``"6 hours"``, ``600_000`` → ``"10 minutes"``."""
    for unit, size in (("hour", HOUR_MS), ("minute", 60_000), ("second", 1000)):
        if ms % size == 0:
            return plural(ms // size, unit)
    return f"{ms:,d} ms"


def _short(query_id: str | None) -> str:
    return (query_id or "?")[:8]


def _creates_empty(commit: Commit) -> bool:
    """Creation of the table without rows (CREATE TABLE, or a CTAS of an empty DataFrame)."""
    return commit.kind is Kind.CREATE or (commit.kind is Kind.CREATE_AS_SELECT
                                          and commit.metric("numOutputRows") == 0)


def _rows_per_file(ctx: Context, table: Table, where: str = "true") -> dict[str, int]:
    """Source file name → rows of the table (``where`` filters them); memoised per run."""
    def build() -> dict[str, int]:
        if "_source_file" not in table.columns:
            raise ColumnsMissing(f"{table.name} lacks column _source_file (the file each row came from)")
        rows = table.query(f"SELECT _source_file AS f, count(*) AS n FROM t WHERE {where} GROUP BY _source_file")
        out: Counter[str] = Counter()
        for f, k in zip(rows["f"].to_pylist(), rows["n"].to_pylist(), strict=True):
            out[PurePath(str(f)).name if f else "<null>"] += int(k)
        return dict(out)
    return ctx.memo(("05.rows_per_file", table.name, where), build)


def _delivered(ctx: Context, feed: str) -> dict[str, raw.BatchFacts]:
    """Batch → facts of the feed's files in the landing volume; DataError says to prepare it."""
    try:
        return raw.delivered(feed, _volume(ctx), ctx.erased_patients)
    except DataError as exc:
        raise DataError(f"no {feed} files in the landing volume {_volume(ctx) / feeds.LANDING_DIR}: run lab 05 "
                        "(prepare_landing copies the bundled batches there)") from exc


# -------------------------------------------------------------------------------------- checks

@check("05.tables_exist")
def tables_exist(ctx: Context) -> Outcome:
    """The four streaming tables are Delta tables."""
    return ctx.tables_exist(TABLES, f"all {len(TABLES)} tables of lab 05 are Delta tables")


@check("05.one_checkpoint_per_query")
def one_checkpoint_per_query(ctx: Context) -> Outcome:
    """Four checkpoint folders with a ``metadata`` file and four distinct query ids; a file-source
    checkpoint lists files of its own feed only (files of two feeds: one checkpoint shared by two
    queries); every STREAMING UPDATE commit of a table carries its checkpoint's query id (a second
    id: the query was restarted from a fresh checkpoint, or wrote through another's)."""
    problems: list[str] = []
    found: dict[str, Checkpoint] = {}
    for query in QUERIES:
        try:
            found[query] = _checkpoint(ctx, query)
        except CheckpointError as exc:
            problems.append(str(exc))
    problems += _shared(found)
    for query, name in QUERIES.items():
        table = ctx.table(name)
        if table is not None and name != SILVER:  # foreachBatch: its MERGE commits carry no query id
            problems += _writers(table, query, found)
    return Outcome.from_problems(problems, f"{len(QUERIES)} checkpoints, one per query, each table written by "
                                 "its checkpoint's query id only")


def _shared(found: dict[str, Checkpoint]) -> list[str]:
    """Checkpoints whose source log lists another feed's files, or that share a query id."""
    problems = []
    for query, cp in found.items():
        listed = sorted({f.folder for f in cp.files})
        if len(listed) > 1:
            problems.append(f"checkpoint {query} lists files of {len(listed)} feeds ({', '.join(listed)}): "
                            "one checkpoint shared by several queries")
        elif query in FEED_OF and listed and listed != [FEED_OF[query]]:
            problems.append(f"checkpoint {query} lists {listed[0]} files, expected {FEED_OF[query]}")
    owners: dict[str, list[str]] = {}
    for query, cp in found.items():
        owners.setdefault(cp.query_id, []).append(query)
    return problems + [f"checkpoints {' and '.join(qs)} hold the same query id {_short(qid)} (a copied checkpoint)"
                       for qid, qs in owners.items() if len(qs) > 1]


def _writers(table: Table, query: str, found: dict[str, Checkpoint]) -> list[str]:
    """The query ids of a table's STREAMING UPDATE commits against its checkpoint's id."""
    ids: dict[str, list[int]] = {}
    for c in table.history():
        if c.is_streaming:
            ids.setdefault(c.query_id or "?", []).append(c.version)
    if len(ids) > 1:
        shown = ", ".join(f"{_short(q)} (v{vs[0]}–v{vs[-1]})" for q, vs in ids.items())
        return [f"{table.name} has STREAMING UPDATE commits of {len(ids)} query ids: {shown} — the query was "
                "restarted from a fresh checkpoint (every file read again) or shares one"]
    own = found.get(query)
    if not ids and own is None and query in FEED_OF:
        return [f"{table.name} has no STREAMING UPDATE commit and no checkpoint of its own: a query given another "
                "file-source query's checkpointLocation fails at start (Spark re-reads that checkpoint's last "
                "files under its own folder: 'Wrong basePath')"]
    if not ids or (own is not None and next(iter(ids)) == own.query_id):
        return []
    qid = next(iter(ids))
    other = [q for q, cp in found.items() if cp.query_id == qid and q != query]
    if other:
        return [f"{table.name} is written by query {_short(qid)}, the id of checkpoint {other[0]}"]
    if own is not None:
        return [f"{table.name} is written by query {_short(qid)}, but checkpoint {query} belongs to query "
                f"{_short(own.query_id)}"]
    return []


@check("05.streaming_writes")
def streaming_writes(ctx: Context) -> Outcome:
    """Bronze and gold: only table creation and STREAMING UPDATE commits (and commits that change
    no rows); silver: MERGE commits of the foreachBatch function. Any other data change (a batch
    WRITE, an overwrite, CTAS with rows, DELETE…) is named with its version. Commits made for a
    recorded erasure request (lab 07's DELETEs and keyed MERGE:
    :func:`medilake_lab.grader.erasure.made_for_erasure`) are lab 07's to judge."""
    problems, streamed = [], 0
    requests = ctx.erasure_requests()
    for name in (*BRONZE.values(), GOLD):
        history = [c for c in ctx.require(name).history() if not made_for_erasure(c, requests)]
        bad = [c.describe() for c in history if not (c.is_streaming or _creates_empty(c) or not c.changes_data)]
        streamed += sum(c.is_streaming for c in history)
        if bad:
            problems.append(f"{name} has batch writes: {', '.join(bad[:3])}")
        elif not any(c.is_streaming for c in history):
            problems.append(f"{name} has no STREAMING UPDATE commit: it was not written by writeStream")
    history = [c for c in ctx.require(SILVER).history() if not made_for_erasure(c, requests)]
    bad = [c.describe() for c in history
           if not (c.kind is Kind.MERGE or _creates_empty(c) or not c.changes_data)]
    merges = sum(c.kind is Kind.MERGE for c in history)
    if bad:
        problems.append(f"{SILVER} has writes other than the foreachBatch MERGE: {', '.join(bad[:3])}")
    elif not merges:
        problems.append(f"{SILVER} has no MERGE commit: its foreachBatch function must MERGE each micro-batch")
    updates = plural(streamed, "STREAMING UPDATE commit")
    return Outcome.from_problems(problems, f"bronze and gold written by their streams ({updates}), silver by the "
                                 f"foreachBatch MERGE ({plural(merges, 'commit')})")


@check("05.files_once")
def files_once(ctx: Context) -> Outcome:
    """The landing volume holds the extra deliveries (batches after 003); every landing file of
    encounters and lab_results is listed exactly once in its bronze checkpoint's source log, and
    bronze holds as many rows from it as it has lines (every line once, malformed ones included)."""
    problems, files, lines = [], 0, 0
    for feed, name in BRONZE.items():
        delivered = _delivered(ctx, feed)
        table = ctx.require(name)
        query = next(q for q, t in QUERIES.items() if t == name)
        if not [b for b in delivered if b not in feeds.BATCHES]:
            problems.append(f"the landing volume holds only the bundled {feed} batches ({', '.join(delivered)}): "
                            "deliver the extra batches (`medilake_lab deliver`) and run the stream again")
        listed = Counter(f.name for f in _checkpoint(ctx, query).files)
        rows = _rows_per_file(ctx, table)
        for facts in delivered.values():
            file = facts.path.name
            files, lines = files + 1, lines + facts.lines
            if listed[file] == 0:
                problems.append(f"{file} is not in checkpoint {query}'s source log: the stream has not read it")
            elif listed[file] > 1:
                problems.append(f"checkpoint {query} lists {file} {listed[file]} times")
            have = rows.get(file, 0)
            if have and have != facts.rows:
                times = f" — read {have // facts.rows}×" if facts.rows and have % facts.rows == 0 else ""
                arrays = f" ({n(facts.rows)} rows: JSON arrays of objects)" if facts.rows != facts.lines else ""
                problems.append(f"{name} has {n(have)} rows from {file}, which has {n(facts.lines)} lines"
                                f"{arrays}{times}")
            elif not have and listed[file] and facts.lines:
                problems.append(f"{name} has no row from {file}, though checkpoint {query} lists it")
        strays = sorted(set(rows) - {f.path.name for f in delivered.values()})
        if strays:
            problems.append(f"{name} holds rows from files not in the landing volume: {', '.join(strays[:3])}")
    return Outcome.from_problems(problems, f"all {files} landing files read once by their checkpoint; bronze holds "
                                 f"each of their {n(lines)} lines once")


@check("05.schema_evolution")
def schema_evolution(ctx: Context) -> Outcome:
    """bronze.lab_results_stream has the drifted column and, per landing file, holds a non-null
    value on as many well-formed rows as the file has well-formed lines carrying it."""
    name, column = BRONZE[feeds.DELIVERY_DRIFT_FEED], feeds.DELIVERY_DRIFT_COLUMN
    table = ctx.require(name)
    _delivered(ctx, feeds.DELIVERY_DRIFT_FEED)
    carried = stream.carried(feeds.DELIVERY_DRIFT_FEED, column, _volume(ctx), ctx.erased_patients)
    total = sum(carried.values())
    if not total:
        return Outcome(False, f"no landing {feeds.DELIVERY_DRIFT_FEED} line carries {column} yet: deliver batch "
                              f"{feeds.DELIVERY_DRIFT_FIRST_BATCH} (`medilake_lab deliver`) and run the stream")
    with_it = [f for f, k in carried.items() if k]
    if column not in table.columns:
        return Outcome(False, f"{name} has no {column} column; {n(total)} delivered lines carry it "
                              f"({', '.join(with_it[:2])})")
    good = "_corrupt_record IS NULL AND " if "_corrupt_record" in table.columns else ""
    have = _rows_per_file(ctx, table, f"{good}{column} IS NOT NULL")
    problems = [f"{file}: {plural(have.get(file, 0), 'row')} hold {column}, {n(k)} of its lines carry it"
                for file, k in carried.items() if have.get(file, 0) != k]
    return Outcome.from_problems(problems, f"{name}.{column} holds the {n(total)} values of the lines that carry "
                                 f"it ({', '.join(with_it)})")


@check("05.exactly_once_silver")
def exactly_once_silver(ctx: Context) -> Outcome:
    """The silver foreachBatch MERGE is idempotent, from the log and the checkpoint:

    1. the table carries a ``txn`` version of app :data:`TXN_APP`;
    2. every MERGE commit advances it (a MERGE without the ids leaves it where it was);
    3. there are no more MERGE commits than committed micro-batches that read input (a micro-batch
       replayed after a crash without the ids merges twice), and the transaction versions the
       MERGEs wrote are exactly those micro-batches' ids (a fixed txnVersion makes Delta skip
       every later micro-batch; a version above the last committed batch is a crash the query was
       not restarted after).

    A micro-batch read input when its source offset differs from the previous one's; each one the
    lab's data gives holds valid encounters, so each leaves one MERGE (a MERGE whose source is
    empty writes no commit in Delta — not a case of the lab's deliveries).
    """
    table = ctx.require(SILVER)
    cp = _checkpoint(ctx, "silver_encounters")
    merges = [c for c in table.history() if c.kind is Kind.MERGE]
    txn = {v: table.at_version(v).transaction_version(TXN_APP) if v >= 0 else None
           for c in merges for v in (c.version - 1, c.version)}
    committed = [b for b in cp.committed if cp.had_input(b)]
    problems = []
    if table.transaction_version(TXN_APP) is None:
        problems.append(f"no commit of {SILVER} carries a transaction version of app '{TXN_APP}': the "
                        "foreachBatch MERGE runs without txnAppId/txnVersion, so a replayed micro-batch writes again")
    else:
        stale = [c for c in merges if txn[c.version] is None or txn[c.version] == txn[c.version - 1]]
        if stale:
            problems.append(f"{plural(len(stale), 'MERGE commit')} ({', '.join(f'v{c.version}' for c in stale[:3])}) "
                            f"carry no new transaction version of app '{TXN_APP}'")
    if len(merges) > len(committed):
        problems.append(f"{len(merges)} MERGE commits for {_batches(len(committed), 'committed micro-batch')} "
                        "of checkpoint silver_encounters: a micro-batch was merged more than once (replayed after "
                        "a crash)")
    written = {t for c in merges if (t := txn[c.version]) is not None and t != txn[c.version - 1]}
    if written:
        first = min(cp.committed, default=0)
        missing = [b for b in committed if b not in written and b >= first]
        beyond = sorted(t for t in written if cp.last_committed is None or t > cp.last_committed)
        if missing:
            problems.append(f"committed micro-batches {', '.join(map(str, missing[:4]))} left no MERGE with their "
                            "batch id as transaction version: txnVersion must be the batch id")
        if beyond:
            problems.append(f"a MERGE wrote transaction version {beyond[0]}, but checkpoint silver_encounters "
                            f"committed micro-batches up to {fmt(cp.last_committed)}: the query crashed after "
                            "the MERGE and was not restarted")
    return Outcome.from_problems(problems, f"{_batches(len(committed), 'committed micro-batch')} merged once each, "
                                 f"the batch id as transaction version of app '{TXN_APP}' (latest "
                                 f"{fmt(table.transaction_version(TXN_APP))})")


def _stale(diff: Diff) -> str:
    """Why rows differ when they hold an older delivered version (else "")."""
    if not diff.other_version:
        return ""
    key, (have, newest) = next(iter(diff.other_version.items()))
    return (f"{plural(len(diff.other_version), 'row')} hold another delivered version, e.g. encounter "
            f"{key_text(key)} updated {fmt(have)}, not the newest ({fmt(newest)}): update only when the source "
            "is newer, and run the stream after the last delivery")


@check("05.silver_values")
def silver_values(ctx: Context) -> Outcome:
    """silver.encounters_stream equals lab 02's clean-encounters rules applied to every landing
    file (:func:`medilake_lab.grader.reference.silver.expected_clean` on the volume), key for key
    and value for value (the derived length of stay is not part of this table)."""
    volume = _volume(ctx)
    batches = _delivered(ctx, "encounters")
    expected = ref.expected_clean("encounters", volume, erased=ctx.erased_patients)
    derived = ref.DERIVED["encounters"][0]
    columns = [c for c in expected.column_names if c != derived]
    observed = ctx.rows(SILVER, columns)
    records = ref.records("encounters", volume, erased=ctx.erased_patients)
    diff = compare(SILVER, observed, expected.select(columns), [KEY], [c for c in columns if c != KEY],
                   versions=records.filter(records["_reason"].is_null()))
    if diff.ok:
        return Outcome(True, f"{n(diff.rows)} encounters hold their newest delivered version, deletes applied "
                             f"(batches {', '.join(batches)})")
    why = _key_reasons(diff, records)
    return Outcome(False, describe(diff, lambda column, bad: _stale(diff)) + "".join(f" — {w}" for w in why))


def _key_reasons(diff: Diff, records: pa.Table) -> list[str]:
    """Why keys are missing from silver or present when they should not be, from the newest
    valid delivered version of each (its batch and op), or from keys only ever rejected."""
    keys = [k[0] for k in (*diff.missing, *diff.extra)]
    if not keys:
        return []
    con = connect(r=records, k=pa.table({KEY: pa.array(keys, pa.string())}))
    newest = {key: (batch, op, ts) for key, batch, op, ts in con.execute(
        f"SELECT {KEY}, _batch, op, updated_at FROM r WHERE _reason IS NULL AND {KEY} IN (SELECT {KEY} FROM k) "
        f"QUALIFY row_number() OVER (PARTITION BY {KEY} ORDER BY updated_at DESC, _batch, _line) = 1").fetchall()}
    last = max(records["_batch"].to_pylist())
    reasons = []
    late = sorted({newest[k[0]][0] for k in diff.missing if k[0] in newest})
    if late and late == [last]:
        reasons.append(f"the missing keys' newest versions arrived in batch {last}: run the silver stream after "
                       "the last delivery")
    deleted = [k[0] for k in diff.extra if k[0] in newest and newest[k[0]][1] == "D"]
    if deleted:
        batch, _, ts = newest[deleted[0]]
        reasons.append(f"{plural(len(deleted), 'unexpected key')} ended deleted, e.g. {deleted[0]} (delete in batch "
                       f"{batch}, updated {fmt(ts)}): apply deletes, and remember them so that an older copy "
                       "arriving later is not inserted again")
    rejected = [k[0] for k in diff.extra if k[0] not in newest]
    if rejected:
        why = con.execute(f"SELECT any_value(_reason) FROM r WHERE {KEY} = ?", [rejected[0]]).fetchone()
        reasons.append(f"{plural(len(rejected), 'unexpected key')} came only in rejected records, e.g. "
                       f"{rejected[0]} ({why[0] if why else 'rejected'}): MERGE valid records only (the contract's "
                       "required fields, as in lab 02)")
    return reasons


@check("05.watermark_aggregate")
def watermark_aggregate(ctx: Context) -> Outcome:
    """Every STREAMING UPDATE of gold is in Append mode, its checkpoint has read every landing
    lab_results file (the aggregate was run after the last delivery), and the table equals the
    independent recomputation (:func:`medilake_lab.grader.reference.stream.abnormal_hourly`) with
    the files per micro-batch and the watermarks of checkpoint gold_abnormal_labs_hourly; the
    watermark trails the latest result_ts read by :data:`WATERMARK_DELAY_MS` at every advance."""
    table = ctx.require(GOLD)
    other = [c for c in table.history() if c.is_streaming and c.output_mode.lower() != "append"]
    if other:
        c = other[0]
        return Outcome(False, f"{GOLD} is written in {c.output_mode} output mode (v{c.version} STREAMING UPDATE "
                              f"outputMode={c.output_mode}, {plural(len(other), 'commit')}): it rewrites every "
                              "window each micro-batch and never drops late data; the lab asks for append")
    cp = _checkpoint(ctx, "gold_abnormal_labs_hourly")
    delivered = _delivered(ctx, "lab_results")
    if cp.last_committed is None:
        return Outcome(False, "checkpoint gold_abnormal_labs_hourly has no committed micro-batch: run the query")
    expected = stream.abnormal_hourly([(f.name, f.batchId) for f in cp.files],
                                      {b: cp.watermark(b) for b in cp.offsets}, cp.last_committed, _volume(ctx),
                                      ctx.erased_patients)
    read = {f.name for f in cp.files}
    unread = [facts.path.name for facts in delivered.values() if facts.path.name not in read]
    if unread:
        return Outcome(False, f"checkpoint gold_abnormal_labs_hourly has not read {', '.join(unread)} "
                              f"({plural(expected.unread, 'valid result')}): run the aggregate again after the last "
                              "delivery, with the same checkpoint")
    other_delays = sorted(expected.delays_ms - {WATERMARK_DELAY_MS})
    if other_delays:
        shown = " and ".join(_duration(ms) for ms in other_delays)
        return Outcome(False, f"the watermark of checkpoint gold_abnormal_labs_hourly trails the latest result_ts by "
                              f"{shown} (latest result_ts read minus the next micro-batch's watermark); the lab asks "
                              "for withWatermark(\"result_ts\", \"6 hours\"): a shorter delay drops more late results, "
                              "a longer one keeps more state and emits later")
    observed = ctx.rows(GOLD, GOLD_COLUMNS)
    diff = compare(GOLD, observed, expected.rows, ["window_start"], GOLD_COLUMNS[1:])
    if diff.ok:
        return Outcome(True, f"{n(diff.rows)} hourly windows match the recomputation under the watermark "
                             f"({plural(expected.dropped, 'late row')} dropped, "
                             f"{plural(expected.open_windows, 'window')} still open at the last watermark, "
                             f"{_when(cp.watermark(cp.last_committed))})")
    return Outcome(False, describe(diff) + f" (recomputed from {plural(len(cp.files), 'file')} in "
                   f"{_batches(len(cp.committed), 'micro-batch')}: {plural(expected.dropped, 'late row')} dropped, "
                   f"{plural(expected.open_windows, 'window')} not yet emitted)")
