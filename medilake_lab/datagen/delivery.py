"""Deliveries on demand: lab 05's landing volume, grown by one CDC batch per call.

Lab 05 streams from ``<warehouse>/volumes`` (:func:`medilake_lab.runtime.config.volume_dir`), a
data folder of its own: :func:`prepare_landing` copies the bundled batch files and manifest into it
once, :func:`deliver` writes the next batch (``"004"``, ``"005"``, …) of every feed there and
extends its manifest. The bundled data folder is only ever read.

A delivered batch covers a two-week change window after the previous one and is derived from the
files already in the volume (never from generator internals), so generated and Synthea-imported
data work alike. Per batch:

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

The manifest's counts come from the generator's :class:`~medilake_lab.datagen.manifest.FeedCounter`
run over the written lines after every earlier batch, so they follow its definitions exactly.
Same seed (the manifest's, else 42) and same earlier batches give byte-identical files. Every file
is written under a ``.``-prefixed temporary name (which Spark's file source ignores) and renamed
into place, the manifest last.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from pathlib import Path

import msgspec
import numpy as np

from medilake_lab.contract.feeds import (
    DATE,
    DELIVERY_DRIFT_COLUMN,
    DELIVERY_DRIFT_FEED,
    DELIVERY_DRIFT_FIRST_BATCH,
    DRIFT_COLUMN,
    FEEDS,
    LANDING_DIR,
    MANIFEST_NAME,
    TIMESTAMP,
    Feed,
    delivered_batches,
)
from medilake_lab.datagen import mess
from medilake_lab.datagen.frame import Versions
from medilake_lab.datagen.manifest import FeedCounter, assemble
from medilake_lab.datagen.timeline import DAY, HOUR, MINUTE, obj
from medilake_lab.datagen.writer import columns, corrupt, encode_lines, write_file
from medilake_lab.errors import DataError
from medilake_lab.runtime import config

__all__ = ["ABNORMAL_SHARE", "WINDOW_DAYS", "Delivery", "deliver", "prepare_landing"]

#: Length of a delivered batch's change window, in days.
WINDOW_DAYS = 14
#: Share of new lab results drawn outside their reference range.
ABNORMAL_SHARE = 0.2
#: Id prefix of new records per feed (``ENC-D004-00001``).
ID_PREFIX = {"patients": "PAT", "encounters": "ENC", "diagnoses": "DX", "procedures": "PRC",
             "lab_results": "LAB", "medications": "MED"}
CHILD_FEEDS = ("diagnoses", "procedures", "lab_results", "medications")
DEMOGRAPHIC = {"address": ("address_line", "city", "state", "zip"),
               "insurance": ("insurance_payer", "insurance_member_id"), "last_name": ("last_name",)}

_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True)
class Delivery:
    """One delivered batch.

    Attributes
    ----------
    batch: the batch id written, e.g. ``"004"``.
    volume: the landing volume (a data folder) written to.
    window: ``(changes_from, changes_to)``, ISO dates, both inclusive.
    files: feed name → path of the file written.
    counts: feed name → the manifest entry of that file (``lines``, ``exact_duplicates``,
        ``malformed_lines``, ``late_arriving``, ``newer_versions``, ``deletes``… as in
        :data:`medilake_lab.datagen.manifest.DEFINITIONS`, plus ``drift_columns``).
    """

    batch: str
    volume: Path
    window: tuple[str, str]
    files: dict[str, Path]
    counts: dict[str, dict]


def prepare_landing(data: str | os.PathLike | None = None,
                    warehouse: str | os.PathLike | None = None) -> Path:
    """Copy the data folder's batch files and manifest into the landing volume, where missing.

    Idempotent: a file already in the volume is never overwritten; the data folder is only read.

    Returns
    -------
    Path: the volume, ``<warehouse>/volumes`` (a data folder).

    Raises
    ------
    DataError: the data folder holds no raw batch file (names the folder).
    """
    source, volume = config.data_dir(data), config.volume_dir(warehouse)
    files = [Path(FEEDS[name].path(str(source), b)) for name in FEEDS
             for b in delivered_batches(source, name)]
    if not files:
        raise DataError(f"no raw files under {source / LANDING_DIR}: run `medilake_lab generate` or "
                        "pass --data DIR")
    manifest = source / LANDING_DIR / MANIFEST_NAME
    for src in [*files, manifest] if manifest.exists() else files:
        dst = volume / src.relative_to(source)
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = _temp(dst)
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
    return volume


def deliver(warehouse: str | os.PathLike | None = None,
            data: str | os.PathLike | None = None) -> Delivery:
    """Write the next batch of every feed into the landing volume and extend its manifest.

    Prepares the volume first (:func:`prepare_landing`) if needed. See the module docstring for
    what a batch holds; its size follows the previous batch's line counts per day of window.

    Returns
    -------
    Delivery: the batch id, window, files written and their manifest counts.

    Raises
    ------
    DataError: the volume's manifest is missing or damaged, or a batch file it lists is missing
        or unreadable (the message names the file).
    """
    volume = prepare_landing(data, warehouse)
    manifest_path = volume / LANDING_DIR / MANIFEST_NAME
    manifest = _read_manifest(manifest_path)
    batch = f"{int(manifest['batches'][-1]) + 1:03d}"
    history = {name: _History.read(volume, feed, manifest, manifest_path) for name, feed in FEEDS.items()}
    window, previous = _windows(manifest, history)
    seed = manifest.get("seed") if isinstance(manifest.get("seed"), int) else config.DEFAULT_SEED
    plan = _Plan(np.random.default_rng([seed, int(batch)]), batch, history, window, previous,
                 _sizes(manifest, history))
    rows = plan.build()
    counts, files, info = {}, {}, {}
    for name, feed in FEEDS.items():
        lines = _lines(plan.rng, feed, batch, rows[name], history[name])
        counts[name] = _count(history[name].counter, lines)
        counts[name]["drift_columns"] = [c for c in _names(feed, batch, history[name])
                                         if c not in feed.columns]
        files[name] = Path(feed.path(str(volume), batch))
        tmp = _temp(files[name])
        info[name] = {"path": files[name].relative_to(volume).as_posix(), **write_file(tmp, lines)}
        os.replace(tmp, files[name])
    _write_manifest(manifest_path, manifest, batch, window, counts, info, plan.demographic)
    return Delivery(batch, volume, (window[0].isoformat(), window[1].isoformat()), files, counts)


# ------------------------------------------------------------------------------ reading the volume

def _temp(path: Path) -> Path:
    """A temporary name beside ``path`` that Spark's file source ignores (leading dot)."""
    return path.with_name(f".{path.name}.tmp")


