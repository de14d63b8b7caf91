"""Lab 06 grader, both directions, with real pipeline runs: the warehouse the solution notebook built
(two updates of the solution pipeline around a delivery) passes every check, and what the kit's
driver wrote agrees with what was landed; wrong answers fail the right check with the observed
value in the finding:

* a pipeline whose rules and sequencing are wrong (``expect`` where a rule must drop; encounters
  sequenced by ingestion, ``_batch_id``, instead of ``updated_at``): one real run of a broken copy
  of the project on a fresh warehouse;
* a full refresh where an incremental update was asked for, and a gold dataset written as a
  streaming table: the Delta commits those leave (``TRUNCATE`` then ``STREAMING UPDATE`` epoch 0
  under a new query id; ``STREAMING UPDATE`` commits in gold) written with a Spark session on copies
  of the solution warehouse, which costs seconds instead of a pipeline run each (what SDP's own full
  refresh writes was observed in the spike, docs/lab06-declarative-pipelines-spike.md §5).

Each pipeline run costs minutes on two cores, so there are two: the notebook's (shared with every
lab's tests through ``solution_runs``) and the broken project's.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from deltalake import DeltaTable

from conftest import copy_warehouse
from medilake_lab import grader
from medilake_lab.contract import feeds
from medilake_lab.contract.labs import get_lab
from medilake_lab.course.notebooks import NotebookError, execute_notebook, labs_dir, solutions_dir
from medilake_lab.datagen.delivery import deliver, prepare_landing
from medilake_lab.grader import Status
from medilake_lab.grader.reference import silver as reference
from medilake_lab.runtime import config, pipelines

pytestmark = [pytest.mark.spark, pytest.mark.notebooks]

PROJECT = solutions_dir() / "06_declarative_pipelines"


def _failures(report: grader.LabReport) -> dict[str, str]:
    return {r.id.split(".", 1)[1]: r.finding for r in report.results if r.status is Status.FAIL}


@pytest.fixture(scope="module")
def solution_warehouse(solution_runs: dict) -> Path:
    assert "06" not in solution_runs["errors"], solution_runs["errors"].get("06")
    assert "06" in solution_runs["executed"]
    return solution_runs["warehouse"]


@pytest.fixture
def wh(solution_warehouse: Path, tmp_path: Path) -> Path:
    """A private copy of the solution warehouse that a test may break (never run a pipeline on it:
    its metastore belongs to the original, see pipelines.check_metastore)."""
    return copy_warehouse(solution_warehouse, tmp_path / "wh")


def _history(table: Path) -> list[dict]:
    return list(reversed(DeltaTable(table).history()))


def _lines(path: Path) -> int:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return sum(1 for line in lines if line.strip())


def _events(warehouse: Path) -> list[dict]:
    log = pipelines.load_pipeline(PROJECT, warehouse).event_log
    return sorted(DeltaTable(log).to_pyarrow_table().to_pylist(), key=lambda e: e["timestamp"])


def test_solution_passes_every_check(solution_warehouse: Path, bundled_data: Path) -> None:
    report = grader.grade("06", solution_warehouse, bundled_data)
    assert _failures(report) == {}
    assert report.ok and report.total == len(get_lab("06").checks)


def test_the_kits_driver_recorded_two_updates_and_counts_that_match_the_landed_lines(solution_warehouse: Path) -> None:
    """What the driver wrote, read back without a JVM: two updates, the second incremental (the
    streaming table's checkpoint lists only batch 004, its commit reads that file's lines under
    run 1's query id), and expectation counts equal to lab 02's rules recomputed from the files."""
    volume = config.volume_dir(solution_warehouse, "lab06")
    events = _events(solution_warehouse)
    updates = [e["origin"]["update_id"] for e in events if e["event_type"] == "create_update"]
    states = [json.loads(e["details"])["update_progress"]["state"] for e in events
              if e["event_type"] == "update_progress"]
    assert len(updates) == 2 and states == ["COMPLETED", "COMPLETED"]

    streaming = [c for c in _history(config.table_path("bronze", "encounters_dp", solution_warehouse))
                 if c["operation"] == "STREAMING UPDATE"]
    assert [c["operationParameters"]["epochId"] for c in streaming] == ["0", "1"]
    assert streaming[0]["operationParameters"]["queryId"] == streaming[1]["operationParameters"]["queryId"]
    assert int(streaming[1]["operationMetrics"]["numOutputRows"]) == _lines(
        Path(feeds.FEEDS["encounters"].path(str(volume), "004")))
    sources = pipelines.load_pipeline(PROJECT, solution_warehouse).checkpoint("bronze", "encounters_dp") / "0/sources/0"
    assert [json.loads(line)["path"].rsplit("/", 1)[-1] for line in (sources / "1").read_text().splitlines()
            if line.startswith("{")] == ["encounters_004.json.gz"]

    last = [e for e in events if e["origin"]["update_id"] == updates[-1] and e["event_type"] == "flow_progress"]
    quality = {e["origin"]["flow_name"]: json.loads(e["details"])["flow_progress"]["data_quality"] for e in last}
    failed = {e["name"]: e["failed_records"] for e in quality["silver.lab_results_dp"]["expectations"]}
    assert failed["well_formed"] == reference.malformed("lab_results", volume).num_rows > 0
    assert failed["known_operation"] == 0
    first = quality["silver.lab_results_dp"]["expectations"][0]
    candidates = first["passed_records"] + first["failed_records"]  # the rows the view's query returned
    # the rows the last update wrote (its WRITE commit), not the table now: lab 07, run after this lab
    # in the same warehouse, DELETEs an erased patient's rows from the view
    writes = [c for c in _history(config.table_path("silver", "lab_results_dp", solution_warehouse))
              if c["operation"] == "WRITE"]
    written = int(writes[-1]["operationMetrics"]["numOutputRows"])
    assert written + quality["silver.lab_results_dp"]["dropped_records"] == candidates


def _broken_project(tmp_path: Path) -> Path:
    """The solution project with two classic mistakes: the LOINC rule declared with ``expect``
    (warn) instead of dropping, and encounters sequenced by ingestion (newest batch wins)."""
    project = tmp_path / "project"
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns("__pycache__"))
    lab_results = project / "transformations" / "silver_lab_results.py"
    text = lab_results.read_text()
    rule = '    "valid_loinc_code": f"loinc_code IN ({LOINC})",\n'
    assert rule in text
    warn = 'WARN_RULES = {"valid_loinc_code": f"loinc_code IN ({LOINC})", '
    text = text.replace(rule, "").replace("WARN_RULES = {", warn)
    lab_results.write_text(text)
    encounters = project / "transformations" / "silver_encounters.py"
    order = "ORDER BY updated_at DESC, _batch_id)"
    assert order in encounters.read_text()
    encounters.write_text(encounters.read_text().replace(order, "ORDER BY _batch_id DESC)"))
    return project


def test_a_pipeline_with_a_warn_rule_and_ingestion_order_fails_those_checks(tmp_path: Path, bundled_data: Path) -> None:
    """Two updates around a delivery, as the lab asks (the expectation checks need both), on one
    kept server (development mode), which then stops."""
    warehouse = tmp_path / "wh"
    pipeline = pipelines.load_pipeline(_broken_project(tmp_path), warehouse)
    prepare_landing(bundled_data, warehouse, volume="lab06")
    try:
        pipelines.run_pipeline(pipeline, keep_server=True)
        server = pipelines._SERVERS[pipeline.home]
        deliver(warehouse, bundled_data, volume="lab06")
        pipelines.run_pipeline(pipeline)  # uses the kept server
        assert pipelines._SERVERS == {pipeline.home: server} and server.alive()
    finally:
        pipelines.stop_servers()
    assert server.process.returncode == 0 and not (pipeline.home / "server.json").exists()
    failures = _failures(grader.grade("06", warehouse, bundled_data))
    assert "valid_loinc_code" in failures["expectations_declared"]
    assert "expect_or_drop" in failures["expectations_declared"]
    assert "silver.lab_results_dp" in failures["dropped_rows"]
    assert "silver.encounters_dp" in failures["scd1_encounters"]
    assert "older" in failures["scd1_encounters"]
    assert "pipeline_runs" not in failures and "incremental_update" not in failures


def test_a_full_refresh_where_an_incremental_update_was_asked_for_fails(spark_session, wh: Path, tmp_path: Path,
                                                                        bundled_data: Path) -> None:
    """Run 2 as ``--full-refresh``: bronze.encounters_dp rebuilt with the commits SDP leaves then —
    run 1 (epoch 0 of a query, batches 001-003), then TRUNCATE and epoch 0 of a new query that
    re-reads all four landed files."""
    from pyspark.sql import functions as F

    bronze = config.table_path("bronze", "encounters_dp", wh)
    shutil.rmtree(bronze)
    landing = config.volume_dir(wh, "lab06") / feeds.LANDING_DIR / "encounters"
    first = tmp_path / "run1-landing"
    first.mkdir()
    for batch in feeds.BATCHES:
        shutil.copy2(landing / f"encounters_{batch}{feeds.FILE_SUFFIX}", first)

    def stream(folder: Path, checkpoint: str) -> None:
        (spark_session.readStream.schema(feeds.FEEDS["encounters"].ddl() + ", _corrupt_record STRING")
         .option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", "_corrupt_record").json(str(folder))
         .select("*", F.col("_metadata.file_name").alias("_source_file"),
                 F.regexp_extract("_metadata.file_name", r"_(\d+)\.json", 1).alias("_batch_id"))
         .writeStream.format("delta").option("checkpointLocation", str(tmp_path / checkpoint))
         .trigger(availableNow=True).start(str(bronze))).awaitTermination()

    stream(first, "run1")
    spark_session.sql(f"CREATE TABLE lab06_refresh USING delta LOCATION '{bronze}'")
    try:
        spark_session.sql("TRUNCATE TABLE lab06_refresh")
    finally:
        spark_session.sql("DROP TABLE lab06_refresh")  # the catalog entry only: the folder stays
    stream(landing, "run2-full-refresh")
    streaming = [c for c in _history(bronze) if c["operation"] == "STREAMING UPDATE"]
    assert [c["operationParameters"]["epochId"] for c in streaming] == ["0", "0"]
    assert [c["operation"] for c in _history(bronze)][-2:] == ["TRUNCATE", "STREAMING UPDATE"]
    finding = _failures(grader.grade("06", wh, bundled_data))["incremental_update"]
    assert "bronze.encounters_dp" in finding


def test_a_gold_dataset_written_as_a_streaming_table_fails(spark_session, wh: Path, bundled_data: Path) -> None:
    """`@dp.table` over a stream for a gold aggregate: its commits are STREAMING UPDATEs (complete
    mode rewrites the aggregate each micro-batch) instead of a materialized view's TRUNCATE + WRITE."""
    gold = config.table_path("gold", "encounters_by_class_dp", wh)
    shutil.rmtree(gold)
    (spark_session.readStream.format("delta").load(str(config.table_path("bronze", "encounters_dp", wh)))
     .where("_corrupt_record IS NULL AND encounter_id IS NOT NULL").groupBy("encounter_class").count()
     .withColumnRenamed("count", "encounters")
     .writeStream.format("delta").outputMode("complete").option("checkpointLocation", str(wh / "gold-checkpoint"))
     .trigger(availableNow=True).start(str(gold))).awaitTermination()
    finding = _failures(grader.grade("06", wh, bundled_data))["dataset_kinds"]
    assert "gold.encounters_by_class_dp" in finding and "STREAMING UPDATE" in finding


def test_untouched_learner_notebook_fails(tmp_path: Path, bundled_data: Path) -> None:
    wh = tmp_path / "learner-wh"
    with pytest.raises(NotebookError, match="TODO"):
        execute_notebook(labs_dir() / get_lab("06").notebook, tmp_path / "out.ipynb",
                         {"warehouse": str(wh), "data_dir": str(bundled_data)}, progress=False)
    assert not grader.grade("06", wh, bundled_data).ok
