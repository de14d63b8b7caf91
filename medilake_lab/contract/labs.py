"""The lab metadata file (``labs.yaml``): the one list of labs, their tables and checks.

Titles, hints and rules name labs through placeholders filled from the list's order, so that
adding or renumbering a lab never leaves a stale "run lab 03": ``{lab}`` is the lab's own id,
``{previous}`` the lab before it and ``{next}`` the lab after it (e.g. "run lab {lab}
(`medilake_lab catchup {next}` builds it from the solutions)").
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError

from medilake_lab.errors import LabNotFoundError, MediLakeError

FORMAT_VERSION = 1
LABS_FILE = Path(__file__).with_name("labs.yaml")
#: libyaml's safe loader where PyYAML was built with it (ten times faster), else the pure one.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CheckSpec(BaseModel):
    """A check's id (unique within its lab), title, hint, exam rule and prerequisite checks."""

    id: str
    title: str
    hint: str = Field(min_length=10)
    rule: str = Field(min_length=10)
    depends: list[str] = []


class LabSpec(BaseModel):
    """One lab: ``id`` ("01"), title, notebook file name, exam objectives, tables, checks, and
    ``folders``: what else the lab writes under the warehouse root besides its tables (relative
    paths, e.g. lab 05's ``volumes/checkpoints``), removed with its tables by ``reset``."""

    id: str
    title: str
    notebook: str
    objectives: list[str] = []
    tables: list[str]
    folders: list[str] = []
    checks: list[CheckSpec]

    def check(self, check_id: str) -> CheckSpec:
        """The check with this id; KeyError if absent."""
        for spec in self.checks:
            if spec.id == check_id:
                return spec
        raise KeyError(f"lab {self.id} has no check {check_id!r}")


class LabsFile(BaseModel):
    format_version: int
    labs: list[LabSpec]


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _fill(text: str, names: dict[str, str | None], where: str) -> str:
    """``text`` with each ``{name}`` replaced from ``names``; MediLakeError (naming ``where``) when
    a placeholder is unknown or has no lab to stand for."""
    def value(match: re.Match[str]) -> str:
        filled = names.get(match[1])
        if filled is None:
            why = ("no lab comes before or after this one" if match[1] in names
                   else "known placeholders: " + ", ".join(f"{{{n}}}" for n in names))
            raise MediLakeError(f"{where} uses {match[0]}, which cannot be filled ({why})")
        return filled
    return _PLACEHOLDER.sub(value, text)


def _fill_placeholders(labs: list[LabSpec], path: Path) -> tuple[LabSpec, ...]:
    """Labs with ``{lab}``, ``{previous}`` and ``{next}`` filled in check titles, hints and rules.

    Raises MediLakeError naming the file, lab, check and placeholder for an unknown placeholder
    or one with no lab to stand for (``{previous}`` in the first lab, ``{next}`` in the last).
    """
    filled = []
    for index, lab in enumerate(labs):
        names = {"lab": lab.id,
                 "previous": labs[index - 1].id if index > 0 else None,
                 "next": labs[index + 1].id if index + 1 < len(labs) else None}
        checks = [spec.model_copy(update={
            field: _fill(getattr(spec, field), names, f"{path}: lab {lab.id} check {spec.id} {field}")
            for field in ("title", "hint", "rule")}) for spec in lab.checks]
        filled.append(lab.model_copy(update={"checks": checks}))
    return tuple(filled)


@lru_cache(maxsize=1)
def all_labs(path: Path = LABS_FILE) -> tuple[LabSpec, ...]:
    """Labs in course order.

    Raises
    ------
    MediLakeError: the file's format version is not the one this kit reads, a field is invalid
        (the message names the file and field), or a placeholder cannot be filled.
    """
    raw = yaml.load(path.read_text(), Loader=_YAML_LOADER)
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise MediLakeError(f"{path}: format_version {version} is {'newer' if newer else 'older'} "
                            f"than this kit supports ({FORMAT_VERSION}); "
                            f"{'upgrade medilake_lab' if newer else 'update the file'}")
    try:
        labs = LabsFile.model_validate(raw).labs
    except ValidationError as exc:
        raise MediLakeError(f"{path}: {exc}") from exc
    return _fill_placeholders(labs, path)


def get_lab(lab_id: str) -> LabSpec:
    """Lab by id; accepts "1" or "01". Raises LabNotFoundError listing the known ids."""
    wanted = lab_id.zfill(2)
    for lab in all_labs():
        if lab.id == wanted:
            return lab
    known = ", ".join(lab.id for lab in all_labs())
    raise LabNotFoundError(f"no lab {lab_id!r}; known labs: {known}")
