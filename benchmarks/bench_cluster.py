"""The same labs on a Spark standalone cluster and in local mode: time, peak memory and grade per lab.

For each mode, the solution notebooks of the labs run one lab at a time, unchanged, into a fresh
warehouse with `medilake_lab run NN` (a kernel and a Spark driver per lab, as `make demo` does),
and each lab is graded (`medilake_lab.grader.grade`) after its run:

* **cluster**: a localhost standalone cluster (`medilake_lab.runtime.cluster.local_cluster`: a
  master and two workers started with pyspark's `spark-class`, 1 core and 1 GiB each), chosen with
  the kit's documented setting `MEDILAKE_SPARK_MASTER=spark://127.0.0.1:<port>`;
* **local**: the default `local[2]` session.

Per lab: wall seconds, CPU seconds and the peak of the summed RSS of every process involved,
sampled every 0.2 s with psutil (the CLI, the notebook kernel, the driver JVM and, on the cluster,
the master, the workers and their executor JVMs). Writes the "Same labs on a standalone cluster"
section of RESULTS.md (at another scale than 1: "…, scale N", beside it).

Usage::

    python benchmarks/bench_cluster.py                 # scale 1 (the bundled data), labs 01-04
    python benchmarks/bench_cluster.py --scale 30      # generated data at scale 30 (~2.7 M records)
    python benchmarks/bench_cluster.py --labs 01 --modes cluster --no-write   # smoke run
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from common import BIN, ROOT, print_tail, record_target, sampled, write_section

from medilake_lab import grader
from medilake_lab.runtime import config
from medilake_lab.runtime.cluster import LocalCluster, local_cluster

MODES = ("cluster", "local")
TITLE = "Same labs on a standalone cluster"


def section_title(scale: float) -> str:
    """The RESULTS.md section a run at ``scale`` writes: scale 1 (the target of ``make bench``) keeps
    the plain title, so a larger scale sits beside it instead of replacing it."""
    return TITLE if scale == 1.0 else f"{TITLE}, scale {scale:g}"


def run_labs(mode: str, labs: list[str], data: Path, tmp: Path, rows: list[dict],
             start: Path | None = None) -> None:
    """Run ``labs`` in order in ``mode`` into a fresh warehouse (a copy of ``start`` when given),
    appending one row per lab to ``rows`` as it ends: ``lab``, ``wall``/``cpu`` seconds, ``peak``
    bytes, ``exit`` code, ``passed``/``total`` checks."""
    env = {**os.environ, "MEDILAKE_STATE": str(tmp / f"state-{mode}")}
    env.pop(config.SPARK_MASTER_ENV, None)
    env.pop("SPARK_REMOTE", None)
    warehouse = tmp / f"warehouse-{mode}"
    if start:
        shutil.copytree(start, warehouse)
    starting: AbstractContextManager[LocalCluster | None] = (
        local_cluster(tmp / "cluster", workers=2, cores=1, memory="1g") if mode == "cluster" else nullcontext())
    with starting as cluster:
        if cluster:
            env.update(cluster.env())
            print(f"{mode}: {cluster.master_url}, web UI {cluster.ui_url}", flush=True)
        for lab in labs:
            cmd = [str(BIN / "medilake_lab"), "run", lab, "--yes", "-w", str(warehouse), "-d", str(data)]
            log = tmp / f"run-{mode}-{lab}.log"
            wall, code, peak, cpu = sampled(cmd, env, log, also=cluster.pids if cluster else ())
            report = grader.grade(lab, warehouse, data)
            passed = sum(r.status is grader.Status.PASS for r in report.results)
            rows.append({"lab": lab, "wall": wall, "cpu": cpu, "peak": peak, "exit": code,
                         "passed": passed, "total": report.total})
            print(f"  {mode} lab {lab}: {wall:.0f} s, {cpu:.0f} CPU s, peak {peak / 2**20:.0f} MiB, "
                  f"{passed}/{report.total} checks pass", flush=True)
            if code:
                print_tail(log)
                break


def table(results: dict[str, list[dict]], scale: float) -> str:
    """The Markdown table: one row per lab and mode, and a total per mode."""
    body = ("| scale | mode | lab | wall s | CPU s | peak RSS MiB (all processes) | checks pass |\n"
            "|---|---|---|---|---|---|---|\n")
    for mode, rows in results.items():
        for r in rows:
            body += (f"| {scale:g} | {mode} | {r['lab']} | {r['wall']:.0f} | {r['cpu']:.0f} | "
                     f"{r['peak'] / 2**20:.0f} | {r['passed']}/{r['total']} |\n")
        if rows:
            body += (f"| {scale:g} | {mode} | **all** | **{sum(r['wall'] for r in rows):.0f}** | "
                     f"**{sum(r['cpu'] for r in rows):.0f}** | **{max(r['peak'] for r in rows) / 2**20:.0f}** | "
                     f"**{sum(r['passed'] for r in rows)}/{sum(r['total'] for r in rows)}** |\n")
    return body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="data scale (1 = the bundled data)")
    parser.add_argument("--labs", nargs="+", default=["01", "02", "03", "04"])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--from-warehouse", type=Path,
                        help="start each mode from a copy of this warehouse (the labs before --labs built)")
    parser.add_argument("--no-write", dest="write", action="store_false",
                        help="do not update benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    results: dict[str, list[dict]] = {mode: [] for mode in args.modes}
    stopped, load_start = False, os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as name:
        tmp, data = Path(name), ROOT / "data"
        if args.scale != 1.0:
            from medilake_lab.datagen import generate

            data = tmp / f"data-{args.scale:g}"
            print(f"generating scale {args.scale:g} into {data}", flush=True)
            generate(data, scale=args.scale)
        try:
            for mode in args.modes:
                run_labs(mode, args.labs, data, tmp, results[mode], args.from_warehouse)
        except KeyboardInterrupt:  # keep what was measured
            stopped = True
    body = table(results, args.scale)
    if stopped:
        body += "\nStopped (Ctrl-C) before every lab had run in every mode: the rows above are what ended.\n"
    passing = all(r["exit"] == 0 and r["passed"] == r["total"] for rows in results.values() for r in rows)
    ok = passing and not stopped and all(len(rows) == len(args.labs) for rows in results.values())
    body += (f"\nEvery check of every lab that ran passes: {'yes' if passing else 'NO'}. Command: "
             f"`.venv/bin/python benchmarks/bench_cluster.py --scale {args.scale:g}`. The cluster is a master and "
             "two workers on 127.0.0.1 (1 core, 1 GiB each) started with pyspark's `spark-class`; the notebooks "
             "are unchanged, only `MEDILAKE_SPARK_MASTER` differs. Peak RSS sums every process of the run "
             "(CLI, kernel, driver JVM; on the cluster also master, workers and executor JVMs). Load average "
             f"(1 min) {load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end: on a shared machine "
             "compare CPU s rather than wall s.\n")
    print(body)
    if args.write:
        write_section(section_title(args.scale), body)
    rows = results.get("cluster", [])
    if args.labs == ["01", "02", "03", "04"] and args.scale == 1.0 and rows:
        record_target("labs 01–04 on a standalone cluster",
                      f"{sum(r['passed'] for r in rows)}/{sum(r['total'] for r in rows)} checks pass, "
                      f"{sum(r['wall'] for r in rows):.0f} s",
                      len(rows) == len(args.labs) and all(r["exit"] == 0 and r["passed"] == r["total"] for r in rows),
                      "bench_cluster.py")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
