# ruff: noqa: F821 - `spark` is the session spark-pipelines puts into this file's globals
"""Bronze: one streaming table per feed over lab 06's landing volume (<warehouse>/volumes/lab06).

A streaming table reads each landed file once: the flow's checkpoint remembers which files it has
read, so an update after `medilake_lab deliver --volume lab06` reads only the new batch.
"""

from pyspark import pipelines as dp
from pyspark.sql import functions as F

from medilake_lab.contract import feeds
from medilake_lab.runtime import config

# MEDILAKE_WAREHOUSE is set by `medilake_lab pipeline`, so this is the warehouse of the run
LANDING = config.volume_dir(name="lab06") / feeds.LANDING_DIR


def bronze_table(feed: str) -> None:
    """Declare the streaming table bronze.<feed>_dp: every line of every landed file of `feed`, typed
    by the contract's schema, plus _corrupt_record, _source_file and _batch_id."""

    @dp.table(name=f"bronze.{feed}_dp", comment=f"raw {feed}, one row per landed line")
    def ingest():
        # BEGIN SOLUTION readStream of LANDING / feed: contract schema + _corrupt_record; _source_file, _batch_id
        return (spark.readStream.schema(feeds.FEEDS[feed].ddl() + ", _corrupt_record STRING")
                .option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", "_corrupt_record")
                .option("allowSingleQuotes", "false")
                .json(str(LANDING / feed))
                .select("*", F.col("_metadata.file_name").alias("_source_file"),
                        F.regexp_extract("_metadata.file_name", r"_(\d+)\.json", 1).alias("_batch_id")))
        # END SOLUTION


for name in ("encounters", "lab_results"):
    bronze_table(name)
