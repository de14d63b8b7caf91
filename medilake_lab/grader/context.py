"""What a check function receives: the warehouse and data folders, and cached table handles."""

from __future__ import annotations

import os
from pathlib import Path

from medilake_lab.grader.delta import Table, TableMissingError, open_table
from medilake_lab.grader.model import Outcome
from medilake_lab.grader.reference import raw as reference
from medilake_lab.runtime import config


class Context:
    """Shared, read-only view of one warehouse + raw-data folder during a grading run."""

    def __init__(self, warehouse: str | os.PathLike | None = None,
                 data: str | os.PathLike | None = None) -> None:
        self.warehouse: Path = config.warehouse_dir(warehouse)
        self.data: Path = config.data_dir(data)
        self._tables: dict[str, Table | None] = {}

    def table(self, name: str) -> Table | None:
        """``schema.table`` opened read-only, or None when it does not exist."""
        if name not in self._tables:
            try:
                self._tables[name] = open_table(name, self.warehouse)
            except TableMissingError:
                self._tables[name] = None
        return self._tables[name]

    def delivered(self, feed: str) -> dict[str, reference.BatchFacts]:
        """Independent per-batch counts of a raw feed (see :mod:`medilake_lab.grader.reference.raw`)."""
        return reference.delivered(feed, self.data)

    def tables_exist(self, names: list[str] | tuple[str, ...], ok: str, run_hint: str) -> Outcome:
        """The usual first check of a lab: FAIL naming every missing table and how to build it
        (``run_hint``, e.g. "run lab 02 (or `medilake_lab catchup 03`)"), else PASS with ``ok``."""
        missing = [name for name in names if self.table(name) is None]
        if missing:
            return Outcome(False, f"missing Delta table(s): {', '.join(missing)} — {run_hint}")
        return Outcome(True, ok)
