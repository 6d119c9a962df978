# The two commands of the README: `make run` and `make test`. Each sets up what it needs from
# nothing (virtualenv, pinned requirements, PostgreSQL 15 + pg_cron, Redis) and reuses what exists.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PYTEST_ARGS ?=
# A separate set of test services (e.g. TEST_PROFILE=ci2 for a second checkout on one machine).
TEST_PROFILE ?= test

.PHONY: run test lint format services stop venv e2e-deps

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@if ! $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; \
	  else echo "make: python3-venv is missing. Install it with: sudo apt-get install -y python3-venv" >&2; exit 1; fi; \
	fi
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "make: installing pinned requirements into $(VENV)"
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt 2>&1 | { grep -v "^WARNING: Location" || true; }
	@touch $@

services:
	@$(PYTHON) scripts/services.py start --profile dev

stop:
	@$(PYTHON) scripts/services.py stop --profile dev
	@$(PYTHON) scripts/services.py stop --profile $(TEST_PROFILE)

run: venv
	@$(PYTHON) scripts/services.py start --profile dev --quiet
	@ORCHESTRATOR_PROFILE=dev $(PY) manage.py bootstrap --port $(PORT)
	@ORCHESTRATOR_PROFILE=dev $(PY) manage.py jobs apply --yes
	@echo "make: starting web (http://127.0.0.1:$(PORT)/admin/), worker and beat; Ctrl-C stops them"
	@ORCHESTRATOR_PROFILE=dev WEB_PORT=$(PORT) exec $(VENV)/bin/honcho -f Procfile start

# The browser tests drive Debian's chromium through Playwright (never `playwright install`).
e2e-deps:
	@if ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "make: chromium is missing (browser tests). Install it with: sudo apt-get install -y chromium" >&2; exit 1; fi; \
	fi

test: venv e2e-deps
	@$(PYTHON) scripts/services.py start --profile $(TEST_PROFILE) --quiet
	@ORCHESTRATOR_PROFILE=$(TEST_PROFILE) $(PY) manage.py bootstrap --no-admin
	@ORCHESTRATOR_PROFILE=$(TEST_PROFILE) $(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy

format: venv
	@$(VENV)/bin/ruff check --fix .
	@$(VENV)/bin/ruff format .
