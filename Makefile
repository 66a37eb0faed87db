# What a newcomer types: make run, make test, make lint, make bench.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install services run test unit lint format spec bench clean

$(STAMP): setup.py pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(STAMP)

# PostgreSQL, RabbitMQ and a Docker engine: used when running, installed and started otherwise.
services:
	bash scripts/ensure-services.sh
	bash scripts/build-test-images.sh

run: install
	bash scripts/run.sh

test: install services
	$(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

spec: install
	$(BIN)/catalogctl spec -o api_specs/openapi.yaml

bench: install services
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache var
