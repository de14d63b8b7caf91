"""The lab metadata file (``labs.yaml``): the one list of labs, their tables and checks."""

from __future__ import annotations

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
    """One lab: ``id`` ("01"), title, notebook file name, exam objectives, tables, checks."""

    id: str
    title: str
    notebook: str
    objectives: list[str] = []
    tables: list[str]
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


@lru_cache(maxsize=1)
def all_labs(path: Path = LABS_FILE) -> tuple[LabSpec, ...]:
    """Labs in course order.

    Raises
    ------
    MediLakeError: the file's format version is not the one this kit reads, or a field is invalid
        (the message names the file and field).
    """
    raw = yaml.load(path.read_text(), Loader=_YAML_LOADER)
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise MediLakeError(f"{path}: format_version {version} is {'newer' if newer else 'older'} "
                            f"than this kit supports ({FORMAT_VERSION}); "
                            f"{'upgrade medilake_lab' if newer else 'update the file'}")
    try:
        return tuple(LabsFile.model_validate(raw).labs)
    except ValidationError as exc:
        raise MediLakeError(f"{path}: {exc}") from exc


def get_lab(lab_id: str) -> LabSpec:
    """Lab by id; accepts "1" or "01". Raises LabNotFoundError listing the known ids."""
    wanted = lab_id.zfill(2)
    for lab in all_labs():
        if lab.id == wanted:
            return lab
    known = ", ".join(lab.id for lab in all_labs())
    raise LabNotFoundError(f"no lab {lab_id!r}; known labs: {known}")
