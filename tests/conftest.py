"""Shared helpers: a DuckDB connection or a case store per test, and ingest in one call."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import settings
from playwright.sync_api import Browser, sync_playwright

from concerted.adapters.base import AdapterOptions
from concerted.ingest import IngestOptions, SourceReport, ingest
from concerted.store import Store
from tests.budget import FAST

# The inner loop (`make test-fast`) draws a tenth of the default 100 examples.
settings.register_profile("fast", max_examples=10)
if FAST:
    settings.load_profile("fast")

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB in UTC with a 1 GB limit (modules may define their own)."""
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute("SET memory_limit = '1GB'")
    yield connection
    connection.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "case.duckdb", memory_limit="1GB") as s:
        yield s


def load(
    store: Store,
    path: Path,
    format: str = "generic",
    *,
    timezone: str | None = None,
    on_error: str = "raise",
    **adapter: Any,
) -> SourceReport:
    """Ingest one file with the given options and return its report."""
    options = IngestOptions(
        format=format,
        adapter=AdapterOptions(**adapter),
        timezone=timezone,
        on_error="quarantine" if on_error == "quarantine" else "raise",
    )
    (report,) = ingest(store, [path], options)
    return report


def rows(store: Store, query: str) -> list[tuple[Any, ...]]:
    return store.sql(query).fetchall()


#: Debian's chromium, which the report and the service page are opened in.
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "install Debian's chromium (apt-get install -y chromium)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield b
        b.close()
