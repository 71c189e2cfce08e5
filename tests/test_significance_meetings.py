"""The stratified test's meetings grouped in runs of first accounts, and its sources
numbered within their accounts: the same rows as DuckDB's plain grouping."""

from __future__ import annotations

import duckdb
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.engines import duck
from tests.budget import examples

#: Numbered events: two accounts, a source of each, a stratum and whether the event
#: straddles two strata.
EVENTS = st.lists(
    st.tuples(
        st.integers(1, 7),
        st.integers(1, 9),
        st.integers(1, 7),
        st.integers(1, 9),
        st.sampled_from([-3, 0, 1, 2, 18_414]),
        st.booleans(),
    ),
    min_size=1,
    max_size=80,
)


def _events(
    con: duckdb.DuckDBPyConnection, rows: list[tuple[int, int, int, int, int, bool]]
) -> None:
    con.execute(
        "CREATE OR REPLACE TABLE ev (aid_1 INTEGER, sid_1 INTEGER, aid_2 INTEGER, "
        "sid_2 INTEGER, s BIGINT, straddles BOOLEAN)"
    )
    con.executemany("INSERT INTO ev VALUES (?, ?, ?, ?, ?, ?)", rows)


def _rows(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[object, ...]]:
    return sorted(con.sql(f"SELECT * FROM {table}").fetchall())


@settings(max_examples=examples(100), deadline=None)
@given(rows=EVENTS, limit=st.integers(1, 40))
def test_meetings_in_runs_of_first_accounts_are_duckdbs_grouping(
    rows: list[tuple[int, int, int, int, int, bool]], limit: int
) -> None:
    """Whatever the limit: runs of first accounts sorted in numpy where every account
    fits in one, DuckDB's grouping where one does not; the rows and types the same."""
    con = duckdb.connect()
    _events(con, rows)
    read: list[str] = []
    real = duck._keys

    def keys(c: duckdb.DuckDBPyConnection, query: str) -> npt.NDArray[np.int64]:
        read.append(query)
        return real(c, query)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(duck, "_keys", keys)
        duck._meetings(con, "ev", "runs", limit=limit)
    con.execute(duck._MEETINGS.format(ev="ev", met="plain"))
    per_account = con.sql("SELECT max(n) FROM (SELECT count(*) AS n FROM ev GROUP BY aid_1)")
    largest = per_account.fetchone()
    assert largest is not None
    runs = duck._runs(con, "ev", limit)
    if largest[0] > limit:
        assert not read and not runs
    else:
        # Two keys read per run; every run within the limit, and the runs in order.
        assert len(read) == 2 * (len(runs) if len(rows) > limit else 1)
        held = con.sql(
            "SELECT count(*) FROM ev WHERE aid_1 BETWEEN ? AND ?", params=list(runs[0])
        ).fetchone()
        assert held is not None and held[0] <= limit
        assert all(a[1] < b[0] for a, b in zip(runs, runs[1:], strict=False))
    assert con.sql("DESCRIBE runs").fetchall() == con.sql("DESCRIBE plain").fetchall()
    assert _rows(con, "runs") == _rows(con, "plain")
    con.close()


def test_sources_are_numbered_within_their_account() -> None:
    """Each account's sources are 1, 2, …: the keys' source bits follow the busiest
    account, not the number of sources in all."""
    con = duckdb.connect()
    con.execute(
        """CREATE TABLE actions AS SELECT * FROM (VALUES
            ('x', 'a', 'p1', 'o1', TIMESTAMP '2020-01-01 00:00:00', 'repost'),
            ('x', 'a', 'p2', 'o2', TIMESTAMP '2020-01-01 00:01:00', 'repost'),
            ('x', 'a', 'p3', 'o3', TIMESTAMP '2020-01-02 00:01:00', 'repost'),
            ('x', 'b', 'p4', 'o1', TIMESTAMP '2020-01-01 00:00:10', 'repost'),
            ('x', 'c', 'p5', 'o1', TIMESTAMP '2020-01-01 00:00:20', 'repost'),
            ('x', 'c', 'p6', 'o2', TIMESTAMP '2020-01-01 00:01:20', 'repost'))
            AS t(platform, actor_id, source_id, object_id, ts, kind)"""
    )
    names = {k: f"t_{k}" for k in duck._SCRATCH}
    con.execute(duck._NUMBERS.format(micros=86_400_000_000, where="", actions="actions", **names))
    got = con.sql(
        "SELECT actor_id, list(sid ORDER BY sid) FROM t_src GROUP BY ALL ORDER BY 1"
    ).fetchall()
    assert got == [("a", [1, 2, 3]), ("b", [1]), ("c", [1, 2])]
    con.close()
