"""Lab 03 on a fixture warehouse without a JVM: the solution's layout steps and realistic mistakes.

:func:`solve` replays ``solutions/03_delta_optimization.ipynb`` on a copy of the fast silver
warehouse (:func:`fast.conftest.silver_warehouse`) with delta-rs, each commit in Spark's shape
(:mod:`fast.deltafix`): the partitioned rewrite by month (many small files), OPTIMIZE, OPTIMIZE
ZORDER BY (patient_id), the partition-pruned re-delivery MERGE, the DELETE incident and its
RESTORE, VACUUM with the default retention, and the sandbox VACUUM RETAIN 0 HOURS. The other
functions are the mistakes of ``tests/optimization_variants.py`` (the Spark tier), rebuilt the
same way on a copy of the solved warehouse.

The lab's scale model: at the fast data's scale a month holds ~120 lab results, so Z-ORDER writes
:data:`ZORDER_FILES` files per month (what the lab's scaled target file size gives).
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from fast import deltafix as dx

LABS, ENCOUNTERS = "silver.lab_results_clean", "silver.encounters_clean"
SANDBOX = "sandbox.lab_results_vacuum_demo"
MONTH = {LABS: ("result_ts", "result_month"), ENCOUNTERS: ("admit_ts", "admit_month")}
#: Tasks writing the partitioned rewrite (the notebook uses 16 and 4; fewer keep the fixture quick).
WRITERS = {LABS: 4, ENCOUNTERS: 2}
ZORDER_FILES = 3
GLUCOSE = "2345-7"
#: Lab 03 runs the day after lab 02's last batch; each step one minute after the previous one.
START = datetime(2025, 10, 4, 9, tzinfo=UTC)


class _Clock:
    """Commit timestamps (ms) one minute apart, so DESCRIBE HISTORY reads in order."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> int:
        self.now += timedelta(minutes=1)
        return int(self.now.timestamp() * 1000)


def path(warehouse: Path, name: str = LABS) -> Path:
    """Directory of ``schema.table`` in ``warehouse``."""
    return dx.table_dir(warehouse, name)


def _months(rows: pa.Table, column: str) -> pa.Array:
    """First day of the UTC month of a timestamp column, as dates (``F.trunc(ts, "month")``)."""
    day = pc.cast(pc.floor_temporal(rows[column], unit="month"), pa.timestamp("us", tz="UTC"))
    return pc.cast(pc.cast(day, pa.timestamp("us")), pa.date32())


def rewrite(warehouse: Path, name: str = LABS, partition_by: str | None = None, *,
            clock: _Clock | None = None) -> None:
    """The partitioned rewrite: derive the month column again and overwrite the table
    partitioned by ``partition_by`` (default that month column), written by
    :data:`WRITERS` tasks in round robin (many small files per partition)."""
    event, month = MONTH[name]
    rows = dx.read(path(warehouse, name))
    if month in rows.column_names:
        rows = rows.drop_columns([month])
    rows = rows.append_column(month, _months(rows, event))
    n = WRITERS[name]
    parts = [rows.take(pa.array(range(i, rows.num_rows, n), pa.int64())) for i in range(n)]
    target = path(warehouse, name)
    version = dx.write_parts(target, [p for p in parts if p.num_rows], "overwrite",
                             partition_by=[partition_by or month], operation="CREATE OR REPLACE TABLE AS SELECT",
                             timestamp_ms=(clock or _Clock())())
    dx.set_parameters(target, version, isV1SaveAsTableOverwrite=True, canOverwriteSchema=True)


def last_months(warehouse: Path, n: int = 2) -> list[str]:
    """The ``n`` newest result_month partitions of the lab results (ISO dates, ascending)."""
    months = pc.unique(dx.read(path(warehouse))["result_month"]).to_pylist()
    return sorted(str(m) for m in months if m is not None)[-n:]


def test_code(warehouse: Path) -> str:
    """The LOINC code the lab re-delivers, deletes and updates: glucose when the two newest months
    hold glucose results, else their most frequent test (the notebook's TEST)."""
    rows = dx.read(path(warehouse))
    recent = rows.filter(pc.is_in(pc.cast(rows["result_month"], pa.string()), pa.array(last_months(warehouse))))
    counts = {c["values"]: c["counts"] for c in pc.value_counts(recent["loinc_code"]).to_pylist()}
    return GLUCOSE if GLUCOSE in counts else max(sorted(counts), key=counts.__getitem__)


def redelivery(warehouse: Path) -> tuple[pa.Table, list[str]]:
    """The lab's re-delivered batch: results of :func:`test_code` in the two newest months (as
    they are)."""
    months = last_months(warehouse)
    rows = dx.read(path(warehouse))
    month = pc.cast(rows["result_month"], pa.string())
    chosen = pc.equal(rows["loinc_code"], test_code(warehouse))
    return rows.filter(pc.and_(chosen, pc.is_in(month, pa.array(months)))), months


def merge_redelivery(warehouse: Path, *, pruned: bool = True, clock: _Clock | None = None) -> int:
    """MERGE the re-delivery on lab_result_id (and, when ``pruned``, ``result_month IN`` the
    two months as literals), update when newer or equal, insert when new; the predicate logged
    as Spark logs it (attribute ids, literal dates unquoted)."""
    source, months = redelivery(warehouse)
    on = "t.lab_result_id = s.lab_result_id"
    logged = "(lab_result_id#812 = lab_result_id#1604)"
    if pruned:
        on += " AND t.result_month IN (" + ", ".join(f"'{m}'::date" for m in months) + ")"
        logged = f"({logged} AND result_month#822 IN ({','.join(months)}))"
    target = path(warehouse)
    version = dx.merge(target, source, on, lambda m: m.when_matched_update_all("s.updated_at >= t.updated_at")
                       .when_not_matched_insert_all(), timestamp_ms=(clock or _Clock())())
    dx.set_parameters(target, version, predicate=[logged])
    return version


