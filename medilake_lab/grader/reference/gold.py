"""Independent gold expectations, recomputed with DuckDB from the learner's SILVER tables.

The lab 04 grader compares a learner's gold tables with these results.

Input: silver, not the raw feeds
    The rows come from the learner's own ``silver.*`` tables (read without a JVM through
    :meth:`medilake_lab.grader.delta.Table.query`). Gold is built from silver, and silver is graded by
    lab 02 against the raw feeds, so reading silver grades lab 04's own logic on exactly the rows
    the learner's gold was built from: a silver mistake is reported once, by lab 02, instead of
    failing every gold check for a reason the learner cannot see in lab 04. Only *base* columns are
    read; every derived value (length of stay, abnormal flag, active medication) is recomputed
    here from timestamps, values and dates, so a wrong derived silver column cannot hide. A
    patient erased by lab 07 is gone from silver, so from these expectations too (no raw read
    here: lab 02 checks silver against the raw feeds with the erasure honoured).

Definitions (the notebook ``solutions/04_gold_analytics.ipynb`` states the same ones)
    as-of date
        ``as_of`` (a date): the snapshot day; default the data's as-of date
        (:func:`medilake_lab.grader.reference.silver.as_of_date`).
    reporting window
        ``[window_start, as_of]`` in days, ``window_start`` = the earliest admission date in
        ``silver.encounters_clean``. Monthly and daily tables cover this window only.
    length of stay (LOS), in days
        calendar days from the admission date to the discharge date (UTC dates), 0 for a
        same-day stay — the lab 02 definition of ``length_of_stay_days``.
    30-day readmission (adapted from the CMS Hospital-Wide All-Cause Unplanned Readmission
    measure, HWR; CMS/Yale CORE measure methodology)
        *index stay*: an inpatient encounter discharged within the window whose
        ``discharge_disposition`` is neither ``'expired'`` (discharged alive) nor ``'transfer'``
        (transferred to another acute-care facility: the stay continues elsewhere).
        *readmission*: a later inpatient encounter of the same patient, at any facility, that is
        unplanned (``admission_type`` is not ``'elective'``: the data marks planned admissions
        as elective), admitted after the index discharge and at most 30 days after the discharge
        date. An index stay counts once however many readmissions follow it; it is attributed to
        the index stay's facility and discharge month. The CMS measure also excludes discharges
        against medical advice, requires 30 days of follow-up and risk-adjusts; we do not.
    point prevalence
        patients with the condition active on the day — a diagnosis of the ICD-10-CM category
        (the code's first three characters) with ``onset_date <= day`` and (``resolved_date``
        null or ``resolved_date >= day``) — per 1,000 patients of the population. Population =
        the current patients (``is_current`` rows of ``silver.patients_scd``), the same for every
        day; only diagnoses of current patients count, so prevalence never exceeds 1,000.
    abnormal lab result
        ``'H'`` when ``value > ref_high``, ``'L'`` when ``value < ref_low``, ``'N'`` within the
        closed range, no flag when a bound is missing (such results are not counted as tests).

Tolerances: counts and keys must match exactly; doubles (means, medians, rates, prevalence) within
``1e-6`` relative (:data:`REL_TOL`), which absorbs summation order only.

Known mistakes: :func:`utilization` takes ``window_days`` and ``transfers_are_index`` so the
grader can recognise a 31-day window or transfers counted as index stays and say so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import duckdb
import pyarrow as pa

from medilake_lab.errors import SilverInputError
from medilake_lab.grader.context import build_hint
from medilake_lab.grader.delta import Table
from medilake_lab.grader.toolkit import connect, naive_utc, one

SUMMARY = "gold.patient_clinical_summary"
UTILIZATION = "gold.hospital_utilization_metrics"
PREVALENCE = "gold.disease_prevalence_daily"
LAB_TRENDS = "gold.lab_abnormal_trends"
GOLD_TABLES: tuple[str, ...] = (SUMMARY, UTILIZATION, PREVALENCE, LAB_TRENDS)

#: Column → kind (``string``, ``int`` (any integer width), ``double``, ``date``, ``boolean``,
#: ``list<string>``) of every gold table, in contract order.
CONTRACT: dict[str, tuple[tuple[str, str], ...]] = {
    SUMMARY: (("patient_id", "string"), ("sex", "string"), ("age_band", "string"),
              ("state", "string"), ("zip3", "string"), ("insurance_payer", "string"),
              ("encounter_count", "int"), ("inpatient_admissions", "int"), ("ed_visits", "int"),
              ("last_encounter_date", "date"), ("chronic_conditions", "list<string>"),
              ("chronic_condition_count", "int"), ("active_medications", "int"),
              ("abnormal_labs_90d", "int"), ("readmitted_30d", "boolean"),
              ("as_of_date", "date")),
    UTILIZATION: (("facility_id", "string"), ("facility_name", "string"),
                  ("month_start", "date"), ("admissions", "int"), ("discharges", "int"),
                  ("inpatient_days", "int"), ("mean_los_days", "double"),
                  ("median_los_days", "double"), ("ed_visits", "int"), ("index_stays", "int"),
                  ("readmissions_30d", "int"), ("readmission_rate", "double")),
    PREVALENCE: (("day", "date"), ("icd10_category", "string"), ("patients", "int"),
                 ("population", "int"), ("prevalence_per_1000", "double")),
    LAB_TRENDS: (("result_date", "date"), ("loinc_code", "string"), ("test_name", "string"),
                 ("tests", "int"), ("high_count", "int"), ("low_count", "int"),
                 ("abnormal_rate", "double"), ("rolling_7d_tests", "int"),
                 ("rolling_7d_abnormal_rate", "double")),
}
#: The grain of each gold table: these columns identify a row.
KEYS: dict[str, tuple[str, ...]] = {
    SUMMARY: ("patient_id",),
    UTILIZATION: ("facility_id", "month_start"),
    PREVALENCE: ("day", "icd10_category"),
    LAB_TRENDS: ("result_date", "loinc_code"),
}
#: The silver tables each gold table is computed from (also drawn by docs/make_architecture.py).
LINEAGE: dict[str, tuple[str, ...]] = {
    SUMMARY: ("silver.patients_scd", "silver.encounters_clean", "silver.diagnoses_clean",
              "silver.lab_results_clean", "silver.medications_clean"),
    UTILIZATION: ("silver.encounters_clean",),
    PREVALENCE: ("silver.patients_scd", "silver.diagnoses_clean"),
    LAB_TRENDS: ("silver.lab_results_clean",),
}
#: Descriptive labels that are required but not compared (a facility or test may carry several
#: spellings; which one a learner shows is not a clinical metric).
LABELS: frozenset[str] = frozenset({"facility_name", "test_name"})

#: Age bands (upper bound exclusive, label); the last band is open. 85+ also covers HIPAA Safe
#: Harbor's rule that ages over 89 be aggregated.
AGE_BANDS: tuple[tuple[int, str], ...] = ((18, "0-17"), (35, "18-34"), (50, "35-49"),
                                          (65, "50-64"), (75, "65-74"), (85, "75-84"))
OPEN_BAND = "85+"
READMISSION_DAYS = 30
ABNORMAL_LOOKBACK_DAYS = 90
ROLLING_DAYS = 7
REL_TOL = 1e-6

#: Silver columns read (base columns only: derived ones are recomputed).
SILVER_COLUMNS: dict[str, tuple[str, ...]] = {
    "silver.patients_scd": ("patient_id", "mrn", "first_name", "last_name", "sex", "birth_date",
                            "address_line", "state", "zip", "phone", "insurance_payer",
                            "insurance_member_id", "is_current"),
    "silver.encounters_clean": ("encounter_id", "patient_id", "encounter_class",
                                "admission_type", "admit_ts", "discharge_ts", "facility_id",
                                "facility_name", "discharge_disposition"),
    "silver.diagnoses_clean": ("diagnosis_id", "encounter_id", "patient_id", "icd10_code",
                               "is_chronic", "onset_date", "resolved_date"),
    "silver.lab_results_clean": ("lab_result_id", "patient_id", "loinc_code", "test_name",
                                 "value", "ref_low", "ref_high", "result_ts"),
    "silver.medications_clean": ("medication_id", "patient_id", "start_date", "end_date"),
}


@dataclass(frozen=True)
class Silver:
    """The silver rows gold is computed from, as arrow tables (columns of
    :data:`SILVER_COLUMNS`; timestamps naive UTC ``timestamp[us]``), plus the as-of date."""

    tables: dict[str, pa.Table]
    as_of: date

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection (UTC) with views ``patients``, ``encounters``, ``diagnoses``,
        ``labs``, ``medications``, ``current_patients`` and the macros of the definitions."""
        con = connect()
        short = {"silver.patients_scd": "patients", "silver.encounters_clean": "encounters",
                 "silver.diagnoses_clean": "diagnoses", "silver.lab_results_clean": "labs",
                 "silver.medications_clean": "medications"}
        for name, table in self.tables.items():
            con.register(f"_{short[name]}", table)
            con.execute(f"CREATE TEMP VIEW {short[name]} AS SELECT * FROM _{short[name]}")
        con.execute("CREATE TEMP VIEW current_patients AS SELECT * FROM patients WHERE is_current")
        as_of = f"DATE '{self.as_of.isoformat()}'"
        con.execute(f"CREATE TEMP MACRO as_of() AS {as_of}")
        start = one(con, "SELECT min(CAST(admit_ts AS DATE)) FROM encounters")[0]
        start_sql = f"DATE '{start.isoformat()}'" if start else "CAST(NULL AS DATE)"
        con.execute(f"CREATE TEMP MACRO window_start() AS {start_sql}")
        return con


