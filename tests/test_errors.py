"""One error policy (issue #14 item 4): every kit exception lives in ``medilake_lab.errors`` under
``MediLakeError`` and carries its exit code; the CLI maps them in one place (message on stderr, no
traceback); nothing is swallowed; a corrupt or foreign progress file is moved aside intact, with a
note naming both paths, and every command carries on (a newer format is refused and kept).
Fast: no JVM (grading runs against an empty warehouse)."""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import medilake_lab
from medilake_lab import errors
from medilake_lab.cli import app
from medilake_lab.contract.labs import get_lab
from medilake_lab.course import notebooks, progress, workflow
from medilake_lab.quiz import terminal
from medilake_lab.quiz.loader import LoadedBank, load_bank
from medilake_lab.quiz.session import build_exam, build_quiz
from medilake_lab.runtime import config, jars, local_fs

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


def test_setup_without_a_class_data_archive_warns_and_still_succeeds(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    """The archive only makes Spark start sooner: a failure to write it is a warning, not a failed
    set-up (every `make` target runs `setup`)."""
    from medilake_lab.runtime import class_archive

    def no_archive(force: bool = False) -> Path:
        raise errors.SetupError("could not write the JVM's class-data archive x.jsa (Spark works without it)")

    monkeypatch.setattr(jars, "require_java", lambda: 17)
    monkeypatch.setattr(jars, "resolve_delta_jars", lambda force=False: [tmp_path / "io.delta_delta-spark.jar"])
    monkeypatch.setattr(local_fs, "build_jar", lambda force=False: tmp_path / "medilake-local-fs-x.jar")
    monkeypatch.setattr(class_archive, "build_archive", no_archive)
    result = runner.invoke(app, ["setup"])
    assert result.exit_code == 0, result.output
    assert "1 Delta jars cached" in result.stdout
    assert "WARN could not write the JVM's class-data archive x.jsa (Spark works without it)" in result.stdout


def test_setup_without_a_jdk_warns_and_still_writes_the_archive(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    """The kit's local file system classes are a speed-up too: without `javac` set-up says so and
    goes on to the class-data archive."""
    from medilake_lab.runtime import class_archive

    written = []
    monkeypatch.setattr(jars, "require_java", lambda: 17)
    monkeypatch.setattr(jars, "resolve_delta_jars", lambda force=False: [tmp_path / "io.delta_delta-spark.jar"])
    monkeypatch.setattr(local_fs, "_javac", lambda: None)
    monkeypatch.setattr(local_fs, "jar_path", lambda: tmp_path / "kit" / "medilake-local-fs-x.jar")  # not built
    archive = tmp_path / "spark-classes-x.jsa"
    archive.write_bytes(b"0" * 2_000_000)
    monkeypatch.setattr(class_archive, "build_archive", lambda force=False: written.append(1) or archive)
    result = runner.invoke(app, ["setup"])
    assert result.exit_code == 0, result.output
    assert "WARN no `javac` found" in result.stdout and "Install a JDK 17" in result.stdout
    assert written and "OK class-data archive spark-classes-x.jsa (2 MB)" in result.stdout


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
    "not-utf8": '{"format_version": 1, "labs": {"01": "\xff"}}',
    "null": "null",
    "list": "[]",
    "string": '"progress"',
    "string-version": '{"format_version": "1", "labs": {}}',
    "labs-list": '{"format_version": 1, "labs": []}',
    "folder": None,
}


@pytest.fixture(params=SHAPES)
def broken(request: pytest.FixtureRequest) -> tuple[Path, bytes | None]:
    """The learner's progress file replaced by one of :data:`SHAPES`: ``(path, bytes written)``;
    a folder (None) holds one file of the learner's."""
    path, content = progress.progress_file(), SHAPES[request.param]
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is None:
        path.mkdir()
        (path / "notes.txt").write_text("the learner's own notes")
        return path, None
    data = content.encode("latin-1")  # "\xff": one byte that is no UTF-8
    path.write_bytes(data)
    return path, data


def _assert_moved_aside(result: Result, broken: tuple[Path, bytes | None], exit_code: int = 0) -> Path:
    """The command carried on (exit code as given, no traceback) after one note on stderr naming
    the file and where it went; the bytes moved aside are intact. Returns the moved path."""
    path, content = broken
    assert result.exit_code == exit_code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    [aside] = path.parent.glob(f"{path.name}.unreadable-*")
    assert re.fullmatch(r"progress\.json\.unreadable-\d{8}T\d{6}Z", aside.name), aside.name
    note = f"note: progress file {path} "
    assert result.stderr.count(note) == 1, result.stderr
    said = " ".join(result.stderr[result.stderr.index(note):].split())
    assert f"moved it to {aside} (nothing erased) and started a fresh progress record." in said
    if content is None:
        assert aside.is_dir() and (aside / "notes.txt").read_text() == "the learner's own notes"
    else:
        assert aside.read_bytes() == content, "the unreadable file is kept byte for byte"
    assert not path.is_dir()
    return aside


def test_status_with_a_broken_progress_file(broken: tuple[Path, bytes | None]) -> None:
    result = runner.invoke(app, ["status"])
    _assert_moved_aside(result, broken)
    assert "01_bronze_ingestion.ipynb" in result.stdout, "a fresh record starts at lab 01"


def test_hint_with_a_broken_progress_file(broken: tuple[Path, bytes | None], tmp_path: Path,
                                          bundled_data: Path) -> None:
    result = runner.invoke(app, ["hint", "01", "-w", str(tmp_path), "-d", str(bundled_data)])
    _assert_moved_aside(result, broken)
    assert "01.tables_exist" in result.stdout and "hint:" in result.stdout
    assert progress.load()["hints"] == {"01.tables_exist": 1}, "the hint level is counted afresh"


@pytest.mark.parametrize("as_json", [False, True])
def test_check_prints_and_records_the_grade(broken: tuple[Path, bytes | None], as_json: bool) -> None:
    result = runner.invoke(app, ["check", "01", *(["--json"] if as_json else [])])
    _assert_moved_aside(result, broken, 1)  # 1: the empty warehouse fails its checks
    total = len(get_lab("01").checks)
    if as_json:
        [report] = json.loads(result.stdout)
        assert (report["passed"], report["total"], report["recorded"]) == (0, total, True)
    else:
        assert f"Lab 01: 0/{total} checks passed" in result.stdout
    assert "not recorded" not in result.output
    assert progress.load()["labs"]["01"]["total"] == total


def test_reset_moves_the_tables_to_a_backup(broken: tuple[Path, bytes | None]) -> None:
    wh = config.warehouse_dir()
    table = wh / get_lab("02").tables[0].replace(".", "/")
    table.mkdir(parents=True)
    (table / "mine.txt").write_text("learner's table")
    _assert_moved_aside(runner.invoke(app, ["reset", "02", "--yes"]), broken)
    assert not table.exists()
    [kept] = (wh.parent / f"{wh.name}-backups").glob(f"*/{table.relative_to(wh)}/mine.txt")
    assert kept.read_text() == "learner's table"


def test_catchup_carries_on_and_records_its_grades(broken: tuple[Path, bytes | None], bundled_data: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    executed: list[str] = []
    monkeypatch.setattr(notebooks, "execute_lab", lambda spec, **_: executed.append(spec.id))
    result = runner.invoke(app, ["catchup", "02", "--yes", "-d", str(bundled_data)])
    _assert_moved_aside(result, broken)
    assert executed == ["01"]
    assert progress.load()["labs"]["01"]["by"] == "catchup"


@pytest.fixture(scope="module")
def bank() -> LoadedBank:
    return load_bank(None)


@pytest.fixture()
def loaded_once(bank: LoadedBank, monkeypatch: pytest.MonkeyPatch) -> LoadedBank:
    """The bundled bank, loaded once for the module (the CLI's quiz and exam get it too)."""
    monkeypatch.setattr(terminal, "load_bank", lambda _bank_dir: bank)
    return bank


def test_a_finished_quiz_is_saved(broken: tuple[Path, bytes | None], loaded_once: LoadedBank) -> None:
    plan = build_quiz(loaded_once.questions, "01", seed=5, count=3)
    answers = "".join(",".join(shown.correct) + "\n" for shown in plan)
    result = runner.invoke(app, ["quiz", "01", "--count", "3", "--seed", "5"], input=answers)
    _assert_moved_aside(result, broken)
    assert "Score: 3/3" in result.stdout and "Saved" in result.stdout
    [practice] = progress.load()["practice_quizzes"]
    assert (practice["score"], practice["total"]) == (3, 3)


def test_a_finished_exam_is_saved(broken: tuple[Path, bytes | None], loaded_once: LoadedBank) -> None:
    plan = build_exam(loaded_once.questions, loaded_once.catalogue, "associate", seed=1)
    answers = "".join(",".join(shown.correct) + "\n" for shown in plan.shown)
    result = runner.invoke(app, ["exam", "associate", "--seed", "1"], input=answers)
    _assert_moved_aside(result, broken)
    [exam] = progress.load()["exams"]
    assert exam["score"] == exam["total"] == len(plan.shown)


def test_the_notebook_quiz_saves_its_score(broken: tuple[Path, bytes | None], bank: LoadedBank,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
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
    assert "Score: 1/1" in root.children[1].value and "saved to your progress" in root.children[1].value
    assert f"note: progress file {broken[0]} " in capsys.readouterr().err
    [aside] = broken[0].parent.glob("progress.json.unreadable-*")
    assert aside.is_dir() if broken[1] is None else aside.read_bytes() == broken[1]


def test_the_full_screen_exam_says_so_before_it_starts(broken: tuple[Path, bytes | None], bank: LoadedBank,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The note is printed before the full screen takes the terminal (it would hide it)."""
    from medilake_lab.quiz import tui

    seen = []
    monkeypatch.setattr(tui, "load_bank", lambda _bank_dir: bank)
    monkeypatch.setattr(tui.MockExamApp, "run", lambda app: seen.append(capsys.readouterr().err))
    assert tui.run_exam_tui("associate", shuffle_seed=1) is None
    assert f"note: progress file {broken[0]} " in seen[0]
    assert len(list(broken[0].parent.glob("progress.json.unreadable-*"))) == 1


def test_two_files_moved_aside_in_the_same_second_keep_both(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "_now_stamp", lambda: "20261202T140000Z")
    path = progress.progress_file(tmp_path)
    for text in ("first", "second"):
        path.write_text(text)
        assert progress.load(tmp_path)["labs"] == {}
    kept = sorted(p.name for p in tmp_path.glob("progress.json.unreadable-*"))
    assert kept == ["progress.json.unreadable-20261202T140000Z", "progress.json.unreadable-20261202T140000Z-2"]
    assert [(tmp_path / name).read_text() for name in kept] == ["first", "second"]


def test_a_newer_format_is_refused_and_kept_where_it_is() -> None:
    """Not moved aside: it most likely holds a good record that a newer kit wrote."""
    path = progress.progress_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = '{"format_version": 99, "labs": "a shape this kit does not know"}'
    path.write_text(text)
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1, result.output
    assert f"progress file {path} has format_version 99, newer than this kit reads" in result.stderr
    assert "Upgrade medilake_lab" in result.stderr
    assert path.read_text() == text and not list(path.parent.glob("*.unreadable-*"))


def test_a_progress_file_that_cannot_be_moved_aside_is_an_error(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = progress.progress_file(tmp_path)
    path.write_text("[]")

    def read_only_folder(self: Path, target: Path) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "rename", read_only_folder)
    with pytest.raises(errors.ProgressFileError, match=r"holds a list, .* and cannot be moved aside "
                                                       r"\(Permission denied\)"):
        progress.load(tmp_path)
    assert path.read_text() == "[]"


def test_a_state_folder_that_cannot_exist_names_the_setting(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("MEDILAKE_STATE", str(tmp_path / "a-file" / "state"))
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1, result.output
    assert "cannot be read (Not a directory)" in result.stderr and "MEDILAKE_STATE" in result.stderr
