"""Wrong answers as data, shared by the fast grader tests of every lab.

A fast test module for lab NN declares ``LAB = "NN"`` and ``WRONG_ANSWERS``: a list of
:class:`Wrong`, each a realistic mistake that breaks a copy of the correct warehouse and the
checks it must fail (with fragments of their findings). :mod:`fast.test_fast_coverage` reads these
lists: every check id of every lab needs a FAIL case here and the module's
``test_solution_passes_every_check`` for the PASS side.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from medilake_lab.grader import LabReport, Status

#: A finding fragment: literal text, or computed from the raw-data folder.
Fragment = str | Callable[[Path], str]


@dataclass(frozen=True)
class Wrong:
    """One realistic wrong answer.

    ``name``: test id; ``build(warehouse, data)`` breaks a private copy of the correct warehouse
    (Path, Path → None); ``fails``: check id (without the lab prefix) → fragments that its FAIL
    finding must hold; ``passes``: check ids that must still PASS (the mistake is not blamed on
    them).
    """

    name: str
    build: Callable[[Path, Path], None]
    fails: Mapping[str, tuple[Fragment, ...]]
    passes: tuple[str, ...] = field(default=())


def results(report: LabReport) -> dict[str, tuple[Status, str]]:
    """Check id (without the lab prefix) → (status, finding)."""
    return {r.id.split(".", 1)[1]: (r.status, r.finding) for r in report.results}


def assert_wrong(report: LabReport, wrong: Wrong, data: Path) -> None:
    """The report fails every check of ``wrong.fails`` with each fragment in the finding and
    passes every check of ``wrong.passes``; the assertion message shows the finding."""
    found = results(report)
    for check_id, fragments in wrong.fails.items():
        status, finding = found[check_id]
        assert status is Status.FAIL, f"{report.lab}.{check_id} is {status}: {finding}"
        for fragment in fragments:
            text = fragment(data) if callable(fragment) else fragment
            assert text in finding, f"{report.lab}.{check_id}: {text!r} not in {finding!r}"
    for check_id in wrong.passes:
        status, finding = found[check_id]
        assert status is Status.PASS, f"{report.lab}.{check_id} is {status}: {finding}"


def assert_all_pass(report: LabReport, check_ids: list[str]) -> None:
    """Every check of the lab ran and passed (lists the failures otherwise)."""
    found = results(report)
    assert sorted(found) == sorted(check_ids), f"lab {report.lab} ran {sorted(found)}"
    failures = {k: v for k, v in found.items() if v[0] is not Status.PASS}
    assert failures == {}, "\n".join(f"{report.lab}.{k} {s}: {f}" for k, (s, f) in failures.items())