def load_silver(table: Callable[[str], Table | None], as_of: date,
                hint: Callable[[str], str] = build_hint) -> Silver:
    """Read the silver base columns lab 04 needs.

    Parameters
    ----------
    table: ``name → Table`` opener returning None for a missing table (e.g.
        :meth:`medilake_lab.grader.Context.table`).
    hint: ``name → how to build it`` for the error message (e.g.
        :meth:`medilake_lab.grader.Context.hint`).
    as_of: the as-of date of the snapshot.

    Raises
    ------
    SilverInputError: a silver table is missing or lacks one of :data:`SILVER_COLUMNS`.
    """
    tables = {}
    for name, columns in SILVER_COLUMNS.items():
        t = table(name)
        if t is None:
            raise SilverInputError(f"{name} is missing — {hint(name)}")
        absent = [c for c in columns if c not in t.columns]
        if absent:
            raise SilverInputError(f"{name} lacks {', '.join(absent)} — {hint(name)}")
        tables[name] = naive_utc(t.to_arrow(list(columns)))
    return Silver(tables, as_of)


def reporting_window(silver: Silver) -> tuple[date, date]:
    """``(window_start, as_of)``: the earliest admission date in silver.encounters_clean and the
    as-of date. Raises SilverInputError when there are no encounters."""
    start = one(silver.connect(), "SELECT window_start()")[0]
    if start is None:
        raise SilverInputError(f"silver.encounters_clean is empty — {build_hint('silver.encounters_clean')}")
    return start, silver.as_of


