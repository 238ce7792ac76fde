# damdp_lite developer tasks (GNU make >= 4.3).
#
#   make install     create $(VENV) and install the package with its pinned dev tools
#   make lab         start JupyterLab on notebooks/
#   make test        unit tests, then the notebooks in smoke mode (what .ci/run runs)
#   make colab-test  every notebook alone in a fresh Colab-like venv, installing itself (~3.5 min)
#
# Override on the command line, e.g. `make install PYTHON=python3.12 VENV=.venv312`.

PYTHON ?= python3
VENV ?= .venv
LAB_ARGS ?=
MUJOCO_GL ?= egl

STAMP := $(VENV)/.installed
# Jupyter refuses to run as root (containers, some cloud boxes) unless told it may.
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.DEFAULT_GOAL := help

.PHONY: help install lab test unit notebooks colab-test notebooks-sync notebooks-check lint clean browser

help:
	@echo "damdp_lite make targets:"
	@echo "  install    create $(VENV) with $(PYTHON) (>= 3.11) and pip install -e \".[pinned,dev]\""
	@echo "  lab        start JupyterLab on notebooks/ (MUJOCO_GL=$(MUJOCO_GL), LAB_ARGS=...)"
	@echo "  test       run 'unit' then 'notebooks'; fails if either fails"
	@echo "  unit       pytest tests/"
	@echo "  notebooks  execute notebooks/ with nbval in smoke mode (DAMDP_SMOKE=1)"
	@echo "  colab-test run each notebook alone in a fresh Colab-like venv (tests/colab/, ~3.5 min)"
	@echo "  browser    run every notebook in JupyterLab in headless Chromium (tests/browser/)"
	@echo "  notebooks-sync   update notebooks/*.ipynb cells from notebooks/src/*.py (keeps outputs)"
	@echo "  notebooks-check  fail if a notebook and its notebooks/src/ source disagree"
	@echo "  lint       ruff check damdp_lite tests benchmarks"
	@echo "  clean      remove $(VENV) and caches"
	@echo "Variables: PYTHON=$(PYTHON) VENV=$(VENV) LAB_ARGS=$(LAB_ARGS)"

# Created once; redone when pyproject.toml changes. `pinned` holds the exact versions of every
# dependency (the package itself only asks for ranges, so that Colab keeps its own torch).
# Never pass --upgrade here: it would replace the pinned torch with a 2.6 GB CUDA build.
$(STAMP): pyproject.toml
	@if [ ! -x "$(VENV)/bin/python" ]; then \
	  if ! "$(PYTHON)" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1; then \
	    echo "error: PYTHON=$(PYTHON) is not Python >= 3.11 (the package requires 3.11+); rerun with e.g. 'make install PYTHON=python3.11'" >&2; \
	    exit 1; \
	  fi; \
	  echo "creating $(VENV) with $(PYTHON)"; \
	  "$(PYTHON)" -m venv "$(VENV)"; \
	fi
	@# mujoco 4 came as three packages sharing one mujoco/ folder; a venv made before the pin
	@# moved to 3.17.0 (which dm-control needs) loses the two extra ones first, else their files
	@# would be left inside mujoco 3.17's folder.
	@if $(VENV)/bin/python -m pip show mujoco-core >/dev/null 2>&1; then \
	  $(VENV)/bin/python -m pip uninstall -y mujoco mujoco-core mujoco-studio; fi
	$(VENV)/bin/python -m pip install -e ".[pinned,dev]"
	touch $@

install: $(STAMP)

lab: $(STAMP)
	MUJOCO_GL=$(MUJOCO_GL) $(VENV)/bin/jupyter lab --notebook-dir=notebooks $(ROOT_FLAG) $(LAB_ARGS)

test: $(STAMP)
	$(MAKE) unit
	$(MAKE) notebooks

unit:
	OMP_NUM_THREADS=1 $(VENV)/bin/python -m pytest tests -q -n 2

notebooks:
	DAMDP_SMOKE=1 OMP_NUM_THREADS=1 $(VENV)/bin/python -m pytest --nbval-lax --nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg --nbval-cell-timeout=300 -p no:cacheprovider notebooks/ -q

# Colab, simulated (tests/colab/test_colab_like.py): a fresh venv with Colab's kind of
# preinstalled packages (torch, NumPy, ipywidgets 7, ...); each notebook, alone in an empty
# folder, installs this checkout with its own setup cell and runs in smoke mode. `make unit`
# skips it (it needs DAMDP_COLAB_TEST=1).
colab-test: $(STAMP)
	DAMDP_COLAB_TEST=1 $(VENV)/bin/python -m pytest tests/colab -q -p no:cacheprovider

# Every notebook in JupyterLab in a real browser: Debian's Chromium (apt-get, when missing and
# root) driven by the pinned Python playwright through executable_path, never `playwright
# install`. Without Chromium or playwright the tests skip and say why. Screenshots and
# report.json: tests/browser/screenshots/ (git-ignored).
# playwright is a dev pin (pyproject.toml), installed by `make install`.
browser: $(STAMP)
	@status="$$(bash tests/browser/install_chromium.sh)"; echo "$$status"; \
	DAMDP_BROWSER=1 DAMDP_CHROMIUM_STATUS="$$status" OMP_NUM_THREADS=1 \
	  $(VENV)/bin/python -m pytest tests/browser -v -rs -p no:cacheprovider --durations=0

# notebooks/src/NN_name.py (jupytext percent format) is the one editable source of
# notebooks/NN_name.ipynb. --update replaces the cells' inputs and metadata and keeps the stored
# outputs (an edited code cell keeps its old output: re-execute the notebook to refresh it).
NB_SOURCES := $(wildcard notebooks/src/*.py)

notebooks-sync:
	@for src in $(NB_SOURCES); do \
	  nb="notebooks/$$(basename "$$src" .py).ipynb"; \
	  $(VENV)/bin/jupytext --quiet --update --to notebook "$$src" -o "$$nb" || exit 1; \
	done

notebooks-check:
	$(VENV)/bin/python -m pytest tests/test_notebook_sources.py -q -p no:cacheprovider

lint:
	$(VENV)/bin/ruff check damdp_lite tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis build dist *.egg-info
	find . -path ./.git -prune -o -type d \( -name __pycache__ -o -name .ipynb_checkpoints \) -prune -exec rm -rf {} +
