"""Realistic WRONG answers to lab 03, for grader tests.

Each builder changes a private copy of a solution warehouse (after lab 03) by path, with the
test's own Spark session, the way a learner's mistake would leave it. The scale-model knobs are
the lab's (24 KB plays the part of 1 GB).
"""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

LABS = "silver.lab_results_clean"
TARGET_FILE = 24 * 1024
GLUCOSE = "2345-7"


def path(warehouse: Path, table: str = LABS) -> str:
    """Directory of ``schema.table`` in a warehouse."""
    schema, name = table.split(".", 1)
    return str(warehouse / schema / name)


def _knobs(spark: SparkSession) -> None:
    spark.conf.set("spark.databricks.delta.optimize.maxFileSize", str(TARGET_FILE))
    spark.conf.set("spark.databricks.delta.optimize.minFileSize", str(TARGET_FILE))
    spark.conf.set("spark.sql.sources.parallelPartitionDiscovery.parallelism", "4")


def _history(spark: SparkSession, location: str) -> DataFrame:
    return spark.sql(f"DESCRIBE HISTORY delta.`{location}`")


def _last_version(spark: SparkSession, location: str, operation: str) -> int:
    return _history(spark, location).where(F.col("operation") == operation).agg(F.max("version")).first()[0]


def rewrite(spark: SparkSession, warehouse: Path, *, partition_by: str = "result_month",
            writers: int | str = 16) -> str:
    """Rewrite lab results partitioned by ``partition_by`` (result_month derived again), written
    by ``writers`` tasks (or repartitioned by that column name): the lab's small-files layout."""
    _knobs(spark)
    location = path(warehouse)
    df = (spark.read.format("delta").load(location).drop("result_month")
          .withColumn("result_month", F.trunc("result_ts", "month")))
    (df.repartition(writers).write.format("delta").mode("overwrite").option("overwriteSchema", "true")
       .partitionBy(partition_by).save(location))
    return location


def no_optimize(spark: SparkSession, warehouse: Path) -> None:
    """Partitioned rewrite with many small files, and no OPTIMIZE afterwards."""
    rewrite(spark, warehouse)


def zorder_by(spark: SparkSession, warehouse: Path, column: str = "loinc_code") -> None:
    """Partitioned rewrite, compaction, then Z-ORDER by a column lookups do not filter on."""
    location = rewrite(spark, warehouse)
    spark.sql(f"OPTIMIZE delta.`{location}`")
    spark.sql(f"OPTIMIZE delta.`{location}` ZORDER BY ({column})")


def partition_by_patient(spark: SparkSession, warehouse: Path) -> None:
    """Partitioned by the patient identifier: one folder per patient."""
    rewrite(spark, warehouse, partition_by="patient_id", writers="patient_id")


def unsafe_vacuum(spark: SparkSession, warehouse: Path) -> None:
    """VACUUM the production table RETAIN 0 HOURS with the retention check switched off."""
    _knobs(spark)
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    try:
        spark.sql(f"VACUUM delta.`{path(warehouse)}` RETAIN 0 HOURS")
    finally:
        spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "true")


def _redelivery(spark: SparkSession, location: str) -> DataFrame:
    last_two = [r[0] for r in spark.read.format("delta").load(location).select("result_month")
                .distinct().orderBy(F.desc("result_month")).limit(2).collect()]
    return (spark.read.format("delta").load(location)
            .where((F.col("loinc_code") == GLUCOSE) & F.col("result_month").isin(last_two))
            .localCheckpoint())


def unpruned_merge(spark: SparkSession, warehouse: Path) -> None:
    """The lab's re-delivery upsert with the partition predicate left out of the ON clause."""
    location = path(warehouse)
    _redelivery(spark, location).createOrReplaceTempView("redelivery_variant")
    spark.sql(f"""
        MERGE INTO delta.`{location}` t USING redelivery_variant s
        ON t.lab_result_id = s.lab_result_id
        WHEN MATCHED AND s.updated_at >= t.updated_at THEN UPDATE SET *
        WHEN NOT MATCHED THEN INSERT *""")


def restore_wrong_version(spark: SparkSession, warehouse: Path) -> int:
    """A new bad DELETE, then RESTORE to the version before the re-delivery MERGE instead of the
    version before the DELETE. Returns the version restored to."""
    location = path(warehouse)
    target = _last_version(spark, location, "MERGE") - 1
    spark.sql(f"DELETE FROM delta.`{location}` WHERE loinc_code = '{GLUCOSE}'")
    spark.sql(f"RESTORE TABLE delta.`{location}` TO VERSION AS OF {target}")
    return target
