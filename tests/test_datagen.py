"""The synthetic raw-feed generator: determinism, bundled data, mess counts, realism.

The manifest is checked against an independent recount of the files (gzip + json here,
following the manifest's written definitions), never against the generator's bookkeeping.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

import pytest

from medilake_lab.contract import codes
from medilake_lab.contract.feeds import (
    BATCHES,
    DRIFT_COLUMN,
    DRIFT_FEED,
    DRIFT_FIRST_BATCH,
    FEEDS,
    LANDING_DIR,
    MANIFEST_NAME,
    data_scale,
)
from medilake_lab.datagen import AS_OF_DATE, BATCH_WINDOWS, generate
from medilake_lab.datagen.writer import encode_lines

KINDS = ("lines", "valid_records", "malformed_lines", "exact_duplicates", "inserts",
         "newer_versions", "out_of_order", "late_arriving", "deletes", "null_required",
         "invalid_codes")
TS = re.compile(r"20[12]\d-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d:[0-5]\dZ")
DATE = re.compile(r"(19|20)\d\d-[01]\d-[0-3]\d")
MESS = ("exact_duplicates", "newer_versions", "out_of_order", "late_arriving", "deletes",
        "malformed_lines", "null_required", "invalid_codes")


# ---------------------------------------------------------------- helpers (independent of datagen)

@lru_cache(maxsize=64)
def read_lines(data: Path, feed: str, batch: str) -> list[str]:
    """Physical lines of one batch file (without line ends); callers must not mutate them."""
    text = gzip.decompress(Path(FEEDS[feed].path(str(data), batch)).read_bytes()).decode()
    assert text == "" or text.endswith("\n"), "every line must end with a newline"
    return text.split("\n")[:-1]


def parse(line: str) -> dict | None:
    """The record of a line, or None when the line is not a JSON object."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


def recount(data: Path) -> dict:
    """Per feed and batch counts following the manifest's definitions, from the files alone."""
    out: dict = {}
    for name, feed in FEEDS.items():
        table = codes.CODE_TABLES.get(feed.code_system)
        seen_lines: set[str] = set()
        newest: dict = {}  # key -> newest updated_at delivered so far (None if only nulls)
        prev_batch_max = None
        out[name] = {}
        for batch in BATCHES:
            c = Counter({k: 0 for k in KINDS})
            batch_max = None
            for line in read_lines(data, name, batch):
                c["lines"] += 1
                rec = parse(line)
                if rec is None:
                    c["malformed_lines"] += 1
                    continue
                c["valid_records"] += 1
                ts = rec.get("updated_at")
                if ts is not None and (batch_max is None or ts > batch_max):
                    batch_max = ts
                if line in seen_lines:
                    c["exact_duplicates"] += 1
                    continue
                seen_lines.add(line)
                key, op = rec.get(feed.key), rec.get("op")
                known = key is not None and key in newest
                if op == "I":
                    c["inserts"] += 1
                    if (batch != BATCHES[0] and ts is not None and prev_batch_max is not None
                            and ts < prev_batch_max):
                        c["late_arriving"] += 1
                elif op == "U":
                    c["newer_versions"] += known
                    if known and newest[key] is not None and ts is not None and ts < newest[key]:
                        c["out_of_order"] += 1
                elif op == "D":
                    c["deletes"] += 1
                if any(rec.get(f) is None for f in feed.required):
                    c["null_required"] += 1
                code = rec.get(feed.code_column) if feed.code_column else None
                if code is not None and code not in table:
                    c["invalid_codes"] += 1
                if key is not None and (not known or (ts is not None and (
                        newest[key] is None or ts > newest[key]))):
                    newest[key] = ts
            prev_batch_max = batch_max
            out[name][batch] = dict(c)
    return out


