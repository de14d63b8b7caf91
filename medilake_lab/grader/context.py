"""What a check function receives: the warehouse and data folders, table handles, per-run
memoisation, "require these tables, or fail with the hint that builds them", and the patients
lab 07 erased (every reference reader takes them: :attr:`Context.erased_patients`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pyarrow as pa

from medilake_lab.contract.labs import all_labs
from medilake_lab.errors import ColumnsMissing, DamagedTableError, MissingTables, TableMissingError
from medilake_lab.grader import toolkit
from medilake_lab.grader.delta import Table, open_table
from medilake_lab.grader.erasure import AUDIT_TABLE, ErasureRequest, read_requests
from medilake_lab.grader.model import Outcome
from medilake_lab.grader.reference import raw as reference
from medilake_lab.runtime import config

T = TypeVar("T")


def build_hint(table: str, graded_lab: str | None = None) -> str:
    """How to build a table, derived from the lab list (``labs.yaml``: a lab's ``tables`` are built
    by that lab; the first lab listing a table builds it).

    Returns e.g. ``"run lab 02 (or `medilake_lab catchup 03` to build it from the solutions)"``;
    "finish" instead of "run" when an earlier lab than ``graded_lab`` builds it; for the last lab,
    catch-up builds the labs before it and ``medilake_lab run NN`` runs its solution. A table no
    lab lists gets ``"run the lab that builds it"``.
    """
    labs = list(all_labs())
    owner = _owner(table)
    if owner is None:
        return "run the lab that builds it"
    lab = labs[owner].id
    verb = "finish" if graded_lab is not None and lab < graded_lab else "run"
    if owner + 1 < len(labs):
        return f"{verb} lab {lab} (or `medilake_lab catchup {labs[owner + 1].id}` to build it from the solutions)"
    earlier = f"labs {labs[0].id}–{labs[owner - 1].id}" if owner > 1 else f"lab {labs[0].id}"
    return (f"{verb} lab {lab} (or `medilake_lab catchup {lab}` to build {earlier} first; "
            f"`medilake_lab run {lab}` runs the solution)")


def _owner(table: str) -> int | None:
    """Index in the lab list of the first lab listing ``table`` (None: no lab lists it)."""
    return next((i for i, lab in enumerate(all_labs()) if table in lab.tables), None)


def repair_hint(table: str, graded_lab: str | None = None) -> str:
    """How to replace a damaged table, from the lab list: e.g. ``"`medilake_lab reset 02` (it keeps
    a backup), then run lab 02 (or `medilake_lab catchup 03` …)"`` (see :func:`build_hint`)."""
    owner = _owner(table)
    if owner is None:
        return f"delete or move {table}'s folder, then run the lab that builds it"
    lab = list(all_labs())[owner].id
    return f"`medilake_lab reset {lab}` (it keeps a backup), then {build_hint(table, graded_lab)}"


