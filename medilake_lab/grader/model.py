"""Result model of the grader: one :class:`CheckResult` per check, one :class:`LabReport` per lab."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path


class Status(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True)
class Outcome:
    """What a check function returns: pass/fail and a one-line finding with the observed value."""

    passed: bool
    finding: str

    @classmethod
    def from_problems(cls, problems: list[str], ok: str, limit: int = 4) -> Outcome:
        """FAIL listing the first ``limit`` problems, joined by "; ", and how many more there are;
        or PASS with ``ok`` when there are none."""
        if not problems:
            return cls(True, ok)
        shown = problems[:limit]
        more = f" (+{len(problems) - len(shown)} more)" if len(shown) < len(problems) else ""
        return cls(False, "; ".join(shown) + more)


@dataclass(frozen=True)
class CheckResult:
    """One graded check: ``id`` ("01.append_only"), status, finding (observed value), hint
    (what to do) and rule (the exam fact behind it)."""

    id: str
    title: str
    status: Status
    finding: str
    hint: str
    rule: str

    def to_dict(self) -> dict[str, str]:
        data = asdict(self)
        data["status"] = self.status.value
        return data


@dataclass
class LabReport:
    """All results of one lab, in metadata order, and the warehouse and data folder graded.

    ``valid_until``: the earliest time (UTC) at which a check's verdict changes by the clock alone
    (lab 07: a retention period ends), None when none does; ``cacheable``: False when a check met an
    unexpected error (it may be transient: out of memory, too many open files), so the report must
    not be reused (:mod:`medilake_lab.grader.verdicts`)."""

    lab: str
    title: str
    results: list[CheckResult] = field(default_factory=list)
    warehouse: Path | None = None
    data: Path | None = None
    valid_until: datetime | None = None
    cacheable: bool = True

    @property
    def passed(self) -> int:
        return sum(r.status is Status.PASS for r in self.results)

    @property
    def total(self) -> int:
        return len(self.results)

    @property
    def ok(self) -> bool:
        """True when every check passed."""
        return self.total > 0 and self.passed == self.total

    def to_dict(self) -> dict:
        return {"lab": self.lab, "title": self.title, "warehouse": str(self.warehouse),
                "data": str(self.data), "passed": self.passed, "total": self.total,
                "results": [r.to_dict() for r in self.results]}
