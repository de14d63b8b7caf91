"""One error policy (issue #14 item 4): every kit exception lives in ``medilake_lab.errors`` under
``MediLakeError`` and carries its exit code; the CLI maps them in one place (message on stderr, no
traceback); nothing is swallowed; a corrupt or foreign progress file is reported with its name
and the fix, and kept as it is. Fast: no JVM (grading runs against an empty warehouse)."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import medilake_lab
from medilake_lab import errors
from medilake_lab.cli import app
from medilake_lab.contract.labs import get_lab
from medilake_lab.course import progress, workflow
from medilake_lab.quiz import terminal
from medilake_lab.quiz.loader import LoadedBank, load_bank
from medilake_lab.quiz.session import build_exam, build_quiz
from medilake_lab.runtime import config, jars

runner = CliRunner()

# ---------------------------------------------------------------- the policy itself

def _package_exceptions() -> list[type[BaseException]]:
    """Every exception class defined at module level anywhere in the package."""
    found = []
    for info in pkgutil.walk_packages(medilake_lab.__path__, "medilake_lab."):
        module = importlib.import_module(info.name)
        found += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                  if cls.__module__ == module.__name__ and issubclass(cls, BaseException)]
    return found


def test_every_kit_exception_is_in_errors_and_derives_from_the_root() -> None:
    classes = _package_exceptions()
    assert errors.ProgressFileError in classes, "the walk must reach errors.py"
    stray = [f"{cls.__module__}.{cls.__qualname__}" for cls in classes
             if cls.__module__ != errors.__name__]
    assert stray == [], "define these in medilake_lab/errors.py (under MediLakeError, with their exit code)"
    rootless = [cls.__qualname__ for cls in classes
                if cls.__module__ == errors.__name__ and not issubclass(cls, errors.MediLakeError)]
    assert rootless == []


def test_every_error_class_documents_itself_and_carries_an_exit_code() -> None:
    classes = [cls for _, cls in inspect.getmembers(errors, inspect.isclass)
               if issubclass(cls, errors.MediLakeError)]
    for cls in classes:
        assert cls.__doc__ and cls.__doc__.strip(), f"{cls.__name__} needs a docstring"
        expected = errors.EXIT_USAGE if issubclass(cls, errors.UsageError) else errors.EXIT_FAILURE
        assert cls.exit_code == expected, cls.__name__
    assert errors.LabNotFoundError.exit_code == 2 and errors.SetupError.exit_code == 1


# ---------------------------------------------------------------- the CLI maps them in one place

def test_a_usage_error_is_one_line_on_stderr_and_exit_2() -> None:
    result = runner.invoke(app, ["check", "09"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == "error: no lab '09'; known labs: " + ", ".join(
        lab.id for lab in workflow.all_labs())
    assert result.stdout == "" and "Traceback" not in result.output


def test_a_failure_from_deep_inside_a_command_exits_1_without_traceback(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_java() -> str:
        raise errors.SetupError("Java 17 or newer is needed; found none")

    monkeypatch.setattr(jars, "require_java", no_java)
    result = runner.invoke(app, ["setup"])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == "error: Java 17 or newer is needed; found none"
    assert "Traceback" not in result.output


def test_a_bug_is_not_turned_into_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(workflow, "status", broken)
    result = runner.invoke(app, ["status"])
    assert isinstance(result.exception, RuntimeError), "bugs keep their exception and traceback"
    assert "error:" not in result.output


def test_a_broken_quiz_import_fails_loudly() -> None:
    """The quiz commands used to vanish without a word when their import failed."""
    code = ("import sys; sys.modules['medilake_lab.quiz.commands'] = None\n"
            "from medilake_lab.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", code, "status"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    assert "Traceback" in done.stderr
    assert "ModuleNotFoundError: import of medilake_lab.quiz.commands halted" in done.stderr


def test_an_import_error_inside_a_quiz_command_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "medilake_lab.quiz.terminal", None)
    result = runner.invoke(app, ["quiz", "01"])
    assert result.exit_code == 1 and isinstance(result.exception, ImportError)


# ---------------------------------------------------------------- corrupt or foreign progress files

#: name → file content (None: a folder where the file should be)
SHAPES: dict[str, str | None] = {
    "empty": "",
    "not-json": "{progress: yes",
    "null": "null",
    "list": "[]",
    "string": '"progress"',
    "string-version": '{"format_version": "1", "labs": {}}',
    "labs-list": '{"format_version": 1, "labs": []}',
    "folder": None,
}


@pytest.fixture(params=SHAPES)
def broken(request: pytest.FixtureRequest) -> tuple[Path, str | None]:
    """The learner's progress file replaced by one of :data:`SHAPES`: ``(path, content)``."""
    path, content = progress.progress_file(), SHAPES[request.param]
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is None:
        path.mkdir()
    else:
        path.write_text(content)
    return path, content


def _assert_reported(result: object, broken: tuple[Path, str | None], exit_code: int) -> None:
    """Exit code as given, no traceback, the message names the file and the fix, file kept."""
    path, content = broken
    assert result.exit_code == exit_code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert f"progress file {path} " in result.stderr
    assert f"`mv {path} {path}.bak`" in result.stderr
    if content is None:
        assert path.is_dir() and not any(path.iterdir())
    else:
        assert path.read_text() == content, "the progress file must be kept as it was"


