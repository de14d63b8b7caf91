"""The quiz schemas: the exam-objective catalogue and the question bank (pydantic models).

Bank file shape (``quizzes/labNN.yaml``, ``quizzes/databricks_only.yaml``)::

    format_version: 1
    title: Lab 01 - bronze ingestion
    questions:
      - id: L01-001                 # unique across all bank files
        lab: "01"                   # a lab id from labs.yaml, or null for Databricks-only
        objectives: [DEA-2.1]       # ids from quizzes/objectives.yaml
        difficulty: medium          # easy | medium | hard
        stem: A scenario ending in a question.
        options: {A: ..., B: ..., C: ..., D: ...}
        answer: B                   # or "A,C" / [A, C] together with multiple: true
        multiple: false
        explanation: Why the right answer is right.
        distractors: {A: ..., C: ..., D: ...}   # one per WRONG option, all required
        reference: https://docs.delta.io/...   # a doc page URL or a doc title

Options are shuffled when shown, so explanations must not name option letters ("option B").

Catalogue file shape (``quizzes/objectives.yaml``): ``format_version``, ``source``, ``notes`` and
``exams.<associate|professional>`` with ``title``, ``guide``, ``guide_version``,
``scored_questions``, ``minutes``, ``id_prefix`` and ``domains`` (each with ``id``, ``name``,
``weight`` in percent, ``weight_estimate`` (true when no primary source confirms the weight) and
``objectives``: ``id``, ``text`` (our paraphrase), ``practice``).
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

FORMAT_VERSION = 1
LETTERS = "ABCDEF"
MIN_OPTIONS, MAX_OPTIONS = 2, len(LETTERS)

Practice = Literal["local", "partial", "databricks_only"]
Difficulty = Literal["easy", "medium", "hard"]
ExamName = Literal["associate", "professional"]
LabId = Annotated[str, StringConstraints(pattern=r"^\d{2}$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]

#: Explanations are shown next to SHUFFLED options, so they must never point at a letter.
_LETTER_REFERENCE = re.compile(r"\b(?i:options?|answers?|choices?)\s+\(?[A-F]\)?(?![\w-])")


def _no_letter_reference(text: str) -> str:
    if _LETTER_REFERENCE.search(text):
        raise ValueError("names an option letter; options are shuffled when shown, so refer "
                         "to the option's content instead")
    return text


# ---------------------------------------------------------------------------------------------
# The exam-objective catalogue
# ---------------------------------------------------------------------------------------------

class Objective(BaseModel):
    """One exam objective, in our own words."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, StringConstraints(pattern=r"^DE[AP]-\d+\.\d+$")]
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=10)]
    practice: Practice
    notes: str | None = None


class Domain(BaseModel):
    """One exam domain (section) with its weight in percent of the scored questions.

    ``weight_estimate`` is true when no primary source (the exam guide itself) confirms the
    weight, e.g. it was taken from third-party transcriptions; the mock exam says so.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, StringConstraints(pattern=r"^DE[AP]-\d+$")]
    name: Text
    weight: float = Field(gt=0, le=100)
    weight_estimate: bool = False
    objectives: list[Objective] = Field(min_length=1)

    @model_validator(mode="after")
    def _objectives_belong_here(self) -> Domain:
        for obj in self.objectives:
            if not obj.id.startswith(self.id + "."):
                raise ValueError(f"objective {obj.id} does not belong to domain {self.id}")
        return self


class Exam(BaseModel):
    """One certification exam as described by its current exam guide."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: Text
    guide: Text
    guide_version: Text
    id_prefix: Literal["DEA", "DEP"]
    scored_questions: int = Field(gt=0)
    minutes: int = Field(gt=0)
    domains: list[Domain] = Field(min_length=1)
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Exam:
        total = sum(d.weight for d in self.domains)
        if abs(total - 100) > 0.5:
            raise ValueError(f"domain weights add up to {total:g}%, not 100%")
        ids = [d.id for d in self.domains]
        if len(ids) != len(set(ids)):
            raise ValueError("domain ids are not unique")
        for d in self.domains:
            if not d.id.startswith(self.id_prefix + "-"):
                raise ValueError(f"domain {d.id} does not start with {self.id_prefix}-")
        return self

    @property
    def weight_note(self) -> str | None:
        """One line saying which domain weights are estimates (``weight_estimate: true``), or
        None when the guide confirms them all."""
        estimated = [d.id for d in self.domains if d.weight_estimate]
        if not estimated:
            return None
        which = "" if len(estimated) == len(self.domains) else f" ({', '.join(estimated)})"
        return (f"Domain weights{which} are estimates: no primary source confirms them, so the "
                "number of questions per domain may differ from the real exam.")


class ObjectiveRef(NamedTuple):
    """Where an objective sits: its exam key, domain and the objective itself."""

    exam: str
    domain: Domain
    objective: Objective


