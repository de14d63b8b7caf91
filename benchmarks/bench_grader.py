"""Grader latency: `medilake_lab check NN` (delta-rs, no JVM) vs the same facts through Spark.

The Spark path starts a fresh session and reads, per table of the lab, DESCRIBE HISTORY,
DESCRIBE DETAIL and the per-file add actions (as a learner would query them), which is what
a Spark-based grader would have to do. Median of N runs each; prints a table and writes
the "Grader latency" section of benchmarks/RESULTS.md.

Usage::

    python benchmarks/bench_grader.py --warehouse W --data D [--lab 01] [--runs 5]

Without --warehouse the lab's solution notebooks are executed into a temporary warehouse first.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from common import BIN, median_time, write_section

SPARK_PATH = """
import sys
from medilake_lab.contract.labs import get_lab
from medilake_lab.runtime.spark import get_spark
spark = get_spark(sys.argv[1])
for name in get_lab(sys.argv[2]).tables:
    spark.sql(f"DESCRIBE HISTORY {name}").collect()
    spark.sql(f"DESCRIBE DETAIL {name}").collect()
    spark.table(name).inputFiles()
    spark.table(name).count()
"""


def build(lab: str, warehouse: Path, data: Path) -> None:
    from medilake_lab.contract.labs import all_labs
    from medilake_lab.course.notebooks import execute_notebook, solutions_dir

    for spec in all_labs():
        if spec.id > lab:
            break
        execute_notebook(solutions_dir() / spec.notebook, warehouse.parent / spec.notebook,
                         {"warehouse": str(warehouse), "data_dir": str(data)}, progress=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", default="01")
    parser.add_argument("--warehouse", type=Path)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parent.parent / "data")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-write", dest="write", action="store_false",
                        help="do not update benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-grader-") as tmp:
        warehouse = args.warehouse or Path(tmp) / "warehouse"
        if args.warehouse is None:
            print(f"building lab {args.lab} from the solutions into {warehouse} …", flush=True)
            build(args.lab, warehouse, args.data)
        check = [str(BIN / "medilake_lab"), "check", args.lab, "-w", str(warehouse), "-d", str(args.data)]
        spark = [sys.executable, "-c", SPARK_PATH, str(warehouse), args.lab]
        grader = median_time(check, args.runs)
        via_spark = median_time(spark, args.runs)
    rows = [("medilake_lab check (delta-rs, no JVM)", grader),
            ("same facts via a fresh Spark session", via_spark)]
    body = "| path | median wall s |\n|---|---|\n" + "".join(f"| {n} | {s:.2f} |\n" for n, s in rows)
    body += f"\nSpark path / grader: **{via_spark / grader:.1f}×** (lab {args.lab}, {args.runs} runs each)\n"
    body += (f"\nTargets: grader ≤ 1 s median — {'met' if grader <= 1 else 'missed'}; "
             f"≥ 10× faster than the Spark path — {'met' if via_spark >= 10 * grader else 'missed'}.\n")
    print(body)
    if args.write:
        write_section(f"Grader latency (lab {args.lab})", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
