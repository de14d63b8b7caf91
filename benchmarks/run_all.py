"""`make bench`: run every benchmark at its default settings and write benchmarks/RESULTS.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["bench_datagen.py", "bench_end_to_end.py", "bench_grader.py", "bench_layout.py"]


def main() -> int:
    failed = []
    for script in SCRIPTS:
        if not (HERE / script).exists():
            continue
        print(f"\n=== {script}", flush=True)
        if subprocess.run([sys.executable, str(HERE / script)], cwd=HERE).returncode:
            failed.append(script)
    print(f"\nwrote {HERE / 'RESULTS.md'}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
