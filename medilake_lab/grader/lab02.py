"""Lab 02 — silver. Evidence: Delta history (MERGE vs overwrite, merge metrics), the silver rows
compared with expectations recomputed from the raw feeds (:mod:`medilake_lab.grader.reference.silver`;
the lines of patients erased by lab 07 count as never delivered: :attr:`Context.erased_patients`),
and the SCD Type 2 invariants of ``silver.patients_scd``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime

import pyarrow as pa

from medilake_lab.contract import codes, feeds
from medilake_lab.errors import ColumnsMissing
from medilake_lab.grader import Context, Outcome, check
from medilake_lab.grader.commits import Commit, Kind
from medilake_lab.grader.delta import Table
from medilake_lab.grader.reference import silver as ref
from medilake_lab.grader.toolkit import compare, connect, days, fmt, n, one, plural, version_cause

CLEAN = {feed: f"silver.{feed}_clean" for feed in ref.CLEAN_FEEDS}
SCD = "silver.patients_scd"
QUARANTINE = "silver.quarantine"
TABLES = (*CLEAN.values(), SCD, QUARANTINE)
QUARANTINE_COLUMNS = ("feed", "key", "reason", "batch", "raw")
SCD_COLUMNS = {"effective_from": "timestamp", "effective_to": "timestamp", "is_current": "boolean"}
#: Delta type names per contract type (silver keeps the bronze types).
TYPE_NAMES = {feeds.STRING: ("string",), feeds.TIMESTAMP: ("timestamp", "timestamp_ntz"),
              feeds.DATE: ("date",), feeds.DOUBLE: ("double",), feeds.INT: ("integer", "long"),
              "int": ("integer", "long", "short"), "string": ("string",),
              "boolean": ("boolean",), "timestamp": ("timestamp", "timestamp_ntz")}
EXAMPLES = 3


def _clean_tables(ctx: Context) -> dict[str, Table]:
    return {feed: t for feed, name in CLEAN.items() if (t := ctx.table(name)) is not None}


def _silver_columns(feed: str) -> dict[str, tuple[str, ...]]:
    """Column → accepted Delta type names of ``silver.<feed>_clean`` (or patients_scd)."""
    spec = feeds.FEEDS[feed]
    cols = {name: TYPE_NAMES[t] for name, t in spec.fields if name != "op"}
    if feed == feeds.DRIFT_FEED:
        cols[feeds.DRIFT_COLUMN] = TYPE_NAMES[feeds.STRING]
    for (recast_feed, column), type_name in ref.RECAST.items():
        if recast_feed == feed:
            cols[column] = TYPE_NAMES[type_name]
    if feed in ref.DERIVED:
        column, type_name = ref.DERIVED[feed]
        cols[column] = TYPE_NAMES[type_name]
    if feed == "patients":
        cols.update({c: TYPE_NAMES[t] for c, t in SCD_COLUMNS.items()})
    return cols


def _merges(table: Table, needed: int = len(feeds.BATCHES) - 1) -> tuple[list[Commit], list[Commit]]:
    """(MERGE commits, content-replacing commits after the first commit and before the MERGE of
    the last CDC delivery). A table created empty loads its first batch with a MERGE too, so the
    last CDC delivery's MERGE is one further. Later commits (lab 03 re-partitions silver tables)
    are not judged."""
    history = table.history()
    merges = [c for c in history if c.kind is Kind.MERGE]
    if not history or needed == 0 or len(merges) < needed:
        return merges, []
    loads = needed + (1 if history[0].kind is Kind.CREATE else 0)
    first, last = history[0].version, merges[min(loads, len(merges)) - 1].version
    return merges, [c for c in history if first < c.version < last and c.rewrites_data]


def _metric(commits: list[Commit], name: str) -> int:
    return sum(c.metric(name) for c in commits)


# -------------------------------------------------------------------------------------- checks

@check("02.tables_exist")
def tables_exist(ctx: Context) -> Outcome:
    """The seven silver tables are Delta tables."""
    return ctx.tables_exist(TABLES, f"all {len(TABLES)} silver tables are Delta tables")


@check("02.silver_columns")
def silver_columns(ctx: Context) -> Outcome:
    """Contract columns (without op), derived columns and SCD2 columns with their types."""
    problems = []
    wanted = {CLEAN[f]: _silver_columns(f) for f in CLEAN}
    wanted[SCD] = _silver_columns("patients")
    wanted[QUARANTINE] = {c: ("string",) for c in QUARANTINE_COLUMNS}
    for name, columns in wanted.items():
        table = ctx.require(name)
        types = table.column_types()
        absent = [c for c in columns if c not in types]
        if absent:
            problems.append(f"{name} lacks {', '.join(absent)}")
        problems += [f"{name}.{c} is {types[c]}, expected {accepted[0]}"
                     for c, accepted in columns.items() if c in types and types[c] not in accepted]
    return Outcome.from_problems(problems, "contract columns, derived columns and updated_at with their types")


def _cdc_merges_expected(feed: str, ctx: Context) -> int:
    """CDC deliveries that must leave a MERGE commit: those with a valid record (an empty MERGE
    source writes no commit); for patients, those that open or close a version (the staged SCD2
    source is empty otherwise)."""
    if feed != "patients":
        return ref.cdc_batches_with_valid_records(feed, ctx.data, erased=ctx.erased_patients)
    versions = ref.patient_versions(ctx.data, erased=ctx.erased_patients)
    changed = set(versions["batch"].to_pylist()) | set(versions["closed_by"].to_pylist())
    return len({b for b in changed if b is not None and b != feeds.BATCHES[0]})


@check("02.merge_history")
def merge_history(ctx: Context) -> Outcome:
    """DESCRIBE HISTORY: a MERGE per CDC delivery and no overwrite after the initial load."""
    problems = []
    for feed, name in (*CLEAN.items(), ("patients", SCD)):
        table = ctx.require(name)
        needed = _cdc_merges_expected(feed, ctx)
        merges, rewrites = _merges(table, needed)
        if len(merges) < needed:
            shown = ", ".join(c.describe() for c in table.history()[:4])
            problems.append(f"{name} has {len(merges)} MERGE commit(s) for {needed} CDC "
                            f"deliveries (history: {shown})")
        elif rewrites:
            problems.append(f"{name} was rewritten after its initial load: "
                            f"{', '.join(c.describe() for c in rewrites[:2])}")
    return Outcome.from_problems(problems, "every silver table applies its CDC deliveries with MERGE, "
                                 "no overwrite after the initial load")


@check("02.merge_metrics")
def merge_metrics(ctx: Context) -> Outcome:
    """MERGE operationMetrics show updates and deletes wherever the deliveries hold some."""
    problems, seen = [], []
    for feed, name in CLEAN.items():
        merges, _ = _merges(ctx.require(name))
        expected = ref.cdc_effects(feed, ctx.data, erased=ctx.erased_patients)
        updated = _metric(merges, "numTargetRowsUpdated")
        deleted = _metric(merges, "numTargetRowsDeleted")
        seen.append(f"{feed} {updated}/{deleted}")
        if expected["updates"] and not updated:
            problems.append(f"{name}: MERGE metrics show 0 rows updated; the CDC deliveries "
                            f"carry {plural(expected['updates'], 'newer version')} of "
                            "existing keys")
        if expected["deletes"] and not deleted:
            problems.append(f"{name}: MERGE metrics show 0 rows deleted; the CDC deliveries "
                            f"carry {plural(expected['deletes'], 'delete')} of existing keys")
    merges, _ = _merges(ctx.require(SCD))
    expected = ref.patient_cdc_effects(ctx.data, erased=ctx.erased_patients)
    closed = _metric(merges, "numTargetRowsUpdated")
    if expected["closed"] and not closed:
        problems.append(f"{SCD}: MERGE metrics show 0 rows updated; "
                        f"{plural(expected['closed'], 'current version')} should have been "
                        "closed")
    seen.append(f"patients_scd {closed} closed")
    return Outcome.from_problems(problems, "MERGE metrics (updated/deleted): " + ", ".join(seen))


@check("02.unique_keys")
def unique_keys(ctx: Context) -> Outcome:
    """One row per business key (per patient version in patients_scd)."""
    problems, total = [], 0
    for feed, table in _clean_tables(ctx).items():
        key = feeds.FEEDS[feed].key
        data = ctx.rows(table.name, [key])
        total += data.num_rows
        dup = connect(d=data).execute(
            f"SELECT {key}, count(*) AS n FROM d GROUP BY {key} HAVING count(*) > 1 "
            "ORDER BY n DESC, 1").fetchall()
        if dup:
            eg = ", ".join(f"{k} ({n} rows)" for k, n in dup[:EXAMPLES])
            problems.append(f"{table.name} has {n(len(dup))} keys on more than one row, e.g. {eg}")
    dup = connect(d=ctx.rows(SCD, ["patient_id", "effective_from"])).execute(
        "SELECT patient_id, effective_from, count(*) FROM d GROUP BY 1, 2 HAVING count(*) > 1 "
        "ORDER BY 1").fetchall()
    if dup:
        eg = ", ".join(f"{p} effective {fmt(t)} ({n} rows)" for p, t, n in dup[:EXAMPLES])
        problems.append(f"{SCD} has {n(len(dup))} duplicated versions, e.g. {eg}")
    return Outcome.from_problems(problems, f"one row per business key ({n(total)} rows in 5 clean tables)")


@check("02.quarantine")
def quarantine(ctx: Context) -> Outcome:
    """Every malformed line and rejected record is in silver.quarantine once; none is in silver."""
    q = ctx.rows(QUARANTINE, QUARANTINE_COLUMNS)
    problems, rejected_total, malformed_total = _quarantine_twice(q), 0, 0
    for feed in feeds.FEED_NAMES:
        rejected = ref.rejected(feed, ctx.data, erased=ctx.erased_patients)
        bad_lines = ref.malformed(feed, ctx.data, erased=ctx.erased_patients)
        rejected_total += rejected.num_rows
        con = connect(q=q, r=rejected, m=bad_lines)
        lost_lines = one(
            con, f"SELECT count(*) FROM (SELECT DISTINCT _batch, _raw FROM m) m "
            f"WHERE NOT EXISTS (SELECT 1 FROM q WHERE q.feed = '{feed}' AND q.batch = m._batch "
            "AND q.raw = m._raw)")[0]
        malformed_total += one(con, "SELECT count(DISTINCT (_batch, _raw)) FROM m")[0]
        if lost_lines:
            problems.append(f"{lost_lines} malformed {feed} line(s) are not in {QUARANTINE} "
                            "(raw = the corrupt line)")
        lost = con.execute(
            f"SELECT r.batch, r.key, r.reason FROM r WHERE r.key IS NOT NULL AND NOT EXISTS ("
            f"SELECT 1 FROM q WHERE q.feed = '{feed}' AND q.batch = r.batch AND q.key = r.key) "
            "ORDER BY 1, 2").fetchall()
        if lost:
            eg = ", ".join(f"{k} (batch {b}: {why})" for b, k, why in lost[:2])
            problems.append(f"{QUARANTINE} lacks {len(lost)} rejected {feed} record(s), e.g. {eg}")
        keyless = one(
            con, f"SELECT (SELECT count(*) FROM r WHERE key IS NULL), (SELECT count(*) FROM q "
            f"WHERE q.feed = '{feed}' AND q.key IS NULL AND q.raw NOT IN (SELECT _raw FROM m))")
        if keyless[1] < keyless[0]:
            problems.append(f"{QUARANTINE} holds {keyless[1]} {feed} record(s) without a key; "
                            f"{keyless[0]} were delivered with a null {feeds.FEEDS[feed].key}")
    problems += _invalid_in_silver(ctx)
    return Outcome.from_problems(problems, f"{n(rejected_total)} rejected records and {n(malformed_total)} "
                                 "malformed lines counted in silver.quarantine once each, none left in "
                                 "silver")


#: The identity of one reject in silver.quarantine (see :func:`_quarantine_twice`).
_REJECT = "feed, batch, raw, CASE WHEN raw IS NULL THEN key END, CASE WHEN raw IS NULL THEN reason END"


def _quarantine_twice(q: pa.Table) -> list[str]:
    """Findings on rejects held by more than one row of silver.quarantine (empty list if none).

    One reject is one delivered line that silver refuses, identified as the lab's insert-only MERGE
    matches it: ``(feed, batch, raw)`` — raw being the corrupt line or the record — so an exact
    re-delivery inside one batch is the same reject, and the same line delivered again in a later
    batch is another one. A row without raw is identified by its key and reason instead."""
    con = connect(q=q)
    con.execute(f"CREATE TEMP VIEW twice AS SELECT feed, batch, any_value(key) AS key, any_value(reason) AS "
                f"reason, count(*) AS n, count(key) AS keys FROM q GROUP BY {_REJECT} HAVING count(*) > 1")
    extra, rejects, keyless = one(con, "SELECT coalesce(sum(n - 1), 0), count(*), count(*) FILTER (WHERE keys = 0) "
                                       "FROM twice")
    if not rejects:
        return []
    shown = con.execute(f"SELECT feed, batch, key, reason, n FROM twice ORDER BY n DESC, feed, batch, key NULLS "
                        f"FIRST LIMIT {EXAMPLES - 1}").fetchall()
    eg = ", ".join(f"{feed} {key or 'record without a key'} of batch {batch} ({why}, {rows} rows)"
                   for feed, batch, key, why, rows in shown)
    why = ("; all of them lack a key: a MERGE on key never matches a null key (NULL = NULL is not true), so "
           "every re-run inserts them again — match on feed, batch and raw" if keyless == rejects else
           "; an append (or a MERGE source holding twins) inserts a reject again on every re-run — use an "
           "insert-only MERGE on feed, batch and raw with a distinct() source")
    return [f"{QUARANTINE} holds {n(extra)} duplicate row(s): {n(rejects)} rejects (same feed, batch and raw) "
            f"are in it more than once, e.g. {eg}{why}"]


def _invalid_in_silver(ctx: Context) -> list[str]:
    """Rows of the silver tables that break a required-field or code rule."""
    problems = []
    tables = {feed: t for feed, t in _clean_tables(ctx).items()}
    if (scd := ctx.table(SCD)) is not None:
        tables["patients"] = scd
    for feed, table in tables.items():
        spec = feeds.FEEDS[feed]
        required = [c for c in spec.required if c != "op"]
        columns = list(dict.fromkeys([spec.key, *required]
                                     + ([spec.code_column] if spec.code_column else [])))
        con = connect(d=ctx.rows(table.name, columns))
        nulls = " OR ".join(f"{c} IS NULL" for c in required)
        first_null = "coalesce(" + ", ".join(
            f"CASE WHEN {c} IS NULL THEN 'null {c}' END" for c in required) + ")"
        bad = con.execute(f"SELECT {spec.key}, {first_null} FROM d WHERE {nulls} ORDER BY 1 "
                          f"LIMIT {EXAMPLES}").fetchall()
        n_bad = one(con, f"SELECT count(*) FROM d WHERE {nulls}")[0]
        if spec.code_column and spec.code_system:
            used = con.execute(f"SELECT DISTINCT {spec.code_column} FROM d "
                               f"WHERE {spec.code_column} IS NOT NULL").fetchall()
            invalid = [c for (c,) in used if not codes.is_valid_code(spec.code_system, c)]
            if invalid:
                con.register("invalid", pa.table({"code": invalid}))
                rows = con.execute(f"SELECT {spec.key}, {spec.code_column} FROM d WHERE "
                                   f"{spec.code_column} IN (SELECT code FROM invalid) ORDER BY 1"
                                   ).fetchall()
                n_bad += len(rows)
                bad += [(k, f"invalid {spec.code_system} code '{c}'") for k, c in rows[:3]]
        if n_bad:
            eg = ", ".join(f"{k} ({why})" for k, why in bad[:2])
            problems.append(f"{table.name} holds {n(n_bad)} row(s) that belong in quarantine, "
                            f"e.g. {eg}")
    return problems


@check("02.nothing_lost")
def nothing_lost(ctx: Context) -> Outcome:
    """Every key delivered valid and not deleted is in silver."""
    problems, kept, deleted, rejected_only = [], 0, 0, 0
    for feed, table in _clean_tables(ctx).items():
        key = feeds.FEEDS[feed].key
        expected = ref.expected_clean(feed, ctx.data, erased=ctx.erased_patients).select([key])
        con = connect(s=ctx.rows(table.name, [key]), e=expected)
        missing = con.execute(f"SELECT {key} FROM e WHERE {key} NOT IN (SELECT {key} FROM s "
                              f"WHERE {key} IS NOT NULL) ORDER BY 1").fetchall()
        gone = len(ref.deleted_keys(feed, ctx.data, erased=ctx.erased_patients))
        kept += expected.num_rows
        deleted += gone
        rejected_only += len(ref.delivered_keys(feed, ctx.data, erased=ctx.erased_patients)) - expected.num_rows - gone
        if missing:
            eg = ", ".join(k for (k,) in missing[:EXAMPLES])
            problems.append(f"{table.name} lacks {n(len(missing))} of {n(expected.num_rows)} "
                            f"keys that were delivered valid and not deleted, e.g. {eg}")
    expected = ref.patient_versions(ctx.data, erased=ctx.erased_patients).select(["patient_id"])
    missing = connect(s=ctx.rows(SCD, ["patient_id"]), e=expected).execute(
        "SELECT DISTINCT patient_id FROM e WHERE patient_id NOT IN (SELECT patient_id FROM s "
        "WHERE patient_id IS NOT NULL) ORDER BY 1").fetchall()
    if missing:
        eg = ", ".join(k for (k,) in missing[:EXAMPLES])
        problems.append(f"{SCD} lacks {n(len(missing))} delivered patients, e.g. {eg}")
    return Outcome.from_problems(problems, f"every delivered key accounted for: {n(kept)} in silver, "
                                 f"{n(deleted)} deleted by the source, {n(rejected_only)} only "
                                 "rejected (quarantined)")


@check("02.deletes_applied")
def deletes_applied(ctx: Context) -> Outcome:
    """No key whose newest valid version is a delete remains in a clean table."""
    problems, total = [], 0
    for feed, table in _clean_tables(ctx).items():
        key = feeds.FEEDS[feed].key
        gone = ref.latest_versions(feed, ctx.data, erased=ctx.erased_patients)
        con = connect(s=ctx.rows(table.name, [key]), g=gone)
        kept = con.execute(f"SELECT g.{key}, g.updated_at FROM g WHERE g.op = 'D' AND g.{key} "
                           f"IN (SELECT {key} FROM s) ORDER BY 1").fetchall()
        total += one(con, "SELECT count(*) FROM g WHERE op = 'D'")[0]
        if kept:
            eg = ", ".join(f"{k} (deleted {fmt(t)})" for k, t in kept[:2])
            problems.append(f"{table.name} still holds {n(len(kept))} keys the source "
                            f"deleted, e.g. {eg}")
    return Outcome.from_problems(problems, f"all {n(total)} source deletes applied")


@check("02.latest_wins")
def latest_wins(ctx: Context) -> Outcome:
    """Each key holds its newest delivered version, value for value."""
    problems, compared = [], 0
    for feed, table in _clean_tables(ctx).items():
        spec = feeds.FEEDS[feed]
        key = spec.key
        expected = ref.expected_clean(feed, ctx.data, erased=ctx.erased_patients)
        derived = ref.DERIVED.get(feed, ("",))[0]
        columns = [c for c in expected.column_names if c in table.columns and c != derived]
        if "updated_at" not in columns:
            raise ColumnsMissing(f"{table.name} lacks column(s) updated_at")
        con = connect(s=ctx.rows(table.name, columns), e=expected.select(columns))
        compared += one(con, f"SELECT count(*) FROM s JOIN e USING ({key})")[0]
        older = con.execute(
            f"SELECT {key}, s.updated_at, e.updated_at FROM s JOIN e USING ({key}) "
            "WHERE s.updated_at IS DISTINCT FROM e.updated_at ORDER BY 1").fetchall()
        if older:
            k, have, want = older[0]
            problems.append(f"{table.name} holds another version than the newest delivered "
                            f"for {n(len(older))} keys, e.g. {k}: updated_at {fmt(have)}, "
                            f"newest {fmt(want)}")
            continue
        others = [c for c in columns if c not in (key, "updated_at")]
        differs = " OR ".join(f"s.{c} IS DISTINCT FROM e.{c}" for c in others) or "false"
        rows = con.execute(f"SELECT {key}, " + ", ".join(
            f"s.{c} IS DISTINCT FROM e.{c}" for c in others) +
            f" FROM s JOIN e USING ({key}) WHERE {differs} ORDER BY 1").fetchall()
        if rows:
            column = others[list(rows[0][1:]).index(True)]
            problems.append(f"{table.name} differs from the newest delivered version for "
                            f"{n(len(rows))} keys, e.g. {rows[0][0]}.{column}")
    return Outcome.from_problems(problems, f"{n(compared)} keys hold their newest delivered version: late and "
                                 "out-of-order records did not win")


#: What one row of each table with a derived column is, in findings.
RECORD = {"encounters": "encounter", "lab_results": "lab result", "medications": "medication"}


def _derived_outcome(ctx: Context, feed: str, describe: Callable[[list[dict], int], str]) -> Outcome:
    """Compare the derived column of one clean table with the recomputation.

    ``describe(rows, total)`` words the rows whose derived value breaks the rule (expected values
    plus ``_found``, the observed one). Rows that hold another delivered version of their record
    are named as such instead: their value follows from the wrong version, so the dedup is at
    fault, not the formula."""
    name, key, column = CLEAN[feed], feeds.FEEDS[feed].key, ref.DERIVED[feed][0]
    expected = ref.expected_clean(feed, ctx.data, erased=ctx.erased_patients)
    shared = [c for c in expected.column_names if c in ctx.require(name).columns]
    observed = ctx.rows(name, list(dict.fromkeys([key, column, *shared])))
    delivered = ref.records(feed, ctx.data, erased=ctx.erased_patients)
    diff = compare(name, observed, expected, [key], [column],
                   versions=delivered.filter(delivered["_reason"].is_null()))
    total = diff.rows - len(diff.missing)
    if not diff.differing(column):
        return Outcome(True, f"{column} matches the recomputation for all {n(total)} rows")
    own = [{**diff.expected[k], "_found": o} for k, o, _ in diff.differing(column, same_version=True)]
    cause = version_cause(diff, RECORD[feed], "02.latest_wins")
    if not own:
        return Outcome(False, f"{n(len(diff.differing(column)))} of {n(total)} {RECORD[feed]} rows "
                              f"have another {column}: {cause}")
    return Outcome(False, describe(own, total) + (f"; besides, {cause}" if cause else ""))


@check("02.length_of_stay")
def length_of_stay(ctx: Context) -> Outcome:
    """length_of_stay_days equals the recomputation (days between the UTC dates)."""

    def describe(rows: list[dict], total: int) -> str:
        r = rows[0]
        return (f"{n(len(rows))} of {n(total)} encounter rows have another length_of_stay_days, "
                f"e.g. {r['encounter_id']}: {fmt(r['_found'])}, expected "
                f"{fmt(r['length_of_stay_days'])} (admit {fmt(r['admit_ts'])}, discharge "
                f"{fmt(r['discharge_ts'])}; calendar days between the dates, null while "
                "not discharged)")
    return _derived_outcome(ctx, "encounters", describe)


@check("02.abnormal_flag")
def abnormal_flag(ctx: Context) -> Outcome:
    """abnormal_flag equals the recomputation from value, ref_low and ref_high."""

    def describe(rows: list[dict], total: int) -> str:
        r = rows[0]
        return (f"{n(len(rows))} of {n(total)} lab result rows have another abnormal_flag, e.g. "
                f"{r['lab_result_id']}: {fmt(r['_found'])}, expected "
                f"{fmt(r['abnormal_flag'])} (value {fmt(r['value'])}, range "
                f"{fmt(r['ref_low'])}–{fmt(r['ref_high'])})")
    return _derived_outcome(ctx, "lab_results", describe)


@check("02.active_medications")
def active_medications(ctx: Context) -> Outcome:
    """is_active equals the recomputation as of the data's as-of date."""
    as_of = ref.as_of_date(ctx.data)

    def describe(rows: list[dict], total: int) -> str:
        ended = [r for r in rows if r["_found"] and r["end_date"] is not None
                 and _day(r["end_date"]) <= as_of]
        early = [r for r in rows if r["_found"] and _day(r["start_date"]) > as_of]
        if ended:
            r = ended[0]
            return (f"{n(len(ended))} medications ended on or before {as_of} are marked "
                    f"active, e.g. {r['medication_id']} (end_date {fmt(r['end_date'])}) — "
                    f"{n(len(rows))} of {n(total)} differ")
        if early:
            r = early[0]
            return (f"{n(len(early))} medications that start after {as_of} are marked "
                    f"active, e.g. {r['medication_id']} (start_date {fmt(r['start_date'])})")
        r = rows[0]
        return (f"{n(len(rows))} of {n(total)} medications have another is_active as of "
                f"{as_of}, e.g. {r['medication_id']}: {fmt(r['_found'])}, expected "
                f"{fmt(r['is_active'])} (start {fmt(r['start_date'])}, end "
                f"{fmt(r['end_date'])})")
    return _derived_outcome(ctx, "medications", describe)


