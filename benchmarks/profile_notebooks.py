"""Where a notebook run's time goes, from the timings papermill stores in its executed copies.

Every notebook the kit executes headlessly (``medilake_lab run``/``catchup``: ``<state>/runs/solution/``;
the tests' papermill runs: pytest's temporary folders) is written with papermill's metadata: the
notebook's start, end and duration (kernel start and shutdown included) and each cell's duration.
This reads them — no Spark, no kernel — and prints per lab: wall time, time in cells, time outside
cells (before the first cell: the kernel starting; between cells; after the last: the kernel and
its Spark JVM shutting down), the cell that starts Spark (the first calling ``get_spark(``) and the
slowest cells with their first line.

Usage::

    python benchmarks/profile_notebooks.py [NOTEBOOK_OR_FOLDER ...] [--top 3] [--write]

Without paths it reads ``<state>/runs/solution/`` (``$MEDILAKE_STATE``, default ``.medilake``).
``--write`` replaces the "Where the time goes" section of benchmarks/RESULTS.md with the tables.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import nbformat
from common import write_section

from medilake_lab.runtime import config

SECTION = "Where the time goes"
SPARK_START = re.compile(r"\bget_spark\(")
MARKER = re.compile(r"^\s*#+\s*NBVAL_")


@dataclass(frozen=True)
class Cell:
    """One executed code cell: ``number`` counted from 1 over the cells as the learner's notebook
    has them (papermill's injected parameters cell left out), ``seconds`` papermill measured,
    ``first_line`` its first line that is not blank or an nbval marker."""

    number: int
    seconds: float
    first_line: str
    starts_spark: bool


@dataclass(frozen=True)
class Profile:
    """One executed notebook: ``wall`` seconds from papermill's start to its end (kernel start and
    shutdown included), ``before``/``after`` seconds outside cells before the first and after the
    last cell ran, and its ``cells`` (code cells that ran)."""

    name: str
    wall: float
    before: float
    after: float
    cells: list[Cell]

    @property
    def in_cells(self) -> float:
        return sum(c.seconds for c in self.cells)

    @property
    def outside(self) -> float:
        return self.wall - self.in_cells

    @property
    def spark_start(self) -> Cell | None:
        return next((c for c in self.cells if c.starts_spark), None)

    def top(self, n: int) -> list[Cell]:
        return sorted(self.cells, key=lambda c: -c.seconds)[:n]


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def profile(path: Path) -> Profile | None:
    """The profile of an executed notebook, or None when papermill did not execute it (no
    ``metadata.papermill.duration``) — e.g. a solution notebook nbval ran in place.

    Raises
    ------
    nbformat.reader.NotJSONError, OSError: ``path`` is not a readable notebook.
    """
    nb = nbformat.read(path, as_version=4)
    meta = nb.metadata.get("papermill", {})
    if not meta.get("duration"):
        return None
    cells, number, spans = [], 0, []
    for cell in nb.cells:
        if "injected-parameters" in cell.metadata.get("tags", []):
            continue
        number += 1
        run = cell.metadata.get("papermill", {})
        if cell.cell_type != "code" or run.get("duration") is None:
            continue
        lines = [line.strip() for line in cell.source.splitlines() if line.strip() and not MARKER.match(line)]
        cells.append(Cell(number, run["duration"], lines[0] if lines else "",
                          bool(SPARK_START.search(cell.source))))
        spans.append((_time(run["start_time"]), _time(run["end_time"])))
    name = path.name + (" (stopped by an error)" if meta.get("exception") else "")
    if not spans:
        return Profile(name, meta["duration"], meta["duration"], 0.0, [])
    return Profile(name, meta["duration"], (spans[0][0] - _time(meta["start_time"])).total_seconds(),
                   (_time(meta["end_time"]) - spans[-1][1]).total_seconds(), cells)


def notebooks(paths: list[Path]) -> list[Path]:
    """The ``.ipynb`` files named, or found directly in the folders named, sorted by name."""
    found = []
    for path in paths:
        found += sorted(path.glob("*.ipynb")) if path.is_dir() else [path]
    return sorted(found, key=lambda p: p.name)


def report(profiles: list[Profile], top: int = 3) -> str:
    """Markdown: one row per notebook and a total, then each notebook's slowest ``top`` cells."""
    def short(text: str, width: int = 60) -> str:
        text = text.replace("|", "\\|").replace("`", "'")
        return text if len(text) <= width else text[: width - 1] + "…"

    out = ["| notebook | wall s | in cells s | outside cells s (kernel start + between + end) "
           "| Spark start-up cell s | slowest cell s |",
           "|---|---|---|---|---|---|"]
    for p in profiles:
        start = p.spark_start
        between = p.outside - p.before - p.after
        slowest = p.top(1)
        out.append(f"| {p.name} | {p.wall:.0f} | {p.in_cells:.0f} | {p.outside:.0f} ({p.before:.0f} + "
                   f"{between:.0f} + {p.after:.0f}) | "
                   f"{f'{start.seconds:.0f} (cell {start.number})' if start else '–'} | "
                   f"{f'{slowest[0].seconds:.0f} (cell {slowest[0].number})' if slowest else '–'} |")
    wall = sum(p.wall for p in profiles)
    cells = sum(p.in_cells for p in profiles)
    starts = sum(p.spark_start.seconds for p in profiles if p.spark_start)
    out.append(f"| **all {len(profiles)}** | **{wall:.0f}** | **{cells:.0f}** | **{wall - cells:.0f}** | "
               f"**{starts:.0f}** | |")
    if wall:
        out.append(f"\nOf {wall:.0f} s of notebook wall time: {cells / wall:.0%} in cells, "
                   f"{(wall - cells) / wall:.0%} outside them (kernels starting and stopping), "
                   f"{starts / wall:.0%} in the cells that start Spark.")
    out.append(f"\nSlowest {top} cells per notebook (first line of the cell):\n")
    for p in profiles:
        cells_text = "; ".join(f"cell {c.number} {c.seconds:.0f} s `{short(c.first_line)}`" for c in p.top(top))
        out.append(f"- {p.name}: {cells_text}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path,
                        help="executed notebooks or folders of them (default: <state>/runs/solution)")
    parser.add_argument("--top", type=int, default=3, help="slowest cells listed per notebook")
    parser.add_argument("--write", action="store_true", help=f'replace the "{SECTION}" section of RESULTS.md')
    args = parser.parse_args(argv)
    paths = notebooks(args.paths or [config.state_dir() / "runs" / "solution"])
    profiles = [p for p in map(profile, paths) if p is not None]
    if not profiles:
        parser.error(f"no notebook executed by papermill among {', '.join(map(str, args.paths)) or paths}")
    body = report(profiles, args.top)
    print(body)
    if args.write:
        write_section(SECTION, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