_INDEX_SQL = """
    WITH stays AS (
        SELECT *, CAST(admit_ts AS DATE) AS admit_date, CAST(discharge_ts AS DATE) AS discharge_date
        FROM encounters WHERE encounter_class = 'inpatient'),
    idx AS (
        SELECT * FROM stays
        WHERE discharge_ts IS NOT NULL
          AND discharge_date BETWEEN window_start() AND as_of()
          AND discharge_disposition IS DISTINCT FROM 'expired'
          {transfer_rule})
    SELECT idx.encounter_id, idx.patient_id, idx.facility_id, idx.discharge_date,
           EXISTS (SELECT 1 FROM stays r
                   WHERE r.patient_id = idx.patient_id AND r.encounter_id <> idx.encounter_id
                     AND r.admission_type IS DISTINCT FROM 'elective'
                     AND r.admit_ts > idx.discharge_ts
                     AND date_diff('day', idx.discharge_date, r.admit_date) <= {days}) AS readmitted
    FROM idx
"""


def index_stays(silver: Silver, window_days: int = READMISSION_DAYS,
                transfers_are_index: bool = False) -> pa.Table:
    """Index stays of the 30-day readmission measure (module docstring), with their outcome.

    Parameters
    ----------
    window_days: the readmission window in days (30 is right; other values recognise mistakes).
    transfers_are_index: count stays discharged with ``'transfer'`` as index stays (a mistake).

    Returns
    -------
    pa.Table: ``encounter_id``, ``patient_id``, ``facility_id`` (string), ``discharge_date``
    (date), ``readmitted`` (bool: an unplanned inpatient admission followed within the window).
    """
    con = silver.connect()
    rule = "" if transfers_are_index else \
        "AND discharge_disposition IS DISTINCT FROM 'transfer'"
    return con.sql(_INDEX_SQL.format(transfer_rule=rule, days=int(window_days))).to_arrow_table()


