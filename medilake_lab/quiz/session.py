"""Renderer-independent quiz logic: choosing, shuffling, parsing answers, grading, exam draws.

The terminal and notebook renderers only display what this module decides, so both shuffle,
grade and draw exams the same way, and tests can compute the expected letters of a seeded run.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import get_args

from medilake_lab.errors import AnswerError, QuizUsageError
from medilake_lab.quiz.model import LETTERS, Catalogue, Domain, Exam, ExamName, Question

#: Pseudo-lab id for the questions that only apply on Databricks (``lab: null``).
DATABRICKS_ONLY = "dbx"
EXAMS: tuple[ExamName, ...] = get_args(ExamName)
WEAK_BELOW = 0.7  # a domain under 70 % correct in a mock exam is flagged as weak

UNKNOWN_LAB = ("no quiz for {lab!r}: choose one of {choices} "
               "(e.g. `medilake_lab quiz 01`)")
UNKNOWN_EXAM = "unknown exam {exam!r}: choose associate or professional"


@dataclass(frozen=True)
class ShownQuestion:
    """A question as shown: options in display order, relabelled A, B, C…

    Attributes
    ----------
    question : Question
        The bank question.
    order : tuple[str, ...]
        Original option letters in display order (display letter i ↔ ``order[i]``).
    domain : Domain | None
        The exam domain it counts towards (exam mode only).
    """

    question: Question
    order: tuple[str, ...]
    domain: Domain | None = None

    @property
    def letters(self) -> list[str]:
        """Display letters, ``["A", "B", …]``."""
        return list(LETTERS[: len(self.order)])

    def option_text(self, display_letter: str) -> str:
        """Text of the option shown under ``display_letter``."""
        return self.question.options[self.to_original(display_letter)]

    def to_original(self, display_letter: str) -> str:
        """Bank letter of the option shown under ``display_letter``."""
        return self.order[LETTERS.index(display_letter)]

    def to_display(self, original_letter: str) -> str:
        """Display letter of the bank option ``original_letter``."""
        return LETTERS[self.order.index(original_letter)]

    @property
    def correct(self) -> list[str]:
        """The correct answer in display letters, sorted."""
        return sorted(self.to_display(letter) for letter in self.question.answer)

    @property
    def choose(self) -> int:
        """How many options the learner must pick."""
        return len(self.question.answer)


@dataclass(frozen=True)
class Outcome:
    """The grade of one answer (letters are display letters; ``chosen`` empty = unanswered)."""

    shown: ShownQuestion
    chosen: tuple[str, ...]
    correct: bool
    late: bool = False

    @property
    def wrong_choices(self) -> list[str]:
        """Chosen display letters that are distractors."""
        return [c for c in self.chosen if c not in self.shown.correct]


@dataclass
class Tally:
    """Running score, overall and per exam domain (``by_domain``: id → [correct, asked])."""

    score: int = 0
    total: int = 0
    by_domain: dict[str, list[int]] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        """Count one graded answer."""
        self.outcomes.append(outcome)
        self.total += 1
        self.score += int(outcome.correct)
        if outcome.shown.domain is not None:
            cell = self.by_domain.setdefault(outcome.shown.domain.id, [0, 0])
            cell[0] += int(outcome.correct)
            cell[1] += 1


def answered(outcomes: Iterable[Outcome]) -> list[tuple[str, bool]]:
    """``(question id, right)`` for each outcome the learner actually answered, in order: blank ones
    and answers given after the time limit say nothing about what the learner knows. This is what
    :func:`medilake_lab.course.progress.record_answers` takes."""
    return [(o.shown.question.id, o.correct) for o in outcomes if o.chosen and not o.late]


def normalise_lab(raw: str) -> str:
    """``"1"`` → ``"01"``; ``"DBX"`` → ``"dbx"``; anything else is returned stripped."""
    text = raw.strip().lower()
    if text.isdigit() and len(text) <= 2:
        return text.zfill(2)
    return text


def available_labs(questions: Iterable[Question]) -> list[str]:
    """Lab ids that have questions, sorted, plus ``"dbx"`` when Databricks-only ones exist."""
    labs = {q.lab for q in questions}
    out = sorted(lab for lab in labs if lab is not None)
    return out + ([DATABRICKS_ONLY] if None in labs else [])


def questions_for_lab(questions: Sequence[Question], lab: str) -> list[Question]:
    """The questions of one lab (``"dbx"``: those with ``lab: null``).

    Raises
    ------
    QuizUsageError
        No question belongs to that lab; the message lists the labs that have some.
    """
    wanted = normalise_lab(lab)
    chosen = [q for q in questions
              if (q.lab is None if wanted == DATABRICKS_ONLY else q.lab == wanted)]
    if not chosen:
        choices = ", ".join(available_labs(questions)) or "none (the bank is empty)"
        raise QuizUsageError(UNKNOWN_LAB.format(lab=lab, choices=choices))
    return chosen


def shuffle_options(question: Question, rng: random.Random | None,
                    domain: Domain | None = None) -> ShownQuestion:
    """Present a question with its options shuffled by ``rng`` (bank order when None)."""
    order = list(question.options)
    if rng is not None:
        rng.shuffle(order)
    return ShownQuestion(question, tuple(order), domain)


def build_quiz(questions: Sequence[Question], lab: str, seed: int | None = None,
               count: int | None = None) -> list[ShownQuestion]:
    """Pick a lab's questions, shuffle their order and their options.

    Parameters
    ----------
    questions : sequence of Question
        The whole bank (see :func:`~medilake_lab.quiz.loader.load_bank`).
    lab : str
        ``"01"``…, or ``"dbx"`` for the Databricks-only questions.
    seed : int or None
        Same seed → same order and same option letters; None → a fresh shuffle.
    count : int or None
        Ask at most this many (a random subset); None → all of the lab's questions.

    Returns
    -------
    list of ShownQuestion
    """
    rng = random.Random(seed)
    pool = questions_for_lab(questions, lab)
    picked = rng.sample(pool, k=min(count, len(pool)) if count else len(pool))
    return [shuffle_options(q, rng) for q in picked]


def is_partial_quiz(questions: Sequence[Question], lab: str, shown: Sequence[ShownQuestion]) -> bool:
    """True when a lab quiz asks fewer questions than the lab has (``count``): such a quiz is
    practice, never the lab's quiz score."""
    return len(shown) < len(questions_for_lab(questions, lab))


