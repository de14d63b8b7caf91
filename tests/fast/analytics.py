"""Lab 04 on a fixture warehouse without a JVM: the four gold tables and realistic mistakes.

:func:`solve` builds the gold tables on a copy of the fast silver warehouse
(:func:`fast.conftest.silver_warehouse`) the way ``solutions/04_gold_analytics.ipynb`` does: its
SQL ported to DuckDB (:func:`utilization`, :func:`summary`, :func:`prevalence`,
:func:`lab_trends`, reading silver's own derived columns ``length_of_stay_days`` and
``abnormal_flag`` as the notebook does), and its refresh patterns, each commit in Spark's shape
(:mod:`fast.deltafix`): CREATE OR REPLACE TABLE … AS SELECT for the patient summary and
prevalence, CREATE TABLE then INSERT OVERWRITE for the lab trends, CREATE TABLE then MERGE for
utilization. The grader recomputes every value independently
(:mod:`medilake_lab.grader.reference.gold`, from silver's base columns), so the fixture passing is
evidence, not an echo.

The mistakes are those of tests/gold_variants.py and tests/test_lab04.py (the Spark tier), as
knobs of the same SQL or changes to the written tables.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from fast import deltafix as dx
from fast.medallion import utc
from medilake_lab.grader.reference.gold import CONTRACT, LAB_TRENDS, PREVALENCE, SUMMARY, UTILIZATION
from medilake_lab.grader.reference.silver import as_of_date

SILVER = ("patients_scd", "encounters_clean", "diagnoses_clean", "lab_results_clean", "medications_clean")
LOS_DAYS = "length_of_stay_days"
LOS_HOURS = "(epoch(discharge_ts) - epoch(admit_ts)) / 3600"
#: A fake SSN built from the patient number: 9xx area numbers are never issued as SSNs.
FAKE_SSN = "'900-' || lpad(substr(patient_id, -6, 2), 2, '0') || '-' || substr(patient_id, -4, 4)"
OVERWRITE = "CREATE OR REPLACE TABLE AS SELECT"


def path(warehouse: Path, name: str) -> Path:
    """Directory of ``schema.table`` in ``warehouse``."""
    return dx.table_dir(warehouse, name)


def naive(table: pa.Table) -> pa.Table:
    """UTC-aware timestamps as naive UTC ones (DuckDB then needs no time-zone library)."""
    fields = [f.with_type(pa.timestamp("us")) if pa.types.is_timestamp(f.type) else f for f in table.schema]
    return table.cast(pa.schema(fields))


def connect(warehouse: Path, data: Path, **tables: pa.Table) -> duckdb.DuckDBPyConnection:
    """DuckDB (UTC) with the silver tables as views ``silver.<table>``, the notebook's variables
    as macros ``as_of()`` (the data's as-of date) and ``window_start()`` (first admission date),
    and ``tables`` registered under their names."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE SCHEMA silver")
    for name in SILVER:
        con.register(f"_{name}", naive(dx.read(path(warehouse, f"silver.{name}"))))
        con.execute(f"CREATE VIEW silver.{name} AS SELECT * FROM _{name}")
    con.execute(f"CREATE MACRO as_of() AS DATE '{as_of_date(data).isoformat()}'")
    start = con.execute("SELECT min(CAST(admit_ts AS DATE)) FROM silver.encounters_clean").fetchone()[0]
    con.execute(f"CREATE MACRO window_start() AS DATE '{start.isoformat()}'")
    for name, table in tables.items():
        con.register(name, table)
    return con


def _contract(name: str, rows: pa.Table) -> pa.Table:
    """Rows in contract column order, extra columns after them."""
    first = [c for c, _ in CONTRACT[name]]
    return rows.select(first + [c for c in rows.column_names if c not in first])


def _index_stays(con: duckdb.DuckDBPyConnection, window_days: int = 30, transfers_are_index: bool = False) -> None:
    """The notebook's ``index_stays`` view (with the knobs of two classic mistakes)."""
    transfer = "" if transfers_are_index else "AND discharge_disposition IS DISTINCT FROM 'transfer'"
    con.execute(f"""
        CREATE OR REPLACE VIEW index_stays AS
        WITH stays AS (
            SELECT encounter_id, patient_id, facility_id, admission_type, discharge_disposition,
                   admit_ts, discharge_ts,
                   CAST(admit_ts AS DATE) AS admit_date, CAST(discharge_ts AS DATE) AS discharge_date
            FROM silver.encounters_clean WHERE encounter_class = 'inpatient'),
        idx AS (
            SELECT * FROM stays
            WHERE discharge_date BETWEEN window_start() AND as_of()
              AND discharge_disposition IS DISTINCT FROM 'expired' {transfer})
        SELECT i.encounter_id, i.patient_id, i.facility_id, i.discharge_date,
               count(r.encounter_id) > 0 AS readmitted
        FROM idx i
        LEFT JOIN stays r
          ON r.patient_id = i.patient_id AND r.encounter_id <> i.encounter_id
         AND r.admission_type IS DISTINCT FROM 'elective'
         AND r.admit_ts > i.discharge_ts
         AND date_diff('day', i.discharge_date, r.admit_date) <= {int(window_days)}
        GROUP BY i.encounter_id, i.patient_id, i.facility_id, i.discharge_date""")