def _day(value: date) -> date:
    """A date, or the date of a timestamp."""
    return value.date() if isinstance(value, datetime) else value


# ------------------------------------------------------------------------------------ SCD Type 2

def _versions(ctx: Context) -> dict[str, list[dict]]:
    """patient_id → versions of silver.patients_scd ordered by effective_from."""
    data = ctx.rows(SCD, ["patient_id", *ref.TRACKED, *SCD_COLUMNS])
    out: dict[str, list[dict]] = defaultdict(list)
    for row in data.sort_by([("patient_id", "ascending"),
                             ("effective_from", "ascending")]).to_pylist():
        out[row["patient_id"]].append(row)
    return out


def _expected_versions(ctx: Context) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for row in ref.patient_versions(ctx.data, erased=ctx.erased_patients).to_pylist():
        out[row["patient_id"]].append(row)
    return out


def _examples(found: list[str], what: str) -> list[str]:
    if not found:
        return []
    more = f" (and {len(found) - 2} more {what})" if len(found) > 2 else ""
    return ["; ".join(found[:2]) + more]


@check("02.scd2_one_current")
def scd2_one_current(ctx: Context) -> Outcome:
    """Exactly one current row per patient, none for patients the source deleted."""
    versions = _versions(ctx)
    expected = _expected_versions(ctx)
    many, none, deleted = [], [], []
    for pid, rows in versions.items():
        current = [r for r in rows if r["is_current"]]
        open_expected = any(r["is_current"] for r in expected.get(pid, []))
        if len(current) > 1:
            many.append(f"patient {pid} has {len(current)} current rows (effective "
                        f"{days([r['effective_from'] for r in current])})")
        elif not current and open_expected:
            none.append(f"patient {pid} has no current row (versions effective "
                        f"{days([r['effective_from'] for r in rows])})")
        elif current and pid in expected and not open_expected:
            deleted.append(f"patient {pid} was deleted by the source "
                           f"({fmt(expected[pid][-1]['effective_to'])}) but has a current row")
    problems = _examples(many, "patients") + _examples(none, "patients") \
        + _examples(deleted, "patients")
    n_current = sum(1 for rows in expected.values() if rows[-1]["is_current"])
    return Outcome.from_problems(problems, f"exactly one current row for each of {n(n_current)} patients, "
                                 "none for deleted ones")


