"""Lab 07 — Change Data Feed, deletion vectors and a patient's erasure. Evidence: the erasure
request in ``audit.erasure_requests``; every table's DESCRIBE HISTORY (table properties, DELETEs and
their userMetadata, MERGE vs overwrite on gold, deletion-vector metrics, REORG, VACUUM); the
protocol and add actions of ``sandbox.encounters_dv``; gold values against lab 04's reference
recomputed from the erased silver; and the erasure scan (:mod:`medilake_lab.grader.erasure_scan`):
every Parquet data and change-data file of every Delta table read for the patient's id, MRN or
name, placed with its table's log.

Tables with deletion vectors still on are read through their log only (delta-rs cannot read
their data), so this lab grades them instead of stopping at "cannot be read".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from medilake_lab.errors import DamagedTableError, DataError, UnreadableTableError
from medilake_lab.grader import Context, Outcome, check, lab04
from medilake_lab.grader import erasure_scan as es
from medilake_lab.grader.commits import Commit, Kind
from medilake_lab.grader.delta import Table, open_table
from medilake_lab.grader.erasure import AUDIT_TABLE, ErasureRequest, audit_gap
from medilake_lab.grader.reference import gold as gold_ref
from medilake_lab.grader.reference import silver as silver_ref
from medilake_lab.grader.toolkit import fmt, plural

SILVER = ("silver.encounters_clean", "silver.diagnoses_clean", "silver.procedures_clean",
          "silver.lab_results_clean", "silver.medications_clean", "silver.patients_scd")
DV_TABLE, PROOF = "sandbox.encounters_dv", "sandbox.erasure_proof"
TABLES = (AUDIT_TABLE, DV_TABLE, PROOF)
CDF_PROPERTY = "delta.enableChangeDataFeed"
AUDIT_COLUMNS = ("request_id", "patient_id", "mrn", "requested_at", "completed_at", "legal_basis", "tables",
                 "retention_hours", "vacuum_after")
#: Commits that replace a gold table's rows wholesale or add them blindly: not a refresh from changes.
NOT_FROM_CHANGES = frozenset({Kind.OVERWRITE, Kind.CREATE_AS_SELECT, Kind.REPLACE, Kind.REPLACE_AS_SELECT,
                              Kind.TRUNCATE, Kind.APPEND, Kind.RESTORE, Kind.CLONE})
#: Lab 04's value checks, run again on the erased silver.
GOLD_VALUES = (lab04.summary_values, lab04.utilization_values, lab04.readmissions, lab04.prevalence_values,
               lab04.lab_trend_values)
#: Clock skew allowed between the audit's timestamps and the commits' (Spark session vs log).
SLACK = timedelta(minutes=1)


# ---------------------------------------------------------------- shared state of one grading run


def _log(ctx: Context, name: str) -> Table | None:
    """A table opened for its log: also when delta-rs cannot read its data (deletion vectors still
    on); None when absent. Raises DamagedTableError for a damaged table."""
    try:
        return ctx.table(name)
    except UnreadableTableError:
        return ctx.memo(("07.log", name), lambda: open_table(name, ctx.warehouse))


def _log_or_problem(ctx: Context, name: str, problems: list[str]) -> Table | None:
    """:func:`_log` for a table met while walking the warehouse: a damaged one adds a line to
    ``problems`` (its history cannot be judged) instead of ending the check."""
    try:
        return _log(ctx, name)
    except DamagedTableError as exc:
        problems.append(f"cannot read {name}: {exc}")
        return None


def _history(ctx: Context, table: Table) -> list[Commit]:
    return ctx.memo(("07.history", table.name), table.history)


def _requests(ctx: Context) -> dict[str, ErasureRequest]:
    """The recorded requests; MissingTables (via require) when the audit table is absent."""
    ctx.require(AUDIT_TABLE)
    return ctx.erasure_requests()


def _patients(ctx: Context) -> set[str]:
    return {r.patient_id for r in _requests(ctx).values()}


def _erasure_deletes(commits: list[Commit], patients: set[str]) -> list[Commit]:
    """DELETE commits whose predicate names one of ``patients`` (Spark logs ``patient_id#12 = PAT…``)."""
    return [c for c in commits if c.kind is Kind.DELETE and any(p in c.predicate for p in patients)]


def _raw_identity(ctx: Context, patient: str) -> tuple[set[str], set[tuple[str, str]]] | None:
    """Every MRN and (first, last) name the raw patients feed gives ``patient`` (the source system's
    copy: outside the erasure, so still readable); None without raw data."""
    def build() -> dict[str, tuple[set[str], set[tuple[str, str]]]]:
        raw = silver_ref.records("patients", ctx.data).select(["patient_id", "mrn", "first_name", "last_name"])
        wanted = _patients(ctx)  # (a Python filter: pa.array() would import pandas, ~0.4 s of a grade)
        out: dict[str, tuple[set[str], set[tuple[str, str]]]] = {}
        for row in raw.to_pylist():
            if row["patient_id"] not in wanted:
                continue
            mrns, names = out.setdefault(row["patient_id"], (set(), set()))
            if row["mrn"]:
                mrns.add(row["mrn"])
            if row["first_name"] and row["last_name"]:
                names.add((row["first_name"], row["last_name"]))
        return out
    try:
        return ctx.memo("07.raw_identity", build).get(patient, (set(), set()))
    except DataError:
        return None


def _subjects(ctx: Context) -> list[es.Subject]:
    """Each erased patient with every MRN (audit and raw feed) and name (raw feed)."""
    def build() -> list[es.Subject]:
        subjects = []
        for patient in sorted(_patients(ctx)):
            mrns, names = _raw_identity(ctx, patient) or (set(), set())
            mrns = mrns | {r.mrn for r in _requests(ctx).values() if r.patient_id == patient and r.mrn}
            subjects.append(es.Subject(patient, tuple(sorted(mrns)), tuple(sorted(names))))
        return subjects
    return ctx.memo("07.subjects", build)


def _scan(ctx: Context) -> es.Scan:
    return ctx.memo("07.scan", lambda: es.scan(ctx.warehouse, _subjects(ctx)))


def _who(ctx: Context) -> str:
    return ", ".join(sorted(_patients(ctx))) or "the erased patient"


def _cdf_version(commits: list[Commit]) -> Commit | None:
    """The first commit that set delta.enableChangeDataFeed=true (SET TBLPROPERTIES or CREATE)."""
    for c in commits:
        properties = c.param("properties")
        if isinstance(properties, dict) and str(properties.get(CDF_PROPERTY, "")).lower() == "true":
            return c
    return None


def _utc(ms: int | None) -> str:
    return "an unknown time" if ms is None else f"{datetime.fromtimestamp(ms / 1000, UTC):%Y-%m-%d %H:%M} UTC"


def _day(value: datetime | None) -> str:
    return "an unknown date" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


# ------------------------------------------------------------------------------------- checks


@check("07.tables_exist")
def tables_exist(ctx: Context) -> Outcome:
    missing = [name for name in TABLES if _log(ctx, name) is None]
    if missing:
        return ctx.tables_exist(missing, "")
    return Outcome(True, f"{', '.join(TABLES)} are Delta tables")


@check("07.cdf_enabled")
def cdf_enabled(ctx: Context) -> Outcome:
    problems, patients = [], _patients(ctx)
    for name in SILVER:
        table = ctx.require(name)
        commits = _history(ctx, table)
        enabled = _cdf_version(commits)
        now = str(table.delta.metadata().configuration.get(CDF_PROPERTY, "")).lower() == "true"
        deletes = _erasure_deletes(commits, patients)
        if enabled is None or not now:
            problems.append(f"{name}: {CDF_PROPERTY} is {'not set' if enabled is None else 'unset again'}"
                            " — the erasure's DELETE is in no change feed")
        elif deletes and enabled.version > deletes[0].version:
            problems.append(f"{name}: CDF enabled at v{enabled.version} ({enabled.operation}), after the "
                            f"erasure {deletes[0].describe()} — table_changes cannot return a change made "
                            "before CDF was on")
    return Outcome.from_problems(problems, f"CDF was on in all {len(SILVER)} silver tables before the erasure's "
                                 "DELETEs")


@check("07.gold_from_changes")
def gold_from_changes(ctx: Context) -> Outcome:
    requests = _requests(ctx)
    starts = [r.requested_at for r in requests.values() if r.requested_at is not None]
    if not starts:
        return Outcome(False, f"{AUDIT_TABLE} gives no requested_at: cannot tell gold's commits since the erasure")
    since = min(starts).replace(tzinfo=UTC).timestamp() * 1000
    problems = []
    for name in gold_ref.GOLD_TABLES:
        after = [c for c in _history(ctx, ctx.require(name)) if (c.timestamp_ms or 0) >= since]
        bad = [c.describe() for c in after if c.kind in NOT_FROM_CHANGES]
        if bad:
            problems.append(f"{name}: {', '.join(bad[:2])} since the erasure — a full rewrite, not a refresh of "
                            "the changed keys by MERGE")
        elif not any(c.kind in (Kind.MERGE, Kind.DELETE) for c in after):
            problems.append(f"{name}: no MERGE since the erasure request ({fmt(min(starts))}) — gold still "
                            "counts the erased patient")
    if not problems:
        for value_check in GOLD_VALUES:
            outcome = value_check(ctx)
            if not outcome.passed:
                problems.append(f"{outcome.finding} (lab 04's definitions on the erased silver)")
    return Outcome.from_problems(problems, f"the {len(gold_ref.GOLD_TABLES)} gold tables were refreshed by "
                                 "MERGE since the erasure and equal lab 04's recomputation from the erased silver")


@check("07.deletion_vectors")
def deletion_vectors(ctx: Context) -> Outcome:
    table = _log(ctx, DV_TABLE)
    if table is None:
        return ctx.tables_exist([DV_TABLE], "")
    commits = _history(ctx, table)
    problems = []
    marked = [c for c in commits if c.kind in (Kind.DELETE, Kind.UPDATE, Kind.MERGE)
              and c.metric("numDeletionVectorsAdded") + c.metric("numTargetDeletionVectorsAdded") > 0]
    if not marked:
        problems.append(f"{DV_TABLE}: no DELETE/UPDATE/MERGE added a deletion vector (numDeletionVectorsAdded is "
                        "0 in every commit) — set delta.enableDeletionVectors = true before the DML")
    deletes = _erasure_deletes(commits, _patients(ctx))
    after = deletes[-1].version if deletes else -1
    if not deletes:
        problems.append(f"{DV_TABLE}: no DELETE of {_who(ctx)}")
    purged = [c for c in commits if c.kind is Kind.REORG and c.param("applyPurge") is True and c.version > after]
    held = [f for f in _scan(ctx).of(DV_TABLE) if f.live and f.deletion_vector]
    if held:
        problems.append(f"the patient is still in deletion-vectored file {held[0].path} of {DV_TABLE} (the DELETE "
                        "only masked the rows) — REORG TABLE … APPLY (PURGE) rewrites it")
    elif not purged:
        problems.append(f"{DV_TABLE}: no REORG … APPLY (PURGE) after the erasure DELETE")
    live = sum(es.log_state(table.path).live.values())
    if live:
        problems.append(f"{DV_TABLE}: {plural(live, 'file')} of the current snapshot still "
                        f"{'carries' if live == 1 else 'carry'} a deletion vector")
    if "deletionVectors" in (table.delta.protocol().reader_features or []):
        problems.append(f"{DV_TABLE} still has the deletionVectors reader feature (reader version "
                        f"{table.delta.protocol().min_reader_version}), which readers such as the grader's "
                        "(delta-rs) cannot read — ALTER TABLE … DROP FEATURE deletionVectors")
    if problems:
        return Outcome(False, "; ".join(problems))
    return Outcome(True, f"{DV_TABLE}: {marked[0].describe()} added deletion vectors, {purged[0].describe()} "
                   "purged them after the erasure, none left and the feature dropped")


@check("07.erasure_audited")
def erasure_audited(ctx: Context) -> Outcome:
    requests = _requests(ctx)
    if not requests:
        return Outcome(False, f"{AUDIT_TABLE} holds no request with a request_id and a patient_id")
    rows = ctx.rows(AUDIT_TABLE, AUDIT_COLUMNS).to_pylist()
    problems = [p for row in rows if row["request_id"] in requests for p in _request_problems(ctx, row)]
    audited: dict[str, set[str]] = {}  # request id → tables with a DELETE carrying it
    patients = _patients(ctx)
    for name, _ in es.table_folders(ctx.warehouse):
        table = _log_or_problem(ctx, name, problems) if name.count(".") == 1 else None
        if table is None:
            continue
        for c in _history(ctx, table):
            if c.kind is not Kind.DELETE:
                continue
            gap = audit_gap(c, requests)
            if not gap:
                audited.setdefault(str(c.erasure_request), set()).add(name)
            elif name.startswith("bronze.") or _erasure_deletes([c], patients):
                problems.append(f"{name}: {c.describe()} without an erasure audit record ({gap})")
    for row in rows:
        listed = set(row["tables"] or [])
        unlisted = sorted(listed - audited.get(row["request_id"], set()))
        if unlisted:
            problems.append(f"request {row['request_id']} lists {', '.join(unlisted[:3])} but no DELETE there "
                            f"carries erasure:{row['request_id']}")
    tagged = sum(len(v) for v in audited.values())
    return Outcome.from_problems(problems, f"{plural(len(requests), 'request')} recorded with MRN, legal basis, "
                                 f"tables and vacuum_after; {plural(tagged, 'table')} erased by DELETEs carrying "
                                 "the request id")


def _request_problems(ctx: Context, row: dict) -> list[str]:
    rid, out = row["request_id"], []
    empty = [c for c in AUDIT_COLUMNS if row[c] in (None, "", [])]
    if empty:
        out.append(f"request {rid}: {', '.join(empty)} empty")
    raw = _raw_identity(ctx, str(row["patient_id"]))
    if row["mrn"] and raw and raw[0] and row["mrn"] not in raw[0]:
        out.append(f"request {rid}: mrn {row['mrn']} is not {row['patient_id']}'s MRN in the raw patients feed "
                   f"({', '.join(sorted(raw[0]))})")
    if row["completed_at"] and row["requested_at"] and row["completed_at"] < row["requested_at"]:
        out.append(f"request {rid}: completed_at {fmt(row['completed_at'])} is before requested_at")
    if row["vacuum_after"] and row["completed_at"] and row["vacuum_after"] < row["completed_at"] - SLACK:
        out.append(f"request {rid}: vacuum_after {fmt(row['vacuum_after'])} is before completed_at — the "
                   "deleted files stay until VACUUM runs after the retention")
    return out


@check("07.erasure_complete")
def erasure_complete(ctx: Context) -> Outcome:
    if not _patients(ctx):
        return Outcome(False, f"{AUDIT_TABLE} holds no request: no patient to look for")
    scan = _scan(ctx)
    now = ctx.now()
    problems = [f"{f.describe()} — " + ("REORG TABLE … APPLY (PURGE) rewrites it without the masked rows"
                                       if f.deletion_vector else "the erasure missed this table")
                for f in scan.found if f.live]
    problems += [f"cannot read {u}" for u in scan.unreadable]
    left = [f for f in scan.found if not f.live]
    vacuums: dict[str, list[Commit]] = {}
    for f in left:
        if f.table not in vacuums:
            table = _log_or_problem(ctx, f.table, problems) if f.table.count(".") == 1 else None
            vacuums[f.table] = [c for c in _history(ctx, table) if c.kind is Kind.VACUUM_START] if table else []
        due = _vacuum_missed(f, vacuums[f.table])
        if due:
            problems.append(f"{f.describe()} — {due}")
        elif f.vacuum_after is not None and f.vacuum_after <= now:
            problems.append(f"{f.describe()} — its retention has ended: VACUUM the table")
        elif f.vacuum_after is not None:
            ctx.until(f.vacuum_after)  # from then on this file is one VACUUM should have removed
    promised = [r["vacuum_after"] for r in ctx.rows(AUDIT_TABLE, ["vacuum_after"]).to_pylist() if r["vacuum_after"]]
    dated = [(f.vacuum_after, f) for f in left if f.vacuum_after is not None and f.state != "untracked"]
    latest = max(dated, key=lambda pair: pair[0])[1] if dated else None
    if promised and latest is not None and latest.vacuum_after is not None:
        if max(promised).replace(tzinfo=UTC) < latest.vacuum_after - SLACK:
            problems.append(f"the request's vacuum_after {fmt(max(promised))} UTC comes before VACUUM may delete "
                            f"{latest.table}: {latest.path} ({_day(latest.vacuum_after)}) — count the change-data "
                            "files and the table's own retention")
    figures = scan.figures()
    if problems:
        return Outcome(False, Outcome.from_problems(problems, "").finding + f" ({figures})")
    return Outcome(True, f"no current snapshot holds {_who(ctx)}; {_leftovers(left)}; {figures}")


def _vacuum_missed(found: es.Found, vacuums: list[Commit]) -> str:
    """Why a file left by older versions should be gone already: a VACUUM after its retention clock
    started, with a retention short enough to delete it ("" when none)."""
    if found.since is None:
        return ""
    start = found.since.timestamp() * 1000
    for c in vacuums:
        hours = c.retention_hours
        if hours is not None and c.timestamp_ms is not None and c.timestamp_ms >= start + hours * 3_600_000:
            return (f"{c.describe_vacuum()} at {_utc(c.timestamp_ms)} should have deleted it (Delta's VACUUM "
                    "deletes expired _change_data files too; was it run by another tool, or the file put back?)")
    return ""


def _leftovers(left: list[es.Found]) -> str:
    """``"12 files only older versions or the change feed reference (silver.x: 3, …), VACUUM may delete
    them from 2026-12-09 10:00 to 2026-12-09 10:05 UTC"``, or that none is left."""
    if not left:
        return "no file on disk holds them any more"
    per: dict[str, int] = {}
    for f in left:
        per[f.table] = per.get(f.table, 0) + 1
    tables = ", ".join(f"{t}: {n}" for t, n in sorted(per.items())[:4]) + (" …" if len(per) > 4 else "")
    dates = sorted(f.vacuum_after for f in left if f.vacuum_after is not None)
    when = (f"from {_day(dates[0])}" + (f" to {_day(dates[-1])}" if dates[-1] - dates[0] >= timedelta(minutes=1)
                                          else "")) if dates else "at an unknown date"
    return (f"{plural(len(left), 'file')} only older versions or the change feed reference ({tables}), "
            f"VACUUM may delete them {when}")


@check("07.time_travel_proof")
def time_travel_proof(ctx: Context) -> Outcome:
    table = _log(ctx, PROOF)
    if table is None:
        return ctx.tables_exist([PROOF], "")
    deletes = _erasure_deletes(_history(ctx, table), _patients(ctx))
    if not deletes:
        return Outcome(False, f"{PROOF}: no DELETE of {_who(ctx)} in its history — erase the patient there first")
    erased = deletes[0].version
    held = [f.describe().removeprefix(f"{PROOF}: ") for f in _scan(ctx).of(PROOF)]
    problems = []
    if all("numDeletedRows" in c.metrics and c.metric("numDeletedRows") == 0 for c in deletes):
        problems.append(f"{PROOF}: its erasure DELETE removed no row — the copy never held {_who(ctx)}, so it "
                        "proves nothing: copy the table from a version before the erasure (VERSION AS OF)")
    if held:
        problems.append(f"{PROOF}: {plural(len(held), 'file')} still {'holds' if len(held) == 1 else 'hold'} "
                        f"the patient: {'; '.join(held[:3])} — VACUUM … RETAIN 0 HOURS after the DELETE deletes "
                        "old data files and change-data files alike")
    for version in range(erased):
        rows = _patient_rows(table, version, _patients(ctx))
        if rows:
            problems.append(f"{PROOF}: VERSION AS OF {version} (before the erasure DELETE at v{erased}) still "
                            f"returns {plural(rows, 'row')} of {_who(ctx)} — time travel brings the patient back")
            break
    before = "version 0" if erased == 1 else f"versions 0–{erased - 1}"
    verb = "returns" if erased == 1 else "return"
    return Outcome.from_problems(problems, f"{PROOF}: {before} before the erasure DELETE (v{erased}) {verb} no row "
                                 "of the patient (their files are gone) and no file holds them")


def _patient_rows(table: Table, version: int, patients: set[str]) -> int:
    """Rows of ``patients`` that time travel to ``version`` returns; 0 when that version cannot be
    read (its files vacuumed) or has no patient_id column."""
    try:
        old = table.at_version(version)
        if "patient_id" not in old.columns:
            return 0
        ids = ", ".join("'" + p.replace("'", "''") + "'" for p in sorted(patients))
        return int(old.query(f"SELECT count(*) AS n FROM t WHERE patient_id IN ({ids})")["n"][0].as_py())
    except Exception:  # noqa: BLE001 - e.g. its files vacuumed: that version cannot return the patient
        return 0