def utilization(silver: Silver, window_days: int = READMISSION_DAYS,
                transfers_are_index: bool = False) -> pa.Table:
    """Expected ``gold.hospital_utilization_metrics``: one row per facility and calendar month.

    Rows: every facility of silver.encounters_clean × every month from the month of
    ``window_start`` to the month of ``as_of`` (zeros where nothing happened).

    Returns
    -------
    pa.Table: ``facility_id`` (string), ``facility_name`` (string), ``month_start`` (date, first
    day of the month), ``admissions`` (inpatient encounters admitted in the month),
    ``discharges`` (inpatient encounters discharged in the month), ``inpatient_days`` (sum of
    their LOS, days), ``mean_los_days`` / ``median_los_days`` (double, days, over those
    discharges; null without discharges; the median interpolates between the middle two),
    ``ed_visits`` (emergency-class encounters admitted in the month), ``index_stays``,
    ``readmissions_30d`` (index stays discharged in the month followed by a readmission),
    ``readmission_rate`` (double, readmissions_30d / index_stays, a fraction 0–1; null without
    index stays). Counts are int64. Events after ``as_of`` are not counted.
    """
    con = silver.connect()
    con.register("idx", index_stays(silver, window_days, transfers_are_index))
    return con.sql("""
        WITH e AS (
            SELECT *, CAST(admit_ts AS DATE) AS admit_date,
                   CAST(discharge_ts AS DATE) AS discharge_date FROM encounters),
        facilities AS (
            SELECT facility_id, max(facility_name) AS facility_name FROM e
            WHERE facility_id IS NOT NULL GROUP BY facility_id),
        months AS (
            SELECT CAST(m AS DATE) AS month_start
            FROM generate_series(CAST(date_trunc('month', window_start()) AS TIMESTAMP),
                                 CAST(date_trunc('month', as_of()) AS TIMESTAMP),
                                 INTERVAL 1 MONTH) AS g(m)),
        adm AS (
            SELECT facility_id, date_trunc('month', admit_date) AS month_start,
                   count(*) FILTER (WHERE encounter_class = 'inpatient') AS admissions,
                   count(*) FILTER (WHERE encounter_class = 'emergency') AS ed_visits
            FROM e WHERE admit_date BETWEEN window_start() AND as_of() GROUP BY ALL),
        dis AS (
            SELECT facility_id, date_trunc('month', discharge_date) AS month_start,
                   count(*) AS discharges,
                   sum(date_diff('day', admit_date, discharge_date)) AS inpatient_days,
                   avg(date_diff('day', admit_date, discharge_date)) AS mean_los_days,
                   median(date_diff('day', admit_date, discharge_date)) AS median_los_days
            FROM e WHERE encounter_class = 'inpatient' AND discharge_ts IS NOT NULL
              AND discharge_date BETWEEN window_start() AND as_of() GROUP BY ALL),
        rea AS (
            SELECT facility_id, date_trunc('month', discharge_date) AS month_start,
                   count(*) AS index_stays, count(*) FILTER (WHERE readmitted) AS readmissions_30d
            FROM idx GROUP BY ALL)
        SELECT f.facility_id, f.facility_name, m.month_start,
               coalesce(adm.admissions, 0) AS admissions,
               coalesce(dis.discharges, 0) AS discharges,
               CAST(coalesce(dis.inpatient_days, 0) AS BIGINT) AS inpatient_days,
               CAST(dis.mean_los_days AS DOUBLE) AS mean_los_days,
               CAST(dis.median_los_days AS DOUBLE) AS median_los_days,
               coalesce(adm.ed_visits, 0) AS ed_visits,
               coalesce(rea.index_stays, 0) AS index_stays,
               coalesce(rea.readmissions_30d, 0) AS readmissions_30d,
               rea.readmissions_30d / rea.index_stays AS readmission_rate
        FROM facilities f CROSS JOIN months m
        LEFT JOIN adm USING (facility_id, month_start)
        LEFT JOIN dis USING (facility_id, month_start)
        LEFT JOIN rea USING (facility_id, month_start)
        ORDER BY facility_id, month_start
    """).to_arrow_table()


