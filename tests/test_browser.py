"""Browser tier (DESIGN §9): a learner's lab in JupyterLab, driven in Debian's headless Chromium.

JupyterLab runs on a free port with a token, on a copy of ``labs/01_bronze_ingestion.ipynb``, with its
own warehouse (empty) and progress file; Selenium drives the system Chromium through the system
chromedriver (no browser download). The test opens the lab (it must not come up marked unsaved),
runs its quiz cell, picks an option, presses Check and reads the feedback (and the answer in the
progress file), runs the grade cell and reads the HTML table against the grader's own report, then
types ``medilake_lab check 01`` in JupyterLab's own terminal (File › New › Terminal).
Screenshots of each step go to ``.medilake/test-output/test_browser/``.

Without Chromium it skips, naming the install command (``.ci/run`` installs it).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from medilake_lab import grader
from medilake_lab.contract.labs import get_lab

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / ".medilake" / "test-output" / "test_browser"
INSTALL = "apt-get install -y chromium chromium-driver"
LAB = get_lab("01")
TIMEOUT = 180  # seconds for JupyterLab, the kernel and a cell on a busy 2-core machine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _make_lab_options() -> list[str]:
    """The JupyterLab options ``make lab`` passes (the Makefile's LAB_OPTIONS)."""
    shown = subprocess.run(["make", "-s", "--no-print-directory", "--eval", "print-lab-options: ; @echo $(LAB_OPTIONS)",
                            "print-lab-options"], cwd=ROOT, capture_output=True, text=True, check=True)
    return shown.stdout.split()


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """JupyterLab on a copy of lab 01, as ``make lab`` starts it; yields its URL, token, folders."""
    pytest.importorskip("selenium", reason="pip install -e '.[dev]' (selenium is a dev extra)")
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip(f"no Chromium/chromedriver: install them with `{INSTALL}` (as .ci/run does)")
    home = tmp_path_factory.mktemp("browser")
    notebooks, settings = home / "labs", home / "settings"
    notebooks.mkdir()
    shutil.copy(ROOT / "labs" / LAB.notebook, notebooks / LAB.notebook)
    news = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))  # no pop-up over the cells
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, "MEDILAKE_STATE": str(home / "state"), "MEDILAKE_WAREHOUSE": str(home / "warehouse"),
           "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}", "JUPYTERLAB_WORKSPACES_DIR": str(home / "ws")}
    port, token = _free_port(), "medilake-browser-test"
    command = [str(venv_bin / "jupyter"), "lab", str(notebooks), *_make_lab_options(), "--no-browser",
               f"--port={port}", f"--IdentityProvider.token={token}", f"--LabApp.user_settings_dir={settings}"]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = home / "jupyterlab.log"
    with log.open("w") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=home)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start: {log.read_text()[-2000:]}")
                time.sleep(1)
        yield {"url": url, "token": token, "home": home, "log": log}
        assert "without encryption" not in log.read_text(), "a kernel warned about its transport"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(scope="module")
def browser(lab_server: dict) -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.binary_location = shutil.which("chromium")
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)
    yield driver
    driver.quit()


def _wait(driver, condition, what: str, timeout: float = TIMEOUT):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.5).until(lambda d: condition(d))
    except TimeoutException:
        driver.save_screenshot(str(SHOTS / "timeout.png"))
        pytest.fail(f"timed out after {timeout} s waiting for {what} (screenshot: {SHOTS / 'timeout.png'})")


def _started(path: Path, seconds: float) -> bool:
    """Whether ``path`` appears within ``seconds`` (a command typed into the terminal created it)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.5)
    return False


def _cell(driver, contains: str):
    """The notebook cell whose source contains ``contains``."""
    from selenium.webdriver.common.by import By

    for cell in driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"):
        editor = cell.find_elements(By.CSS_SELECTOR, ".jp-InputArea-editor .cm-content")
        if editor and contains in editor[0].get_attribute("textContent"):
            return cell
    pytest.fail(f"no cell containing {contains!r} in {LAB.notebook}")


def _run(driver, cell) -> None:
    """Run one cell as a learner does: click into it, Shift+Enter; wait until it has run."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", cell)
    cell.find_element(By.CSS_SELECTOR, ".cm-content").click()
    cell.find_element(By.CSS_SELECTOR, ".cm-content").send_keys(Keys.SHIFT, Keys.ENTER)

    def ran(_driver) -> bool:
        prompt = cell.find_element(By.CSS_SELECTOR, ".jp-InputPrompt").get_attribute("textContent")
        return prompt.strip() not in ("[ ]:", "[*]:", "")
    _wait(driver, ran, "the cell to finish")


