"""The co-action detector: exact windows, per-edge figures, the viral-object cap."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from itertools import combinations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.detectors import pairing
from concerted.detectors.base import Evidence
from concerted.detectors.coaction import CoAction
from concerted.detectors.pairing import check_pairs, pair_keys, window_pairs
from concerted.errors import ConfigError
from concerted.testing.planted import actions_table as _table
from tests.budget import examples

T0 = datetime(2021, 3, 1, tzinfo=UTC)
Row = tuple[str, str, str, str, datetime, str]


def _load(con: duckdb.DuckDBPyConnection, rows: list[Row], name: str = "a") -> str:
    return _table(con, name, rows)


def _act(actor: str, obj: str, seconds: float, source: str, kind: str = "repost") -> Row:
    return (actor, "twitter", kind, obj, T0 + timedelta(seconds=seconds), source)


def test_the_window_is_inclusive_to_the_microsecond(con: duckdb.DuckDBPyConnection) -> None:
    rows = [
        _act("a", "o", 0, "1"),
        _act("b", "o", 60, "2"),  # exactly the window: pairs with a
        _act("c", "o", 120.000001, "3"),  # a microsecond beyond b's window
    ]
    pairs, _ = window_pairs(con, _load(con, rows), window=60)
    found = con.sql(f"SELECT account_1, account_2 FROM {pairs} ORDER BY ALL").fetchall()
    assert found == [("a", "b")]


def test_pairs_across_any_bucket_edge(con: duckdb.DuckDBPyConnection) -> None:
    """Fixed bins would part actions one second apart across a boundary; the sliding
    window never does."""
    rows = [_act("a", "o", 59.5, "1"), _act("b", "o", 60.5, "2"), _act("c", "o", 119.4, "3")]
    pairs, _ = window_pairs(con, _load(con, rows), window=60)
    found = con.sql(f"SELECT account_1, account_2 FROM {pairs} ORDER BY ALL").fetchall()
    assert found == [("a", "b"), ("a", "c"), ("b", "c")]


def test_zero_window_pairs_only_the_same_instant(con: duckdb.DuckDBPyConnection) -> None:
    rows = [_act("a", "o", 5, "1"), _act("b", "o", 5, "2"), _act("c", "o", 5.000001, "3")]
    pairs, _ = window_pairs(con, _load(con, rows), window=0)
    assert con.sql(f"SELECT account_1, account_2 FROM {pairs}").fetchall() == [("a", "b")]


def test_kinds_and_platforms_are_kept_apart(con: duckdb.DuckDBPyConnection) -> None:
    rows = [
        _act("a", "o", 0, "1"),
        _act("b", "o", 1, "2", kind="hashtag"),  # same object id, other kind
        ("a", "instagram", "repost", "o", T0, "3"),  # same id, other platform: an account
    ]
    evidence = CoAction(window=60).detect(con, _load(con, rows))
    found = evidence.edges.project("platform_1, account_1, platform_2, account_2").fetchall()
    assert found == [("instagram", "a", "twitter", "a")]


def test_figures_of_an_edge(con: duckdb.DuckDBPyConnection) -> None:
    rows = [
        _act("a", "o1", 0, "1"),
        _act("b", "o1", 10, "2"),
        _act("a", "o2", 100, "3"),
        _act("b", "o2", 90, "4"),
        _act("b", "o2", 130, "5"),  # a second match on o2: one more event, same object
        _act("a", "o3", 500, "6"),
        _act("b", "o3", 500, "7"),  # a tie: neither leads
    ]
    evidence = CoAction(window=60).detect(con, _load(con, rows))
    (edge,) = evidence.edges.fetchall()
    row = dict(zip(evidence.edges.columns, edge, strict=True))
    assert row["weight"] == 3
    assert row["events"] == 4
    assert (row["lead_1"], row["lead_2"]) == (2, 1)
    assert row["median_dt"] == statistics.median([10, 10, 30, 0])
    assert row["first_ts"] == T0 and row["last_ts"] == T0 + timedelta(seconds=500)
    events = evidence.events.project("object_id, source_1, source_2").order("ALL").fetchall()
    assert events == [("o1", "1", "2"), ("o2", "3", "4"), ("o2", "3", "5"), ("o3", "6", "7")]


def test_min_weight_filters_edges_and_their_events(con: duckdb.DuckDBPyConnection) -> None:
    rows = [_act("a", "o1", 0, "1"), _act("b", "o1", 1, "2"), _act("c", "o1", 2, "3")]
    rows += [_act("a", "o2", 0, "4"), _act("b", "o2", 1, "5")]
    evidence = CoAction(window=60, min_weight=2).detect(con, _load(con, rows))
    assert evidence.edges.project("account_1, account_2, weight").fetchall() == [("a", "b", 2.0)]
    assert {r[0] for r in evidence.events.project("account_2").fetchall()} == {"b"}


def test_viral_objects_are_left_out_and_listed(con: duckdb.DuckDBPyConnection) -> None:
    viral = [_act(f"v{i}", "trend", i * 0.1, f"t{i}", kind="hashtag") for i in range(100)]
    small = [_act("a", "o", 0, "1"), _act("b", "o", 5, "2")]
    detector = CoAction(window=60, max_object_pairs=1000)
    evidence = detector.detect(con, _load(con, viral + small))
    assert evidence.edges.project("account_1, account_2").fetchall() == [("a", "b")]
    (note,) = evidence.notes["viral_objects"]
    assert note == {
        "kind": "hashtag",
        "object_id": "trend",
        "accounts": 100,
        "actions": 100,
        "candidate_pairs": 100 * 99 // 2,
    }
    exact = CoAction(window=60, max_object_pairs=None).detect(con, "a")
    assert exact.edges.count("*").fetchone() == (100 * 99 // 2 + 1,)
    assert exact.notes["viral_objects"] == []


@pytest.mark.parametrize(
    "settings",
    [{"window": -1}, {"min_weight": 0}, {"max_object_pairs": 0}],
)
def test_bad_settings(settings: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        CoAction(**settings)  # type: ignore[arg-type]


def test_release_drops_the_intermediate_tables(con: duckdb.DuckDBPyConnection) -> None:
    evidence = CoAction(window=60).detect(con, _load(con, [_act("a", "o", 0, "1")]))
    assert evidence.temporary
    evidence.release(con)
    names = {r[0] for r in con.sql("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert not names & set(evidence.temporary)


actions = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d"]),
        st.sampled_from(["o1", "o2"]),
        # Whole and half seconds, so that gaps of exactly the window occur.
        st.integers(0, 400).map(lambda n: n / 2),
    ),
    max_size=30,
)


@settings(max_examples=examples(60), deadline=None)
@given(rows=actions, window=st.sampled_from([0, 1, 10, 30, 60, 90.5]))
def test_pairs_equal_a_brute_force_join(rows: list[tuple[str, str, float]], window: float) -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    table = _load(con, [_act(a, o, t, str(i)) for i, (a, o, t) in enumerate(rows)])
    pairs, _ = window_pairs(con, table, window=window)
    found = sorted(
        con.sql(f"SELECT account_1, source_1, account_2, source_2 FROM {pairs}").fetchall()
    )
    expected = []
    for (i, (a1, o1, t1)), (j, (a2, o2, t2)) in combinations(enumerate(rows), 2):
        if o1 == o2 and a1 != a2 and abs(t1 - t2) <= window:
            first, second = sorted([(a1, str(i)), (a2, str(j))])
            expected.append((*first, *second))
    assert found == sorted(expected)
    con.close()


kinded = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "d", "e"]),
        st.sampled_from(["o1", "o2", "o3"]),
        st.integers(0, 300).map(lambda n: n / 2),
        st.sampled_from(["repost", "hashtag"]),
        st.sampled_from(["twitter", "facebook"]),
    ),
    max_size=40,
)


def _kinded(con: duckdb.DuckDBPyConnection, rows: list[tuple[str, str, float, str, str]]) -> str:
    return _load(
        con,
        [(a, p, k, o, T0 + timedelta(seconds=t), str(i)) for i, (a, o, t, k, p) in enumerate(rows)],
    )


def _everything(evidence: Evidence) -> tuple[list[tuple[object, ...]], ...]:
    return (
        sorted(evidence.edges.fetchall(), key=repr),
        sorted(evidence.events.fetchall(), key=repr),
    )


@settings(max_examples=examples(40), deadline=None)
@given(rows=kinded, min_weight=st.integers(1, 3), cap=st.sampled_from([None, 3, 10]))
def test_hash_clashes_change_nothing(
    rows: list[tuple[str, str, float, str, str]], min_weight: int, cap: int | None
) -> None:
    """Kinds, objects and accounts are keyed by hashes; when two clash, numbers replace
    them and every edge, event and note stays the same."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    table = _kinded(con, rows)
    detector = CoAction(window=30, min_weight=min_weight, max_object_pairs=cap)
    expected = detector.detect(con, table)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pairing, "sql_hash", lambda columns: f"(hash({columns}) % 2)::BIGINT")
        clashing = detector.detect(con, table)
    assert _everything(clashing) == _everything(expected)
    assert clashing.notes == expected.notes
    con.close()


