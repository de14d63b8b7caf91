"""Lab 06 spike: the solution pipeline runs once through the kit's runner on a fresh warehouse,
and what it wrote is read back without a JVM (delta-rs, DuckDB), as the grader will."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb
import pytest
from deltalake import DeltaTable

from medilake_lab.datagen import generate
from medilake_lab.datagen.delivery import prepare_landing
from medilake_lab.runtime import config, pipelines

pytestmark = [pytest.mark.spark, pytest.mark.slow]

SOLUTION = config.project_root() / "solutions" / "06_declarative_pipelines"


def _operations(table: Path) -> list[str]:
    return [entry["operation"] for entry in reversed(DeltaTable(table).history())]


def _lines(folder: Path) -> int:
    return sum(1 for f in folder.glob("*.json.gz") for line in gzip.open(f, "rt") if line.strip())


def test_solution_pipeline_first_run(tmp_path: Path) -> None:
    generate(tmp_path / "data", scale=0.03, seed=13)  # the fast tier's small data: Spark time is mostly start-up
    warehouse = tmp_path / "wh"
    landing = prepare_landing(tmp_path / "data", warehouse) / "landing"
    pipeline = pipelines.load_pipeline(SOLUTION, warehouse)
    result = pipelines.run_pipeline(pipeline)
    assert "Run is COMPLETED." in result.events
    check_first_run(pipeline, landing)


def check_first_run(pipeline: pipelines.Pipeline, landing: Path) -> None:
    """What a first run of the solution pipeline must have written (read without a JVM)."""
    warehouse = pipeline.warehouse
    bronze = warehouse / "bronze" / "encounters_dp"
    assert _operations(bronze) == ["CREATE TABLE", "STREAMING UPDATE"]
    assert DeltaTable(bronze).to_pyarrow_table().num_rows == _lines(landing / "encounters")
    assert (pipeline.checkpoint("bronze", "encounters_dp") / "0" / "commits" / "0").is_file()
    for mv in ("silver/encounters_dp", "silver/lab_results_dp", "gold/encounters_by_class_dp"):
        assert _operations(warehouse / mv) == ["CREATE TABLE", "WRITE"], mv

    # the expectation counts the run recorded = the same rules recomputed by DuckDB over bronze
    db = duckdb.connect()
    db.register("lab_results", DeltaTable(warehouse / "bronze" / "lab_results_dp").to_pyarrow_table())
    newest = """SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY lab_result_id
                ORDER BY updated_at DESC, _batch_id DESC) AS _rn FROM lab_results) WHERE _rn = 1 AND op <> 'D'"""
    expected = db.sql(f"""SELECT count(*) FILTER (WHERE NOT coalesce(value IS NOT NULL, false)) AS value_present,
        count(*) FILTER (WHERE NOT coalesce(ref_low <= ref_high, false)) AS plausible_reference_range,
        count(*) FILTER (WHERE NOT coalesce(_corrupt_record IS NULL AND lab_result_id IS NOT NULL, false))
          AS well_formed FROM ({newest})""").fetchall()[0]
    log = DeltaTable(pipeline.event_log).to_pyarrow_table().to_pylist()
    assert [event["origin"]["dataset_name"] for event in log] == ["silver.lab_results_dp"]
    quality = json.loads(log[0]["details"])["flow_progress"]["data_quality"]
    failed = {e["name"]: e["failed_records"] for e in quality["expectations"]}
    assert failed == dict(zip(("value_present", "plausible_reference_range", "well_formed"), expected, strict=True))
    silver_rows = DeltaTable(warehouse / "silver" / "lab_results_dp").to_pyarrow_table().num_rows
    assert silver_rows + quality["dropped_records"] == db.sql(f"SELECT count(*) FROM ({newest})").fetchall()[0][0]