def _band_sql(age: str) -> str:
    whens = " ".join(f"WHEN {age} < {upper} THEN '{label}'" for upper, label in AGE_BANDS)
    return f"CASE WHEN {age} IS NULL THEN NULL {whens} ELSE '{OPEN_BAND}' END"


def patient_summary(silver: Silver) -> pa.Table:
    """Expected ``gold.patient_clinical_summary``: one row per current patient.

    Returns
    -------
    pa.Table: ``patient_id``, ``sex``, ``age_band`` (age in whole years on ``as_of`` from
    ``birth_date``, banded by :data:`AGE_BANDS`), ``state``, ``zip3`` (first 3 ZIP characters),
    ``insurance_payer`` (strings); ``encounter_count``, ``inpatient_admissions``, ``ed_visits``
    (encounters admitted on or before ``as_of``: all, inpatient, emergency; int64);
    ``last_encounter_date`` (date, null without encounters); ``chronic_conditions``
    (list<string>, sorted distinct ICD-10-CM categories of chronic diagnoses active on
    ``as_of``; empty list when none) and ``chronic_condition_count`` (its length);
    ``active_medications`` (medications with ``start_date <= as_of`` and ``end_date`` null or
    after ``as_of``); ``abnormal_labs_90d`` (results flagged H or L in the 90 days ending on
    ``as_of``, both ends included); ``readmitted_30d`` (bool: an index stay of the patient was
    followed by a 30-day readmission); ``as_of_date`` (date).
    """
    con = silver.connect()
    con.register("idx", index_stays(silver))
    age = ("(year(as_of()) - year(p.birth_date) - CASE WHEN month(as_of()) * 100 + day(as_of()) "
           "< month(p.birth_date) * 100 + day(p.birth_date) THEN 1 ELSE 0 END)")
    return con.sql(f"""
        WITH enc AS (
            SELECT patient_id, count(*) AS encounter_count,
                   count(*) FILTER (WHERE encounter_class = 'inpatient') AS inpatient_admissions,
                   count(*) FILTER (WHERE encounter_class = 'emergency') AS ed_visits,
                   max(CAST(admit_ts AS DATE)) AS last_encounter_date
            FROM encounters WHERE CAST(admit_ts AS DATE) <= as_of() GROUP BY patient_id),
        chronic AS (
            SELECT patient_id, list_sort(list_distinct(list(left(icd10_code, 3)))) AS conditions
            FROM diagnoses
            WHERE is_chronic AND onset_date <= as_of()
              AND (resolved_date IS NULL OR resolved_date >= as_of())
            GROUP BY patient_id),
        meds AS (
            SELECT patient_id, count(*) AS active_medications FROM medications
            WHERE start_date <= as_of() AND (end_date IS NULL OR end_date > as_of())
            GROUP BY patient_id),
        labs90 AS (
            SELECT patient_id, count(*) AS abnormal_labs_90d FROM labs
            WHERE CAST(result_ts AS DATE) BETWEEN as_of() - INTERVAL {ABNORMAL_LOOKBACK_DAYS - 1} DAY
                                              AND as_of()
              AND (value > ref_high OR value < ref_low)
            GROUP BY patient_id),
        readm AS (SELECT patient_id, bool_or(readmitted) AS readmitted FROM idx GROUP BY 1)
        SELECT p.patient_id, p.sex, {_band_sql(age)} AS age_band, p.state,
               left(p.zip, 3) AS zip3, p.insurance_payer,
               coalesce(enc.encounter_count, 0) AS encounter_count,
               coalesce(enc.inpatient_admissions, 0) AS inpatient_admissions,
               coalesce(enc.ed_visits, 0) AS ed_visits,
               enc.last_encounter_date,
               coalesce(chronic.conditions, CAST([] AS VARCHAR[])) AS chronic_conditions,
               CAST(len(coalesce(chronic.conditions, CAST([] AS VARCHAR[]))) AS BIGINT)
                   AS chronic_condition_count,
               coalesce(meds.active_medications, 0) AS active_medications,
               coalesce(labs90.abnormal_labs_90d, 0) AS abnormal_labs_90d,
               coalesce(readm.readmitted, false) AS readmitted_30d,
               as_of() AS as_of_date
        FROM current_patients p
        LEFT JOIN enc USING (patient_id) LEFT JOIN chronic USING (patient_id)
        LEFT JOIN meds USING (patient_id) LEFT JOIN labs90 USING (patient_id)
        LEFT JOIN readm USING (patient_id)
        ORDER BY p.patient_id
    """).to_arrow_table()


