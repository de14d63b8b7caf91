"""What a delivered CDC batch holds (lab 05's ``medilake_lab deliver``), built from the batches
already in the landing volume (:class:`~medilake_lab.datagen.feed_history.FeedHistory`), never from
generator internals, so generated and Synthea-imported data work alike.

A batch covers a :data:`WINDOW_DAYS`-day change window after the previous one and is sized from
the previous batch's inserts, updates and lines per day of its window. It holds:

- new encounters of current patients, each modelled on one of the patient's earlier encounters
  (class, facility, length of stay) together with that encounter's current diagnoses, procedures,
  lab results and medications, copied under new ids (``<PREFIX>-D<batch>-<n>``: no earlier id
  has a ``-D`` part) and moved in time; lab values are drawn again, about :data:`ABNORMAL_SHARE`
  of them outside ``[ref_low, ref_high]``;
- newer versions (op U): inpatient discharges (the admission arrives first, the discharge later
  in the batch), demographic changes of some patients (address, insurance or last name),
  resolved diagnoses and stopped medications; and a few new patient registrations;
- deletes: an earlier encounter entered in error (with its current child records) and one more
  record per child feed;
- the generator's mess at its rates (:data:`medilake_lab.datagen.mess.RATES`): late-arriving
  inserts (event and change time inside the previous window), nulls in required fields, invalid
  codes, byte-identical re-deliveries of lines of the previous batch, malformed lines;
- from :data:`~medilake_lab.contract.feeds.DELIVERY_DRIFT_FIRST_BATCH` on, lab_results lines
  carry :data:`~medilake_lab.contract.feeds.DELIVERY_DRIFT_COLUMN` (schema drift).

Everything random comes from one generator seeded by (seed, batch number), in a fixed order.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import TypeGuard

import numpy as np

from medilake_lab.contract.feeds import (
    DATE,
    DELIVERY_DRIFT_COLUMN,
    DELIVERY_DRIFT_FEED,
    DELIVERY_DRIFT_FIRST_BATCH,
    DRIFT_COLUMN,
    FEEDS,
    TIMESTAMP,
    Feed,
)
from medilake_lab.datagen import mess
from medilake_lab.datagen.feed_history import FeedHistory
from medilake_lab.datagen.timeline import DAY, HOUR, MINUTE
from medilake_lab.datagen.writer import columns, corrupt, encode_lines
from medilake_lab.errors import DataError

#: Length of a delivered batch's change window, in days.
WINDOW_DAYS = 14
#: Share of new lab results drawn outside their reference range.
ABNORMAL_SHARE = 0.2
#: Id prefix of new records per feed (``ENC-D004-00001``).
ID_PREFIX = {"patients": "PAT", "encounters": "ENC", "diagnoses": "DX", "procedures": "PRC",
             "lab_results": "LAB", "medications": "MED"}
CHILD_FEEDS = ("diagnoses", "procedures", "lab_results", "medications")
#: Columns a demographic change of each kind (the manifest's demographic_changes) replaces.
DEMOGRAPHIC = {"address": ("address_line", "city", "state", "zip"),
               "insurance": ("insurance_payer", "insurance_member_id"), "last_name": ("last_name",)}


# ------------------------------------------------------------------------------ time and size

def _epoch(value: object) -> int | None:
    """Epoch seconds of an ISO timestamp or date string (None if it is not one)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def _ts(seconds: int) -> str:
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _day(seconds: int) -> date:
    return datetime.fromtimestamp(int(seconds), UTC).date()


