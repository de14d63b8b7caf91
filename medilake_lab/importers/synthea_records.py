"""Synthea rows → records of our six raw feeds (contract columns, JSON-ready values).

The mapping rules (also in ``docs/synthea.md``):

Identifiers
    ``patient_id`` / ``encounter_id`` = ``"SYN-" + Synthea UUID``; ``mrn`` = ``"MRN-SYN-"`` + the
    first 16 hex digits of the patient UUID (upper case). Rows without an ``Id`` (conditions,
    procedures, observations, medications) get ``"SYN-DX-"``, ``"SYN-PR-"``, ``"SYN-LAB-"``,
    ``"SYN-MED-"`` + 16 hex digits of a SHA-256 over the row's identity columns, so the same row
    always gets the same id and a row repeated in the CSV becomes an exact duplicate line.
    SSN, driver's licence and passport are never carried over; phone and insurance stay null.
Encounters
    Class: see :data:`CLASS_MAP`. Admission type: ``emergency`` for emergency-class visits and for
    inpatient stays that start within 24 hours after the start of an emergency or urgent-care
    visit of the same patient; ``urgent`` for urgent care; ``elective`` otherwise. Disposition:
    null while the encounter has no STOP; ``expired`` when the patient's DEATHDATE falls within
    the encounter's dates; null for a record made after death (e.g. death certification);
    ``home`` otherwise.
Diagnoses / procedures
    ``source_code`` / ``source_code_system`` (extra keys after the contract columns) keep the
    delivered code. ``icd10_code`` / ``cpt_code`` hold the code when the source system already is
    ICD-10-CM / CPT, the crosswalk target (:mod:`.crosswalk`) for SNOMED CT, else null — an
    unmapped row then fails silver's required-field rule and lands in quarantine, with its source
    code in the quarantined record. Mapped rows take our code table's description.
    ``diagnosis_type`` is ``primary`` when the condition is the encounter's REASONCODE;
    ``is_chronic`` is ``Y`` when the condition has no STOP (still active at export time).
Lab results
    Only observations with CATEGORY ``laboratory`` and TYPE ``numeric`` and a finite number in
    VALUE (exports without a CATEGORY column: LOINC codes of our table). ``unit`` is Synthea's
    UNITS; ``test_name``, ``ref_low``, ``ref_high`` come from our LOINC table when it knows the
    code — the range only when our unit equals the delivered one.
Medications
    ``dose``/``dose_unit`` when the RxNorm name has exactly one plain strength (``"lisinopril
    10 MG Oral Tablet"`` → 10, ``mg``); ``route`` from the dose form; ``frequency`` null.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta

from medilake_lab.contract import codes
from medilake_lab.importers.crosswalk import SNOMED_SYSTEM, map_snomed
from medilake_lab.importers.synthea_csv import SPECS, CsvTable

#: Synthea ENCOUNTERCLASS → our encounter class. Unknown classes map to null (quarantined).
CLASS_MAP: dict[str, str] = {
    "ambulatory": "ambulatory", "wellness": "ambulatory",
    "home": "ambulatory",        # home-health visit: planned, non-facility care
    "virtual": "ambulatory",     # telehealth visit
    "outpatient": "outpatient",
    "snf": "outpatient",         # post-acute residential care, not an acute hospital admission:
    "hospice": "outpatient",     # kept out of admission and readmission counts
    "urgentcare": "emergency", "emergency": "emergency",
    "inpatient": "inpatient",
}
EMERGENCY_TO_INPATIENT = timedelta(hours=24)
EXTRA_COLUMNS: dict[str, tuple[str, ...]] = {"diagnoses": ("source_code", "source_code_system"),
                                            "procedures": ("source_code", "source_code_system")}
_SYSTEMS = {"snomed-ct": SNOMED_SYSTEM, "snomed": SNOMED_SYSTEM, "snomedct": SNOMED_SYSTEM,
            "sct": SNOMED_SYSTEM, "http://snomed.info/sct": SNOMED_SYSTEM,
            "icd-10-cm": codes.ICD10_SYSTEM, "icd10cm": codes.ICD10_SYSTEM,
            "http://hl7.org/fhir/sid/icd-10-cm": codes.ICD10_SYSTEM,
            "cpt": codes.CPT_SYSTEM, "cpt-4": codes.CPT_SYSTEM,
            "http://www.ama-assn.org/go/cpt": codes.CPT_SYSTEM}
_STRENGTH = re.compile(r"(?<![\d./])(\d+(?:\.\d+)?) (MG|MCG|G)\b(?!/)")
_ROUTES = (("oral", ("oral", "chewable")), ("inhalation", ("inhaler", "inhalation", "inhalant")),
           ("injection", ("injection", "injectable", "syringe", "auto-injector")),
           ("transdermal", ("transdermal",)), ("topical", ("topical", "cream", "ointment")),
           ("nasal", ("nasal",)), ("vaginal", ("vaginal",)), ("ophthalmic", ("ophthalmic",)),
           ("mucosal", ("mucosal",)), ("rectal", ("rectal",)))
US_STATES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC",
    "Florida": "FL", "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL",
    "Indiana": "IN", "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA",
    "Maine": "ME", "Maryland": "MD", "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN",
    "Mississippi": "MS", "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV",
    "New Hampshire": "NH", "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY",
    "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK",
    "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI", "South Carolina": "SC",
    "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT", "Vermont": "VT",
    "Virginia": "VA", "Washington": "WA", "West Virginia": "WV", "Wisconsin": "WI",
    "Wyoming": "WY", "Puerto Rico": "PR",
}


def ts(value: datetime | None) -> str | None:
    """``"YYYY-MM-DDTHH:MM:SSZ"`` of an aware UTC datetime (None stays None)."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def day(value: date | datetime | None) -> str | None:
    """``"YYYY-MM-DD"`` (None stays None)."""
    if value is None:
        return None
    return (value.date() if isinstance(value, datetime) else value).isoformat()