def test_status_with_a_broken_progress_file(broken: tuple[Path, str | None]) -> None:
    _assert_reported(runner.invoke(app, ["status"]), broken, 1)


def test_hint_with_a_broken_progress_file(broken: tuple[Path, str | None], tmp_path: Path,
                                          bundled_data: Path) -> None:
    result = runner.invoke(app, ["hint", "01", "-w", str(tmp_path), "-d", str(bundled_data)])
    _assert_reported(result, broken, 1)


@pytest.mark.parametrize("as_json", [False, True])
def test_check_prints_the_grade_and_skips_saving_it(broken: tuple[Path, str | None],
                                                    as_json: bool) -> None:
    result = runner.invoke(app, ["check", "01", *(["--json"] if as_json else [])])
    _assert_reported(result, broken, 1)  # 1: the empty warehouse fails its checks
    total = len(get_lab("01").checks)
    if as_json:
        [report] = json.loads(result.stdout)
        assert (report["passed"], report["total"], report["recorded"]) == (0, total, False)
    else:
        assert f"Lab 01: 0/{total} checks passed" in result.stdout
    assert f"not recorded in your progress: progress file {broken[0]}" in result.stderr


def test_reset_refuses_before_removing_anything(broken: tuple[Path, str | None]) -> None:
    table = config.warehouse_dir() / get_lab("02").tables[0].replace(".", "/")
    table.mkdir(parents=True)
    _assert_reported(runner.invoke(app, ["reset", "02", "--yes"]), broken, 1)
    assert table.exists()


def test_catchup_refuses_before_changing_anything(broken: tuple[Path, str | None],
                                                  bundled_data: Path) -> None:
    table = config.warehouse_dir() / get_lab("01").tables[0].replace(".", "/")
    table.mkdir(parents=True)
    _assert_reported(runner.invoke(app, ["catchup", "02", "--yes", "-d", str(bundled_data)]), broken, 1)
    assert table.exists()


@pytest.fixture(scope="module")
def bank() -> LoadedBank:
    return load_bank(None)


@pytest.fixture()
def loaded_once(bank: LoadedBank, monkeypatch: pytest.MonkeyPatch) -> LoadedBank:
    """The bundled bank, loaded once for the module (the CLI's quiz and exam get it too)."""
    monkeypatch.setattr(terminal, "load_bank", lambda _bank_dir: bank)
    return bank


def test_a_finished_quiz_shows_the_score_then_why_it_is_not_saved(
        broken: tuple[Path, str | None], loaded_once: LoadedBank) -> None:
    plan = build_quiz(loaded_once.questions, "01", seed=5, count=3)
    answers = "".join(",".join(shown.correct) + "\n" for shown in plan)
    result = runner.invoke(app, ["quiz", "01", "--count", "3", "--seed", "5"], input=answers)
    _assert_reported(result, broken, 1)
    assert "Score: 3/3" in result.stdout and "Saved to" not in result.stdout
    assert "Your score 3/3 (shown above) was not saved." in result.stderr


def test_a_finished_exam_shows_the_score_then_why_it_is_not_saved(
        broken: tuple[Path, str | None], loaded_once: LoadedBank) -> None:
    plan = build_exam(loaded_once.questions, loaded_once.catalogue, "associate", seed=1)
    answers = "".join(",".join(shown.correct) + "\n" for shown in plan.shown)
    result = runner.invoke(app, ["exam", "associate", "--seed", "1"], input=answers)
    _assert_reported(result, broken, 1)
    score = f"{len(plan.shown)}/{len(plan.shown)}"
    assert f"Score: {score}" in result.stdout
    assert f"Your score {score} (shown above) was not saved." in result.stderr


def test_the_notebook_quiz_says_why_its_score_is_not_saved(broken: tuple[Path, str | None],
                                                          bank: LoadedBank,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ipywidgets")
    from medilake_lab.quiz import widget

    monkeypatch.setattr(widget, "load_bank", lambda _bank_dir: bank)
    root = widget.show_quiz("01", shuffle_seed=2, count=1, display=False)
    [card] = root.cards
    if card.radio is not None:
        card.radio.index = card.shown.letters.index(card.shown.correct[0])
    else:
        for letter in card.shown.correct:
            card.boxes[card.shown.letters.index(letter)].value = True
    card.button.click()
    assert "Score: 1/1" in root.children[1].value and "not saved" in root.children[1].value
    assert f"progress file {broken[0]}" in root.children[1].value
    assert broken[0].is_dir() if broken[1] is None else broken[0].read_text() == broken[1]


def test_a_newer_format_says_to_upgrade() -> None:
    path = progress.progress_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"format_version": 99, "labs": "a shape this kit does not know"}')
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1, result.output
    assert f"progress file {path} has format_version 99, newer than this kit reads" in result.stderr
    assert "Upgrade medilake_lab" in result.stderr


def test_a_state_folder_that_cannot_exist_names_the_setting(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("MEDILAKE_STATE", str(tmp_path / "a-file" / "state"))
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1, result.output
    assert "cannot be read (Not a directory)" in result.stderr and "MEDILAKE_STATE" in result.stderr