def _start(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


def change_windows(manifest: dict, history: dict[str, FeedHistory]) -> tuple[tuple[date, date], tuple[int, int]]:
    """The new batch's change window (first and last day) and the span (epoch seconds) that its
    late-arriving records take their times from: inside the previous window, before the newest
    change of the previous batch of every feed."""
    last = (manifest.get("batch_windows") or {}).get(manifest["batches"][-1])
    end = _epoch(last.get("changes_to")) if isinstance(last, dict) else None
    prev_max = [max(r["updated_at"] for _, r in h.valid() if isinstance(r.get("updated_at"), str))
                for h in history.values()
                if any(isinstance(r.get("updated_at"), str) for _, r in h.valid())]
    if end is None and not prev_max:
        raise DataError("the landing volume's last batch has neither a window in the manifest nor a "
                        "record with an updated_at: nothing to continue from")
    if end is None:
        end = _epoch(max(prev_max)) or 0
    first = _day(end) + timedelta(days=1)
    begin = _epoch(last.get("changes_from")) if isinstance(last, dict) else None
    late_hi = (min(_epoch(t) or end for t in prev_max) if prev_max else end) - DAY
    late_lo = max(begin if begin is not None else late_hi - WINDOW_DAYS * DAY, late_hi - WINDOW_DAYS * DAY)
    return (first, first + timedelta(days=WINDOW_DAYS - 1)), (late_lo, max(late_hi, late_lo + DAY))


def target_sizes(manifest: dict, history: dict[str, FeedHistory]) -> dict[str, dict[str, int]]:
    """Per feed, the previous batch's ``lines``, ``inserts`` (late ones not counted) and
    ``updates`` (newer versions) per day of its window, times WINDOW_DAYS (an initial load without
    a window start counts as a year): what the new batch aims for."""
    last = (manifest.get("batch_windows") or {}).get(manifest["batches"][-1])
    lo, hi = ((_epoch(last.get("changes_from")), _epoch(last.get("changes_to")))
              if isinstance(last, dict) else (None, None))
    days = (hi - lo) // DAY + 1 if lo is not None and hi is not None and hi >= lo else 365
    scale = WINDOW_DAYS / days
    return {name: {"lines": round(h.last["lines"] * scale),
                   "inserts": round((h.last["inserts"] - h.last["late_arriving"]) * scale),
                   "updates": round(h.last["newer_versions"] * scale)} for name, h in history.items()}


class BatchPlan:
    """The natural records of one batch (before duplicates and malformed lines), per feed.

    Attributes
    ----------
    rng: the batch's random generator (``file_lines`` goes on drawing from it).
    demographic: kind → demographic changes (patient op U versions that change it) planned.
    """

    def __init__(self, rng: np.random.Generator, batch: str, history: dict[str, FeedHistory],
                 window: tuple[date, date], late: tuple[int, int], sizes: dict[str, dict[str, int]]) -> None:
        """``window``: first and last day of the batch's changes; ``late``: epoch-second span of
        late-arriving records; ``sizes``: :func:`target_sizes`."""
        self.rng, self.batch, self.history, self.sizes = rng, batch, history, sizes
        self.span = (_start(window[0]), _start(window[1]) + DAY - 1)
        self.late_span = late
        self.rows: dict[str, list[tuple[dict, bool]]] = {name: [] for name in FEEDS}  # (record, late)
        self.seq = dict.fromkeys(FEEDS, 0)
        self.demographic: dict[str, int] = {}
        self.removed: set[str] = set()  # keys deleted in this batch (no update for them)
        self.drift_values = sorted({v for _, r in history["encounters"].valid()
                                    if isinstance(v := r.get(DRIFT_COLUMN), str)})

    def build(self) -> dict[str, list[tuple[dict, bool]]]:
        """Records per feed, in no particular order, each with its late-arriving flag."""
        self._deletes()
        self._patients()
        self._encounters()
        self._child_updates()
        return self.rows

    # helpers
    def _id(self, name: str) -> str:
        """The next new key of feed ``name``; DataError if the volume already holds it."""
        self.seq[name] += 1
        key = f"{ID_PREFIX[name]}-D{self.batch}-{self.seq[name]:05d}"
        if key in self.history[name].keys:
            raise DataError(f"new {name} id {key} is already in the landing volume: the volume's "
                            "manifest does not list every batch it holds")
        return key

    def _when(self, lo: int | None = None, hi: int | None = None) -> int:
        """A random instant in ``[lo, hi)`` (default: the batch's window)."""
        lo, hi = lo if lo is not None else self.span[0], hi if hi is not None else self.span[1]
        return int(lo + self.rng.integers(0, max(hi - lo, 1)))

    def _minutes(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi)) * MINUTE

    def _pick(self, keys: list, k: int) -> list:
        if not keys:
            return []
        return [keys[i] for i in sorted(self.rng.choice(len(keys), min(k, len(keys)), replace=False))]

    def _add(self, name: str, record: dict, op: str, ts: int, late: bool = False) -> None:
        self.rows[name].append(({**record, "op": op, "updated_at": _ts(ts)}, late))

    # parts of the batch
    def _deletes(self) -> None:
        """An earlier encounter entered in error (and its current children), one record per child feed."""
        children = self.children
        encounters = [k for k, r in self.history["encounters"].current.items()
                      if sum(len(c.get(k, ())) for c in children.values()) <= 8]
        for key in self._pick(encounters, max(1, round(0.003 * self.sizes["encounters"]["lines"]))):
            when = self._when()
            self._add("encounters", self.history["encounters"].current[key], "D", when)
            for name in CHILD_FEEDS:
                for child in children[name].get(key, ()):
                    self.removed.add(child[FEEDS[name].key])
                    self._add(name, child, "D", min(when + self._minutes(1, 30), self.span[1]))
        for name in CHILD_FEEDS:
            keys = [k for k in self.history[name].current if k not in self.removed]
            for key in self._pick(keys, 1):
                self.removed.add(key)
                self._add(name, self.history[name].current[key], "D", self._when())

    @cached_property
    def children(self) -> dict[str, dict[str, list[dict]]]:
        """Child feed → encounter id → the current child records of that encounter."""
        out: dict[str, dict[str, list[dict]]] = {}
        for name in CHILD_FEEDS:
            out[name] = {}
            for r in self.history[name].current.values():
                if isinstance(r.get("encounter_id"), str):
                    out[name].setdefault(r["encounter_id"], []).append(r)
        return out

    def _patients(self) -> None:
        """Demographic changes (op U) of some current patients and a few new registrations."""
        current = self.history["patients"].current
        ids = list(current)
        if not ids:
            return
        size = self.sizes["patients"]
        for n, pid in enumerate(self._pick(ids, max(2, size["updates"])), 1):
            kind = tuple(DEMOGRAPHIC)[int(self.rng.integers(len(DEMOGRAPHIC)))]
            old = current[pid]
            new = dict(old)
            donor = current[ids[int(self.rng.integers(len(ids)))]]
            for col in DEMOGRAPHIC[kind]:
                new[col] = donor.get(col)
            if kind == "insurance":
                new["insurance_member_id"] = f"MBR-D{self.batch}-{n:05d}"
            if any(new.get(c) != old.get(c) for c in DEMOGRAPHIC[kind] if c != "state"):
                self.demographic[kind] = self.demographic.get(kind, 0) + 1
            self._add("patients", new, "U", self._when())
        n_new = max(1, size["inserts"])
        for n in range(n_new + mess.MINIMUM["late_arriving"]):
            donors = [current[ids[int(i)]] for i in self.rng.integers(0, len(ids), 5)]
            key = self._id("patients")
            record = {**donors[0], "patient_id": key, "mrn": f"MRN-D{self.batch}-{self.seq['patients']:05d}",
                      "last_name": donors[1].get("last_name"),
                      **{c: donors[2].get(c) for c in DEMOGRAPHIC["address"]},
                      "phone": donors[3].get("phone"), "insurance_payer": donors[4].get("insurance_payer"),
                      "insurance_member_id": f"MBR-D{self.batch}-N{self.seq['patients']:04d}"}
            is_late = n >= n_new
            self._add("patients", record, "I", self._when(*self.late_span) if is_late else self._when(),
                      is_late)

    def _encounters(self) -> None:
        """New encounters of current patients, modelled on one of their earlier encounters."""
        patients = self.history["patients"].current
        by_patient: dict[str, list[tuple[dict, int]]] = {}
        for r in self.history["encounters"].current.values():
            admit = _epoch(r["admit_ts"])
            if r["patient_id"] in patients and admit is not None:
                by_patient.setdefault(r["patient_id"], []).append((r, admit))
        ids = sorted(by_patient)
        if not ids:
            return
        n_new, n_late = max(3, self.sizes["encounters"]["inserts"]), mess.MINIMUM["late_arriving"]
        for i, pid in enumerate(self.rng.choice(ids, n_new + n_late).tolist()):
            options = by_patient[pid]
            template, admit = options[int(self.rng.integers(len(options)))]
            self._encounter(template, admit, late=i >= n_new)

    def _encounter(self, template: dict, t0: int, late: bool) -> None:
        """One new encounter like ``template`` (same patient, class, facility, stay), admitted in
        the window (or the late span), and copies of the template's current child records. A stay
        of 12 hours or more that ends in the window arrives as an admission (op I) and, later, its
        discharge (op U); a stay that would end after the window stays open."""
        lo, hi = self.late_span if late else self.span
        end = _epoch(template.get("discharge_ts"))
        stay = end - t0 if end is not None and end > t0 else None
        admit = self._when(lo, max(hi - 2 * DAY, lo + HOUR))
        key = self._id("encounters")
        record = {**template, "encounter_id": key, "admit_ts": _ts(admit)}
        if record.get(DRIFT_COLUMN) is None and self.drift_values:
            record[DRIFT_COLUMN] = self.drift_values[int(self.rng.integers(len(self.drift_values)))]
        open_ = {**record, "discharge_ts": None, "discharge_disposition": None}
        discharge = admit + stay if stay is not None else None
        if stay is None or discharge is None or discharge + 3 * HOUR > hi:
            self._add("encounters", open_, "I", admit + self._minutes(2, 30), late)
        elif stay >= 12 * HOUR and not late:
            self._add("encounters", open_, "I", admit + self._minutes(2, 30))
            self._add("encounters", {**record, "discharge_ts": _ts(discharge)}, "U",
                      discharge + self._minutes(10, 120))
        else:
            self._add("encounters", {**record, "discharge_ts": _ts(discharge)}, "I",
                      discharge + self._minutes(10, 120), late)
        for name in CHILD_FEEDS:
            for child in self.children[name].get(template["encounter_id"], ()):
                self._child(name, child, t0, admit, key, hi, late)

    def _child(self, name: str, template: dict, t0: int, admit: int, encounter: str, hi: int,
               late: bool) -> None:
        """A copy of ``template`` for the new encounter: times at or after 30 days before the
        template encounter's admission move with it (older dates, e.g. a chronic onset, stay); a
        medication started before that is still running, not prescribed again."""
        feed = FEEDS[name]
        started = _epoch(template.get(feed.event_time)) if feed.event_time else None
        if name == "medications" and started is not None and started < t0 - 30 * DAY:
            return
        shift_days = (_day(admit) - _day(t0)).days
        record = {**template, feed.key: self._id(name), "encounter_id": encounter}
        events = [admit]
        for col, kind in feed.fields:
            moment = _epoch(record.get(col)) if kind in (TIMESTAMP, DATE) and col != "updated_at" else None
            if moment is None or moment < t0 - 30 * DAY:
                continue
            if kind == TIMESTAMP:
                record[col] = _ts(moment + admit - t0)
                events.append(moment + admit - t0)
            else:
                record[col] = (_day(moment) + timedelta(days=shift_days)).isoformat()
                if col == feed.event_time:
                    events.append(_start(_day(moment) + timedelta(days=shift_days)))
        if name == "diagnoses":
            record["resolved_date"] = None
        if name == "lab_results":
            record["value"] = self._lab_value(record)
        when = max(events) + self._minutes(5, 240)
        if when <= hi:
            self._add(name, record, "I", when, late)

    def _lab_value(self, record: dict) -> object:
        """A new value for a lab result with a reference range: outside it with probability
        ABNORMAL_SHARE (by 10–50 % of its width, above or below), else uniform inside; as many
        decimals as the template's numbers. Without a range, the template's value."""
        low, high, value = record.get("ref_low"), record.get("ref_high"), record.get("value")
        if not (_number(low) and _number(high)) or high <= low:
            return value
        digits = max(_decimals(x) for x in (value, low, high))
        span, unit = high - low, 10.0 ** -digits
        if self.rng.random() < ABNORMAL_SHARE:
            gap = max(span * self.rng.uniform(0.1, 0.5), unit)
            below = self.rng.random() < 0.4 and low - gap > 0
            return round(low - gap if below else high + gap, digits)
        return round(float(self.rng.uniform(low, high)), digits)

    def _child_updates(self) -> None:
        """Resolved diagnoses and stopped medications (op U, change date = the new date)."""
        for name, col, eligible in (
                ("diagnoses", "resolved_date", lambda r: r.get("is_chronic") != "Y"),
                ("medications", "end_date", lambda r: True)):
            current = self.history[name].current
            keys = [k for k, r in current.items()
                    if k not in self.removed and r.get(col) is None and eligible(r)]
            for key in self._pick(keys, max(1, round(0.02 * self.sizes[name]["lines"]))):
                when = self._when()
                self._add(name, {**current[key], col: _day(when).isoformat()}, "U", when)