def incident(warehouse: Path, *, clock: _Clock | None = None) -> int:
    """The bad ``DELETE FROM silver.lab_results_clean WHERE loinc_code = <TEST>``."""
    target, code = path(warehouse), test_code(warehouse)
    version = dx.delete(target, f"loinc_code = '{code}'", timestamp_ms=(clock or _Clock())())
    dx.set_parameters(target, version, predicate=[f"(loinc_code#815 = {code})"])
    return version


def sandbox(warehouse: Path, *, change: bool = True, clock: _Clock | None = None) -> None:
    """sandbox.lab_results_vacuum_demo: the newest re-delivered month's results (v0), an UPDATE of the
    :func:`test_code` rows (v1, when ``change``), then VACUUM RETAIN 0 HOURS with the check
    disabled."""
    clock = clock or _Clock()
    demo = path(warehouse, SANDBOX)
    shutil.rmtree(demo, ignore_errors=True)
    rows = dx.read(path(warehouse))
    month = pc.max(redelivery(warehouse)[0]["result_month"])  # a month holding the re-delivered test
    dx.write(demo, rows.filter(pc.equal(rows["result_month"], month)), operation="CREATE TABLE AS SELECT",
             timestamp_ms=clock())
    if change:
        dx.update(demo, {"test_name": "upper(test_name)"}, f"loinc_code = '{test_code(warehouse)}'",
                  timestamp_ms=clock())
    if change:
        dx.vacuum(demo, 0, timestamp_ms=clock())
    else:
        dx.vacuum_nothing(demo, 0, timestamp_ms=clock())


def solve(warehouse: Path) -> None:
    """Lab 03's solution on a warehouse holding lab 02's silver tables (changed in place)."""
    clock = _Clock()
    for name in (LABS, ENCOUNTERS):
        rewrite(warehouse, name, clock=clock)
    for name in (LABS, ENCOUNTERS):
        dx.optimize(path(warehouse, name), timestamp_ms=clock())
    dx.zorder(path(warehouse), ["patient_id"], ZORDER_FILES, timestamp_ms=clock())
    merge_redelivery(warehouse, clock=clock)
    bad = incident(warehouse, clock=clock)
    dx.restore(path(warehouse), bad - 1, timestamp_ms=clock())
    for name in (LABS, ENCOUNTERS):
        dx.vacuum_nothing(path(warehouse, name), timestamp_ms=clock())
    sandbox(warehouse, clock=clock)


# --------------------------------------------------------------- mistakes (optimization_variants.py)

def no_optimize(warehouse: Path, data: Path) -> None:
    """Partitioned rewrite with many small files, and no OPTIMIZE afterwards."""
    rewrite(warehouse)


def zorder_by_loinc(warehouse: Path, data: Path) -> None:
    """Partitioned rewrite, compaction, then Z-ORDER by a column lookups do not filter on."""
    rewrite(warehouse)
    dx.optimize(path(warehouse))
    dx.zorder(path(warehouse), ["loinc_code"], ZORDER_FILES)


def partition_by_patient(warehouse: Path, data: Path) -> None:
    """Partitioned by the patient identifier: one folder per patient."""
    rewrite(warehouse, partition_by="patient_id")


def encounters_by_day(warehouse: Path, data: Path) -> None:
    """Encounters partitioned by admission DAY: hundreds of partitions of a few rows."""
    target = path(warehouse, ENCOUNTERS)
    rows = dx.read(target)
    day = pc.cast(pc.cast(rows["admit_ts"], pa.timestamp("us")), pa.date32())
    dx.write(target, rows.append_column("admit_date", day), "overwrite", partition_by=["admit_date"],
             operation="CREATE OR REPLACE TABLE AS SELECT")
    dx.optimize(target)  # one file per day: nothing to compact, no commit


def unsafe_vacuum(warehouse: Path, data: Path) -> None:
    """VACUUM the production table RETAIN 0 HOURS with the retention check switched off."""
    dx.vacuum(path(warehouse), 0)


def unpruned_merge(warehouse: Path, data: Path) -> None:
    """The re-delivery upsert with the partition predicate left out of the ON clause."""
    merge_redelivery(warehouse, pruned=False)


def restore_wrong_version(warehouse: Path, data: Path) -> None:
    """A new bad DELETE, then RESTORE to the version before the re-delivery MERGE instead of the
    version before the DELETE (so the MERGE is undone too)."""
    history = DeltaTable(str(path(warehouse))).history()
    merged = max(int(c["version"]) for c in history if c["operation"] == "MERGE")
    incident(warehouse)
    dx.restore(path(warehouse), merged - 1)


def sandbox_unchanged(warehouse: Path, data: Path) -> None:
    """The sandbox vacuumed RETAIN 0 HOURS before anything changed it: no version loses files."""
    sandbox(warehouse, change=False)


def encounters_missing(warehouse: Path, data: Path) -> None:
    """Lab 02's silver.encounters_clean was never built."""
    shutil.rmtree(path(warehouse, ENCOUNTERS))
