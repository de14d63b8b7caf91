"""What the learner's answer history says: the replay queue of missed questions, the mock-exam
history and the next domain to study.

Works on the dict :func:`medilake_lab.course.progress.load` returns (its ``history``, ``exams`` and
``practice_exams``) and on the bank; renders nothing (``medilake_lab quiz --missed`` and
``medilake_lab status`` print what these functions return).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from medilake_lab.contract.labs import LabSpec, all_labs
from medilake_lab.quiz.model import Catalogue, Domain, Question
from medilake_lab.quiz.session import WEAK_BELOW, ShownQuestion, questions_for_lab, shuffle_options

#: Right answers in a row that take a question out of the replay queue.
LEAVES_QUEUE_AFTER = 2


def missed_ids(history: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Ids of the questions to replay: answered wrong at least once and not answered right
    :data:`LEAVES_QUEUE_AFTER` times in a row since, longest-waiting (oldest last answer) first."""
    queued = [(entry["last_answered"], qid) for qid, entry in history.items()
              if entry["wrong"] and entry["streak"] < LEAVES_QUEUE_AFTER]
    return [qid for _, qid in sorted(queued)]


def build_missed(questions: Sequence[Question], history: Mapping[str, Mapping[str, Any]],
                 lab: str | None = None, seed: int | None = None) -> list[ShownQuestion]:
    """The replay queue as questions to ask, options shuffled (:func:`missed_ids` order).

    Parameters
    ----------
    questions : sequence of Question
        The whole bank; queued ids no longer in it are left out.
    history : mapping
        ``progress.load()["history"]``.
    lab : str or None
        Only that lab's questions (``"01"``…, ``"dbx"``); None: all.
    seed : int or None
        Fix the option order.

    Raises
    ------
    QuizUsageError
        ``lab`` has no questions in the bank.
    """
    pool = questions_for_lab(questions, lab) if lab else questions
    by_id = {q.id: q for q in pool}
    queued = [by_id[qid] for qid in missed_ids(history) if qid in by_id]
    rng = random.Random(seed)
    return [shuffle_options(q, rng) for q in queued]


@dataclass(frozen=True)
class ExamRow:
    """One mock exam taken: ``taken`` (UTC ISO), ``score`` of ``total``, ``practice`` (shortened,
    not an exam attempt) and ``weakest``: ``(domain id, domain name, right, asked)`` below the weak
    line, weakest first (at most three)."""

    taken: str
    exam: str
    score: int
    total: int
    practice: bool
    weakest: list[tuple[str, str, int, int]]


def _ratio(cell: Sequence[int]) -> float:
    right, asked = cell
    return right / asked


def exam_history(data: Mapping[str, Any], catalogue: Catalogue) -> list[ExamRow]:
    """Every mock exam in the progress record, full attempts and practice, oldest first."""
    names = {d.id: d.name for spec in catalogue.exams.values() for d in spec.domains}
    rows = []
    for practice, key in ((False, "exams"), (True, "practice_exams")):
        for exam in data.get(key, []):
            asked = {d: cell for d, cell in exam["by_domain"].items() if cell[1]}
            weak = sorted((d for d in asked if _ratio(asked[d]) < WEAK_BELOW),
                          key=lambda d: (_ratio(asked[d]), -asked[d][1], d))
            rows.append(ExamRow(exam["taken"], exam["exam"], exam["score"], exam["total"], practice,
                                [(d, names.get(d, d), *asked[d]) for d in weak[:3]]))
    return sorted(rows, key=lambda row: row.taken)


@dataclass(frozen=True)
class StudyTip:
    """The next domain to study: its ``domain`` (and ``exam``), how the last mock went in it
    (``right`` of ``asked``), and where to study it: a ``lab`` practising it, else the doc page
    (``reference``) of one of its questions (one the learner missed when there is one)."""

    exam: str
    domain: Domain
    right: int
    asked: int
    lab: LabSpec | None
    reference: str | None


def next_domain(data: Mapping[str, Any], questions: Sequence[Question], catalogue: Catalogue,
                labs: Sequence[LabSpec] | None = None) -> StudyTip | None:
    """The weakest domain of the latest mock exam (full or practice) and where to study it.

    Weakest: the lowest share right among the domains it asked (ties: more questions asked, then
    catalogue order). Its lab is the first in ``labs.yaml`` whose ``objectives`` name the domain or
    one of its objectives. None when no mock exam was taken.
    """
    taken = [*data.get("exams", []), *data.get("practice_exams", [])]
    if not taken:
        return None
    last = max(taken, key=lambda exam: exam["taken"])
    spec = catalogue.exams.get(last["exam"])
    if spec is None:  # an exam this kit no longer has
        return None
    asked = [(d, last["by_domain"][d.id]) for d in spec.domains if last["by_domain"].get(d.id, [0, 0])[1]]
    if not asked:
        return None
    domain, (right, count) = min(asked, key=lambda item: (_ratio(item[1]), -item[1][1]))
    mine = {o.id for o in domain.objectives} | {domain.id}
    lab = next((lab for lab in (all_labs() if labs is None else labs) if mine & set(lab.objectives)), None)
    reference = None
    if lab is None:
        in_domain = [q for q in questions if catalogue.domain_of(q, last["exam"]) == domain]
        missed = set(missed_ids(data.get("history", {})))
        pick = next((q for q in in_domain if q.id in missed), in_domain[0] if in_domain else None)
        reference = pick.reference if pick else None
    return StudyTip(last["exam"], domain, right, count, lab, reference)

