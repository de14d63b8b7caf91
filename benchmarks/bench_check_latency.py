"""Grade latency of every lab: `medilake_lab check NN` as a subprocess, first run and later runs.

For each lab: one **first run** with an empty grader cache (a fresh ``MEDILAKE_STATE`` folder, so
every reference result is computed from the raw files: the first grade after a notebook run,
or ever), then the median of ``--runs`` **later runs** (the cache filled by the first). Wall
seconds are what the targets name; CPU seconds (user + system of the process and its children,
from ``resource.getrusage``) are printed beside them because the machine may be shared.

Targets (issue 20): later runs ≤ 1 s median, the first run ≤ 2 s, on 2 cores.

Usage::

    python benchmarks/bench_check_latency.py --warehouse W [--data D] [--labs 01 02] [--runs 5]
        [--source CHECKOUT] [--save FILE] [--before FILE] [--title T] [--no-write]

``--source`` grades with the package of another checkout (e.g. ``git archive HEAD`` unpacked
into a folder: the figures "before" a change; ``--save`` keeps them, ``--before`` shows them
beside the next run's). The warehouse is only read (the cache lives in the temporary state folder).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, record_target, write_section

LABS = ("01", "02", "03", "04", "05", "06", "07")
RUN_CLI = "import sys; from medilake_lab.cli import app; sys.argv[0] = 'medilake_lab'; sys.exit(app())"
FIRST_TARGET, LATER_TARGET = 2.0, 1.0


def timed_check(lab: str, warehouse: Path, data: Path, env: dict[str, str]) -> tuple[float, float, int]:
    """Run ``medilake_lab check <lab>`` once; returns (wall s, CPU s of the child, exit code)."""
    cmd = [sys.executable, "-c", RUN_CLI, "check", lab, "-w", str(warehouse), "-d", str(data)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    code = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if code not in (0, 1):
        raise RuntimeError(f"check {lab} exited {code}: {' '.join(cmd)}")
    return wall, cpu, code


def measure(lab: str, warehouse: Path, data: Path, runs: int, source: Path | None) -> dict[str, float | int]:
    """First run on an empty cache, then the medians of ``runs`` later runs."""
    with tempfile.TemporaryDirectory(prefix="bench-check-state-") as state:
        env = {**os.environ, "MEDILAKE_STATE": state}
        if source is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), env.get("PYTHONPATH")]))
        first_wall, first_cpu, code = timed_check(lab, warehouse, data, env)
        later = [timed_check(lab, warehouse, data, env) for _ in range(runs)]
    return {"first_wall": first_wall, "first_cpu": first_cpu, "code": code,
            "wall": statistics.median(w for w, _, _ in later), "cpu": statistics.median(c for _, c, _ in later)}


def verdict(seconds: float, target: float) -> str:
    return "met" if seconds <= target else "missed"


def table(results: dict[str, dict[str, float | int]], before: dict[str, dict[str, float | int]] | None = None) -> str:
    """The Markdown table: per lab, first and later runs (wall and CPU), the targets, and with
    ``before`` (results of the same shape) the CPU seconds before beside them."""
    was = " (before → now)" if before else ""
    lines = [f"| lab | first run wall s{was} | first run CPU s{was} | later runs median wall s{was} "
             f"| later runs median CPU s{was} | first ≤ 2 s (wall / CPU) | later ≤ 1 s (wall / CPU) | grade |",
             "|---|---|---|---|---|---|---|---|"]
    for lab, r in results.items():
        old = (before or {}).get(lab)
        cells = [f"{old[k]:.2f} → {r[k]:.2f}" if old else f"{r[k]:.2f}"
                 for k in ("first_wall", "first_cpu", "wall", "cpu")]
        lines.append(f"| {lab} | {' | '.join(cells)} "
                     f"| {verdict(r['first_wall'], FIRST_TARGET)} / {verdict(r['first_cpu'], FIRST_TARGET)} "
                     f"| {verdict(r['wall'], LATER_TARGET)} / {verdict(r['cpu'], LATER_TARGET)} "
                     f"| {'pass' if r['code'] == 0 else 'fail'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=ROOT / "data")
    parser.add_argument("--labs", nargs="+", default=list(LABS))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--source", type=Path, help="a checkout whose package grades (default: this one)")
    parser.add_argument("--title", default="Grader latency (every lab)")
    parser.add_argument("--save", type=Path, help="write the figures to this JSON file")
    parser.add_argument("--before", type=Path, help="a --save file of an earlier run, shown beside")
    parser.add_argument("--no-write", dest="write", action="store_false",
                        help="do not update benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    results = {}
    for lab in args.labs:
        results[lab] = measure(lab, args.warehouse.resolve(), args.data.resolve(), args.runs, args.source)
        print(f"check {lab}: {results[lab]}", flush=True)
    if args.save:
        args.save.write_text(json.dumps(results, indent=1))
    before = json.loads(args.before.read_text()) if args.before else None
    load = os.getloadavg()[0]
    body = table(results, before) + (f"\n{args.runs} later runs per lab; load average {load:.1f} on "
                                     f"{os.cpu_count()} cores at the end (wall times grow with it, CPU times "
                                     "much less). The first run has an empty grader cache (a fresh state "
                                     "folder): a first grade ever, every reference computed from the raw files. "
                                     "The first check after a notebook run reads what the run kept: "
                                     "`bench_end_to_end.py` times it.\n")
    print(body)
    if args.write:
        write_section(args.title, body)
    if not args.source and set(args.labs) == set(LABS):  # every lab, graded by this checkout
        failing = [lab for lab, r in results.items() if r["code"] != 0]
        # the first run here has an empty cache (a first grade ever); bench_end_to_end.py times the
        # first check after a notebook run, which is what the target names
        slowest = max(results, key=lambda lab: results[lab]["wall"])
        seconds = results[slowest]["wall"]
        record_target("every `check NN`, later runs (median)", f"{seconds:.2f} s (slowest: lab {slowest})"
                      + (f"; checks failing in lab(s) {', '.join(failing)}" if failing else ""),
                      seconds <= LATER_TARGET and not failing, "bench_check_latency.py")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
