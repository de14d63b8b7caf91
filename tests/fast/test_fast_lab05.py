"""Lab 05 grader on a small fixture warehouse, no JVM: the streaming tables and checkpoints the
solution leaves (:mod:`fast.streaming`) pass every check, and each realistic wrong answer (a shared
checkpoint, a restart from a fresh one, a foreachBatch MERGE without transaction ids replayed after
a crash, a batch overwrite of a stream, complete mode, a schema change never picked up, a stale
silver, a stream not re-run after a delivery, no delivery at all) fails the right check with a
finding that names the table, checkpoint or file and what was observed. The checkpoint reader is
tested on damaged and compacted logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fast import streaming as st
from fast.conftest import copy_of
from fast.grading import Wrong, assert_all_pass, assert_wrong, results
from medilake_lab import grader
from medilake_lab.contract.labs import get_lab
from medilake_lab.errors import CheckpointError
from medilake_lab.grader import Status
from medilake_lab.grader.checkpoint import read_checkpoint

LAB = "05"
SILVER = "silver.encounters_stream"
GOLD = "gold.abnormal_labs_hourly"


@pytest.fixture(scope="session")
def stream_warehouse(tmp_path_factory: pytest.TempPathFactory, fast_data: Path) -> Path:
    """Lab 05 solved on a volume prepared from the fast data set. Read-only (copy it)."""
    warehouse = tmp_path_factory.mktemp("fast-stream") / "wh"
    st.solve(warehouse, fast_data)
    return warehouse


def _gold_not_rerun(warehouse: Path) -> None:
    """The aggregate not run after the last delivery: the micro-batch that read the last
    lab_results file (and the no-data one after it) never happened."""
    last = st.files(warehouse, "lab_results")[-1].name
    while last in {f.name for f in read_checkpoint(st.checkpoint_dir(warehouse, st.GOLD_QUERY)).files}:
        st.undo_last_batch(warehouse, GOLD, st.GOLD_QUERY)


WRONG_ANSWERS = [
    Wrong("shared_checkpoint", st.shared_checkpoint,
          {"one_checkpoint_per_query": ("bronze_lab_results/metadata is missing",
                                        "bronze.lab_results_stream has no STREAMING UPDATE commit and no checkpoint "
                                        "of its own", "Wrong basePath"),
           "streaming_writes": ("bronze.lab_results_stream has no STREAMING UPDATE commit",)},
          passes=("exactly_once_silver", "silver_values")),
    Wrong("checkpoint_lists_two_feeds", st.checkpoint_lists_two_feeds,
          {"one_checkpoint_per_query": ("checkpoint bronze_encounters lists files of 2 feeds (encounters, lab_results)",
                                        "bronze.lab_results_stream is written by query",
                                        "the id of checkpoint bronze_encounters")},
          passes=("streaming_writes", "exactly_once_silver", "silver_values")),
    Wrong("restart_from_fresh_checkpoint", st.fresh_checkpoint,
          {"one_checkpoint_per_query": ("bronze.encounters_stream has STREAMING UPDATE commits of 2 query ids",
                                        "restarted from a fresh checkpoint")},
          passes=("streaming_writes", "exactly_once_silver")),
    Wrong("merge_without_txn_replayed", st.no_txn_replayed,
          {"exactly_once_silver": (f"no commit of {SILVER} carries a transaction version of app "
                                   "'medilake-silver-encounters'",
                                   "6 MERGE commits for 5 committed micro-batches", "merged more than once")},
          passes=("silver_values", "streaming_writes", "one_checkpoint_per_query")),
    Wrong("stream_replaced_by_batch_overwrite", st.batch_overwrite,
          {"streaming_writes": ("bronze.encounters_stream has batch writes", "WRITE (mode=Overwrite)")},
          passes=("files_once", "one_checkpoint_per_query")),
    Wrong("aggregate_in_complete_mode", st.complete_mode,
          {"watermark_aggregate": (f"{GOLD} is written in Complete output mode", "outputMode=Complete",
                                   "never drops late data")},
          passes=("streaming_writes", "one_checkpoint_per_query")),
    Wrong("watermark_delay_of_10_minutes", st.short_watermark,
          {"watermark_aggregate": ("trails the latest result_ts by 10 minutes",
                                   'the lab asks for withWatermark("result_ts", "6 hours")')},
          passes=("streaming_writes", "one_checkpoint_per_query")),
    Wrong("abnormal_includes_the_bounds", st.bounds_abnormal,
          {"watermark_aggregate": (f"{GOLD}: abnormal_results differs on", "observed")},
          passes=("streaming_writes", "one_checkpoint_per_query")),
    Wrong("specimen_type_missing", st.no_schema_restart,
          {"schema_evolution": ("bronze.lab_results_stream has no specimen_type column",
                                "lab_results_005.json.gz")},
          passes=("files_once", "streaming_writes")),
    Wrong("silver_not_run_after_last_delivery", st.stale_silver,
          {"silver_values": (f"{SILVER}:", "expected row(s) missing, e.g. ENC-D005-")},
          passes=("exactly_once_silver", "streaming_writes")),
    Wrong("bronze_not_run_after_last_delivery", st.bronze_not_rerun,
          {"files_once": ("lab_results_005.json.gz is not in checkpoint bronze_lab_results's source log",)},
          passes=("one_checkpoint_per_query", "streaming_writes")),
    Wrong("gold_not_run_after_last_delivery", lambda wh, data: _gold_not_rerun(wh),
          {"watermark_aggregate": ("checkpoint gold_abnormal_labs_hourly has not read lab_results_005.json.gz",
                                   "run the aggregate again after the last delivery")},
          passes=("files_once", "streaming_writes", "one_checkpoint_per_query")),
    Wrong("nothing_delivered", st.never_delivered,
          {"files_once": ("the landing volume holds only the bundled encounters batches (001, 002, 003)",
                          "medilake_lab deliver")},
          passes=("one_checkpoint_per_query",)),
    Wrong("gold_missing", st.gold_missing,
          {"tables_exist": (GOLD, "run lab 05")}),
]


def test_solution_passes_every_check(stream_warehouse: Path, fast_data: Path) -> None:
    assert_all_pass(grader.grade(LAB, stream_warehouse, fast_data), [c.id for c in get_lab(LAB).checks])


@pytest.mark.parametrize("wrong", WRONG_ANSWERS, ids=lambda w: w.name)
def test_wrong_answer_fails_the_right_check(wrong: Wrong, stream_warehouse: Path, fast_data: Path,
                                            tmp_path: Path) -> None:
    warehouse = copy_of(stream_warehouse, tmp_path)
    wrong.build(warehouse, fast_data)
    assert_wrong(grader.grade(LAB, warehouse, fast_data), wrong, fast_data)


def test_the_fixture_drops_late_rows_as_the_grader_recomputes(stream_warehouse: Path, fast_data: Path) -> None:
    """The watermark rule is exercised: the fixture's step-by-step simulation of Spark drops late
    rows, and the grader's closed-form recomputation from the checkpoint drops as many."""
    simulated = st.simulate_hourly(st.files(stream_warehouse, "lab_results"))
    assert simulated.dropped > 0
    status, finding = results(grader.grade(LAB, stream_warehouse, fast_data))["watermark_aggregate"]
    assert status is Status.PASS and f"({simulated.dropped} late row" in finding, finding


