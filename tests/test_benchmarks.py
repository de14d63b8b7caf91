"""Smoke tests: the benchmark scripts run at a tiny scale, so they cannot rot (no timing asserts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import copy_warehouse

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _run(*args: str) -> str:
    out = subprocess.run([sys.executable, *args], cwd=BENCH, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out.stdout


def test_datagen_benchmark_prints_a_row_per_scale() -> None:
    out = _run("bench_datagen.py", "--scales", "0.02", "0.04", "--no-write")
    assert out.count("\n  0.0") == 2


def test_fault_list_prints_a_row_per_fault_and_no_traceback() -> None:
    out = _run("faults.py", "--only", "empty latest commit", "`[/]`")
    rows = [line for line in out.splitlines() if line.startswith("| ") and "damaged" in line]
    assert len(rows) == 2 and all(row.endswith("| 0 | no |") for row in rows), out


@pytest.mark.spark
@pytest.mark.notebooks
def test_grader_benchmark_compares_both_paths(solution_runs: dict, bundled_data: Path) -> None:
    out = _run("bench_grader.py", "--warehouse", str(solution_runs["warehouse"]),
               "--data", str(bundled_data), "--runs", "1", "--no-write")
    assert "medilake_lab check" in out and "Spark path / grader" in out


@pytest.mark.spark
@pytest.mark.notebooks
def test_end_to_end_benchmark_runs_lab_01_at_tiny_scale() -> None:
    out = _run("bench_end_to_end.py", "--scales", "0.02", "--labs", "01", "--no-catchup", "--no-write")
    assert "| lab 01 s |" in out and "| 0.02 | 01 |" in out and "| yes |" in out


@pytest.mark.spark
@pytest.mark.notebooks
def test_first_checks_after_a_run_are_timed_per_lab(solution_runs: dict, bundled_data: Path, tmp_path: Path,
                                                     monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    from bench_end_to_end import time_first_checks

    checks = time_first_checks(["01", "03"], solution_runs["warehouse"], bundled_data, tmp_path / "state")
    assert list(checks) == ["01", "03"] and all(code == 0 and seconds > 0 for seconds, code in checks.values())
    failing = time_first_checks(["01"], tmp_path / "no-warehouse", bundled_data, tmp_path / "state")
    assert failing["01"][1] != 0  # a check that fails is reported as such, not timed as a pass


def test_a_runs_time_is_split_by_the_lab_events_it_prints(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    from bench_end_to_end import phases
    from common import timed

    # as `medilake_lab run` prints them, with colour codes, progress bars (\r) and a byte that is not UTF-8
    script = ("import sys, time\nout = sys.stdout.buffer\n"
              "for lab in ('01', '02'):\n"
              "    out.write(f'\\x1b[1m▶ lab {lab}\\x1b[0m Title: executing\\n'.encode()); out.flush()\n"
              "    time.sleep(0.5)\n"
              "    out.write(b'Executing: 50%\\rExecuting: 100% \\xff\\n  done in 1 s -> x\\n'); out.flush()\n"
              "time.sleep(0.3)\n")
    marks: list[tuple[float, str]] = []
    wall, code, _ = timed([sys.executable, "-c", script], log=tmp_path / "log", marks=marks)
    assert code == 0 and [line for _, line in marks] == ["▶ lab 01 Title: executing", "done in 1 s -> x",
                                                         "▶ lab 02 Title: executing", "done in 1 s -> x"]
    assert b"\xff" in (tmp_path / "log").read_bytes()  # the output is kept whole
    parts, ends = phases(marks, wall)
    assert list(parts) == ["start-up", "01", "02", "grading"] and parts["01"] >= 0.4 and parts["grading"] >= 0.2
    assert ends["02"] == marks[3][0]

    assert phases([(1.0, "▶ lab 01 A"), (30.0, "done in 29 s"), (31.0, "▶ lab 02 B"), (90.0, "done in 59 s")],
                  100.0) == ({"start-up": 1.0, "01": 29.0, "02": 59.0, "grading": 10.0}, {"01": 30.0, "02": 90.0})
    with pytest.raises(ValueError, match="no end"):  # a lab whose end was not seen is not guessed
        phases([(1.0, "▶ lab 01 A"), (30.0, "▶ lab 02 B"), (90.0, "done in 59 s")], 100.0)
    with pytest.raises(ValueError, match="missing"):
        phases([(1.0, "▶ lab 01 A")], 100.0)


def test_make_bench_shows_every_target_measured_or_not(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    import common
    from run_all import targets_section

    monkeypatch.delenv(common.TARGETS_ENV, raising=False)
    common.record_target("`make demo`, every lab", "500.0 s", False, "x.py")  # run on its own: nothing kept
    path = tmp_path / "targets.json"
    monkeypatch.setenv(common.TARGETS_ENV, str(path))
    common.record_target("`make demo`, every lab", "400.0 s", True, "bench_end_to_end.py")
    common.record_target("every `check NN`, later runs (median)", "1.30 s (slowest: lab 07)", False,
                         "bench_check_latency.py")
    with pytest.raises(KeyError):
        common.record_target("a target nobody set", "1 s", True, "x.py")
    rows = json.loads(path.read_text())
    assert [r["target"] for r in rows] == ["`make demo`, every lab", "every `check NN`, later runs (median)"]
    table = targets_section(rows, failed=["bench_cluster.py"])
    assert "| `make demo`, every lab | ≤ 420 s | 400.0 s | met |" in table
    assert "| every `check NN`, later runs (median) | ≤ 1 s | 1.30 s (slowest: lab 07) | **missed** |" in table
    assert "| `catchup 04` (labs 01–03) | ≤ 200 s | – | **not measured** |" in table
    assert len([line for line in table.splitlines() if line.startswith("| ")]) == 1 + len(common.TARGETS)
    assert "bench_cluster.py" in table.split("\n\n")[-1]


@pytest.mark.spark
@pytest.mark.notebooks
def test_layout_benchmark_reports_zorder_and_merge(solution_runs: dict, tmp_path: Path) -> None:
    warehouse = copy_warehouse(solution_runs["warehouse"], tmp_path / "warehouse")
    out = _run("bench_layout.py", "--warehouse", str(warehouse), "--files", "8", "--no-write")
    assert "| flat | after ZORDER BY patient_id | 8 |" in out
    assert "| key only |" in out and "| key AND result_month IN (" in out
    assert not (warehouse / "bench").exists(), "the benchmark must remove its scratch schema"


def test_zorder_floor_counts_partitions_whose_id_range_spans_the_key(monkeypatch) -> None:
    """Month A holds files P1–P3 and P4–P6, month B one file P5–P9: P2 can only be in A (1 of 3
    files at best), P5 in both (2 of 3), whether or not the patient has rows there."""
    import pyarrow as pa

    monkeypatch.syspath_prepend(str(BENCH))
    from bench_layout import stats_floor

    files = pa.table({"partition.result_month": ["A", "A", "B"],
                      "min.patient_id": ["P1", "P4", "P5"], "max.patient_id": ["P3", "P6", "P9"]})
    assert stats_floor(files, ["P2", "P5"]) == pytest.approx((1 + 2) / 2 / 3)
    flat = files.drop_columns(["partition.result_month"])
    assert stats_floor(flat, ["P2", "P5"]) == pytest.approx(1 / 3)


def test_results_sections_are_replaced_where_they_stand(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    import common

    monkeypatch.setattr(common, "RESULTS", tmp_path / "RESULTS.md")
    for title, body in (("A", "first"), ("B", "second"), ("A", "again"), ("C", "third")):
        common.write_section(title, body)
    text = common.RESULTS.read_text()
    assert [line for line in text.splitlines() if line.startswith("## ")] == ["## A", "## B", "## C"]
    assert "again" in text and "first" not in text


def test_a_larger_scale_cluster_run_sits_beside_the_scale_1_section(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    import common
    from bench_cluster import section_title

    monkeypatch.setattr(common, "RESULTS", tmp_path / "RESULTS.md")
    for scale, body in ((1.0, "make bench run"), (30.0, "scale 30 run"), (1.0, "next make bench")):
        common.write_section(section_title(scale), body)
    text = common.RESULTS.read_text()
    assert [line for line in text.splitlines() if line.startswith("## ")] == [
        "## Same labs on a standalone cluster", "## Same labs on a standalone cluster, scale 30"]
    assert "scale 30 run" in text and "next make bench" in text and "make bench run" not in text


def test_jvm_profile_report_counts_parts_threads_methods_and_processes(monkeypatch) -> None:
    """profile_jvm.report on `jfr print` text: a sample counts for every part its stack passes
    through; threads lose their number; the top frame is the hottest method."""
    monkeypatch.syspath_prepend(str(BENCH))
    from profile_jvm import report

    def sample(thread: str, *frames: str) -> str:
        stack = "\n".join(f"    {frame}() line: 1" for frame in frames)
        return (f'jdk.ExecutionSample {{\n  startTime = 09:28:39.296\n  sampledThread = "{thread}" '
                f'(javaThreadId = 1)\n  state = "STATE_RUNNABLE"\n  stackTrace = [\n{stack}\n    ...\n  ]\n}}\n\n')

    samples = (sample("Thread-4", "org.codehaus.janino.UnitCompiler.compile",
                      "org.apache.spark.sql.catalyst.expressions.codegen.CodeGenerator$.doCompile",
                      "org.apache.spark.sql.delta.commands.MergeIntoCommand.run")
               + sample("Thread-7", "java.util.HashMap.getNode", "org.apache.spark.sql.delta.Snapshot.state")
               + sample("Executor task launch worker-0", "java.util.HashMap.getNode",
                        "org.apache.parquet.io.RecordReader.read")
               + sample("main"))  # no frames: not a CPU sample
    processes = ('jdk.ProcessStart {\n  command = "chmod 0644 /tmp/x"\n}\n'
                 'jdk.ProcessStart {\n  command = "readlink file:/tmp/y"\n}\n'
                 'jdk.ProcessStart {\n  command = "chmod 0644 /tmp/z"\n}\n')
    text = report(samples, processes, top=2)
    assert text.startswith("3 CPU samples")
    assert "| Delta (any) | 66.7 % |" in text and "| Janino code generation | 33.3 % |" in text
    assert "| Delta MERGE | 33.3 % |" in text and "| Delta log replay, snapshot | 33.3 % |" in text
    assert "| Parquet | 33.3 % |" in text and "Catalyst analyzer" not in text
    assert "busiest threads: Thread 66.7 %, Executor task launch worker 33.3 %" in text
    assert "66.7 %  java.util.HashMap.getNode" in text
    assert text.endswith("processes the JVM started: chmod ×2, readlink ×1")


def test_jvm_thread_cpu_is_read_per_thread_kind_and_reports_the_jit_share(monkeypatch, tmp_path: Path) -> None:
    """profile_jvm.thread_cpu on a /proc tree (proc(5) stat lines): user + system ticks per thread,
    numbered threads of one kind added up under one name; thread_report states the JVM's total, the
    compiler threads' share and what ended threads used; the live /proc of this process reads too."""
    import os

    monkeypatch.syspath_prepend(str(BENCH))
    from profile_jvm import process_cpu, thread_cpu, thread_report

    tick = os.sysconf("SC_CLK_TCK")

    def stat(number: int, name: str, user: int, system: int) -> str:  # seconds → a stat line in ticks
        return f"{number} ({name}) S {' '.join(['0'] * 10)} {user * tick} {system * tick} {' '.join(['0'] * 30)}\n"

    threads = {"C2 CompilerThre": (30, 10), "C1 CompilerThre": (8, 2), "Executor task l": (5, 0),
               "Thread-3": (12, 3), "Thread-17": (20, 4)}  # name: (user, system) CPU seconds
    for number, (name, (user, system)) in enumerate(threads.items(), 100):
        (tmp_path / "42" / "task" / str(number)).mkdir(parents=True)
        (tmp_path / "42" / "task" / str(number) / "stat").write_text(stat(number, name, user, system))
    (tmp_path / "42" / "stat").write_text(stat(42, "java", 90, 10))  # 6 s more: threads that ended
    kinds = thread_cpu(42, proc=tmp_path)
    assert kinds == {"C2 CompilerThre": 40, "C1 CompilerThre": 10, "Executor task l": 5, "Thread": 39}
    report = thread_report(kinds, process_cpu(42, proc=tmp_path)).splitlines()
    assert report[0] == ("JVM: 100.0 CPU s; threads alive at the end 94.0 s, of which the JIT compilers "
                         "50.0 s (50 % of the JVM's); threads that had ended 6.0 s")
    assert report[1].split() == ["40.0", "s", "C2", "CompilerThre"]
    assert sum(thread_cpu(os.getpid()).values()) > 0 and process_cpu(os.getpid()) > 0  # this interpreter
