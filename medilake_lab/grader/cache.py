"""Reference results cached on disk, so a re-grade recomputes nothing the raw data did not change.

The grader's references (:mod:`medilake_lab.grader.reference`) are pure functions of the raw files
they read, the erased patients (:attr:`medilake_lab.grader.context.Context.erased_patients`) and
the grader's own code. :func:`memoized` keeps a function's results in memory for the process and
on disk for the next one, under a key made of

* the function's arguments, which must name what it reads: the data folder and a stamp of its
  files (path or name, size and modification time in ns — ``medilake_lab deliver`` adds files, a
  regenerated file changes size or time), and the erased patient ids;
* :func:`code_hash`: the source of the reference modules, this module, the feed and code
  contracts and the grader toolkit they use, the erasure scan (its per-file findings are kept
  too: :func:`read`, :func:`write`), and the versions of the libraries that compute them (a
  change of any gives other keys, so stale entries are never read).

Where: ``<state>/cache/grader/`` (:func:`medilake_lab.runtime.config.state_dir`, ``.medilake``
by default; ``MEDILAKE_STATE`` moves it). Not in the warehouse: grading only reads the
warehouse (and never writes into a Delta table folder); the state folder is the learner's own
scratch space, and one entry serves every warehouse graded on the same data. The newest
entries are kept (:data:`MAX_ENTRIES`, :data:`MAX_BYTES`).

An entry is a pickle of ``(key text, result)`` written atomically (temporary file, then
rename). An entry that cannot be read or holds another key (damaged, truncated, written by
another version) is ignored and recomputed, never an error; nor is a folder that cannot be
written (the result is just not kept).
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import sys
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from medilake_lab.runtime import config

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: Disk entries kept (newest by modification time; a hit refreshes it), and their total bytes.
MAX_ENTRIES = 512
MAX_BYTES = 1 << 30
#: Results kept in memory per process (least recently used dropped first).
MEMORY_ENTRIES = 64
SUFFIX = ".pickle"

_PACKAGE = Path(__file__).resolve().parent.parent
#: The sources whose code decides a reference result (relative to the package).
SOURCES: tuple[str, ...] = ("grader/cache.py", "grader/toolkit.py", "grader/erasure_scan.py", "contract/feeds.py",
                            "contract/codes.py")
_memory: OrderedDict[str, object] = OrderedDict()


def folder() -> Path:
    """The cache folder: ``<state>/cache/grader`` (module docstring)."""
    return config.state_dir() / "cache" / "grader"


@functools.lru_cache(maxsize=1)
def code_hash() -> str:
    """SHA-256 (hex) of the reference code (every module of :mod:`medilake_lab.grader.reference`
    and :data:`SOURCES`) and of the Python, pyarrow, DuckDB and msgspec versions."""
    import duckdb
    import msgspec
    import pyarrow

    digest = hashlib.sha256()
    files = sorted((_PACKAGE / "grader" / "reference").glob("*.py")) + [_PACKAGE / s for s in SOURCES]
    for file in files:
        digest.update(file.relative_to(_PACKAGE).as_posix().encode() + b"\0" + file.read_bytes() + b"\0")
    versions = (sys.version, pyarrow.__version__, duckdb.__version__, msgspec.__version__)
    digest.update(repr(versions).encode())
    return digest.hexdigest()


def _canonical(value: object) -> object:
    """``value`` with sets sorted and paths as text, so that its ``repr`` is the same in every
    process. Raises TypeError for a type whose repr may not be stable (an honest key only)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (tuple, list)):
        return tuple(_canonical(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return ("set", tuple(sorted((_canonical(v) for v in value), key=repr)))
    if isinstance(value, dict):
        return ("dict", tuple(sorted(((_canonical(k), _canonical(v)) for k, v in value.items()), key=repr)))
    raise TypeError(f"a cache key cannot hold a {type(value).__name__}: {value!r}")


def key_text(name: str, args: tuple) -> str:
    """The full key of a call: code hash, function name and canonical arguments (text)."""
    return f"{code_hash()}\n{name}\n{_canonical(args)!r}"


def cached(name: str, args: tuple, build: Callable[[], T], *, disk: bool = True) -> T:
    """``build()``'s result for ``name`` called with ``args``: from memory, else (``disk``) from
    the disk entry of the same key, else computed and stored (module docstring). ``args`` must
    identify everything the result depends on besides the code; it may hold str, numbers,
    paths, tuples, lists, sets and dicts of them."""
    text = key_text(name, args)
    digest = hashlib.sha256(text.encode()).hexdigest()
    if digest in _memory:
        _memory.move_to_end(digest)
        return _memory[digest]  # type: ignore[return-value]
    path = _path(text)
    found, value = load_entry(path, text) if disk else (False, None)
    if not found:
        value = build()
        if disk:
            store_entry(path, text, value)
    _memory[digest] = value
    while len(_memory) > MEMORY_ENTRIES:
        _memory.popitem(last=False)
    return value  # type: ignore[return-value]


def memoized(fn: F) -> F:
    """Decorator: :func:`cached` for every call of ``fn(*args)`` (positional arguments only),
    named by its module and qualified name."""
    name = f"{fn.__module__}.{fn.__qualname__}"

    @functools.wraps(fn)
    def wrapper(*args: object) -> object:
        return cached(name, args, lambda: fn(*args))
    return wrapper  # type: ignore[return-value]


def in_memory(fn: F) -> F:
    """Decorator: as :func:`memoized`, in memory only (a result cheap to derive from cached ones)."""
    name = f"{fn.__module__}.{fn.__qualname__}"

    @functools.wraps(fn)
    def wrapper(*args: object) -> object:
        return cached(name, args, lambda: fn(*args), disk=False)
    return wrapper  # type: ignore[return-value]


def read(name: str, args: tuple) -> object | None:
    """The disk entry stored by :func:`write` under ``name`` and ``args``; None when there is none
    (or it is damaged or of another key). For results kept up to date piece by piece."""
    return load_entry(_path(key_text(name, args)), key_text(name, args))[1]


def write(name: str, args: tuple, value: object) -> None:
    """Store ``value`` on disk under ``name`` and ``args`` (never raises: see the module docstring)."""
    text = key_text(name, args)
    store_entry(_path(text), text, value)


def _path(text: str) -> Path:
    return folder() / f"{hashlib.sha256(text.encode()).hexdigest()}{SUFFIX}"


def forget_memory() -> None:
    """Drop the in-memory results (the disk entries stay): the next call reads the disk."""
    _memory.clear()


def load_entry(path: Path, text: str) -> tuple[bool, object]:
    """``(True, value)`` stored at ``path`` under key ``text``, else ``(False, None)`` (absent, damaged
    or another key; never raises). A hit refreshes the entry's time (:func:`_prune` keeps the newest)."""
    try:
        with open(path, "rb") as fh:
            stored, value = pickle.load(fh)
    except Exception:  # noqa: BLE001 - absent, damaged or foreign: recomputed, never an error
        return False, None
    if stored != text:
        return False, None
    try:
        os.utime(path)  # a hit keeps the entry among the newest
    except OSError:
        pass
    return True, value


def store_entry(path: Path, text: str, value: object) -> None:
    """Pickle ``(text, value)`` to ``path`` atomically (temporary file, then rename) and prune its
    folder; a folder that cannot be written only means nothing is kept (never raises)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump((text, value), fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        _prune(path.parent)
    except Exception:  # noqa: BLE001 - a read-only or full disk only means no cache
        return


def _prune(where: Path) -> None:
    """Keep the newest entries: at most :data:`MAX_ENTRIES` and :data:`MAX_BYTES` in all."""
    entries = []
    for entry in os.scandir(where):
        if entry.name.endswith(SUFFIX):
            try:
                stat = entry.stat()
            except OSError:
                continue
            entries.append((stat.st_mtime_ns, stat.st_size, entry.path))
    total = 0
    for rank, (_, size, old) in enumerate(sorted(entries, reverse=True)):
        total += size
        if rank >= MAX_ENTRIES or total > MAX_BYTES:
            try:
                os.unlink(old)
            except OSError:
                pass