def _source_log(folder: Path, batches: range, compact_at: int, *, keep_old: bool) -> None:
    """A file source log of one file per batch, compacted at ``compact_at`` (every entry so far in
    ``<compact_at>.compact``); ``keep_old``: the files before it are not deleted yet."""
    folder.mkdir(parents=True)
    entry = lambda b: json.dumps({"path": f"file:///v/landing/lab_results/f{b}.json.gz", "timestamp": 1, "batchId": b})  # noqa: E731
    for b in batches:
        if b == compact_at:
            (folder / f"{b}.compact").write_text("\n".join(["v1", *(entry(i) for i in range(b + 1))]))
        elif b > compact_at or keep_old:
            (folder / str(b)).write_text(f"v1\n{entry(b)}")
    (folder / f".{compact_at}.compact.crc").write_bytes(b"\x00crc")  # Hadoop's checksum files are skipped


@pytest.mark.parametrize("keep_old", [False, True], ids=["old_files_deleted", "old_files_kept"])
def test_checkpoint_reader_reads_compacted_source_logs(tmp_path: Path, keep_old: bool) -> None:
    root = tmp_path / "cp"
    _source_log(root / "sources" / "0", range(12), compact_at=9, keep_old=keep_old)
    (root / "metadata").write_text('{"id":"q-1"}')
    cp = read_checkpoint(root)
    assert cp.query_id == "q-1"
    assert [(f.batchId, f.name) for f in cp.files] == [(b, f"f{b}.json.gz") for b in range(12)]
    assert [f.folder for f in cp.files_of(10)] == ["lab_results"]


@pytest.mark.parametrize(("query", "file", "text", "fragment"), [
    ("gold_abnormal_labs_hourly", "offsets/2", 'v1\n{"batchWatermarkMs": 1, ', "holds a line that is not JSON"),
    ("gold_abnormal_labs_hourly", "offsets/1", "v1\n{\"batchWatermarkMs\": \"soon\"}\n{}", "batchWatermarkMs"),
    ("bronze_encounters", "sources/0/3", 'v1\n{"path": "file:///x"}', "batchId: Field required"),
    ("silver_encounters", "commits/0", "1\n{}", "does not start with a log version line like 'v1'"),
    ("silver_encounters", "metadata", None, "is missing"),
], ids=["offsets_not_json", "watermark_not_a_number", "source_entry_incomplete", "no_version_line",
        "metadata_missing"])
def test_damaged_checkpoint_is_a_finding(query: str, file: str, text: str | None, fragment: str,
                                         stream_warehouse: Path, fast_data: Path, tmp_path: Path) -> None:
    warehouse = copy_of(stream_warehouse, tmp_path)
    path = st.checkpoint_dir(warehouse, query) / file
    if text is None:
        path.unlink()
    else:
        path.write_text(text)
    found = results(grader.grade(LAB, warehouse, fast_data))
    status, finding = found["one_checkpoint_per_query"]
    assert status is Status.FAIL and f"checkpoint file {path}" in finding and fragment in finding, finding
    assert found["files_once"][0] is Status.SKIP
    with pytest.raises(CheckpointError, match=fragment):
        read_checkpoint(path.parent if file == "metadata" else st.checkpoint_dir(warehouse, query))
