"""Serialise a feed's delivery into gzip NDJSON batch files, deterministically.

One JSON object per line, keys in the feed's column order (plus the drift column from
``DRIFT_FIRST_BATCH`` on), compact separators, ``\\n`` line ends. Files are gzip with
``mtime=0`` and no file name in the header, so the same rows always give the same bytes.
:func:`write_file` is thread-safe: ``generate`` compresses in a thread pool (zlib releases the
GIL) while it serialises the next file.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from json.encoder import encode_basestring_ascii
from pathlib import Path

import numpy as np

from medilake_lab.contract.feeds import BATCHES, DRIFT_COLUMN, DRIFT_FEED, DRIFT_FIRST_BATCH, Feed
from medilake_lab.datagen.mess import MALFORMED_KINDS, Delivery
from medilake_lab.datagen.timeline import fmt_ts

COMPRESS_LEVEL = 6
_dumps = json.JSONEncoder(separators=(",", ":")).encode
_FRAGMENT = {str: encode_basestring_ascii, float: float.__repr__, int: int.__repr__,
             bool: lambda x: "true" if x else "false", type(None): lambda x: "null"}


def _fragments(values: list) -> list[str]:
    """JSON text of each value, exactly as ``json.dumps`` writes it (ASCII-escaped strings)."""
    try:
        return list(map(encode_basestring_ascii, values))  # fast path: all strings
    except TypeError:
        return [_FRAGMENT[type(x)](x) for x in values]


def encode_lines(names: list[str], cols: list[list]) -> list[str]:
    """One JSON object per row of the column lists ``cols``, keys ``names`` in order.

    Byte-identical to ``json.dumps(dict(zip(names, row)), separators=(",", ":"))`` for rows of
    str / float / int / bool / None values (ASCII output), about twice as fast: each column is
    encoded once, then rows are joined through a ``%`` template.
    """
    template = "{" + ",".join(f"{encode_basestring_ascii(n)}:%s" for n in names) + "}"
    return [template % row for row in zip(*(_fragments(c) for c in cols), strict=True)]


def columns(feed: Feed, batch: str) -> list[str]:
    """Keys of each record of ``feed`` in ``batch``, in delivery order."""
    cols = feed.columns
    if feed.name == DRIFT_FEED and batch >= DRIFT_FIRST_BATCH:
        cols = cols + [DRIFT_COLUMN]
    return cols


def corrupt(kind: str, record: dict, line: str, cut: float) -> str:
    """A malformed copy of ``line`` (the JSON of ``record``): ``kind`` is one of
    ``MALFORMED_KINDS[1:]``; a truncated line keeps the fraction ``cut`` (0..1) of it."""
    if kind == "truncated":
        return line[: max(1, min(len(line) - 1, int(len(line) * cut)))]
    if kind == "csv":
        return ",".join("" if x is None else str(x) for x in record.values())
    if kind == "python_repr":
        return repr(record)
    return _dumps(list(record.values()))  # json_array: valid JSON, but not an object


def batch_lines(d: Delivery, feed: Feed, b: int) -> tuple[list[str], np.ndarray, list]:
    """Serialise batch ``b`` (index into ``BATCHES``) of a delivery.

    Returns
    -------
    (lines, idx, updated_at): the file's lines in order, the row of ``d`` behind each line and
    each line's ``updated_at`` string (None where delivered null).
    """
    idx = np.flatnonzero(d.batch == b)
    idx = idx[np.argsort(d.pos[idx], kind="stable")]
    names = columns(feed, BATCHES[b])
    ts: list[str | None] = list(fmt_ts(d.v.ts[idx]))
    for i in np.flatnonzero(d.null_ts[idx]).tolist():
        ts[i] = None
    cols = []
    for name in names:
        if name == "op":
            cols.append(d.v.op[idx].tolist())
        elif name == "updated_at":
            cols.append(ts)
        else:
            cols.append(d.v.cols[name][idx].tolist())
    lines = encode_lines(names, cols)
    for i in np.flatnonzero(d.malformed[idx]).tolist():
        r = idx[i]
        record = dict(zip(names, (c[i] for c in cols), strict=True))
        lines[i] = corrupt(MALFORMED_KINDS[d.malformed[r]], record, lines[i], d.cut[r])
    return lines, idx, ts


def write_file(path: Path, lines: list[str]) -> dict:
    """Gzip ``lines`` (newline-terminated) to ``path``.

    Returns
    -------
    dict: ``{"sha256": ...}`` of the *uncompressed* NDJSON content (independent of the zlib
    build, unlike the compressed bytes).
    """
    raw = ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
    data = gzip.compress(raw, compresslevel=COMPRESS_LEVEL, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"sha256": hashlib.sha256(raw).hexdigest()}