def _read_manifest(path: Path) -> dict:
    fix = (f"move the volume {path.parent.parent} aside and run `medilake_lab deliver` again "
           "(it starts over from the bundled data)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"the landing volume has no manifest {path}: {fix}") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"the landing volume's manifest {path} is damaged ({exc}): {fix}") from None
    batches = manifest.get("batches") if isinstance(manifest, dict) else None
    feeds = manifest.get("feeds") if isinstance(manifest, dict) else None
    if not (isinstance(batches, list) and batches and all(isinstance(b, str) and b.isdigit()
                                                          for b in batches)
            and isinstance(feeds, dict) and all(isinstance(feeds.get(n), dict) for n in FEEDS)):
        raise DataError(f"the landing volume's manifest {path} is damaged (no list of batch ids "
                        f"or per-feed counts): {fix}")
    return manifest


def _parse(line: str) -> dict | None:
    """The JSON object on a line, or None for a malformed line (not a JSON object)."""
    try:
        value = _decode(line)
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, dict) else None


def _complete(feed: Feed, record: dict) -> bool:
    return None not in map(record.get, feed.required)


@dataclass
class _History:
    """One feed's earlier batches in the volume: lines, parsed records, the counter's state and
    the current (newest, not deleted, complete) record per key."""

    feed: Feed
    batches: list[tuple[list[str], list[dict | None]]]
    counter: FeedCounter
    current: dict[str, dict] = field(default_factory=dict)
    keys: set = field(default_factory=set)
    last: dict = field(default_factory=dict)  # manifest counts of the last batch, recounted

    @classmethod
    def read(cls, volume: Path, feed: Feed, manifest: dict, manifest_path: Path) -> _History:
        """Read every batch the manifest lists (in order), replaying the manifest's counter."""
        hist = cls(feed, [], FeedCounter(feed))
        newest: dict = {}
        for b in manifest["batches"]:
            path = Path(feed.path(str(volume), b))
            lines = _read_lines(path, manifest["feeds"][feed.name].get(b), manifest_path)
            records = [_parse(line) for line in lines]
            hist.batches.append((lines, records))
            hist.last = _count(hist.counter, lines, records)
            for r in records:
                key, ts = (r.get(feed.key), r.get("updated_at")) if r else (None, None)
                if isinstance(key, str) and isinstance(ts, str):
                    hist.keys.add(key)
                    if key not in newest or ts >= newest[key]["updated_at"]:
                        newest[key] = r
        hist.current = {k: r for k, r in newest.items() if r.get("op") != "D" and _complete(feed, r)}
        return hist

    def valid(self, batch: int = -1) -> list[tuple[str, dict]]:
        """(line, record) pairs of the valid lines of one earlier batch (default: the last)."""
        lines, records = self.batches[batch]
        return [(line, r) for line, r in zip(lines, records, strict=True) if r is not None]


