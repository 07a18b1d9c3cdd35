# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test coverage lint format screenshots bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml setup.py | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml setup.py | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(STAMP)

demo: $(STAMP)
	$(BIN)/ktriage demo

test: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	# Two workers, each taking whole files (a module's simulated cluster stays in one
	# process): most tests wait on loopback I/O, so two overlap well on two cores.
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# The whole suite, measuring the packages that talk to the cluster and the files:
# sources/ and actions/ must stay at 92 % or more.
coverage: $(TEST_STAMP)
	$(BIN)/python -m pytest -q --cov=ktriage/sources --cov=ktriage/actions \
		--cov-report=term-missing:skip-covered --cov-fail-under=92

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(TEST_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

screenshots: $(TEST_STAMP)
	$(BIN)/python -m ktriage.ui.screenshots screenshots

# Every benchmark quick enough to run together (about 10 minutes on 2 cores); the
# figures are ratios to baselines run in the same process tree.
bench: $(STAMP)
	$(BIN)/python benchmarks/replay.py
	$(BIN)/python benchmarks/rollup.py
	$(BIN)/python benchmarks/live_load.py
	$(BIN)/python benchmarks/ui_latency.py
	$(BIN)/python benchmarks/containment_state.py --signals 20000
	$(BIN)/python benchmarks/pipeline_memory.py
	$(BIN)/python benchmarks/first_paint.py --rounds 3
	$(BIN)/python benchmarks/pods.py --pods 20000 50000
	$(BIN)/python benchmarks/blast_radius.py

# The replay figures only, on smaller files (about a minute).
bench-quick: $(STAMP)
	$(BIN)/python benchmarks/replay.py --lines 50000 --pairs 3 --skip-in-process

clean:
	rm -rf $(VENV) build *.egg-info
