# make run   - create .venv, install, migrate the database, start the worker in the foreground
# make test  - install dev dependencies and run the whole suite on SQLite and PostgreSQL,
#              on PYTEST_WORKERS processes (pytest-xdist; default auto = one per CPU, 0 = no workers)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
PYTEST_WORKERS ?= auto
# The project's own bytecode, compiled as pip compiles an installed package's (an editable install
# does not): every process started (the daemon, the tests' subprocesses) then reads it, even where
# PYTHONDONTWRITEBYTECODE keeps Python from writing it. Up-to-date files are skipped.
COMPILE = $(BIN)/python -m compileall -q -x '/\.venv/' worker cli web jobs reports tests >/dev/null

.PHONY: run test install install-dev migrate bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e . --config-settings editable_mode=compat
	touch $@

$(DEV_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
	touch $@

install: $(STAMP)
install-dev: $(DEV_STAMP)

migrate: install
	$(BIN)/tokentally migrate

run: migrate
	$(COMPILE)
	mkdir -p var/inbox
	exec $(BIN)/tokentally run

test: install-dev
	$(COMPILE)
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

bench: install
	$(BIN)/tokentally bench ingest --events 100000

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
