"""Lab 06 grader on a small fixture warehouse, no JVM: the pipeline's tables, spec and event log
as the solution leaves them (:mod:`fast.pipeline`) pass every check, and each realistic wrong
answer (issue 18's list: ``expect`` where the rule must drop, a missing expectation, an event log
whose counts do not match the data, a gold table defined as a streaming table, a full refresh
where an incremental update was asked for, SCD Type 1 sequenced by ingestion instead of the
change time; and a pipeline run once, never delivered, half built or without event log) fails the
right check with a finding that names the dataset, rule, commit or update and what was observed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from fast import erase_patient
from fast import pipeline as pl
from fast.conftest import copy_of
from fast.grading import Wrong, assert_all_pass, assert_wrong, results
from medilake_lab import grader
from medilake_lab.contract.labs import get_lab
from medilake_lab.grader import Status
from medilake_lab.grader.event_log import EventLogError, read_spec
from medilake_lab.grader.reference import pipeline as rp
from medilake_lab.grader.reference import silver as ref
from medilake_lab.grader.toolkit import connect

LAB = "06"
LABS = "silver.lab_results_dp"
ENCS = "silver.encounters_dp"


@pytest.fixture(scope="session")
def pipeline_warehouse(tmp_path_factory: pytest.TempPathFactory, fast_data: Path) -> Path:
    """Lab 06 solved on its landing volume prepared from the fast data set. Read-only (copy it)."""
    warehouse = tmp_path_factory.mktemp("fast-pipeline") / "wh"
    pl.solve(warehouse, fast_data)
    return warehouse


def _rebuild(**changes: object):  # noqa: ANN202 - a Wrong.build
    return lambda warehouse, data: pl.rebuild(warehouse, data, **changes)


def _spec_named_otherwise(warehouse: Path, data: Path) -> None:
    """The spec renamed after the runs: the event log's last update names a spec of another pipeline."""
    pl.rebuild(warehouse, data)
    pl.write_spec(warehouse, name="my_pipeline")


WRONG_ANSWERS = [
    Wrong("expect_where_the_rule_must_drop", _rebuild(warn=frozenset({"valid_loinc_code"})),
          {"expectations_declared": (f"{LABS}: valid_loinc_code is expect (WARN): rows that fail it reach silver; "
                                     "use expect_or_drop",),
           "dropped_rows": (f"{LABS} holds", "rows that fail valid_loinc_code", "declare it with expect_or_drop"),
           "gold_values": ("gold.abnormal_results_by_test_dp",)},
          passes=("dataset_kinds", "scd1_encounters", "incremental_update")),
    Wrong("missing_expectation", _rebuild(missing=frozenset({"known_operation"})),
          {"expectations_declared": (f"{LABS} declares no expectation known_operation (op is I, U or D)",
                                     "@expect_or_fail(\"known_operation\"")},
          passes=("gold_values", "scd1_encounters")),
    Wrong("event_log_counts_do_not_match", _rebuild(stale_counts=True),
          {"expectation_counts": ("well_formed: the event log says", "failed, the landing files give",
                                  "well_formed: counted over", "the candidate rows are",
                                  "counts recorded by hand or by an older run do not match the data")},
          passes=("expectations_declared", "scd1_encounters", "gold_values")),
    Wrong("gold_defined_as_a_streaming_table", _rebuild(streaming_gold=frozenset({"gold.encounters_by_class_dp"})),
          {"dataset_kinds": ("gold.encounters_by_class_dp is written by 2 STREAMING UPDATE commits",
                             "epochId 0", "a streaming table", "@dp.materialized_view"),
           "gold_values": ("gold.encounters_by_class_dp", "duplicate key")},
          passes=("incremental_update", "expectation_counts")),
    Wrong("full_refresh_instead_of_incremental", _rebuild(full_refresh=True),
          {"incremental_update": ("bronze.encounters_dp: v2 TRUNCATE, then v4 STREAMING UPDATE epochId 0 of query",
                                  "rows = every landed line: a full refresh re-read every file",
                                  "without --full-refresh")},
          passes=("dataset_kinds", "scd1_encounters", "gold_values", "expectation_counts")),
    Wrong("scd1_sequenced_by_ingestion", _rebuild(order=pl.BY_INGESTION),
          {"scd1_encounters": ("encounters hold an older version than their newest by updated_at, e.g. ",
                               "sequence the changes by updated_at (the change time), not by _batch_id or file order")},
          passes=("dataset_kinds", "expectations_declared", "incremental_update")),
    Wrong("pipeline_run_once", _rebuild(updates=1),
          {"pipeline_runs": ("holds 1 completed update", "run the pipeline before the delivery of batch 004 and "
                             "again after it"),
           "incremental_update": ("bronze.encounters_dp has not read batch 004 yet",
                                  "run the pipeline again after the delivery")},
          passes=("dataset_kinds",)),
    Wrong("batch_004_never_delivered", _rebuild(delivered=False),
          {"incremental_update": ("the lab06 landing volume holds only the bundled encounters batches (001, 002, 003)",
                                  "medilake_lab deliver --volume lab06")},
          passes=("pipeline_runs", "dataset_kinds", "scd1_encounters", "expectation_counts")),
    Wrong("event_log_missing", lambda wh, data: shutil.rmtree(pl.home(wh) / "event_log"),
          {"pipeline_runs": ("pipeline medilake_lab06 has no event log at", "medilake_lab pipeline run")},
          passes=("dataset_kinds", "scd1_encounters", "gold_values", "incremental_update")),
    Wrong("spec_names_another_pipeline", _spec_named_otherwise,
          {"pipeline_runs": ("names the pipeline 'my_pipeline', the lab's is 'medilake_lab06'",)},
          passes=("dataset_kinds", "scd1_encounters")),
    Wrong("gold_view_missing", lambda wh, data: shutil.rmtree(wh / "gold" / "abnormal_results_by_test_dp"),
          {"tables_exist": ("gold.abnormal_results_by_test_dp", "run lab 06")}),
]


