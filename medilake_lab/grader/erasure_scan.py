"""The erasure scan: which files under a warehouse's Delta tables still hold an erased patient.

A DELETE hides rows from the current snapshot, but their bytes stay on disk: in the data files
older versions reference (until VACUUM removes them after the table's
``delta.deletedFileRetentionDuration``), in files the current snapshot still references with a
deletion vector marking the rows (until REORG … APPLY (PURGE) rewrites them) and in the Change
Data Feed's ``_change_data`` files (until VACUUM removes them after the same retention). So the
scan reads **every** Parquet file under each Delta table folder with pyarrow — not the current
snapshot through delta-rs, which cannot read older versions whose files carry deletion vectors —
and then places each file holding the patient with the table's log:

* **live**: the current snapshot references it (``deletion_vector``: with a deletion vector);
* **removed**: only older versions reference it; VACUUM may delete it from ``vacuum_after`` =
  the remove action's ``deletionTimestamp`` + the table's retention;
* **change data**: a ``_change_data`` file (a ``cdc`` action); VACUUM may delete it from its
  commit time + the retention;
* **untracked**: no commit names it (a failed write's leftover); VACUUM may delete it from its
  modification time + the retention.

The log is replayed with pyarrow (``pyarrow.json`` with an explicit schema of the actions read;
classic Parquet checkpoints when the first commits are gone), because delta-rs exposes neither
remove nor cdc actions. Tables under ``audit/`` are not scanned: the erasure request record must
keep the patient's id, it is the evidence that the erasure was asked for and done.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq
from deltalake import DeltaTable

from medilake_lab.grader import cache

__all__ = ["DEFAULT_RETENTION", "Found", "LogState", "Scan", "Subject", "log_state", "retention", "scan",
           "table_folders"]

#: Delta's default ``delta.deletedFileRetentionDuration``.
DEFAULT_RETENTION = timedelta(days=7)
#: Schemas whose tables are records of the erasure, not copies of the patient's data.
EXCLUDED_SCHEMAS = frozenset({"audit"})
RETENTION_PROPERTY = "delta.deletedFileRetentionDuration"
CHANGE_DATA_DIR = "_change_data"

_DV = pa.struct([("storageType", pa.string()), ("pathOrInlineDv", pa.string()), ("cardinality", pa.int64())])
#: The actions (and their fields) the scan needs from a commit file; other fields are ignored.
_ACTIONS = pa.schema([
    ("commitInfo", pa.struct([("timestamp", pa.int64())])),
    ("add", pa.struct([("path", pa.string()), ("deletionVector", _DV)])),
    ("remove", pa.struct([("path", pa.string()), ("deletionTimestamp", pa.int64())])),
    ("cdc", pa.struct([("path", pa.string())])),
])
_COMMIT = re.compile(r"^(\d{20})\.json$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(\.\d+\.\d+)?\.parquet$")
_INTERVAL = re.compile(r"^\s*(?:interval\s+)?(\d+)\s*([a-z]+?)s?\s*$", re.IGNORECASE)
_UNITS = {"week": "weeks", "day": "days", "hour": "hours", "minute": "minutes", "second": "seconds",
          "millisecond": "milliseconds", "microsecond": "microseconds"}


@dataclass(frozen=True)
class Subject:
    """The erased patient and the identifiers the scan looks for: ``patient_id``, ``mrns`` and
    ``names`` ((first, last) pairs; every delivered version of them)."""

    patient_id: str
    mrns: tuple[str, ...] = ()
    names: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Found:
    """A file that holds the patient.

    ``patient_id``: whose identifiers; ``table``: ``schema.table``; ``path``: relative to the
    table folder; ``holds``: which identifiers (``"id"``, ``"MRN"``, ``"name"``); ``rows``: rows
    holding one (deletion vectors not applied); ``state``: ``"live"``, ``"removed"``,
    ``"change data"`` or ``"untracked"``; ``deletion_vector``: a live file whose current add action
    carries a deletion vector; ``since``: when the retention clock started (the remove action's
    time, the change's commit time or the file's modification time; UTC; None for a live file);
    ``vacuum_after``: ``since`` + the table's retention, from when VACUUM may delete it.
    """

    patient_id: str
    table: str
    path: str
    holds: tuple[str, ...]
    rows: int
    state: str
    deletion_vector: bool = False
    since: datetime | None = None
    vacuum_after: datetime | None = None

    @property
    def live(self) -> bool:
        """The current snapshot references the file (with or without a deletion vector)."""
        return self.state == "live"

    def describe(self) -> str:
        """E.g. ``"silver.x: part-0001.parquet (2 rows with id, MRN; removed, VACUUM may delete it from
        2026-12-09 10:00 UTC)"``."""
        what = f"{self.rows} row{'s' if self.rows != 1 else ''} with {', '.join(self.holds)}"
        if self.live:
            where = "in the current snapshot" + (", deletion-vectored" if self.deletion_vector else "")
        else:
            when = f"{self.vacuum_after:%Y-%m-%d %H:%M} UTC" if self.vacuum_after else "an unknown date"
            where = f"{self.state}, VACUUM may delete it from {when}"
        return f"{self.table}: {self.path} ({what}; {where})"


