"""Raw bytes the kit does not expect (issue #15 item 4): the grader's reference readers decode
the feeds the way Spark's JSON reader does — a line with bytes that are not UTF-8 is one malformed
line — and a truncated or damaged ``.gz`` is a DataError naming the file and the last line read,
never a bare UnicodeDecodeError or "Compressed file ended". A bronze that keeps such a line's bytes
verbatim (as Spark writes them) is graded. Fast: no JVM."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable, QueryBuilder

from fast import deltafix as dx
from fast.medallion import bronze_batch, build_bronze
from medilake_lab import grader
from medilake_lab.contract import feeds
from medilake_lab.contract.feeds import FEEDS
from medilake_lab.contract.labs import get_lab
from medilake_lab.datagen import generate
from medilake_lab.errors import DataError
from medilake_lab.grader import Status
from medilake_lab.grader.delta import open_table
from medilake_lab.grader.reference import raw, silver

BAD_LINE = b'{"patient_id": "PAT\xff\xfe01", "op": "I"}\n'


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("clean")
    generate(data, scale=0.02, seed=3)
    return data


def _damaged_copy(clean: Path, tmp_path: Path, change) -> tuple[Path, Path]:
    """A copy of ``clean`` whose patients batch 002 is ``change(bytes) -> bytes`` of its
    uncompressed content; returns ``(data folder, damaged file)``."""
    data = Path(shutil.copytree(clean, tmp_path / "data"))
    path = Path(FEEDS["patients"].path(str(data), "002"))
    path.write_bytes(change(gzip.decompress(path.read_bytes())))
    return data, path


def _gz(content: bytes) -> bytes:
    return gzip.compress(content)


def test_a_line_that_is_not_utf8_is_one_malformed_line(clean: Path, tmp_path: Path) -> None:
    data, _ = _damaged_copy(clean, tmp_path, lambda text: _gz(text + BAD_LINE))
    before, after = raw.delivered("patients", clean)["002"], raw.delivered("patients", data)["002"]
    assert (after.lines, after.malformed) == (before.lines + 1, before.malformed + 1)
    bad = silver.malformed("patients", data).to_pylist()
    assert len(bad) == len(silver.malformed("patients", clean)) + 1
    [kept] = [row for row in bad if "PAT" in row["_raw"] and "\ufffd" in row["_raw"]]
    assert kept["_raw"] == BAD_LINE.decode("utf-8", "replace").rstrip("\n") and kept["_batch"] == "002"
    assert silver.records("patients", data).num_rows == silver.records("patients", clean).num_rows


def test_utf8_text_beyond_ascii_is_read_as_it_is(clean: Path, tmp_path: Path) -> None:
    line = '{"patient_id": "PATÉ01", "op": "I", "first_name": "Zoë"}\n'.encode()
    data, _ = _damaged_copy(clean, tmp_path, lambda text: _gz(text + line))
    before, after = raw.delivered("patients", clean)["002"], raw.delivered("patients", data)["002"]
    assert (after.lines, after.malformed) == (before.lines + 1, before.malformed)


@pytest.mark.parametrize("damage", ["truncated", "not gzip"])
def test_a_damaged_gz_names_the_file_and_the_line(clean: Path, tmp_path: Path, damage: str) -> None:
    cut = (lambda text: _gz(text)[: len(_gz(text)) // 2]) if damage == "truncated" else (lambda text: text)
    data, path = _damaged_copy(clean, tmp_path, cut)
    for read in (lambda: raw.delivered("patients", data), lambda: silver.malformed("patients", data)):
        with pytest.raises(DataError) as caught:
            read()
        message = str(caught.value)
        assert message.startswith(f"{path}: cannot be read ")
        assert ("after line " if damage == "truncated" else "before its first line") in message
        assert "truncated or damaged" in message and "medilake_lab generate" in message


# ------------------------------------------------------------ bronze text that is not UTF-8

def _verbatim(rows: pa.Table, line: bytes, *, keep: bool = True) -> pa.Table:
    """``rows`` (a bronze batch) with the ``_corrupt_record`` of ``line`` holding its bytes as they
    are, the way Spark writes a malformed line into a string column (no replacement); or, with
    ``keep=False``, without that row."""
    shown = line.decode("utf-8", "replace")
    values = rows["_corrupt_record"].to_pylist()
    assert values.count(shown) == 1
    if not keep:
        return rows.filter(pa.array([value != shown for value in values]))
    raw_bytes = [line if value == shown else None if value is None else value.encode() for value in values]
    column = pa.array(raw_bytes, pa.binary()).view(pa.string())
    return rows.set_column(rows.schema.get_field_index("_corrupt_record"), "_corrupt_record", column)


def _bronze_with_bytes(data: Path, warehouse: Path, *, keep_bad_line: bool = True) -> Path:
    """Lab 01's bronze for ``data`` (delta-rs, as the solution leaves it) whose patients batch 002
    keeps :data:`BAD_LINE` verbatim (or, ``keep_bad_line=False``, drops it); returns the table."""
    build_bronze(warehouse, data)
    path = dx.table_dir(warehouse, "bronze.patients")
    shutil.rmtree(path)
    for i, batch in enumerate(feeds.BATCHES):
        rows = bronze_batch("patients", batch, data)
        if batch == "002":
            rows = _verbatim(rows, BAD_LINE.rstrip(b"\n"), keep=keep_bad_line)
        dx.write(path, rows, merge_schema=i > 0, operation="CREATE TABLE AS SELECT" if i == 0 else None)
    return path


def test_bronze_keeping_bytes_that_are_not_utf8_is_graded(clean: Path, tmp_path: Path) -> None:
    data, _ = _damaged_copy(clean, tmp_path, lambda text: _gz(text + BAD_LINE))
    table = _bronze_with_bytes(data, tmp_path / "wh")
    with pytest.raises(Exception, match="non UTF-8 data"):  # what delta-rs alone says of the column
        pa.RecordBatchReader.from_stream(QueryBuilder().register("t", DeltaTable(str(table)))
                                         .execute("SELECT _corrupt_record FROM t")).read_all()
    report = grader.grade("01", tmp_path / "wh", data)
    failures = [(r.id, r.finding) for r in report.results if r.status is not Status.PASS]
    assert failures == [] and report.total == len(get_lab("01").checks)
    kept = open_table("bronze.patients", tmp_path / "wh").query(
        "SELECT _corrupt_record AS r FROM t WHERE _batch_id = '002' AND _corrupt_record LIKE '%\"op\"%'")
    assert kept["r"].to_pylist() == [BAD_LINE.decode("utf-8", "replace").rstrip("\n")], "U+FFFD per bad byte"


def test_bronze_that_dropped_the_line_fails_with_the_counts(clean: Path, tmp_path: Path) -> None:
    data, _ = _damaged_copy(clean, tmp_path, lambda text: _gz(text + BAD_LINE))
    _bronze_with_bytes(data, tmp_path / "wh", keep_bad_line=False)
    report = grader.grade("01", tmp_path / "wh", data)
    found = {r.id: (r.status, r.finding) for r in report.results}
    lines = sum(facts.lines for facts in raw.delivered("patients", data).values())
    assert found["01.row_counts"] == (Status.FAIL, f"bronze.patients has {lines - 1} rows for {lines} delivered lines")
    assert found["01.malformed_kept"][0] is Status.FAIL
    assert "delivered to patients; bronze.patients kept" in found["01.malformed_kept"][1]


def test_text_repair_keeps_partitions_and_columns_added_later(tmp_path: Path) -> None:
    """The repaired copy has the snapshot's rows: partition values from the log, a column a file
    lacks as null, typed columns as they were."""
    path = tmp_path / "s" / "t"
    first = pa.table({"n": pa.array([1, 2], pa.int64()), "part": ["a", "b"],
                      "text": pa.array([b"ok", b"bad \xff"], pa.binary()).view(pa.string())})
    dx.write(path, first, partition_by=["part"])
    dx.write(path, pa.table({"n": pa.array([3], pa.int64()), "part": ["a"], "text": ["fine"],
                             "extra": pa.array([7.5])}), partition_by=["part"], merge_schema=True)
    table = open_table("s.t", tmp_path)
    rows = table.query("SELECT n, part, text, extra FROM t ORDER BY n").to_pylist()
    assert rows == [{"n": 1, "part": "a", "text": "ok", "extra": None},
                    {"n": 2, "part": "b", "text": "bad \ufffd", "extra": None},
                    {"n": 3, "part": "a", "text": "fine", "extra": 7.5}]