@check("02.scd2_intervals")
def scd2_intervals(ctx: Context) -> Outcome:
    """Versions tile time: each effective_to is the next effective_from; null iff current."""
    found = []
    for pid, rows in _versions(ctx).items():
        for i, row in enumerate(rows):
            start, end = row["effective_from"], row["effective_to"]
            nxt = rows[i + 1] if i + 1 < len(rows) else None
            if start is None:
                found.append(f"patient {pid} has a version without effective_from")
                break
            if row["is_current"] != (end is None):
                found.append(f"patient {pid}: version effective {fmt(start)} has is_current="
                             f"{str(row['is_current']).lower()} but effective_to {fmt(end)}")
                break
            if end is not None and end <= start:
                found.append(f"patient {pid}: version effective {fmt(start)} ends {fmt(end)}, "
                             "not after it starts")
                break
            if nxt is None:
                continue
            if end is None or end > nxt["effective_from"]:
                found.append(f"patient {pid}: version effective {fmt(start)} ends {fmt(end)}, "
                             f"after the next version starts ({fmt(nxt['effective_from'])}) — "
                             "overlapping intervals")
                break
            if end < nxt["effective_from"]:
                found.append(f"patient {pid}: version effective {fmt(start)} ends {fmt(end)}, "
                             f"before the next version starts ({fmt(nxt['effective_from'])}) — "
                             "a gap")
                break
    return Outcome.from_problems(_examples(found, "patients"),
                                 "intervals are contiguous and non-overlapping; effective_to is null exactly "
                                 "on current rows")