@dataclass
class Scan:
    """What :func:`scan` read and found: ``found`` (files holding the patient), ``tables`` scanned,
    ``files`` and ``bytes`` read, ``seconds`` taken, ``unreadable`` (``table: path: error``)."""

    found: list[Found] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    unreadable: list[str] = field(default_factory=list)

    def figures(self) -> str:
        """``"scanned 412 files (3.1 MB) of 38 tables in 1.2 s"``."""
        return (f"scanned {self.files:,d} files ({self.bytes / 1_048_576:,.1f} MB) of {len(self.tables)} tables "
                f"in {self.seconds:.1f} s")

    def of(self, table: str) -> list[Found]:
        """The files of one table (``schema.table``) that hold the patient."""
        return [f for f in self.found if f.table == table]


@dataclass
class LogState:
    """A table's files as its log knows them (paths relative to the table folder, decoded):
    ``live`` path → has a deletion vector; ``removed`` path → remove time (ms since the epoch);
    ``changes`` path → commit time (ms) of its cdc action."""

    live: dict[str, bool] = field(default_factory=dict)
    removed: dict[str, int | None] = field(default_factory=dict)
    changes: dict[str, int | None] = field(default_factory=dict)


# ------------------------------------------------------------------------------------- the log


def _versions(log: Path) -> tuple[dict[int, Path], dict[int, list[Path]]]:
    commits: dict[int, Path] = {}
    checkpoints: dict[int, list[Path]] = {}
    for name in os.listdir(log):
        if m := _COMMIT.match(name):
            commits[int(m.group(1))] = log / name
        elif m := _CHECKPOINT.match(name):
            checkpoints.setdefault(int(m.group(1)), []).append(log / name)
    return commits, checkpoints


def _rows(table: pa.Table, action: str) -> list[dict]:
    column = table.column(action)
    return column.filter(pc.is_valid(column)).to_pylist()


def log_state(path: Path) -> LogState:
    """Replay the log of the Delta table at ``path``: every commit file from version 0, or the
    newest classic checkpoint and the commits after it when the first commits were cleaned up.

    Raises ValueError naming the log when neither is complete (a gap in the versions)."""
    log = path / "_delta_log"
    commits, checkpoints = _versions(log)
    state, first = LogState(), 0
    if commits and 0 not in commits:
        usable = [v for v in checkpoints if v + 1 in commits or v == max(commits)]
        if not usable:
            raise ValueError(f"{log}: the first commits are gone and no checkpoint precedes the others")
        first = max(usable)
        cp = pa.concat_tables(pq.read_table(p, columns=["add", "remove"]) for p in checkpoints[first])
        for add in _rows(cp, "add"):
            state.live[unquote(add["path"])] = bool(add.get("deletionVector"))
        for rm in _rows(cp, "remove"):
            state.removed[unquote(rm["path"])] = rm.get("deletionTimestamp")
        first += 1
    missing = [v for v in range(first, max(commits, default=-1) + 1) if v not in commits]
    if missing:
        raise ValueError(f"{log}: commit {missing[0]:020d}.json is missing")
    options = pa_json.ParseOptions(explicit_schema=_ACTIONS, unexpected_field_behavior="ignore")
    for version in range(first, max(commits, default=-1) + 1):
        size = commits[version].stat().st_size  # one block holds the whole file: no line is split
        reading = pa_json.ReadOptions(use_threads=False, block_size=max(size + 1, 1 << 16))
        actions = pa_json.read_json(commits[version], parse_options=options, read_options=reading)
        info = _rows(actions, "commitInfo")
        stamp = info[0]["timestamp"] if info else None
        for column in ("remove", "add", "cdc"):  # a commit's removes precede its re-adds of a path
            for action in _rows(actions, column):
                name = unquote(action["path"])
                if column == "add":
                    state.live[name] = bool(action.get("deletionVector"))
                    state.removed.pop(name, None)
                elif column == "remove":
                    state.live.pop(name, None)
                    state.removed[name] = action.get("deletionTimestamp") or stamp
                else:
                    state.changes[name] = stamp
    return state