def parse_answer(raw: str, shown: ShownQuestion) -> tuple[str, ...]:
    """Parse ``"b"``, ``"A,C"``, ``"a c"`` or ``"AC"`` into sorted display letters.

    Raises
    ------
    AnswerError
        Unknown letters, repeats, or not exactly as many letters as the question asks for.
    """
    text = raw.strip().upper()
    parts = [p for p in re.split(r"[\s,;/]+", text) if p]
    if len(parts) == 1 and len(parts[0]) > 1 and parts[0].isalpha():
        parts = list(parts[0])
    valid = shown.letters
    span = f"{valid[0]}-{valid[-1]}"
    bad = [p for p in parts if p not in valid]
    if not parts or bad:
        raise AnswerError(f"type {'one letter' if shown.choose == 1 else f'{shown.choose} letters'}"
                          f" from {span}" + (f" (got {', '.join(bad)})" if bad else ""))
    if len(set(parts)) != len(parts):
        raise AnswerError("each letter once, please")
    if len(parts) != shown.choose:
        raise AnswerError(f"this question needs exactly {shown.choose} "
                          f"letter{'s' if shown.choose > 1 else ''}, e.g. "
                          f"{','.join(valid[: shown.choose])}")
    return tuple(sorted(parts))


def grade(shown: ShownQuestion, chosen: Sequence[str], late: bool = False) -> Outcome:
    """All-or-nothing grading: right only when exactly the correct options are chosen in time."""
    picked = tuple(sorted(chosen))
    return Outcome(shown, picked, correct=(not late and list(picked) == shown.correct), late=late)


# ---------------------------------------------------------------------------------------------
# Mock exams
# ---------------------------------------------------------------------------------------------

