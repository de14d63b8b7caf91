"""Raw bytes the kit does not expect (issue #15 item 4): the grader's reference readers decode
the feeds the way Spark's JSON reader does — a line with bytes that are not UTF-8 is one malformed
line — and a truncated or damaged ``.gz`` is a DataError naming the file and the last line read,
never a bare UnicodeDecodeError or "Compressed file ended". A bronze that keeps such a line's bytes
verbatim (as Spark writes them) is graded. Fast: no JVM."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
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


# ------------------------------------------------------------ a JSON array on one line

#: A line → the rows Spark 4.2's JSON reader makes of it with lab 01's options (explicit schema,
#: PERMISSIVE, _corrupt_record), None for one corrupt row: measured with Spark on 2 Dec 2026.
SPARK_ROWS: dict[str, int | None] = {
    '{"patient_id": "A1"}': 1,
    '[{"patient_id": "A1"}, {"patient_id": "A2"}]': 2,
    '[{"patient_id": "A1"}]': 1,
    "[]": 0,
    '[{"patient_id": "A1"}, 5]': None,
    "[1, 2]": None,
    '["PAT000024", "MRN-SYN-000024"]': None,
    '[[{"patient_id": "A1"}]]': None,
    "null": None,
    '"text"': None,
}


@pytest.mark.parametrize("line", SPARK_ROWS)
def test_records_of_reads_a_line_as_spark_does(line: str) -> None:
    records = raw.records_of(line)
    assert (None if records is None else len(records)) == SPARK_ROWS[line]


def _array_line(clean: Path) -> bytes:
    """A line holding a JSON array of two patient records (ARR0001, ARR0002) shaped like the feed's."""
    with gzip.open(FEEDS["patients"].path(str(clean), "002"), "rt") as fh:
        first = json.loads(fh.readline())
    pair = [{**first, "patient_id": f"ARR000{i}"} for i in (1, 2)]
    return json.dumps(pair).encode() + b"\n"


def test_a_json_array_line_is_a_record_per_object(clean: Path, tmp_path: Path) -> None:
    data, _ = _damaged_copy(clean, tmp_path, lambda text: _gz(text + _array_line(clean)))
    before, after = raw.delivered("patients", clean)["002"], raw.delivered("patients", data)["002"]
    assert (after.lines, after.rows, after.malformed) == (before.lines + 1, before.rows + 2, before.malformed)
    ids = silver.records("patients", data)["patient_id"].to_pylist()
    assert {"ARR0001", "ARR0002"} <= set(ids) and len(ids) == silver.records("patients", clean).num_rows + 2
    assert silver.malformed("patients", data).num_rows == silver.malformed("patients", clean).num_rows


def test_bronze_that_kept_the_array_as_one_corrupt_row_fails_row_counts(clean: Path, tmp_path: Path) -> None:
    line = _array_line(clean)
    data, _ = _damaged_copy(clean, tmp_path, lambda text: _gz(text + line))
    build_bronze(tmp_path / "wh", data)
    path = dx.table_dir(tmp_path / "wh", "bronze.patients")
    shutil.rmtree(path)
    for i, batch in enumerate(feeds.BATCHES):
        rows = bronze_batch("patients", batch, data)
        if batch == "002":  # the array's two rows → one row of nulls holding the line (e.g. read as text + from_json)
            keep = pa.array([pid not in ("ARR0001", "ARR0002") for pid in rows["patient_id"].to_pylist()])
            [corrupt] = rows.filter(pc.invert(keep)).slice(0, 1).to_pylist()
            corrupt |= dict.fromkeys(feeds.FEEDS["patients"].columns) | {"_corrupt_record": line.decode().rstrip("\n")}
            rows = pa.concat_tables([rows.filter(keep), pa.Table.from_pylist([corrupt], rows.schema)])
        dx.write(path, rows, merge_schema=i > 0, operation="CREATE TABLE AS SELECT" if i == 0 else None)
    found = {r.id: (r.status, r.finding) for r in grader.grade("01", tmp_path / "wh", data).results}
    facts = raw.delivered("patients", data).values()
    lines, expected = sum(f.lines for f in facts), sum(f.rows for f in facts)
    assert found["01.row_counts"] == (Status.FAIL, f"bronze.patients has {lines} rows for {lines} delivered lines "
                                      f"({expected} rows: a line holding a JSON array of objects is a row per object)")


@pytest.mark.spark
def test_the_solution_reader_on_an_array_line_and_bytes_passes_lab01(clean: Path, tmp_path: Path,
                                                                     spark_session) -> None:
    """bronze.patients written by Spark with lab 01's reader (tests/bronze_variants.read: the solution's
    options) from a batch holding a JSON array line and a line that is not UTF-8; the other bronze
    tables from delta-rs. Lab 01 passes, and Spark's rows per batch are the reference's."""
    from bronze_variants import rebuild

    data, _ = _damaged_copy(clean, tmp_path, lambda text: _gz(text + _array_line(clean) + BAD_LINE))
    build_bronze(tmp_path / "wh", data)
    rebuild(spark_session, tmp_path / "wh", data, "patients")
    report = grader.grade("01", tmp_path / "wh", data)
    assert [(r.id, r.finding) for r in report.results if r.status is not Status.PASS] == []
    table = open_table("bronze.patients", tmp_path / "wh")
    counts = table.query("SELECT _batch_id AS b, count(*) AS n FROM t GROUP BY _batch_id ORDER BY b")
    assert dict(zip(counts["b"].to_pylist(), counts["n"].to_pylist(), strict=True)) == {
        batch: facts.rows for batch, facts in raw.delivered("patients", data).items()}
