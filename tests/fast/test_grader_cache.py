"""The grader's reference cache (medilake_lab.grader.cache), no JVM: a second grade reads the cached
references instead of the raw files; a raw file added or changed, another set of erased patients
or another version of the reference code gives a new computation; a damaged entry or a folder that
cannot be written is recomputed or skipped, never an error."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from fast.conftest import copy_of
from medilake_lab import grader
from medilake_lab.contract import feeds
from medilake_lab.grader import cache
from medilake_lab.grader.reference import raw, silver

FEED = "encounters"


@pytest.fixture()
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every raw file the reference readers open (silver's parse and raw's counts), in order."""
    opened: list[Path] = []
    real = raw.lines

    def counting(path: Path):
        opened.append(Path(path))
        return real(path)
    monkeypatch.setattr(raw, "lines", counting)
    monkeypatch.setattr(silver, "lines", counting)
    cache.forget_memory()
    yield opened
    cache.forget_memory()


@pytest.fixture()
def data(fast_data: Path, tmp_path: Path) -> Path:
    """A private copy of the fast raw data that a test may change."""
    return Path(shutil.copytree(fast_data, tmp_path / "data"))


def _next_run() -> None:
    """What a new `medilake_lab check` process starts with: nothing in memory."""
    cache.forget_memory()


def test_a_second_run_reads_the_cache_not_the_raw_files(data: Path, reads: list[Path]) -> None:
    first = silver.records(FEED, data)
    assert reads and all(p.parent.name == FEED for p in reads)
    assert list(cache.folder().glob(f"*{cache.SUFFIX}"))
    parsed = len(reads)
    _next_run()
    again = silver.records(FEED, data)
    assert len(reads) == parsed  # no raw file opened again
    assert again.equals(first)


def test_a_second_grade_opens_no_raw_file_and_decides_the_same(silver_warehouse: Path, fast_data: Path,
                                                               tmp_path: Path, reads: list[Path]) -> None:
    warehouse = copy_of(silver_warehouse, tmp_path)
    first = grader.grade("02", warehouse, fast_data)
    assert reads, "the first grade parses the raw files"
    opened = len(reads)
    _next_run()
    second = grader.grade("02", warehouse, fast_data)
    assert len(reads) == opened
    assert [(r.id, r.status, r.finding) for r in second.results] == [(r.id, r.status, r.finding) for r in first.results]
    assert first.ok


def test_a_delivered_file_is_read_and_changes_the_result(data: Path, reads: list[Path]) -> None:
    before = silver.records(FEED, data)
    facts = raw.delivered(FEED, data)
    folder = data / feeds.LANDING_DIR / FEED
    shutil.copy(folder / f"{FEED}_003{feeds.FILE_SUFFIX}", folder / f"{FEED}_004{feeds.FILE_SUFFIX}")
    _next_run()
    reads.clear()
    after = silver.records(FEED, data)
    assert reads, "the new file set is parsed again"
    assert "004" in set(after["_batch"].to_pylist()) and after.num_rows > before.num_rows
    reads.clear()
    assert set(raw.delivered(FEED, data)) == set(facts) | {"004"}
    assert [p.name for p in reads] == [f"{FEED}_004{feeds.FILE_SUFFIX}"]  # the other files' counts are cached