class Catalogue(BaseModel):
    """The exam-objective catalogue (``quizzes/objectives.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int
    source: Text
    exams: dict[ExamName, Exam]
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_objectives(self) -> Catalogue:
        seen: set[str] = set()
        for exam in self.exams.values():
            for domain in exam.domains:
                for obj in domain.objectives:
                    if obj.id in seen:
                        raise ValueError(f"objective {obj.id} is listed twice")
                    seen.add(obj.id)
        return self

    @cached_property
    def _index(self) -> dict[str, ObjectiveRef]:
        return {obj.id: ObjectiveRef(key, domain, obj)
                for key, exam in self.exams.items()
                for domain in exam.domains
                for obj in domain.objectives}

    def objective_index(self) -> dict[str, ObjectiveRef]:
        """Map every objective id to its :class:`ObjectiveRef` (a copy of an index built once, as
        :meth:`domain_of` runs per question of every mock exam drawn)."""
        return dict(self._index)

    def objective_ids(self) -> set[str]:
        """All objective ids of all exams."""
        return set(self.objective_index())

    def domain_of(self, question: Question, exam: str) -> Domain | None:
        """The domain a question counts towards in ``exam``: that of its first objective there.

        Returns None when none of the question's objectives belongs to that exam.
        """
        index = self._index
        for oid in question.objectives:
            ref = index.get(oid)
            if ref is not None and ref.exam == exam:
                return ref.domain
        return None


# ---------------------------------------------------------------------------------------------
# The question bank
# ---------------------------------------------------------------------------------------------

class Question(BaseModel):
    """One exam-style question. Field order matters: later validators read earlier fields.

    Validation context (optional): ``{"objective_ids": set_of_known_ids}`` makes unknown
    objective ids an error of the field ``objectives``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    lab: LabId | None
    objectives: list[str] = Field(min_length=1)
    difficulty: Difficulty
    stem: Annotated[str, StringConstraints(strip_whitespace=True, min_length=10)]
    options: dict[str, Text]
    answer: list[str] = Field(min_length=1)
    multiple: bool = Field(default=False, validate_default=True)
    explanation: Text
    distractors: dict[str, Text]
    reference: Text

    @field_validator("objectives")
    @classmethod
    def _known_objectives(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if len(value) != len(set(value)):
            raise ValueError("lists an objective twice")
        known = (info.context or {}).get("objective_ids")
        if known is not None:
            unknown = [oid for oid in value if oid not in known]
            if unknown:
                raise ValueError(f"unknown objective id(s) {', '.join(unknown)}; every id must "
                                 "be listed in quizzes/objectives.yaml")
        return value

    @field_validator("options")
    @classmethod
    def _letters_in_order(cls, value: dict[str, str]) -> dict[str, str]:
        keys = list(value)
        if not MIN_OPTIONS <= len(keys) <= MAX_OPTIONS:
            raise ValueError(f"needs {MIN_OPTIONS} to {MAX_OPTIONS} options, found {len(keys)}")
        expected = list(LETTERS[: len(keys)])
        if keys != expected:
            raise ValueError(f"option letters must be {', '.join(expected)} in order, "
                             f"found {', '.join(map(str, keys))}")
        return value

    @field_validator("answer", mode="before")
    @classmethod
    def _split_answer(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in re.split(r"[\s,]+", value) if part]
        if isinstance(value, list):
            return [str(v).strip().upper() for v in value]
        return value

    @field_validator("answer")
    @classmethod
    def _answer_among_options(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if len(value) != len(set(value)):
            raise ValueError("repeats a letter")
        options = info.data.get("options")
        if options is not None:
            missing = [letter for letter in value if letter not in options]
            if missing:
                raise ValueError(f"letter(s) {', '.join(missing)} not among the options "
                                 f"{', '.join(options)}")
            if len(value) == len(options):
                raise ValueError("every option is marked correct; leave at least one distractor")
        return sorted(value)

    @field_validator("multiple")
    @classmethod
    def _multiple_matches_answer(cls, value: bool, info: ValidationInfo) -> bool:
        answer = info.data.get("answer")
        if answer is not None:
            if len(answer) > 1 and not value:
                raise ValueError(f"answer has {len(answer)} letters, so set multiple: true")
            if len(answer) == 1 and value:
                raise ValueError("multiple: true needs two or more answer letters")
        return value

    @field_validator("explanation")
    @classmethod
    def _explanation_letter_free(cls, value: str) -> str:
        return _no_letter_reference(value)

    @field_validator("distractors")
    @classmethod
    def _one_per_wrong_option(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        options, answer = info.data.get("options"), info.data.get("answer")
        for letter, text in value.items():
            try:
                _no_letter_reference(text)
            except ValueError as exc:
                raise ValueError(f"{letter} {exc}") from None
        if options is None or answer is None:
            return value
        wrong = [letter for letter in options if letter not in answer]
        missing = [letter for letter in wrong if letter not in value]
        if missing:
            raise ValueError(f"no explanation for wrong option(s) {', '.join(missing)}; every "
                             "distractor needs one")
        extra = [letter for letter in value if letter not in wrong]
        if extra:
            raise ValueError(f"explanation given for {', '.join(extra)}, which is not a wrong "
                             "option")
        return value

    @property
    def wrong_letters(self) -> list[str]:
        """The distractor letters, in option order."""
        return [letter for letter in self.options if letter not in self.answer]


class BankHeader(BaseModel):
    """The top level of a bank file; questions are validated one by one by the loader."""

    model_config = ConfigDict(extra="forbid")

    format_version: int
    title: str | None = None
    questions: list[dict[str, Any]] = Field(min_length=1)