def _number(x: object) -> TypeGuard[int | float]:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _decimals(x: object) -> int:
    """Decimal places of a JSON number as written (at most 3)."""
    if isinstance(x, float):
        text = repr(x)
        return min(3, len(text.split(".")[1])) if "." in text and "e" not in text else 0
    return 0


# ------------------------------------------------------------------------------------ the file

def record_columns(feed: Feed, batch: str, history: FeedHistory) -> list[str]:
    """Keys of the batch's records: the contract's columns (with the generator's drift column),
    extra columns earlier records carry (e.g. a Synthea import's source codes), and lab 05's
    drift column from DELIVERY_DRIFT_FIRST_BATCH on."""
    names = columns(feed, batch)
    for _, records in reversed(history.batches):
        last = next((r for r in reversed(records) if r is not None), None)
        if last is not None:
            names = names + [c for c in last if c not in names and c != DELIVERY_DRIFT_COLUMN]
            break
    if feed.name == DELIVERY_DRIFT_FEED and int(batch) >= int(DELIVERY_DRIFT_FIRST_BATCH):
        names = names + [DELIVERY_DRIFT_COLUMN]
    return names


def _specimen(test_name: object) -> str:
    name = test_name.lower() if isinstance(test_name, str) else ""
    return "urine" if "urine" in name else "serum" if "serum" in name or "plasma" in name else "blood"


