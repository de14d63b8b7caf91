"""Lab 05's deliveries on demand (no Spark): ``prepare_landing`` copies the data folder into the
warehouse's landing volume without touching either side's existing files, ``deliver`` writes the
next batch deterministically, and its manifest counts agree with counts recomputed here from the
written lines with plain ``json`` (the manifest's definitions, not the code under test)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medilake_lab import deliver, prepare_landing
from medilake_lab.cli import app
from medilake_lab.contract.codes import CODE_TABLES
from medilake_lab.contract.feeds import (
    BATCHES,
    DELIVERY_DRIFT_COLUMN,
    DELIVERY_DRIFT_FEED,
    FEEDS,
    LANDING_DIR,
    MANIFEST_NAME,
    delivered_batches,
)
from medilake_lab.errors import DataError
from medilake_lab.grader.reference import raw
from medilake_lab.runtime import config

ROOT = Path(__file__).resolve().parents[2]
SYNTHEA = Path(os.environ.get("MEDILAKE_SYNTHEA_SAMPLE", ROOT.parent / "shared" / "data" / "synthea-csv"))
KINDS = ("lines", "valid_records", "malformed_lines", "exact_duplicates", "inserts", "newer_versions",
         "out_of_order", "late_arriving", "deletes", "null_required", "invalid_codes")


def _files(folder: Path) -> dict[str, str]:
    """Relative path → SHA-256 of every file under ``folder``."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@lru_cache(maxsize=256)
def _lines(data: Path, feed: str, batch: str) -> tuple[str, ...]:
    """The lines of one batch file (cached: every test volume is a new folder, written once)."""
    path = Path(FEEDS[feed].path(str(data), batch))
    if not path.exists():
        return ()
    text = gzip.decompress(path.read_bytes()).decode("utf-8")
    return tuple(text.split("\n")[:-1])


def _object(line: str) -> dict | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _recount(data: Path, feed_name: str, batches: list[str]) -> dict[str, dict[str, int]]:
    """Every batch's counts, straight from the manifest's definitions (DEFINITIONS' sentences)."""
    feed = FEEDS[feed_name]
    codes = set(CODE_TABLES[feed.code_system]) if feed.code_system else None
    seen: set[str] = set()
    newest: dict = {}
    previous_max = None
    out = {}
    for batch in batches:
        c = dict.fromkeys(KINDS, 0)
        batch_max = None
        for line in _lines(data, feed_name, batch):
            c["lines"] += 1
            record = _object(line)
            if record is None:
                c["malformed_lines"] += 1
                continue
            c["valid_records"] += 1
            ts = record.get("updated_at")
            if ts is not None and (batch_max is None or ts > batch_max):
                batch_max = ts
            if line in seen:
                c["exact_duplicates"] += 1
                continue
            seen.add(line)
            op, key = record.get("op"), record.get(feed.key)
            known = key is not None and key in newest
            if op == "I":
                c["inserts"] += 1
                c["late_arriving"] += previous_max is not None and ts is not None and ts < previous_max
            elif op == "U":
                c["newer_versions"] += known
                c["out_of_order"] += known and newest[key] is not None and ts is not None and ts < newest[key]
            elif op == "D":
                c["deletes"] += 1
            c["null_required"] += any(record.get(f) is None for f in feed.required)
            code = record.get(feed.code_column) if feed.code_column else None
            c["invalid_codes"] += codes is not None and code is not None and code not in codes
            if key is not None and (not known or (ts is not None and (newest[key] is None or ts > newest[key]))):
                newest[key] = ts
        previous_max = batch_max
        out[batch] = c
    return out


def _assert_manifest_is_recounted(volume: Path) -> dict:
    manifest = json.loads((volume / LANDING_DIR / MANIFEST_NAME).read_text())
    for name in FEEDS:
        recounted = _recount(volume, name, manifest["batches"])
        for batch, counts in recounted.items():
            stated = {k: manifest["feeds"][name][batch][k] for k in KINDS}
            assert stated == counts, f"{name} {batch}: manifest {stated} != recounted {counts}"
        facts = raw.delivered(name, volume)  # the grader's reference reader takes the volume as-is
        assert list(facts) == manifest["batches"]
        assert {b: (f.lines, f.malformed) for b, f in facts.items()} == {
            b: (recounted[b]["lines"], recounted[b]["malformed_lines"]) for b in manifest["batches"]}
    totals = {k: sum(manifest["feeds"][n][b][k] for n in FEEDS for b in manifest["batches"]) for k in KINDS}
    assert {k: manifest["totals"][k] for k in KINDS} == totals
    return manifest


