"""Adding a lab: ``dev new-lab`` scaffolds it in a COPY of the project (it edits the package
source, so the copy's package is the one imported, in a subprocess), and ``dev check --static``
then names what is still to write; ``dev check`` also catches a lab list that disagrees with the
lab files. No JVM."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from medilake_lab import grader
from medilake_lab.contract import labs
from medilake_lab.course import devcheck
from medilake_lab.course.scaffold import new_lab
from medilake_lab.errors import UsageError

COPIED = ("medilake_lab", "solutions", "labs", "quizzes", "tests")

#: Runs in the copy's interpreter: the CLI steps of adding a lab, reported as JSON.
SCRIPT = """
import json, shutil, sys
from pathlib import Path
from typer.testing import CliRunner
from medilake_lab.cli import app
from medilake_lab.contract.labs import LABS_FILE

root, runner, steps = Path(sys.argv[1]), CliRunner(), {}
def run(name, *args):
    result = runner.invoke(app, list(args))
    steps[name] = {"exit": result.exit_code, "out": result.output + str(result.exception or "")}
run("new", "dev", "new-lab", "99", "Scratch")
run("check", "dev", "check", "--static")
listed = LABS_FILE.read_text()
run("again", "dev", "new-lab", "99", "Another scratch")
steps["again"]["labs_yaml_unchanged"] = LABS_FILE.read_text() == listed
(root / "quizzes" / "lab99.yaml").unlink()
shutil.copy(root / "solutions" / "99_scratch.ipynb", root / "solutions" / "98_orphan.ipynb")
run("disagree", "dev", "check", "--static")
print(json.dumps(steps))
"""


def _problems(output: str) -> list[str]:
    return [line.removeprefix("✗ ") for line in output.splitlines() if line.startswith("✗ ")]


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    for name in COPIED:
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    shutil.copy(ROOT / "pyproject.toml", root)
    (root / "data").symlink_to(ROOT / "data")
    return root


def _in_copy(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MEDILAKE_HOME": str(root), "PYTHONPATH": str(root), "COLUMNS": "400"}
    return subprocess.run([sys.executable, *args], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def steps(project_copy: Path) -> dict:
    done = _in_copy(project_copy, "-c", SCRIPT, str(project_copy))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_new_lab_writes_every_file_and_appends_the_lab_keeping_comments(steps: dict, project_copy: Path) -> None:
    assert steps["new"]["exit"] == 0, steps["new"]["out"]
    for path in ("solutions/99_scratch.ipynb", "labs/99_scratch.ipynb", "medilake_lab/grader/lab99.py",
                 "quizzes/lab99.yaml", "tests/test_lab99.py"):
        assert str(project_copy / path) in steps["new"]["out"]
    listed = (project_copy / "medilake_lab/contract/labs.yaml").read_text()
    assert listed.startswith((ROOT / "medilake_lab/contract/labs.yaml").read_text().rstrip("\n") + "\n")
    assert '  - id: "99"\n    title: "Scratch"\n    notebook: 99_scratch.ipynb' in listed
    assert not (ROOT / "solutions/99_scratch.ipynb").exists(), "the real project must stay untouched"
    assert not (ROOT / "medilake_lab/grader/lab99.py").exists()


def test_dev_check_then_names_what_is_still_missing(steps: dict) -> None:
    assert steps["check"]["exit"] == 1
    left = [p for p in _problems(steps["check"]["out"]) if "99" in p]
    expected = ["lab 99: no exam objectives",
                "lab 99 check tables_exist: the hint is still a SCAFFOLD placeholder",
                "lab 99 check tables_exist: the rule is still a SCAFFOLD placeholder",
                "solutions/99_scratch.ipynb: 3 SCAFFOLD placeholder(s) left",
                "medilake_lab/grader/lab99.py: 1 SCAFFOLD placeholder(s) left",
                "quizzes/lab99.yaml: 9 SCAFFOLD placeholder(s) left",
                "tests/test_lab99.py: 2 SCAFFOLD placeholder(s) left",
                "lab 99: no fast tests/fast/test_fast_lab99.py: add the lab's fast-tier module"]
    for start in expected:
        assert any(p.startswith(start) for p in left), (start, left)
    assert len(left) == len(expected), left


def test_new_lab_refuses_an_existing_id_and_writes_nothing(steps: dict) -> None:
    assert steps["again"]["exit"] == 2, "a usage error"
    assert "lab 99 exists already" in steps["again"]["out"]
    assert steps["again"]["labs_yaml_unchanged"]


def test_dev_check_names_an_unlisted_notebook_and_a_missing_quiz_bank(steps: dict) -> None:
    problems = _problems(steps["disagree"]["out"])
    assert any(p.startswith("solutions/98_orphan.ipynb belongs to no lab in medilake_lab/contract/labs.yaml: "
                            "list its lab there") for p in problems), problems
    assert "lab 99: no quiz quizzes/lab99.yaml: add the lab's question bank" in problems


def test_scaffolded_test_module_runs_and_proves_the_lab_incomplete(steps: dict, project_copy: Path) -> None:
    done = _in_copy(project_copy, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m",
                    "not spark and not notebooks", str(project_copy / "tests" / "test_lab99.py"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed, 1 deselected" in done.stdout


def test_check_function_and_list_must_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    first = labs.all_labs()[0]
    listed = f"{first.id}.{first.checks[-1].id}"
    functions = grader.registered(first)
    monkeypatch.delitem(grader._REGISTRY, listed)
    monkeypatch.setitem(grader._REGISTRY, f"{first.id}.extra", functions[listed])
    problems = devcheck.static_problems()
    module = f"medilake_lab/grader/lab{first.id}.py"
    assert (f"lab {first.id} check {first.checks[-1].id} has no function: register one in {module} "
            f'with @check("{listed}")') in problems
    assert any(p.startswith(f"{module} registers {first.id}.extra, which") for p in problems)


def test_new_lab_refuses_when_the_package_is_not_the_project_roots(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDILAKE_HOME", str(tmp_path))
    before = labs.LABS_FILE.read_text()
    with pytest.raises(UsageError, match="run it in a source checkout"):
        new_lab("98", "Nowhere")
    assert labs.LABS_FILE.read_text() == before and not any(tmp_path.iterdir())