def test_a_file_delivered_during_a_grade_is_not_stored_under_the_older_key(data: Path, reads: list[Path],
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`medilake_lab deliver` lands batch 004 after a grade stamped the feed's files, before it parsed
    them: the parse stored under that stamp holds batches 001-003 only, and the next grade parses
    the four files."""
    folder = data / feeds.LANDING_DIR / FEED
    stamp = silver.file_stamp
    delivered_meanwhile = []

    def stamp_then_deliver(feed: str, where=None):
        stamped = stamp(feed, where)
        if not delivered_meanwhile:
            shutil.copy(folder / f"{FEED}_003{feeds.FILE_SUFFIX}", folder / f"{FEED}_004{feeds.FILE_SUFFIX}")
            delivered_meanwhile.append("004")
        return stamped
    monkeypatch.setattr(silver, "file_stamp", stamp_then_deliver)
    during = silver.records(FEED, data)
    assert delivered_meanwhile and set(during["_batch"].to_pylist()) == set(feeds.BATCHES)
    monkeypatch.setattr(silver, "file_stamp", stamp)
    _next_run()
    reads.clear()
    after = silver.records(FEED, data)
    assert reads, "the four files are a new key: parsed"
    assert "004" in set(after["_batch"].to_pylist())


def test_a_changed_file_is_read_again(data: Path, reads: list[Path]) -> None:
    path = data / feeds.LANDING_DIR / FEED / f"{FEED}_002{feeds.FILE_SUFFIX}"
    before = raw.delivered(FEED, data)["002"]
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        text = fh.read()
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(text + "not json\n")
    _next_run()
    reads.clear()
    after = raw.delivered(FEED, data)["002"]
    assert [p.name for p in reads] == [path.name]
    assert (after.lines, after.malformed) == (before.lines + 1, before.malformed + 1)
    assert silver.malformed(FEED, data)["_raw"].to_pylist().count("not json") == 1


def test_another_erased_set_is_computed_not_read(data: Path, reads: list[Path]) -> None:
    everyone = silver.latest_versions(FEED, data)
    patient = everyone["patient_id"][0].as_py()
    facts = raw.delivered(FEED, data)
    _next_run()
    reads.clear()
    erased = frozenset({patient})
    without = silver.latest_versions(FEED, data, erased)
    assert patient not in set(without["patient_id"].to_pylist()) and without.num_rows < everyone.num_rows
    counted = raw.delivered(FEED, data, erased)
    assert {p.name for p in reads} == {Path(f.path).name for f in facts.values()}  # raw counts read the files again
    assert sum(f.erased for f in counted.values()) > 0
    _next_run()
    reads.clear()
    assert silver.latest_versions(FEED, data, erased).equals(without)
    assert raw.delivered(FEED, data, erased) == counted
    assert not reads


def test_a_code_change_gives_new_keys(data: Path, reads: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    silver.records(FEED, data)
    _next_run()
    reads.clear()
    monkeypatch.setattr(cache, "code_hash", lambda: "another version of the reference code")
    silver.records(FEED, data)
    assert reads, "entries of other code are not read"


def test_the_code_hash_covers_the_reference_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = Path(cache.__file__).resolve().parent.parent
    copy = tmp_path / "medilake_lab"
    shutil.copytree(package / "grader" / "reference", copy / "grader" / "reference")
    for source in cache.SOURCES:
        (copy / source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(package / source, copy / source)
    monkeypatch.setattr(cache, "_PACKAGE", copy)
    cache.code_hash.cache_clear()
    try:
        before = cache.code_hash()
        with open(copy / "grader" / "reference" / "silver.py", "a") as fh:
            fh.write("\n# a change of the rules\n")
        cache.code_hash.cache_clear()
        assert cache.code_hash() != before
    finally:
        cache.code_hash.cache_clear()


@pytest.mark.parametrize("damage", [b"", b"not a pickle", b"\x80\x05truncated"])
def test_a_damaged_entry_is_recomputed(data: Path, reads: list[Path], damage: bytes) -> None:
    first = silver.records(FEED, data)
    entries = list(cache.folder().glob(f"*{cache.SUFFIX}"))
    for entry in entries:
        entry.write_bytes(damage)
    _next_run()
    reads.clear()
    assert silver.records(FEED, data).equals(first)
    assert reads, "the damaged entry was not used"
    _next_run()
    reads.clear()
    silver.records(FEED, data)
    assert not reads, "the recomputed entry replaced the damaged one"


def test_an_entry_of_another_key_is_not_used(tmp_path: Path) -> None:
    calls = []
    assert cache.cached("test.answer", (1,), lambda: calls.append(1) or "one") == "one"
    entry = next(cache.folder().glob(f"*{cache.SUFFIX}"))
    cache.cached("test.answer", (2,), lambda: "two")
    other = next(p for p in cache.folder().glob(f"*{cache.SUFFIX}") if p != entry)
    shutil.copy(other, entry)  # the file of key 1 now holds key 2's result
    _next_run()
    assert cache.cached("test.answer", (1,), lambda: calls.append(1) or "one") == "one"
    assert len(calls) == 2


def test_an_unwritable_cache_folder_only_means_no_cache(data: Path, reads: list[Path],
                                                        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocker = tmp_path / "state-is-a-file"
    blocker.write_text("")
    monkeypatch.setenv("MEDILAKE_STATE", str(blocker))
    first = silver.records(FEED, data)
    _next_run()
    assert silver.records(FEED, data).equals(first)


def test_a_key_holds_only_stable_values() -> None:
    same = cache.key_text("f", (frozenset({"a", "b"}), "/x"))
    assert cache.key_text("f", (frozenset({"b", "a"}), Path("/x"))) == same
    with pytest.raises(TypeError, match="cannot hold"):
        cache.key_text("f", (object(),))
