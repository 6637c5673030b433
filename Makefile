# Two commands for a fresh machine: `make demo` (set up + index this repo + answer queries)
# and `make test` (set up + run the whole suite).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint clean

$(BIN)/repoloop: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: the CPU build on disk; an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev,cluster]'
	touch $@

setup: $(BIN)/repoloop

demo: setup
	$(BIN)/repoloop index .
	$(BIN)/repoloop search "parse a source file into symbols with tree-sitter" -k 5
	$(BIN)/repoloop symbol IndexStore
	$(BIN)/repoloop context "where are index runs locked against concurrent writers?" --budget 1500

test: setup
	bash scripts/install-system-deps.sh
	$(BIN)/python -m pytest -q -ra

lint: setup
	$(BIN)/ruff check repoloop tests benchmarks

clean:
	rm -rf $(VENV) .repoloop
