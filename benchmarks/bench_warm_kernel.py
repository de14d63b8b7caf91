"""Lab notebooks in one kernel (``notebooks.WarmKernel``: ``run all``, ``catchup``, the test suite)
against a kernel each (as before issue 20's change): wall and CPU seconds of the whole process tree
(benchmarks/cpu_time.py) of executing the solutions of ``--labs`` into an empty warehouse on the
bundled data, then the grade of each lab. The two modes alternate, so a busy spell hits both.

Usage::

    python benchmarks/bench_warm_kernel.py [--labs 01 02] [--runs 1] [--no-write]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile

from common import write_section
from cpu_time import tree_time

SECTION = "One kernel for a whole run"

#: The child: execute the labs' solution notebooks (one kernel for all when argv[2] == "warm"),
#: then print each lab's grade as ``grade <lab> <passed>/<total>``; exit 1 unless every check passes.
CHILD = """
import sys
from contextlib import nullcontext
from medilake_lab import grader
from medilake_lab.contract.labs import get_lab
from medilake_lab.course.notebooks import WarmKernel, execute_lab, solutions_dir
warehouse, mode, labs = sys.argv[1], sys.argv[2], sys.argv[3:]
with (WarmKernel(solutions_dir()) if mode == "warm" else nullcontext()) as kernel:
    for lab in labs:
        execute_lab(get_lab(lab), warehouse=warehouse, kernel=kernel)
reports = [grader.grade(lab, warehouse) for lab in labs]
for report in reports:
    print(f"grade {report.lab} {report.passed}/{report.total}", flush=True)
sys.exit(0 if all(report.ok for report in reports) else 1)
"""

MODES = {"cold": "a kernel (and a JVM) per notebook", "warm": "one kernel for all (WarmKernel)"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labs", nargs="+", default=["01", "02"])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md")
    args = parser.parse_args(argv)
    wall: dict[str, list[float]] = {m: [] for m in MODES}
    cpu: dict[str, list[float]] = {m: [] for m in MODES}
    for run in range(args.runs):
        for mode in MODES:
            with tempfile.TemporaryDirectory(prefix=f"bench-{mode}-") as tmp:
                took = tree_time([sys.executable, "-c", CHILD, f"{tmp}/wh", mode, *args.labs],
                                 env={"MEDILAKE_STATE": f"{tmp}/state"})
            if took.code:
                raise RuntimeError(f"{mode} run exited {took.code} (a notebook failed or a check did not pass)")
            wall[mode].append(took.wall)
            cpu[mode].append(took.cpu)
            print(f"run {run + 1} {mode}: wall {took.wall:.1f} s, cpu {took.cpu:.1f} s", flush=True)
    rows = [f"| {MODES[m]} | {statistics.median(wall[m]):.1f} | {statistics.median(cpu[m]):.1f} | {args.runs} |"
            for m in MODES]
    saving = 1 - statistics.median(wall["warm"]) / statistics.median(wall["cold"])
    body = "\n".join([
        f"Labs {', '.join(args.labs)}: their solution notebooks executed into an empty warehouse (bundled data, "
        "scale 1), then graded (every check of every lab must pass, or the run fails).",
        "", "| mode | median wall s | median CPU s | runs |", "|---|---|---|---|", *rows, "",
        f"One kernel: **{saving:.0%} less wall time**. Command: `python benchmarks/bench_warm_kernel.py "
        f"--labs {' '.join(args.labs)} --runs {args.runs}`."])
    print(body)
    if not args.no_write:
        write_section(SECTION, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
