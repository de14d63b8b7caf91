"""Lab 04 on a fixture warehouse without a JVM: the four gold tables and realistic mistakes.

:func:`solve` builds the gold tables on a copy of the fast silver warehouse
(:func:`fast.conftest.silver_warehouse`) with the refresh pattern of
``solutions/04_gold_analytics.ipynb``, each commit in Spark's shape (:mod:`fast.deltafix`):
CREATE OR REPLACE TABLE … AS SELECT for the patient summary and prevalence, CREATE TABLE then
INSERT OVERWRITE for the lab trends, CREATE TABLE then MERGE for utilization.

Where the values come from: utilization is computed here by :func:`utilization` (DuckDB; the
notebook's SQL as ported in tests/gold_variants.py, with the knobs of its mistakes); the other
three tables are the grader reference's own results for these silver tables
(:mod:`medilake_lab.grader.reference.gold`) — the silver inputs come from the raw feeds, so the
fixture exercises the grader's reading, typing and comparison of Delta tables, and each mistake
below changes values the way the mistake would. The mistakes are those of tests/gold_variants.py
and tests/test_lab04.py (the Spark tier).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pyarrow as pa

from fast import deltafix as dx
from fast.medallion import utc
from medilake_lab.grader.reference import gold as ref
from medilake_lab.grader.reference import silver as reference_silver

SUMMARY, UTILIZATION, PREVALENCE, LAB_TRENDS = ref.SUMMARY, ref.UTILIZATION, ref.PREVALENCE, ref.LAB_TRENDS
LOS_DAYS = "date_diff('day', CAST(admit_ts AS DATE), CAST(discharge_ts AS DATE))"
LOS_HOURS = "(epoch(discharge_ts) - epoch(admit_ts)) / 3600"
#: A fake SSN built from the patient number: 9xx area numbers are never issued as SSNs.
FAKE_SSN = "'900-' || lpad(substr(patient_id, -6, 2), 2, '0') || '-' || substr(patient_id, -4, 4)"
OVERWRITE = "CREATE OR REPLACE TABLE AS SELECT"


def path(warehouse: Path, name: str) -> Path:
    """Directory of ``schema.table`` in ``warehouse``."""
    return dx.table_dir(warehouse, name)


def silver(warehouse: Path, data: Path) -> ref.Silver:
    """The silver base columns gold is computed from (naive UTC timestamps), as of the data's
    as-of date."""
    tables = {name: ref.naive_utc(dx.read(path(warehouse, name)).select(list(columns)))
              for name, columns in ref.SILVER_COLUMNS.items()}
    return ref.Silver(tables, reference_silver.as_of_date(data))


def _contract(name: str, rows: pa.Table) -> pa.Table:
    """Rows in contract column order, extra columns after them."""
    first = [c for c, _ in ref.CONTRACT[name]]
    return rows.select(first + [c for c in rows.column_names if c not in first])


def utilization(inputs: ref.Silver, *, los: str = LOS_DAYS, window_days: int = 30,
                transfers_are_index: bool = False) -> pa.Table:
    """gold.hospital_utilization_metrics rows with a chosen LOS expression (SQL over admit_ts and
    discharge_ts), readmission window and transfer rule (the defaults are right)."""
    con = inputs.connect()
    transfer = "" if transfers_are_index else "AND discharge_disposition IS DISTINCT FROM 'transfer'"
    rows = con.sql(f"""
        WITH stays AS (
            SELECT *, CAST(admit_ts AS DATE) AS admit_date, CAST(discharge_ts AS DATE) AS discharge_date
            FROM encounters WHERE encounter_class = 'inpatient'),
        idx AS (SELECT * FROM stays WHERE discharge_date BETWEEN window_start() AND as_of()
                AND discharge_disposition IS DISTINCT FROM 'expired' {transfer}),
        readm AS (
            SELECT i.encounter_id, i.facility_id, i.discharge_date, count(r.encounter_id) > 0 AS readmitted
            FROM idx i LEFT JOIN stays r
              ON r.patient_id = i.patient_id AND r.encounter_id <> i.encounter_id
             AND r.admission_type IS DISTINCT FROM 'elective' AND r.admit_ts > i.discharge_ts
             AND date_diff('day', i.discharge_date, r.admit_date) <= {window_days}
            GROUP BY ALL),
        e AS (SELECT *, CAST(admit_ts AS DATE) AS admit_date, CAST(discharge_ts AS DATE) AS discharge_date,
                     {los} AS los FROM encounters),
        f AS (SELECT facility_id, max(facility_name) AS facility_name FROM e
              WHERE facility_id IS NOT NULL GROUP BY 1),
        m AS (SELECT CAST(unnest(generate_series(CAST(date_trunc('month', window_start()) AS TIMESTAMP),
                                                 CAST(date_trunc('month', as_of()) AS TIMESTAMP),
                                                 INTERVAL 1 MONTH)) AS DATE) AS month_start),
        adm AS (SELECT facility_id, CAST(date_trunc('month', admit_date) AS DATE) AS month_start,
                       count(*) FILTER (WHERE encounter_class = 'inpatient') AS admissions,
                       count(*) FILTER (WHERE encounter_class = 'emergency') AS ed_visits
                FROM e WHERE admit_date BETWEEN window_start() AND as_of() GROUP BY ALL),
        dis AS (SELECT facility_id, CAST(date_trunc('month', discharge_date) AS DATE) AS month_start,
                       count(*) AS discharges, sum(los) AS inpatient_days, avg(los) AS mean_los,
                       median(los) AS median_los
                FROM e WHERE encounter_class = 'inpatient'
                         AND discharge_date BETWEEN window_start() AND as_of() GROUP BY ALL),
        rea AS (SELECT facility_id, CAST(date_trunc('month', discharge_date) AS DATE) AS month_start,
                       count(*) AS index_stays, count(*) FILTER (WHERE readmitted) AS readmissions_30d
                FROM readm GROUP BY ALL)
        SELECT f.facility_id, f.facility_name, m.month_start,
               coalesce(admissions, 0) AS admissions, coalesce(discharges, 0) AS discharges,
               CAST(coalesce(inpatient_days, 0) AS BIGINT) AS inpatient_days,
               CAST(mean_los AS DOUBLE) AS mean_los_days, CAST(median_los AS DOUBLE) AS median_los_days,
               coalesce(ed_visits, 0) AS ed_visits, coalesce(index_stays, 0) AS index_stays,
               coalesce(readmissions_30d, 0) AS readmissions_30d,
               readmissions_30d / index_stays AS readmission_rate
        FROM f CROSS JOIN m
        LEFT JOIN adm USING (facility_id, month_start)
        LEFT JOIN dis USING (facility_id, month_start)
        LEFT JOIN rea USING (facility_id, month_start)
        ORDER BY facility_id, month_start""").to_arrow_table()
    return _contract(UTILIZATION, rows)


def merge_utilization(warehouse: Path, rows: pa.Table) -> int:
    """MERGE ``rows`` into gold.hospital_utilization_metrics on (facility_id, month_start):
    update matched, insert new, delete keys no longer produced (the notebook's pattern)."""
    return dx.merge(path(warehouse, UTILIZATION), rows, "t.facility_id = s.facility_id AND t.month_start = "
                    "s.month_start", lambda m: m.when_matched_update_all().when_not_matched_insert_all()
                    .when_not_matched_by_source_delete())


def solve(warehouse: Path, data: Path) -> None:
    """Lab 04's solution on a warehouse holding lab 02's silver tables."""
    inputs = silver(warehouse, data)
    for name, build in ((SUMMARY, ref.patient_summary), (PREVALENCE, ref.prevalence)):
        dx.write(path(warehouse, name), _contract(name, build(inputs)), "overwrite", operation=OVERWRITE)
    trends = _contract(LAB_TRENDS, ref.lab_trends(inputs))
    dx.create_empty(path(warehouse, LAB_TRENDS), trends.schema)
    dx.write(path(warehouse, LAB_TRENDS), trends, "overwrite")
    rows = utilization(inputs)
    dx.create_empty(path(warehouse, UTILIZATION), rows.schema)
    merge_utilization(warehouse, rows)


# ------------------------------------------------------------ mistakes (gold_variants.py and more)

def _sql(warehouse: Path, data: Path, sql: str, **tables: pa.Table) -> pa.Table:
    """Run ``sql`` over the silver views (``patients``, ``encounters``… as in
    :meth:`ref.Silver.connect`) plus ``tables``."""
    con: duckdb.DuckDBPyConnection = silver(warehouse, data).connect()
    for name, table in tables.items():
        con.register(name, table)
    return con.sql(sql).to_arrow_table()


def _replace(warehouse: Path, name: str, rows: pa.Table) -> None:
    dx.write(path(warehouse, name), rows, "overwrite", operation=OVERWRITE)


def los_in_hours(warehouse: Path, data: Path) -> None:
    """Length of stay from timestamps in hours (unix_timestamp difference / 3600), not days."""
    merge_utilization(warehouse, utilization(silver(warehouse, data), los=LOS_HOURS))


def readmission_on_day_31(warehouse: Path, data: Path) -> None:
    """Silver gains an urgent inpatient stay admitted 31 days after the discharge of the first
    index stay with no other encounter of its patient within 40 days (the small data set has no
    day-31 readmission, so an off-by-one window would go unseen); the gold utilization is
    refreshed correctly for it."""
    encounters = path(warehouse, "silver.encounters_clean")
    rows = _sql(warehouse, data, """
        SELECT * REPLACE ('FAST-READMIT-31' AS encounter_id, 'urgent' AS admission_type,
                          CAST(discharge_ts AS DATE) + INTERVAL 31 DAY + INTERVAL 10 HOUR AS admit_ts,
                          CAST(discharge_ts AS DATE) + INTERVAL 33 DAY + INTERVAL 10 HOUR AS discharge_ts,
                          'home' AS discharge_disposition, CAST(2 AS INTEGER) AS length_of_stay_days)
        FROM rows i WHERE encounter_class = 'inpatient' AND discharge_disposition IN ('home', 'home_health')
          AND CAST(discharge_ts AS DATE) BETWEEN window_start() AND as_of() - INTERVAL 40 DAY
          AND NOT EXISTS (SELECT 1 FROM rows r WHERE r.patient_id = i.patient_id AND r.encounter_id <> i.encounter_id
                          AND r.admit_ts > i.discharge_ts - INTERVAL 40 DAY
                          AND r.admit_ts < i.discharge_ts + INTERVAL 40 DAY)
        ORDER BY discharge_ts, encounter_id LIMIT 1""", rows=ref.naive_utc(dx.read(encounters)))
    dx.write(encounters, utc(rows), "append")
    merge_utilization(warehouse, utilization(silver(warehouse, data)))


def readmission_window_31(warehouse: Path, data: Path) -> None:
    """``datediff(readmit, discharge) <= 31``: off by one day (on silver that holds a day-31
    readmission, :func:`readmission_on_day_31`)."""
    readmission_on_day_31(warehouse, data)
    merge_utilization(warehouse, utilization(silver(warehouse, data), window_days=31))


def transfers_counted(warehouse: Path, data: Path) -> None:
    """Stays discharged with disposition 'transfer' counted as index stays."""
    merge_utilization(warehouse, utilization(silver(warehouse, data), transfers_are_index=True))


def prevalence_by_encounters(warehouse: Path, data: Path) -> None:
    """count(DISTINCT encounter_id) instead of distinct patients (repeated visits inflate it)."""
    rows = _sql(warehouse, data, """
        WITH cur AS (SELECT patient_id FROM current_patients),
        spans AS (
            SELECT d.encounter_id, left(d.icd10_code, 3) AS icd10_category,
                   greatest(d.onset_date, window_start()) AS first_day,
                   least(coalesce(d.resolved_date, as_of()), as_of()) AS last_day
            FROM diagnoses d SEMI JOIN cur ON d.patient_id = cur.patient_id),
        days AS (
            SELECT encounter_id, icd10_category,
                   CAST(unnest(generate_series(CAST(first_day AS TIMESTAMP), CAST(last_day AS TIMESTAMP),
                                               INTERVAL 1 DAY)) AS DATE) AS day
            FROM spans WHERE first_day <= last_day)
        SELECT day, icd10_category, count(DISTINCT encounter_id) AS patients,
               (SELECT count(*) FROM cur) AS population,
               1000 * count(DISTINCT encounter_id) / (SELECT count(*) FROM cur) AS prevalence_per_1000
        FROM days GROUP BY day, icd10_category ORDER BY day, icd10_category""")
    _replace(warehouse, PREVALENCE, rows)


def summary_with(warehouse: Path, data: Path, columns: dict[str, str]) -> None:
    """Rewrite gold.patient_clinical_summary with extra columns computed from the current patient
    row (DuckDB expressions over silver.patients_scd columns)."""
    summary = dx.read(path(warehouse, SUMMARY))
    extra = "".join(f", {expr} AS {name}" for name, expr in columns.items())
    patients = ref.naive_utc(dx.read(path(warehouse, "silver.patients_scd")))
    rows = _sql(warehouse, data, f"SELECT s.*{extra} FROM summary s JOIN (SELECT * FROM scd WHERE is_current) "
                "USING (patient_id) ORDER BY patient_id", summary=summary, scd=patients)
    _replace(warehouse, SUMMARY, rows)


def ssn_and_names(warehouse: Path, data: Path) -> None:
    """SSN, first and last name kept in the summary under their own names."""
    summary_with(warehouse, data, {"ssn": FAKE_SSN, "first_name": "first_name", "last_name": "last_name"})


def names_under_other_names(warehouse: Path, data: Path) -> None:
    """The patient's name and an SSN hidden under innocent column names."""
    summary_with(warehouse, data, {"analyst_label": "first_name || ' ' || last_name", "ref_code": FAKE_SSN})


def birth_date_kept(warehouse: Path, data: Path) -> None:
    """The exact birth date kept as a harmless-sounding date column."""
    summary_with(warehouse, data, {"index_date": "birth_date"})


def chronic_conditions_as_text(warehouse: Path, data: Path) -> None:
    """chronic_conditions flattened to a comma-separated string (concat_ws) instead of an array."""
    rows = _sql(warehouse, data, "SELECT * REPLACE (array_to_string(chronic_conditions, ',') AS chronic_conditions) "
                "FROM summary", summary=dx.read(path(warehouse, SUMMARY)))
    _replace(warehouse, SUMMARY, rows)


def summary_inner_join(warehouse: Path, data: Path) -> None:
    """Encounters INNER JOINed to the patients: patients without an encounter lose their row."""
    summary = dx.read(path(warehouse, SUMMARY))
    _replace(warehouse, SUMMARY, summary.filter(pa.compute.greater(summary["encounter_count"], 0)))


def summary_merged(warehouse: Path, data: Path) -> None:
    """The summary refreshed with MERGE INTO on patient_id where the decision is a full overwrite."""
    rows = dx.read(path(warehouse, SUMMARY))
    dx.merge(path(warehouse, SUMMARY), rows, "t.patient_id = s.patient_id",
             lambda m: m.when_matched_update_all().when_not_matched_insert_all())


def lab_trends_rows_frame(warehouse: Path, data: Path) -> None:
    """The 7-day rolling window as ROWS BETWEEN 6 PRECEDING (the last 7 result days with data),
    not a RANGE of 7 calendar days; INSERT OVERWRITE as the notebook does."""
    trends = dx.read(path(warehouse, LAB_TRENDS))
    rows = _sql(warehouse, data, """
        SELECT * REPLACE (CAST(sum(tests) OVER w AS BIGINT) AS rolling_7d_tests,
                          sum(high_count + low_count) OVER w / sum(tests) OVER w AS rolling_7d_abnormal_rate)
        FROM trends
        WINDOW w AS (PARTITION BY loinc_code ORDER BY result_date ROWS BETWEEN 6 PRECEDING AND CURRENT ROW)
        ORDER BY result_date, loinc_code""", trends=trends)
    dx.write(path(warehouse, LAB_TRENDS), rows, "overwrite")


def utilization_appended(warehouse: Path, data: Path) -> None:
    """The utilization rows appended again (INSERT INTO) instead of MERGEd."""
    dx.write(path(warehouse, UTILIZATION), dx.read(path(warehouse, UTILIZATION)), "append")


def utilization_overwritten(warehouse: Path, data: Path) -> None:
    """The utilization refresh as INSERT OVERWRITE after the first MERGE."""
    dx.write(path(warehouse, UTILIZATION), utilization(silver(warehouse, data)), "overwrite")


def lab_trends_missing(warehouse: Path, data: Path) -> None:
    """The lab-trends cell never ran."""
    shutil.rmtree(path(warehouse, LAB_TRENDS))


def silver_diagnoses_missing(warehouse: Path, data: Path) -> None:
    """silver.diagnoses_clean dropped after gold was built (lab 02 reset)."""
    shutil.rmtree(path(warehouse, "silver.diagnoses_clean"))
