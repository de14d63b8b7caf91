"""``import_synthea``: a Synthea CSV export → our six raw feeds, in batches, with a manifest.

The output is laid out exactly like the generator's (``medilake_lab.datagen``), so every lab
and the grader read it unchanged: ``<out>/landing/<feed>/<feed>_<batch>.json.gz`` (gzip NDJSON,
keys in contract order, ``op`` = ``"I"``, ``updated_at`` = the record's event time) and
``<out>/landing/manifest.json`` (same shape and count definitions as the generator's, plus an
``import`` section). Column and code mapping rules: :mod:`.synthea_records`; reading and
version differences: :mod:`.synthea_csv`.

Batch rule
----------
Synthea exports a final-state snapshot, not a change log, so the importer replays it by event
time. Let *as-of* be the UTC date of the newest ``updated_at`` of all records. Batch ``003``
holds the records whose ``updated_at`` falls in the last 30 days (as-of − 29 d … as-of), ``002``
the 30 days before (as-of − 59 d … as-of − 30 d), ``001`` (the initial load) everything older.
A record's later facts (discharge, resolution, stop date) ride along with it — Synthea has no
separate update events — so every record is an insert (``op`` ``"I"``). A batch in which a feed
has no record is not written (no empty file). The manifest's ``as_of_date`` is *as-of*.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from medilake_lab import __version__
from medilake_lab.contract import codes
from medilake_lab.contract.feeds import BATCHES, FEEDS, LANDING_DIR, MANIFEST_NAME
from medilake_lab.datagen.frame import Versions
from medilake_lab.datagen.manifest import FeedCounter, assemble
from medilake_lab.datagen.mess import Delivery
from medilake_lab.datagen.timeline import obj
from medilake_lab.datagen.writer import columns, encode_lines, write_file
from medilake_lab.importers import synthea_records as rec
from medilake_lab.importers.crosswalk import (
    CROSSWALK_SOURCE,
    SNOMED_TO_CPT,
    SNOMED_TO_ICD10CM,
)
from medilake_lab.importers.synthea_csv import CsvTable, optional_names, read_export

WINDOW_DAYS = 30
BATCH_KINDS = {"001": "initial load", "002": "CDC delivery", "003": "CDC delivery"}
IMPORT_DEFINITIONS: dict[str, str] = {
    "rows": "Records written per feed (all batches).",
    "source_files": "Per Synthea file: data rows read, optional columns this export lacks "
                    "(version differences) and columns the importer does not use.",
    "unmapped_codes": "Per target system (ICD-10-CM for diagnoses, CPT for procedures): rows "
                      "whose source code had no crosswalk entry, so the target code column is "
                      "null (silver quarantines them); by source system, with distinct codes.",
    "not_in_code_tables": "Rows whose delivered code is not in medilake_lab.contract.codes (silver "
                          "rejects them as invalid codes); equals the manifest's invalid_codes.",
    "dropped_observations": "Synthea observations not delivered as lab results, by reason.",
    "dropped_observations_by_category": "Observations dropped for their CATEGORY, by category.",
    "encounter_classes": "Synthea ENCOUNTERCLASS → our encounter_class (null = unknown class), "
                         "with row counts.",
    "lab_reference_ranges": "Lab results by where ref_low/ref_high came from.",
    "medications": "Medication rows whose dose or route could be derived from the drug name.",
    "orphans": "Rows whose patient (or encounter) id is not in patients.csv (encounters.csv).",
    "batch_rule": "How records were split into batches.",
}
BATCH_RULE = ("by updated_at (UTC date): 003 = the last 30 days up to as_of_date, 002 = the 30 "
              "days before, 001 = everything older; all records are inserts (op I)")


def _build(tables: dict[str, CsvTable], src: Path) -> tuple[dict[str, list[dict]], rec.Stats]:
    stats = rec.Stats()
    enc_rows = tables["encounters"].rows
    first_seen: dict = {}
    for r in enc_rows:
        if r["PATIENT"] not in first_seen or r["START"] < first_seen[r["PATIENT"]]:
            first_seen[r["PATIENT"]] = r["START"]
    deaths = {r["ID"]: r["DEATHDATE"] for r in tables["patients"].rows if r.get("DEATHDATE")}
    enc = {r["ID"]: r for r in enc_rows}
    orgs = optional_names(src, "organizations.csv", "NAME")
    records = {
        "patients": rec.patients(tables["patients"], first_seen),
        "encounters": rec.encounters(tables["encounters"], deaths, orgs, stats),
        "diagnoses": rec.diagnoses(tables["conditions"], enc, stats),
        "procedures": rec.procedures(tables["procedures"], enc, stats),
        "lab_results": rec.lab_results(tables["observations"], stats),
        "medications": rec.medications(tables["medications"], stats),
    }
    return records, stats


def _windows(as_of: date) -> tuple[dict[str, dict], list[str]]:
    """Batch windows (manifest shape) and the first day of each CDC batch (ISO strings)."""
    starts = [as_of - timedelta(days=2 * WINDOW_DAYS - 1), as_of - timedelta(days=WINDOW_DAYS - 1)]
    ends = [*starts, as_of + timedelta(days=1)]  # the day after each batch's window
    windows = {b: {"kind": BATCH_KINDS[b],
                   "changes_from": starts[i - 1].isoformat() if i else None,
                   "changes_to": (ends[i] - timedelta(days=1)).isoformat()}
               for i, b in enumerate(BATCHES)}
    return windows, [s.isoformat() for s in starts]


def _batch_of(updated_at: str | None, starts: list[str]) -> int:
    """Index into BATCHES for an updated_at string (a null one goes to the initial load)."""
    if updated_at is None:
        return 0
    return sum(updated_at[:10] >= s for s in starts)


def _delivery(feed, rows: list[dict], batch: np.ndarray) -> Delivery:
    """The generator's Delivery view of our rows, so its FeedCounter counts them."""
    n = len(rows)
    cols = {c: obj([r.get(c) for r in rows]) for c in feed.columns if c not in ("op", "updated_at")}
    stamps = np.array([r["updated_at"][:19] if r["updated_at"] else "NaT" for r in rows],
                      dtype="datetime64[s]").astype(np.int64)
    v = Versions(cols, np.array([r["op"] for r in rows], dtype="<U1"), stamps,
                 np.arange(n, dtype=np.int64))
    return Delivery(v, batch.astype(np.int8), np.arange(n, dtype=float), np.zeros(n, np.int8),
                    np.zeros(n), np.zeros(n, dtype=bool))


