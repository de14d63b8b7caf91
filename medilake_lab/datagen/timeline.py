"""The generator's calendar: event window, batch windows and timestamp formatting.

All instants are integer seconds since the Unix epoch (UTC) in numpy ``int64`` arrays; they are
formatted only when written (``"YYYY-MM-DDTHH:MM:SSZ"`` timestamps, ``"YYYY-MM-DD"`` dates).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np

from medilake_lab.contract.feeds import BATCHES

#: First day of clinical events (encounters, labs, ...).
START_DATE = "2024-01-01"
#: Last day of clinical events and the default lab as-of date.
AS_OF_DATE = "2025-09-30"

#: Inclusive change-date window of each batch (``None`` = open start: the initial load also
#: carries patient registrations and medication start dates from before ``START_DATE``).
BATCH_WINDOWS: dict[str, tuple[str | None, str]] = {
    "001": (None, "2025-06-30"),
    "002": ("2025-07-01", "2025-08-15"),
    "003": ("2025-08-16", "2025-09-30"),
}
BATCH_KINDS: dict[str, str] = {"001": "initial load", "002": "CDC delivery", "003": "CDC delivery"}
if tuple(BATCH_WINDOWS) != BATCHES:  # pragma: no cover - guards a contract change
    raise RuntimeError("datagen.timeline.BATCH_WINDOWS must list exactly feeds.BATCHES")

DAY = 86_400
HOUR = 3_600
MINUTE = 60


def cdc_start(batch: str) -> str:
    """First day (``"YYYY-MM-DD"``) of a CDC batch's window; ValueError for the initial load, whose
    window has no start."""
    start = BATCH_WINDOWS[batch][0]
    if start is None:
        raise ValueError(f"batch {batch} is the initial load: its window has no start")
    return start


def epoch(day: str) -> int:
    """Seconds since the epoch of midnight UTC starting ``day`` (``"YYYY-MM-DD"``)."""
    d = date.fromisoformat(day)
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


START_TS = epoch(START_DATE)
#: Last second of the as-of day: nothing is delivered with a change time after this.
END_TS = epoch(AS_OF_DATE) + DAY - 1
#: First second of each CDC batch window (batch i covers [_BOUNDS[i-1], _BOUNDS[i])).
_BOUNDS = np.array([epoch(cdc_start(b)) for b in BATCHES[1:]], dtype=np.int64)


def batch_index(ts: np.ndarray) -> np.ndarray:
    """Index into ``BATCHES`` of the window holding each change time (int8 array)."""
    return np.searchsorted(_BOUNDS, ts, side="right").astype(np.int8)


def window_end(batch: int) -> int:
    """Last second of batch ``batch``'s window (index into ``BATCHES``)."""
    return epoch(BATCH_WINDOWS[BATCHES[batch]][1]) + DAY - 1


def fmt_ts(ts: np.ndarray) -> list[str]:
    """Format epoch seconds as ``"YYYY-MM-DDTHH:MM:SSZ"`` strings."""
    s = np.datetime_as_string(np.asarray(ts, dtype="datetime64[s]"), unit="s")
    return [x + "Z" for x in s.tolist()]


def fmt_date(ts: np.ndarray) -> list[str]:
    """Format epoch seconds (or whole days given as seconds) as ``"YYYY-MM-DD"`` strings."""
    return np.datetime_as_string(np.asarray(ts, dtype="datetime64[s]"), unit="D").tolist()


def obj(values) -> np.ndarray:
    """A 1-D object array holding ``values`` (Python objects, as json.dumps needs them)."""
    values = values.tolist() if isinstance(values, np.ndarray) else list(values)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def ts_col(ts: np.ndarray, null: np.ndarray | None = None) -> np.ndarray:
    """Object array of formatted timestamps, None where ``null``."""
    out = obj(fmt_ts(ts))
    if null is not None:
        out[null] = None
    return out


def date_col(ts: np.ndarray, null: np.ndarray | None = None) -> np.ndarray:
    """Object array of formatted dates, None where ``null``."""
    out = obj(fmt_date(ts))
    if null is not None:
        out[null] = None
    return out
