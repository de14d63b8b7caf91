# ruff: noqa: F821 - `spark` is the session spark-pipelines puts into this file's globals
"""Bronze: one streaming table per feed over lab 05's landing volume (<warehouse>/volumes/landing).

A streaming table reads each landed file once: the flow's checkpoint remembers which files it has
read, so a run after `medilake_lab deliver` reads only the new batch.
"""

from pyspark import pipelines as dp
from pyspark.sql import functions as F

from medilake_lab.contract import feeds
from medilake_lab.runtime import config

LANDING = config.volume_dir() / feeds.LANDING_DIR  # MEDILAKE_WAREHOUSE is set by `medilake_lab pipeline`


def bronze_table(feed: str) -> None:
    """Declare streaming table bronze.<feed>_dp over the feed's landing folder."""

    @dp.table(name=f"bronze.{feed}_dp", comment=f"raw {feed}, one row per landed line")
    def ingest():
        return (spark.readStream.schema(feeds.FEEDS[feed].ddl() + ", _corrupt_record STRING")
                .option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", "_corrupt_record")
                .option("allowSingleQuotes", "false")
                .json(str(LANDING / feed))
                .select("*", F.col("_metadata.file_name").alias("_source_file"),
                        F.regexp_extract("_metadata.file_name", r"_(\d+)\.json", 1).alias("_batch_id")))


for name in ("encounters", "lab_results"):
    bronze_table(name)