@lru_cache(maxsize=256)
def _records(volume: Path, feed: str, batch: str) -> tuple[dict, ...]:
    """The JSON objects of one batch file, in order (malformed lines left out)."""
    return tuple(r for r in map(_object, _lines(volume, feed, batch)) if r is not None)


@pytest.fixture(scope="module")
def bundled_files() -> dict[str, str]:
    """The bundled data folder's files (path → SHA-256) before any delivery."""
    return _files(config.data_dir())


@pytest.fixture(scope="module")
def bundled_volume(tmp_path_factory: pytest.TempPathFactory, bundled_files: dict[str, str]) -> Path:
    """Batches 004 and 005 delivered from the bundled data (read-only for the tests)."""
    warehouse = tmp_path_factory.mktemp("wh-bundled")
    deliver(warehouse)
    deliver(warehouse)
    return config.volume_dir(warehouse)


# ----------------------------------------------------------------------------------- the volume

def test_volume_and_checkpoint_paths(tmp_path: Path) -> None:
    assert config.volume_dir(tmp_path) == tmp_path.resolve() / "volumes"
    assert config.checkpoint_dir("bronze_encounters", tmp_path) == (
        tmp_path.resolve() / "volumes" / "checkpoints" / "bronze_encounters")
    with pytest.raises(ValueError, match="one folder name"):
        config.checkpoint_dir("a/b", tmp_path)


def test_prepare_copies_once_and_never_overwrites(fast_data: Path, tmp_path: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in fast_data.rglob("*")}
    source = _files(fast_data)
    volume = prepare_landing(fast_data, tmp_path)
    assert volume == config.volume_dir(tmp_path)
    assert _files(volume) == source
    mine = Path(FEEDS["patients"].path(str(volume), "001"))
    mine.write_bytes(b"the learner's own bytes")
    (volume / LANDING_DIR / MANIFEST_NAME).write_text("{}")
    assert prepare_landing(fast_data, tmp_path) == volume
    assert mine.read_bytes() == b"the learner's own bytes"
    assert (volume / LANDING_DIR / MANIFEST_NAME).read_text() == "{}"
    deliver(tmp_path / "other", fast_data)
    assert _files(fast_data) == source, "the data folder was written to"
    assert {p: p.stat().st_mtime_ns for p in fast_data.rglob("*")} == before


def test_files_are_read_in_batch_order(fast_data: Path, tmp_path: Path) -> None:
    """A file source reads the oldest file first, by modification time in milliseconds: every
    batch of a feed must be strictly newer than the one before, copies and deliveries alike."""
    deliver(tmp_path, fast_data)
    volume = config.volume_dir(tmp_path)
    for name, feed in FEEDS.items():
        stamps = [Path(feed.path(str(volume), b)).stat().st_mtime_ns // 1_000_000
                  for b in delivered_batches(volume, name)]
        assert len(stamps) == 4 and stamps == sorted(set(stamps)), (name, stamps)


def test_bundled_data_is_only_read(bundled_volume: Path, bundled_files: dict[str, str]) -> None:
    assert _files(config.data_dir()) == bundled_files
    batch_files = {k: v for k, v in bundled_files.items() if k.endswith(".json.gz")}
    assert {k: v for k, v in _files(bundled_volume).items() if k in batch_files} == batch_files


def test_delivered_batches_skip_temporary_names(tmp_path: Path) -> None:
    folder = tmp_path / LANDING_DIR / "lab_results"
    folder.mkdir(parents=True)
    for name in ("lab_results_010.json.gz", "lab_results_002.json.gz", ".lab_results_011.json.gz.tmp",
                 "_lab_results_012.json.gz", "lab_results_abc.json.gz", "encounters_003.json.gz"):
        (folder / name).write_bytes(b"")
    assert delivered_batches(tmp_path, "lab_results") == ["002", "010"]
    assert delivered_batches(tmp_path, "encounters") == []


