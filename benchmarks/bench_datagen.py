"""Benchmark the synthetic feed generator: records/second, wall time and peak memory.

Each scale runs in a fresh subprocess so peak RSS (``resource.getrusage`` ``ru_maxrss``) is that
run's own. Prints one table row per scale: records (valid JSON records written), wall seconds,
records per wall second, CPU seconds (user + system, all threads; compression overlaps with
serialisation on a second core), peak RSS and size on disk. The target is >= 1 million records
in <= 30 s on 2 cores. Wall time on a shared machine varies with its load; CPU time much less.

Usage::

    python benchmarks/bench_datagen.py                 # scales 1 and 10
    python benchmarks/bench_datagen.py --scales 1 5 15 --seed 7
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

_CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from medilake_lab.datagen import generate
m = generate(sys.argv[1], scale=float(sys.argv[2]), seed=int(sys.argv[3]))
wall = time.perf_counter() - t0
use = resource.getrusage(resource.RUSAGE_SELF)  # ru_maxrss is in KiB on Linux
print(json.dumps({"lines": m["totals"]["lines"], "records": m["totals"]["records"],
                  "wall": wall, "cpu": use.ru_utime + use.ru_stime,
                  "peak_mib": use.ru_maxrss / 1024}))
"""


def run(scale: float, seed: int) -> dict:
    """Generate one scale into a temporary folder in a subprocess; returns its measurements."""
    with tempfile.TemporaryDirectory(prefix="bench_datagen_") as tmp:
        out = subprocess.run([sys.executable, "-c", _CHILD, tmp, str(scale), str(seed)],
                             check=True, capture_output=True, text=True)
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tmp) for f in fs)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {**result, "scale": scale, "mib_on_disk": size / 2**20}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-write", dest="write", action="store_false",
                        help="do not update benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load:.1f}")
    header = (f"{'scale':>6} {'lines':>10} {'records':>10} {'wall s':>8} {'records/s':>10} "
              f"{'cpu s':>7} {'peak MiB':>9} {'disk MiB':>9}")
    print(header)
    print("-" * len(header))
    body = ("| scale | records | wall s | records/s | CPU s | peak MiB | disk MiB |\n"
            "|---|---|---|---|---|---|---|\n")
    for scale in args.scales:
        r = run(scale, args.seed)
        print(f"{r['scale']:>6g} {r['lines']:>10,} {r['records']:>10,} {r['wall']:>8.2f} "
              f"{r['records'] / r['wall']:>10,.0f} {r['cpu']:>7.2f} {r['peak_mib']:>9.0f} "
              f"{r['mib_on_disk']:>9.1f}")
        body += (f"| {r['scale']:g} | {r['records']:,} | {r['wall']:.2f} | "
                 f"{r['records'] / r['wall']:,.0f} | {r['cpu']:.2f} | {r['peak_mib']:.0f} | "
                 f"{r['mib_on_disk']:.1f} |\n")
    if args.write:
        from common import write_section

        write_section("Generator throughput", body + f"\nload average at start: {load:.1f}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
