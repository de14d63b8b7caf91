"""Lab 04 — gold analytics. Evidence: the gold tables' schemas, keys, values and history, compared
with values recomputed independently by :mod:`medilake_lab.grader.reference.gold` (DuckDB over the
learner's silver base columns; every derived value recomputed; tolerances stated there)."""

from __future__ import annotations

import math
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa

from medilake_lab.grader import Context, Outcome, check
from medilake_lab.grader.delta import Commit, Table
from medilake_lab.grader.reference import gold as ref
from medilake_lab.grader.reference import silver as reference_silver

RUN_LAB = ("run lab 04 (or `medilake_lab catchup 04` to build labs 01–03 first; "
           "`medilake_lab run 04` runs the solution)")
#: How the notebook refreshes each table ("overwrite": CREATE OR REPLACE TABLE … AS SELECT,
#: INSERT OVERWRITE or a replaceWhere slice; "merge": MERGE INTO on the table's keys).
DECISIONS: dict[str, str] = {ref.SUMMARY: "overwrite", ref.UTILIZATION: "merge",
                             ref.PREVALENCE: "overwrite", ref.LAB_TRENDS: "overwrite"}
#: Column-name patterns of direct identifiers (matched on the lower-cased name).
IDENTIFIER_NAMES: tuple[tuple[str, str], ...] = (
    (r"(^|_)ssn($|_)|social_security", "SSN"),
    (r"(^|_)mrn($|_)|medical_record", "MRN"),
    (r"first_name|last_name|full_name|patient_name|given_name|family_name|surname|^name$",
     "patient name"),
    (r"phone|mobile|(^|_)fax($|_)", "phone number"),
    (r"address|street", "street address"),
    (r"birth_?date|date_of_birth|(^|_)dob($|_)", "exact birth date"),
    (r"member_id|insurance_id|policy_number", "insurance member id"),
    (r"e_?mail", "e-mail address"),
)
SSN_VALUE = re.compile(r"\d{3}-\d{2}-\d{4}")
#: A string column whose distinct values include this many patient identifiers carries them.
MIN_VALUE_MATCHES = 3
#: First differing rows named in a finding.
SHOWN = 2

_MAINTENANCE = {"OPTIMIZE", "VACUUM START", "VACUUM END", "SET TBLPROPERTIES",
                "UNSET TBLPROPERTIES", "ADD COLUMNS", "CHANGE COLUMN", "REPLACE COLUMNS",
                "ADD CONSTRAINT", "DROP CONSTRAINT", "UPGRADE PROTOCOL", "RESTORE",
                "ADD DELETION VECTORS TOMBSTONES", "REORG", "FSCK", "CLONE", "UPDATE SCHEMA",
                "COMPUTE STATS", "CLUSTER BY", "DROP FEATURE"}


# ---------------------------------------------------------------- shared state of one grading run


@dataclass
class _Run:
    silver: ref.Silver | None = None
    expected: dict[str, pa.Table] = field(default_factory=dict)
    gold: dict[str, pa.Table] = field(default_factory=dict)


_RUNS: weakref.WeakKeyDictionary[Context, _Run] = weakref.WeakKeyDictionary()


def _run(ctx: Context) -> _Run:
    return _RUNS.setdefault(ctx, _Run())


def _silver(ctx: Context) -> ref.Silver:
    state = _run(ctx)
    if state.silver is None:
        state.silver = ref.load_silver(ctx.table, reference_silver.as_of_date(ctx.data))
    return state.silver


def _expected(ctx: Context, name: str, build: Callable[[ref.Silver], pa.Table]) -> pa.Table:
    state = _run(ctx)
    if name not in state.expected:
        state.expected[name] = build(_silver(ctx))
    return state.expected[name]


def _gold(ctx: Context, name: str) -> pa.Table | None:
    state = _run(ctx)
    if name not in state.gold:
        table = ctx.table(name)
        state.gold[name] = None if table is None else ref.naive_utc(table.to_arrow())
    return state.gold[name]


def _tables(ctx: Context) -> dict[str, Table]:
    return {name: t for name in ref.GOLD_TABLES if (t := ctx.table(name)) is not None}


# ---------------------------------------------------------------------------------- comparison


def _kind(dtype: object) -> str:
    """Delta schema type → contract kind (``int`` for any integer width, ``double`` for
    float/double/decimal, ``list<…>`` for arrays)."""
    if type(dtype).__name__ == "ArrayType":
        return f"list<{_kind(dtype.element_type)}>"  # type: ignore[attr-defined]
    name = str(getattr(dtype, "type", dtype))
    if name in ("long", "integer", "short", "byte"):
        return "int"
    if name in ("double", "float") or name.startswith("decimal"):
        return "double"
    if name.startswith("timestamp"):
        return "timestamp"
    return name