def test_prepare_without_raw_files_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=str(tmp_path / "empty")):
        prepare_landing(tmp_path / "empty", tmp_path / "wh")


def test_same_input_gives_identical_files(fast_data: Path, tmp_path: Path) -> None:
    for warehouse in ("a", "b"):
        deliver(tmp_path / warehouse, fast_data)
        deliver(tmp_path / warehouse, fast_data)
    first, second = _files(tmp_path / "a" / "volumes"), _files(tmp_path / "b" / "volumes")
    assert first == second
    assert "landing/lab_results/lab_results_005.json.gz" in first
    assert not [name for name in first if Path(name).name.startswith((".", "_"))], "a temporary file was left"


# ------------------------------------------------------------------------ what a batch holds

def test_manifest_counts_equal_an_independent_recount(fast_data: Path, tmp_path: Path) -> None:
    done = [deliver(tmp_path, fast_data) for _ in range(2)]
    assert [d.batch for d in done] == ["004", "005"]
    manifest = _assert_manifest_is_recounted(config.volume_dir(tmp_path))
    assert manifest["batches"] == [*BATCHES, "004", "005"]
    assert manifest["batch_windows"]["004"]["changes_from"] > manifest["batch_windows"]["003"]["changes_to"]
    assert manifest["as_of_date"] == manifest["batch_windows"]["005"]["changes_to"] == done[1].window[1]
    for name in FEEDS:
        assert done[1].counts[name]["lines"] == manifest["feeds"][name]["005"]["lines"]


def test_bundled_deliveries_carry_every_kind_of_mess(bundled_volume: Path) -> None:
    manifest = _assert_manifest_is_recounted(bundled_volume)
    for batch in ("004", "005"):
        per_feed = {n: manifest["feeds"][n][batch] for n in FEEDS}
        for name, counts in per_feed.items():
            assert counts["malformed_lines"] >= 1 and counts["exact_duplicates"] >= 1, (name, batch)
        for kind in ("late_arriving", "newer_versions", "deletes", "null_required", "invalid_codes"):
            assert sum(c[kind] for c in per_feed.values()) > 0, (kind, batch)
        assert per_feed["encounters"]["newer_versions"] > 0 and per_feed["patients"]["newer_versions"] > 0


def test_drift_column_from_005_on_only(bundled_volume: Path) -> None:
    manifest = json.loads((bundled_volume / LANDING_DIR / MANIFEST_NAME).read_text())
    for name in FEEDS:
        for batch in manifest["batches"]:
            has = {DELIVERY_DRIFT_COLUMN in r for r in _records(bundled_volume, name, batch)}
            expected = name == DELIVERY_DRIFT_FEED and batch >= "005"
            assert has == {expected}, (name, batch)
            assert (DELIVERY_DRIFT_COLUMN in manifest["feeds"][name][batch]["drift_columns"]) == expected
    values = {r[DELIVERY_DRIFT_COLUMN] for r in _records(bundled_volume, DELIVERY_DRIFT_FEED, "005")}
    assert values and values <= {"blood", "urine", "serum"}


def test_new_ids_never_collide_with_earlier_ones(bundled_volume: Path) -> None:
    manifest = json.loads((bundled_volume / LANDING_DIR / MANIFEST_NAME).read_text())
    for name, feed in FEEDS.items():
        earlier: set = set()
        lines_so_far: set[str] = set()
        for batch in manifest["batches"]:
            lines = _lines(bundled_volume, name, batch)
            records = [r for line in lines if line not in lines_so_far and (r := _object(line)) is not None]
            if batch >= "004":  # re-delivered lines (exact duplicates) left out
                inserted = {r[feed.key] for r in records if r.get("op") == "I" and r.get(feed.key)}
                assert inserted and not inserted & earlier, (name, batch, sorted(inserted & earlier)[:3])
                updated = {r[feed.key] for r in records if r.get("op") in ("U", "D")} - inserted
                assert updated <= earlier, (name, batch)
            earlier |= {r[feed.key] for r in records if r.get(feed.key)}
            lines_so_far.update(lines)