def utilization(con: duckdb.DuckDBPyConnection, *, los: str = LOS_DAYS, window_days: int = 30,
                transfers_are_index: bool = False) -> pa.Table:
    """gold.hospital_utilization_metrics rows from the silver views of ``con`` (:func:`connect`),
    with a chosen LOS expression (SQL over silver's encounter columns), readmission window and
    transfer rule (the defaults are right)."""
    _index_stays(con, window_days, transfers_are_index)
    return _contract(UTILIZATION, con.sql(f"""
        WITH e AS (
            SELECT *, CAST(admit_ts AS DATE) AS admit_date, CAST(discharge_ts AS DATE) AS discharge_date,
                   {los} AS los
            FROM silver.encounters_clean),
        facilities AS (
            SELECT facility_id, max(facility_name) AS facility_name
            FROM e WHERE facility_id IS NOT NULL GROUP BY facility_id),
        months AS (
            SELECT CAST(unnest(generate_series(CAST(date_trunc('month', window_start()) AS TIMESTAMP),
                                               CAST(date_trunc('month', as_of()) AS TIMESTAMP),
                                               INTERVAL 1 MONTH)) AS DATE) AS month_start),
        adm AS (
            SELECT facility_id, CAST(date_trunc('month', admit_date) AS DATE) AS month_start,
                   count(*) FILTER (WHERE encounter_class = 'inpatient') AS admissions,
                   count(*) FILTER (WHERE encounter_class = 'emergency') AS ed_visits
            FROM e WHERE admit_date BETWEEN window_start() AND as_of() GROUP BY ALL),
        dis AS (
            SELECT facility_id, CAST(date_trunc('month', discharge_date) AS DATE) AS month_start,
                   count(*) AS discharges, sum(los) AS inpatient_days,
                   avg(los) AS mean_los_days, median(los) AS median_los_days
            FROM e WHERE encounter_class = 'inpatient'
                     AND discharge_date BETWEEN window_start() AND as_of()
            GROUP BY ALL),
        rea AS (
            SELECT facility_id, CAST(date_trunc('month', discharge_date) AS DATE) AS month_start,
                   count(*) AS index_stays, count(*) FILTER (WHERE readmitted) AS readmissions_30d
            FROM index_stays GROUP BY ALL)
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
        LEFT JOIN adm ON adm.facility_id = f.facility_id AND adm.month_start = m.month_start
        LEFT JOIN dis ON dis.facility_id = f.facility_id AND dis.month_start = m.month_start
        LEFT JOIN rea ON rea.facility_id = f.facility_id AND rea.month_start = m.month_start
        ORDER BY f.facility_id, m.month_start""").to_arrow_table())


