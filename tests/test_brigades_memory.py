"""The brigade stage's memory: DuckDB makes room for the steps that hold the reports in
numpy (:meth:`~concerted.brigades.workspace.Workspace.lend`)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from concerted import detectors
from concerted.brigades import BrigadeSettings
from concerted.brigades.workspace import Workspace


def _limit(con: duckdb.DuckDBPyConnection) -> str:
    row = con.sql("SELECT current_setting('memory_limit')").fetchone()
    return str(row[0]) if row else ""


def _held(con: duckdb.DuckDBPyConnection) -> int:
    row = con.sql("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def test_lend_moves_duckdbs_tables_out_and_sets_the_limit_back(tmp_path: Path) -> None:
    """Inside the block DuckDB holds at most the lowered limit (its tables go to the
    temporary directory) and still reads them whole; after it, the limit is as shown
    before."""
    con = duckdb.connect(config={"memory_limit": "400MB", "temp_directory": str(tmp_path)})
    con.execute(
        "CREATE TEMP TABLE t AS SELECT i, repeat('x', 40) || i AS s FROM range(3000000) r(i)"
    )
    assert _held(con) > 150_000_000
    before = _limit(con)
    with Workspace(con) as ws, ws.lend(0.75):
        assert _held(con) <= 100_000_000
        assert con.sql("SELECT count(*), sum(i) FROM t").fetchone() == (3_000_000, 4499998500000)
    assert _limit(con) == before
    con.close()


def test_lend_changes_nothing_where_duckdb_cannot_make_room() -> None:
    """With no temporary directory DuckDB cannot move its tables out: the limit stays
    and the block runs all the same."""
    con = duckdb.connect(config={"memory_limit": "400MB", "temp_directory": ""})
    con.execute(
        "CREATE TEMP TABLE t AS SELECT i, repeat('x', 40) || i AS s FROM range(3000000) r(i)"
    )
    before = _limit(con)
    ran = False
    with Workspace(con) as ws, ws.lend(0.75):
        assert _limit(con) == before
        ran = True
    assert ran and _limit(con) == before
    con.close()


def test_the_detectors_that_hold_the_reports_in_numpy_say_so() -> None:
    """S5 and S7 hold every report in numpy arrays; the brigade stage lends them room."""
    holding = {d.name for d in BrigadeSettings().detectors if getattr(d, "holds_arrays", False)}
    assert holding == {"reporter_reputation", "report_automation"}
    assert all(detectors.get(name).name == name for name in holding)
