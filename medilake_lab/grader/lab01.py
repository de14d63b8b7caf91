"""Lab 01 — bronze ingestion. Evidence: Delta history, column types, row counts per source file
and corrupt-record counts, compared with counts taken independently from the raw files (lines of
patients erased by lab 07 count as never delivered: :attr:`Context.erased_patients`)."""

from __future__ import annotations

from pathlib import PurePath

from medilake_lab.contract import feeds
from medilake_lab.grader import Context, Outcome, check
from medilake_lab.grader.commits import Kind
from medilake_lab.grader.delta import Table
from medilake_lab.grader.erasure import AUDIT_TABLE, audit_gap
from medilake_lab.grader.toolkit import plural

TABLES = {f: f"bronze.{f}" for f in feeds.FEED_NAMES}
METADATA = ("_ingested_at", "_source_file", "_batch_id")
CORRUPT = "_corrupt_record"
#: Delta type names an explicit schema produces for the contract's typed columns.
TYPED = {feeds.TIMESTAMP: "timestamp", feeds.DATE: "date", feeds.DOUBLE: "double"}


def _tables(ctx: Context) -> dict[str, Table]:
    return {feed: t for feed, name in TABLES.items() if (t := ctx.table(name)) is not None}


def _rows_per_file(ctx: Context, table: Table) -> dict[str, int]:
    """Source file name → rows in the table (only when _source_file exists); one scan per run."""
    def build() -> dict[str, int]:
        if "_source_file" not in table.columns:
            return {}
        rows = table.query("SELECT _source_file AS f, count(*) AS n FROM t GROUP BY _source_file")
        return {PurePath(str(f)).name if f else "<null>": int(n)
                for f, n in zip(rows["f"].to_pylist(), rows["n"].to_pylist(), strict=True)}
    return ctx.memo(("01.rows_per_file", table.name), build)


@check("01.tables_exist")
def tables_exist(ctx: Context) -> Outcome:
    return ctx.tables_exist(list(TABLES.values()), f"all {len(TABLES)} bronze tables are Delta tables")


@check("01.append_only")
def append_only(ctx: Context) -> Outcome:
    """Every bronze commit adds rows or changes no row (appends, creation, schema additions,
    OPTIMIZE, VACUUM, table properties, DROP FEATURE…); the one exception is a DELETE that carries
    out an erasure request recorded in audit.erasure_requests (lab 07: userMetadata
    ``erasure:<request_id>``, a predicate naming the request's patient). Any other DELETE, UPDATE,
    MERGE or overwrite is named with its version."""
    problems, erasures = [], 0
    for feed, table in _tables(ctx).items():
        bad = []
        for c in table.history():
            if c.only_adds or c.is_maintenance:
                continue
            if c.kind is Kind.DELETE:
                gap = audit_gap(c, ctx.erasure_requests())
                if not gap:
                    erasures += 1
                    continue
                bad.append(f"{c.describe()} — DELETE without an erasure audit record ({gap})")
            else:
                bad.append(c.describe())
        if bad:
            problems.append(f"{TABLES[feed]} has {', '.join(bad[:3])}")
    audited = f"; {plural(erasures, 'audited erasure DELETE')} ({AUDIT_TABLE})" if erasures else ""
    return Outcome.from_problems(problems, f"every bronze commit is an append{audited}")


@check("01.explicit_schema")
def explicit_schema(ctx: Context) -> Outcome:
    problems = []
    for feed, table in _tables(ctx).items():
        types = table.column_types()
        for column, ddl_type in feeds.FEEDS[feed].fields:
            want = TYPED.get(ddl_type)
            if want and column in types and types[column] != want:
                problems.append(f"{TABLES[feed]}.{column} is {types[column]}, expected {want}")
            elif column not in types:
                problems.append(f"{TABLES[feed]} lacks column {column}")
    return Outcome.from_problems(problems, "dates, timestamps and numbers are typed as in the contract")


@check("01.all_batches")
def all_batches(ctx: Context) -> Outcome:
    problems, files = [], 0
    for feed, table in _tables(ctx).items():
        have = _rows_per_file(ctx, table)
        for batch, facts in ctx.delivered(feed).items():
            files += 1
            if facts.path.name not in have and (facts.lines or not facts.erased):  # not: every line erased
                problems.append(f"{TABLES[feed]} lacks batch {batch} ({facts.path.name})")
    return Outcome.from_problems(problems, f"all {files} delivered files are in bronze")


