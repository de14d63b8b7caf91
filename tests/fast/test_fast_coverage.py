"""The fast tier covers every check of every lab in both directions, read from the test modules
themselves: ``fast.test_fast_lab<NN>`` declares ``LAB`` and ``WRONG_ANSWERS`` (see
:mod:`fast.grading`); some wrong answer must fail each check id of the lab (FAIL direction), and
its ``test_solution_passes_every_check`` asserts that the solution-shaped fixture passes all of
them (PASS direction). A lab added to labs.yaml fails here until its fast module exists."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from types import ModuleType

import pytest

from medilake_lab.contract.labs import LabSpec, all_labs


def _module(lab: LabSpec) -> ModuleType:
    name = f"fast.test_fast_lab{lab.id}"
    if importlib.util.find_spec(name) is None:
        pytest.fail(f"lab {lab.id} ({lab.title}) has no fast-tier module tests/fast/test_fast_lab{lab.id}.py: "
                    "add one with LAB, WRONG_ANSWERS and test_solution_passes_every_check", pytrace=False)
    return importlib.import_module(name)


@pytest.mark.parametrize("lab", all_labs(), ids=lambda lab: lab.id)
def test_every_check_fails_on_a_wrong_answer(lab: LabSpec) -> None:
    module = _module(lab)
    assert module.LAB == lab.id, f"{module.__name__}.LAB is {module.LAB!r}"
    check_ids = [c.id for c in lab.checks]
    failed = {check_id for wrong in module.WRONG_ANSWERS for check_id in wrong.fails}
    assert sorted(failed - set(check_ids)) == [], f"{module.__name__} names checks lab {lab.id} does not have"
    uncovered = [c for c in check_ids if c not in failed]
    assert uncovered == [], f"no wrong answer in {module.__name__} fails {lab.id}.{', '.join(uncovered)}"


@pytest.mark.parametrize("lab", all_labs(), ids=lambda lab: lab.id)
def test_every_check_passes_on_the_solution(lab: LabSpec) -> None:
    module = _module(lab)
    solution_test = getattr(module, "test_solution_passes_every_check", None)
    assert callable(solution_test), f"{module.__name__} lacks test_solution_passes_every_check"
    assert "assert_all_pass(" in inspect.getsource(solution_test), (
        f"{module.__name__}.test_solution_passes_every_check must assert every check with grading.assert_all_pass")
