# One task runner: these targets are exactly what CI runs (.ci/run calls `make test`).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR ?= ./santinel-data
HOST ?= 127.0.0.1
PORT ?= 8080
EXAMPLES_DIR := .cache/fhir-r4-examples
E2E_JS := tests/e2e/js
PYTEST_ARGS ?=

.PHONY: run test lint typecheck pytest install install-dev examples e2e-js bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## make run: start the server on an embedded SQLite database under ./santinel-data
run: install
	$(BIN)/santinel serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR) --demo-on-first-start

## The official FHIR R4 examples (npm package hl7.fhir.r4.examples), used by conformance tests.
$(EXAMPLES_DIR)/package/package.json:
	mkdir -p $(EXAMPLES_DIR)
	cd $(EXAMPLES_DIR) && npm pack --silent hl7.fhir.r4.examples@4.0.1 >/dev/null && tar xzf hl7.fhir.r4.examples-4.0.1.tgz

examples: $(EXAMPLES_DIR)/package/package.json

## The real JavaScript clients of the end-to-end tests (SMART fhirclient, playwright-core): pinned
## by package-lock.json, reinstalled when it changes. Chromium itself is Debian's (.ci/run).
$(E2E_JS)/node_modules/.installed: $(E2E_JS)/package-lock.json
	cd $(E2E_JS) && npm ci --silent
	touch $@

e2e-js: $(E2E_JS)/node_modules/.installed

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install-dev
	$(BIN)/mypy --strict src

pytest: install-dev examples e2e-js
	SANTINEL_FHIR_EXAMPLES=$(EXAMPLES_DIR)/package $(BIN)/pytest $(PYTEST_ARGS)

## make test: lint, type-check and the whole suite
test: lint typecheck pytest

bench: install-dev
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .cache .mypy_cache .ruff_cache .pytest_cache build dist $(E2E_JS)/node_modules
