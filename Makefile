# One command for what CI checks first: `make check` (format, lint, types, the tests
# but the slow ones, on both cores). CI then runs `make test-slow`.
PY ?= .venv/bin/python
# Test processes: one per core (pytest-xdist).
JOBS ?= 2

.PHONY: check format lint types test test-slow test-fast

check: format lint types test

format:
	$(PY) -m ruff format --check src tests benchmarks

lint:
	$(PY) -m ruff check src tests benchmarks

types:
	$(PY) -m mypy

# Everything but the tests marked slow (each over half a minute).
test:
	$(PY) -m pytest -q -n $(JOBS) -m "not slow"

# The slow tests: more seeds of the simulator, the full demo. The second step of CI.
test-slow:
	$(PY) -m pytest -q -n $(JOBS) -m slow

# The inner loop: no slow test, no end-to-end run (analysis, report, demo), no test
# marked heavy (each over a few seconds), and a tenth of each property test's examples
# (tests/budget.py). Under 2 minutes; `make check` runs everything it leaves out.
test-fast:
	CONCERTED_TEST_FAST=1 $(PY) -m pytest -q -n $(JOBS) -m "not slow and not e2e and not heavy" \
		--deselect src/concerted/testing/__init__.py::concerted.testing.check_detector