def _menu(driver, *labels: str) -> None:
    """Click through JupyterLab's menu bar, e.g. ``_menu(driver, "File", "New", "Terminal")``."""
    from selenium.webdriver.common.by import By

    def items(d, css: str, label: str) -> list:
        return [e for e in d.find_elements(By.CSS_SELECTOR, css) if e.text.strip() == label]

    items(driver, ".lm-MenuBar-item", labels[0])[0].click()
    for label in labels[1:]:
        _wait(driver, lambda d, label=label: items(d, ".lm-Menu-item .lm-Menu-itemLabel", label),
              f"the menu item {label!r}")[0].click()


def _shot(driver, name: str, element=None) -> Path:
    if element is not None:
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", element)
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def test_a_learner_lab_opens_saved_and_its_quiz_and_grade_work(lab_server: dict, browser) -> None:
    from selenium.webdriver.common.by import By

    driver, home = browser, lab_server["home"]
    driver.get(f"{lab_server['url']}/lab/tree/{LAB.notebook}?token={lab_server['token']}")
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator[data-status='idle']"),
          "the notebook's kernel to be idle")
    time.sleep(2)  # JupyterLab writes the kernel's metadata into the notebook model once connected
    tab = driver.find_element(By.CSS_SELECTOR, "li.lm-TabBar-tab.jp-mod-current")
    _shot(driver, "1-lab-opened")
    assert LAB.notebook in tab.text and "jp-mod-dirty" not in tab.get_attribute("class"), \
        "the lab opened marked unsaved: its kernelspec/language_info differ from the installed kernel's"

    _run(driver, _cell(driver, "warehouse = None"))  # the parameters cell: the kit's defaults

    quiz = _cell(driver, f'show_quiz("{LAB.id}")')
    _run(driver, quiz)
    radios = _wait(driver, lambda d: quiz.find_elements(By.CSS_SELECTOR, ".widget-radio-box input[type=radio]"),
                   "the quiz's options")
    assert len(quiz.find_elements(By.XPATH, ".//h3[starts-with(normalize-space(), 'Lab 01 quiz')]")) == 1, \
        "the quiz is drawn once"
    _shot(driver, "2-quiz-shown", quiz)
    # the question order is shuffled: answer the first single-choice card, with its own Check button
    card = radios[0].find_element(By.XPATH, "./ancestor::div[contains(@class, 'widget-vbox')][1]")
    radios[0].click()
    card.find_element(By.XPATH, ".//button[normalize-space()='Check']").click()
    feedback = _wait(driver, lambda d: [e for e in card.find_elements(By.CSS_SELECTOR, ".widget-html-content")
                                        if "Why:" in e.text], "the quiz feedback")[0]
    _shot(driver, "3-quiz-feedback", feedback)
    correct = feedback.text.startswith("Correct")
    assert correct or feedback.text.startswith("Not quite: the answer is"), feedback.text
    assert f"Score: {int(correct)}/1" in quiz.text and "each answer is saved as it is checked" in quiz.text
    history = json.loads((home / "state" / "progress.json").read_text())["history"]
    assert len(history) == 1 and next(iter(history)).startswith("L01-"), history

    grade_cell = _cell(driver, f'grade("{LAB.id}", warehouse, data_dir)')
    _run(driver, grade_cell)
    table = _wait(driver, lambda d: grade_cell.find_elements(By.CSS_SELECTOR, ".medilake-grade table"),
                  "the grade table")[0]
    _shot(driver, "4-grade-table", grade_cell)
    rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
    report = grader.grade(LAB.id, home / "warehouse")  # the same empty warehouse, graded here
    assert [(r[0], r[1]) for r in rows] == [(r.id, r.status.value) for r in report.results]
    assert rows[0][1] == "FAIL" and f"0/{report.total} checks passed" in grade_cell.text
    assert "hint:" in grade_cell.text and "exam rule:" in grade_cell.text

    # JupyterLab's own terminal (File › New › Terminal), where the README sends the learner to type
    # `medilake_lab check`; JupyterLab's output is a log file here, as when `make lab` is piped
    _menu(driver, "File", "New", "Terminal")
    terminal = _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-Terminal .xterm-helper-textarea"),
                     "the terminal")[0]
    typed = home / "terminal-check.txt"
    (home / "warehouse").mkdir(exist_ok=True)  # as the lab's first Spark cell leaves it (none ran here)
    # the terminal's websocket connects after its widget appears and keys typed before are lost: type
    # the command again (harmless) until the shell has started it, as a learner would on a busy machine
    for _attempt in range(6):
        time.sleep(2)
        terminal.send_keys(f"medilake_lab check {LAB.id} 2>&1 | tee {typed}\n")
        if _started(typed, seconds=10):
            break
    _wait(driver, lambda d: typed.exists() and any(end in typed.read_text() for end in ("passed", "not found", "rror")),
          "`medilake_lab check` in the terminal")
    _shot(driver, "5-terminal-check")
    assert f"Lab {LAB.id}: 0/{report.total} checks passed" in typed.read_text(), typed.read_text()
