"""The case store: one DuckDB file per case.

A case file holds the contract tables (``accounts``, ``posts``, ``reports``, ``roles``
and the derived ``actions``), the record of every ingested ``sources`` file, the rows
set aside in ``quarantine``, and ``case_meta`` (schema version, pseudonymisation key
fingerprint).

The stages work on the case's connection, :attr:`Store.con`, in SQL; nothing loops
over rows in Python. :meth:`Store.relation` (a case table as a lazy relation) and
:meth:`Store.sql` are conveniences over that connection, not an engine interface. The
stages whose cost grows faster than the input (deriving the actions, the co-action
pairing, the stratified test's sums) run through an engine opened on the connection
(:mod:`concerted.engines`), the seam a second engine (Apache Spark) plugs into.

DuckDB runs out of core: a memory limit and a spill directory keep large inputs within
bounds (``memory_limit``, ``temp_directory``; by default half the machine's memory and
``CASE.duckdb.tmp`` beside the case).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb

from concerted import __version__
from concerted.actions import install_macros
from concerted.errors import StoreError
from concerted.schema import CONTRACTS, INPUT_TABLES

__all__ = ["SCHEMA_VERSION", "Store", "default_memory_limit"]

SCHEMA_VERSION = "1"

_BOOKKEEPING = (
    """CREATE TABLE IF NOT EXISTS case_meta (key VARCHAR PRIMARY KEY, value VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS sources (
        source_id INTEGER PRIMARY KEY,
        path VARCHAR NOT NULL,
        sha256 VARCHAR NOT NULL,
        format VARCHAR NOT NULL,
        options JSON NOT NULL,
        fingerprint VARCHAR NOT NULL UNIQUE,
        ingested_at TIMESTAMPTZ NOT NULL,
        rows_read BIGINT NOT NULL,
        rows_set_aside BIGINT NOT NULL,
        rows_duplicate BIGINT NOT NULL,
        rows_added JSON NOT NULL,
        actions_added BIGINT NOT NULL,
        seconds DOUBLE NOT NULL,
        concerted_version VARCHAR NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS quarantine (
        source_id INTEGER NOT NULL,
        "table" VARCHAR,
        "row" BIGINT,
        line BIGINT,
        "column" VARCHAR,
        reason VARCHAR NOT NULL,
        raw VARCHAR
    )""",
)


# Reasons with the quoted value masked, so that like errors count together.
_QUARANTINE_SUMMARY = r"""
    SELECT "table", regexp_replace(reason, '''[^'']*''', '''...''', 'g'), count(*)
    FROM quarantine GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2
"""


def default_memory_limit() -> str:
    """Half of this machine's memory, or ``CONCERTED_MEMORY_LIMIT`` when set."""
    configured = os.environ.get("CONCERTED_MEMORY_LIMIT")
    if configured:
        return configured
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return "4GB"
    return f"{max(1, total // 2 // 2**30)}GiB"


class Store:
    """An open case file.

    >>> with Store(":memory:") as store:
    ...     store.counts()["posts"]
    0
    """

    def __init__(
        self,
        path: str | Path,
        *,
        read_only: bool = False,
        memory_limit: str | None = None,
        temp_directory: str | Path | None = None,
        threads: int | None = None,
    ) -> None:
        self.path = str(path)
        in_memory = self.path == ":memory:"
        if read_only and not in_memory and not Path(self.path).exists():
            raise StoreError(f"no case file at {self.path}")
        config: dict[str, Any] = {"memory_limit": memory_limit or default_memory_limit()}
        if temp_directory or not in_memory:
            spill = Path(temp_directory) if temp_directory else Path(self.path + ".tmp")
            config["temp_directory"] = str(spill)
        if threads:
            config["threads"] = threads
        try:
            self.con = duckdb.connect(self.path, read_only=read_only, config=config)
        except duckdb.Error as exc:
            raise StoreError(f"cannot open case file {self.path}: {exc}") from exc
        self.con.execute("SET TimeZone = 'UTC'")
        install_macros(self.con)
        if not read_only:
            self._create()
        self._check_version()

    def _create(self) -> None:
        for statement in _BOOKKEEPING:
            self.con.execute(statement)
        for contract in CONTRACTS.values():
            self.con.execute(contract.ddl())
        self.con.execute(
            "INSERT INTO case_meta VALUES ('schema_version', ?), ('created_by', ?) "
            "ON CONFLICT DO NOTHING",
            [SCHEMA_VERSION, f"concerted {__version__}"],
        )

    def _check_version(self) -> None:
        try:
            found = self.meta("schema_version")
        except duckdb.Error as exc:
            raise StoreError(f"{self.path} is not a concerted case file") from exc
        if found != SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has case schema version {found}; this concerted "
                f"({__version__}) reads version {SCHEMA_VERSION}"
            )

    # -- reading the case ------------------------------------------------------------

    def relation(self, table: str) -> duckdb.DuckDBPyRelation:
        """A case table as a lazy relation (nothing is read until it is consumed)."""
        if table not in CONTRACTS and table not in ("sources", "quarantine"):
            raise StoreError(f"the case has no table {table!r}")
        return self.con.table(table)

    def sql(self, query: str, params: Sequence[object] | None = None) -> duckdb.DuckDBPyRelation:
        """Run SQL over the case's tables."""
        return self.con.sql(query, params=params)

    # -- bookkeeping ----------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self.con.execute("SELECT value FROM case_meta WHERE key = ?", [key]).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.con.execute(
            "INSERT INTO case_meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = ?",
            [key, value, value],
        )

    def counts(self) -> dict[str, int]:
        """Rows per contract table."""
        out: dict[str, int] = {}
        for name in CONTRACTS:
            row = self.con.execute(f'SELECT count(*) FROM "{name}"').fetchone()
            out[name] = int(row[0]) if row else 0
        return out

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All or nothing: a failure leaves the case as it was."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def info(self) -> dict[str, Any]:
        """What the case holds: counts per table, platform and kind; time spans; sources."""

        def rows(query: str) -> list[tuple[Any, ...]]:
            return self.con.execute(query).fetchall()

        def span(table: str, column: str) -> dict[str, str | None]:
            first, last = rows(
                f"SELECT strftime(min({column}), '%Y-%m-%dT%H:%M:%SZ'), "
                f"strftime(max({column}), '%Y-%m-%dT%H:%M:%SZ') FROM {table}"
            )[0]
            return {"first": first, "last": last}

        counts = self.counts()
        tables: dict[str, Any] = {}
        for name in INPUT_TABLES:
            tables[name] = {
                "rows": counts[name],
                "by_platform": dict(
                    rows(f"SELECT platform, count(*) FROM {name} GROUP BY 1 ORDER BY 1")
                ),
            }
        tables["accounts"]["by_kind"] = dict(
            rows("SELECT kind, count(*) FROM accounts GROUP BY 1 ORDER BY 1")
        )
        tables["posts"]["accounts"] = rows("SELECT count(DISTINCT account_id) FROM posts")[0][0]
        tables["posts"]["span"] = span("posts", "ts")
        tables["reports"]["span"] = span("reports", "ts")
        tables["actions"] = {
            "rows": counts["actions"],
            "actors": rows("SELECT count(DISTINCT actor_id) FROM actions")[0][0],
            "by_kind": dict(rows("SELECT kind, count(*) FROM actions GROUP BY 1 ORDER BY 1")),
            "by_platform": dict(
                rows("SELECT platform, count(*) FROM actions GROUP BY 1 ORDER BY 1")
            ),
            "span": span("actions", "ts"),
        }
        sources = [
            {
                "source_id": sid,
                "path": path,
                "sha256": sha,
                "format": fmt,
                "ingested_at": at,
                "rows_read": read,
                "rows_set_aside": aside,
                "rows_duplicate": dup,
                "actions_added": acts,
            }
            for sid, path, sha, fmt, at, read, aside, dup, acts in rows(
                "SELECT source_id, path, sha256, format, "
                "strftime(ingested_at, '%Y-%m-%dT%H:%M:%SZ'), rows_read, rows_set_aside, "
                "rows_duplicate, actions_added FROM sources ORDER BY source_id"
            )
        ]
        quarantine = [
            {"table": table, "reason": reason, "rows": n}
            for table, reason, n in rows(_QUARANTINE_SUMMARY)
        ]
        return {
            "case": self.path,
            "schema_version": self.meta("schema_version"),
            "pseudonymised": self.meta("pseudonymisation_key") is not None,
            "tables": tables,
            "sources": sources,
            "quarantine": quarantine,
        }

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
