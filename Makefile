# Todo API: `make run` serves on http://127.0.0.1:8000, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
PG_TEST_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/todo_test
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run migrate test test-sqlite test-postgres lint format bench clean

install: $(STAMP)

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

migrate: install
	cd backend && $(BIN)/alembic upgrade head

run: migrate
	cd backend && $(BIN)/uvicorn app.main:app --host $(HOST) --port $(PORT) \
		--loop uvloop --http httptools --no-access-log

# SQLite always; PostgreSQL too when TEST_DATABASE_URL is set or a server answers locally.
test: install
	rm -f backend/.coverage
	$(MAKE) --no-print-directory test-sqlite
	@if [ -n "$$TEST_DATABASE_URL" ] || $(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', 5432), 1)" 2>/dev/null; then \
		$(MAKE) --no-print-directory test-postgres; \
	else echo "No PostgreSQL answering on 127.0.0.1:5432 and TEST_DATABASE_URL unset: PostgreSQL run skipped"; fi
	cd backend && $(BIN)/coverage report --fail-under=90

test-sqlite: install
	cd backend && env -u TEST_DATABASE_URL $(BIN)/pytest --cov --cov-append -p no:cacheprovider $(PYTEST_ARGS)

test-postgres: install
	cd backend && TEST_DATABASE_URL="$${TEST_DATABASE_URL:-$(PG_TEST_URL)}" \
		$(BIN)/pytest --cov --cov-append -p no:cacheprovider $(PYTEST_ARGS)

lint: install
	cd backend && $(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy app

format: install
	cd backend && $(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean:
	rm -rf $(VENV) backend/.coverage backend/data

# Load benchmark beside the perf-ref reference (backend/bench/README.md); short pass:
# make bench BENCH_ARGS=--quick. Needs PostgreSQL on 127.0.0.1:5432; bench/run.py
# installs wrk with apt-get when it is missing (as root) and seeds its own databases.
bench: install
	cd backend && $(BIN)/python -m bench.run $(BENCH_ARGS)
