# Vigie: `make demo` starts the platform on embedded defaults, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench bench-api install system-deps clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,inference,dvr,alerts,push,billing]'
	# pyds-stubs declares Python 3.12 only, but its stubs hold for 3.11: the DeepStream adapter type-checks against them.
	$(BIN)/python -m pip install --quiet --no-deps --ignore-requires-python pyds-stubs==1.2.2
	touch $(STAMP)

install: system-deps $(STAMP)

# Debian packages the platform needs on a fresh machine (idempotent; skipped when already present).
system-deps:
	@bash scripts/install-system-deps.sh

demo: install
	$(BIN)/vigie demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

test: install lint typecheck
	$(BIN)/pytest

bench: install
	$(MAKE) $(BENCHES)

bench-api: $(STAMP)
	$(BIN)/python -m bench.api

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache

# Each package adds its own targets (bench-<name>, demo processes) in mk/<package>.mk and appends to BENCHES.
BENCHES := bench-api
-include mk/*.mk