def retention(path: Path) -> timedelta:
    """The table's ``delta.deletedFileRetentionDuration`` (``"interval 7 days"``, ``"168 hours"``…),
    :data:`DEFAULT_RETENTION` when unset. Raises ValueError for a value that is not an interval."""
    text = DeltaTable(str(path)).metadata().configuration.get(RETENTION_PROPERTY)
    if not text:
        return DEFAULT_RETENTION
    m = _INTERVAL.match(text)
    unit = _UNITS.get(m.group(2).lower()) if m else None
    if not m or unit is None:
        raise ValueError(f"{path}: {RETENTION_PROPERTY} = {text!r} is not an interval such as 'interval 7 days'")
    return timedelta(**{unit: int(m.group(1))})


# ------------------------------------------------------------------------------------ the files


def table_folders(warehouse: Path) -> Iterator[tuple[str, Path]]:
    """``(schema.table, folder)`` of every Delta table (a folder holding ``_delta_log``) under the
    warehouse, sorted, except :data:`EXCLUDED_SCHEMAS`; a table folder is not searched further."""
    for root, dirs, _ in os.walk(warehouse):
        dirs.sort()
        if "_delta_log" in dirs:
            dirs.clear()
            folder = Path(root)
            rel = folder.relative_to(warehouse).parts
            if rel and rel[0] not in EXCLUDED_SCHEMAS:
                yield ".".join(rel), folder


def _data_files(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != "_delta_log" and not d.startswith("."))
        for name in sorted(files):
            if name.endswith(".parquet") and not name.startswith((".", "_")):
                yield Path(root) / name


def _holds(value: pa.ChunkedArray | pa.Array, token: str) -> pa.ChunkedArray:
    """Rows whose value holds ``token`` as a whole word (a column holding it, or a raw line in
    _corrupt_record naming it in any style: the rule of :func:`medilake_lab.grader.reference.raw.names_id`)."""
    return pc.fill_null(pc.match_substring_regex(value, rf"\b{re.escape(token)}\b"), False)


def _any(masks: list) -> pa.ChunkedArray | None:
    out = None
    for mask in masks:
        out = mask if out is None else pc.or_(out, mask)
    return out


def file_hits(file: Path, subjects: list[Subject]) -> dict[str, tuple[tuple[str, ...], int]]:
    """Which identifiers of each subject the Parquet ``file`` holds (in any top-level string column)
    and in how many rows: ``{"PAT000123": (("id", "MRN"), 3)}``, only subjects it holds. One regular
    expression over every identifier rules most files out in one pass per column."""
    parquet = pq.ParquetFile(file)
    text = [f.name for f in parquet.schema_arrow if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
            or f.type == pa.string_view()]
    tokens = sorted({t for s in subjects for t in (s.patient_id, *s.mrns, *(n for pair in s.names for n in pair))})
    if not text or not tokens:
        return {}
    data = parquet.read(columns=text)
    columns = {c: data.column(c).cast(pa.string()) for c in text}
    alternatives = "|".join(re.escape(t) for t in tokens)
    pattern = rf"\b(?:{alternatives})\b"  # the whole-word rule of _holds (reference.raw.names_id)
    if not any(pc.any(pc.match_substring_regex(c, pattern)).as_py() for c in columns.values()):
        return {}
    out = {}
    for subject in subjects:
        holds, rows = _subject_hits(columns, subject)
        if holds:
            out[subject.patient_id] = (holds, rows)
    return out


