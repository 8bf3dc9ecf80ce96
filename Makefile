# One command each: `make demo` installs and runs the walkthrough, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install install-native demo test lint bench

# Nothing is compiled: every dependency, llama.cpp (xllamacpp) included, is a prebuilt wheel.
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -e ".[dev]"
	touch $@

# Opt-in: llama-cpp-python compiled for this CPU (-march=native), never with ggml's AMX path,
# which crashes on some Intel Xeons (SIGILL). Needs a C/C++ compiler and 5-10 minutes; no pip
# cache, so that a wheel built for another CPU is never reused. Run it again on a new CPU.
NO_AMX := $(if $(filter x86_64,$(shell uname -m)),-mno-amx-tile -mno-amx-int8 -mno-amx-bf16)
install-native: install
	$(BIN)/python -m pip uninstall --quiet --yes llama-cpp-python
	CMAKE_ARGS="-DGGML_NATIVE=ON" CFLAGS="$(NO_AMX)" CXXFLAGS="$(NO_AMX)" \
		$(BIN)/python -m pip install --no-cache-dir -e ".[llama]"

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
	$(BIN)/python benchmarks/retrieval.py --data $(dir $(CRANFIELD))
