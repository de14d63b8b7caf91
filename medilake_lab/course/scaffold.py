"""``medilake_lab dev new-lab NN "Title"``: scaffold every file a new lab needs, in one step.

A lab is a row in ``labs.yaml`` plus five files: the solution notebook (the source of the lab's
content), the learner notebook built from it, a checks module, a quiz bank and a test module.
The templates below are small on purpose, and every spot still to be written carries
:data:`MARK`, so ``medilake_lab dev check --static`` lists what remains (see
:mod:`medilake_lab.course.devcheck`).

It edits the package source (``labs.yaml`` is appended to as text, so its comments stay, and the
checks module goes beside the others), so it runs in a source checkout only: the imported package
must sit in the project root (``MEDILAKE_HOME``, else the repo).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from medilake_lab import grader
from medilake_lab.contract import labs
from medilake_lab.errors import MediLakeError, UsageError
from medilake_lab.runtime import config

#: Marks what a scaffolded lab still needs; `dev check` reports every file that holds it.
MARK = "SCAFFOLD"
#: Titles that are safe in a file name, a YAML scalar, a docstring and a Markdown heading alike.
_TITLE = re.compile(r"[^\W_][\w ,&()'./+-]*")

_LABS_ENTRY = """\
  - id: "{id}"
    title: {title_yaml}
    notebook: {notebook}
    objectives: []
    tables: [scratch.{slug}]
    checks:
      - id: tables_exist
        title: The lab's tables exist
        hint: >-
          {mark}: say what to build and how. Run lab {{lab}} (`medilake_lab run {{lab}}` runs its
          solution).
        rule: >-
          {mark}: the exam fact behind this check, in our own words.
"""

_CHECKS_MODULE = '''\
"""Lab {id} — {title}. {mark}: say what evidence the checks read (Delta history, files, values
recomputed from the raw feeds) and write one function per check listed in labs.yaml."""

from __future__ import annotations

from medilake_lab.contract.labs import get_lab
from medilake_lab.grader import Context, Outcome, check

TABLES = get_lab("{id}").tables


@check("{id}.tables_exist")
def tables_exist(ctx: Context) -> Outcome:
    return ctx.tables_exist(TABLES, f"all {{len(TABLES)}} tables of lab {id} are Delta tables")
'''

_QUIZ_BANK = """\
# Lab {id} - {title}. Original questions; options are shuffled when shown, so no explanation
# refers to an option by its letter (schema: medilake_lab/quiz/model.py).
format_version: {format_version}
title: {bank_title_yaml}
questions:
  - id: L{id}-001
    lab: "{id}"
    objectives: [{objective}]
    difficulty: medium
    stem: "{mark}: a scenario from the lab, ending in a question."
    options:
      A: "{mark}: the right answer."
      B: "{mark}: a plausible wrong answer."
      C: "{mark}: another plausible wrong answer."
      D: "{mark}: a third plausible wrong answer."
    answer: A
    explanation: "{mark}: why the right answer is right."
    distractors:
      B: "{mark}: why this one is wrong."
      C: "{mark}: why this one is wrong."
      D: "{mark}: why this one is wrong."
    reference: https://docs.delta.io/latest/index.html
