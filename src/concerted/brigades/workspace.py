"""The brigade stage's temporary relations, made and dropped in one place.

Every stage of :func:`concerted.brigades.find` passes its state on in temporary tables
named ``_bg_*`` (and, while reports on posts count against their authors, temporary
``reports`` and ``actions`` that stand in for the case's). They are all made through
one :class:`Workspace`, which drops every one of them when the stage ends, whether it
ended well or not; nothing of the stage is left on the connection.

>>> import duckdb
>>> con = duckdb.connect()
>>> with Workspace(con) as ws:
...     _ = ws.table("_bg_x", "SELECT 1 AS one")
...     ws.scalar("SELECT count(*) FROM _bg_x")
1
>>> con.sql("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()[0]
0
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import duckdb
import pyarrow as pa

from concerted.detectors.pairing import memory_limit_bytes
from concerted.errors import ConfigError
from concerted.schema import EVIDENCE_CONTRACTS, quote_ident, sql_literal

__all__ = [
    "AUTOMATION",
    "BLOCKS",
    "CALLS",
    "CO_REPORT",
    "ORDER",
    "Workspace",
    "columns",
    "mapped",
]

#: The share of DuckDB's memory limit that :meth:`Workspace.lend` gives a step that
#: holds the reports in numpy (the scorer, S5, S7): at 10^7 reports under a 6 GB
#: limit, their arrays beside a full buffer pool took the process to 8.9 GiB; lent
#: this share, to 7.0 GiB at most in those steps (BENCHMARKS.md, "Reports").
LENT_SHARE = 0.35

#: Rows a batch when a result streams out of DuckDB (:func:`mapped`).
BATCH_ROWS = 1_000_000

# The detectors whose evidence the stage reads by name, each for one part of a
# brigade: co-reporting makes the reporters' network, blocks and list order join its
# components, calls name its mobilising posts and organisers, automation its tools.
CO_REPORT = "co_report"
BLOCKS = "dense_block"
ORDER = "list_order"
CALLS = "mobilisation"
AUTOMATION = "report_automation"


def columns(part: str) -> str:
    """The columns of evidence ``part``, in contract order, for a SELECT list.

    >>> columns("signals").split(", ")[:3]
    ['detector', 'layer', 'entity']
    """
    return ", ".join(c.name for c in EVIDENCE_CONTRACTS[part].columns)


def mapped(
    relation: duckdb.DuckDBPyRelation | Iterable[pa.RecordBatch], schema: pa.Schema
) -> pa.Table:
    """The rows of ``relation`` (a query, or record batches) as an Arrow table in
    ``schema`` that lives in a
    memory-mapped file, not in the process's own memory: the batches stream from DuckDB
    into an Arrow file in the temporary directory (``$TMPDIR``), one batch at a time,
    which is then mapped and unlinked (the mapping keeps it until the table goes). A
    result of millions of rows then costs the pages read from it, which the system can
    drop and read again, instead of its whole size held in Python.

    >>> con = duckdb.connect()
    >>> t = mapped(con.sql("SELECT range AS i FROM range(3)"), pa.schema([("i", pa.int64())]))
    >>> t.column("i").to_pylist(), t.schema.names
    ([0, 1, 2], ['i'])
    """
    handle, path = tempfile.mkstemp(prefix="concerted-result-", suffix=".arrow")
    os.close(handle)
    try:
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            batches = (
                relation.to_arrow_reader(BATCH_ROWS)
                if isinstance(relation, duckdb.DuckDBPyRelation)
                else relation
            )
            for batch in batches:
                writer.write_batch(batch.cast(schema))
        table = pa.ipc.open_file(pa.memory_map(path, "r")).read_all()
    finally:
        # Unlinked at once: the mapping holds the file's pages, and nothing is left
        # behind whatever happens (where the system refuses, the file stays in $TMPDIR).
        try:
            os.unlink(path)
        except OSError:
            pass
    return table


class Workspace:
    """The temporary tables of one run of the stage on ``con``."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._tables: list[str] = []

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def own(self, *names: str) -> None:
        """Take tables made elsewhere (a detector's) to drop with the rest."""
        for name in names:
            if name not in self._tables:
                self._tables.append(name)

    def table(self, name: str, query: str) -> str:
        """Make (or replace) temporary table ``name`` from ``query``; returns the name."""
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {query}")
        self.own(name)
        return name

    def empty(self, name: str, part: str) -> str:
        """Make ``name`` an empty table with the columns of evidence ``part``."""
        cols = ", ".join(
            f"CAST(NULL AS {c.type}) AS {c.name}" for c in EVIDENCE_CONTRACTS[part].columns
        )
        return self.table(name, f"SELECT {cols} WHERE false")

    def drop(self, *names: str) -> None:
        """Drop these tables now."""
        for name in names:
            self.con.execute(f"DROP TABLE IF EXISTS temp.main.{quote_ident(name)}")
            if name in self._tables:
                self._tables.remove(name)

    @contextmanager
    def arrow(self, name: str, table: pa.Table) -> Iterator[str]:
        """Arrow ``table`` readable as ``name`` inside the block."""
        self.con.register(name, table)
        try:
            yield name
        finally:
            self.con.unregister(name)

    @contextmanager
    def lend(self, share: float = LENT_SHARE) -> Iterator[None]:
        """Inside the block, DuckDB's memory limit is lowered by ``share`` (DuckDB
        moves what it holds beyond it to its temporary directory), so that arrays the
        block holds outside DuckDB fit within the limit beside it; afterwards it is set
        back as DuckDB showed it (to a twentieth of the unit it shows). Where
        DuckDB cannot lower it (no temporary directory, no room to spill), nothing
        changes.

        >>> import duckdb
        >>> con = duckdb.connect(config={"memory_limit": "1GB"})
        >>> with Workspace(con) as ws, ws.lend(0.5):
        ...     con.sql("SELECT current_setting('memory_limit')").fetchone()
        ('476.7 MiB',)
        >>> con.sql("SELECT current_setting('memory_limit')").fetchone()
        ('953.6 MiB',)
        """
        shown = str(self.scalar("SELECT current_setting('memory_limit')"))
        # DuckDB shows the limit cut to a tenth of its unit: half a tenth more is
        # within a twentieth of the limit set, and shows as it did.
        number, _, unit = shown.partition(" ")
        try:
            before = f"{float(number) + 0.05} {unit}" if unit else shown
            lowered = int(memory_limit_bytes(self.con) * (1.0 - share))
        except (ConfigError, ValueError):
            before = ""
        if before:
            try:
                self.con.execute(f"SET memory_limit = '{lowered}B'")
            except duckdb.Error:
                # It could not move what it holds out (no temporary directory); the
                # lower limit stands all the same, so the former is set again.
                self.con.execute(f"SET memory_limit = {sql_literal(before)}")
                before = ""
        try:
            yield
        finally:
            if before:
                self.con.execute(f"SET memory_limit = {sql_literal(before)}")

    def scalar(self, query: str) -> Any:
        """The first value of ``query``'s first row (0 when it has none)."""
        row = self.con.execute(query).fetchone()
        return row[0] if row else 0

    def close(self) -> None:
        """Drop every table made or taken, newest first."""
        self.drop(*reversed(self._tables))