def _ref(uuid: str | None) -> str | None:
    return f"SYN-{uuid.strip()}" if uuid else None


def _row_id(prefix: str, table: str, row: dict) -> str:
    parts = []
    for column in SPECS[table].identity:
        value = row.get(column)
        parts.append("" if value is None else value.isoformat() if isinstance(
            value, (date, datetime)) else str(value))
    return f"{prefix}{hashlib.sha256(chr(31).join(parts).encode()).hexdigest()[:16]}"


def system_name(raw: str | None, default: str = SNOMED_SYSTEM) -> str:
    """Our name of a delivered code system (``"SNOMED-CT"`` → ``"SNOMED CT"``); the default when
    the export has no SYSTEM column or value; unknown names are kept as delivered."""
    if not raw or not raw.strip():
        return default
    return _SYSTEMS.get(raw.strip().lower().replace("_", "-"), raw.strip())


class Stats:
    """Counters collected while mapping, reported in the manifest's ``import`` section."""

    def __init__(self) -> None:
        self.unmapped: dict[str, Counter] = {codes.ICD10_SYSTEM: Counter(),
                                             codes.CPT_SYSTEM: Counter()}
        self.mapped: Counter = Counter()
        self.classes: Counter = Counter()
        self.dropped: Counter = Counter()
        self.dropped_by_category: Counter = Counter()
        self.lab_ranges: Counter = Counter()
        self.medication: Counter = Counter()
        self.dispositions: Counter = Counter()


def patients(t: CsvTable, first_seen: dict[str, datetime]) -> list[dict]:
    """Patient records; ``updated_at`` = the patient's first encounter start (else birth)."""
    out = []
    for r in t.rows:
        uuid = r["ID"]
        born = r["BIRTHDATE"]
        first = first_seen.get(uuid) if uuid else None
        if first is None and born is not None:
            first = datetime(born.year, born.month, born.day, tzinfo=UTC)
        state = r.get("STATE")
        out.append({
            "patient_id": _ref(uuid),
            "mrn": f"MRN-SYN-{uuid.replace('-', '')[:16].upper()}" if uuid else None,
            "first_name": r["FIRST"], "last_name": r["LAST"], "sex": r["GENDER"],
            "birth_date": day(born), "address_line": r.get("ADDRESS"), "city": r.get("CITY"),
            "state": US_STATES.get(state, state) if state else None, "zip": r.get("ZIP"),
            "phone": None, "insurance_payer": None, "insurance_member_id": None,
            "op": "I", "updated_at": ts(first),
        })
    return out


def _via_emergency(rows: list[dict]) -> set[str]:
    """Ids of inpatient encounters starting ≤ 24 h after an emergency/urgent-care start."""
    starts: dict[str, list[datetime]] = defaultdict(list)
    for r in rows:
        if (r["ENCOUNTERCLASS"] or "").strip().lower() in ("emergency", "urgentcare"):
            starts[r["PATIENT"]].append(r["START"])
    hits = set()
    for r in rows:
        if (r["ENCOUNTERCLASS"] or "").strip().lower() != "inpatient":
            continue
        if any(s <= r["START"] <= s + EMERGENCY_TO_INPATIENT for s in starts.get(r["PATIENT"], ())):
            hits.add(r["ID"])
    return hits


def encounters(t: CsvTable, deaths: dict[str, date], org_names: dict[str, str],
               stats: Stats) -> list[dict]:
    """Encounter records; ``updated_at`` = START (the admission)."""
    via_ed = _via_emergency(t.rows)
    out = []
    for r in t.rows:
        source = (r["ENCOUNTERCLASS"] or "").strip().lower()
        cls = CLASS_MAP.get(source)
        stats.classes[(source, cls)] += 1
        if source == "emergency" or r["ID"] in via_ed:
            admission = "emergency"
        elif source == "urgentcare":
            admission = "urgent"
        else:
            admission = "elective"
        start, stop = r["START"], r.get("STOP")
        died = deaths.get(r["PATIENT"])
        if stop is None:
            disposition = None
        elif died is not None and start.date() <= died <= stop.date():
            disposition = "expired"
        elif died is not None and start.date() > died:
            disposition = None
        else:
            disposition = "home"
        stats.dispositions[disposition] += 1
        org = r.get("ORGANIZATION")
        out.append({
            "encounter_id": _ref(r["ID"]), "patient_id": _ref(r["PATIENT"]),
            "encounter_class": cls, "admission_type": admission,
            "admit_ts": ts(start), "discharge_ts": ts(stop),
            "facility_id": _ref(org), "facility_name": org_names.get(org) if org else None,
            "department": None, "attending_provider_id": _ref(r.get("PROVIDER")),
            "discharge_disposition": disposition, "op": "I", "updated_at": ts(start),
        })
    return out


def _target(code: str | None, raw_system: str | None, target: str, stats: Stats) -> str | None:
    system = system_name(raw_system)
    if code is None:
        return None
    if system == target:
        return code.strip()
    mapped = map_snomed(code, target) if system == SNOMED_SYSTEM else None
    if mapped is None:
        stats.unmapped[target][(system, code.strip())] += 1
    else:
        stats.mapped[target] += 1
    return mapped


def _recorded_at(onset: date, encounter: dict | None) -> datetime:
    """When a condition was recorded: the start of its encounter when that is within a day of
    the onset date (Synthea writes condition dates in local time), else midnight UTC."""
    if encounter is not None and abs((encounter["START"].date() - onset).days) <= 1:
        return encounter["START"]
    return datetime(onset.year, onset.month, onset.day, tzinfo=UTC)


def diagnoses(t: CsvTable, enc: dict[str, dict], stats: Stats) -> list[dict]:
    """Diagnosis records from conditions; ``updated_at`` = when the condition was recorded."""
    out = []
    for r in t.rows:
        code = r["CODE"]
        icd = _target(code, r.get("SYSTEM"), codes.ICD10_SYSTEM, stats)
        encounter = enc.get(r["ENCOUNTER"]) if r.get("ENCOUNTER") else None
        reason = encounter.get("REASONCODE") if encounter else None
        known = codes.ICD10_CM.get(icd) if icd else None
        out.append({
            "diagnosis_id": _row_id("SYN-DX-", "conditions", r),
            "encounter_id": _ref(r.get("ENCOUNTER")), "patient_id": _ref(r["PATIENT"]),
            "icd10_code": icd,
            "description": known.description if known else r.get("DESCRIPTION"),
            "diagnosis_type": "primary" if reason and code and reason == code else "secondary",
            "is_chronic": "N" if r.get("STOP") else "Y",
            "onset_date": day(r["START"]), "resolved_date": day(r.get("STOP")),
            "op": "I", "updated_at": ts(_recorded_at(r["START"], encounter)),
            "source_code": code, "source_code_system": system_name(r.get("SYSTEM")),
        })
    return out