@check("02.scd2_changes_only")
def scd2_changes_only(ctx: Context) -> Outcome:
    """Consecutive versions differ in at least one tracked attribute."""
    found = []
    for pid, rows in _versions(ctx).items():
        for before, after in zip(rows, rows[1:], strict=False):
            if all(before[c] == after[c] for c in ref.TRACKED):
                found.append(f"patient {pid}: the version effective {fmt(after['effective_from'])}"
                             " repeats the tracked attributes of the one before it")
                break
    return Outcome.from_problems(_examples(found, "patients"),
                                 "every new version changes at least one tracked attribute")


def _shape(rows: list[dict]) -> str:
    return f"{len(rows)} version{'s' if len(rows) != 1 else ''} (effective " \
           f"{days([r['effective_from'] for r in rows])})"


def _null_change(before: dict, after: dict) -> str:
    """How ``after`` changes the tracked attributes of ``before`` when every attribute that changes
    has a null on one side (e.g. ``"insurance_member_id MBR-SYN-1 → null"``), else ``""``."""
    changed = [c for c in ref.TRACKED if before[c] != after[c]]
    if not changed or any((before[c] is None) == (after[c] is None) for c in changed):
        return ""
    return ", ".join(f"{c} {fmt(before[c])} → {fmt(after[c])}" for c in changed)


