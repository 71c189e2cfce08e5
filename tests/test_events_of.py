"""The events of some edges, found on a detector's own keys (``Evidence.events_of``,
``Paired.events_of``): the rows a semi-join of every event on the layer and the pair
gives."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.detectors.base import Evidence, semi_joined
from concerted.detectors.coaction import CoAction, CoActionLayers
from concerted.detectors.synchrony import Synchrony
from concerted.engines.duck import DuckDBEngine
from tests.budget import examples
from tests.test_engines import ACTIONS, _load, two_layers


def _chosen(con: duckdb.DuckDBPyConnection, edges: str, keep: list[bool]) -> str:
    """Table ``chosen``: the edges of relation ``edges`` that ``keep`` marks (in a
    fixed order), plus an edge no detector found."""
    con.execute(f"CREATE OR REPLACE TABLE every_edge AS SELECT * FROM {edges} ORDER BY ALL")
    con.execute(
        "CREATE OR REPLACE TABLE chosen AS SELECT * EXCLUDE (n) FROM "
        "(SELECT *, row_number() OVER () - 1 AS n FROM every_edge) "
        f"WHERE list_extract({[*keep, False] or [False]}, (n + 1)::INTEGER) "
        "UNION ALL SELECT * REPLACE ('nobody' AS account_1) FROM (FROM every_edge LIMIT 1)"
    )
    return "chosen"


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[object, ...]]:
    return sorted(con.sql(sql).fetchall(), key=repr)


@settings(max_examples=examples(50), deadline=None)
@given(
    rows=ACTIONS,
    windows=st.tuples(st.sampled_from([0, 30, 60]), st.sampled_from([0, 10, 45.5])),
    min_weight=st.integers(1, 2),
    keep=st.lists(st.booleans(), max_size=40),
)
def test_paired_events_of_some_edges_are_the_semi_join(
    rows: list[tuple[str, str, float, str, str]],
    windows: tuple[float, float],
    min_weight: int,
    keep: list[bool],
) -> None:
    """Two layers, as analyze pairs them (one part's edges find nothing in the other's
    keys), through the engine seam."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    paired = DuckDBEngine(con).pair(_load(con, rows), two_layers(windows, min_weight))
    assert paired.events_of is not None
    chosen = _chosen(con, paired.edges, keep)
    assert _rows(con, paired.events_among(chosen)) == _rows(con, semi_joined(paired.events, chosen))
    con.close()


@settings(max_examples=examples(40), deadline=None)
@given(rows=ACTIONS, window=st.sampled_from([0, 30, 60]), keep=st.lists(st.booleans()))
def test_detectors_events_of_some_edges_are_the_semi_join(
    rows: list[tuple[str, str, float, str, str]], window: float, keep: list[bool]
) -> None:
    """Co-action (one part and layered) and synchrony, each on its own evidence."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    table = _load(con, rows)
    detectors = (
        CoAction(window=window),
        CoActionLayers((CoAction(window=window, kinds=("repost",)), CoAction(kinds=("reply",)))),
        Synchrony(window=window, min_actions=1, min_weight=2),
    )
    for detector in detectors:
        found: Evidence = detector.detect(con, table)
        assert found.events_of is not None, detector.name
        chosen = _chosen(con, f"({found.edges.sql_query()})", keep)
        every = f"({found.events.sql_query()})"
        assert _rows(con, found.events_among(chosen)) == _rows(con, semi_joined(every, chosen)), (
            detector.name
        )
        found.release(con)
    con.close()
