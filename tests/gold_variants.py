"""Realistic WRONG ways to build gold tables, for grader tests (each mirrors a real mistake).

Every builder reads the silver tables of a warehouse COPY by path, rebuilds one gold table with
one mistake and writes it back with the refresh pattern the notebook uses for that table (MERGE
for utilization, overwrite for the others), so only the mistake itself should fail a check.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession

from medilake_lab.datagen import AS_OF_DATE

AS_OF = date.fromisoformat(AS_OF_DATE)
LOS_DAYS = "datediff(to_date(discharge_ts), to_date(admit_ts))"
LOS_HOURS = "(unix_timestamp(discharge_ts) - unix_timestamp(admit_ts)) / 3600"


def _views(spark: SparkSession, warehouse: Path) -> str:
    """Register the silver tables of ``warehouse`` as temp views ``v_<table>``; returns the
    window start (first admission date) as a SQL date literal."""
    for table in ("patients_scd", "encounters_clean", "diagnoses_clean"):
        spark.read.format("delta").load(str(warehouse / "silver" / table)) \
            .createOrReplaceTempView(f"v_{table}")
    start = spark.sql("SELECT min(to_date(admit_ts)) FROM v_encounters_clean").first()[0]
    return f"DATE'{start}'"


def utilization(spark: SparkSession, warehouse: Path, *, los: str = LOS_DAYS,
                window_days: int = 30, transfers_are_index: bool = False) -> DataFrame:
    """gold.hospital_utilization_metrics rows, with a chosen LOS expression, readmission window
    and transfer rule (the defaults are right)."""
    start, as_of = _views(spark, warehouse), f"DATE'{AS_OF}'"
    transfer = "" if transfers_are_index else "AND NOT (discharge_disposition <=> 'transfer')"
    spark.sql(f"""
        WITH stays AS (
            SELECT *, to_date(admit_ts) AS admit_date, to_date(discharge_ts) AS discharge_date
            FROM v_encounters_clean WHERE encounter_class = 'inpatient'),
        idx AS (SELECT * FROM stays WHERE discharge_date BETWEEN {start} AND {as_of}
                AND NOT (discharge_disposition <=> 'expired') {transfer})
        SELECT i.encounter_id, i.facility_id, i.discharge_date, count(r.encounter_id) > 0 AS readmitted
        FROM idx i LEFT JOIN stays r
          ON r.patient_id = i.patient_id AND r.encounter_id <> i.encounter_id
         AND NOT (r.admission_type <=> 'elective') AND r.admit_ts > i.discharge_ts
         AND datediff(r.admit_date, i.discharge_date) <= {window_days}
        GROUP BY ALL""").createOrReplaceTempView("v_index")
    return spark.sql(f"""
        WITH e AS (SELECT *, to_date(admit_ts) AS admit_date, to_date(discharge_ts) AS discharge_date,
                          {los} AS los FROM v_encounters_clean),
        f AS (SELECT facility_id, max(facility_name) AS facility_name FROM e GROUP BY 1),
        m AS (SELECT explode(sequence(trunc({start}, 'MM'), trunc({as_of}, 'MM'),
                                      INTERVAL 1 MONTH)) AS month_start),
        adm AS (SELECT facility_id, trunc(admit_date, 'MM') AS month_start,
                       count_if(encounter_class = 'inpatient') AS admissions,
                       count_if(encounter_class = 'emergency') AS ed_visits
                FROM e WHERE admit_date BETWEEN {start} AND {as_of} GROUP BY ALL),
        dis AS (SELECT facility_id, trunc(discharge_date, 'MM') AS month_start,
                       count(*) AS discharges, sum(los) AS inpatient_days, avg(los) AS mean_los,
                       median(los) AS median_los
                FROM e WHERE encounter_class = 'inpatient'
                         AND discharge_date BETWEEN {start} AND {as_of} GROUP BY ALL),
        rea AS (SELECT facility_id, trunc(discharge_date, 'MM') AS month_start,
                       count(*) AS index_stays, count_if(readmitted) AS readmissions_30d
                FROM v_index GROUP BY ALL)
        SELECT f.facility_id, f.facility_name, m.month_start,
               coalesce(admissions, 0) AS admissions, coalesce(discharges, 0) AS discharges,
               CAST(coalesce(inpatient_days, 0) AS BIGINT) AS inpatient_days,
               CAST(mean_los AS DOUBLE) AS mean_los_days,
               CAST(median_los AS DOUBLE) AS median_los_days,
               coalesce(ed_visits, 0) AS ed_visits, coalesce(index_stays, 0) AS index_stays,
               coalesce(readmissions_30d, 0) AS readmissions_30d,
               readmissions_30d / index_stays AS readmission_rate
        FROM f CROSS JOIN m
        LEFT JOIN adm USING (facility_id, month_start)
        LEFT JOIN dis USING (facility_id, month_start)
        LEFT JOIN rea USING (facility_id, month_start)""")


def merge_utilization(spark: SparkSession, warehouse: Path, rows: DataFrame) -> None:
    """MERGE ``rows`` into the copy's gold.hospital_utilization_metrics (the notebook's pattern)."""
    target = DeltaTable.forPath(spark, str(warehouse / "gold" / "hospital_utilization_metrics"))
    (target.alias("t").merge(rows.alias("s"), "t.facility_id = s.facility_id AND "
                                              "t.month_start = s.month_start")
     .whenMatchedUpdateAll().whenNotMatchedInsertAll().whenNotMatchedBySourceDelete().execute())


def prevalence_by_encounters(spark: SparkSession, warehouse: Path) -> None:
    """Overwrite gold.disease_prevalence_daily counting distinct ENCOUNTERS (diagnosis rows of
    repeated visits) instead of distinct patients."""
    start, as_of = _views(spark, warehouse), f"DATE'{AS_OF}'"
    rows = spark.sql(f"""
        WITH cur AS (SELECT patient_id FROM v_patients_scd WHERE is_current),
        days AS (
            SELECT d.encounter_id, substr(d.icd10_code, 1, 3) AS icd10_category,
                   explode(sequence(greatest(d.onset_date, {start}),
                                    least(coalesce(d.resolved_date, {as_of}), {as_of}))) AS day
            FROM v_diagnoses_clean d LEFT SEMI JOIN cur ON d.patient_id = cur.patient_id
            WHERE greatest(d.onset_date, {start}) <= least(coalesce(d.resolved_date, {as_of}), {as_of}))
        SELECT day, icd10_category, count(DISTINCT encounter_id) AS patients,
               (SELECT count(*) FROM cur) AS population,
               1000 * count(DISTINCT encounter_id) / (SELECT count(*) FROM cur) AS prevalence_per_1000
        FROM days GROUP BY day, icd10_category""")
    rows.write.format("delta").mode("overwrite") \
        .save(str(warehouse / "gold" / "disease_prevalence_daily"))


def summary_with_identifiers(spark: SparkSession, warehouse: Path, columns: dict[str, str]) -> None:
    """Overwrite gold.patient_clinical_summary with extra columns computed from the current
    patient row, e.g. ``{"ssn": "...", "first_name": "first_name"}`` (SQL expressions)."""
    path = str(warehouse / "gold" / "patient_clinical_summary")
    spark.read.format("delta").load(path).createOrReplaceTempView("v_summary")
    _views(spark, warehouse)
    extra = ", ".join(f"{expr} AS {name}" for name, expr in columns.items())
    rows = spark.sql(f"""
        SELECT s.*, {extra} FROM v_summary s
        JOIN (SELECT * FROM v_patients_scd WHERE is_current) p USING (patient_id)""")
    rows.localCheckpoint().write.format("delta").mode("overwrite") \
        .option("overwriteSchema", "true").save(path)


#: A fake SSN built from the patient number: 9xx area numbers are never issued as SSNs.
FAKE_SSN = "concat('900-', lpad(substr(patient_id, -6, 2), 2, '0'), '-', substr(patient_id, -4, 4))"
