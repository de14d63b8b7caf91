"""The lab list names labs in its texts through placeholders filled from the lab order, so no
hint carries a lab number that adding or renumbering a lab would leave stale."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from medilake_lab.contract import labs
from medilake_lab.errors import MediLakeError

LAB = """  - id: "{id}"
    title: T
    notebook: {id}_t.ipynb
    tables: [x.y]
    checks:
      - id: c
        title: Check of lab {{lab}}
        hint: "{hint}"
        rule: The rule behind it, in our own words.
"""


def _labs_file(tmp_path: Path, *entries: tuple[str, str]) -> Path:
    path = tmp_path / "labs.yaml"
    path.write_text("format_version: 1\nlabs:\n" + "".join(LAB.format(id=i, hint=h) for i, h in entries))
    return path


def test_placeholders_are_filled_from_the_lab_order(tmp_path: Path) -> None:
    path = _labs_file(tmp_path, ("01", "Run lab {lab} (`medilake_lab catchup {next}`)."),
                      ("02", "Finish lab {previous}, then run lab {lab}."))
    first, second = labs.all_labs.__wrapped__(path)
    assert first.checks[0].hint == "Run lab 01 (`medilake_lab catchup 02`)."
    assert second.checks[0].hint == "Finish lab 01, then run lab 02."
    assert second.checks[0].title == "Check of lab 02"


@pytest.mark.parametrize(("hint", "message"), [
    ("Finish lab {previous} first please.", r"lab 01 check c hint uses \{previous\}, which cannot be filled "
                                            r"\(no lab comes before or after this one\)"),
    ("Run lab {lba} to build it.", r"uses \{lba\}, which cannot be filled \(known placeholders: \{lab\}"),
])
def test_a_placeholder_that_cannot_be_filled_names_file_lab_and_check(tmp_path: Path, hint: str,
                                                                      message: str) -> None:
    path = _labs_file(tmp_path, ("01", hint))
    with pytest.raises(MediLakeError, match=message) as raised:
        labs.all_labs.__wrapped__(path)
    assert str(raised.value).startswith(f"{path}: lab 01 check c hint uses ")


def test_lab_texts_name_no_lab_by_number() -> None:
    """Lab numbers in check texts come from placeholders, so adding or renumbering a lab cannot
    leave a stale one."""
    raw = yaml.safe_load(labs.LABS_FILE.read_text())
    texts = [spec[field] for lab in raw["labs"] for spec in lab["checks"] for field in ("title", "hint", "rule")]
    assert [t for t in texts if re.search(r"\b(?:labs?|catchup|reset|run) \d{2}\b", t)] == []