def summary(con: duckdb.DuckDBPyConnection, *, encounters_join: str = "LEFT JOIN") -> pa.Table:
    """gold.patient_clinical_summary rows from the silver views of ``con`` (``encounters_join``:
    how the encounter counts are joined to the current patients)."""
    _index_stays(con)
    return _contract(SUMMARY, con.sql(f"""
        WITH p AS (
            SELECT patient_id, sex, state, zip, insurance_payer,
                   year(as_of()) - year(birth_date)
                     - CASE WHEN month(as_of()) * 100 + day(as_of())
                                 < month(birth_date) * 100 + day(birth_date) THEN 1 ELSE 0 END AS age
            FROM silver.patients_scd WHERE is_current),
        enc AS (
            SELECT patient_id, count(*) AS encounter_count,
                   count(*) FILTER (WHERE encounter_class = 'inpatient') AS inpatient_admissions,
                   count(*) FILTER (WHERE encounter_class = 'emergency') AS ed_visits,
                   max(CAST(admit_ts AS DATE)) AS last_encounter_date
            FROM silver.encounters_clean WHERE CAST(admit_ts AS DATE) <= as_of() GROUP BY patient_id),
        chronic AS (
            SELECT patient_id, list_sort(list_distinct(list(substr(icd10_code, 1, 3)))) AS conditions
            FROM silver.diagnoses_clean
            WHERE is_chronic AND onset_date <= as_of()
              AND (resolved_date IS NULL OR resolved_date >= as_of())
            GROUP BY patient_id),
        meds AS (
            SELECT patient_id, count(*) AS active_medications FROM silver.medications_clean
            WHERE start_date <= as_of() AND (end_date IS NULL OR end_date > as_of())
            GROUP BY patient_id),
        labs AS (
            SELECT patient_id, count(*) AS abnormal_labs_90d FROM silver.lab_results_clean
            WHERE abnormal_flag IN ('H', 'L')
              AND CAST(result_ts AS DATE) BETWEEN CAST(as_of() - INTERVAL 89 DAY AS DATE) AND as_of()
            GROUP BY patient_id),
        readm AS (
            SELECT patient_id, bool_or(readmitted) AS readmitted FROM index_stays GROUP BY patient_id)
        SELECT p.patient_id, p.sex,
               CASE WHEN p.age IS NULL THEN NULL WHEN p.age < 18 THEN '0-17'
                    WHEN p.age < 35 THEN '18-34' WHEN p.age < 50 THEN '35-49'
                    WHEN p.age < 65 THEN '50-64' WHEN p.age < 75 THEN '65-74'
                    WHEN p.age < 85 THEN '75-84' ELSE '85+' END AS age_band,
               p.state, substr(p.zip, 1, 3) AS zip3, p.insurance_payer,
               coalesce(enc.encounter_count, 0) AS encounter_count,
               coalesce(enc.inpatient_admissions, 0) AS inpatient_admissions,
               coalesce(enc.ed_visits, 0) AS ed_visits,
               enc.last_encounter_date,
               coalesce(chronic.conditions, CAST([] AS VARCHAR[])) AS chronic_conditions,
               CAST(len(coalesce(chronic.conditions, CAST([] AS VARCHAR[]))) AS BIGINT) AS chronic_condition_count,
               coalesce(meds.active_medications, 0) AS active_medications,
               coalesce(labs.abnormal_labs_90d, 0) AS abnormal_labs_90d,
               coalesce(readm.readmitted, false) AS readmitted_30d,
               as_of() AS as_of_date
        FROM p
        {encounters_join} enc ON enc.patient_id = p.patient_id
        LEFT JOIN chronic ON chronic.patient_id = p.patient_id
        LEFT JOIN meds ON meds.patient_id = p.patient_id
        LEFT JOIN labs ON labs.patient_id = p.patient_id
        LEFT JOIN readm ON readm.patient_id = p.patient_id
        ORDER BY p.patient_id""").to_arrow_table())


def prevalence(con: duckdb.DuckDBPyConnection, *, count: str = "patient_id") -> pa.Table:
    """gold.disease_prevalence_daily rows from the silver views of ``con``; ``count``: what
    count(DISTINCT …) counts per day and category (``"encounter_id"`` is the classic mistake)."""
    return _contract(PREVALENCE, con.sql(f"""
        WITH current_patients AS (SELECT patient_id FROM silver.patients_scd WHERE is_current),
        spans AS (
            SELECT DISTINCT d.{count}, substr(d.icd10_code, 1, 3) AS icd10_category,
                   greatest(d.onset_date, window_start()) AS first_day,
                   least(coalesce(d.resolved_date, as_of()), as_of()) AS last_day
            FROM silver.diagnoses_clean d SEMI JOIN current_patients c ON d.patient_id = c.patient_id),
        daily AS (
            SELECT icd10_category, {count},
                   CAST(unnest(generate_series(CAST(first_day AS TIMESTAMP), CAST(last_day AS TIMESTAMP),
                                               INTERVAL 1 DAY)) AS DATE) AS day
            FROM spans WHERE first_day <= last_day),
        counts AS (
            SELECT day, icd10_category, count(DISTINCT {count}) AS patients
            FROM daily GROUP BY day, icd10_category),
        population AS (SELECT count(*) AS population FROM current_patients)
        SELECT day, icd10_category, patients, population,
               1000 * patients / population AS prevalence_per_1000
        FROM counts CROSS JOIN population ORDER BY day, icd10_category""").to_arrow_table())


