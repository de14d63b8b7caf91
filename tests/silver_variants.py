"""Realistic WRONG ways to build lab 02's silver tables, for grader tests.

Each builder works on a private copy of a solution warehouse (bronze + silver) by path, with the
test's own Spark session, and reproduces one mistake learners make: the table is rebuilt from
bronze the wrong way, or the solution's table is changed the way the mistake would leave it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from medilake_lab.contract import codes, feeds

TRACKED = ("first_name", "last_name", "address_line", "city", "state", "zip", "insurance_payer",
           "insurance_member_id")
PATIENT_COLUMNS = [c for c in feeds.FEEDS["patients"].columns if c != "op"]


def path(warehouse: Path, table: str) -> str:
    """Directory of ``schema.table`` in a warehouse."""
    schema, name = table.split(".", 1)
    return str(warehouse / schema / name)


def valid_batch(spark: SparkSession, warehouse: Path, feed: str, batch: str) -> DataFrame:
    """Parsed rows of one bronze batch with every required field and a valid code."""
    spec = feeds.FEEDS[feed]
    df = (spark.read.format("delta").load(path(warehouse, f"bronze.{feed}"))
          .where((F.col("_batch_id") == batch) & F.col("_corrupt_record").isNull()))
    for column in spec.required:
        df = df.where(F.col(column).isNotNull())
    if spec.code_column:
        df = df.where(F.col(spec.code_column).isin(list(codes.CODE_TABLES[spec.code_system])))
    return df


def newest(df: DataFrame, key: str) -> DataFrame:
    """One row per key: the greatest updated_at."""
    w = Window.partitionBy(key).orderBy(F.col("updated_at").desc())
    return df.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn")


def silver_rows(feed: str, df: DataFrame, as_of: str = "2025-09-30") -> DataFrame:
    """Contract columns (+ op) with the derived column computed correctly."""
    spec = feeds.FEEDS[feed]
    cols = [c for c in spec.columns if c != "op"]
    if feed == feeds.DRIFT_FEED:
        cols.append(feeds.DRIFT_COLUMN)
    if feed == "encounters":
        df = df.withColumn("length_of_stay_days",
                           F.datediff(F.to_date("discharge_ts"), F.to_date("admit_ts")))
        cols.append("length_of_stay_days")
    elif feed == "lab_results":
        df = df.withColumn("abnormal_flag", F.when(F.col("value") > F.col("ref_high"), "H")
                           .when(F.col("value") < F.col("ref_low"), "L").otherwise("N"))
        cols.append("abnormal_flag")
    elif feed == "medications":
        df = df.withColumn("is_active", (F.col("start_date") <= F.lit(as_of))
                           & (F.col("end_date").isNull() | (F.col("end_date") > F.lit(as_of))))
        cols.append("is_active")
    elif feed == "diagnoses":
        df = df.withColumn("is_chronic", F.col("is_chronic") == "Y")
    return df.select(*cols, "op")


def append_batches(spark: SparkSession, warehouse: Path, feed: str) -> None:
    """Plain append of every valid row of every batch: no dedup, no MERGE, op ignored."""
    target = path(warehouse, f"silver.{feed}_clean")
    shutil.rmtree(target)
    for batch in feeds.BATCHES:
        (silver_rows(feed, valid_batch(spark, warehouse, feed, batch)).drop("op")
         .write.format("delta").mode("append").save(target))


def merge_batches(spark: SparkSession, warehouse: Path, feed: str, *, newer_check: bool = True,
                  apply_deletes: bool = True) -> None:
    """Dedup + MERGE per batch, optionally without the "source is newer" guard (late records
    overwrite newer ones) or without any delete handling (op D treated as an update)."""
    key = feeds.FEEDS[feed].key
    target = path(warehouse, f"silver.{feed}_clean")
    shutil.rmtree(target)
    newer = "s.updated_at > t.updated_at" if newer_check else "true"
    for batch in feeds.BATCHES:
        source = silver_rows(feed, newest(valid_batch(spark, warehouse, feed, batch), key))
        columns = [c for c in source.columns if c != "op"]
        DeltaTable.createIfNotExists(spark).location(target).addColumns(
            source.drop("op").schema).execute()
        merge = DeltaTable.forPath(spark, target).alias("t").merge(
            source.alias("s"), f"t.{key} = s.{key}")
        values = {c: f"s.{c}" for c in columns}
        if apply_deletes:
            merge = (merge.whenMatchedDelete(condition=f"{newer} AND s.op = 'D'")
                     .whenMatchedUpdate(condition=newer, set=values)
                     .whenNotMatchedInsert(condition="s.op <> 'D'", values=values))
        else:
            merge = (merge.whenMatchedUpdate(condition=newer, set=values)
                     .whenNotMatchedInsert(values=values))
        merge.execute()


def _patients_source(spark: SparkSession, warehouse: Path, batch: str) -> DataFrame:
    return newest(valid_batch(spark, warehouse, "patients", batch), "patient_id")


def _new_version() -> dict[str, str]:
    values = {c: f"s.{c}" for c in PATIENT_COLUMNS}
    values.update(effective_from="s.updated_at", effective_to="CAST(NULL AS TIMESTAMP)",
                  is_current="true")
    return values


def _fresh_patients(spark: SparkSession, warehouse: Path) -> str:
    target = path(warehouse, "silver.patients_scd")
    schema = spark.read.format("delta").load(target).schema
    shutil.rmtree(target)
    DeltaTable.createIfNotExists(spark).location(target).addColumns(schema).execute()
    return target


def patients_type1(spark: SparkSession, warehouse: Path) -> None:
    """SCD Type 1: the current row is overwritten in place on every change (history lost)."""
    target = _fresh_patients(spark, warehouse)
    for batch in feeds.BATCHES:
        overwrite = {c: f"s.{c}" for c in PATIENT_COLUMNS}
        overwrite["effective_from"] = "s.updated_at"
        (DeltaTable.forPath(spark, target).alias("t")
         .merge(_patients_source(spark, warehouse, batch).alias("s"),
                "t.patient_id = s.patient_id")
         .whenMatchedDelete(condition="s.updated_at > t.updated_at AND s.op = 'D'")
         .whenMatchedUpdate(condition="s.updated_at > t.updated_at", set=overwrite)
         .whenNotMatchedInsert(condition="s.op <> 'D'", values=_new_version())
         .execute())


def patients_close_without_insert(spark: SparkSession, warehouse: Path) -> None:
    """SCD2 without the staged union: a change closes the current row, but since that source
    row matched, the new version is never inserted."""
    target = _fresh_patients(spark, warehouse)
    changed = " OR ".join(f"NOT (s.{c} <=> t.{c})" for c in TRACKED)
    for batch in feeds.BATCHES:
        (DeltaTable.forPath(spark, target).alias("t")
         .merge(_patients_source(spark, warehouse, batch).alias("s"),
                "t.patient_id = s.patient_id AND t.is_current")
         .whenMatchedUpdate(condition=f"s.updated_at > t.effective_from AND (s.op = 'D' OR "
                                      f"{changed})",
                            set={"effective_to": "s.updated_at", "is_current": "false"})
         .whenNotMatchedInsert(condition="s.op <> 'D'", values=_new_version())
         .execute())


def patients_plain_inequality(spark: SparkSession, warehouse: Path) -> None:
    """The solution's SCD2 (staged updates, one MERGE per batch) with change detection written
    ``s.c <> l.c`` instead of ``NOT (s.c <=> l.c)``: a change from or to NULL only (a member id
    removed or restored) is NULL, not true, so it opens no version."""
    target = _fresh_patients(spark, warehouse)
    changed = " OR ".join(f"s.{c} <> l.{c}" for c in TRACKED)
    for batch in feeds.BATCHES:
        _patients_source(spark, warehouse, batch).createOrReplaceTempView("patient_updates")
        spark.sql(f"""
            WITH latest AS (
                SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY patient_id
                                                            ORDER BY effective_from DESC) AS rn
                               FROM delta.`{target}`) WHERE rn = 1),
            changes AS (
                SELECT s.*, coalesce(l.is_current, false) AS closes_current
                FROM patient_updates s LEFT JOIN latest l ON s.patient_id = l.patient_id
                WHERE (l.patient_id IS NULL AND s.op <> 'D')
                   OR (l.is_current AND s.updated_at > l.effective_from AND (s.op = 'D' OR {changed}))
                   OR (NOT l.is_current AND s.updated_at > l.effective_to AND s.op <> 'D'))
            SELECT patient_id AS merge_key, * FROM changes
            UNION ALL
            SELECT NULL AS merge_key, * FROM changes WHERE closes_current AND op <> 'D'
        """).createOrReplaceTempView("staged_updates")
        (DeltaTable.forPath(spark, target).alias("t")
         .merge(spark.table("staged_updates").alias("s"), "t.patient_id = s.merge_key AND t.is_current")
         .whenMatchedUpdate(set={"effective_to": "s.updated_at", "is_current": "false"})
         .whenNotMatchedInsert(condition="s.op <> 'D'", values=_new_version())
         .execute())


def patients_never_closed(spark: SparkSession, warehouse: Path) -> None:
    """New versions inserted but old ones never closed: every changed patient keeps two or more
    current rows (the state the solution's table would be in without its WHEN MATCHED clause)."""
    spark.sql(f"UPDATE delta.`{path(warehouse, 'silver.patients_scd')}` "
              "SET is_current = true, effective_to = NULL WHERE NOT is_current")


def patients_closed_at_load_time(spark: SparkSession, warehouse: Path) -> None:
    """Old versions closed with the load time (current_timestamp()) instead of the new version's
    effective_from: every closed interval overlaps the next one."""
    spark.sql(f"UPDATE delta.`{path(warehouse, 'silver.patients_scd')}` "
              "SET effective_to = current_timestamp() WHERE NOT is_current")


def medications_ignore_end_date(spark: SparkSession, warehouse: Path,
                                as_of: str = "2025-09-30") -> None:
    """is_active computed from the start date only (the end date is ignored)."""
    spark.sql(f"UPDATE delta.`{path(warehouse, 'silver.medications_clean')}` "
              f"SET is_active = start_date <= DATE'{as_of}'")
