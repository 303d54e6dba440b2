# genlab: two commands set everything up on a fresh machine.
#   make test   -- create .venv if missing, run the unit tests, then every chapter notebook (nbval)
#   make book   -- create .venv if missing, build the HTML book into book/_build/html
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard chapters/[0-9][0-9]_*.ipynb))
export GENLAB_PROFILE ?= quick
export PYDEVD_DISABLE_FILE_VALIDATION = 1
# Bit-for-bit repeatable CPU linear algebra (see genlab.device.REPRODUCIBLE_ENV).
export MKL_CBWR ?= AUTO,STRICT
export MKL_DYNAMIC ?= FALSE
export OMP_DYNAMIC ?= FALSE

.PHONY: help venv test unit notebooks book lab student execute clean benchmarks benchmarks-expensive check-book instructor

help:
	@echo "make test       unit tests + every chapter notebook (nbval), quick profile"
	@echo "make book       build the HTML book into book/_build/html"
	@echo "make lab        open the student copies (student/, made if missing) in JupyterLab"
	@echo "make instructor open the full chapters (with solutions) in JupyterLab"
	@echo "make student    rewrite student/ (solutions stripped) and nbgrader sources in student/nbgrader"
	@echo "make check-book build the book, open every page in headless Chromium offline, screenshots"
	@echo "make execute    re-execute notebooks in place (NB=chapters/03_*.ipynb for one)"
	@echo "make benchmarks run the cheap benchmarks (classical, deep throughput, memory; CPU)"
	@echo "make clean      remove build outputs (keeps .venv)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

unit: $(STAMP)
	$(BIN)/python -m pytest tests -q

# --nbval-lax: a notebook fails when a cell raises (the chapters assert what they
# teach), not when a printed number differs in its last digit or a timing changes.
notebooks: $(STAMP)
	$(BIN)/python -m pytest --nbval-lax --nbval-cell-timeout=600 -p no:cacheprovider $(NOTEBOOKS) -q

# PYTEST_ARGS adds options, e.g. PYTEST_ARGS=--junitxml=report.xml for benchmarks/book_cost.py --junit report.xml
PYTEST_ARGS ?=
test: $(STAMP)
	$(BIN)/ruff check genlab tests benchmarks tools
	$(BIN)/python -m pytest tests --nbval-lax --nbval-cell-timeout=600 -p no:cacheprovider $(NOTEBOOKS) -q --durations=20 $(PYTEST_ARGS)

book: $(STAMP)
	$(BIN)/jupyter-book build . --toc book/_toc.yml --config _config.yml --path-output book -W -n --keep-going
	@echo "The book is at $(CURDIR)/book/_build/html/index.html"

# Learners work in student/: copies made from chapters/ when missing; their own work is never overwritten
# (a chapter changed since the copy was made is written beside it, to student/updated/).
lab: $(STAMP)
	$(BIN)/python -m genlab.exercises chapters student --keep-existing
	$(BIN)/jupyter lab student

instructor: $(STAMP)
	$(BIN)/jupyter lab chapters

# Rewrites student/ from chapters/ (solutions stripped, checks kept) and nbgrader source notebooks.
student: $(STAMP)
	$(BIN)/python -m genlab.exercises chapters student --nbgrader student/nbgrader

# Builds the book, then opens every page in headless Chromium with the network off (tools/check_book.py).
check-book: book
	$(BIN)/python tools/check_book.py

NB ?= $(NOTEBOOKS)
execute: $(STAMP)
	for nb in $(NB); do \
	  echo "executing $$nb"; \
	  /usr/bin/time -f "$$nb: %e s" $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=900 --ExecutePreprocessor.kernel_name=python3 "$$nb" || exit 1; \
	done

# The cheap benchmarks (CPU, a few minutes on an idle 2-core machine): speed/parity of the classical models,
# deep-model throughput, peak memory. The training benchmarks take hours on a CPU and run one by one:
#   make benchmarks-expensive   (likelihood, flows, leaderboard, gan, diffusion; book_cost re-runs every notebook)
CHEAP_BENCHMARKS := classical deep_throughput memory
EXPENSIVE_BENCHMARKS := likelihood flows leaderboard gan diffusion book_cost
benchmarks: $(STAMP)
	for name in $(CHEAP_BENCHMARKS); do $(BIN)/python benchmarks/$$name.py || exit 1; done

benchmarks-expensive: $(STAMP)
	for name in $(EXPENSIVE_BENCHMARKS); do $(BIN)/python benchmarks/$$name.py || exit 1; done

clean:
	rm -rf book/_build student .pytest_cache
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