def prevalence(silver: Silver) -> pa.Table:
    """Expected ``gold.disease_prevalence_daily``: one row per day of the reporting window and
    ICD-10-CM category with at least one patient (module docstring: point prevalence).

    Returns
    -------
    pa.Table: ``day`` (date), ``icd10_category`` (string, 3 characters), ``patients`` (int64,
    distinct current patients with the condition active that day), ``population`` (int64,
    current patients), ``prevalence_per_1000`` (double, patients × 1000 / population).
    """
    con = silver.connect()
    return con.sql("""
        WITH days AS (
            SELECT CAST(d AS DATE) AS day
            FROM generate_series(CAST(window_start() AS TIMESTAMP), CAST(as_of() AS TIMESTAMP),
                                 INTERVAL 1 DAY) AS g(d)),
        spans AS (
            SELECT DISTINCT d.patient_id, left(d.icd10_code, 3) AS icd10_category,
                   greatest(d.onset_date, window_start()) AS first_day,
                   least(coalesce(d.resolved_date, as_of()), as_of()) AS last_day
            FROM diagnoses d SEMI JOIN current_patients p ON d.patient_id = p.patient_id
            WHERE d.onset_date IS NOT NULL),
        counts AS (
            SELECT days.day, s.icd10_category, count(DISTINCT s.patient_id) AS patients
            FROM spans s JOIN days ON days.day BETWEEN s.first_day AND s.last_day
            GROUP BY ALL),
        pop AS (SELECT count(*) AS population FROM current_patients)
        SELECT day, icd10_category, patients, population,
               1000 * patients / population AS prevalence_per_1000
        FROM counts CROSS JOIN pop ORDER BY day, icd10_category
    """).to_arrow_table()


