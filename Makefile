# make demo: create .venv when missing, install, record the synthetic demo trial (SQLite).
# make test: create .venv when missing, install, run the whole suite (SQLite and PostgreSQL).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DB ?= demo.sqlite

.PHONY: demo test install lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm
	LEDGER_DATABASE_URL=sqlite:///$(DEMO_DB) LEDGER_USER=demo $(BIN)/ledger demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check ledger tests migrations benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# make bench: the ledger at scale against bare eventsourcing (SQLite, and PostgreSQL when it answers);
# BENCH_ARGS="--patients 400 --no-postgres --json" to change it. Not part of make test.
bench: $(STAMP)
	$(BIN)/python -m benchmarks.scale $(BENCH_ARGS)

.PHONY: bench-import bench-verify bench-feed bench-outage bench-racing torture
bench-import: $(STAMP)
	$(BIN)/python -m benchmarks.import_speed

# make bench-verify: ledger verify over an untouched ledger of ~100k events, against reading the same rows
bench-verify: $(STAMP)
	$(BIN)/python -m benchmarks.verify_speed $(BENCH_ARGS)

# make bench-feed: catch-up throughput and subscriber lag of `ledger serve` over a ledger of ~50k events, against
# reading the same events in-process (SQLite, and PostgreSQL when it answers; a few minutes)
bench-feed: $(STAMP)
	$(BIN)/python -m benchmarks.feed_speed $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.sqlite *.sqlite-wal *.sqlite-shm

# make bench-outage: restarts the local PostgreSQL during an import and during `ledger serve` (run it where nothing else needs the server)
bench-outage: $(STAMP)
	$(BIN)/python -m benchmarks.outage $(BENCH_ARGS)

# make torture: an import, the projection follower and the NATS relay each killed with SIGKILL 50 times at random
# moments and resumed, on SQLite and PostgreSQL; prints kills, lost and duplicated events (BENCH_ARGS="--kills 10" for fewer)
torture: $(STAMP)
	$(BIN)/python -m benchmarks.torture $(BENCH_ARGS)

# make bench-racing: 4 writer processes recording the same patients' facts at once, against one writer with the same
# commands (SQLite, and PostgreSQL when it answers; about 1.5 minutes)
bench-racing: $(STAMP)
	$(BIN)/python -m benchmarks.racing $(BENCH_ARGS)
