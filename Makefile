# MediLake Lab — every target does its own set-up on a fresh machine.
#   make demo   run the solution notebooks on the bundled data, then print the grade report
#   make test   run the whole test suite (unit, grader both ways, notebooks, CLI)
#   make test-fast  every grader check both ways on small fixture tables, no Java needed (about 4 min on 2 cores)
#   make test-browser  a learner lab's quiz and grade in JupyterLab in headless Chromium
#   make lab    open JupyterLab on labs/ (holds its terminal; extra JupyterLab options: make lab ARGS="--no-browser --port 8899")
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# `medilake_lab setup` done: the Delta jars, the kit's local file system jar and the JVM's class-data
# archive are cached (again when what the archive's name digests changes: a JVM started with other
# settings or another class path does not map it)
JARS := .medilake/jars/.set-up
ARCHIVE_INPUTS := medilake_lab/runtime/class_archive.py medilake_lab/runtime/config.py \
	medilake_lab/runtime/jars.py medilake_lab/runtime/local_fs.py \
	$(wildcard medilake_lab/runtime/java/medilake/hadoop/*.java medilake_lab/runtime/java/resources/*)
DEMO_WAREHOUSE := .medilake/demo-warehouse

.PHONY: setup demo test test-fast test-browser lab bench clean

setup: $(INSTALLED) $(JARS)

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else \
	  "MediLake Lab needs Python 3.11 (found %d.%d): install it, or run `make PYTHON=/path/to/python3.11 …`" % sys.version_info[:2])'
	@echo "Installing the kit into $(VENV)/ (first time only: a few minutes, about 500 MB to download)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (MediLake)" >/dev/null
	@touch $@

$(JARS): $(INSTALLED) $(ARCHIVE_INPUTS)
	$(BIN)/medilake_lab setup
	@touch $@

demo: setup
	rm -rf $(DEMO_WAREHOUSE)
	MEDILAKE_WAREHOUSE=$(DEMO_WAREHOUSE) $(BIN)/medilake_lab run all

# two workers (pytest-xdist): one runs the solution notebooks and the tests that grade what they built,
# the other everything else (the grouping and order are in the root conftest.py); TEST_WORKERS=0: one process.
# The suite's short-lived JVMs use the C1 JIT only, the kernels that run the whole course the default JIT
# (root conftest.py; TEST_JAVA_OPTIONS= sets no JVM option)
TEST_WORKERS ?= 2
WORKERS := $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadgroup --no-loadscope-reorder)
test: setup
	$(BIN)/pytest $(WORKERS)

# the fast tier needs the venv only: no Java, no Delta jars (tests/fast builds its tables with delta-rs)
test-fast: $(INSTALLED)
	$(BIN)/pytest $(WORKERS) -m "not spark and not notebooks and not browser"

# the browser tier: a lab's quiz and grade in JupyterLab in headless Chromium (skips without it)
test-browser: $(INSTALLED)
	$(BIN)/pytest -m browser tests/test_browser.py

# JupyterLab refuses to run as root unless told to: pass --allow-root only then. The venv leads
# PATH so that JupyterLab's own terminal has `medilake_lab`. LAB_OPTIONS (tests/test_browser.py
# starts JupyterLab with them too): notebooks open as saved (medilake_lab/course/labserver.py),
# kernels get CurveZMQ keys (no "running over TCP without encryption" warning per kernel), and
# the terminal is the user's shell as it is when `make lab` runs in a terminal (when its output
# is not a terminal, e.g. piped or logged, JupyterLab starts a login shell, whose /etc/profile
# resets PATH: `medilake_lab: command not found`).
LAB_OPTIONS := --ServerApp.contents_manager_class=medilake_lab.course.labserver.LabContentsManager \
	--KernelManager.transport_encryption=auto --ServerApp.terminado_settings=shell_command=$${SHELL:-/bin/bash}
# JupyterLab's defaults for this venv: no "get notified about Jupyter news?" pop-up over the lab
LAB_DEFAULTS := $(VENV)/share/jupyter/lab/settings/overrides.json
$(LAB_DEFAULTS): $(INSTALLED)
	@mkdir -p $(@D)
	@echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' > $@

lab: setup $(LAB_DEFAULTS)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/jupyter lab labs/ $(LAB_OPTIONS) $(if $(filter 0,$(shell id -u)),--allow-root) $(ARGS)

bench: setup
	cd benchmarks && ../$(BIN)/python run_all.py

clean:
	rm -rf $(VENV) .medilake