def lab_trends(silver: Silver) -> pa.Table:
    """Expected ``gold.lab_abnormal_trends``: one row per result day of the reporting window and
    LOINC code with at least one flagged result.

    Returns
    -------
    pa.Table: ``result_date`` (date, UTC), ``loinc_code``, ``test_name`` (strings), ``tests``
    (results with an H/L/N flag), ``high_count``, ``low_count`` (int64), ``abnormal_rate``
    (double, (high + low) / tests), ``rolling_7d_tests`` (int64, tests over the 7 calendar days
    ending on ``result_date``, same LOINC, days inside the window only) and
    ``rolling_7d_abnormal_rate`` (double, abnormal results / tests over those 7 days — a ratio
    of sums, not a mean of daily rates).
    """
    con = silver.connect()
    return con.sql(f"""
        WITH flagged AS (
            SELECT loinc_code, test_name, CAST(result_ts AS DATE) AS result_date,
                   CASE WHEN value > ref_high THEN 'H' WHEN value < ref_low THEN 'L'
                        WHEN ref_low IS NULL OR ref_high IS NULL THEN NULL ELSE 'N' END AS flag
            FROM labs),
        daily AS (
            SELECT result_date, loinc_code, max(test_name) AS test_name, count(*) AS tests,
                   count(*) FILTER (WHERE flag = 'H') AS high_count,
                   count(*) FILTER (WHERE flag = 'L') AS low_count
            FROM flagged
            WHERE flag IS NOT NULL AND result_date BETWEEN window_start() AND as_of()
            GROUP BY ALL),
        rolled AS (
            SELECT *, sum(tests) OVER w AS rolling_7d_tests,
                   sum(high_count + low_count) OVER w AS rolling_abnormal
            FROM daily
            WINDOW w AS (PARTITION BY loinc_code ORDER BY result_date
                         RANGE BETWEEN INTERVAL {ROLLING_DAYS - 1} DAY PRECEDING AND CURRENT ROW))
        SELECT result_date, loinc_code, test_name, tests, high_count, low_count,
               (high_count + low_count) / tests AS abnormal_rate,
               CAST(rolling_7d_tests AS BIGINT) AS rolling_7d_tests,
               rolling_abnormal / rolling_7d_tests AS rolling_7d_abnormal_rate
        FROM rolled ORDER BY result_date, loinc_code
    """).to_arrow_table()


def identifier_values(silver: Silver) -> dict[str, set[str]]:
    """Direct identifiers of every patient version in silver.patients_scd, by kind: ``mrn``,
    ``name`` (first, last, "first last" and "last, first"), ``phone``, ``address``
    (address_line) and ``member_id`` (insurance_member_id). Used to spot identifiers carried
    into gold under another column name."""
    con = silver.connect()
    rows = con.execute("""
        SELECT mrn, first_name, last_name, first_name || ' ' || last_name,
               last_name || ', ' || first_name, phone, address_line, insurance_member_id
        FROM patients""").fetchall()
    kinds: dict[str, set[str]] = {k: set() for k in ("mrn", "name", "phone", "address",
                                                    "member_id")}
    for mrn, first, last, full, inverted, phone, address, member in rows:
        for kind, values in (("mrn", (mrn,)), ("name", (first, last, full, inverted)),
                             ("phone", (phone,)), ("address", (address,)),
                             ("member_id", (member,))):
            kinds[kind].update(v for v in values if v)
    return kinds


def birth_dates(silver: Silver) -> dict[str, date]:
    """``patient_id → birth_date`` of the current patient versions (non-null only)."""
    rows = silver.connect().execute(
        "SELECT patient_id, birth_date FROM current_patients WHERE birth_date IS NOT NULL"
    ).fetchall()
    return dict(rows)