"""

_TEST_MODULE = '''\
"""Lab {id} grader, both directions: the solution notebook's warehouse passes every check, and
realistic wrong answers each fail the right check with the observed value in the finding."""

from __future__ import annotations

from pathlib import Path

import pytest

from medilake_lab import grader
from medilake_lab.contract.labs import get_lab
from medilake_lab.grader import Status


def test_empty_warehouse_fails_with_hint(tmp_path: Path, bundled_data: Path) -> None:
    report = grader.grade("{id}", tmp_path, bundled_data)
    first, *rest = report.results
    assert first.status is Status.FAIL and "run lab {id}" in first.finding
    assert all(name in first.finding for name in get_lab("{id}").tables)
    assert {{r.status for r in rest}} <= {{Status.SKIP}}


@pytest.mark.spark
@pytest.mark.notebooks
@pytest.mark.xfail(strict=True, reason="{mark}: lab {id} has no solution yet; remove this mark when it has")
def test_solution_passes_every_check(solution_runs: dict, bundled_data: Path) -> None:
    assert "{id}" not in solution_runs["errors"], solution_runs["errors"].get("{id}")
    report = grader.grade("{id}", solution_runs["warehouse"], bundled_data)
    assert [(r.id, r.finding) for r in report.results if r.status is not Status.PASS] == []


# {mark}: one test per realistic wrong answer (build it with Spark on a copy of the solution
# warehouse, see tests/test_lab01.py), asserting the check that fails and its finding.
'''


def slug(title: str) -> str:
    """File-name form of a title: "Streaming ingestion!" → "streaming_ingestion"."""
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")


def solution_notebook(lab_id: str, title: str) -> nbformat.NotebookNode:
    """The scaffold solution notebook: intro, parameters, set-up, one solution region, grade, quiz."""
    cells = [
        new_markdown_cell(f"# Lab {lab_id} — {title}\n\n**{MARK}:** the story of this lab: what "
                          "MediLake needs, what the learner builds, and a table of the exam skills it "
                          "practises.\n\nCells marked **TODO** are yours. When you are done, the last "
                          f"cells grade your tables (or run `medilake_lab check {lab_id}` in a "
                          "terminal) and quiz you."),
        new_code_cell("# Parameters (papermill can override them): None means the kit's defaults\n"
                      "warehouse = None   # warehouse root, default .medilake/warehouse\n"
                      "data_dir = None    # raw-data folder, default data/",
                      metadata={"tags": ["parameters"]}),
        new_code_cell("from medilake_lab import config, get_spark\n\n"
                      "spark = get_spark(warehouse)\n"
                      "print(\"warehouse:\", config.warehouse_dir(warehouse))"),
        new_markdown_cell(f"## 1. {MARK}: the first step\n\nExplain the step and the exam rule behind it."),
        new_code_cell(f"# BEGIN SOLUTION {MARK}: say what the learner writes here\n"
                      f"# {MARK}: the solution code that builds the lab's tables\n"
                      "# END SOLUTION"),
        new_markdown_cell(f"## Your grade\n\nThe grader reads your tables without Spark. In a terminal: "
                          f"`medilake_lab check {lab_id}`."),
        new_code_cell(f"from medilake_lab import grade\nfrom medilake_lab import show\n\n"
                      f"show(grade(\"{lab_id}\", warehouse, data_dir))"),
        new_markdown_cell(f"## Quiz\n\nCertification-style questions on this lab (also `medilake_lab quiz {lab_id}`)."),
        new_code_cell(f"from medilake_lab import show_quiz\n\nshow_quiz(\"{lab_id}\")"),
    ]
    return new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"}})


def _source_checkout() -> Path:
    """The project root, after making sure the imported package is its ``medilake_lab/``.

    Raises UsageError otherwise: new-lab would write the lab list of one copy of the kit and the
    notebooks of another.
    """
    root = config.project_root()
    package = Path(labs.__file__).resolve().parents[1]
    if package != (root / "medilake_lab").resolve():
        raise UsageError(f"dev new-lab edits the package source, but the imported package {package} "
                            f"is not the one in the project root {root}: run it in a source checkout "
                            "(with MEDILAKE_HOME unset, or set to the checkout the package is imported from)")
    return root


def new_lab(lab_id: str, title: str) -> list[Path]:
    """Scaffold lab ``lab_id`` ("05" or "5") titled ``title`` and append it to ``labs.yaml``.

    Returns the files written (labs.yaml first), all inside the project root.

    Raises
    ------
    UsageError: the id is not one or two digits, is listed already or does not come after the
        last lab's id, the title has characters other than letters, digits, spaces and ,&()'./+-,
        a target file exists, or the package is not the project root's (see
        :func:`_source_checkout`). Nothing is written then.
    MediLakeError: ``labs.yaml`` does not validate with the new entry (it is restored).
    """
    from medilake_lab.course.notebooks import build_learner_notebooks, labs_dir, solutions_dir
    from medilake_lab.quiz.loader import CATALOGUE_FILE, default_bank_dir, load_catalogue
    from medilake_lab.quiz.model import FORMAT_VERSION

    root = _source_checkout()
    if not re.fullmatch(r"\d{1,2}", lab_id):
        raise UsageError(f"lab id {lab_id!r} is not a number like 05")
    lab_id = lab_id.zfill(2)
    name = slug(title)
    if not _TITLE.fullmatch(title) or not name:
        raise UsageError(f"title {title!r}: use letters, digits, spaces and ,&()'./+- only, "
                            "starting with a letter or digit")
    listed = labs.all_labs()
    if any(lab.id == lab_id for lab in listed):
        raise UsageError(f"lab {lab_id} exists already in {labs.LABS_FILE}; choose another id")
    if listed and lab_id < listed[-1].id:
        raise UsageError(f"labs are listed in course order and the last is {listed[-1].id}; "
                            f"a new lab needs a later id")
    notebook = f"{lab_id}_{name}.ipynb"
    targets = {
        "solution": solutions_dir() / notebook,
        "checks": Path(grader.__file__).with_name(f"lab{lab_id}.py"),
        "quiz": default_bank_dir() / f"lab{lab_id}.yaml",
        "test": root / "tests" / f"test_lab{lab_id}.py",
    }
    existing = [str(path) for path in targets.values() if path.exists()]
    if existing:
        raise UsageError(f"lab {lab_id} would overwrite {', '.join(existing)}; remove or rename them first")
    catalogue = load_catalogue(default_bank_dir() / CATALOGUE_FILE)
    objective = sorted(catalogue.objective_ids())[0]

    values = {"id": lab_id, "title": title, "slug": name, "notebook": notebook, "mark": MARK,
              "format_version": FORMAT_VERSION, "objective": objective,
              "title_yaml": json.dumps(title, ensure_ascii=False),
              "bank_title_yaml": json.dumps(f"Lab {lab_id} - {title}", ensure_ascii=False)}
    entry = _LABS_ENTRY.format(**values)
    before = labs.LABS_FILE.read_text()
    labs.LABS_FILE.write_text(before.rstrip("\n") + "\n" + entry)
    labs.all_labs.cache_clear()
    try:
        labs.all_labs()
    except MediLakeError:
        labs.LABS_FILE.write_text(before)
        labs.all_labs.cache_clear()
        raise
    targets["solution"].parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(solution_notebook(lab_id, title), targets["solution"])
    targets["checks"].write_text(_CHECKS_MODULE.format(**values))
    targets["quiz"].write_text(_QUIZ_BANK.format(**values))
    targets["test"].parent.mkdir(parents=True, exist_ok=True)
    targets["test"].write_text(_TEST_MODULE.format(**values))
    learner = build_learner_notebooks(write=True)
    return [labs.LABS_FILE, *targets.values(), *(labs_dir() / n for n in learner)]


# ------------------------------------------------------------------ learner copies of pipeline projects

#: A solution region in a pipeline project's files: ``# BEGIN SOLUTION <todo>`` (Python) or
#: ``-- BEGIN SOLUTION <todo>`` (SQL) up to the matching ``END SOLUTION`` line.
_PROJECT_REGION = re.compile(r"^(?P<indent>[ \t]*)(?P<mark>#|--) BEGIN SOLUTION\b(?P<todo>.*?)\n(?P<body>.*?)"
                             r"^[ \t]*(?P=mark) END SOLUTION[ \t]*(?:\n|$)", re.MULTILINE | re.DOTALL)


def _project_stub(match: re.Match[str]) -> str:
    """The learner's lines for one region: the TODO comment and code that fails naming it
    (Python: raises NotImplementedError; SQL: a query of a table that does not exist, so the
    pipeline's dry run and run stop at ``TODO_your_query_here``)."""
    indent, mark, todo = match["indent"], match["mark"], match["todo"].strip() or "your code here"
    if mark == "#":
        return f"{indent}# TODO: {todo}\n{indent}raise NotImplementedError({json.dumps('TODO: ' + todo)})\n"
    return f"{indent}-- TODO: {todo}\n{indent}SELECT * FROM TODO_your_query_here\n"


def learner_project_file(text: str, where: str = "") -> str:
    """A pipeline project file (``.py``/``.sql``) with every solution region replaced by a TODO stub.

    Raises
    ------
    NotebookError: a ``BEGIN SOLUTION`` is left without its ``END SOLUTION`` (``where`` names the file).
    """
    from medilake_lab.errors import NotebookError

    stripped = _PROJECT_REGION.sub(_project_stub, text)
    if "BEGIN SOLUTION" in stripped or "END SOLUTION" in stripped:
        raise NotebookError(f"{where}: a BEGIN SOLUTION without its END SOLUTION (or the reverse)")
    return stripped


def build_learner_projects(write: bool = True) -> list[str]:
    """Regenerate the learner copies ``labs/<project>/`` of the pipeline projects in ``solutions/``
    (folders holding a ``spark-pipeline.yml``): ``.py`` and ``.sql`` files through
    :func:`learner_project_file`, other files copied; files no longer in the solution are removed.

    Returns the project files (``<project>/<path>``) that were stale; with ``write=False`` only
    reports them.
    """
    from medilake_lab.course.notebooks import labs_dir, solutions_dir

    stale = []
    for spec in sorted(solutions_dir().glob("*/spark-pipeline.yml")):
        source, target = spec.parent, labs_dir() / spec.parent.name
        wanted = {}
        for path in sorted(p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            relative = path.relative_to(source)
            text = path.read_text(encoding="utf-8")
            wanted[relative] = (learner_project_file(text, f"{source.name}/{relative.as_posix()}")
                                if path.suffix in (".py", ".sql") else text)
        present = {p.relative_to(target) for p in target.rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts} if target.exists() else set()
        for relative in sorted(present - set(wanted)):
            stale.append(f"{source.name}/{relative.as_posix()}")
            if write:
                (target / relative).unlink()
        for relative, text in wanted.items():
            path = target / relative
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(f"{source.name}/{relative.as_posix()}")
                if write:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text, encoding="utf-8")
    return stale
