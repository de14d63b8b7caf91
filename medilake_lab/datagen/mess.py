"""Deliberate mess: what turns clean record versions into a realistic raw delivery.

Starting from one feed's natural versions (each delivered in the batch whose window holds its
change time, in change-time order), :func:`add_mess` adds, per batch:

- ``null_required``: a required field (rarely the key or ``updated_at``) set to null;
- ``invalid_codes``: the code column replaced by a code that is not in the code table;
- ``late_arriving``: an insert held back to a later batch (its ``updated_at`` stays old);
- ``out_of_order``: a stale op U copy of an older version, with an ``updated_at`` between that
  version and the newest one, delivered after the newest one;
- ``exact_duplicates``: byte-identical re-deliveries of earlier lines (same or later batch);
- ``malformed_lines``: corrupted copies of lines (truncated JSON, a CSV line, a Python dict
  repr, a JSON array).

Nulls, invalid codes and late arrivals only touch entities with a single version, so they never
change how the other versions of a key are counted. The exact counts are computed from the
written lines by the manifest (see ``medilake_lab.datagen.manifest``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medilake_lab.contract.feeds import BATCHES, DRIFT_FEED, DRIFT_FIRST_BATCH, Feed
from medilake_lab.datagen.frame import Versions, concat, latest
from medilake_lab.datagen.timeline import DAY, batch_index, window_end

#: Codes that look plausible but are not in the code tables (``medilake_lab.contract.codes``).
INVALID_CODES = {
    "ICD-10-CM": ("ZZZ.99", "E11.999X", "J18", "I10.0X", "E119"),
    "CPT": ("99999", "9921", "ABCDE", "2713O"),
    "LOINC": ("00000-0", "2345-8", "9999-99", "LP-1234"),
    "RxNorm": ("000000", "86097", "99999999", "ASPIRIN"),
}
#: Per batch, count = max(minimum, round(rate * rows delivered in that batch)).
RATES = {"null_required": 0.003, "invalid_codes": 0.003, "late_arriving": 0.02,
         "out_of_order": 0.006, "exact_duplicates": 0.012, "malformed_lines": 0.002}
MINIMUM = {"null_required": 1, "invalid_codes": 1, "late_arriving": 2, "out_of_order": 1,
           "exact_duplicates": 2, "malformed_lines": 1}
#: At most this share of the keys whose newest version is in a batch get a stale update.
STALE_SHARE = 0.1
#: Malformed line kinds (index = ``Delivery.malformed`` value).
MALFORMED_KINDS = ("", "truncated", "csv", "python_repr", "json_array")


@dataclass
class Delivery:
    """Rows to write for one feed and where they go.

    Attributes
    ----------
    v: the rows (natural versions, modified in place, plus appended extra rows).
    batch: index into ``BATCHES`` of the file each row is written to.
    pos: sort key of the row inside its batch file.
    malformed: 0, or the index into ``MALFORMED_KINDS`` of the corruption applied on writing.
    cut: for truncated lines, the fraction of the line kept.
    null_ts: True where ``updated_at`` is delivered as null.
    """

    v: Versions
    batch: np.ndarray
    pos: np.ndarray
    malformed: np.ndarray
    cut: np.ndarray
    null_ts: np.ndarray

    def append(self, rows: Versions, batch, pos, malformed=None) -> None:
        n = len(rows)
        self.v = concat([self.v, rows])
        self.batch = np.concatenate([self.batch, np.asarray(batch, dtype=np.int8)])
        self.pos = np.concatenate([self.pos, np.asarray(pos, dtype=float)])
        mal = np.zeros(n, np.int8) if malformed is None else np.asarray(malformed, np.int8)
        self.malformed = np.concatenate([self.malformed, mal])
        self.cut = np.concatenate([self.cut, np.zeros(n)])
        self.null_ts = np.concatenate([self.null_ts, np.zeros(n, dtype=bool)])


def _natural_positions(batch: np.ndarray, v: Versions) -> np.ndarray:
    order = np.lexsort((v.ent, v.ts, batch))
    starts = np.searchsorted(batch[order], np.arange(len(BATCHES)))
    rank = np.empty(len(order), dtype=float)
    rank[order] = np.arange(len(order)) - starts[batch[order]]
    return rank


def _count(kind: str, n: int) -> int:
    return max(MINIMUM[kind], round(RATES[kind] * n)) if n else 0


def _choose(rng, mask: np.ndarray, k: int) -> np.ndarray:
    cand = np.flatnonzero(mask)
    return np.sort(rng.choice(cand, min(k, len(cand)), replace=False)) if len(cand) else cand


def _after(rng, ref_pos: np.ndarray, size: int) -> np.ndarray:
    """Positions strictly after ``ref_pos`` in a batch of ``size`` rows."""
    return ref_pos + 0.5 + rng.random(len(ref_pos)) * np.maximum(size - ref_pos, 0.5)


def add_mess(v: Versions, feed: Feed, rng: np.random.Generator) -> Delivery:
    """Assign batches and positions to ``v``'s rows and add every kind of mess (see module doc).

    Parameters
    ----------
    v: the feed's natural versions (change times within the event window).
    feed: the feed contract (key, required fields, code column).
    rng: random generator (the result is deterministic given its state).
    """
    v = v.take(np.arange(len(v)))  # own copies: rows are modified in place below
    batch = batch_index(v.ts)
    d = Delivery(v, batch, _natural_positions(batch, v), np.zeros(len(v), np.int8),
                 np.zeros(len(v)), np.zeros(len(v), dtype=bool))
    size = np.bincount(batch, minlength=len(BATCHES))
    counts = np.bincount(v.ent)
    free = (counts[v.ent] == 1) & (v.op == "I")
    for b in range(len(BATCHES)):
        rows = _choose(rng, free & (batch == b), _count("null_required", size[b]))
        free[rows] = False
        _null_required(rng, d, rows, feed)
        if feed.code_column and feed.code_system:
            rows = _choose(rng, free & (batch == b), _count("invalid_codes", size[b]))
            free[rows] = False
            bad = INVALID_CODES[feed.code_system]
            for r, i in zip(rows.tolist(), rng.integers(0, len(bad), len(rows)).tolist(), strict=True):
                d.v.cols[feed.code_column][r] = bad[i]
    _late_arriving(rng, d, free, size)
    _out_of_order(rng, d, size)
    _duplicates(rng, d, size, feed)
    _malformed(rng, d)
    return d


def _null_required(rng, d: Delivery, rows: np.ndarray, feed: Feed) -> None:
    fields = [f for f in feed.required if f != "op"]
    w = np.array([0.05 if f in (feed.key, "updated_at") else 1.0 for f in fields])
    picks = rng.choice(len(fields), len(rows), p=w / w.sum())
    for r, f in zip(rows.tolist(), picks.tolist(), strict=True):
        if fields[f] == "updated_at":
            d.null_ts[r] = True
        else:
            d.v.cols[fields[f]][r] = None


def _late_arriving(rng, d: Delivery, free: np.ndarray, size: np.ndarray) -> None:
    """Hold back single-version inserts to a later batch."""
    for target in range(1, len(BATCHES)):
        src = np.full(len(d.batch), False)
        for b in range(target):
            src |= (d.batch == b) & (d.v.ts < window_end(b) - 2 * DAY)
        rows = _choose(rng, free & src, _count("late_arriving", size[target]))
        free[rows] = False
        d.batch[rows] = target
        d.pos[rows] = rng.random(len(rows)) * size[target] - 0.25


def _out_of_order(rng, d: Delivery, size: np.ndarray) -> None:
    """Stale op U copies of the second-newest version, delivered after the newest one."""
    v = d.v
    counts = np.bincount(v.ent)
    deleted = np.unique(v.ent[v.op == "D"])
    ents = np.setdiff1d(np.unique(v.ent[counts[v.ent] >= 2]), deleted)
    if len(ents) == 0:
        return
    newest = latest(v, ents)
    rest = np.flatnonzero(np.isin(np.arange(len(v)), newest, invert=True))
    prev = rest[latest(v.take(rest), ents)]
    ok = (v.ts[newest] - v.ts[prev] >= 2) & ~d.null_ts[newest] & ~d.null_ts[prev]
    newest, prev = newest[ok], prev[ok]
    for b in range(len(BATCHES)):
        cand = d.batch[newest] == b
        k = min(_count("out_of_order", size[b]), max(1, round(STALE_SHARE * cand.sum())))
        pick = _choose(rng, cand, k)
        if len(pick) == 0:
            continue
        new, old = newest[pick], prev[pick]
        gap = v.ts[new] - v.ts[old]
        ts = v.ts[old] + np.clip((gap * rng.uniform(0.3, 0.9, len(pick))).astype(np.int64), 1,
                                 gap - 1)
        stale = v.take(old).as_op("U", ts)
        later = (rng.random(len(pick)) < 0.3) & (b + 1 < len(BATCHES))
        target = np.where(later, b + 1, b)
        pos = np.where(later, rng.random(len(pick)) * size[min(b + 1, len(BATCHES) - 1)],
                       _after(rng, d.pos[new], size[b]))
        d.append(stale, target, pos)


def _duplicates(rng, d: Delivery, size: np.ndarray, feed: Feed) -> None:
    """Byte-identical re-deliveries, in the same batch or a later one."""
    drift = BATCHES.index(DRIFT_FIRST_BATCH) if feed.name == DRIFT_FEED else len(BATCHES)
    n0 = len(d.v)
    for b in range(len(BATCHES)):
        src = _choose(rng, d.batch[:n0] == b, _count("exact_duplicates", size[b]))
        if len(src) == 0:
            continue
        later = (rng.random(len(src)) < 0.35) & (b + 1 < len(BATCHES)) & (b + 1 < drift)
        target = np.where(later, b + 1, b)
        pos = np.where(later, rng.random(len(src)) * size[min(b + 1, len(BATCHES) - 1)],
                       _after(rng, d.pos[src], size[b]))
        null_ts = d.null_ts[src]
        d.append(d.v.take(src), target, pos)
        d.null_ts[-len(src):] = null_ts


def _malformed(rng, d: Delivery) -> None:
    """Corrupted copies of lines, anywhere in the batch."""
    n0 = len(d.v)
    for b in range(len(BATCHES)):
        n_b = int((d.batch[:n0] == b).sum())
        src = _choose(rng, d.batch[:n0] == b, _count("malformed_lines", n_b))
        if len(src) == 0:
            continue
        kinds = rng.integers(1, len(MALFORMED_KINDS), len(src))
        d.append(d.v.take(src), np.full(len(src), b), rng.random(len(src)) * n_b, kinds)
        d.cut[-len(src):] = rng.uniform(0.2, 0.9, len(src))
