"""Lab 04 — gold analytics. Evidence: the gold tables' schemas, keys, values and history, compared
with values recomputed independently by :mod:`medilake_lab.grader.reference.gold` (DuckDB over the
learner's silver base columns; every derived value recomputed; tolerances stated there)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

import pyarrow as pa

from medilake_lab.grader import Context, Outcome, check
from medilake_lab.grader.commits import Kind
from medilake_lab.grader.delta import Table
from medilake_lab.grader.erasure import made_for_erasure
from medilake_lab.grader.reference import gold as ref
from medilake_lab.grader.reference import silver as reference_silver
from medilake_lab.grader.toolkit import Diff, compare, describe, key_text, naive_utc

#: How the notebook refreshes each table ("overwrite": CREATE OR REPLACE TABLE … AS SELECT,
#: INSERT OVERWRITE or a replaceWhere slice; "merge": MERGE INTO on the table's keys).
DECISIONS: dict[str, str] = {ref.SUMMARY: "overwrite", ref.UTILIZATION: "merge",
                             ref.PREVALENCE: "overwrite", ref.LAB_TRENDS: "overwrite"}
#: Commits that refresh a table in full from a query. A TRUNCATE or a schema-only REPLACE empties
#: it instead, and a RESTORE or CLONE brings back old rows: neither is a refresh (both count as
#: data writes, so on the MERGE table they are flagged after the first MERGE too).
FULL_REFRESH = frozenset({Kind.OVERWRITE, Kind.CREATE_AS_SELECT, Kind.REPLACE_AS_SELECT})
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


# ---------------------------------------------------------------- shared state of one grading run


def _silver(ctx: Context) -> ref.Silver:
    return ctx.memo("04.silver", lambda: ref.load_silver(ctx.table, reference_silver.as_of_date(ctx.data),
                                                         ctx.hint))


def _expected(ctx: Context, name: str, build: Callable[[ref.Silver], pa.Table]) -> pa.Table:
    return ctx.memo(("04.expected", name), lambda: build(_silver(ctx)))


def _gold(ctx: Context, name: str) -> pa.Table:
    """A gold table's rows (timestamps naive UTC, read once per run); MissingTables when absent."""
    table = ctx.require(name)
    return ctx.memo(("04.gold", name), lambda: naive_utc(table.to_arrow()))


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


def _compare(name: str, observed: pa.Table, expected: pa.Table, columns: list[str] | None = None) -> Diff:
    """Observed vs expected rows of a gold table, matched on its keys (:data:`ref.KEYS`); ``columns``
    default to every contract column that is neither a key nor a label. Doubles agree within
    :data:`ref.REL_TOL` (relative), lists compare sorted."""
    keys = ref.KEYS[name]
    columns = columns or [c for c, _ in ref.CONTRACT[name] if c not in keys and c not in ref.LABELS]
    return compare(name, observed, expected, keys, columns, kinds=dict(ref.CONTRACT[name]),
                   rel_tol=ref.REL_TOL)


def _as_of_mismatch(ctx: Context) -> str:
    """A finding when gold was built for another as-of date than the data's (else "")."""
    if ctx.table(ref.SUMMARY) is None:
        return ""
    summary = _gold(ctx, ref.SUMMARY)
    if "as_of_date" not in summary.column_names:
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
    if mismatch := _as_of_mismatch(ctx):
        return Outcome(False, mismatch)
    diff = _compare(name, observed, _expected(ctx, name, build), columns)
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
    return ctx.tables_exist(ref.GOLD_TABLES, f"all {len(ref.GOLD_TABLES)} gold tables are Delta tables")


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
                            f"e.g. {key_text(key)} × {dup['n']}")
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
    if mismatch := _as_of_mismatch(ctx):
        return Outcome(False, mismatch)
    diff = _compare(ref.UTILIZATION, observed, _expected(ctx, ref.UTILIZATION, ref.utilization), cols)
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
        if _compare(ref.UTILIZATION, observed, ref.utilization(silver, **options), cols).ok:
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


@check("04.refresh_pattern")
def refresh_pattern(ctx: Context) -> Outcome:
    """Each gold table's data-writing commits follow its refresh decision (:data:`DECISIONS`).
    Commits made for a recorded erasure request (lab 07's DELETE and keyed MERGE refresh:
    :func:`medilake_lab.grader.erasure.made_for_erasure`) are lab 07's to judge, not this decision."""
    problems, shown = [], []
    requests = ctx.erasure_requests()
    for name, table in _tables(ctx).items():
        decision = DECISIONS[name]
        data = [c for c in table.history() if c.changes_data and not made_for_erasure(c, requests)]
        if not data:
            problems.append(f"{name} has no data-writing commit")
            continue
        last = data[-1]
        if decision == "overwrite" and last.kind not in FULL_REFRESH:
            problems.append(f"{name}: latest write is {last.describe()}; the decision is a full "
                            "overwrite (CREATE OR REPLACE TABLE … AS SELECT / INSERT OVERWRITE)")
        elif decision == "merge":
            merges = [i for i, c in enumerate(data) if c.kind is Kind.MERGE]
            after = [c.describe() for c in data[merges[0]:] if c.kind is not Kind.MERGE] if merges else []
            if not merges:
                problems.append(f"{name}: no MERGE in history (latest write {last.describe()}); "
                                "the decision is MERGE INTO on (facility_id, month_start)")
            elif after:
                problems.append(f"{name}: {', '.join(after[:2])} after the first MERGE; refresh "
                                "it with MERGE only")
        shown.append(f"{name.split('.')[1]} {decision} ({last.operation})")
    return Outcome.from_problems(problems, "; ".join(shown))