@settings(max_examples=examples(40), deadline=None)
@given(rows=kinded, min_weight=st.integers(2, 4))
def test_min_weight_is_a_filter_of_all_edges(
    rows: list[tuple[str, str, float, str, str]], min_weight: int
) -> None:
    """Pairing only accounts that act on enough objects, and thinning the pairs by their
    count, keep exactly the edges (and their events) of weight at least min_weight."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    table = _kinded(con, rows)
    everything = CoAction(window=30).detect(con, table)
    heavy = CoAction(window=30, min_weight=min_weight).detect(con, table)
    kept = everything.edges.filter(f"weight >= {min_weight}")
    assert sorted(heavy.edges.fetchall(), key=repr) == sorted(kept.fetchall(), key=repr)
    pairs = "layer, platform_1, account_1, platform_2, account_2"
    expected = con.sql(
        f"""SELECT e.* FROM ({everything.events.sql_query()}) e
            SEMI JOIN ({kept.sql_query()}) k USING ({pairs})"""
    ).fetchall()
    assert sorted(heavy.events.fetchall(), key=repr) == sorted(expected, key=repr)
    con.close()


@settings(max_examples=examples(40), deadline=None)
@given(rows=kinded, cap=st.integers(1, 12))
def test_viral_objects_are_those_over_the_cap(
    rows: list[tuple[str, str, float, str, str]], cap: int
) -> None:
    """The objects left out are exactly those whose candidate pairs (by buckets one
    window wide) exceed the cap, counted here on every object."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    table = _kinded(con, rows)
    notes = CoAction(window=30, max_object_pairs=cap).detect(con, table).notes
    width = 30_000_000
    expected = con.sql(
        f"""WITH cells AS (SELECT kind, object_id, epoch_us(ts) // {width} AS b, count(*) AS c
                           FROM {table} GROUP BY ALL),
            load AS (SELECT x.kind, x.object_id,
                            sum(x.c * (x.c - 1) // 2 + x.c * coalesce(y.c, 0)) AS candidates
                     FROM cells x LEFT JOIN cells y
                       ON y.kind = x.kind AND y.object_id = x.object_id AND y.b = x.b + 1
                     GROUP BY ALL)
            SELECT kind, object_id, candidates FROM load WHERE candidates > {cap}
            ORDER BY ALL"""
    ).fetchall()
    found = sorted(
        (v["kind"], v["object_id"], v["candidate_pairs"]) for v in notes["viral_objects"]
    )
    assert found == expected
    con.close()


