"""The one loader for question banks and the exam-objective catalogue."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from pydantic import BaseModel, ValidationError

from medilake_lab.errors import QuizFormatError
from medilake_lab.quiz.model import FORMAT_VERSION, BankHeader, Catalogue, Question
from medilake_lab.runtime import config

CATALOGUE_FILE = "objectives.yaml"
BANK_DIR_NAME = "quizzes"

#: Told to whoever edits a bank file with a format this kit does not read.
NEWER_FORMAT = ("format_version {found} is newer than this kit reads ({supported}); "
                "upgrade medilake_lab (`pip install -e .` in an updated checkout)")
OLDER_FORMAT = ("format_version {found} is older than this kit reads ({supported}); "
                "convert the file to format {supported} (see medilake_lab/quiz/model.py)")
NO_FORMAT = f"no format_version; add `format_version: {FORMAT_VERSION}` at the top of the file"


class LoadedBank(NamedTuple):
    """What :func:`load_bank` returns (unpacks as ``questions, catalogue``)."""

    questions: list[Question]
    catalogue: Catalogue


def default_bank_dir() -> Path:
    """The bundled banks: ``<project root>/quizzes``."""
    return config.project_root() / BANK_DIR_NAME


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise QuizFormatError(str(path), "file not found") from None
    except yaml.YAMLError as exc:
        raise QuizFormatError(str(path), f"not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise QuizFormatError(str(path), "the top level must be a mapping with format_version")
    return data


def _check_version(path: Path, data: dict[str, Any]) -> None:
    found = data.get("format_version")
    if found is None:
        raise QuizFormatError(str(path), NO_FORMAT, field="format_version")
    if not isinstance(found, int) or isinstance(found, bool):
        raise QuizFormatError(str(path), f"format_version must be an integer, found {found!r}",
                              field="format_version")
    if found > FORMAT_VERSION:
        raise QuizFormatError(str(path), NEWER_FORMAT.format(found=found,
                                                             supported=FORMAT_VERSION),
                              field="format_version")
    if found < FORMAT_VERSION:
        raise QuizFormatError(str(path), OLDER_FORMAT.format(found=found,
                                                             supported=FORMAT_VERSION),
                              field="format_version")


def _wrap(path: Path, exc: ValidationError, question_id: str | None = None,
          prefix: str = "") -> QuizFormatError:
    """Turn the first pydantic error into a QuizFormatError naming file, question and field."""
    first = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    if prefix:
        field = f"{prefix}.{field}" if field else prefix
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "required field is missing"
    more = len(exc.errors()) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''} in this "
        message += "question)" if question_id else "file)"
    return QuizFormatError(str(path), message, question_id=question_id, field=field)


def _validate(model: type[BaseModel], data: Any, path: Path, question_id: str | None = None,
              context: dict[str, Any] | None = None, prefix: str = "") -> Any:
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise _wrap(path, exc, question_id, prefix) from None


def load_catalogue(path: str | os.PathLike[str]) -> Catalogue:
    """Read and validate the exam-objective catalogue.

    Parameters
    ----------
    path : str or PathLike
        ``objectives.yaml``.

    Returns
    -------
    Catalogue

    Raises
    ------
    QuizFormatError
        The file is missing, not YAML, of another format version or breaks the schema.
    """
    file = Path(path)
    data = _read_yaml(file)
    _check_version(file, data)
    return _validate(Catalogue, data, file)


def load_questions(path: str | os.PathLike[str], objective_ids: set[str]) -> list[Question]:
    """Read and validate one bank file against the known objective ids.

    Raises
    ------
    QuizFormatError
        With the file, the question id and the field of the first problem found.
    """
    file = Path(path)
    data = _read_yaml(file)
    _check_version(file, data)
    header: BankHeader = _validate(BankHeader, data, file)
    questions: list[Question] = []
    for number, raw in enumerate(header.questions, start=1):
        qid = raw.get("id") if isinstance(raw.get("id"), str) else f"#{number}"
        questions.append(_validate(Question, raw, file, question_id=qid,
                                   context={"objective_ids": objective_ids}))
    return questions


def bank_files(directory: str | os.PathLike[str]) -> list[Path]:
    """The bank files of a folder: every ``*.yaml`` except the catalogue, sorted by name."""
    folder = Path(directory)
    return sorted(p for p in folder.glob("*.yaml") if p.name != CATALOGUE_FILE)


def load_bank(path_or_dir: str | os.PathLike[str] | None = None,
              catalogue: str | os.PathLike[str] | None = None) -> LoadedBank:
    """Load question banks and the exam-objective catalogue, validating both.

    Parameters
    ----------
    path_or_dir : str, PathLike or None
        A bank folder (every ``*.yaml`` but ``objectives.yaml`` is a bank file) or one bank
        file. Default: ``<project root>/quizzes``.
    catalogue : str, PathLike or None
        The catalogue file. Default: ``objectives.yaml`` in the folder (or next to the file).

    Returns
    -------
    LoadedBank
        ``(questions, catalogue)``: the questions in file order, then in-file order.

    Raises
    ------
    QuizFormatError
        A file is missing or broken, or a question id repeats; the message names the file,
        the question id and the field.
    """
    target = Path(path_or_dir) if path_or_dir is not None else default_bank_dir()
    if target.is_dir():
        files, folder = bank_files(target), target
        if not files:
            raise QuizFormatError(str(target), "no bank files (*.yaml) in this folder")
    else:
        files, folder = [target], target.parent
    cat = load_catalogue(Path(catalogue) if catalogue is not None else folder / CATALOGUE_FILE)
    known = cat.objective_ids()
    questions: list[Question] = []
    first_seen: dict[str, Path] = {}
    for file in files:
        for question in load_questions(file, known):
            if question.id in first_seen:
                raise QuizFormatError(str(file), f"duplicate id, first used in "
                                      f"{first_seen[question.id]}", question_id=question.id,
                                      field="id")
            first_seen[question.id] = file
            questions.append(question)
    return LoadedBank(questions, cat)