def current_state(data: Path, feed: str) -> dict[str, dict]:
    """Latest version per key (by updated_at) of valid records, deleted keys dropped."""
    key = FEEDS[feed].key
    latest: dict[str, dict] = {}
    for batch in BATCHES:
        for line in read_lines(data, feed, batch):
            rec = parse(line)
            if rec is None or rec.get(key) is None or rec.get("updated_at") is None:
                continue
            old = latest.get(rec[key])
            if old is None or rec["updated_at"] >= old["updated_at"]:
                latest[rec[key]] = rec
    return {k: r for k, r in latest.items() if r["op"] != "D"}


def _ts(s: str) -> datetime:
    return datetime.fromisoformat(s)


@pytest.fixture(scope="module")
def manifest(bundled_data: Path) -> dict:
    return json.loads((bundled_data / LANDING_DIR / MANIFEST_NAME).read_text())


@pytest.fixture(scope="module")
def counted(bundled_data: Path) -> dict:
    return recount(bundled_data)


# ---------------------------------------------------------------- code tables

def test_code_tables_are_consistent():
    assert len(codes.ICD10_CM) >= 40 and len(codes.CPT) >= 25
    assert len(codes.LOINC) >= 15 and len(codes.RXNORM) >= 20
    for c in codes.ICD10_CM.values():
        assert c.category == c.code[:3]
    assert codes.ICD10_CM["E11.9"].chronic and not codes.ICD10_CM["J18.9"].chronic
    for t in codes.LOINC.values():
        assert t.ref_low < t.ref_high and t.unit
    assert codes.is_valid_code("ICD-10-CM", "I10")
    assert codes.is_valid_code("LOINC", "2345-7")
    assert codes.is_valid_code("RxNorm", "314076")
    assert codes.is_valid_code("CPT", "99213")
    assert not codes.is_valid_code("ICD-10-CM", "ZZZ.99")
    assert not codes.is_valid_code("LOINC", None)
    with pytest.raises(ValueError):
        codes.is_valid_code("SNOMED", "38341003")
    with pytest.raises(AttributeError):  # frozen
        codes.ICD10_CM["I10"].chronic = False  # type: ignore[misc]


# ---------------------------------------------------------------- determinism and bundled data

def _all_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted((root / LANDING_DIR).rglob("*")) if p.is_file()}


