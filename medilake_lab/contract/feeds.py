"""The raw-feed contract: the six newline-delimited JSON feeds, their fields and batches.

This module is the single place that names the feeds, their business keys, change-time columns,
code columns and field types. The generator (`medilake_lab.datagen`), lab 01's explicit bronze
schemas and the grader all read it, so a field is renamed in exactly one place.

Layout on disk (see DESIGN.md §4)::

    <data>/landing/<feed>/<feed>_<batch>.json.gz   gzip-compressed NDJSON, one record per line
    <data>/landing/manifest.json                   counts of every kind of deliberate mess

Batch ids are zero-padded strings ("001" is the initial load, "002"… are CDC deliveries).
Every record carries ``op`` (I/U/D, the CDC operation) and ``updated_at`` (ISO-8601 UTC
timestamp of the change in the source system).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

#: Field types use Spark SQL DDL names; the generator emits JSON strings for dates/timestamps.
STRING, DOUBLE, INT, DATE, TIMESTAMP = "STRING", "DOUBLE", "INT", "DATE", "TIMESTAMP"

BATCHES: tuple[str, ...] = ("001", "002", "003")
LANDING_DIR = "landing"
MANIFEST_NAME = "manifest.json"
FILE_SUFFIX = ".json.gz"

#: Column added to one feed from a later batch on (the deliberate schema drift).
DRIFT_FEED = "encounters"
DRIFT_COLUMN = "admission_source"
DRIFT_FIRST_BATCH = "003"

#: Lab 05's schema drift: deliveries (``medilake_lab deliver``) of this feed carry one more column
#: from this batch on.
DELIVERY_DRIFT_FEED = "lab_results"
DELIVERY_DRIFT_COLUMN = "specimen_type"
DELIVERY_DRIFT_FIRST_BATCH = "005"

ENCOUNTER_CLASSES = ("inpatient", "outpatient", "emergency", "ambulatory")
OPS = ("I", "U", "D")


@dataclass(frozen=True)
class Feed:
    """One raw feed.

    Attributes
    ----------
    name: feed and bronze table name, e.g. ``"patients"``.
    key: business key column (string identifier).
    event_time: the column giving when the clinical event happened (None for patients).
    code_column: the column holding a clinical code validated in silver (None if none).
    code_system: the code system of ``code_column`` (ICD-10-CM, CPT, LOINC, RxNorm).
    fields: ordered ``(column, Spark SQL type)`` pairs, as delivered in every batch
        (the drift column is extra, see ``DRIFT_COLUMN``).
    required: columns that must be non-null in a valid record.
    """

    name: str
    key: str
    event_time: str | None
    code_column: str | None
    code_system: str | None
    fields: tuple[tuple[str, str], ...]
    required: tuple[str, ...] = field(default=())

    @property
    def columns(self) -> list[str]:
        """Column names in delivery order (without the drift column)."""
        return [name for name, _ in self.fields]

    def ddl(self, include_drift: bool = True) -> str:
        """Spark DDL schema string for reading this feed, e.g. ``"patient_id STRING, ..."``."""
        cols = list(self.fields)
        if include_drift and self.name == DRIFT_FEED:
            cols.append((DRIFT_COLUMN, STRING))
        return ", ".join(f"{n} {t}" for n, t in cols)

    def path(self, data_dir: str, batch: str) -> str:
        """Path of one batch file under a data folder (``<data>/landing/<feed>/<feed>_<batch>.json.gz``)."""
        return f"{data_dir}/{LANDING_DIR}/{self.name}/{self.name}_{batch}{FILE_SUFFIX}"


_CDC = (("op", STRING), ("updated_at", TIMESTAMP))

FEEDS: dict[str, Feed] = {
    f.name: f
    for f in (
        Feed(
            "patients", "patient_id", None, None, None,
            (("patient_id", STRING), ("mrn", STRING), ("first_name", STRING),
             ("last_name", STRING), ("sex", STRING), ("birth_date", DATE),
             ("address_line", STRING), ("city", STRING), ("state", STRING),
             ("zip", STRING), ("phone", STRING), ("insurance_payer", STRING),
             ("insurance_member_id", STRING)) + _CDC,
            ("patient_id", "mrn", "birth_date", "op", "updated_at"),
        ),
        Feed(
            "encounters", "encounter_id", "admit_ts", None, None,
            (("encounter_id", STRING), ("patient_id", STRING), ("encounter_class", STRING),
             ("admission_type", STRING), ("admit_ts", TIMESTAMP), ("discharge_ts", TIMESTAMP),
             ("facility_id", STRING), ("facility_name", STRING), ("department", STRING),
             ("attending_provider_id", STRING), ("discharge_disposition", STRING)) + _CDC,
            ("encounter_id", "patient_id", "encounter_class", "admit_ts", "op", "updated_at"),
        ),
        Feed(
            "diagnoses", "diagnosis_id", "onset_date", "icd10_code", "ICD-10-CM",
            (("diagnosis_id", STRING), ("encounter_id", STRING), ("patient_id", STRING),
             ("icd10_code", STRING), ("description", STRING), ("diagnosis_type", STRING),
             ("is_chronic", STRING), ("onset_date", DATE), ("resolved_date", DATE)) + _CDC,
            ("diagnosis_id", "patient_id", "icd10_code", "onset_date", "op", "updated_at"),
        ),
        Feed(
            "procedures", "procedure_id", "procedure_ts", "cpt_code", "CPT",
            (("procedure_id", STRING), ("encounter_id", STRING), ("patient_id", STRING),
             ("cpt_code", STRING), ("description", STRING), ("procedure_ts", TIMESTAMP),
             ("provider_id", STRING)) + _CDC,
            ("procedure_id", "encounter_id", "patient_id", "cpt_code", "procedure_ts", "op",
             "updated_at"),
        ),
        Feed(
            "lab_results", "lab_result_id", "result_ts", "loinc_code", "LOINC",
            (("lab_result_id", STRING), ("encounter_id", STRING), ("patient_id", STRING),
             ("loinc_code", STRING), ("test_name", STRING), ("value", DOUBLE), ("unit", STRING),
             ("ref_low", DOUBLE), ("ref_high", DOUBLE), ("result_ts", TIMESTAMP)) + _CDC,
            ("lab_result_id", "patient_id", "loinc_code", "value", "result_ts", "op",
             "updated_at"),
        ),
        Feed(
            "medications", "medication_id", "start_date", "rxnorm_code", "RxNorm",
            (("medication_id", STRING), ("patient_id", STRING), ("encounter_id", STRING),
             ("rxnorm_code", STRING), ("drug_name", STRING), ("dose", DOUBLE),
             ("dose_unit", STRING), ("route", STRING), ("frequency", STRING),
             ("start_date", DATE), ("end_date", DATE)) + _CDC,
            ("medication_id", "patient_id", "rxnorm_code", "start_date", "op", "updated_at"),
        ),
    )
}

FEED_NAMES: tuple[str, ...] = tuple(FEEDS)


def has_raw_files(data_dir: str | os.PathLike) -> bool:
    """True when ``data_dir`` holds at least one batch file of a feed (what the grader reads)."""
    return any(os.path.exists(spec.path(str(data_dir), batch))
               for spec in FEEDS.values() for batch in BATCHES)


def delivered_batches(data_dir: str | os.PathLike, feed: str) -> list[str]:
    """Sorted batch ids of the files of ``feed`` under ``data_dir``: :data:`BATCHES` in the bundled
    data, and ``"004"``, ``"005"``… too in lab 05's landing volume (``medilake_lab deliver``).
    Names starting with ``_`` or ``.`` (a delivery's temporary files) never match, as Spark's file
    source ignores them."""
    folder = os.path.join(data_dir, LANDING_DIR, feed)
    pattern = re.compile(rf"{re.escape(feed)}_(\d{{3,}}){re.escape(FILE_SUFFIX)}")
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted((m.group(1) for m in map(pattern.fullmatch, names) if m), key=lambda b: (len(b), b))


def data_scale(data_dir: str | os.PathLike) -> float:
    """The generator's ``--scale`` of the data in ``data_dir`` (a multiplier, at least 1.0).

    Imported data (Synthea) records ``"scale": null`` and a folder without a manifest has none:
    both count as 1.0, the bundled data's scale. Lab 03 sizes its OPTIMIZE target by this.
    """
    try:
        with open(os.path.join(data_dir, LANDING_DIR, MANIFEST_NAME), encoding="utf-8") as fh:
            manifest = json.load(fh)
    except (OSError, ValueError):
        return 1.0
    scale = manifest.get("scale") if isinstance(manifest, dict) else None
    return max(1.0, float(scale)) if isinstance(scale, (int, float)) else 1.0