def test_min_objects_pairs_only_accounts_with_enough_objects(
    con: duckdb.DuckDBPyConnection,
) -> None:
    rows = [_act("a", "o1", 0, "1"), _act("b", "o1", 1, "2"), _act("c", "o1", 2, "3")]
    rows += [_act("a", "o2", 0, "4"), _act("b", "o2", 1, "5"), _act("c", "o2", 100, "6")]
    table = _load(con, rows)
    keys = pair_keys(con, table, window=60, min_objects=2)
    pairs = con.sql(
        f"""SELECT u1.actor_id, u2.actor_id, count(*) FROM {keys.pairs} p
            JOIN {keys.accounts} u1 ON u1.aid = p.a_1 JOIN {keys.accounts} u2 ON u2.aid = p.a_2
            GROUP BY ALL ORDER BY ALL"""
    ).fetchall()
    # c acts on two objects but meets a and b on one only: its pairs are kept all the same.
    assert pairs == [("a", "b", 2), ("a", "c", 1), ("b", "c", 1)]
    assert con.sql(f"SELECT count(*) FROM {keys.rows}").fetchone() == (6,)
    few = pair_keys(con, _load(con, rows[:3] + rows[3:5], "b"), window=60, min_objects=2)
    assert con.sql(f"SELECT count(*) FROM {few.pairs}").fetchone() == (2,)  # a-b only
    with pytest.raises(ConfigError):
        pair_keys(con, table, window=60, min_objects=0)


def test_a_shared_pairing_is_checked(con: duckdb.DuckDBPyConnection) -> None:
    keys = pair_keys(con, _load(con, [_act("a", "o", 0, "1")]), window=60, kinds=("repost",))
    check_pairs(keys, "x", 60, ("repost",), None)
    check_pairs(keys, "x", 60, ("repost",), None, min_objects=3)
    for window, kinds, cap in ((30, ("repost",), None), (60, None, None), (60, ("repost",), 5)):
        with pytest.raises(ConfigError):
            check_pairs(keys, "x", window, kinds, cap)
    pruned = pair_keys(con, "a", window=60, kinds=("repost",), min_objects=3)
    with pytest.raises(ConfigError):
        check_pairs(pruned, "x", 60, ("repost",), None, min_objects=2)