def lab_trends(con: duckdb.DuckDBPyConnection, *, frame: str = "RANGE") -> pa.Table:
    """gold.lab_abnormal_trends rows from the silver views of ``con``; ``frame``: the rolling
    window's frame type over the day number (``"ROWS"`` is the classic mistake: the last 7 days
    WITH results)."""
    return _contract(LAB_TRENDS, con.sql(f"""
        WITH daily AS (
            SELECT CAST(result_ts AS DATE) AS result_date, loinc_code, max(test_name) AS test_name,
                   count(*) AS tests, count(*) FILTER (WHERE abnormal_flag = 'H') AS high_count,
                   count(*) FILTER (WHERE abnormal_flag = 'L') AS low_count
            FROM silver.lab_results_clean
            WHERE abnormal_flag IS NOT NULL
              AND CAST(result_ts AS DATE) BETWEEN window_start() AND as_of()
            GROUP BY ALL)
        SELECT result_date, loinc_code, test_name, tests, high_count, low_count,
               (high_count + low_count) / tests AS abnormal_rate,
               CAST(sum(tests) OVER last7 AS BIGINT) AS rolling_7d_tests,
               sum(high_count + low_count) OVER last7 / sum(tests) OVER last7 AS rolling_7d_abnormal_rate
        FROM daily
        WINDOW last7 AS (PARTITION BY loinc_code ORDER BY date_diff('day', DATE '1970-01-01', result_date)
                         {frame} BETWEEN 6 PRECEDING AND CURRENT ROW)
        ORDER BY result_date, loinc_code""").to_arrow_table())


def merge_utilization(warehouse: Path, rows: pa.Table) -> int:
    """MERGE ``rows`` into gold.hospital_utilization_metrics on (facility_id, month_start):
    update matched, insert new, delete keys no longer produced (the notebook's pattern)."""
    return dx.merge(path(warehouse, UTILIZATION), rows, "t.facility_id = s.facility_id AND t.month_start = "
                    "s.month_start", lambda m: m.when_matched_update_all().when_not_matched_insert_all()
                    .when_not_matched_by_source_delete())


def _replace(warehouse: Path, name: str, rows: pa.Table) -> None:
    """``CREATE OR REPLACE TABLE <name> AS SELECT …``."""
    dx.write(path(warehouse, name), rows, "overwrite", operation=OVERWRITE)


def solve(warehouse: Path, data: Path) -> None:
    """Lab 04's solution on a warehouse holding lab 02's silver tables."""
    con = connect(warehouse, data)
    _replace(warehouse, SUMMARY, summary(con))
    _replace(warehouse, PREVALENCE, prevalence(con))
    trends = lab_trends(con)
    dx.create_empty(path(warehouse, LAB_TRENDS), trends.schema)
    dx.write(path(warehouse, LAB_TRENDS), trends, "overwrite")
    rows = utilization(con)
    dx.create_empty(path(warehouse, UTILIZATION), rows.schema)
    merge_utilization(warehouse, rows)


# ------------------------------------------------------------ mistakes (gold_variants.py and more)

def los_in_hours(warehouse: Path, data: Path) -> None:
    """Length of stay from timestamps in hours (unix_timestamp difference / 3600), not days."""
    merge_utilization(warehouse, utilization(connect(warehouse, data), los=LOS_HOURS))


def readmission_on_day_31(warehouse: Path, data: Path) -> None:
    """Silver gains an urgent inpatient stay admitted 31 days after the discharge of the first
    index stay with no other encounter of its patient within 40 days (the small data set has no
    day-31 readmission, so an off-by-one window would go unseen); the gold utilization is
    refreshed correctly for it."""
    encounters = path(warehouse, "silver.encounters_clean")
    rows = connect(warehouse, data).sql("""
        SELECT * REPLACE ('FAST-READMIT-31' AS encounter_id, 'urgent' AS admission_type,
                          CAST(discharge_ts AS DATE) + INTERVAL 31 DAY + INTERVAL 10 HOUR AS admit_ts,
                          CAST(discharge_ts AS DATE) + INTERVAL 33 DAY + INTERVAL 10 HOUR AS discharge_ts,
                          'home' AS discharge_disposition, CAST(2 AS INTEGER) AS length_of_stay_days)
        FROM silver.encounters_clean i
        WHERE encounter_class = 'inpatient' AND discharge_disposition IN ('home', 'home_health')
          AND CAST(discharge_ts AS DATE) BETWEEN window_start() AND as_of() - INTERVAL 40 DAY
          AND NOT EXISTS (SELECT 1 FROM silver.encounters_clean r
                          WHERE r.patient_id = i.patient_id AND r.encounter_id <> i.encounter_id
                            AND r.admit_ts BETWEEN i.discharge_ts - INTERVAL 40 DAY
                                               AND i.discharge_ts + INTERVAL 40 DAY)
        ORDER BY discharge_ts, encounter_id LIMIT 1""").to_arrow_table()
    assert rows.num_rows == 1, f"{data}: no index stay without other encounters 40 days around it"
    dx.write(encounters, utc(rows), "append")
    merge_utilization(warehouse, utilization(connect(warehouse, data)))