def _write_feed(out: Path, name: str, rows: list[dict], starts: list[str]) -> tuple[dict, dict,
                                                                                    dict]:
    """Write one feed's batch files; returns (counts, files, drift) per batch."""
    feed = FEEDS[name]
    rows = sorted(rows, key=lambda r: (_batch_of(r["updated_at"], starts), r["updated_at"] or "",
                                       r[feed.key] or ""))
    batch = np.array([_batch_of(r["updated_at"], starts) for r in rows], dtype=np.int8)
    delivery = _delivery(feed, rows, batch)
    counter = FeedCounter(feed)
    counts, files, drift = {}, {}, {}
    for b, batch_id in enumerate(BATCHES):
        idx = np.flatnonzero(batch == b)
        names = columns(feed, batch_id) + list(rec.EXTRA_COLUMNS.get(name, ()))
        lines = encode_lines(names, [[rows[i].get(c) for i in idx.tolist()] for c in names])
        stamps = [rows[i]["updated_at"] for i in idx.tolist()]
        counts[batch_id] = counter.count(delivery, idx, lines, stamps)
        drift[batch_id] = [c for c in names if c not in feed.columns] if lines else []
        if lines:
            path = Path(feed.path(str(out), batch_id))
            rel = Path(feed.path(".", batch_id)).as_posix().removeprefix("./")
            files[batch_id] = {"path": rel, **write_file(path, lines)}
    return counts, files, drift


def _clear(out: Path) -> None:
    """Remove earlier feed files and manifest of ours under ``out`` (only those exact paths)."""
    for feed in FEEDS.values():
        for batch_id in BATCHES:
            Path(feed.path(str(out), batch_id)).unlink(missing_ok=True)
    (out / LANDING_DIR / MANIFEST_NAME).unlink(missing_ok=True)