def _missed_null_change(want: list[dict], starts: set) -> str:
    """``"; the missing version effective … changes only from or to NULL (…) — …"`` for the first
    expected version absent from ``starts`` whose change is one from or to null, else ``""``."""
    for before, after in zip(want, want[1:], strict=False):
        if after["effective_from"] not in starts and (change := _null_change(before, after)):
            return (f"; the missing version effective {fmt(after['effective_from'])} changes only from or to "
                    f"NULL ({change}): s.c <> t.c is NULL there, not true, so that change goes unseen — "
                    "compare with NOT (s.c <=> t.c)")
    return ""


@check("02.scd2_versions")
def scd2_versions(ctx: Context) -> Outcome:
    """The exact versions recomputed from the raw feeds (reference.silver.patient_versions)."""
    found_versions, expected = _versions(ctx), _expected_versions(ctx)
    found = []
    for pid in sorted(set(expected) | set(found_versions)):
        have, want = found_versions.get(pid, []), expected.get(pid, [])
        if not want:
            found.append(f"patient {pid} is in {SCD} but no valid record of it was delivered")
            continue
        if not have:
            found.append(f"patient {pid} is missing (expected {_shape(want)})")
            continue
        starts = [r["effective_from"] for r in have]
        if starts != [r["effective_from"] for r in want]:
            found.append(f"patient {pid} has {_shape(have)}, expected {_shape(want)}"
                         + _missed_null_change(want, set(starts)))
            continue
        for h, w in zip(have, want, strict=True):
            diff = [c for c in (*ref.TRACKED, "effective_to", "is_current") if h[c] != w[c]]
            if diff:
                c = diff[0]
                found.append(f"patient {pid}, version effective {fmt(h['effective_from'])}: "
                             f"{c} {fmt(h[c])}, expected {fmt(w[c])}")
                break
    total = sum(len(v) for v in expected.values())
    return Outcome.from_problems(_examples(found, "patients"),
                                 f"all {n(total)} versions of {n(len(expected))} patients match the versions "
                                 "recomputed from the raw feeds")