def test_same_seed_and_scale_give_byte_identical_files(tmp_path: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    ma = generate(a, scale=0.05, seed=7)
    mb = generate(b, scale=0.05, seed=7)
    assert ma == mb
    files_a, files_b = _all_files(a), _all_files(b)
    assert len(files_a) == len(FEEDS) * len(BATCHES) + 1
    assert files_a == files_b
    assert generate(tmp_path / "c", scale=0.05, seed=8)["totals"] != ma["totals"]


def test_bundled_data_equals_a_fresh_generate(tmp_path: Path, bundled_data: Path,
                                              manifest: dict):
    fresh = generate(tmp_path, scale=1.0, seed=42)
    assert fresh == manifest
    for name in FEEDS:
        for batch in BATCHES:
            assert read_lines(tmp_path, name, batch) == read_lines(bundled_data, name, batch), \
                f"{name}_{batch} differs from generate(seed=42, scale=1)"


def test_gzip_headers_are_deterministic(bundled_data: Path):
    raw = Path(FEEDS["patients"].path(str(bundled_data), "001")).read_bytes()
    assert raw[:4] == b"\x1f\x8b\x08\x00"  # gzip, deflate, no FNAME flag
    assert raw[4:8] == b"\x00\x00\x00\x00"  # mtime 0


def test_bundled_data_is_small(bundled_data: Path):
    size = sum(p.stat().st_size for p in (bundled_data / LANDING_DIR).rglob("*") if p.is_file())
    assert size < 15 * 2**20


# ---------------------------------------------------------------- manifest

def test_manifest_shape(manifest: dict):
    assert manifest["format_version"] == 1
    assert manifest["generator"].startswith("medilake_lab ")
    assert manifest["seed"] == 42 and manifest["scale"] == 1.0
    assert manifest["as_of_date"] == AS_OF_DATE
    assert manifest["batches"] == list(BATCHES)
    assert set(manifest["feeds"]) == set(FEEDS)
    for kind in KINDS:
        assert manifest["definitions"][kind]
    assert manifest["totals"]["records"] == manifest["totals"]["valid_records"]
    for per_batch in manifest["feeds"].values():
        assert list(per_batch) == list(BATCHES)


def test_manifest_counts_match_an_independent_recount(manifest: dict, counted: dict):
    for name in FEEDS:
        for batch in BATCHES:
            got = {k: manifest["feeds"][name][batch][k] for k in KINDS}
            assert got == counted[name][batch], f"{name} {batch}"
    for kind in KINDS:
        assert manifest["totals"][kind] == sum(
            counted[n][b][kind] for n in FEEDS for b in BATCHES)


def test_every_kind_of_mess_is_present(counted: dict):
    for kind in MESS:
        feeds_with = [n for n in FEEDS if sum(counted[n][b][kind] for b in BATCHES) > 0]
        assert len(feeds_with) >= (4 if kind == "invalid_codes" else 5), (kind, feeds_with)
    for kind in ("late_arriving", "out_of_order", "exact_duplicates", "malformed_lines"):
        for batch in BATCHES[1:]:
            assert sum(counted[n][batch][kind] for n in FEEDS) > 0, (kind, batch)
    for name in FEEDS:  # the initial load holds no late arrivals, by definition
        assert counted[name][BATCHES[0]]["late_arriving"] == 0


def test_schema_drift(bundled_data: Path, manifest: dict):
    for name in FEEDS:
        for batch in BATCHES:
            drifted = name == DRIFT_FEED and batch >= DRIFT_FIRST_BATCH
            assert manifest["feeds"][name][batch]["drift_columns"] == (
                [DRIFT_COLUMN] if drifted else [])
            for line in read_lines(bundled_data, name, batch):
                rec = parse(line)
                if rec is not None:
                    assert list(rec) == FEEDS[name].columns + ([DRIFT_COLUMN] if drifted else [])


def test_lines_are_compact_json_in_column_order(bundled_data: Path):
    for name in FEEDS:
        for line in read_lines(bundled_data, name, "002"):
            rec = parse(line)
            if rec is not None:
                assert json.dumps(rec, separators=(",", ":")) == line


def test_fast_encoder_matches_json_dumps():
    rows = [("a\"b\\\n\u00e9", 1.5, None, 3, True, "%s %"), ("", 0.1 + 0.2, "x", -1, False, "")]
    names = ["s", "f", "n", "i", "b", "p"]
    cols = [list(c) for c in zip(*rows, strict=True)]
    assert encode_lines(names, cols) == [
        json.dumps(dict(zip(names, r, strict=True)), separators=(",", ":")) for r in rows]


def test_timestamps_dates_and_batch_windows(bundled_data: Path):
    for name, feed in FEEDS.items():
        date_cols = [c for c, t in feed.fields if t == "DATE"]
        ts_cols = [c for c, t in feed.fields if t == "TIMESTAMP"]
        for batch in BATCHES:
            hi = BATCH_WINDOWS[batch][1]
            for line in read_lines(bundled_data, name, batch):
                rec = parse(line)
                if rec is None:
                    continue
                for c in ts_cols:
                    assert rec[c] is None or TS.fullmatch(rec[c]), (name, c, rec[c])
                for c in date_cols:
                    assert rec[c] is None or DATE.fullmatch(rec[c]), (name, c, rec[c])
                if rec["updated_at"] is not None:  # nothing from after the batch window
                    assert rec["updated_at"][:10] <= hi


def _patient_updates(data: Path):
    """Yield ``(previous version, update)`` for each newer 'U' record of a patient seen before, in
    delivery order (duplicate, stale and malformed records skipped)."""
    newest: dict[str, dict] = {}
    for batch in BATCHES:
        for line in read_lines(data, "patients", batch):
            rec = parse(line)
            if rec is None or rec.get("patient_id") is None or rec.get("updated_at") is None:
                continue
            old = newest.get(rec["patient_id"])
            if old is not None and rec["updated_at"] <= old["updated_at"]:
                continue  # duplicate or stale
            if old is not None and rec["op"] == "U":
                yield old, rec
            newest[rec["patient_id"]] = rec


def test_demographic_changes_match_the_files(bundled_data: Path, manifest: dict):
    found = Counter()
    for old, rec in _patient_updates(bundled_data):
        if (rec["address_line"], rec["city"], rec["zip"]) != (old["address_line"], old["city"], old["zip"]):
            found["address"] += 1
        if (rec["insurance_payer"], rec["insurance_member_id"]) != (
                old["insurance_payer"], old["insurance_member_id"]):
            found["insurance"] += 1
        if rec["last_name"] != old["last_name"]:
            found["last_name"] += 1
        assert rec["updated_at"][:10] >= BATCH_WINDOWS["002"][0]
    assert dict(found) == manifest["demographic_changes"]
    assert all(n > 0 for n in found.values()) and len(found) == 3


TRACKED = ("first_name", "last_name", "address_line", "city", "state", "zip", "insurance_payer",
           "insurance_member_id")


def _null_change(old: dict, new: dict) -> str | None:
    """"to_null"/"from_null" when every tracked attribute that changes goes to / comes from null."""
    changed = [c for c in TRACKED if old[c] != new[c]]
    if changed and all(new[c] is None for c in changed):
        return "to_null"
    if changed and all(old[c] is None for c in changed):
        return "from_null"
    return None


def test_null_changes_match_the_files(bundled_data: Path, manifest: dict):
    found = Counter(kind for old, rec in _patient_updates(bundled_data) if (kind := _null_change(old, rec)))
    assert dict(found) == manifest["null_changes"]
    assert found["to_null"] > 0 and found["from_null"] > 0


def test_null_changes_are_versions_of_their_own(bundled_data: Path, manifest: dict):
    """Every change from or to null counted in the manifest is a version of silver.patients_scd as
    lab 02's rules build it (grader.reference.silver), so a ``<>`` comparison visibly misses it."""
    from medilake_lab.grader.reference.silver import patient_versions

    by_patient: dict[str, list[dict]] = {}
    for version in patient_versions(bundled_data).to_pylist():
        by_patient.setdefault(version["patient_id"], []).append(version)
    found = Counter(kind for versions in by_patient.values()
                    for old, new in zip(versions, versions[1:], strict=False) if (kind := _null_change(old, new)))
    assert dict(found) == manifest["null_changes"]


# ---------------------------------------------------------------- realism

def test_scale_grows_every_feed_proportionally(tmp_path: Path):
    small = generate(tmp_path / "s", scale=0.1)
    large = generate(tmp_path / "l", scale=0.2)
    for name in FEEDS:
        a = sum(small["feeds"][name][b]["lines"] for b in BATCHES)
        b = sum(large["feeds"][name][b]["lines"] for b in BATCHES)
        assert 1.6 < b / a < 2.5, (name, a, b)
    # lab 03 sizes its files by the manifest's scale, never below the bundled data's 1.0
    assert data_scale(tmp_path / "l") == 1.0 and data_scale(tmp_path / "missing") == 1.0
    manifest = tmp_path / "l" / LANDING_DIR / MANIFEST_NAME
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "scale": 10}))
    assert data_scale(tmp_path / "l") == 10.0