def _norm(value: object, kind: str) -> object:
    if value is None:
        return None
    if kind == "int":
        return int(value)  # type: ignore[call-overload]
    if kind == "double":
        return float(value)  # type: ignore[arg-type]
    if kind.startswith("list"):
        return tuple(sorted(value))  # type: ignore[call-overload]
    return value


def _same(observed: object, expected: object, kind: str) -> bool:
    if observed is None or expected is None:
        return observed is None and expected is None
    if kind == "double":
        o, e = float(observed), float(expected)  # type: ignore[arg-type]
        if math.isnan(o) or math.isnan(e):
            return False
        return math.isclose(o, e, rel_tol=ref.REL_TOL, abs_tol=1e-9)
    return observed == expected


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return repr(value) if isinstance(value, str) else str(value)


def _key_text(key: tuple) -> str:
    return "(" + ", ".join(_fmt(k) for k in key) + ")"


@dataclass
class Diff:
    """Observed vs expected rows of one gold table, matched on its keys."""

    table: str
    rows: int
    duplicates: int = 0
    missing: list[tuple] = field(default_factory=list)
    extra: list[tuple] = field(default_factory=list)
    #: column → [(key, observed, expected)] for rows present on both sides
    columns: dict[str, list[tuple[tuple, object, object]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.missing or self.extra
                    or any(self.columns.values()))


def _rows(table: pa.Table, keys: tuple[str, ...], columns: list[str],
          kinds: dict[str, str]) -> tuple[dict[tuple, dict[str, object]], int]:
    data = table.select(list(keys) + columns).to_pylist()
    out: dict[tuple, dict[str, object]] = {}
    duplicates = 0
    for row in data:
        key = tuple(_norm(row[k], kinds[k]) for k in keys)
        if key in out:
            duplicates += 1
            continue
        out[key] = {c: _norm(row[c], kinds[c]) for c in columns}
    return out, duplicates


def compare(name: str, observed: pa.Table, expected: pa.Table,
            columns: list[str] | None = None) -> Diff:
    """Match the observed and expected rows of a gold table on its keys and compare values.

    Parameters
    ----------
    name: gold table, one of :data:`medilake_lab.grader.reference.gold.GOLD_TABLES`.
    observed: the learner's rows (must hold the key columns and ``columns``).
    expected: the recomputed rows (same columns).
    columns: value columns to compare; default every contract column that is neither a key nor
        a label (:data:`medilake_lab.grader.reference.gold.LABELS`).

    Returns
    -------
    Diff: duplicate observed keys, expected keys missing, unexpected keys, and per column the
    ``(key, observed, expected)`` triples that differ, in key order. Counts must be equal;
    doubles within :data:`medilake_lab.grader.reference.gold.REL_TOL` (relative); lists compare sorted.
    """
    keys = ref.KEYS[name]
    kinds = dict(ref.CONTRACT[name])
    columns = columns or [c for c, _ in ref.CONTRACT[name] if c not in keys and c not in ref.LABELS]
    got, duplicates = _rows(observed, keys, columns, kinds)
    want, _ = _rows(expected, keys, columns, kinds)
    diff = Diff(name, len(want), duplicates)
    order = sorted(want, key=_sort_key)
    diff.missing = [k for k in order if k not in got]
    diff.extra = sorted((k for k in got if k not in want), key=_sort_key)
    for column in columns:
        diff.columns[column] = [
            (k, got[k][column], want[k][column]) for k in order
            if k in got and not _same(got[k][column], want[k][column], kinds[column])]
    return diff


def _sort_key(key: tuple) -> tuple:
    return tuple((v is None, str(v)) for v in key)


def describe(diff: Diff, explain: Callable[[str, list], str] | None = None) -> str:
    """A one-line finding for a :class:`Diff`.

    Parameters
    ----------
    diff: the comparison of one gold table.
    explain: optional ``(column, differing triples) → reason`` that recognises a known mistake
        (e.g. LOS in hours) and returns "" otherwise.

    Returns
    -------
    str: ``"<table>: <what differs>, e.g. <key> observed <x>, expected <y>; … — <reasons>"``,
    naming the first :data:`SHOWN` differing rows of each part.
    """
    parts = []
    if diff.duplicates:
        parts.append(f"{diff.duplicates} duplicate key(s) {ref.KEYS[diff.table]}")
    if diff.missing:
        parts.append(f"{len(diff.missing)} expected row(s) missing, e.g. "
                     + ", ".join(_key_text(k) for k in diff.missing[:SHOWN]))
    if diff.extra:
        parts.append(f"{len(diff.extra)} unexpected row(s), e.g. "
                     + ", ".join(_key_text(k) for k in diff.extra[:SHOWN]))
    reasons: list[str] = []
    for column, bad in diff.columns.items():
        if not bad:
            continue
        shown = ", ".join(f"{_key_text(k)} observed {_fmt(o)}, expected {_fmt(e)}"
                          for k, o, e in bad[:SHOWN])
        parts.append(f"{column} differs on {len(bad)} of {diff.rows} rows: {shown}")
        why = explain(column, bad) if explain else ""
        if why and why not in reasons:
            reasons.append(why)
    return f"{diff.table}: " + "; ".join(parts) + "".join(f" — {why}" for why in reasons)


def _as_of_mismatch(ctx: Context) -> str:
    """A finding when gold was built for another as-of date than the data's (else "")."""
    summary = _gold(ctx, ref.SUMMARY)
    if summary is None or "as_of_date" not in summary.column_names:
        return ""
    built = {d for d in summary["as_of_date"].unique().to_pylist() if d is not None}
    want = _silver(ctx).as_of
    if len(built) == 1 and want not in built:
        return (f"gold was built as of {built.pop()}, but the data's as-of date is {want}: "
                "re-run lab 04 with as_of_date = None to grade it")
    return ""


def _value_check(ctx: Context, name: str, build: Callable[[ref.Silver], pa.Table],
                 columns: list[str] | None, ok: str,
                 explain: Callable[[str, list], str] | None = None) -> Outcome:
    observed = _gold(ctx, name)
    if observed is None:
        return Outcome(False, f"{name} is missing — {RUN_LAB}")
    if mismatch := _as_of_mismatch(ctx):
        return Outcome(False, mismatch)
    diff = compare(name, observed, _expected(ctx, name, build), columns)
    if diff.ok:
        return Outcome(True, ok.format(rows=diff.rows))
    return Outcome(False, describe(diff, explain))


# ----------------------------------------------------------------------------- explanations


def _ratio(bad: list) -> float | None:
    ratios = [o / e for _, o, e in bad if isinstance(o, (int, float)) and isinstance(e, (int, float))
              and e]
    return sorted(ratios)[len(ratios) // 2] if ratios else None


def _explain_los(column: str, bad: list) -> str:
    ratio = _ratio(bad)
    if column in ("mean_los_days", "median_los_days", "inpatient_days") and ratio \
            and 16 <= ratio <= 32:
        return (f"about {ratio:.0f}× the expected days: length of stay looks like hours, not days "
                "(use calendar days: datediff(to_date(discharge_ts), to_date(admit_ts)), or "
                "silver's length_of_stay_days)")
    if column.startswith(("mean_los", "median_los", "inpatient_days", "discharges")):
        return "check that LOS is averaged over inpatient stays discharged in the month"
    return ""


def _explain_prevalence(column: str, bad: list) -> str:
    if column in ("patients", "prevalence_per_1000") and all(
            o is not None and e is not None and o > e for _, o, e in bad):
        return ("always higher than the distinct patients: count each patient once per day "
                "(count(DISTINCT patient_id)), not diagnoses or encounters")
    if column == "population":
        return "the denominator is the number of current patients (is_current in silver.patients_scd)"
    return ""


def _explain_lab(column: str, bad: list) -> str:
    if column.startswith("rolling_7d"):
        return ("use a RANGE frame over calendar days (the 7 days ending on result_date), not "
                "the last 7 rows, and divide summed abnormal results by summed tests")
    return ""


# ---------------------------------------------------------------------------------- the checks


@check("04.tables_exist")
def tables_exist(ctx: Context) -> Outcome:
    return ctx.tables_exist(ref.GOLD_TABLES, f"all {len(ref.GOLD_TABLES)} gold tables are Delta tables", RUN_LAB)


@check("04.columns")
def columns(ctx: Context) -> Outcome:
    problems = []
    for name, table in _tables(ctx).items():
        have = {f.name: _kind(f.type) for f in table.delta.schema().fields}
        absent = [c for c, _ in ref.CONTRACT[name] if c not in have]
        if absent:
            problems.append(f"{name} lacks {', '.join(absent)}")
        wrong = [f"{c} is {have[c]}, expected {k}" for c, k in ref.CONTRACT[name]
                 if c in have and have[c] != k]
        if wrong:
            problems.append(f"{name}: {', '.join(wrong[:3])}")
    n = sum(len(c) for c in ref.CONTRACT.values())
    return Outcome.from_problems(problems, f"all {n} contract columns present with their types")


@check("04.grain")
def grain(ctx: Context) -> Outcome:
    problems, rows = [], 0
    for name, table in _tables(ctx).items():
        keys = ref.KEYS[name]
        cols = ", ".join(f'"{k}"' for k in keys)
        nulls = " OR ".join(f'"{k}" IS NULL' for k in keys)
        found = table.query(
            f"SELECT count(*) AS n, count(*) - (SELECT count(*) FROM (SELECT DISTINCT {cols} "
            f"FROM t)) AS dup, sum(CASE WHEN {nulls} THEN 1 ELSE 0 END) AS nulls FROM t"
        ).to_pylist()[0]
        rows += found["n"]
        if found["dup"]:
            dup = table.query(f"SELECT {cols}, count(*) AS n FROM t GROUP BY {cols} "
                              f"HAVING count(*) > 1 ORDER BY n DESC LIMIT 1").to_pylist()[0]
            key = tuple(dup[k] for k in keys)
            problems.append(f"{name} has {found['dup']} duplicate {'/'.join(keys)} row(s), "
                            f"e.g. {_key_text(key)} × {dup['n']}")
        if found["nulls"]:
            problems.append(f"{name} has {found['nulls']} row(s) with a null key "
                            f"({', '.join(keys)})")
        if found["n"] == 0:
            problems.append(f"{name} is empty")
    return Outcome.from_problems(problems, f"keys unique and non-null in all four tables ({rows:,} rows)")


@check("04.no_identifiers")
def no_identifiers(ctx: Context) -> Outcome:
    problems: list[str] = []
    silver = _silver(ctx)
    identifiers = ref.identifier_values(silver)
    births = ref.birth_dates(silver)
    for name, table in _tables(ctx).items():
        kinds = {f.name: _kind(f.type) for f in table.delta.schema().fields}
        for column in kinds:
            for pattern, what in IDENTIFIER_NAMES:
                if re.search(pattern, column.lower()):
                    problems.append(f"{name}.{column}: the name marks a direct identifier ({what})")
                    break
        data = _gold(ctx, name)
        if data is None:
            continue
        for column, kind in kinds.items():
            if kind == "string":
                problems += _string_leaks(name, column, data[column], identifiers)
            elif kind == "date" and "patient_id" in kinds and column != "patient_id":
                problems += _birth_date_leak(name, column, data, births)
    return Outcome.from_problems(problems, "no direct identifiers (names, SSN, MRN, phone, street "
                                 "address, birth date, member id) in any gold table")


def _string_leaks(name: str, column: str, values: pa.ChunkedArray,
                  identifiers: dict[str, set[str]]) -> list[str]:
    distinct = {v for v in values.unique().to_pylist() if isinstance(v, str)}
    found = []
    ssn = sorted(v for v in distinct if SSN_VALUE.fullmatch(v.strip()))
    if ssn:
        found.append(f"{name}.{column} holds SSN-like values, e.g. {ssn[0]!r} "
                     f"({len(ssn)} distinct)")
    for kind, known in identifiers.items():
        hits = sorted(distinct & known)
        if len(hits) >= MIN_VALUE_MATCHES:
            found.append(f"{name}.{column} holds patient {kind.replace('_', ' ')} values, e.g. "
                         f"{hits[0]!r} ({len(hits)} distinct values match silver.patients_scd)")
    return found


def _birth_date_leak(name: str, column: str, data: pa.Table, births: dict[str, date]) -> list[str]:
    pairs = [(p, d) for p, d in zip(data["patient_id"].to_pylist(), data[column].to_pylist(), strict=True)
             if d is not None]
    same = sum(1 for p, d in pairs if births.get(p) == d)
    if same >= MIN_VALUE_MATCHES and same * 2 >= len(pairs):
        return [f"{name}.{column} equals the patient's birth date on {same} of {len(pairs)} rows"]
    return []


@check("04.summary_values")
def summary_values(ctx: Context) -> Outcome:
    return _value_check(ctx, ref.SUMMARY, ref.patient_summary, None,
                        "one row per current patient ({rows:,}), every value as recomputed")


@check("04.utilization_values")
def utilization_values(ctx: Context) -> Outcome:
    cols = ["admissions", "discharges", "inpatient_days", "mean_los_days", "median_los_days",
            "ed_visits"]
    return _value_check(ctx, ref.UTILIZATION, ref.utilization, cols,
                        "admissions, discharges, inpatient days, LOS (days) and ED visits match "
                        "on all {rows} facility-months", _explain_los)


@check("04.readmissions")
def readmissions(ctx: Context) -> Outcome:
    cols = ["index_stays", "readmissions_30d", "readmission_rate"]
    observed = _gold(ctx, ref.UTILIZATION)
    if observed is None:
        return Outcome(False, f"{ref.UTILIZATION} is missing — {RUN_LAB}")
    if mismatch := _as_of_mismatch(ctx):
        return Outcome(False, mismatch)
    diff = compare(ref.UTILIZATION, observed, _expected(ctx, ref.UTILIZATION, ref.utilization),
                   cols)
    if diff.ok:
        idx = sum(observed["index_stays"].to_pylist())
        readm = sum(observed["readmissions_30d"].to_pylist())
        return Outcome(True, f"{readm} 30-day readmissions of {idx} index stays "
                             f"({readm / idx:.1%}) match the CMS-style definition" if idx else
                             "readmission counts match (no index stays)")
    return Outcome(False, describe(diff) + _readmission_mistake(ctx, observed, cols))


def _readmission_mistake(ctx: Context, observed: pa.Table, cols: list[str]) -> str:
    """Name the classic mistake the observed numbers reproduce, if any."""
    silver = _silver(ctx)
    variants = (
        ({"window_days": ref.READMISSION_DAYS + 1}, "they match a 31-day window: a readmission "
         "must come at most 30 days after the discharge date (<= 30, not <= 31 or < 32)"),
        ({"transfers_are_index": True}, "they match counting transfers as index stays: a stay "
         "discharged with disposition 'transfer' continues elsewhere and is not an index stay"),
        ({"window_days": ref.READMISSION_DAYS + 1, "transfers_are_index": True},
         "they match a 31-day window AND transfers counted as index stays"),
    )
    for options, why in variants:
        if compare(ref.UTILIZATION, observed, ref.utilization(silver, **options), cols).ok:
            return f" — {why}"
    return ""


@check("04.prevalence_values")
def prevalence_values(ctx: Context) -> Outcome:
    return _value_check(ctx, ref.PREVALENCE, ref.prevalence, None,
                        "patients with an active condition and prevalence per 1,000 match on "
                        "all {rows:,} day-categories", _explain_prevalence)


@check("04.lab_trend_values")
def lab_trend_values(ctx: Context) -> Outcome:
    return _value_check(ctx, ref.LAB_TRENDS, ref.lab_trends, None,
                        "tests, high/low counts, abnormal rate and 7-day rolling rate match on "
                        "all {rows:,} day-tests", _explain_lab)


def _commit_kind(commit: Commit) -> str:
    op = commit.operation
    mode = (commit.parameters.get("mode") or "").strip('"')
    if op == "MERGE":
        return "merge"
    if op.endswith("AS SELECT") or (op == "WRITE" and mode == "Overwrite"):
        return "replace"
    if op in ("WRITE", "STREAMING UPDATE"):
        return "append"
    if op in ("CREATE TABLE", "CREATE OR REPLACE TABLE", "REPLACE TABLE"):
        return "create"
    if op in _MAINTENANCE:
        return "maintenance"
    return "dml"  # UPDATE, DELETE, TRUNCATE, …


@check("04.refresh_pattern")
def refresh_pattern(ctx: Context) -> Outcome:
    problems, shown = [], []
    for name, table in _tables(ctx).items():
        decision = DECISIONS[name]
        data = [(c, _commit_kind(c)) for c in table.history()
                if _commit_kind(c) not in ("create", "maintenance")]
        if not data:
            problems.append(f"{name} has no data-writing commit")
            continue
        last, kind = data[-1]
        if decision == "overwrite" and kind != "replace":
            problems.append(f"{name}: latest write is {last.describe()}; the decision is a full "
                            "overwrite (CREATE OR REPLACE TABLE … AS SELECT / INSERT OVERWRITE)")
        elif decision == "merge":
            merges = [i for i, (_, k) in enumerate(data) if k == "merge"]
            after = [c.describe() for c, k in data[merges[0]:] if k != "merge"] if merges else []
            if not merges:
                problems.append(f"{name}: no MERGE in history (latest write {last.describe()}); "
                                "the decision is MERGE INTO on (facility_id, month_start)")
            elif after:
                problems.append(f"{name}: {', '.join(after[:2])} after the first MERGE; refresh "
                                "it with MERGE only")
        shown.append(f"{name.split('.')[1]} {decision} ({last.operation})")
    return Outcome.from_problems(problems, "; ".join(shown))
