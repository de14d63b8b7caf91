"""``Versions``: the columnar table of record versions one feed is built from.

Each row is one version of one entity (a CDC record): the feed's columns as JSON-ready Python
objects in object arrays, plus ``op`` (I/U/D), ``ts`` (the change time, int64 epoch seconds,
written as ``updated_at``) and ``ent`` (int64 entity number, the identity behind the key).
Builders create the insert rows, derive update/delete rows with :meth:`Versions.take` and
:meth:`Versions.set`, and :func:`concat` them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medilake_lab.datagen.timeline import END_TS, obj


@dataclass
class Versions:
    """Columnar record versions of one feed (all arrays have the same length ``n``).

    Attributes
    ----------
    cols: column name → object array (feed columns except ``op``/``updated_at``; may hold
        extra columns such as the drift column).
    op: ``<U1`` array of ``"I"``, ``"U"`` or ``"D"``.
    ts: int64 change times (epoch seconds).
    ent: int64 entity numbers (one per business key).
    """

    cols: dict[str, np.ndarray]
    op: np.ndarray
    ts: np.ndarray
    ent: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, idx: np.ndarray) -> Versions:
        """Rows ``idx`` (integer or boolean index) as a new table (arrays are copied)."""
        return Versions({k: v[idx] for k, v in self.cols.items()}, self.op[idx],
                        self.ts[idx], self.ent[idx])

    def set(self, **cols) -> Versions:
        """Replace whole columns (values are converted to object arrays); returns self."""
        for name, values in cols.items():
            if name not in self.cols:
                raise KeyError(f"unknown column {name!r}")
            self.cols[name] = values if (isinstance(values, np.ndarray)
                                         and values.dtype == object) else obj(values)
        return self

    def as_op(self, op: str, ts: np.ndarray) -> Versions:
        """Same values with operation ``op`` and change times ``ts``; returns self."""
        self.op = np.full(len(self), op, dtype="<U1")
        self.ts = np.asarray(ts, dtype=np.int64)
        return self


def inserts(cols: dict[str, object], ts: np.ndarray) -> Versions:
    """Insert rows (op I) for entities ``0..n-1`` with change times ``ts``."""
    n = len(ts)
    out = {k: (v if isinstance(v, np.ndarray) and v.dtype == object else obj(v))
           for k, v in cols.items()}
    bad = [k for k, v in out.items() if len(v) != n]
    if bad:
        raise ValueError(f"columns {bad} do not have {n} rows")
    return Versions(out, np.full(n, "I", dtype="<U1"), np.asarray(ts, dtype=np.int64),
                    np.arange(n, dtype=np.int64))


def concat(parts: list[Versions]) -> Versions:
    """Rows of all ``parts`` in order (same columns required)."""
    parts = [p for p in parts if len(p)] or parts[:1]
    names = list(parts[0].cols)
    return Versions({k: np.concatenate([p.cols[k] for p in parts]) for k in names},
                    np.concatenate([p.op for p in parts]),
                    np.concatenate([p.ts for p in parts]),
                    np.concatenate([p.ent for p in parts]))


def latest(v: Versions, ents: np.ndarray) -> np.ndarray:
    """Row index of the latest version (max ``ts``) of each entity in ``ents``."""
    order = np.lexsort((v.ts, v.ent))
    ent_sorted = v.ent[order]
    last = np.searchsorted(ent_sorted, ents, side="right") - 1
    return order[last]


def until_end(v: Versions) -> Versions:
    """Drop versions whose change time is after the as-of day (they have not happened yet)."""
    return v.take(v.ts <= END_TS)


def delete_with_parent(v: Versions, parent: np.ndarray, deleted_at: np.ndarray,
                       rng: np.random.Generator) -> Versions:
    """Cascade a parent's delete to its child rows.

    Parameters
    ----------
    v: child versions.
    parent: parent index of each row of ``v`` (e.g. the encounter of each lab version).
    deleted_at: per parent, the delete instant (``-1`` = not deleted).

    Returns
    -------
    Versions: ``v`` without child versions changed at or after their parent's delete, plus one
    op D per remaining (not yet deleted) child entity, seconds to minutes after the parent's.
    """
    when = deleted_at[parent]
    keep = (when < 0) | (v.ts < when)
    v = v.take(keep)
    when = when[keep]
    ents = np.unique(v.ent[when >= 0])
    if len(ents) == 0:
        return v
    last = latest(v, ents)
    last = last[v.op[last] != "D"]  # already deleted on its own
    dels = v.take(last).as_op("D", when[last] + rng.integers(1, 600, len(last)))
    return concat([v, dels])


def random_deletes(v: Versions, rate: float, rng: np.random.Generator, lo: int, hi: int
                   ) -> Versions:
    """Add op D for a ``rate`` share of entities, ``lo..hi`` seconds after their latest version."""
    ents = np.unique(v.ent)
    ents = ents[rng.random(len(ents)) < rate]
    if len(ents) == 0:
        return v
    last = latest(v, ents)
    # skip entities that already end with a delete
    last = last[v.op[last] != "D"]
    dels = v.take(last).as_op("D", v.ts[last] + rng.integers(lo, hi, len(last)))
    return concat([v, dels])