class Context:
    """Shared, read-only view of one warehouse + raw-data folder during the grading of one lab
    (``lab``: its id, for hints; None outside a grading run)."""

    def __init__(self, warehouse: str | os.PathLike | None = None,
                 data: str | os.PathLike | None = None, lab: str | None = None) -> None:
        self.warehouse: Path = config.warehouse_dir(warehouse)
        self.data: Path = config.data_dir(data)
        self.lab = lab
        self._tables: dict[str, Table | None] = {}
        self._damaged: dict[str, DamagedTableError] = {}
        self._memo: dict[Hashable, object] = {}
        self.valid_until: datetime | None = None  # see :meth:`until`

    def now(self) -> datetime:
        """The current time (UTC, aware). Checks take the time only from here, and a check that
        compares it with a moment to come says so with :meth:`until`."""
        return datetime.now(UTC)

    def until(self, when: datetime) -> None:
        """Note that a verdict taken :meth:`now` changes at ``when`` (aware, UTC) by the clock alone;
        the report is reused until the earliest such moment only (``LabReport.valid_until``)."""
        if self.valid_until is None or when < self.valid_until:
            self.valid_until = when

    def table(self, name: str) -> Table | None:
        """``schema.table`` opened read-only (once per run), or None when it does not exist.

        Raises :class:`DamagedTableError` (every time it is asked for) when the table is damaged
        (see :mod:`medilake_lab.grader.delta`; its data files are checked too), its ``fix`` set by
        :func:`repair_hint`, or its subclass :class:`medilake_lab.errors.UnreadableTableError` when
        the grader's reader cannot read it (deletion vectors; the fix says how to drop them)."""
        if name not in self._tables:
            try:
                table = open_table(name, self.warehouse)
                table.check_readable()
                table.check_data_files()
                self._tables[name] = table
            except TableMissingError:
                self._tables[name] = None
            except DamagedTableError as exc:
                exc.fix = exc.fix or repair_hint(name, self.lab)
                self._damaged[name] = exc
                self._tables[name] = None
        if name in self._damaged:
            raise self._damaged[name]
        return self._tables[name]

    def hint(self, name: str) -> str:
        """How to build table ``name`` (see :func:`build_hint`)."""
        return build_hint(name, self.lab)

    def require(self, name: str) -> Table:
        """Table ``name``, or raise :class:`medilake_lab.errors.MissingTables` naming it and the lab
        that builds it (the runner reports it as the check's FAIL)."""
        table = self.table(name)
        if table is None:
            raise MissingTables([name], self.hint(name))
        return table

    def tables_exist(self, names: list[str] | tuple[str, ...], ok: str) -> Outcome:
        """The usual first check of a lab: FAIL naming every missing table and the lab that builds
        the first of them, else PASS with ``ok``."""
        missing = [name for name in names if self.table(name) is None]
        if missing:
            return Outcome(False, str(MissingTables(missing, self.hint(missing[0]))))
        return Outcome(True, ok)

    def memo(self, key: Hashable, build: Callable[[], T]) -> T:
        """``build()`` once per grading run and ``key`` (e.g. ``("rows", name, columns)``)."""
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]  # type: ignore[return-value]

    def rows(self, name: str, columns: list[str] | tuple[str, ...]) -> pa.Table:
        """Columns of a required table's current snapshot, timestamps per :func:`toolkit.naive_utc`
        (memoised per run). Raises MissingTables, or ColumnsMissing naming what is absent."""
        table = self.require(name)
        absent = [c for c in columns if c not in table.columns]
        if absent:
            raise ColumnsMissing(f"{name} lacks column(s) {', '.join(absent)}")
        return self.memo(("rows", name, tuple(columns)), lambda: toolkit.naive_utc(table.to_arrow(list(columns))))

    def erasure_requests(self) -> dict[str, ErasureRequest]:
        """Lab 07's recorded erasure requests, request id → request, read once per run (delta-rs)
        from ``audit.erasure_requests``; ``{}`` when that table does not exist.

        Raises DamagedTableError (a damaged audit table: the finding names table, file and fix) or
        ColumnsMissing (no request_id or patient_id column)."""
        table = self.table(AUDIT_TABLE)
        if table is None:
            return {}
        return self.memo("erasure_requests", lambda: read_requests(table))

    @property
    def erased_patients(self) -> frozenset[str]:
        """Patient ids of the recorded erasure requests (empty before lab 07). Every reference
        computation leaves out the raw lines that name one of them (they count as never
        delivered: :func:`medilake_lab.grader.reference.raw.erased_line`). Raises as
        :meth:`erasure_requests`."""
        return self.memo("erased_patients",
                         lambda: frozenset(r.patient_id for r in self.erasure_requests().values()))

    def delivered(self, feed: str) -> dict[str, reference.BatchFacts]:
        """Independent per-batch counts of a raw feed, erased patients' lines left out (see
        :mod:`medilake_lab.grader.reference.raw`)."""
        return reference.delivered(feed, self.data, self.erased_patients)
