# Todo API: `make run` serves on http://127.0.0.1:8000, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run serve migrate test test-pooler faults replicas lint format bench clean \
	docs-check lock check-lock walk-check schemathesis check-client

install: $(STAMP)

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

# With DATABASE_URL unset (the default) this migrates the embedded PostgreSQL under
# backend/data, starting it for the occasion when no app runs it.
migrate: install
	cd backend && $(BIN)/alembic upgrade head

# Without DATABASE_URL the app starts the embedded PostgreSQL itself (backend/data),
# migrates it and stops it when the last worker exits; with one, run `make migrate` first.
run: install
	cd backend && $(BIN)/uvicorn app.main:app --host $(HOST) --port $(PORT) \
		--loop uvloop --http httptools --no-access-log --no-proxy-headers $(UVICORN_ARGS)

# The production served process (backend/app/serve.py; the Docker image runs the same):
# uvicorn with the HTTP limits `run` lacks (431 for heads over 16 KiB, deadlines for
# heads and bodies, 503 beyond HTTP_MAX_CONNECTIONS) and a graceful stop on SIGTERM.
# Settings from the environment or .env: WEB_CONCURRENCY, HTTP_* (see .env.example).
serve: install
	cd backend && HOST=$(HOST) PORT=$(PORT) $(BIN)/python -m app.serve

# The whole suite, once: on TEST_DATABASE_URL when set, else on an embedded PostgreSQL
# of the run's own in a temporary directory (never on whatever answers on 5432).
test: install
	rm -f backend/.coverage
	cd backend && $(BIN)/pytest --cov -p no:cacheprovider $(PYTEST_ARGS)
	cd backend && $(BIN)/coverage report --fail-under=90

# The whole suite again, through a PgBouncer of its own in transaction mode in front of
# TEST_DATABASE_URL (a direct URL; scripts/test-pooler installs pgbouncer when missing).
test-pooler: install
	BIN=$(BIN) scripts/test-pooler

# Fault injection (backend/faults): a PostgreSQL cluster and an API process of its own on
# free loopback ports (never the server on 5432), restarts and kills under a write load,
# row locks, hung-up and slow clients; prints what it tried and saw, exits 1 on any loss,
# 500 or bound exceeded. E.g. FAULTS_ARGS="--only pg-fast --keep".
faults: install
	cd backend && $(BIN)/python -m faults $(FAULTS_ARGS)

# deploy/'s recipe on loopback: a PostgreSQL of its own, N replicas with Redis behind
# nginx (deploy/nginx.conf), and the cross-replica checks (revocation within 100 ms,
# shared rate limits, If-Match, Idempotency-Key, a rolling restart under load).
# REPLICAS_ARGS="--pooler direct" (or bare) puts PgBouncer in transaction mode between.
replicas: install
	cd backend && $(BIN)/python -m replicas $(REPLICAS_ARGS)

# pyproject.toml -> uv.lock -> requirements.txt. After changing a pin in pyproject.toml
# (or merging a branch that did), run this; commit all three files. uv is pinned (the
# dev group, tool.uv.required-version) so every machine writes the same files.
lock: install
	$(BIN)/uv lock
	UV=$(BIN)/uv scripts/requirements-txt > requirements.txt.new
	mv requirements.txt.new requirements.txt

# Fails when the three disagree (CI runs it): the fix is `make lock`.
check-lock: install
	UV=$(BIN)/uv scripts/check-lock

# The README's curl walk (scripts/walk) twice against `make run` on a free loopback port
# with a fresh DATA_DIR: signup, then 409 -> login, a task, the list, logout.
walk-check: install
	scripts/walk-check

# /docs and /redoc rendered by headless Chromium with no network but the app's own
# (scripts/docs-check: every operation drawn, Authorize shown, screenshot not blank).
# Needs Debian's chromium (apt-get install -y chromium; .ci/run installs it when missing).
docs-check: install
	BIN=$(BIN) scripts/docs-check

# Schemathesis (pinned in scripts/schemathesis, installed into .venv-schemathesis) against a
# live app with a database of its own on the machine's PostgreSQL (SCHEMATHESIS_DATABASE_URL),
# every check and phase; rate limits off, then on for the auth routes. ~2 min.
schemathesis: install
	BIN=$(BIN) scripts/schemathesis

# redocly lint of /openapi.json and a TypeScript client generated from it, compiled with
# tsc --strict (clients/typescript; needs Node.js 20+ and npm).
check-client: install
	BIN=$(BIN) scripts/check-client

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