@check("01.no_double_ingestion")
def no_double_ingestion(ctx: Context) -> Outcome:
    problems = []
    for feed, table in _tables(ctx).items():
        have = _rows_per_file(ctx, table)
        for facts in ctx.delivered(feed).values():
            rows = have.get(facts.path.name, 0)
            if facts.rows and rows >= 2 * facts.rows:
                problems.append(f"{facts.path.name} ingested {rows // facts.rows}× "
                                f"({rows} rows for {facts.lines} lines)")
    return Outcome.from_problems(problems, "each delivered file was ingested once")


@check("01.row_counts")
def row_counts(ctx: Context) -> Outcome:
    problems, total = [], 0
    for feed, table in _tables(ctx).items():
        lines = sum(f.lines for f in ctx.delivered(feed).values())
        expected = sum(f.rows for f in ctx.delivered(feed).values())
        rows = int(table.query("SELECT count(*) AS n FROM t")["n"][0].as_py())
        total += rows
        if rows != expected:
            arrays = (f" ({expected} rows: a line holding a JSON array of objects is a row per object)"
                      if expected != lines else "")
            problems.append(f"{TABLES[feed]} has {rows} rows for {lines} delivered lines{arrays}")
    return Outcome.from_problems(problems, f"{total} rows = every delivered record (a row per line, or per "
                                 "object of a JSON array line), duplicates and malformed lines included")


@check("01.malformed_kept")
def malformed_kept(ctx: Context) -> Outcome:
    problems, kept = [], 0
    for feed, table in _tables(ctx).items():
        delivered = sum(f.malformed for f in ctx.delivered(feed).values())
        if CORRUPT not in table.columns:
            if delivered:
                problems.append(f"{TABLES[feed]} has no {CORRUPT} column "
                                f"({delivered} malformed lines were delivered)")
            continue
        found = int(table.query(f"SELECT count({CORRUPT}) AS n FROM t")["n"][0].as_py())
        kept += found
        if found < delivered:
            problems.append(f"{delivered} malformed lines were delivered to {feed}; "
                            f"{TABLES[feed]} kept {found}")
    return Outcome.from_problems(problems, f"{kept} malformed lines kept with their raw text")


@check("01.metadata_columns")
def metadata_columns(ctx: Context) -> Outcome:
    problems = []
    for feed, table in _tables(ctx).items():
        absent = [c for c in METADATA if c not in table.columns]
        if absent:
            problems.append(f"{TABLES[feed]} lacks {', '.join(absent)}")
            continue
        nulls = table.query("SELECT " + ", ".join(
            f"sum(CASE WHEN {c} IS NULL THEN 1 ELSE 0 END) AS {c}" for c in METADATA) + " FROM t")
        empty = [c for c in METADATA if (nulls[c][0].as_py() or 0) > 0]
        if empty:
            problems.append(f"{TABLES[feed]} has null {', '.join(empty)}")
    return Outcome.from_problems(problems, f"{', '.join(METADATA)} populated on every row")


@check("01.schema_drift")
def schema_drift(ctx: Context) -> Outcome:
    table = ctx.require(TABLES[feeds.DRIFT_FEED])
    delivered = sum(f.drift_values for f in ctx.delivered(feeds.DRIFT_FEED).values())
    name = f"{TABLES[feeds.DRIFT_FEED]}.{feeds.DRIFT_COLUMN}"
    if delivered == 0:
        return Outcome(True, f"no delivered record carries {feeds.DRIFT_COLUMN} in this data set")
    if feeds.DRIFT_COLUMN not in table.columns:
        return Outcome(False, f"{name} is missing; {delivered} delivered records carry it")
    kept = int(table.query(f"SELECT count({feeds.DRIFT_COLUMN}) AS n FROM t")["n"][0].as_py())
    if kept < delivered:
        return Outcome(False, f"{name} holds {kept} values; {delivered} were delivered")
    return Outcome(True, f"{name} added by schema evolution, {kept} values kept")