def _mess_count(kind: str, n: int) -> int:
    return max(mess.MINIMUM[kind], round(mess.RATES[kind] * n)) if n else 0


def file_lines(rng: np.random.Generator, feed: Feed, batch: str, rows: list[tuple[dict, bool]],
               history: FeedHistory) -> list[str]:
    """The batch file's lines for ``rows`` (``(record, late)`` pairs from :meth:`BatchPlan.build`):
    records in change-time order (late ones anywhere), with nulls in required fields, invalid
    codes, exact re-deliveries (of the previous batch's lines, or of this batch's when a column
    was added) and malformed lines at the generator's rates."""
    names = record_columns(feed, batch, history)
    rows = sorted(rows, key=lambda row: (row[0]["updated_at"], str(row[0].get(feed.key))))
    records = [r for r, late in rows if not late]
    for r in (r for r, late in rows if late):
        records.insert(int(rng.integers(0, len(records) + 1)), r)
    if DELIVERY_DRIFT_COLUMN in names:
        for r in records:
            r[DELIVERY_DRIFT_COLUMN] = _specimen(r.get("test_name"))
    n = len(records)
    seen = Counter(str(r.get(feed.key)) for r in records)
    once = [i for i, r in enumerate(records) if r["op"] == "I" and seen[str(r.get(feed.key))] == 1]
    picked = rng.permutation(once).tolist()
    k_null = min(_mess_count("null_required", n), len(picked))
    fields = [c for c in feed.required if c not in ("op", "updated_at", feed.key)]
    for i in picked[:k_null]:
        records[i][fields[int(rng.integers(len(fields)))]] = None
    if feed.code_column and feed.code_system in mess.INVALID_CODES:
        bad = mess.INVALID_CODES[feed.code_system]
        for i in picked[k_null:k_null + _mess_count("invalid_codes", n)]:
            records[i][feed.code_column] = bad[int(rng.integers(len(bad)))]
    lines = encode_lines(names, [[r.get(c) for r in records] for c in names])
    previous = [line for line, r in history.valid() if list(r) == names] if history.batches else []
    for _ in range(_mess_count("exact_duplicates", n) if lines else 0):
        if previous:
            lines.insert(int(rng.integers(0, len(lines) + 1)), previous[int(rng.integers(len(previous)))])
        else:  # a column was added: re-deliver a line of this batch, later in the file
            src = int(rng.integers(0, n))
            lines.insert(int(rng.integers(src + 1, len(lines) + 1)), lines[src])
    for _ in range(_mess_count("malformed_lines", n)):
        src = int(rng.integers(0, n))
        kind = mess.MALFORMED_KINDS[int(rng.integers(1, len(mess.MALFORMED_KINDS)))]
        record = {c: records[src].get(c) for c in names}
        line = corrupt(kind, record, encode_lines(names, [[v] for v in record.values()])[0],
                       float(rng.uniform(0.2, 0.9)))
        lines.insert(int(rng.integers(0, len(lines) + 1)), line)
    return lines

