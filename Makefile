# One command each: `make demo` installs and runs the walkthrough, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -e ".[dev,llama]"
	touch $@

demo: install
	$(BIN)/ragcli ingest sample_corpus
	$(BIN)/ragcli ask "Who founded Gullstone Observatory, and in what year?"

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check ragcli tests benchmarks scripts
	$(BIN)/ruff format --check ragcli tests benchmarks scripts
	$(BIN)/mypy

# The quick ones; benchmarks/ holds more (reingest, big_pdf, search_scale, batch, precision,
# readahead, pgstore), each documented at its top. CRANFIELD points at a BEIR copy of
# Cranfield 1400.
CRANFIELD ?= ../shared/data/cranfield

bench: install
	$(BIN)/python benchmarks/ingest.py sample_corpus
	$(BIN)/python benchmarks/ask.py
	$(BIN)/python benchmarks/backends.py
	$(BIN)/python benchmarks/startup.py $(CRANFIELD)
	$(BIN)/python benchmarks/models.py
	$(BIN)/python benchmarks/retrieval.py $(CRANFIELD)