def _read_lines(path: Path, entry: object, manifest_path: Path) -> list[str]:
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


def _count(counter: FeedCounter, lines: list[str], records: list[dict | None] | None = None) -> dict:
    """The manifest counts of one file's lines, in delivery order (updates the counter's state)."""
    if records is None:
        records = [_parse(line) for line in lines]
    feed, n = counter.feed, len(lines)
    rec = [r or {} for r in records]
    names = {feed.key, *feed.required, *((feed.code_column,) if feed.code_column else ())}
    cols = {c: obj([r.get(c) for r in rec]) for c in names - {"op", "updated_at"}}
    ops = np.array([r.get("op") if isinstance(r.get("op"), str) else "" for r in rec], dtype="<U1")
    ts = [r.get("updated_at") if isinstance(r.get("updated_at"), str) else None for r in rec]
    view = mess.Delivery(Versions(cols, ops, np.zeros(n, np.int64), np.arange(n, dtype=np.int64)),
                         np.zeros(n, np.int8), np.zeros(n), np.array([r is None for r in records], np.int8),
                         np.zeros(n), np.zeros(n, dtype=bool))
    return counter.count(view, np.arange(n), lines, ts)


# ---------------------------------------------------------------------------------- time helpers

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


def _windows(manifest: dict, history: dict[str, _History]) -> tuple[tuple[date, date], tuple[int, int]]:
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


def _sizes(manifest: dict, history: dict[str, _History]) -> dict[str, dict[str, int]]:
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


# ----------------------------------------------------------------------------- building the batch

