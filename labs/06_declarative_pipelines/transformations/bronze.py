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
        # TODO: readStream of LANDING / feed: contract schema + _corrupt_record; _source_file, _batch_id
        raise NotImplementedError("TODO: readStream of LANDING / feed: contract schema + _corrupt_record; _source_file, _batch_id")


for name in ("encounters", "lab_results"):
    bronze_table(name)