def apportion(total: int, weights: dict[str, float], caps: dict[str, int]) -> dict[str, int]:
    """Split ``total`` seats over domains in proportion to ``weights``, never above ``caps``.

    Largest-remainder method; seats a capped domain cannot fill go to the domains furthest
    below their ideal share. The result adds up to ``min(total, sum(caps))``.
    """
    target = min(total, sum(caps.values()))
    weight_sum = sum(weights.values()) or 1.0
    ideal = {d: target * w / weight_sum for d, w in weights.items()}
    seats = {d: min(math.floor(ideal[d]), caps.get(d, 0)) for d in weights}
    while sum(seats.values()) < target:
        open_ = [d for d in weights if seats[d] < caps.get(d, 0)]
        best = max(open_, key=lambda d: (ideal[d] - seats[d], weights[d]))
        seats[best] += 1
    return seats


@dataclass(frozen=True)
class ExamPlan:
    """A drawn mock exam.

    Attributes
    ----------
    exam : str
        ``"associate"`` or ``"professional"``.
    shown : list[ShownQuestion]
        The questions in the order asked (each carries its domain).
    planned : dict[str, int]
        Questions drawn per domain id.
    available : dict[str, int]
        Bank questions per domain id.
    target : int
        The exam's scored-question count (or the ``count`` asked for).
    """

    exam: str
    shown: list[ShownQuestion]
    planned: dict[str, int]
    available: dict[str, int]
    target: int

    @property
    def short(self) -> bool:
        """True when the bank holds fewer questions than the exam asks."""
        return len(self.shown) < self.target


def check_exam(exam: str) -> ExamName:
    """Normalise an exam name; raise :class:`QuizUsageError` for an unknown one."""
    name = exam.strip().lower()
    for known in EXAMS:
        if name == known:
            return known
    raise QuizUsageError(UNKNOWN_EXAM.format(exam=exam))


def build_exam(questions: Sequence[Question], catalogue: Catalogue, exam: str,
               seed: int | None = None, count: int | None = None) -> ExamPlan:
    """Draw a mock exam by domain, in proportion to the catalogue's domain weights.

    A question counts towards the domain of its first objective in that exam; questions with
    no objective in the exam are not eligible. Up to the exam's scored-question count are
    drawn (or ``count``); when the bank is short, all eligible questions are used.

    Returns
    -------
    ExamPlan
    """
    name = check_exam(exam)
    spec = catalogue.exams[name]
    rng = random.Random(seed)
    by_domain: dict[str, list[Question]] = {d.id: [] for d in spec.domains}
    domains = {d.id: d for d in spec.domains}
    for q in questions:
        domain = catalogue.domain_of(q, name)
        if domain is not None:
            by_domain[domain.id].append(q)
    target = count or spec.scored_questions
    caps = {d: len(qs) for d, qs in by_domain.items()}
    planned = apportion(target, {d.id: d.weight for d in spec.domains}, caps)
    drawn = [(q, domains[d]) for d, qs in by_domain.items() for q in rng.sample(qs, planned[d])]
    rng.shuffle(drawn)
    shown = [shuffle_options(q, rng, domain) for q, domain in drawn]
    return ExamPlan(name, shown, planned, caps, target)


def is_practice(plan: ExamPlan, minutes: float, spec: Exam) -> bool:
    """True when a mock is shorter than the real exam: fewer questions asked for than its scored
    count, or a time limit (``minutes``) below its own. Such a mock is recorded as practice,
    never as an exam attempt (a bank too small to fill the draw is not the learner's choice)."""
    return minutes < spec.minutes or plan.target < spec.scored_questions


class Deadline:
    """A countdown that an injectable clock drives (seconds, monotonic)."""

    def __init__(self, minutes: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.seconds = minutes * 60.0
        self.start = clock()

    def remaining(self) -> float:
        """Seconds left (never below 0)."""
        return max(0.0, self.seconds - (self.clock() - self.start))

    def expired(self) -> bool:
        """True once no time is left."""
        return self.remaining() <= 0.0

    def label(self) -> str:
        """Remaining time as ``mm:ss`` (or ``h:mm:ss``)."""
        left = math.ceil(self.remaining())
        hours, rest = divmod(left, 3600)
        minutes, seconds = divmod(rest, 60)
        return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes:02d}:{seconds:02d}"
