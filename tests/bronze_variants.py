"""Realistic WRONG ways to build bronze tables, for grader tests (each mirrors a real mistake)."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from medilake_lab.contract import feeds


def read(spark: SparkSession, data: Path, feed: str, batch: str, *, mode: str = "PERMISSIVE",
         explicit: bool = True, corrupt: bool = True, metadata: tuple[str, ...] = (
             "_ingested_at", "_source_file", "_batch_id")) -> DataFrame:
    spec = feeds.FEEDS[feed]
    reader = spark.read.option("mode", mode).option("allowSingleQuotes", "false")
    if explicit:
        schema = spec.ddl(include_drift=feed == feeds.DRIFT_FEED and batch >= feeds.DRIFT_FIRST_BATCH)
        if corrupt:
            schema += ", _corrupt_record STRING"
        reader = reader.schema(schema)
    df = reader.json(spec.path(str(data), batch))
    columns = {"_ingested_at": F.current_timestamp(), "_source_file": F.col("_metadata.file_path"),
               "_batch_id": F.lit(batch)}
    for name in metadata:
        df = df.withColumn(name, columns[name])
    return df


def rebuild(spark: SparkSession, warehouse: Path, data: Path, feed: str, *, write_mode: str = "append",
            batches: tuple[str, ...] = feeds.BATCHES, **read_options) -> None:
    """Drop bronze.<feed> in a warehouse copy and build it again the wrong way."""
    import shutil

    path = warehouse / "bronze" / feed
    shutil.rmtree(path, ignore_errors=True)
    for batch in batches:
        (read(spark, data, feed, batch, **read_options).write.format("delta").mode(write_mode)
         .option("mergeSchema", "true").save(str(path)))