def test_solution_passes_every_check(pipeline_warehouse: Path, fast_data: Path) -> None:
    assert_all_pass(grader.grade(LAB, pipeline_warehouse, fast_data), [c.id for c in get_lab(LAB).checks])


@pytest.mark.parametrize("wrong", WRONG_ANSWERS, ids=lambda w: w.name)
def test_wrong_answer_fails_the_right_check(wrong: Wrong, pipeline_warehouse: Path, fast_data: Path,
                                            tmp_path: Path) -> None:
    warehouse = copy_of(pipeline_warehouse, tmp_path)
    wrong.build(warehouse, fast_data)
    assert_wrong(grader.grade(LAB, warehouse, fast_data), wrong, fast_data)


def test_the_fixture_exercises_every_rule(pipeline_warehouse: Path) -> None:
    """The fast data breaks every drop rule and the warn rule (so the counts are evidence), and the
    solution's rows equal lab 02's clean rows (the equivalence the grader relies on)."""
    data = pl.volume(pipeline_warehouse)
    lab = rp.counts("lab_results", data)
    assert all(lab.failed[r] > 0 for r in ("well_formed", "required_fields", "valid_loinc_code",
                                           "plausible_reference_range")), lab
    assert lab.failed["known_operation"] == 0
    for feed in rp.FEEDS:
        assert rp.counts(feed, data).kept == ref.expected_clean(feed, data).num_rows


def test_a_damaged_event_log_is_a_finding(pipeline_warehouse: Path, fast_data: Path, tmp_path: Path) -> None:
    """An event whose details are not JSON names the table and the event, without a traceback."""
    warehouse = copy_of(pipeline_warehouse, tmp_path)
    log = pl.home(warehouse) / "event_log"
    update = pl.Update(3, False)
    update.event("update_progress", {"state": "COMPLETED"})
    update.events[0]["details"] = "{not json"
    write_deltalake(str(log), pa.Table.from_pylist(update.events, pl.EVENT_SCHEMA), mode="append")
    status, finding = results(grader.grade(LAB, warehouse, fast_data))["pipeline_runs"]
    assert status is Status.FAIL and "update_progress event" in finding and "unreadable details" in finding, finding


