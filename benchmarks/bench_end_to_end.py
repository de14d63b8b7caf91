"""The README's main job at two scales: wall time and peak memory of the driver process tree.

For each scale the raw feeds are generated (scale 1 uses the bundled data/), then
`medilake_lab run <labs>` executes the solution notebooks headlessly and grades them, exactly as
`make demo` does. Peak RSS is sampled over the CLI, the notebook kernel and the Spark driver JVM
(the largest single process is reported). Writes the "End-to-end" section of RESULTS.md.

Usage::

    python benchmarks/bench_end_to_end.py                  # scales 1 and 10, all labs
    python benchmarks/bench_end_to_end.py --scales 0.02 --labs 01   # smoke run
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import BIN, ROOT, timed, write_section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--labs", default="all", help="lab id or 'all'")
    parser.add_argument("--keep-warehouse", type=Path,
                        help="build the first scale's warehouse here and keep it (for other benchmarks)")
    parser.add_argument("--no-write", dest="write", action="store_false",
                        help="do not update benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
        for scale in args.scales:
            data = ROOT / "data"
            if scale != 1.0:
                from medilake_lab.datagen import generate

                data = Path(tmp) / f"data-{scale:g}"
                generate(data, scale=scale)
            warehouse = Path(tmp) / f"warehouse-{scale:g}"
            if args.keep_warehouse and scale == args.scales[0]:
                warehouse = args.keep_warehouse
            cmd = [str(BIN / "medilake_lab"), "run", args.labs, "--yes", "-w", str(warehouse), "-d", str(data)]
            print(f"scale {scale:g}: {' '.join(cmd)}", flush=True)
            log = Path(tmp) / f"run-{scale:g}.log"
            wall, code, peak = timed(cmd, env={"MEDILAKE_STATE": str(Path(tmp) / "state")}, log=log)
            rows.append((scale, wall, peak, code))
            print(f"  {wall:.1f} s, peak RSS {peak / 2**20:.0f} MiB, exit {code}", flush=True)
            if code:
                print("  last lines of its output:\n    " + "\n    ".join(log.read_text().splitlines()[-30:]))
    base = rows[0][1]
    body = "| scale | labs | wall s | peak RSS MiB | vs first | all checks pass |\n|---|---|---|---|---|---|\n"
    body += "".join(f"| {s:g} | {args.labs} | {w:.1f} | {p / 2**20:.0f} | {w / base:.1f}× | "
                    f"{'yes' if c == 0 else 'NO'} |\n" for s, w, p, c in rows)
    if len(rows) > 1 and all(c == 0 for *_, c in rows):
        first, last = rows[0], rows[-1]
        body += (f"\nTargets: scale {first[0]:g} ≤ 5 min — {'met' if first[1] <= 300 else 'missed'}; "
                 f"scale {last[0]:g} ≤ {last[0] / first[0]:g}× scale {first[0]:g} — "
                 f"{'met' if last[1] <= last[0] / first[0] * first[1] else 'missed'}.\n")
        if first[1] > 300:
            body += ("\nWhat bounds it is mostly fixed cost, not data (compare the two scales): a "
                     "kernel and a JVM start per notebook, lab 02's MERGE per delivery and table, "
                     "lab 03's OPTIMIZE and VACUUM over hundreds of deliberately small files.\n")
    print(body)
    if args.write:
        write_section(f"End-to-end main job (labs {args.labs})", body)
    return 0 if all(c == 0 for *_, c in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
