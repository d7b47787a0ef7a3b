# Mallrun: `make run` for a working demo, `make test` for the full check. Needs only python3.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# Re-installs only when a requirements file is newer than the last install.
STAMP := $(VENV)/.requirements-installed
PYTEST_ARGS ?= -n 2

.PHONY: help install run test check lint format migrate seed collectstatic bench clean

help:
	@echo "make run      install, migrate, seed the demo, start web + worker + beat on http://127.0.0.1:$(PORT)"
	@echo "make test     install, then Django checks, migration check, ruff, and the whole pytest suite"
	@echo "make install  create $(VENV) and install the pinned requirements"
	@echo "make bench    run the benchmark scripts in bench/"
	@echo "make lint | format | migrate | seed | collectstatic"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check --quiet -r requirements-dev.txt
	touch $@

install: $(STAMP)

# Development targets default to DEBUG=1, like `run`; production sets its own variables.
migrate: export DEBUG ?= 1
migrate: install
	$(BIN)/python manage.py migrate --noinput

seed: export DEBUG ?= 1
seed: migrate
	$(BIN)/python manage.py seed_demo

# With the production variables (DEBUG off) this builds whitenoise's hashed, compressed files.
collectstatic: install
	$(BIN)/python manage.py collectstatic --noinput -v0

# The development run: DEBUG=1, SQLite file and the filesystem Celery broker (no services needed).
# Static files come straight from static/ through whitenoise's finders, so no collectstatic.
# honcho hands PORT to the first process (web); Ctrl-C stops them all.
run: export DEBUG = 1
# Links in the demo's emails and SMS point at the port it serves on.
run: export PORTAL_BASE_URL ?= http://127.0.0.1:$(PORT)
run: install
	@mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	@echo
	@echo "  Mallrun is starting on http://127.0.0.1:$(PORT)/  (Ctrl-C stops web, worker, beat and the simulator)"
	@echo
	@echo "  Demo logins, password mallrun-demo:"
	@echo "    ops            operator (superuser, /admin/)"
	@echo "    seller         seller manager (admin, own seller only)"
	@echo "    staff-fs-1     store associate, Fashion Show"
	@echo "    staff-fs-2     store associate, another Fashion Show store"
	@echo "    manager-fs-1   store manager of staff-fs-1's store"
	@echo "    driver-lv-1    driver in Las Vegas (also -2, -3), /driver/"
	@echo
	PATH="$(CURDIR)/$(BIN):$$PATH" exec $(BIN)/honcho -f Procfile.dev start -p $(PORT)

# Tests run with DEBUG=1 unless told otherwise (plain static storage, no SECRET_KEY needed);
# the production settings are checked by portal/tests/test_settings.py in subprocesses.
test: export DEBUG ?= 1
test: install
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest $(PYTEST_ARGS)
	@# The API intake and the eligibility recompute have a separate path for the embedded default
	@# (SQLite): when the run above used PostgreSQL, their tests run again on SQLite.
	@if [ -n "$$DATABASE_URL" ]; then \
	  echo "== again on the embedded default (SQLite): orders and eligibility"; \
	  env -u DATABASE_URL -u REDIS_URL $(BIN)/pytest $(PYTEST_ARGS) -m "not postgres and not redis and not browser" \
	    orders/tests retailers/tests/test_eligibility_sql.py retailers/tests/test_eligibility_sql_bulk.py; \
	fi

check: test

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Benchmarks build and empty their own data: they run on a PostgreSQL database of their own.
bench: export DEBUG ?= 1
bench: export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/mallrun_bench
bench: install
	@set -e; for script in $$(grep -l '__main__' bench/*.py); do echo "== $$script"; PYTHONPATH=. $(BIN)/python $$script; done

clean:
	rm -rf var staticfiles
