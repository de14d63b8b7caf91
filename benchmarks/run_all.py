"""`make bench`: run every benchmark and write benchmarks/RESULTS.md.

The end-to-end run keeps its scale-1 warehouse (every lab built by the solutions), and the grader,
layout and check-latency benchmarks measure that same warehouse instead of rebuilding it. The
benchmarks note their issue-20 targets (:func:`common.record_target`); the run ends with one
section that puts them together with met/missed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import TARGETS, TARGETS_ENV, write_section

HERE = Path(__file__).resolve().parent
TARGETS_TITLE = "Targets of issue 20 (one `make bench` run)"


def targets_section(rows: list[dict], failed: list[str]) -> str:
    """The summary table of :data:`common.TARGETS`: each with the figure a benchmark recorded (rows of
    :func:`common.record_target`), or "not measured" when none did."""
    recorded = {r["target"]: r for r in rows}
    body = "| target | limit | measured | status | benchmark |\n|---|---|---|---|---|\n"
    for target, limit in TARGETS.items():
        r = recorded.get(target)
        body += (f"| {target} | {limit} | {r['measured']} | {'met' if r['met'] else '**missed**'} | {r['source']} |\n"
                 if r else f"| {target} | {limit} | – | **not measured** | – |\n")
    body += (f"\nMeasured together by `make bench` (`benchmarks/run_all.py`) on {os.cpu_count()} cores at "
             "scale 1. `.ci/run` ≤ 35 min is measured by CI itself, not here.\n")
    if failed:
        body += f"\nBenchmarks that failed or were skipped in this run: {', '.join(failed)}.\n"
    return body


def main() -> int:
    failed = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        warehouse = str(Path(tmp) / "warehouse")
        targets = Path(tmp) / "targets.json"
        env = {**os.environ, TARGETS_ENV: str(targets)}
        steps = [["quiz_bias.py"],
                 ["bench_datagen.py"],
                 ["bench_end_to_end.py", "--keep-warehouse", warehouse],  # scales 1 and 10, then catchup 04
                 ["bench_check_latency.py", "--warehouse", warehouse,  # every lab's check, first and later runs
                  "--title", "Grader latency (every lab, make bench)"],
                 ["bench_warm_kernel.py"],  # labs 01-02 in one kernel vs a kernel each
                 ["bench_grader.py", "--warehouse", warehouse, "--lab", "01"],
                 ["bench_grader.py", "--warehouse", warehouse, "--lab", "02"],
                 ["bench_layout.py", "--warehouse", warehouse],
                 ["bench_cluster.py"]]  # labs 01-04 on a localhost standalone cluster and in local mode
        for number, (script, *args) in enumerate(steps):
            print(f"\n=== {script} {' '.join(args)}", flush=True)
            if subprocess.run([sys.executable, str(HERE / script), *args], cwd=HERE, env=env).returncode:
                failed.append(script)
            if script == "bench_end_to_end.py" and not Path(warehouse).is_dir():
                print("no warehouse was built: skipping the benchmarks that measure it")
                failed += [f"{later} (skipped)" for later, *_ in steps[number + 1:]]
                break
        rows = json.loads(targets.read_text()) if targets.exists() else []
        body = targets_section(rows, failed)
        print(body)
        write_section(TARGETS_TITLE, body)
    print(f"\nwrote {HERE / 'RESULTS.md'}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
