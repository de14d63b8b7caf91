"""Independent facts about the raw feeds, counted straight from the files (no Spark, no generator).

The grader compares what a learner built against these counts, so they must not depend on the
learner's pipeline nor on the generator's own bookkeeping (the manifest).
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import msgspec

from medilake_lab.contract import feeds
from medilake_lab.errors import DataError
from medilake_lab.runtime import config


@dataclass(frozen=True)
class BatchFacts:
    """Counts for one delivered file: ``lines`` (non-blank physical lines), ``malformed``
    (lines that are not a JSON object), ``drift_values`` (records carrying a non-null drift
    column)."""

    path: Path
    lines: int
    malformed: int
    drift_values: int


#: Parse one feed line (str or bytes) to a Python value. msgspec is about five times faster than
#: ``json.loads`` with the same results for our feeds; its DecodeError is a ValueError.
decode_line = msgspec.json.Decoder().decode


def _is_object(line: str) -> dict | None:
    try:
        value = decode_line(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@lru_cache(maxsize=64)
def _batch_facts(path: Path, mtime: float) -> BatchFacts:
    lines = malformed = drift = 0
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            lines += 1
            record = _is_object(line)
            if record is None:
                malformed += 1
            elif record.get(feeds.DRIFT_COLUMN) is not None:
                drift += 1
    return BatchFacts(path, lines, malformed, drift)


def delivered(feed: str, data: str | os.PathLike | None = None) -> dict[str, BatchFacts]:
    """Batch id → facts for every file of a feed found under ``<data>/landing/<feed>/`` (the
    bundled batches, and later deliveries in lab 05's landing volume, in batch order).

    Raises
    ------
    DataError: the feed folder is missing or empty (names the folder and how to create it).
    """
    root = config.data_dir(data)
    spec = feeds.FEEDS[feed]
    found = {}
    for batch in feeds.delivered_batches(root, feed):
        path = Path(spec.path(str(root), batch))
        found[batch] = _batch_facts(path, path.stat().st_mtime)
    if not found:
        raise DataError(f"no raw files for feed {feed!r} under {root / feeds.LANDING_DIR / feed}; "
                        "run `medilake_lab generate` or pass --data DIR")
    return found