def _import_section(tables: dict[str, CsvTable], records: dict[str, list[dict]],
                    stats: rec.Stats, invalid: dict[str, int]) -> dict:
    patient_ids = {r["patient_id"] for r in records["patients"]}
    encounter_ids = {r["encounter_id"] for r in records["encounters"]}
    orphans: dict[str, dict[str, int]] = {"patient": {}, "encounter": {}}
    for name, rows in records.items():
        if name == "patients":
            continue
        lost_p = sum(r["patient_id"] not in patient_ids for r in rows)
        lost_e = sum(r.get("encounter_id") is not None and r["encounter_id"] not in encounter_ids
                     for r in rows) if name != "encounters" else 0
        if lost_p:
            orphans["patient"][name] = lost_p
        if lost_e:
            orphans["encounter"][name] = lost_e
    unmapped = {}
    for target, counter in stats.unmapped.items():
        by_system: Counter = Counter()
        for (system, _code), n in counter.items():
            by_system[system] += n
        unmapped[target] = {"rows": sum(counter.values()), "distinct_codes": len(counter),
                            "mapped_rows": stats.mapped[target],
                            "by_source_system": dict(sorted(by_system.items()))}
    classes = {}
    for (source, target), n in sorted(stats.classes.items(), key=lambda kv: kv[0][0]):
        classes[source or "(empty)"] = {"to": target, "rows": n}
    return {
        "source_format": "Synthea CSV export",
        "rows": {name: len(rows) for name, rows in records.items()},
        "source_files": {t.file: {"rows": len(t.rows), "absent_optional_columns": t.absent_optional,
                                  "ignored_columns": t.ignored} for t in tables.values()},
        "unmapped_codes": unmapped,
        "not_in_code_tables": invalid,
        "dropped_observations": dict(sorted(stats.dropped.items())),
        "dropped_observations_by_category": dict(sorted(stats.dropped_by_category.items())),
        "encounter_classes": classes,
        "lab_reference_ranges": dict(sorted(stats.lab_ranges.items())),
        "medications": {"rows": len(records["medications"]), **stats.medication},
        "orphans": orphans,
        "crosswalk": {"sources": CROSSWALK_SOURCE,
                      "entries": {codes.ICD10_SYSTEM: len(SNOMED_TO_ICD10CM),
                                  codes.CPT_SYSTEM: len(SNOMED_TO_CPT)}},
        "batch_rule": BATCH_RULE,
        "definitions": IMPORT_DEFINITIONS,
    }


def import_synthea(src: str | os.PathLike, out: str | os.PathLike) -> dict:
    """Convert a Synthea CSV export into the six raw feeds and a manifest under ``<out>/landing``.

    Parameters
    ----------
    src: the Synthea CSV folder (``output/csv``) with ``patients.csv``, ``encounters.csv``,
        ``conditions.csv``, ``procedures.csv``, ``observations.csv`` and ``medications.csv``
        (Synthea v2.x–v3.x column sets; ``organizations.csv`` is used for facility names when
        present). Read only; nothing is copied.
    out: data folder to write; earlier feed files and manifest there are replaced.

    Returns
    -------
    dict: the manifest (also written to ``<out>/landing/manifest.json``): the generator's shape
    (``as_of_date``, ``batch_windows``, per-feed per-batch ``feeds`` counts, ``totals``,
    ``files``, ``definitions``; ``seed``/``scale`` null) plus ``import`` (rows per feed,
    unmapped codes per target system, dropped observations by reason, …).

    Raises
    ------
    SyntheaFormatError (a ``medilake_lab.errors.DataError``): a file is missing or empty, a
        required column is missing, or a value does not parse — the message names the file and,
        for a value, its line and column.
    """
    src, out = Path(src), Path(out)
    tables = read_export(src)
    records, stats = _build(tables, src)
    stamps = [r["updated_at"] for rows in records.values() for r in rows if r["updated_at"]]
    as_of = date.fromisoformat(max(stamps)[:10])
    windows, starts = _windows(as_of)
    _clear(out)
    counts, files, drift = {}, {}, {}
    for name in FEEDS:
        counts[name], files[name], drift[name] = _write_feed(out, name, records[name], starts)
    invalid = {system: sum(c["invalid_codes"] for c in counts[n].values())
               for n, feed in FEEDS.items() if (system := feed.code_system)}
    manifest = assemble(None, None, as_of.isoformat(), list(BATCHES), windows, counts,
                        {"address": 0, "insurance": 0, "last_name": 0}, files, drift)
    manifest["generator"] = f"medilake_lab {__version__} import synthea"
    manifest["event_window"] = {"from": min(stamps)[:10], "to": as_of.isoformat()}
    manifest["import"] = _import_section(tables, records, stats, invalid)
    path = out / LANDING_DIR / MANIFEST_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest
