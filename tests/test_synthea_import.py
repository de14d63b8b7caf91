"""The Synthea importer (no Spark): contract format of the six feeds, row counts recounted from
the CSVs, honest unmapped-code counts, version differences and error paths.

The real-data tests read the Synthea sample in place (``../shared/data/synthea-csv`` beside the
project, or ``$MEDILAKE_SYNTHEA_SAMPLE``) and skip when it is absent; it is never copied into
the project. Error paths use small CSVs written to ``tmp_path``.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import os
import re
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medilake_lab.cli import app
from medilake_lab.contract import codes
from medilake_lab.contract.feeds import (
    BATCHES,
    DATE,
    DOUBLE,
    DRIFT_COLUMN,
    DRIFT_FEED,
    DRIFT_FIRST_BATCH,
    FEEDS,
    LANDING_DIR,
    MANIFEST_NAME,
    STRING,
    TIMESTAMP,
    data_scale,
)
from medilake_lab.errors import DataError
from medilake_lab.importers import SyntheaFormatError, import_synthea
from medilake_lab.importers.crosswalk import EXCLUDED, SNOMED_TO_CPT, SNOMED_TO_ICD10CM, map_snomed
from medilake_lab.importers.synthea_records import CLASS_MAP, dose_and_route

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = Path(os.environ.get("MEDILAKE_SYNTHEA_SAMPLE",
                             ROOT.parent / "shared" / "data" / "synthea-csv"))
TS = re.compile(r"\d{4}-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d:[0-5]\dZ")
DAY = re.compile(r"\d{4}-[01]\d-[0-3]\d")
EXTRA = {"diagnoses": ["source_code", "source_code_system"],
         "procedures": ["source_code", "source_code_system"]}


def _need_sample() -> Path:
    if not (SAMPLE / "patients.csv").is_file():
        pytest.skip(f"Synthea sample not found at {SAMPLE} (set MEDILAKE_SYNTHEA_SAMPLE to a "
                    "Synthea output/csv folder to run these tests)")
    return SAMPLE


def _csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _lines(data: Path, feed: str, batch: str) -> list[str] | None:
    path = Path(FEEDS[feed].path(str(data), batch))
    if not path.exists():
        return None
    text = gzip.decompress(path.read_bytes()).decode()
    assert text.endswith("\n"), f"{path.name}: every line ends with a newline"
    return text.split("\n")[:-1]


def _records(data: Path, feed: str) -> list[dict]:
    return [json.loads(line) for b in BATCHES for line in (_lines(data, feed, b) or [])]


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    sample = _need_sample()
    out = tmp_path_factory.mktemp("synthea-import")
    return out, import_synthea(sample, out)


# ------------------------------------------------------------------ the sample, in our format

def test_every_feed_in_contract_format(imported) -> None:
    data, _ = imported
    for name, feed in FEEDS.items():
        written = 0
        for batch in BATCHES:
            lines = _lines(data, name, batch)
            if lines is None:
                continue
            assert lines, f"{name}_{batch}: an empty batch is not written"
            written += 1
            keys = feed.columns + ([DRIFT_COLUMN] if name == DRIFT_FEED
                                   and batch >= DRIFT_FIRST_BATCH else []) + EXTRA.get(name, [])
            for line in lines:
                record = json.loads(line)
                assert isinstance(record, dict)
                assert list(record) == keys, f"{name}_{batch}: keys out of contract order"
                assert record["op"] == "I"
                assert TS.fullmatch(record["updated_at"])
                for column, kind in feed.fields:
                    value = record[column]
                    if value is None:
                        continue
                    if kind == TIMESTAMP:
                        assert TS.fullmatch(value), (name, column, value)
                        datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
                    elif kind == DATE:
                        assert DAY.fullmatch(value), (name, column, value)
                        date.fromisoformat(value)
                    elif kind == DOUBLE:
                        assert isinstance(value, float) and math.isfinite(value), (name, column)
                    elif kind == STRING:
                        assert isinstance(value, str), (name, column, value)
        assert written >= 1, f"{name}: no batch file written"


def test_rows_per_feed_match_the_csvs(imported) -> None:
    data, manifest = imported
    src = {name: _csv(SAMPLE / f"{name}.csv") for name in
           ("patients", "encounters", "conditions", "procedures", "observations", "medications")}

    def is_lab(r: dict) -> bool:
        try:
            value = float(r["VALUE"])
        except ValueError:
            return False
        return r["CATEGORY"] == "laboratory" and r["TYPE"] == "numeric" and math.isfinite(value)

    expected = {"patients": len(src["patients"]), "encounters": len(src["encounters"]),
                "diagnoses": len(src["conditions"]), "procedures": len(src["procedures"]),
                "lab_results": sum(map(is_lab, src["observations"])),
                "medications": len(src["medications"])}
    got = {name: len(_records(data, name)) for name in FEEDS}
    assert got == expected
    assert manifest["import"]["rows"] == expected
    assert sum(manifest["feeds"][n][b]["lines"] for n in FEEDS for b in BATCHES) == sum(
        expected.values())
    dropped = manifest["import"]["dropped_observations"]
    assert expected["lab_results"] + sum(dropped.values()) == len(src["observations"])
    not_lab = Counter(r["CATEGORY"] or "(none)" for r in src["observations"]
                      if r["CATEGORY"] != "laboratory")
    assert manifest["import"]["dropped_observations_by_category"] == dict(not_lab)


def test_unmapped_codes_are_counted_honestly(imported) -> None:
    data, manifest = imported
    info = manifest["import"]
    for feed, column, source, xwalk, system in (
            ("diagnoses", "icd10_code", "conditions", SNOMED_TO_ICD10CM, codes.ICD10_SYSTEM),
            ("procedures", "cpt_code", "procedures", SNOMED_TO_CPT, codes.CPT_SYSTEM)):
        rows = _records(data, feed)
        unmapped = [r for r in rows if r[column] is None]
        for r in rows:
            assert r["source_code_system"] == "SNOMED CT" and r["source_code"]
            if r[column] is not None:
                assert r[column] == xwalk[r["source_code"]].target
                assert codes.is_valid_code(system, r[column])
        csv_unmapped = [r for r in _csv(SAMPLE / f"{source}.csv") if r["CODE"] not in xwalk]
        assert len(unmapped) == len(csv_unmapped) == info["unmapped_codes"][system]["rows"]
        assert info["unmapped_codes"][system]["distinct_codes"] == len(
            {r["CODE"] for r in csv_unmapped})
        assert info["unmapped_codes"][system]["mapped_rows"] == len(rows) - len(unmapped)
        nulls = sum(manifest["feeds"][feed][b]["null_required"] for b in BATCHES)
        assert nulls == len(unmapped), "an unmapped code is the only null required field"
    for feed in ("lab_results", "medications"):
        spec = FEEDS[feed]
        outside = sum(not codes.is_valid_code(spec.code_system, r[spec.code_column])
                      for r in _records(data, feed))
        assert info["not_in_code_tables"][spec.code_system] == outside
        assert sum(manifest["feeds"][feed][b]["invalid_codes"] for b in BATCHES) == outside


def test_batches_follow_the_documented_rule(imported) -> None:
    data, manifest = imported
    stamps = {n: [(b, r["updated_at"]) for b in BATCHES for r in
                  map(json.loads, _lines(data, n, b) or [])] for n in FEEDS}
    newest = max(t for rows in stamps.values() for _, t in rows)
    as_of = date.fromisoformat(newest[:10])
    assert manifest["as_of_date"] == as_of.isoformat()
    first_002, first_003 = as_of - timedelta(days=59), as_of - timedelta(days=29)
    for name, rows in stamps.items():
        for batch, stamp in rows:
            day = date.fromisoformat(stamp[:10])
            want = "001" if day < first_002 else "002" if day < first_003 else "003"
            assert batch == want, (name, stamp)
        assert [t for b, t in rows] == sorted(t for b, t in rows), f"{name}: event order"
        assert {b for b, _ in rows} == set(BATCHES), f"{name}: every batch has records here"
    windows = manifest["batch_windows"]
    assert windows["002"]["changes_from"] == first_002.isoformat()
    assert windows["003"]["changes_from"] == first_003.isoformat()
    assert windows["003"]["changes_to"] == as_of.isoformat()
    clean = ("exact_duplicates", "newer_versions", "out_of_order", "late_arriving", "deletes",
             "malformed_lines")
    assert {k: manifest["totals"][k] for k in clean} == dict.fromkeys(clean, 0)
    assert manifest["demographic_changes"] == {"address": 0, "insurance": 0, "last_name": 0}


def test_identifiers_unique_referenced_and_no_ssn(imported) -> None:
    data, _ = imported
    ids = {}
    for name, feed in FEEDS.items():
        keys = [r[feed.key] for r in _records(data, name)]
        assert len(keys) == len(set(keys)), f"{name}: duplicate {feed.key}"
        ids[name] = set(keys)
    mrns = [r["mrn"] for r in _records(data, "patients")]
    assert len(set(mrns)) == len(mrns) and all(m.startswith("MRN-SYN-") for m in mrns)
    for name in ("encounters", "diagnoses", "procedures", "lab_results", "medications"):
        for r in _records(data, name):
            assert r["patient_id"] in ids["patients"]
            assert r["encounter_id"] is None or r["encounter_id"] in ids["encounters"]
    ssns = {r["SSN"] for r in _csv(SAMPLE / "patients.csv")}
    everything = "".join(line for n in FEEDS for b in BATCHES for line in (_lines(data, n, b) or []))
    assert not any(s in everything for s in ssns)


def test_same_input_gives_identical_files(imported, tmp_path: Path) -> None:
    data, manifest = imported
    again = import_synthea(SAMPLE, tmp_path)
    assert again == manifest
    for name in FEEDS:
        for batch in BATCHES:
            assert _lines(tmp_path, name, batch) == _lines(data, name, batch)


def test_encounter_mapping(imported) -> None:
    data, manifest = imported
    rows = _records(data, "encounters")
    classes = Counter(r["encounter_class"] for r in rows)
    src = Counter(CLASS_MAP[r["ENCOUNTERCLASS"]] for r in _csv(SAMPLE / "encounters.csv"))
    assert classes == src
    assert {r["admission_type"] for r in rows if r["encounter_class"] == "emergency"} <= {
        "emergency", "urgent"}
    deaths = {f"SYN-{r['Id']}": r["DEATHDATE"] for r in _csv(SAMPLE / "patients.csv")
              if r["DEATHDATE"]}
    expired = [r for r in rows if r["discharge_disposition"] == "expired"]
    assert expired and all(r["admit_ts"][:10] <= deaths[r["patient_id"]] <= r["discharge_ts"][:10]
                           for r in expired)
    assert manifest["import"]["encounter_classes"]["wellness"]["to"] == "ambulatory"


def test_lab_results_use_our_loinc_table(imported) -> None:
    data, _ = imported
    for r in _records(data, "lab_results"):
        test = codes.LOINC.get(r["loinc_code"])
        if test is not None and r["unit"] == test.unit:
            assert (r["ref_low"], r["ref_high"], r["test_name"]) == (
                test.ref_low, test.ref_high, test.name)
        else:
            assert r["ref_low"] is None and r["ref_high"] is None


def test_cli_prints_rows_and_unmapped(tmp_path: Path) -> None:
    sample = _need_sample()
    result = CliRunner().invoke(app, ["import", "synthea", str(sample), "--out", str(tmp_path)],
                                env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / LANDING_DIR / MANIFEST_NAME).read_text())
    assert "diagnoses" in result.output and "ICD-10-CM" in result.output
    assert f"{manifest['import']['unmapped_codes']['ICD-10-CM']['rows']:,}" in result.output


# ------------------------------------------------------------ crosswalk and small helpers

def test_crosswalk_targets_are_in_our_code_tables() -> None:
    for entry in SNOMED_TO_ICD10CM.values():
        assert codes.is_valid_code(codes.ICD10_SYSTEM, entry.target), entry
    for entry in SNOMED_TO_CPT.values():
        assert codes.is_valid_code(codes.CPT_SYSTEM, entry.target), entry
    assert not (set(EXCLUDED) & (set(SNOMED_TO_ICD10CM) | set(SNOMED_TO_CPT)))
    assert map_snomed("59621000", codes.ICD10_SYSTEM) == "I10"
    assert map_snomed("160903007", codes.ICD10_SYSTEM) is None
    with pytest.raises(ValueError, match="LOINC"):
        map_snomed("59621000", codes.LOINC_SYSTEM)


@pytest.mark.parametrize(("name", "expected"), [
    ("lisinopril 10 MG Oral Tablet", (10.0, "mg", "oral")),
    ("Loratadine 5 MG Chewable Tablet", (5.0, "mg", "oral")),
    ("Acetaminophen 325 MG / Oxycodone Hydrochloride 10 MG Oral Tablet [Percocet]",
     (None, None, "oral")),
    ("NDA020503 200 ACTUAT Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler",
     (None, None, "inhalation")),
    ("1 ML medroxyPROGESTERone acetate 150 MG/ML Injection", (None, None, "injection")),
    ("NuvaRing 0.12/0.015 MG per 24HR 21 Day Vaginal Ring", (None, None, "vaginal")),
    ("Jolivette 28 Day Pack", (None, None, None)),
])
def test_dose_and_route(name: str, expected: tuple) -> None:
    assert dose_and_route(name) == expected


def test_every_synthea_encounter_class_is_mapped() -> None:
    synthea_classes = {"ambulatory", "emergency", "inpatient", "wellness", "urgentcare",
                       "outpatient", "home", "hospice", "snf", "virtual"}
    assert set(CLASS_MAP) == synthea_classes
    assert set(CLASS_MAP.values()) <= {"inpatient", "outpatient", "emergency", "ambulatory"}


# ------------------------------------------------------ small exports: versions and errors

P1, P2 = "11111111-2222-3333-4444-555555555555", "66666666-7777-8888-9999-000000000000"
E1, E2, E3 = ("aaaaaaaa-0000-0000-0000-000000000001", "aaaaaaaa-0000-0000-0000-000000000002",
              "aaaaaaaa-0000-0000-0000-000000000003")


def _v30() -> dict[str, list[list[str]]]:
    """A tiny export in the Synthea v3.0 column layout (like the sample)."""
    return {
        "patients": [
            ["Id", "BIRTHDATE", "DEATHDATE", "SSN", "FIRST", "LAST", "GENDER", "ADDRESS", "CITY",
             "STATE", "ZIP"],
            [P1, "1980-05-01", "", "999-11-2222", "Ann1", "Lee2", "F", "1 Main St", "Boston",
             "Massachusetts", "02110"],
            [P2, "1950-02-03", "2024-03-02", "999-33-4444", "Bob3", "Kim4", "M", "", "Salem",
             "Massachusetts", ""]],
        "encounters": [
            ["Id", "START", "STOP", "PATIENT", "ORGANIZATION", "PROVIDER", "PAYER",
             "ENCOUNTERCLASS", "CODE", "DESCRIPTION", "REASONCODE", "REASONDESCRIPTION"],
            [E1, "2023-01-10T09:00:00Z", "2023-01-10T09:30:00Z", P1, "org1", "prv1", "pay1",
             "wellness", "162673000", "General examination", "", ""],
            [E2, "2024-03-01T10:00:00Z", "2024-03-01T11:00:00Z", P2, "org2", "prv2", "pay1",
             "emergency", "50849002", "Emergency room admission", "22298006", "MI"],
            [E3, "2024-03-01T10:00:00Z", "2024-03-02T12:00:00Z", P2, "org2", "prv2", "pay1",
             "inpatient", "183452005", "Encounter Inpatient", "22298006", "MI"]],
        "conditions": [
            ["START", "STOP", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION"],
            ["2023-01-10", "", P1, E1, "59621000", "Hypertension"],
            ["2024-03-01", "", P2, E2, "22298006", "Myocardial Infarction"]],
        "procedures": [
            ["START", "STOP", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION", "BASE_COST"],
            ["2023-01-10T09:05:00Z", "2023-01-10T09:10:00Z", P1, E1, "22778000", "Venipuncture",
             "10"]],
        "observations": [
            ["DATE", "PATIENT", "ENCOUNTER", "CATEGORY", "CODE", "DESCRIPTION", "VALUE", "UNITS",
             "TYPE"],
            ["2023-01-10T09:05:00Z", P1, E1, "laboratory", "2093-3", "Total Cholesterol",
             "201.5", "mg/dL", "numeric"],
            ["2023-01-10T09:05:00Z", P1, E1, "vital-signs", "8302-2", "Body Height", "170",
             "cm", "numeric"]],
        "medications": [
            ["START", "STOP", "PATIENT", "PAYER", "ENCOUNTER", "CODE", "DESCRIPTION"],
            ["2023-01-10T09:20:00Z", "", P1, "pay1", E1, "314076",
             "lisinopril 10 MG Oral Tablet"]],
    }


def _write(folder: Path, tables: dict[str, list[list[str]]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in tables.items():
        with (folder / f"{name}.csv").open("w", newline="", encoding="utf-8") as fh:
            csv.writer(fh).writerows(rows)
    return folder


def _with_column(rows: list[list[str]], after: str, name: str, value: str) -> list[list[str]]:
    i = rows[0].index(after) + 1
    return [r[:i] + [name if n == 0 else value] + r[i:] for n, r in enumerate(rows)]


def test_small_export_maps_as_documented(tmp_path: Path) -> None:
    manifest = import_synthea(_write(tmp_path / "src", _v30()), tmp_path / "out")
    data = tmp_path / "out"
    enc = {r["encounter_id"]: r for r in _records(data, "encounters")}
    assert enc[f"SYN-{E2}"]["admission_type"] == "emergency"
    assert enc[f"SYN-{E3}"]["admission_type"] == "emergency", "inpatient via the ED"
    assert enc[f"SYN-{E3}"]["discharge_disposition"] == "expired"
    assert enc[f"SYN-{E1}"]["encounter_class"] == "ambulatory"
    dx = {r["source_code"]: r for r in _records(data, "diagnoses")}
    assert dx["59621000"]["icd10_code"] == "I10" and dx["22298006"]["icd10_code"] is None
    assert dx["22298006"]["diagnosis_type"] == "primary"
    assert _records(data, "procedures")[0]["cpt_code"] == "36415"
    (lab,) = _records(data, "lab_results")
    assert (lab["value"], lab["ref_high"], lab["unit"]) == (201.5, 199.0, "mg/dL")
    (med,) = _records(data, "medications")
    assert (med["dose"], med["dose_unit"], med["route"], med["end_date"]) == (
        10.0, "mg", "oral", None)
    patients = {r["patient_id"]: r for r in _records(data, "patients")}
    assert patients[f"SYN-{P1}"]["state"] == "MA" and patients[f"SYN-{P2}"]["zip"] is None
    assert manifest["as_of_date"] == "2024-03-01"
    assert manifest["import"]["dropped_observations"] == {"category_not_laboratory": 1}
    # the manifest's scale is null for imported data: lab 03 must size its files as at scale 1
    assert manifest["scale"] is None and data_scale(data) == 1.0


def test_newer_synthea_columns_give_the_same_feeds(tmp_path: Path) -> None:
    old = _v30()
    new = dict(old)
    new["patients"] = _with_column(_with_column(_with_column(
        old["patients"], "FIRST", "MIDDLE", "Mid5"), "CITY", "FIPS", "25025"),
        "ZIP", "INCOME", "50000")
    new["conditions"] = _with_column(old["conditions"], "ENCOUNTER", "SYSTEM", "SNOMED-CT")
    new["procedures"] = _with_column(old["procedures"], "ENCOUNTER", "SYSTEM", "SNOMED-CT")
    a = import_synthea(_write(tmp_path / "v30", old), tmp_path / "out30")
    b = import_synthea(_write(tmp_path / "v31", new), tmp_path / "out31")
    assert a["import"]["source_files"]["patients.csv"]["absent_optional_columns"] == [
        "MIDDLE", "FIPS", "INCOME"]
    assert b["import"]["source_files"]["patients.csv"]["absent_optional_columns"] == []
    for name in FEEDS:
        for batch in BATCHES:
            assert _lines(tmp_path / "out30", name, batch) == _lines(tmp_path / "out31", name,
                                                                     batch)


def test_older_synthea_columns_are_accepted(tmp_path: Path) -> None:
    old = _v30()
    old["procedures"] = [["DATE", "PATIENT", "ENCOUNTER", "CODE", "DESCRIPTION", "BASE_COST"],
                         ["2023-01-10T09:05:00Z", P1, E1, "22778000", "Venipuncture", "10"]]
    assert old["observations"][0][3] == "CATEGORY"
    old["observations"] = [r[:3] + r[4:] for r in old["observations"]]  # v2: no CATEGORY
    manifest = import_synthea(_write(tmp_path / "v2", old), tmp_path / "out")
    assert _records(tmp_path / "out", "procedures")[0]["procedure_ts"] == "2023-01-10T09:05:00Z"
    labs = _records(tmp_path / "out", "lab_results")
    assert [r["loinc_code"] for r in labs] == ["2093-3"], "no CATEGORY: LOINC codes of our table"
    assert manifest["import"]["dropped_observations"] == {
        "no_category_and_code_not_in_loinc_table": 1}


@pytest.mark.parametrize(("file", "column"), [
    ("encounters", "ENCOUNTERCLASS"), ("patients", "BIRTHDATE"), ("conditions", "CODE"),
    ("observations", "VALUE"), ("medications", "PATIENT"), ("procedures", "START")])
def test_missing_required_column_names_file_and_column(tmp_path: Path, file: str,
                                                       column: str) -> None:
    tables = _v30()
    i = tables[file][0].index(column)
    tables[file] = [r[:i] + r[i + 1:] for r in tables[file]]
    with pytest.raises(SyntheaFormatError) as err:
        import_synthea(_write(tmp_path / "src", tables), tmp_path / "out")
    assert f"{file}.csv" in str(err.value) and repr(column) in str(err.value)
    assert isinstance(err.value, DataError)
    assert not (tmp_path / "out" / LANDING_DIR).exists(), "nothing written on error"


def test_bad_timestamp_names_file_line_and_column(tmp_path: Path) -> None:
    tables = _v30()
    tables["encounters"][2][1] = "2024-13-01T10:00:00Z"
    with pytest.raises(SyntheaFormatError,
                       match=r"encounters\.csv line 3, column START: '2024-13-01T10:00:00Z'"):
        import_synthea(_write(tmp_path / "src", tables), tmp_path / "out")


def test_bad_date_names_file_line_and_column(tmp_path: Path) -> None:
    tables = _v30()
    tables["conditions"][1][0] = "10/01/2023"
    with pytest.raises(SyntheaFormatError, match=r"conditions\.csv line 2, column START: "
                                                 r"'10/01/2023' is not an ISO-8601 date"):
        import_synthea(_write(tmp_path / "src", tables), tmp_path / "out")


@pytest.mark.parametrize("content", ["", "\n"])
def test_empty_file_is_a_clear_error(tmp_path: Path, content: str) -> None:
    src = _write(tmp_path / "src", _v30())
    (src / "conditions.csv").write_text(content)
    with pytest.raises(SyntheaFormatError, match=r"conditions\.csv is empty"):
        import_synthea(src, tmp_path / "out")


def test_missing_file_and_empty_key_are_clear_errors(tmp_path: Path) -> None:
    src = _write(tmp_path / "src", _v30())
    (src / "medications.csv").unlink()
    with pytest.raises(SyntheaFormatError, match=r"medications\.csv is missing"):
        import_synthea(src, tmp_path / "out")
    tables = _v30()
    tables["patients"][1][0] = ""
    with pytest.raises(SyntheaFormatError, match=r"patients\.csv line 2, column ID: empty"):
        import_synthea(_write(tmp_path / "src2", tables), tmp_path / "out")


def test_cli_reports_a_bad_export_with_exit_1(tmp_path: Path) -> None:
    tables = _v30()
    tables["encounters"][1][1] = "yesterday"
    src = _write(tmp_path / "src", tables)
    result = CliRunner().invoke(app, ["import", "synthea", str(src), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "encounters.csv line 2, column START" in result.output
    assert "Traceback" not in result.output


def test_a_csv_that_is_not_utf8_names_file_line_and_byte(tmp_path: Path) -> None:
    """A file re-saved as Latin-1 (``Zoë`` → byte 0xeb) is one error line naming the file, the
    line and the byte, with the fix; nothing is written."""
    tables = _v30()
    tables["patients"][2][4] = "Zoë"
    src = _write(tmp_path / "src", tables)
    path = src / "patients.csv"
    path.write_bytes(path.read_text(encoding="utf-8").encode("latin-1"))
    with pytest.raises(SyntheaFormatError, match=r"^patients\.csv line 3 is not UTF-8 text \(byte 0xeb at "
                                                 r"position \d+ of the line\).*iconv -f latin1"):
        import_synthea(src, tmp_path / "out")
    result = CliRunner().invoke(app, ["import", "synthea", str(src), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "patients.csv line 3 is not UTF-8 text" in result.output
    assert not (tmp_path / "o").exists()


def test_a_side_file_that_is_not_utf8_only_loses_its_names(tmp_path: Path) -> None:
    src = _write(tmp_path / "src", _v30())
    (src / "organizations.csv").write_bytes("Id,NAME\norg-1,Clínica\n".encode("latin-1"))
    from medilake_lab.importers.synthea_csv import optional_names

    assert optional_names(src, "organizations.csv", "NAME") == {}