def procedures(t: CsvTable, enc: dict[str, dict], stats: Stats) -> list[dict]:
    """Procedure records; ``provider_id`` = the encounter's provider; ``updated_at`` = START."""
    out = []
    for r in t.rows:
        code = r["CODE"]
        cpt = _target(code, r.get("SYSTEM"), codes.CPT_SYSTEM, stats)
        encounter = enc.get(r["ENCOUNTER"]) if r["ENCOUNTER"] else None
        known = codes.CPT.get(cpt) if cpt else None
        out.append({
            "procedure_id": _row_id("SYN-PR-", "procedures", r),
            "encounter_id": _ref(r["ENCOUNTER"]), "patient_id": _ref(r["PATIENT"]),
            "cpt_code": cpt,
            "description": known.description if known else r.get("DESCRIPTION"),
            "procedure_ts": ts(r["START"]),
            "provider_id": _ref(encounter.get("PROVIDER")) if encounter else None,
            "op": "I", "updated_at": ts(r["START"]),
            "source_code": code, "source_code_system": system_name(r.get("SYSTEM")),
        })
    return out


def _lab_value(r: dict, has_category: bool, stats: Stats) -> float | None:
    """The numeric value of a laboratory observation, or None (reason counted) to drop it."""
    category = (r.get("CATEGORY") or "").strip().lower()
    if has_category and category != "laboratory":
        stats.dropped["category_not_laboratory"] += 1
        stats.dropped_by_category[category or "(none)"] += 1
        return None
    if not has_category and r["CODE"] not in codes.LOINC:
        stats.dropped["no_category_and_code_not_in_loinc_table"] += 1
        return None
    if (r["TYPE"] or "").strip().lower() != "numeric":
        stats.dropped["type_not_numeric"] += 1
        return None
    try:
        value = float(r["VALUE"])
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        stats.dropped["value_not_a_number"] += 1
        return None
    return value


def lab_results(t: CsvTable, stats: Stats) -> list[dict]:
    """Lab result records from laboratory numeric observations; ``updated_at`` = DATE."""
    has_category = "CATEGORY" not in t.absent_optional
    out = []
    for r in t.rows:
        value = _lab_value(r, has_category, stats)
        if value is None:
            continue
        code, unit = r["CODE"], r.get("UNITS")
        test = codes.LOINC.get(code)
        ranged = test is not None and unit == test.unit
        stats.lab_ranges["from_loinc_table" if ranged else
                         "unit_differs_from_loinc_table" if test else "code_not_in_loinc_table"] += 1
        out.append({
            "lab_result_id": _row_id("SYN-LAB-", "observations", r),
            "encounter_id": _ref(r.get("ENCOUNTER")), "patient_id": _ref(r["PATIENT"]),
            "loinc_code": code, "test_name": test.name if test else r.get("DESCRIPTION"),
            "value": value, "unit": unit,
            "ref_low": test.ref_low if test and ranged else None,
            "ref_high": test.ref_high if test and ranged else None,
            "result_ts": ts(r["DATE"]), "op": "I", "updated_at": ts(r["DATE"]),
        })
    return out


def dose_and_route(name: str | None) -> tuple[float | None, str | None, str | None]:
    """``(dose, dose_unit, route)`` derived from an RxNorm clinical drug name, None where not
    derivable: one plain strength (``"10 MG"``, not ``"100 MG/ML"``, not two ingredients)
    gives the dose; the first known dose-form word gives the route."""
    if not name:
        return None, None, None
    strengths = _STRENGTH.findall(name)
    dose, unit = ((float(strengths[0][0]), strengths[0][1].lower()) if len(strengths) == 1
                  else (None, None))
    words = name.lower()
    route = next((r for r, keys in _ROUTES
                  if any(re.search(rf"\b{re.escape(k)}\b", words) for k in keys)), None)
    return dose, unit, route


def medications(t: CsvTable, stats: Stats) -> list[dict]:
    """Medication records; end_date null = still active at export; ``updated_at`` = START."""
    out = []
    for r in t.rows:
        dose, unit, route = dose_and_route(r["DESCRIPTION"])
        stats.medication["dose_derived"] += dose is not None
        stats.medication["route_derived"] += route is not None
        out.append({
            "medication_id": _row_id("SYN-MED-", "medications", r),
            "patient_id": _ref(r["PATIENT"]), "encounter_id": _ref(r.get("ENCOUNTER")),
            "rxnorm_code": r["CODE"], "drug_name": r["DESCRIPTION"],
            "dose": dose, "dose_unit": unit, "route": route, "frequency": None,
            "start_date": day(r["START"]), "end_date": day(r.get("STOP")),
            "op": "I", "updated_at": ts(r["START"]),
        })
    return out