@pytest.mark.parametrize(("text", "fragment"), [
    ("name: other\nstorage: x\n", None),
    ("name: medilake_lab06\nlibrary: []\n", "library: Extra inputs are not permitted"),
    ("name: [unclosed\n", "is not valid YAML"),
], ids=["named_otherwise", "unknown_key", "not_yaml"])
def test_spec_reader(tmp_path: Path, text: str, fragment: str | None) -> None:
    spec = tmp_path / "spark-pipeline.yml"
    spec.write_text(text)
    if fragment is None:
        assert read_spec(spec).name == "other"
    else:
        with pytest.raises(EventLogError, match=fragment):
            read_spec(spec)


def test_ingestion_order_finding_counts_the_stale_encounters(pipeline_warehouse: Path, fast_data: Path,
                                                             tmp_path: Path) -> None:
    """The SCD Type 1 finding names as many encounters as hold, by delivery order, a last valid
    version older than their newest (counted here from the landing files) — the data has some."""
    warehouse = copy_of(pipeline_warehouse, tmp_path)
    pl.rebuild(warehouse, fast_data, order=pl.BY_INGESTION)
    records = ref.records("encounters", pl.volume(warehouse))
    con = connect(r=records.filter(records["_reason"].is_null()))
    late = con.execute(
        "SELECT count(*) FROM (SELECT arg_max(updated_at, (_batch, _line)) AS last, arg_max(op, (_batch, _line)) "
        "AS last_op, max(updated_at) AS newest, arg_max(op, updated_at) AS newest_op FROM r GROUP BY encounter_id) "
        "WHERE last < newest AND last_op <> 'D' AND newest_op <> 'D'").fetchall()[0][0]
    assert late > 0
    status, finding = results(grader.grade(LAB, warehouse, fast_data))["scd1_encounters"]
    assert status is Status.FAIL and finding.startswith(f"{late} encounters hold an older version"), finding


@pytest.mark.parametrize("rerun", [False, True], ids=["rows_deleted", "pipeline_run_again"])
def test_lab07_erasure_keeps_lab06_passing(rerun: bool, pipeline_warehouse: Path, fast_data: Path,
                                          tmp_path: Path) -> None:
    """After lab 07's audited erasure of one patient — DELETEs on the datasets with a patient_id
    (gold, aggregates, left as computed), or the same followed by another update that recomputes
    the views — every check still passes: each recomputation leaves the patient out exactly where
    the data was written after the request."""
    warehouse = copy_of(pipeline_warehouse, tmp_path)
    patient, changed = erase_patient.erase_with_audit(warehouse, fast_data)
    assert {"bronze.encounters_dp", ENCS, LABS} <= set(changed), changed
    if rerun:
        pl.run_update(warehouse, 3, pl.Knobs(), pl.write_spec(warehouse))
    assert_all_pass(grader.grade(LAB, warehouse, fast_data), [c.id for c in get_lab(LAB).checks])


def test_checkpoint_listing_old_files_is_a_finding(pipeline_warehouse: Path, fast_data: Path, tmp_path: Path) -> None:
    """The Delta log can look incremental while the checkpoint says the micro-batch read an old
    file again (e.g. a landed file copied anew): the finding names the checkpoint and the files."""
    warehouse = copy_of(pipeline_warehouse, tmp_path)
    folder = pl.checkpoint(warehouse, "encounters")
    old, new = pl.landed(warehouse, "encounters")[-2:]
    entries = [f'{{"path": "{f.resolve().as_uri()}", "timestamp": 1, "batchId": 1}}' for f in (old, new)]
    (folder / "sources" / "0" / "1").write_text("\n".join(["v1", *entries]))
    status, finding = results(grader.grade(LAB, warehouse, fast_data))["incremental_update"]
    assert status is Status.FAIL and f"checkpoint {folder} says micro-batch 1 of bronze.encounters_dp read " \
        f"{old.name}, {new.name}, not only {new.name}" in finding, finding
