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

.PHONY: help venv test unit notebooks book lab student execute clean benchmarks

help:
	@echo "make test       unit tests + every chapter notebook (nbval), quick profile"
	@echo "make book       build the HTML book into book/_build/html"
	@echo "make lab        open the chapters in JupyterLab"
	@echo "make student    student copies of the notebooks (solutions stripped) in student/"
	@echo "make execute    re-execute notebooks in place (NB=chapters/03_*.ipynb for one)"
	@echo "make benchmarks run the benchmark scripts"
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

test: $(STAMP)
	$(BIN)/python -m pytest tests --nbval-lax --nbval-cell-timeout=600 -p no:cacheprovider $(NOTEBOOKS) -q --durations=20

book: $(STAMP)
	$(BIN)/jupyter-book build . --toc book/_toc.yml --config _config.yml --path-output book -W -n --keep-going
	@echo "The book is at $(CURDIR)/book/_build/html/index.html"

lab: $(STAMP)
	$(BIN)/jupyter lab chapters

student: $(STAMP)
	$(BIN)/python -m genlab.exercises chapters student

NB ?= $(NOTEBOOKS)
execute: $(STAMP)
	for nb in $(NB); do \
	  echo "executing $$nb"; \
	  /usr/bin/time -f "$$nb: %e s" $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=900 --ExecutePreprocessor.kernel_name=python3 "$$nb" || exit 1; \
	done

benchmarks: $(STAMP)
	for script in benchmarks/*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf book/_build student .pytest_cache
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
