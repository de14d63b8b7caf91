"""Lab 05 grader, both directions, with real streams: the solution notebook's warehouse passes every
check, and streams written the wrong way on copies of it fail the right check with the observed
value in the finding. Every check's wrong answers on hand-built checkpoints and tables are in
tests/fast/test_fast_lab05.py (no JVM)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conftest import copy_warehouse
from medilake_lab import grader
from medilake_lab.contract import feeds
from medilake_lab.contract.labs import get_lab
from medilake_lab.course.notebooks import NotebookError, execute_notebook, labs_dir
from medilake_lab.grader import Status
from medilake_lab.runtime import config

pytestmark = [pytest.mark.spark, pytest.mark.notebooks]


def _failures(report: grader.LabReport) -> dict[str, str]:
    return {r.id.split(".", 1)[1]: r.finding for r in report.results if r.status is Status.FAIL}


@pytest.fixture(scope="module")
def solution_warehouse(solution_runs: dict) -> Path:
    assert "05" not in solution_runs["errors"], solution_runs["errors"].get("05")
    assert "05" in solution_runs["executed"]
    return solution_runs["warehouse"]


@pytest.fixture
def wh(solution_warehouse: Path, tmp_path: Path) -> Path:
    """A private copy of the solution warehouse that a test may break."""
    return copy_warehouse(solution_warehouse, tmp_path / "wh")


def _lab_results(spark, wh: Path):
    """The lab results landing folder of ``wh`` as the solution streams it (one file per trigger)."""
    schema = feeds.FEEDS["lab_results"].ddl() + ", _corrupt_record STRING"
    return (spark.readStream.schema(schema).option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", "_corrupt_record").option("maxFilesPerTrigger", 1)
            .json(str(config.volume_dir(wh) / "landing" / "lab_results")))


def test_solution_passes_every_check(solution_warehouse: Path, bundled_data: Path) -> None:
    report = grader.grade("05", solution_warehouse, bundled_data)
    assert _failures(report) == {}
    assert report.ok and report.total == len(get_lab("05").checks)


def test_restart_from_a_fresh_checkpoint_reads_everything_again(spark_session, wh, bundled_data):
    """The classic mistake: a new checkpoint folder for the same query (a typo, a "clean start")."""
    from pyspark.sql import functions as F

    query = (_lab_results(spark_session, wh)
             .select("*", F.current_timestamp().alias("_ingested_at"),
                     F.col("_metadata.file_path").alias("_source_file"),
                     F.regexp_extract("_metadata.file_name", r"_(\d+)\.json", 1).alias("_batch_id"))
             .writeStream.format("delta").option("mergeSchema", "true")
             .option("checkpointLocation", str(config.checkpoint_dir("bronze_lab_results_new", wh)))
             .trigger(availableNow=True).start(str(config.table_path("bronze", "lab_results_stream", wh))))
    query.awaitTermination()
    failures = _failures(grader.grade("05", wh, bundled_data))
    finding = failures["one_checkpoint_per_query"]
    assert "bronze.lab_results_stream has STREAMING UPDATE commits of 2 query ids" in finding
    assert "fresh checkpoint" in finding


def test_silver_merge_without_the_newer_guard_fails(spark_session, wh, bundled_data):
    """The foreachBatch MERGE most learners write first: update every match and delete on every
    delete, with no "source is newer" condition and no remembered deletes. Bronze commits reach it
    one delivery per micro-batch, so older versions in later deliveries overwrite newer ones."""
    from delta.tables import DeltaTable
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    silver = config.table_path("silver", "encounters_stream", wh)
    columns = spark_session.read.format("delta").load(str(silver)).columns
    shutil.rmtree(silver)
    shutil.rmtree(config.checkpoint_dir("silver_encounters", wh))
    spark_session.read.format("delta").load(str(config.table_path("bronze", "encounters_stream", wh))) \
        .where("false").withColumn("length_of_stay_days", F.lit(None).cast("int")) \
        .select(*columns).write.format("delta").save(str(silver))
    required = " AND ".join(f"{c} IS NOT NULL" for c in feeds.FEEDS["encounters"].required)

    def upsert(batch, batch_id: int) -> None:
        newest = (batch.where(f"_corrupt_record IS NULL AND {required}")
                  .withColumn("_rn", F.row_number().over(Window.partitionBy("encounter_id")
                                                         .orderBy(F.desc("updated_at"))))
                  .where("_rn = 1")
                  .withColumn("length_of_stay_days", F.date_diff(F.to_date("discharge_ts"), F.to_date("admit_ts"))))
        (DeltaTable.forPath(batch.sparkSession, str(silver)).alias("t")
         .merge(newest.alias("s"), "t.encounter_id = s.encounter_id")
         .whenMatchedDelete("s.op = 'D'")
         .whenMatchedUpdate(set={c: f"s.{c}" for c in columns})
         .whenNotMatchedInsert("s.op <> 'D'", values={c: f"s.{c}" for c in columns})
         .execute())

    query = (spark_session.readStream.format("delta").option("maxFilesPerTrigger", 1)
             .load(str(config.table_path("bronze", "encounters_stream", wh)))
             .writeStream.foreachBatch(upsert)
             .option("checkpointLocation", str(config.checkpoint_dir("silver_encounters", wh)))
             .trigger(availableNow=True).start())
    query.awaitTermination()
    failures = _failures(grader.grade("05", wh, bundled_data))
    assert "silver.encounters_stream" in failures["silver_values"]
    assert "hold another delivered version" in failures["silver_values"]


def test_complete_mode_aggregate_fails(spark_session, wh, bundled_data):
    """Complete mode never drops late data and rewrites the whole result every micro-batch."""
    from pyspark.sql import functions as F

    gold = config.table_path("gold", "abnormal_labs_hourly", wh)
    shutil.rmtree(gold)
    shutil.rmtree(config.checkpoint_dir("gold_abnormal_labs_hourly", wh))
    hourly = (_lab_results(spark_session, wh)
              .where("_corrupt_record IS NULL AND op <> 'D' AND result_ts IS NOT NULL AND value IS NOT NULL "
                     "AND ref_low IS NOT NULL AND ref_high IS NOT NULL")
              .withWatermark("result_ts", "6 hours").groupBy(F.window("result_ts", "1 hour"))
              .agg(F.count("*").alias("results"),
                   F.count_if((F.col("value") < F.col("ref_low")) | (F.col("value") > F.col("ref_high")))
                   .alias("abnormal_results"))
              .select(F.col("window.start").alias("window_start"), F.col("window.end").alias("window_end"),
                      "results", "abnormal_results"))
    query = (hourly.writeStream.format("delta").outputMode("complete")
             .option("checkpointLocation", str(config.checkpoint_dir("gold_abnormal_labs_hourly", wh)))
             .trigger(availableNow=True).start(str(gold)))
    query.awaitTermination()
    failures = _failures(grader.grade("05", wh, bundled_data))
    assert "written in Complete output mode" in failures["watermark_aggregate"]
    assert set(failures) == {"watermark_aggregate"}


def test_untouched_learner_notebook_fails(tmp_path: Path, bundled_data: Path) -> None:
    wh = tmp_path / "learner-wh"
    with pytest.raises(NotebookError, match="NotImplementedError"):
        execute_notebook(labs_dir() / get_lab("05").notebook, tmp_path / "out.ipynb",
                         {"warehouse": str(wh), "data_dir": str(bundled_data)}, progress=False)
    assert not grader.grade("05", wh, bundled_data).ok