class _Plan:
    """The natural records of one batch (before duplicates and malformed lines), per feed."""

    def __init__(self, rng: np.random.Generator, batch: str, history: dict[str, _History],
                 window: tuple[date, date], late: tuple[int, int], sizes: dict[str, dict[str, int]]) -> None:
        self.rng, self.batch, self.history, self.sizes = rng, batch, history, sizes
        self.span = (_start(window[0]), _start(window[1]) + DAY - 1)
        self.late_span = late
        self.rows: dict[str, list[tuple[dict, bool]]] = {name: [] for name in FEEDS}  # (record, late)
        self.seq = dict.fromkeys(FEEDS, 0)
        self.demographic: dict[str, int] = {}
        self.removed: set[str] = set()  # keys deleted in this batch (no update for them)
        drift = [r.get(DRIFT_COLUMN) for _, r in history["encounters"].valid() if r.get(DRIFT_COLUMN)]
        self.drift_values = sorted(set(drift))

    def build(self) -> dict[str, list[tuple[dict, bool]]]:
        """Records per feed, in no particular order, each with its late-arriving flag."""
        self._deletes()
        self._patients()
        self._encounters()
        self._child_updates()
        return self.rows

    # helpers
    def _id(self, name: str) -> str:
        self.seq[name] += 1
        key = f"{ID_PREFIX[name]}-D{self.batch}-{self.seq[name]:05d}"
        if key in self.history[name].keys:
            raise DataError(f"new {name} id {key} is already in the landing volume: the volume's "
                            "manifest does not list every batch it holds")
        return key

    def _when(self, lo: int | None = None, hi: int | None = None) -> int:
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
        by_patient: dict[str, list[dict]] = {}
        for r in self.history["encounters"].current.values():
            if r["patient_id"] in patients and _epoch(r["admit_ts"]) is not None:
                by_patient.setdefault(r["patient_id"], []).append(r)
        ids = sorted(by_patient)
        if not ids:
            return
        n_new, n_late = max(3, self.sizes["encounters"]["inserts"]), mess.MINIMUM["late_arriving"]
        for i, pid in enumerate(self.rng.choice(ids, n_new + n_late).tolist()):
            options = by_patient[pid]
            template = options[int(self.rng.integers(len(options)))]
            self._encounter(template, late=i >= n_new)

    def _encounter(self, template: dict, late: bool) -> None:
        lo, hi = self.late_span if late else self.span
        t0 = _epoch(template["admit_ts"])
        end = _epoch(template.get("discharge_ts"))
        stay = end - t0 if end is not None and t0 is not None and end > t0 else None
        admit = self._when(lo, max(hi - 2 * DAY, lo + HOUR))
        key = self._id("encounters")
        record = {**template, "encounter_id": key, "admit_ts": _ts(admit)}
        if record.get(DRIFT_COLUMN) is None and self.drift_values:
            record[DRIFT_COLUMN] = self.drift_values[int(self.rng.integers(len(self.drift_values)))]
        open_ = {**record, "discharge_ts": None, "discharge_disposition": None}
        discharge = admit + stay if stay else None
        if discharge is None or discharge + 3 * HOUR > hi:
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
        low, high, value = record.get("ref_low"), record.get("ref_high"), record.get("value")
        if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (low, high)) or high <= low:
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


def _decimals(x: object) -> int:
    """Decimal places of a JSON number as written (at most 3)."""
    if isinstance(x, float):
        text = repr(x)
        return min(3, len(text.split(".")[1])) if "." in text and "e" not in text else 0
    return 0


# ------------------------------------------------------------------------------- writing the batch

def _names(feed: Feed, batch: str, history: _History) -> list[str]:
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


def _lines(rng: np.random.Generator, feed: Feed, batch: str, rows: list[tuple[dict, bool]],
           history: _History) -> list[str]:
    """The file's lines: records in change-time order (late ones anywhere), then nulls, invalid
    codes, exact re-deliveries and malformed lines added as the generator does."""
    names = _names(feed, batch, history)
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


def _write_manifest(path: Path, manifest: dict, batch: str, window: tuple[date, date],
                    counts: dict[str, dict], files: dict[str, dict], demographic: dict[str, int]) -> None:
    """Extend the manifest with ``batch`` and rewrite it atomically (totals and definitions anew)."""
    batches = [*manifest["batches"], batch]
    windows = {**(manifest.get("batch_windows") or {}),
               batch: {"kind": "CDC delivery", "changes_from": window[0].isoformat(),
                       "changes_to": window[1].isoformat()}}
    feeds = {name: {b: {k: v for k, v in c.items() if k != "drift_columns"}
                    for b, c in {**manifest["feeds"][name], batch: counts[name]}.items()}
             for name in FEEDS}
    drift = {name: {b: c.get("drift_columns", []) for b, c in {**manifest["feeds"][name],
                                                                batch: counts[name]}.items()}
             for name in FEEDS}
    changes = dict(manifest.get("demographic_changes") or {})
    for kind, n in demographic.items():
        changes[kind] = changes.get(kind, 0) + n
    all_files = {name: {**(manifest.get("files") or {}).get(name, {}), batch: files[name]} for name in FEEDS}
    as_of = window[1].isoformat()
    new = {**manifest, **assemble(manifest.get("seed"), manifest.get("scale"), as_of, batches, windows,
                                  feeds, changes, all_files, drift)}
    if isinstance(manifest.get("event_window"), dict):
        new["event_window"] = {**manifest["event_window"], "to": as_of}
    tmp = _temp(path)
    tmp.write_text(json.dumps(new, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
