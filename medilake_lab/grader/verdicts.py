"""Whole-lab verdicts kept on disk, so that re-grading an unchanged warehouse takes no reading.

:func:`graded` is :func:`medilake_lab.grader.grade` for the commands a learner repeats
(``medilake_lab check``, ``run``, ``hint``, the catch-up plan, and a notebook's ``grade`` cell, so that
the first ``check`` after it is answered at once): it answers from the last report of
the same lab, warehouse and data folder when nothing the grade depends on has changed since, and
otherwise grades and keeps the report. The learner's tables stay the only truth: a report is
reused only when every input still carries the stamp it had when it was graded.

What a report depends on, and how each is stamped:

* the warehouse and the raw-data folder: every file and folder below them (path, size, modification
  and change time in ns, inode: a Delta commit, a rewritten checkpoint, a delivered batch, a table
  moved aside or copied back all change it), walked before grading: the report is kept under that
  stamp, so a change made while it was graded gives another stamp next time;
* files read outside those two folders (lab 06's ``spark-pipeline.yml``, named by the event log):
  every file opened or folder listed through Python while grading is recorded by an audit hook
  (:func:`sys.addaudithook`, events ``open``, ``os.listdir``, ``os.scandir``) and stamped the same
  way. The kit's checks read outside files only through Python; delta-rs and DuckDB read the
  warehouse and the data folder, which are stamped whole;
* the grader's code: the SHA-256 of every file of the ``medilake_lab`` package (checks, references,
  ``labs.yaml``), and the folders of ``sys.path`` (installing or upgrading a library changes the
  site-packages folder).

A report is kept only when no input changed in the :data:`RACY_SECONDS` before its grade started
(a file system's time stamps are coarse: a second write in the tick of the first would leave the
stamp as it was — git's "racy clean" problem); such a grade is simply made again next time.
Grading never writes into the warehouse, so a kept report stays valid until the learner changes
something.

Where: ``<state>/cache/verdicts/<lab>-<hash of warehouse and data paths>.pickle``, one entry per
lab, warehouse and data folder (a new grade replaces it). An entry that cannot be read, is damaged
or was written by other code is ignored and the lab graded, never an error; nor is a folder that
cannot be written.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from medilake_lab.grader.model import LabReport
from medilake_lab.runtime import config

#: A grade is not kept when an input changed less than this many seconds before it started.
RACY_SECONDS = 2.0
#: Audit events whose first argument is a path read by the grade.
READ_EVENTS = frozenset({"open", "os.listdir", "os.scandir"})
_PACKAGE = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Stamp:
    """A stamp of a set of inputs: ``digest`` (SHA-256 hex) and ``newest`` (the latest modification
    or change time among them, ns since the epoch; 0 when there is none)."""

    digest: str
    newest: int


def folder() -> Path:
    """``<state>/cache/verdicts``."""
    return config.state_dir() / "cache" / "verdicts"


def graded(lab_id: str, warehouse: str | os.PathLike | None = None,
           data: str | os.PathLike | None = None) -> LabReport:
    """The report of :func:`medilake_lab.grader.grade`, from disk when no input changed.

    ``lab_id``, ``warehouse`` and ``data`` as for ``grade`` (None: the configured folders).
    Raises what ``grade`` raises (LabNotFoundError for an unknown id); a cache problem is never
    an error.
    """
    from medilake_lab import grader

    warehouse_dir, data_dir = config.warehouse_dir(warehouse), config.data_dir(data)
    entry = folder() / f"{lab_id}-{_name_hash(warehouse_dir, data_dir)}.pickle"
    roots = (warehouse_dir, data_dir)
    before = stamp_tree(roots)
    key = _key(lab_id, roots, before)
    kept = _read(entry, key)
    if kept is not None:
        return kept
    started = time.time_ns()
    with _recording() as opened:
        report = grader.grade(lab_id, warehouse, data)
    outside = sorted({p for p in opened if not _covered(p, roots)})
    outside_stamp = stamp_paths(outside)  # after reading: a change since then is inside the racy window
    if max(before.newest, outside_stamp.newest) < started - int(RACY_SECONDS * 1e9):
        _write(entry, (key, outside, outside_stamp.digest, report))
    return report


def stamp_tree(roots: Iterable[Path]) -> Stamp:
    """Stamp every file and folder below ``roots`` (each root's absence is stamped too): relative
    path, size, modification and change time (ns) and inode of each, in a sorted walk. Symbolic
    links are followed (a folder reached twice is walked once)."""
    digest, newest = hashlib.sha256(), 0
    for root in roots:
        digest.update(f"root {root}\n".encode())
        for relative, info in _walk(root):
            digest.update(_line(relative, info))
            if info is not None:
                newest = max(newest, info.st_mtime_ns, info.st_ctime_ns)
    return Stamp(digest.hexdigest(), newest)


def stamp_paths(paths: Iterable[str]) -> Stamp:
    """Stamp single files or folders (a folder by its own times, which change when an entry is added
    or removed), as :func:`stamp_tree` stamps each entry; a missing one is stamped as absent."""
    digest, newest = hashlib.sha256(), 0
    for path in paths:
        try:
            info: os.stat_result | None = os.stat(path)
        except OSError:
            info = None
        digest.update(_line(path, info))
        if info is not None:
            newest = max(newest, info.st_mtime_ns, info.st_ctime_ns)
    return Stamp(digest.hexdigest(), newest)


@functools.lru_cache(maxsize=1)
def code_stamp() -> str:
    """SHA-256 hex of every file of the ``medilake_lab`` package (not ``__pycache__``) and of the
    folders of ``sys.path`` (their times change when a library is installed, upgraded or removed).
    Taken once per process: a notebook kernel keeps grading with the code it loaded, so its reports
    are kept under that code's stamp even when the kit on disk is updated meanwhile."""
    digest = hashlib.sha256(sys.version.encode())
    for path in sorted(p for p in _PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(_PACKAGE).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(stamp_paths(p for p in sys.path if p and os.path.isdir(p)).digest.encode())
    return digest.hexdigest()


def _key(lab_id: str, roots: tuple[Path, Path], inputs: Stamp) -> str:
    return "\n".join([lab_id, *map(str, roots), inputs.digest, code_stamp()])


def _name_hash(warehouse: Path, data: Path) -> str:
    return hashlib.sha256(f"{warehouse}\0{data}".encode()).hexdigest()[:16]


def _line(name: str, info: os.stat_result | None) -> bytes:
    if info is None:
        return f"{name}\0absent\n".encode()
    kind = "d" if stat.S_ISDIR(info.st_mode) else "f"
    return f"{name}\0{kind}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_ctime_ns}\0{info.st_ino}\n".encode()


def _walk(root: Path) -> Iterator[tuple[str, os.stat_result | None]]:
    """``(path relative to root, stat or None)`` of root and everything below it, sorted by path."""
    try:
        top = os.stat(root)
    except OSError:
        yield ".", None
        return
    yield ".", top
    seen = {(top.st_dev, top.st_ino)}
    pending = [(str(root), "")]
    while pending:
        path, prefix = pending.pop()
        try:
            with os.scandir(path) as entries:
                found = sorted(entries, key=lambda e: e.name)
        except OSError:
            continue
        folders = []
        for entry in found:
            relative = prefix + entry.name
            try:
                info: os.stat_result | None = entry.stat()
            except OSError:  # a broken link, or removed meanwhile
                info = None
            yield relative, info
            if info is not None and stat.S_ISDIR(info.st_mode) and (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                folders.append((entry.path, relative + "/"))
        pending.extend(reversed(folders))


def _covered(path: str, roots: tuple[Path, ...]) -> bool:
    """Whether a path read while grading needs no stamp of its own: inside the stamped roots, the
    package, Python and its libraries, the cache folder (the grader's derived results) or a kernel
    file system."""
    inside = (*roots, _PACKAGE, Path(sys.prefix), Path(sys.base_prefix), config.state_dir() / "cache",
              Path("/proc"), Path("/sys"), Path("/dev"))
    return any(Path(path).is_relative_to(folder) for folder in inside)


_recorders: list[set[str]] = []
_hook_lock = threading.Lock()
_hook_installed = False


def _audit(event: str, args: tuple) -> None:
    if _recorders and event in READ_EVENTS and args:
        path = args[0]
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if isinstance(path, (str, os.PathLike)):
            _recorders[-1].add(os.path.abspath(os.fspath(path)))


@contextmanager
def _recording() -> Iterator[set[str]]:
    """The absolute paths opened or listed through Python in the block (an audit hook, installed
    once per process, that records only while a block is open)."""
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            sys.addaudithook(_audit)
            _hook_installed = True
    opened: set[str] = set()
    _recorders.append(opened)
    try:
        yield opened
    finally:
        _recorders.remove(opened)


def _read(entry: Path, key: str) -> LabReport | None:
    """The kept report when ``entry`` holds ``key`` and its outside inputs are as they were."""
    try:
        with entry.open("rb") as fh:
            kept_key, outside, outside_digest, report = pickle.load(fh)
    except Exception:  # noqa: BLE001 - missing, damaged or from other code: grade again
        return None
    if kept_key != key or not isinstance(report, LabReport) or stamp_paths(outside).digest != outside_digest:
        return None
    return report


def _write(entry: Path, value: tuple) -> None:
    temporary = None
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("wb", dir=entry.parent, suffix=".tmp", delete=False) as fh:
            temporary = fh.name
            pickle.dump(value, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, entry)
    except OSError:  # the report is just not kept
        if temporary:
            Path(temporary).unlink(missing_ok=True)
