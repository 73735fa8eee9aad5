# `make run` and `make test` are all a fresh machine needs: both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install system-deps run cluster lint test bench bench-instructions clean

install: $(INSTALLED)

$(INSTALLED): python-libs.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r python-libs.txt
	touch $@

# All three services, logs interleaved and labelled; Ctrl-C stops all three.
run: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile

# PostgreSQL, nginx and CLUSTER_PROCESSES (default 2) processes of each service, under honcho,
# at make run's addresses; data kept in .cluster/ (docs/operations.md). Ctrl-C stops all.
cluster: install system-deps
	$(BIN)/python -m harness.cluster

# ruff, then mypy, over the whole project (configured in pyproject.toml); `make test` runs it
# first, so a lint or type error fails the tests.
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# What the tests need from Debian's packages, installed only when absent (CI runs as root on
# a fresh machine): PostgreSQL, whose throwaway servers (harness/postgres.py) run every store
# and API test a second time; nginx, in front of the cluster tests' processes; Chromium, which
# the browser tests drive (never a download of Playwright's own browsers).
system-deps:
	ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || \
		(apt-get update && apt-get install -y postgresql)
	command -v nginx >/dev/null || test -x /usr/sbin/nginx || \
		(apt-get update && apt-get install -y nginx)
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

test: install system-deps lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The services under wrk load; prints a table, writes bench/results/*.json. wrk comes from
# Debian's packages, installed only when absent. BENCH_ARGS passes options (--help lists them).
bench: install
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Instructions per request of each service, counted by callgrind: within 0.6% from run to
# run, where `make bench` moves by 10-20% on a shared machine. valgrind from Debian too.
bench-instructions: install
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)
	command -v callgrind_control >/dev/null || (apt-get update && apt-get install -y valgrind)
	$(BIN)/python -m bench.instructions $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
