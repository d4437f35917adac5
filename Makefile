# Two commands do everything on a fresh Debian machine with Python 3.11 (see README.md):
#   make all    install, then run the whole pipeline (snakemake --cores all) -> results/paper/main.pdf
#   make test   install, then lint (ruff, snakefmt) and run the test suite
#   make bundle                 everything training produced, checksummed, in results/bundle.tar.gz
#   make all BUNDLE=archive     the paper from a bundle: verify, unpack, run only what comes after training
#   make lock                   regenerate requirements.lock (exact versions of every Python package) from pyproject.toml
# Options: MIRROR=dir (a folder of verified raw files for offline machines), CORES=n, CONFIG=file, ARGS="..." (extra snakemake args)

PYTHON ?= python3.11
VENV ?= .venv
CORES ?= all
CONFIG ?=
MIRROR ?=
ARGS ?=
BUNDLE ?=
BIN := $(VENV)/bin
LOCK := requirements.lock
LOCK_VENV := .venv-lock
PIP_TOOLS := pip-tools==7.6.2
LATEX_PACKAGES := latexmk texlive-latex-base texlive-latex-recommended texlive-latex-extra \
	texlive-fonts-recommended texlive-science lmodern poppler-utils
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SNAKEMAKE_ARGS := --cores $(CORES) $(if $(CONFIG),--configfile $(CONFIG)) \
	$(if $(MIRROR),--config 'data={"mirror": "$(abspath $(MIRROR))"}') $(ARGS)

.PHONY: all test lint format install lock latex bench report clean bundle

# With BUNDLE: the bundle's checksums are verified before anything is unpacked, and snakemake runs with the config
# the bundle was made with and the bundle route's rerun triggers; see docs/reproducibility.md, "The reviewers' bundle".
all: install latex
ifeq ($(BUNDLE),)
	$(BIN)/snakemake $(SNAKEMAKE_ARGS)
else
	$(BIN)/python -m covbench.tools.bundle rebuild $(abspath $(BUNDLE)) --cores $(CORES) $(ARGS)
endif

# Trains whatever is missing first, then archives the training rules' outputs, logs and benchmarks with a manifest.
bundle: install
	$(BIN)/snakemake results/bundle.tar.gz $(SNAKEMAKE_ARGS)

test: install latex lint
	COVBENCH_MIRROR=$(if $(MIRROR),$(abspath $(MIRROR)),) $(BIN)/python -m pytest -ra

# ruff (lint and format check) over the Python, snakefmt over the Snakefile and the rules; `make format` fixes both.
LINTED := src tests workflow/scripts
lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/snakefmt --check Snakefile workflow/rules

format: install
	$(BIN)/ruff check --fix $(LINTED)
	$(BIN)/ruff format $(LINTED)
	$(BIN)/snakefmt Snakefile workflow/rules

install: $(VENV)/.installed

# Exactly the locked versions, then the package itself without resolving anything more; pip check fails on a lock
# that no longer satisfies pyproject.toml (run make lock).
$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $@

# The lock is resolved in a venv of its own, so pip-tools never lands in the project's environment.
lock:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/pip install --quiet $(PIP_TOOLS)
	$(LOCK_VENV)/bin/pip-compile --quiet --upgrade --extra test --strip-extras --no-emit-index-url \
		--no-emit-find-links --output-file $(LOCK) pyproject.toml

# LaTeX for the paper, from Debian, only where it is missing (the paper rule says how if it still is).
latex:
	@command -v latexmk >/dev/null || { command -v apt-get >/dev/null && $(SUDO) apt-get update -qq \
		&& $(SUDO) apt-get install -y -qq --no-install-recommends $(LATEX_PACKAGES); } \
		|| echo "LaTeX not installed: the paper rule will fail, everything before it still runs"

bench: install
	$(BIN)/python -m covbench.tools.bench

report: install
	$(BIN)/snakemake $(SNAKEMAKE_ARGS) --report results/report.html

clean:
	rm -rf results .snakemake
