"""Independent facts about the raw feeds, counted straight from the files (no Spark, no generator).

The grader compares what a learner built against these counts, so they must not depend on the
learner's pipeline nor on the generator's own bookkeeping (the manifest).

Erasure (lab 07): every reference reader takes ``erased``, the patient ids of the recorded erasure
requests (:attr:`medilake_lab.grader.context.Context.erased_patients`). A line whose text holds one
of them as a JSON string (``"PAT000123"``: :func:`erased_line`) counts as never delivered — the one
rule every reference (raw counts, silver, lab 05's windows) applies.

A line holding a JSON array of objects (``[{…}, {…}]``) is a record per object, as Spark's JSON
reader makes a row of each (``[]``: none); an array holding anything else is one malformed line
(:func:`records_of`; measured with Spark 4.2, lab 01's reader: explicit schema, PERMISSIVE).
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

from medilake_lab.contract import feeds
from medilake_lab.errors import DataError
from medilake_lab.grader.cache import memoized
from medilake_lab.runtime import config


@dataclass(frozen=True)
class BatchFacts:
    """Counts for one delivered file: ``lines`` (non-blank physical lines), ``rows`` (the rows
    Spark's JSON reader makes of them: one per line, but one per object for a line holding a JSON
    array of objects, :func:`records_of`), ``malformed`` (lines that are no record: not a JSON
    object nor an array of objects, or not UTF-8), ``drift_values`` (records carrying a non-null
    drift column), all without erased lines; ``erased``: the non-blank lines left out because they
    name an erased patient (:func:`erased_line`)."""

    path: Path
    lines: int
    rows: int
    malformed: int
    drift_values: int
    erased: int = 0


def needles(erased: frozenset[str]) -> tuple[str, ...]:
    """The ids that mark a line of an erased patient, sorted (equal sets give equal needles)."""
    return tuple(sorted(erased))


def names_id(text: str, patient: str) -> bool:
    """True when ``text`` holds ``patient`` as a whole word (no letter, digit or ``_`` right before
    or after it; regex ``\\b<id>\\b``): ``"PAT000123"``, ``PAT000123,`` and ``'PAT000123'`` all
    name it, so a malformed line in CSV or Python style counts too. Lab 07's DELETE predicates and
    the erasure scan use the same rule."""
    start = text.find(patient)
    while start >= 0:
        end = start + len(patient)
        if not (start and _WORD(text[start - 1])) and not (end < len(text) and _WORD(text[end])):
            return True
        start = text.find(patient, start + 1)
    return False


def _WORD(char: str) -> bool:  # noqa: N802 - reads like the regex class it stands for
    return char.isascii() and (char.isalnum() or char == "_")


def erased_line(text: str, marks: tuple[str, ...]) -> bool:
    """True when a raw line names an erased patient: it holds one of :func:`needles` as a whole
    word (:func:`names_id`)."""
    return any(names_id(text, mark) for mark in marks)


#: Parse one feed line (str or bytes) to a Python value. msgspec is about five times faster than
#: ``json.loads`` with the same results for our feeds; its DecodeError is a ValueError.
decode_line = msgspec.json.Decoder().decode


def lines(path: Path) -> Iterator[tuple[int, str, bool]]:
    """Every physical line of a gzip NDJSON feed file, as Spark's JSON reader splits them
    (``\\n``, ``\\r\\n`` or ``\\r``): ``(number from 0, text without the line break, utf8)``.

    ``utf8`` is False for a line holding bytes that are not UTF-8: Spark reads such a line as a
    malformed record (kept verbatim in bronze), so callers count it as malformed; its ``text``
    has U+FFFD in place of each bad byte.

    Raises
    ------
    DataError: the file is missing, truncated or not gzip; names the file and the last line read.
    """
    number = -1
    try:
        with gzip.open(path, "rt", encoding="utf-8", errors="surrogateescape") as fh:
            for number, line in enumerate(fh):
                text = line.rstrip("\n")
                if text.isascii():
                    yield number, text, True
                    continue
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:  # a byte surrogateescape kept: not UTF-8
                    yield number, text.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), False
                else:
                    yield number, text, True
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        where = f"after line {number + 1}" if number >= 0 else "before its first line"
        raise DataError(f"{path}: cannot be read {where} ({exc}); the file is truncated or damaged: "
                        "copy or generate the data again (`medilake_lab generate --out DIR`)") from None


def records_of(line: str) -> list[dict] | None:
    """The records Spark's JSON reader (explicit schema, PERMISSIVE) makes of one line: ``[obj]``
    for a JSON object, the objects of a JSON array that holds only objects (a row each; ``[]`` gives
    none), and None for anything else — not JSON, a scalar, ``null``, an array holding a
    non-object — which Spark keeps as one malformed row."""
    try:
        value = decode_line(line)
    except ValueError:
        return None
    if type(value) is dict:
        return [value]
    if type(value) is list and all(type(item) is dict for item in value):
        return value
    return None


@memoized  # once per file stamp and set of erased ids, kept on disk (medilake_lab.grader.cache)
def _batch_facts(path: Path, stamp: tuple[int, int], erased: frozenset[str]) -> BatchFacts:
    count = rows = malformed = drift = withheld = 0
    marks = needles(erased)
    for _, line, utf8 in lines(path):
        if not line.strip():
            continue
        if marks and erased_line(line, marks):
            withheld += 1
            continue
        count += 1
        records = records_of(line) if utf8 else None
        if records is None:
            rows, malformed = rows + 1, malformed + 1
            continue
        rows += len(records)
        drift += sum(record.get(feeds.DRIFT_COLUMN) is not None for record in records)
    return BatchFacts(path, count, rows, malformed, drift, withheld)


def delivered(feed: str, data: str | os.PathLike | None = None,
              erased: frozenset[str] = frozenset()) -> dict[str, BatchFacts]:
    """Batch id → facts for every file of a feed found under ``<data>/landing/<feed>/`` (the
    bundled batches, and later deliveries in lab 05's landing volume, in batch order); lines of
    the ``erased`` patient ids are left out (module docstring). Each file is read once per set of
    erased ids (cached on path, modification time, size and the set).

    Raises
    ------
    DataError: the feed folder is missing or empty (names the folder and how to create it).
    """
    root = config.data_dir(data)
    spec = feeds.FEEDS[feed]
    found = {}
    for batch in feeds.delivered_batches(root, feed):
        path = Path(spec.path(str(root), batch))
        stat = path.stat()
        found[batch] = _batch_facts(path, (stat.st_mtime_ns, stat.st_size), frozenset(erased))
    if not found:
        raise DataError(f"no raw files for feed {feed!r} under {root / feeds.LANDING_DIR / feed}; "
                        "run `medilake_lab generate` or pass --data DIR")
    return found