def readmission_window_31(warehouse: Path, data: Path) -> None:
    """``datediff(readmit, discharge) <= 31``: off by one day (on silver that holds a day-31
    readmission, :func:`readmission_on_day_31`)."""
    readmission_on_day_31(warehouse, data)
    merge_utilization(warehouse, utilization(connect(warehouse, data), window_days=31))


def transfers_counted(warehouse: Path, data: Path) -> None:
    """Stays discharged with disposition 'transfer' counted as index stays."""
    merge_utilization(warehouse, utilization(connect(warehouse, data), transfers_are_index=True))


def prevalence_by_encounters(warehouse: Path, data: Path) -> None:
    """count(DISTINCT encounter_id) instead of distinct patients (repeated visits inflate it)."""
    _replace(warehouse, PREVALENCE, prevalence(connect(warehouse, data), count="encounter_id"))


def summary_with(warehouse: Path, data: Path, columns: dict[str, str]) -> None:
    """Rewrite gold.patient_clinical_summary with extra columns computed from the current patient
    row (DuckDB expressions over silver.patients_scd columns)."""
    extra = "".join(f", {expr} AS {name}" for name, expr in columns.items())
    con = connect(warehouse, data, summary=dx.read(path(warehouse, SUMMARY)))
    rows = con.sql(f"SELECT s.*{extra} FROM summary s JOIN (SELECT * FROM silver.patients_scd WHERE is_current) "
                   "USING (patient_id) ORDER BY patient_id").to_arrow_table()
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
    rows = summary(connect(warehouse, data))
    text = pc.binary_join(rows["chronic_conditions"], ",")
    _replace(warehouse, SUMMARY, rows.set_column(rows.schema.get_field_index("chronic_conditions"),
                                                 "chronic_conditions", text))


def summary_inner_join(warehouse: Path, data: Path) -> None:
    """Encounters INNER JOINed to the patients: patients without an encounter lose their row."""
    _replace(warehouse, SUMMARY, summary(connect(warehouse, data), encounters_join="JOIN"))


def summary_merged(warehouse: Path, data: Path) -> None:
    """The summary refreshed with MERGE INTO on patient_id where the decision is a full overwrite."""
    dx.merge(path(warehouse, SUMMARY), summary(connect(warehouse, data)), "t.patient_id = s.patient_id",
             lambda m: m.when_matched_update_all().when_not_matched_insert_all())


def prevalence_truncated(warehouse: Path, data: Path) -> None:
    """The prevalence table emptied with TRUNCATE TABLE as its latest write: it rewrites the table,
    but leaves nothing in it, so it is not the full refresh the decision asks for."""
    table = path(warehouse, PREVALENCE)
    dx.spark_commit(table, dx.delete(table, "true"), "TRUNCATE", {}, {})


def lab_trends_rows_frame(warehouse: Path, data: Path) -> None:
    """The 7-day rolling window as ROWS BETWEEN 6 PRECEDING (the last 7 result days with data),
    not a RANGE of 7 calendar days; INSERT OVERWRITE as the notebook does."""
    dx.write(path(warehouse, LAB_TRENDS), lab_trends(connect(warehouse, data), frame="ROWS"), "overwrite")


def utilization_appended(warehouse: Path, data: Path) -> None:
    """The utilization rows appended again (INSERT INTO) instead of MERGEd."""
    dx.write(path(warehouse, UTILIZATION), utilization(connect(warehouse, data)), "append")


def utilization_overwritten(warehouse: Path, data: Path) -> None:
    """The utilization refresh as INSERT OVERWRITE after the first MERGE."""
    dx.write(path(warehouse, UTILIZATION), utilization(connect(warehouse, data)), "overwrite")


def lab_trends_missing(warehouse: Path, data: Path) -> None:
    """The lab-trends cell never ran."""
    shutil.rmtree(path(warehouse, LAB_TRENDS))


def silver_diagnoses_missing(warehouse: Path, data: Path) -> None:
    """silver.diagnoses_clean dropped after gold was built (lab 02 reset)."""
    shutil.rmtree(path(warehouse, "silver.diagnoses_clean"))