def _subject_hits(by_name: dict[str, pa.ChunkedArray], subject: Subject) -> tuple[tuple[str, ...], int]:
    """Identifiers of ``subject`` in these string columns and the number of rows holding one. A name
    counts only in a row whose ``patient_id`` (when the file has one) is the subject's or null:
    another patient may share the name."""
    columns = list(by_name.values())
    named = _any([pc.and_(_any([_holds(c, first) for c in columns]), _any([_holds(c, last) for c in columns]))
                  for first, last in subject.names])
    if named is not None and "patient_id" in by_name:
        named = pc.and_(named, pc.fill_null(pc.equal(by_name["patient_id"], subject.patient_id), True))
    masks = {"id": _any([_holds(c, subject.patient_id) for c in columns]),
             "MRN": _any([_holds(c, m) for m in subject.mrns for c in columns]),
             "name": named}
    hits = {k: v for k, v in masks.items() if v is not None and pc.any(v).as_py()}
    if not hits:
        return (), 0
    rows = _any(list(hits.values()))
    return tuple(hits), int(pc.sum(rows).as_py() or 0)


def scan(warehouse: str | os.PathLike, subjects: list[Subject]) -> Scan:
    """Read every Parquet data and change-data file of every Delta table under ``warehouse`` (see
    :func:`table_folders`) once and return the files that hold one of ``subjects``, placed with their table's
    log (module docstring), and the figures. A file or log that cannot be read is listed in
    :attr:`Scan.unreadable`, never raised.

    What :func:`file_hits` found in a file is kept (:mod:`medilake_lab.grader.cache`, per
    warehouse and subjects) under the file's path, size and modification time: a later scan
    reads only the files written since (Delta never rewrites a data file in place)."""
    start = time.perf_counter()
    out = Scan()
    key = (os.fspath(warehouse), [(s.patient_id, s.mrns, s.names) for s in subjects])
    known = cache.read("erasure_scan.file_hits", key)
    known = known if isinstance(known, dict) else {}
    seen: dict[tuple[str, int, int], dict[str, tuple[tuple[str, ...], int]]] = {}
    for name, folder in table_folders(Path(warehouse)):
        out.tables.append(name)
        try:
            state, keep = log_state(folder), retention(folder)
        except Exception as exc:  # noqa: BLE001 - a damaged log is a finding, not a crash
            out.unreadable.append(f"{name}: _delta_log: {type(exc).__name__}: {exc}")
            continue
        for file in _data_files(folder):
            rel = file.relative_to(folder).as_posix()
            try:
                stat = file.stat()
                size, stamp = stat.st_size, (str(file), stat.st_size, stat.st_mtime_ns)
                out.bytes += size
                if stamp in known:
                    hits = known[stamp]
                else:  # an empty file (a crashed write) holds nothing
                    hits = file_hits(file, subjects) if size else {}
            except Exception as exc:  # noqa: BLE001 - e.g. a truncated Parquet file
                out.unreadable.append(f"{name}: {rel}: {type(exc).__name__}: {exc}")
                continue
            seen[stamp] = hits
            out.files += 1
            out.found.extend(_place(patient, name, rel, holds, rows, state, keep, file)
                             for patient, (holds, rows) in hits.items())
    if seen != known:
        cache.write("erasure_scan.file_hits", key, seen)
    out.seconds = time.perf_counter() - start
    return out


def _place(patient: str, table: str, rel: str, holds: tuple[str, ...], rows: int, state: LogState,
           keep: timedelta, file: Path) -> Found:
    if rel in state.live:
        return Found(patient, table, rel, holds, rows, "live", deletion_vector=state.live[rel])
    if rel in state.removed and state.removed[rel] is not None:
        kind, stamp = "removed", state.removed[rel]
    elif rel in state.changes or rel.startswith(f"{CHANGE_DATA_DIR}/"):
        kind, stamp = "change data", state.changes.get(rel)
    else:
        kind, stamp = ("removed" if rel in state.removed else "untracked"), None
    since = datetime.fromtimestamp((stamp if stamp is not None else file.stat().st_mtime * 1000) / 1000, UTC)
    return Found(patient, table, rel, holds, rows, kind, since=since, vacuum_after=since + keep)