def test_clinical_values_are_plausible(bundled_volume: Path) -> None:
    old = {n: [r for b in BATCHES for r in _records(bundled_volume, n, b)] for n in ("patients", "lab_results")}
    patients = {r["patient_id"] for r in old["patients"]}
    for batch in ("004", "005"):
        labs = [r for r in _records(bundled_volume, "lab_results", batch) if r.get("op") == "I"]
        ranged = [r for r in labs if isinstance(r.get("value"), float)
                  and r.get("ref_low") is not None and r.get("ref_high") is not None]
        abnormal = sum(not r["ref_low"] <= r["value"] <= r["ref_high"] for r in ranged)
        assert 0.15 <= abnormal / len(ranged) <= 0.25, abnormal / len(ranged)
        known = {(r["loinc_code"], r["test_name"], r["unit"], r["ref_low"], r["ref_high"])
                 for r in old["lab_results"]}
        assert {(r["loinc_code"], r["test_name"], r["unit"], r["ref_low"], r["ref_high"])
                for r in ranged if r["loinc_code"] in CODE_TABLES["LOINC"]} <= known
        encounters = [r for r in _records(bundled_volume, "encounters", batch) if r.get("op") != "D"]
        assert all(r["discharge_ts"] > r["admit_ts"] for r in encounters
                   if r.get("discharge_ts") and r.get("admit_ts"))
        assert {r["patient_id"] for r in encounters if r.get("patient_id")} <= patients
        window = json.loads((bundled_volume / LANDING_DIR / MANIFEST_NAME).read_text())["batch_windows"][batch]
        new = [r for r in encounters if r.get("op") == "I" and r["updated_at"][:10] >= window["changes_from"]]
        assert new and all(r["updated_at"][:10] <= window["changes_to"] for r in encounters)


# ------------------------------------------------------------------------------ other sources

def test_synthea_import_delivers_too(tmp_path: Path) -> None:
    if not (SYNTHEA / "patients.csv").is_file():
        pytest.skip(f"Synthea sample not found at {SYNTHEA} (set MEDILAKE_SYNTHEA_SAMPLE)")
    from medilake_lab.importers import import_synthea

    import_synthea(SYNTHEA, tmp_path / "synthea")
    deliver(tmp_path / "wh", tmp_path / "synthea")
    deliver(tmp_path / "wh", tmp_path / "synthea")
    manifest = _assert_manifest_is_recounted(config.volume_dir(tmp_path / "wh"))
    assert manifest["feeds"]["encounters"]["004"]["inserts"] > 0
    assert manifest["feeds"]["diagnoses"]["005"]["drift_columns"] == ["source_code", "source_code_system"]


# ---------------------------------------------------------------------------------- errors, CLI

@pytest.mark.parametrize("content", ['{"batches": ["001"', '{"batches": []}', "[]"])
def test_damaged_manifest_is_a_clear_error(fast_data: Path, tmp_path: Path, content: str) -> None:
    manifest = prepare_landing(fast_data, tmp_path) / LANDING_DIR / MANIFEST_NAME
    manifest.write_text(content)
    with pytest.raises(DataError, match=f"manifest {manifest} is damaged"):
        deliver(tmp_path, fast_data)
    result = CliRunner().invoke(app, ["deliver", "-w", str(tmp_path)])
    assert result.exit_code == 1 and f"manifest {manifest} is damaged" in result.output.replace("\n", "")


def test_missing_delivered_file_is_named(fast_data: Path, tmp_path: Path) -> None:
    missing = deliver(tmp_path, fast_data).files["procedures"]
    missing.unlink()
    with pytest.raises(DataError, match=f"{missing} is missing"):
        deliver(tmp_path, fast_data)


def test_cli_delivers_count_batches(fast_data: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["deliver", "-w", str(tmp_path), "--data", str(fast_data), "--count", "2"])
    assert result.exit_code == 0, result.output
    assert "batch 004" in result.output and "batch 005" in result.output
    assert all(name in result.output for name in FEEDS)
    assert json.loads((config.volume_dir(tmp_path) / LANDING_DIR / MANIFEST_NAME).read_text())["batches"][-1] == "005"
