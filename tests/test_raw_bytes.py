"""Raw bytes the kit does not expect (issue #15 item 4): the grader's reference readers decode
the feeds the way Spark's JSON reader does — a line with bytes that are not UTF-8 is one malformed
line — and a truncated or damaged ``.gz`` is a DataError naming the file and the last line read,
never a bare UnicodeDecodeError or "Compressed file ended". Fast: no JVM."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from medilake_lab.contract.feeds import FEEDS
from medilake_lab.datagen import generate
from medilake_lab.errors import DataError
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
    import shutil

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
