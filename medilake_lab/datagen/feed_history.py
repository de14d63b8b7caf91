"""A data folder's batches of one feed, read back: lines, records, counts and current records.

Lab 05's deliveries (:mod:`medilake_lab.datagen.delivery`) build each new batch from what the
landing volume already holds, and count it with the generator's
:class:`~medilake_lab.datagen.manifest.FeedCounter` after replaying every earlier batch through it,
so a delivered batch is counted exactly by the manifest's definitions. Lines are parsed with
msgspec: a line is valid when it parses as a JSON object.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np

from medilake_lab.contract.feeds import Feed
from medilake_lab.datagen import mess
from medilake_lab.datagen.frame import Versions
from medilake_lab.datagen.manifest import FeedCounter
from medilake_lab.datagen.timeline import obj
from medilake_lab.errors import DataError

_decode = msgspec.json.Decoder().decode


def parse_line(line: str) -> dict | None:
    """The JSON object on a line, or None for a malformed line (not a JSON object)."""
    try:
        value = _decode(line)
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, dict) else None


def _complete(feed: Feed, record: dict) -> bool:
    return None not in map(record.get, feed.required)


@dataclass
class FeedHistory:
    """One feed's batches in a data folder, in order.

    Attributes
    ----------
    feed: the feed contract.
    batches: per batch, its lines and the JSON object of each line (None for a malformed one).
    counter: the manifest's counter after every batch (ready to count the next one).
    current: key → the key's newest valid record when it is not a delete and has every required
        field (file order; on equal ``updated_at`` the later line).
    keys: every key of a valid record with a string ``updated_at``.
    last: the last batch's counts, recounted (:data:`medilake_lab.datagen.manifest.KINDS`).
    """

    feed: Feed
    batches: list[tuple[list[str], list[dict | None]]]
    counter: FeedCounter
    current: dict[str, dict] = field(default_factory=dict)
    keys: set = field(default_factory=set)
    last: dict = field(default_factory=dict)  # manifest counts of the last batch, recounted

    @classmethod
    def read(cls, data: Path, feed: Feed, manifest: dict, manifest_path: Path) -> FeedHistory:
        """Read every batch ``manifest`` lists (in order) under the data folder ``data``,
        replaying the manifest's counter over them.

        Raises
        ------
        DataError: a listed file is missing although the manifest counts lines for it, or it
            cannot be read (names the file).
        """
        hist = cls(feed, [], FeedCounter(feed))
        newest: dict[str, tuple[str, dict]] = {}
        for b in manifest["batches"]:
            path = Path(feed.path(str(data), b))
            lines = read_lines(path, manifest["feeds"][feed.name].get(b), manifest_path)
            records = [parse_line(line) for line in lines]
            hist.batches.append((lines, records))
            hist.last = count_lines(hist.counter, lines, records)
            for r in records:
                if r is None:
                    continue
                key, ts = r.get(feed.key), r.get("updated_at")
                if key.__class__ is str and ts.__class__ is str:
                    old = newest.get(key)
                    if old is None or ts >= old[0]:
                        newest[key] = (ts, r)
        hist.keys = set(newest)
        hist.current = {k: r for k, (_, r) in newest.items() if r.get("op") != "D" and _complete(feed, r)}
        return hist

    def valid(self, batch: int = -1) -> list[tuple[str, dict]]:
        """(line, record) pairs of the valid lines of one earlier batch (default: the last)."""
        lines, records = self.batches[batch]
        return [(line, r) for line, r in zip(lines, records, strict=True) if r is not None]


def read_lines(path: Path, entry: object, manifest_path: Path) -> list[str]:
    """The lines of a gzip NDJSON batch file; ``[]`` for a missing file whose manifest ``entry``
    counts no lines. DataError (naming the file) when it is missing otherwise or unreadable."""
    if not path.exists():
        listed = entry.get("lines", 0) if isinstance(entry, dict) else 0
        if listed:
            raise DataError(f"{path} is missing, but the manifest {manifest_path} lists {listed} "
                            "lines for it")
        return []
    try:
        text = gzip.decompress(path.read_bytes()).decode("utf-8")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the batch file {path}: {exc}") from None
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def count_lines(counter: FeedCounter, lines: list[str], records: list[dict | None] | None = None) -> dict:
    """The manifest counts of one file's ``lines`` (``records``: their parsed objects, if at hand),
    by the generator's counter, whose state carries over to the next file."""
    if records is None:
        records = [parse_line(line) for line in lines]
    feed, n = counter.feed, len(lines)
    rec = [r or {} for r in records]
    names = {feed.key, *feed.required, *((feed.code_column,) if feed.code_column else ())}
    cols = {c: obj([r.get(c) for r in rec]) for c in names - {"op", "updated_at"}}
    ops = np.array([str(r.get("op")) for r in rec], dtype="<U1")  # only I/U/D count
    ts = [t if t.__class__ is str else None for t in (r.get("updated_at") for r in rec)]
    view = mess.Delivery(Versions(cols, ops, np.zeros(n, np.int64), np.arange(n, dtype=np.int64)),
                         np.zeros(n, np.int8), np.zeros(n), np.array([r is None for r in records], np.int8),
                         np.zeros(n), np.zeros(n, dtype=bool))
    return counter.count(view, np.arange(n), lines, ts)

