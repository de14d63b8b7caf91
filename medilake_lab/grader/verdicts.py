"""Whole-lab verdicts kept on disk, so that re-grading an unchanged warehouse takes no reading.

:func:`graded` is :func:`medilake_lab.grader.grade` for the commands a learner repeats
(``medilake_lab check``, ``run``, ``hint``, the catch-up plan, and a notebook's ``grade`` cell, so that
the first ``check`` after it is answered at once): it answers from the last report of
the same lab, warehouse and data folder when nothing the grade depends on has changed since, and
otherwise grades and keeps the report. The learner's tables stay the only truth: a report is
reused only when every input still carries the stamp it had when it was graded.

What a report depends on, and how each is stamped:

* the warehouse and the raw-data folder: every file and folder below them (path, size, modification
  and change time in ns, device and inode: a Delta commit, a rewritten checkpoint, a delivered batch, a table
  moved aside or copied back all change it), walked before grading: the report is kept under that
  stamp, so a change made while it was graded gives another stamp next time;
* files read outside those two folders (lab 06's ``spark-pipeline.yml``, named by the event log):
  every file opened or folder listed through Python while grading is recorded by an audit hook
  (:func:`sys.addaudithook`, events ``open``, ``os.listdir``, ``os.scandir``) and stamped the same
  way. The kit's checks read outside files only through Python; delta-rs and DuckDB read the
  warehouse and the data folder, which are stamped whole;
* the grader's code: the SHA-256 of every file of the ``medilake_lab`` package (checks, references,
  ``labs.yaml``), and the installed-libraries folders (installing, upgrading or removing a library
  changes them). A process whose package files changed after it imported ``medilake_lab`` (a
  notebook kernel when the kit is updated) may be grading with the old code: it neither reads nor
  keeps reports;
* the clock, where a check compares it with a moment to come (lab 07: a retention period ends):
  checks read it only through :meth:`Context.now <medilake_lab.grader.context.Context.now>` and name
  that moment with ``Context.until``; the report says until when it holds
  (``LabReport.valid_until``) and is not reused after that.

A report is kept only when no input changed in the :data:`RACY_SECONDS` before its grade started
(a file system's time stamps are coarse: a second write in the tick of the first would leave the
stamp as it was — git's "racy clean" problem), when every folder could be listed and every path
read could be recorded, and when no check met an unexpected error (``LabReport.cacheable``: it may
be transient); otherwise the lab is simply graded again next time.
Grading never writes into the warehouse, so a kept report stays valid until the learner changes
something.

Where: ``<state>/cache/verdicts/<lab>-<hash of warehouse and data paths>.pickle``, one entry per
lab, warehouse and data folder (a new grade replaces it), written and pruned as the reference
cache's entries are (:func:`medilake_lab.grader.cache.store_entry`). An entry that cannot be read,
is damaged or was written by other code is ignored and the lab graded, never an error; nor is a
folder that cannot be written.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import sysconfig
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import medilake_lab
from medilake_lab.grader import cache
from medilake_lab.grader.model import LabReport
from medilake_lab.runtime import config

#: A grade is not kept when an input changed less than this many seconds before it started.
RACY_SECONDS = 2.0
#: Audit events whose first argument is a path read by the grade.
READ_EVENTS = frozenset({"open", "os.listdir", "os.scandir"})
_PACKAGE = Path(medilake_lab.__file__).resolve().parent
#: Python's own and the installed libraries' folders.
_LIBRARIES = tuple(dict.fromkeys(Path(sysconfig.get_paths()[kind])
                                 for kind in ("stdlib", "platstdlib", "purelib", "platlib")))


@dataclass(frozen=True)
class Stamp:
    """A stamp of a set of inputs: ``digest`` (SHA-256 hex), ``newest`` (the latest modification or
    change time among them, ns since the epoch; 0 when there is none) and ``complete`` (False when
    a folder could not be listed: the stamp does not cover it and must not be trusted)."""

    digest: str
    newest: int
    complete: bool = True


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
    code = code_stamp()
    before = stamp_tree(roots)
    usable = before.complete and code.newest < medilake_lab.IMPORTED_NS
    key = _key(lab_id, roots, before, code)
    if usable and (kept := _read(entry, key)) is not None:
        return kept
    started = time.time_ns()
    with _recording() as recording:
        report = grader.grade(lab_id, warehouse, data)
    outside = sorted({p for p in recording.paths if not _covered(p, roots)})
    outside_stamp = stamp_paths(outside)  # after reading: a change since then is inside the racy window
    settled = max(before.newest, outside_stamp.newest) < started - int(RACY_SECONDS * 1e9)
    if usable and settled and recording.complete and report.cacheable:
        cache.store_entry(entry, key, (outside, outside_stamp.digest, report))
    return report


def stamp_tree(roots: Iterable[Path]) -> Stamp:
    """Stamp every file and folder below ``roots`` (each root's absence is stamped too): relative
    path, device, inode, size, modification and change time (ns) of each, in a sorted walk.
    Symbolic links are followed (a folder reached twice is walked once)."""
    digest, newest, complete = hashlib.sha256(), 0, True
    for root in roots:
        digest.update(f"root {root}\n".encode())
        for relative, info in _walk(root):
            if relative is None:
                complete = False
                continue
            digest.update(_line(relative, info))
            if info is not None:
                newest = max(newest, info.st_mtime_ns, info.st_ctime_ns)
    return Stamp(digest.hexdigest(), newest, complete)


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


def code_stamp() -> Stamp:
    """Stamp of the grader's code: SHA-256 of every file of the ``medilake_lab`` package (not
    ``__pycache__``), the Python version and the installed-libraries folders; ``newest`` is the
    latest modification or change time of the package's files."""
    digest, newest = hashlib.sha256(sys.version.encode()), 0
    for path in sorted(p for p in _PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        info = path.stat()
        newest = max(newest, info.st_mtime_ns, info.st_ctime_ns)
        digest.update(path.relative_to(_PACKAGE).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(stamp_paths(str(p) for p in _LIBRARIES).digest.encode())
    return Stamp(digest.hexdigest(), newest)


def _key(lab_id: str, roots: tuple[Path, Path], inputs: Stamp, code: Stamp) -> str:
    return "\n".join([lab_id, *map(str, roots), inputs.digest, code.digest])


def _name_hash(warehouse: Path, data: Path) -> str:
    return hashlib.sha256(f"{warehouse}\0{data}".encode()).hexdigest()[:16]


def _line(name: str, info: os.stat_result | None) -> bytes:
    if info is None:
        return f"{name}\0absent\n".encode()
    kind = "d" if stat.S_ISDIR(info.st_mode) else "f"
    return (f"{name}\0{kind}\0{info.st_dev}\0{info.st_ino}\0{info.st_size}\0{info.st_mtime_ns}\0"
            f"{info.st_ctime_ns}\n").encode()


def _walk(root: Path) -> Iterator[tuple[str | None, os.stat_result | None]]:
    """``(path relative to root, stat or None)`` of root and everything below it, sorted by path;
    ``(None, None)`` for a folder that exists but cannot be listed."""
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
        except FileNotFoundError:  # removed meanwhile: its parent's times changed too
            continue
        except OSError:
            yield None, None
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
    package, Python's and the libraries' folders, the cache folder (the grader's derived results) or
    a kernel file system."""
    inside = (*roots, _PACKAGE, *_LIBRARIES, config.state_dir() / "cache", Path("/proc"), Path("/sys"), Path("/dev"))
    return any(Path(path).is_relative_to(folder) for folder in inside)


@dataclass(eq=False)
class _Recording:
    """Paths opened or listed through Python while a grade runs; ``complete`` is False when one
    could not be made absolute (then the grade must not be kept)."""

    paths: set[str] = field(default_factory=set)
    complete: bool = True


_recordings: list[_Recording] = []
_hook_lock = threading.Lock()
_hook_installed = False


def _audit(event: str, args: tuple) -> None:
    if not _recordings or event not in READ_EVENTS or not args:
        return
    if isinstance(args[0], int):
        return  # a read through a file descriptor: its file was recorded when it was opened
    try:
        path = os.path.abspath(os.fsdecode(os.fspath("." if args[0] is None else args[0])))  # None: os.listdir()
        for recording in list(_recordings):
            recording.paths.add(path)
    except Exception:  # noqa: BLE001 - never fail the grader's own read; just do not keep this grade
        for recording in list(_recordings):
            recording.complete = False


@contextmanager
def _recording() -> Iterator[_Recording]:
    """What is opened or listed through Python in the block, by any thread (an audit hook,
    installed once per process, that records only while a block is open)."""
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            sys.addaudithook(_audit)
            _hook_installed = True
    recording = _Recording()
    _recordings.append(recording)
    try:
        yield recording
    finally:
        _recordings[:] = [r for r in _recordings if r is not recording]


def _read(entry: Path, key: str) -> LabReport | None:
    """The kept report when ``entry`` holds ``key``, its outside inputs are as they were and the
    clock has not reached its ``valid_until``."""
    found, kept = cache.load_entry(entry, key)
    if not found:
        return None
    try:
        outside, outside_digest, report = cast(tuple[list[str], str, LabReport], kept)
        if not isinstance(report, LabReport) or stamp_paths(outside).digest != outside_digest:
            return None
        if report.valid_until is not None and datetime.now(UTC) >= report.valid_until:
            return None
        return report
    except Exception:  # noqa: BLE001 - missing, damaged or from other code: grade again
        return None