def test_every_lab_record_carries_the_loinc_unit_and_range(bundled_data: Path):
    checked = 0
    for batch in BATCHES:
        for line in read_lines(bundled_data, "lab_results", batch):
            rec = parse(line)
            if rec is None or rec["loinc_code"] not in codes.LOINC:
                continue
            t = codes.LOINC[rec["loinc_code"]]
            assert (rec["unit"], rec["ref_low"], rec["ref_high"]) == (t.unit, t.ref_low,
                                                                      t.ref_high)
            checked += 1
    assert checked > 20_000


def test_lab_values_are_partly_abnormal(bundled_data: Path):
    labs = [r for r in current_state(bundled_data, "lab_results").values()
            if r["loinc_code"] in codes.LOINC and r["value"] is not None]
    abnormal = sum(not (r["ref_low"] <= r["value"] <= r["ref_high"]) for r in labs)
    assert 0.10 <= abnormal / len(labs) <= 0.25


def test_encounter_mix_and_readmissions(bundled_data: Path):
    enc = list(current_state(bundled_data, "encounters").values())
    mix = Counter(r["encounter_class"] for r in enc)
    share = {k: v / len(enc) for k, v in mix.items()}
    assert 0.40 < share["ambulatory"] < 0.50 and 0.20 < share["outpatient"] < 0.30
    assert 0.14 < share["emergency"] < 0.22 and 0.09 < share["inpatient"] < 0.16
    stays = defaultdict(list)
    for r in enc:
        if r["encounter_class"] == "inpatient" and r["patient_id"]:
            stays[r["patient_id"]].append(r)
    index = readmitted = 0
    los = []
    for visits in stays.values():
        visits.sort(key=lambda r: r["admit_ts"])
        for i, r in enumerate(visits):
            if r["discharge_ts"] is None:
                continue
            index += 1
            out = _ts(r["discharge_ts"])
            los.append((out - _ts(r["admit_ts"])).total_seconds() / 86400)
            readmitted += any(out < _ts(x["admit_ts"]) <= out + timedelta(days=30)
                              for x in visits[i + 1:])
    assert 0.12 <= readmitted / index <= 0.24
    los.sort()
    assert 2 <= los[len(los) // 2] <= 4 and los[-1] > 15


def test_chronic_diagnoses_persist_and_acute_ones_resolve(bundled_data: Path):
    dx = list(current_state(bundled_data, "diagnoses").values())
    onsets = defaultdict(set)
    for r in dx:
        if r["icd10_code"] in codes.ICD10_CM and r["patient_id"]:
            assert r["is_chronic"] == ("Y" if codes.ICD10_CM[r["icd10_code"]].chronic else "N")
            if r["is_chronic"] == "Y":
                assert r["resolved_date"] is None
                onsets[(r["patient_id"], r["icd10_code"])].add(r["onset_date"])
    assert any(len(v) == 1 for v in onsets.values())
    assert all(len(v - {None}) <= 1 for v in onsets.values()), "chronic onset must be fixed"
    acute = [r for r in dx if r["is_chronic"] == "N"]
    assert sum(r["resolved_date"] is not None for r in acute) / len(acute) > 0.8


def test_some_medications_are_open_ended(bundled_data: Path):
    meds = list(current_state(bundled_data, "medications").values())
    active = sum(r["end_date"] is None or r["end_date"] > AS_OF_DATE for r in meds)
    assert 0.3 <= active / len(meds) <= 0.5
    assert any(r["end_date"] is not None for r in meds)


def test_identifiers_are_obviously_synthetic(bundled_data: Path):
    for rec in current_state(bundled_data, "patients").values():
        assert rec["mrn"] is None or rec["mrn"].startswith("MRN-SYN-")
        assert rec["phone"][3:].startswith("-555-01")
        assert rec["insurance_member_id"] is None or rec["insurance_member_id"].startswith(
            "MBR-SYN-")


def test_cli_generate(tmp_path: Path):
    from typer.testing import CliRunner

    from medilake_lab.cli import app

    result = CliRunner().invoke(app, ["generate", "--scale", "0.05", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    m = json.loads((tmp_path / LANDING_DIR / MANIFEST_NAME).read_text())
    assert m["totals"]["lines"] > 1000 and "Wrote" in result.output


# ---------------------------------------------------------------- atomic, bounded generation

def test_a_failed_generate_leaves_the_previous_data_as_it_was(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch):
    import medilake_lab.datagen as datagen

    generate(tmp_path, scale=0.02, seed=7)
    before = _all_files(tmp_path)
    written = []

    def full_disk(path: Path, lines: list[str]) -> dict:
        if len(written) == 5:
            raise OSError(28, "No space left on device")
        written.append(path)
        return real(path, lines)

    real = datagen.write_file
    monkeypatch.setattr(datagen, "write_file", full_disk)
    with pytest.raises(OSError, match="No space left"):
        generate(tmp_path, scale=0.02, seed=8)
    assert written and all(".generating-" in str(p) for p in written), "files go to a temporary folder"
    assert _all_files(tmp_path) == before, "no file of the failed run is mixed in"
    assert [p.name for p in tmp_path.iterdir()] == [LANDING_DIR], "the temporary folder is removed"


def test_generate_replaces_the_whole_landing_folder(tmp_path: Path):
    stale = tmp_path / LANDING_DIR / "patients" / "patients_009.json.gz"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"from an earlier run")
    manifest = generate(tmp_path, scale=0.02, seed=7)
    assert not stale.exists()
    assert json.loads((tmp_path / LANDING_DIR / MANIFEST_NAME).read_text()) == manifest
    assert len(_all_files(tmp_path)) == len(FEEDS) * len(BATCHES) + 1


@pytest.mark.parametrize("scale", ["inf", "nan", "0", "-1", "30.5", "1e9"])
def test_cli_generate_rejects_a_scale_out_of_range(scale: str, tmp_path: Path):
    from typer.testing import CliRunner

    from medilake_lab.cli import app

    result = CliRunner().invoke(app, ["generate", "--scale", scale, "--out", str(tmp_path / "d")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    message = " ".join(result.stderr.replace("│", " ").split())
    assert "scale must be a number from 0.01 to 30" in message and "2.2 MB of gzip files" in message
    assert not (tmp_path / "d").exists()


def test_cli_generate_refuses_the_bundled_data_without_force(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch):
    from typer.testing import CliRunner

    from medilake_lab.cli import app

    monkeypatch.setenv("MEDILAKE_HOME", str(tmp_path))
    monkeypatch.delenv("MEDILAKE_DATA", raising=False)
    bundled = Path(FEEDS["patients"].path(str(tmp_path / "data"), BATCHES[0]))
    bundled.parent.mkdir(parents=True)
    bundled.write_bytes(b"the bundled file")
    result = CliRunner().invoke(app, ["generate", "--scale", "0.02"])
    assert result.exit_code == 2, result.output
    assert f"{tmp_path / 'data'} is the bundled data/" in " ".join(result.stderr.split())
    assert "--force" in result.stderr and bundled.read_bytes() == b"the bundled file"
    result = CliRunner().invoke(app, ["generate", "--scale", "0.02", "--force"])
    assert result.exit_code == 0, result.output
    assert bundled.read_bytes() != b"the bundled file"


def test_cli_generate_into_a_folder_it_cannot_write_is_one_error_line(tmp_path: Path):
    """A target that cannot be created (a plain file stands where its parent folder should be) is
    a DataError naming the folder, not a traceback."""
    from typer.testing import CliRunner

    from medilake_lab.cli import app

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file, not a folder")
    result = CliRunner().invoke(app, ["generate", "--scale", "0.01", "--out", str(blocker / "data")])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    message = " ".join(result.stderr.replace("│", " ").split())
    assert f"cannot write the raw feeds to {blocker / 'data'}" in message
    assert blocker.read_text() == "a file, not a folder"
