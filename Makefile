# The two commands: `make run` starts the whole system, `make test` runs the whole suite.
# Both build .venv first; it is rebuilt only when requirements.txt changes.

PYTHON ?= python3
VENV := .venv
VENV_PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed

.DEFAULT_GOAL := help
.PHONY: help venv run test lint format clean bench chaos failover conformance conformance-baseline

help:
	@echo "make run    start Redis (embedded unless REDIS_URL is set), a worker and the web app on 127.0.0.1:$${PORT:-5000}"
	@echo "make test   run the whole test suite"
	@echo "make lint   check the code with ruff"
	@echo "make bench  measure against RQ, Celery and Huey (minutes; BENCH_QUICK=1 for a smoke check)"
	@echo "make chaos  10,000 tasks under kill -9, a Redis restart and a frozen worker: lost/run twice/recovery times (minutes)"
	@echo "make failover  kill -9 the Redis master under load, with and without WAIT: lost/run twice/resume time, WAIT's cost"
	@echo "make conformance [FILES=test_canvas.py]  Celery 5.7's own integration tests against the adapter (minutes)"
	@echo "make conformance-baseline [FILES=...]     the same tests against real Celery: records its pass list"
	@echo "make venv   create .venv and install requirements.txt (done by run and test)"

venv: $(STAMP)

# The stamp is newer than requirements.txt once it is installed, so a second `make` does nothing.
$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python 3.10+ is required, found " + sys.version.split()[0])'
	test -x $(VENV_PYTHON) || $(PYTHON) -m venv $(VENV)
	$(VENV_PYTHON) -m pip install --disable-pip-version-check -q -r requirements.txt
	touch $(STAMP)

run: venv
	$(VENV_PYTHON) -m app.launcher

# Three test processes on two cores: most tests wait on real servers and workers, not the CPU.
# TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= 3
test: venv
	$(VENV_PYTHON) -m pytest -n $(TEST_WORKERS)

# Issue 19's table against RQ, Celery and Huey on a Redis of its own: medians and ratios (minutes;
# BENCH_QUICK=1 for a smoke check). The peers in bench/requirements.txt are benchmark-only: they
# go to var/bench-extras (pip --target), not into the venv or requirements.txt.
BENCH_EXTRAS := var/bench-extras
$(BENCH_EXTRAS)/.installed: bench/requirements.txt
	$(VENV_PYTHON) -m pip install --disable-pip-version-check -q --target $(BENCH_EXTRAS) -r bench/requirements.txt
	touch $@

bench: venv $(BENCH_EXTRAS)/.installed
	PYTHONPATH=$(BENCH_EXTRAS) $(VENV_PYTHON) -m bench.peers

# Delivery guarantees under faults (bench/chaos.py): prints lost, run twice, overwritten and recovery times.
chaos: venv
	$(VENV_PYTHON) -m bench.chaos

# Redis Sentinel failover (bench/failover.py): a master, a replica and three sentinels on loopback,
# the master killed -9 under load, without and with wait_for_replicas; prints lost, run twice,
# time to resume and what WAIT costs a .delay().
failover: venv
	$(VENV_PYTHON) -m bench.failover

# Celery 5.7's own integration suite (from its sdist, fetched by pip into var/) against the adapter,
# on a private Redis; see conformance/run.py. Not part of `make test`: it takes minutes.
FILES ?=
conformance: venv
	$(VENV_PYTHON) -m conformance.run $(FILES)

# The same files against real Celery 5.7.0; rewrites conformance/celery-5.7.0-passes.txt for them.
conformance-baseline: venv
	$(VENV_PYTHON) -m conformance.run --baseline $(FILES)

lint: venv
	$(VENV)/bin/ruff check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf var .pytest_cache .ruff_cache
