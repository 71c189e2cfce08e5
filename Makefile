# One command for everything CI checks: `make check`.
PY ?= .venv/bin/python

.PHONY: check format lint types test

check: format lint types test

format:
	$(PY) -m ruff format --check src tests benchmarks

lint:
	$(PY) -m ruff check src tests benchmarks

types:
	$(PY) -m mypy

test:
	$(PY) -m pytest -q
