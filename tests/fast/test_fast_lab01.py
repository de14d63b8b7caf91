"""Lab 01 grader on small fixture tables, no JVM: the correct bronze tables pass every check, and
each realistic wrong answer (the mistakes of tests/bronze_variants.py, rebuilt with delta-rs)
fails the right check with a finding that names the table and what was observed."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from fast import deltafix as dx
from fast.conftest import copy_of
from fast.grading import Wrong, assert_all_pass, assert_wrong
from fast.medallion import bronze_batch
from medilake_lab import grader
from medilake_lab.contract import feeds
from medilake_lab.contract.labs import get_lab

LAB = "01"


def _lines(data: Path, feed: str) -> list[str]:
    """Non-blank lines of every delivered file of a feed (counted here, not by the grader)."""
    out = []
    for batch in feeds.BATCHES:
        with gzip.open(feeds.FEEDS[feed].path(str(data), batch), "rt", encoding="utf-8") as fh:
            out += [line.rstrip("\n") for line in fh if line.strip()]
    return out


def _not_json(line: str) -> bool:
    try:
        return not isinstance(json.loads(line), dict)
    except ValueError:
        return True


def _rebuild(warehouse: Path, feed: str, batches: dict[str, pa.Table], mode: str = "append") -> None:
    """Drop bronze.<feed> and write the given batches again, one commit each (mergeSchema on)."""
    path = dx.table_dir(warehouse, f"bronze.{feed}")
    shutil.rmtree(path)
    for rows in batches.values():
        dx.write(path, rows, mode, merge_schema=mode == "append")


def overwrite_each_batch(warehouse: Path, data: Path) -> None:
    """mode("overwrite") instead of append: only the last batch survives."""
    _rebuild(warehouse, "lab_results", {b: bronze_batch("lab_results", b, data) for b in feeds.BATCHES},
             mode="overwrite")


def dropmalformed(warehouse: Path, data: Path) -> None:
    """mode DROPMALFORMED and no _corrupt_record column: malformed lines vanish."""
    _rebuild(warehouse, "encounters", {
        b: (t := bronze_batch("encounters", b, data)).filter(pc.is_null(t["_corrupt_record"]))
        .drop_columns(["_corrupt_record"]) for b in feeds.BATCHES})


def corrupt_filtered_out(warehouse: Path, data: Path) -> None:
    """PERMISSIVE read, then .where(col("_corrupt_record").isNull()) before the write."""
    _rebuild(warehouse, "patients", {
        b: (t := bronze_batch("patients", b, data)).filter(pc.is_null(t["_corrupt_record"]))
        for b in feeds.BATCHES})


def ingest_twice(warehouse: Path, data: Path) -> None:
    """The batch-002 cell run again: its file appended a second time."""
    dx.write(dx.table_dir(warehouse, "bronze.diagnoses"), bronze_batch("diagnoses", "002", data))


def no_batch_id(warehouse: Path, data: Path) -> None:
    """_ingested_at and _source_file added, _batch_id forgotten."""
    _rebuild(warehouse, "medications", {b: bronze_batch("medications", b, data).drop_columns(["_batch_id"])
                                        for b in feeds.BATCHES})


def _inferred(lines: list[str]) -> pa.Table:
    """What spark.read.json infers for these lines: columns sorted by name, numbers as long or
    double, everything else (dates, timestamps) as string; malformed lines in _corrupt_record."""
    records = [None if _not_json(line) else json.loads(line) for line in lines]
    names = sorted({k for r in records if r for k in r})
    columns = {}
    for name in names:
        values = [r.get(name) if r else None for r in records]
        kinds = {type(v) for v in values if v is not None}
        if kinds <= {int}:
            columns[name] = pa.array(values, pa.int64())
        elif kinds <= {int, float}:
            columns[name] = pa.array([None if v is None else float(v) for v in values], pa.float64())
        else:
            columns[name] = pa.array([v if v is None or isinstance(v, str) else json.dumps(v) for v in values],
                                     pa.string())
    columns["_corrupt_record"] = pa.array([line if r is None else None for line, r in zip(lines, records,
                                                                                          strict=True)])
    return pa.table(columns)


def inferred_schema(warehouse: Path, data: Path) -> None:
    """spark.read.json without a schema: procedure_ts and updated_at stay strings."""
    batches = {}
    for batch in feeds.BATCHES:
        with gzip.open(feeds.FEEDS["procedures"].path(str(data), batch), "rt", encoding="utf-8") as fh:
            rows = _inferred([line.rstrip("\n") for line in fh if line.strip()])
        meta = bronze_batch("procedures", batch, data).select(["_ingested_at", "_source_file", "_batch_id"])
        batches[batch] = pa.table({**{n: rows[n] for n in rows.column_names},
                                   **{n: meta[n] for n in meta.column_names}})
    _rebuild(warehouse, "procedures", batches)


def drift_column_lost(warehouse: Path, data: Path) -> None:
    """Every batch read with the batch-001 schema: admission_source never reaches the table."""
    _rebuild(warehouse, "encounters", {b: bronze_batch("encounters", b, data, drift=False)
                                       for b in feeds.BATCHES})


def patients_missing(warehouse: Path, data: Path) -> None:
    """The patients cell never ran."""
    shutil.rmtree(dx.table_dir(warehouse, "bronze.patients"))


def _encounter_counts(data: Path) -> str:
    lines = _lines(data, "encounters")
    return f"bronze.encounters has {len(lines) - sum(map(_not_json, lines))} rows for {len(lines)} delivered lines"


WRONG_ANSWERS = [
    Wrong("overwrite", overwrite_each_batch,
          {"append_only": ("bronze.lab_results", "Overwrite"),
           "all_batches": ("bronze.lab_results lacks batch 001",),
           "row_counts": ("bronze.lab_results has",)},
          passes=("explicit_schema", "metadata_columns")),
    Wrong("dropmalformed", dropmalformed,
          {"malformed_kept": ("bronze.encounters has no _corrupt_record column",),
           "row_counts": (_encounter_counts,)},
          passes=("append_only", "all_batches", "schema_drift")),
    Wrong("corrupt_records_filtered", corrupt_filtered_out,
          {"malformed_kept": (lambda d: f"{sum(map(_not_json, _lines(d, 'patients')))} malformed lines were "
                                        "delivered to patients", "bronze.patients kept 0")},
          passes=("append_only", "metadata_columns")),
    Wrong("ingested_twice", ingest_twice,
          {"no_double_ingestion": ("diagnoses_002.json.gz ingested 2×",),
           "row_counts": ("bronze.diagnoses has",)},
          passes=("append_only", "all_batches")),
    Wrong("no_batch_id", no_batch_id, {"metadata_columns": ("bronze.medications lacks _batch_id",)},
          passes=("row_counts", "all_batches")),
    Wrong("schema_inferred", inferred_schema,
          {"explicit_schema": ("bronze.procedures.procedure_ts is string, expected timestamp",)},
          passes=("row_counts", "malformed_kept")),
    Wrong("drift_column_lost", drift_column_lost,
          {"schema_drift": ("bronze.encounters.admission_source is missing",
                            lambda d: f"{sum('admission_source' in line for line in _lines(d, 'encounters'))} "
                                      "delivered records carry it")},
          passes=("row_counts", "append_only")),
    Wrong("table_missing", patients_missing, {"tables_exist": ("bronze.patients", "run lab 01")}),
]


def test_solution_passes_every_check(silver_warehouse: Path, fast_data: Path) -> None:
    assert_all_pass(grader.grade(LAB, silver_warehouse, fast_data), [c.id for c in get_lab(LAB).checks])


@pytest.mark.parametrize("wrong", WRONG_ANSWERS, ids=lambda w: w.name)
def test_wrong_answer_fails_the_right_check(wrong: Wrong, silver_warehouse: Path, fast_data: Path,
                                            tmp_path: Path) -> None:
    warehouse = copy_of(silver_warehouse, tmp_path)
    wrong.build(warehouse, fast_data)
    assert_wrong(grader.grade(LAB, warehouse, fast_data), wrong, fast_data)

