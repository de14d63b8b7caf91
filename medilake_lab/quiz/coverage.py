"""Is the bank large enough to draw mock exams from? Counts against the mock draw, in one place.

Measured here for ``medilake_lab quiz stats``, ``medilake_lab dev check`` and the tests (issue 16):

* per exam domain, the **questions in the bank** that count for it and the **questions one mock
  draws** from it, exactly as :func:`~medilake_lab.quiz.session.build_exam` counts and draws
  (a question counts for the domain of its first objective in that exam; the draw is the
  largest-remainder split of the exam's scored questions by domain weight, capped by the bank).
  Their ratio should be at least :data:`RATIO_MIN`;
* per objective marked ``local`` or ``partial`` in the catalogue, the **questions that list it**
  among their objectives (any position, not only the first: a question practises every objective
  it names, whichever domain it is drawn for). Each should have at least :data:`OBJECTIVE_MIN`;
* per exam, the **expected overlap of two mocks**: over :data:`PAIRS` pairs of independently
  seeded mocks (seeds ``2i`` and ``2i+1``), the mean share of one mock's questions that the other
  also asks. It should be at most :data:`OVERLAP_MAX`;
* the bank size, at least :data:`BANK_MIN` questions.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from medilake_lab.quiz.model import Catalogue, Question
from medilake_lab.quiz.session import EXAMS, build_exam, check_exam

#: Thresholds of issue 16.
RATIO_MIN = 2.0
OBJECTIVE_MIN = 3
BANK_MIN = 320
OVERLAP_MAX = 0.30
#: Pairs of seeded mocks per exam the overlap is averaged over.
PAIRS = 200
#: The practice levels whose objectives need :data:`OBJECTIVE_MIN` questions.
PRACTISED = ("local", "partial")


@dataclass(frozen=True)
class DomainCount:
    """One exam domain against the mock draw.

    Attributes
    ----------
    exam : str
        ``"associate"`` or ``"professional"``.
    id, name : str
        The domain id (``DEA-4``) and name.
    weight : float
        The domain's weight in percent.
    bank : int
        Bank questions counting for the domain (first objective in this exam).
    drawn : int
        Questions one mock draws from it.
    """

    exam: str
    id: str
    name: str
    weight: float
    bank: int
    drawn: int

    @property
    def ratio(self) -> float:
        """``bank / drawn``; infinite when the mock draws nothing from the domain."""
        return self.bank / self.drawn if self.drawn else float("inf")

    @property
    def thin(self) -> bool:
        """True when the bank holds fewer than :data:`RATIO_MIN` × the draw."""
        return self.ratio < RATIO_MIN


@dataclass(frozen=True)
class ObjectiveCount:
    """Bank questions listing one objective (any position)."""

    id: str
    practice: str
    questions: int


def domain_counts(questions: Sequence[Question], catalogue: Catalogue, exam: str) -> list[DomainCount]:
    """The domains of ``exam`` in catalogue order, each with its bank count and mock draw.

    The counts are :func:`~medilake_lab.quiz.session.build_exam`'s own (``ExamPlan.available`` and
    ``ExamPlan.planned``), which do not depend on the seed.

    Raises
    ------
    QuizUsageError
        ``exam`` is not associate or professional.
    """
    plan = build_exam(questions, catalogue, exam, seed=0)
    return [DomainCount(plan.exam, d.id, d.name, d.weight, plan.available[d.id], plan.planned[d.id])
            for d in catalogue.exams[check_exam(plan.exam)].domains]


def objective_counts(questions: Sequence[Question], catalogue: Catalogue, exam: str) -> list[ObjectiveCount]:
    """Every objective of ``exam`` in catalogue order with the number of questions listing it."""
    listed = Counter(oid for q in questions for oid in q.objectives)
    return [ObjectiveCount(o.id, o.practice, listed[o.id])
            for d in catalogue.exams[check_exam(exam)].domains for o in d.objectives]


def mock_overlap(questions: Sequence[Question], catalogue: Catalogue, exam: str, pairs: int = PAIRS) -> float:
    """Mean share (0–1) of the questions two independent mocks of ``exam`` have in common.

    Pair ``i`` draws mocks with seeds ``2i`` and ``2i+1``; its share is the shared question ids
    over the size of the first mock (both mocks have the same size). 0.0 when no mock draws
    any question.
    """
    shares = []
    for i in range(pairs):
        first, second = (build_exam(questions, catalogue, exam, seed=s).shown for s in (2 * i, 2 * i + 1))
        if first:
            shared = {s.question.id for s in first} & {s.question.id for s in second}
            shares.append(len(shared) / len(first))
    return statistics.fmean(shares) if shares else 0.0


@dataclass(frozen=True)
class CoverageReport:
    """The coverage figures of a bank.

    Attributes
    ----------
    questions : int
        Bank size.
    domains : dict[str, list[DomainCount]]
        Exam → its domains against the draw.
    objectives : dict[str, list[ObjectiveCount]]
        Exam → all its objectives with their question counts.
    overlap : dict[str, float]
        Exam → expected share (0–1) of questions two mocks share.
    """

    questions: int
    domains: dict[str, list[DomainCount]]
    objectives: dict[str, list[ObjectiveCount]]
    overlap: dict[str, float]

    def thin_objectives(self) -> list[ObjectiveCount]:
        """The ``local``/``partial`` objectives with fewer than :data:`OBJECTIVE_MIN` questions."""
        return [o for objs in self.objectives.values() for o in objs
                if o.practice in PRACTISED and o.questions < OBJECTIVE_MIN]

    def thin_domains(self) -> list[DomainCount]:
        """The domains holding fewer than :data:`RATIO_MIN` × what one mock draws from them."""
        return [d for doms in self.domains.values() for d in doms if d.thin]

    def table(self) -> list[str]:
        """The figures as aligned text lines: per exam a domain table (bank, drawn, ratio, ``<2×``
        flag) and the overlap, then the bank size and the thin objectives."""
        lines = []
        for exam, doms in self.domains.items():
            lines.append(f"{exam}: expected overlap of two mocks {self.overlap[exam]:.0%} "
                         f"(limit {OVERLAP_MAX:.0%})")
            lines.append(f"  {'domain':<7} {'weight':>6} {'bank':>5} {'drawn':>5} {'ratio':>6}")
            lines += [f"  {d.id:<7} {d.weight:>5g}% {d.bank:>5} {d.drawn:>5} {d.ratio:>5.1f}×"
                      + (f"  < {RATIO_MIN:g}×  {d.name}" if d.thin else f"  {d.name}") for d in doms]
        lines.append(f"{self.questions} questions in the bank (target ≥ {BANK_MIN})")
        thin = self.thin_objectives()
        lines.append(f"local/partial objectives with < {OBJECTIVE_MIN} questions: "
                     + (", ".join(f"{o.id} ({o.questions})" for o in thin) if thin else "none"))
        return lines

    def warnings(self) -> list[str]:
        """One line per threshold broken; empty when the bank meets them all."""
        out = []
        if self.questions < BANK_MIN:
            out.append(f"the bank holds {self.questions} questions (target {BANK_MIN})")
        out += [f"{d.exam} {d.id} holds {d.bank} questions for {d.drawn} drawn per mock "
                f"({d.ratio:.1f}×, need {RATIO_MIN:g}×)" for d in self.thin_domains()]
        thin = self.thin_objectives()
        if thin:
            out.append(f"{len(thin)} local/partial objective(s) with < {OBJECTIVE_MIN} questions: "
                       + ", ".join(f"{o.id} ({o.questions})" for o in thin))
        out += [f"{exam}: two mocks share {share:.0%} of their questions on average (limit "
                f"{OVERLAP_MAX:.0%})" for exam, share in self.overlap.items() if share > OVERLAP_MAX]
        return out


def coverage_report(questions: Sequence[Question], catalogue: Catalogue, pairs: int = PAIRS) -> CoverageReport:
    """Measure ``questions`` against both exams (see the module docstring)."""
    return CoverageReport(
        len(questions),
        {exam: domain_counts(questions, catalogue, exam) for exam in EXAMS},
        {exam: objective_counts(questions, catalogue, exam) for exam in EXAMS},
        {exam: mock_overlap(questions, catalogue, exam, pairs) for exam in EXAMS},
    )
