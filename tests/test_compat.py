"""The peer-compatible networks: each rule on hand-made actions, and the published figures."""

from __future__ import annotations

import math
from collections.abc import Sequence

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.compat import coortweet_network, coortweet_pairs, qut_edges
from concerted.errors import ConfigError
from concerted.store import Store
from tests.budget import examples
from tests.conftest import SHARED_DATA, load

COORTWEET = SHARED_DATA / "coortweet"
needs_shared = pytest.mark.skipif(
    not (COORTWEET / "russian_coord_tweets.parquet").exists(),
    reason="the shared real data sets (../shared/data) are not on this machine",
)

# (actor, kind, object, seconds, source) or with a platform last.
Action = tuple[str, str, str, float, str] | tuple[str, str, str, float, str, str]


def actions(con: duckdb.DuckDBPyConnection, rows: Sequence[Action]) -> str:
    """Create table ``a`` with the actions contract's columns from compact rows."""
    con.execute(
        "CREATE OR REPLACE TABLE a (actor_id VARCHAR, platform VARCHAR, kind VARCHAR, "
        "object_id VARCHAR, ts TIMESTAMPTZ, source_id VARCHAR)"
    )
    for row in rows:
        actor, kind, obj, seconds, source = row[:5]
        platform = row[5] if len(row) == 6 else "x"
        con.execute(
            "INSERT INTO a VALUES (?, ?, ?, ?, make_timestamp(?)::TIMESTAMPTZ, ?)",
            [actor, platform, kind, obj, round(seconds * 1_000_000), source],
        )
    return "a"


def edges(rel: duckdb.DuckDBPyRelation) -> set[tuple[str, str, int]]:
    return {(u1, u2, w) for u1, u2, w in rel.fetchall()}


def pairs_of(rel: duckdb.DuckDBPyRelation) -> list[tuple[str, str, str, str, str, float]]:
    return sorted(rel.fetchall())


# -- coordination-network-toolkit -------------------------------------------------------


def test_qut_window_includes_its_bound_to_the_microsecond(con: duckdb.DuckDBPyConnection) -> None:
    a = actions(con, [("u1", "repost", "o", 0, "m1"), ("u2", "repost", "o", 60, "m2")])
    assert edges(qut_edges(con, a, window=60)) == {("u1", "u2", 1), ("u2", "u1", 1)}
    assert edges(qut_edges(con, a, window=59.999999)) == set()
    a = actions(con, [("u1", "repost", "o", 0, "m1"), ("u2", "repost", "o", 60.000001, "m2")])
    assert edges(qut_edges(con, a, window=60)) == set()


def test_qut_weight_counts_messages_of_the_first_user(con: duckdb.DuckDBPyConnection) -> None:
    a = actions(
        con,
        [
            ("u1", "repost", "o", 0, "m1"),
            ("u2", "repost", "o", 10, "m2"),
            ("u2", "repost", "o", 20, "m3"),
            # one message matched on two links counts once
            ("u1", "share_url", "l1", 100, "m4"),
            ("u1", "share_url", "l2", 100, "m4"),
            ("u2", "share_url", "l1", 101, "m5"),
            ("u2", "share_url", "l2", 102, "m6"),
        ],
    )
    assert edges(qut_edges(con, a, window=60)) == {("u1", "u2", 1), ("u2", "u1", 2)}
    assert edges(qut_edges(con, a, window=60, kinds=("share_url",))) == {
        ("u1", "u2", 1),
        ("u2", "u1", 2),
    }
    # several kinds: a message counts once whichever kind matched it
    assert edges(qut_edges(con, a, window=60, kinds=("repost", "share_url"))) == {
        ("u1", "u2", 2),
        ("u2", "u1", 4),
    }
    assert edges(qut_edges(con, a, window=60, min_weight=2)) == {("u2", "u1", 2)}


def test_qut_has_no_self_loops(con: duckdb.DuckDBPyConnection) -> None:
    a = actions(
        con,
        [
            ("u1", "repost", "o", 0, "m1"),
            ("u1", "repost", "o", 1, "m2"),
            # the same id on two platforms is one user to the toolkit
            ("u1", "repost", "o", 2, "m3", "y"),
        ],
    )
    assert edges(qut_edges(con, a, window=60)) == set()


def test_qut_links_and_replies_of_reposts_are_skipped(con: duckdb.DuckDBPyConnection) -> None:
    a = actions(
        con,
        [
            ("u1", "share_url", "l", 0, "m1"),
            ("u2", "share_url", "l", 5, "m2"),
            ("u2", "repost", "m0", 5, "m2"),
            ("u3", "reply", "m0", 7, "m3"),
            ("u2", "reply", "m0", 5, "m2"),
            ("u3", "repost", "m0", 9, "m4"),
        ],
    )
    assert edges(qut_edges(con, a, window=60, kinds=("share_url",))) == set()
    assert edges(qut_edges(con, a, window=60, kinds=("reply",))) == set()
    assert edges(qut_edges(con, a, window=60)) == {("u2", "u3", 1), ("u3", "u2", 1)}


def test_qut_settings_that_make_no_sense(con: duckdb.DuckDBPyConnection) -> None:
    a = actions(con, [])
    with pytest.raises(ConfigError, match="min_weight"):
        qut_edges(con, a, window=60, min_weight=0)
    with pytest.raises(ConfigError, match="kind"):
        qut_edges(con, a, window=60, kinds=())
    with pytest.raises(ConfigError, match="window"):
        qut_edges(con, a, window=-1)
    assert qut_edges(con, a, window=60).fetchall() == []


@needs_shared
@pytest.mark.parametrize(
    ("min_weight", "directed", "undirected"), [(1, 12_412, 6_206), (2, 95, None)]
)
def test_qut_russian_coord_tweets(
    store: Store, min_weight: int, directed: int, undirected: int | None
) -> None:
    load(store, COORTWEET / "russian_coord_tweets.parquet", "coortweet")
    got = qut_edges(store.con, "actions", window=60, min_weight=min_weight)
    assert got.columns == ["user_1", "user_2", "weight"]
    assert got.types == ["VARCHAR", "VARCHAR", "BIGINT"]
    assert got.count("*").fetchone() == (directed,)
    if undirected is not None:
        pairs = got.aggregate("count(DISTINCT (least(user_1, user_2), greatest(user_1, user_2)))")
        assert pairs.fetchone() == (undirected,)


# -- CooRTweet: detect_groups ------------------------------------------------------------


def test_coortweet_participation_counts_rows_per_account(con: duckdb.DuckDBPyConnection) -> None:
    a = actions(
        con,
        [
            ("u1", "repost", "o1", 0, "a1"),
            ("u1", "repost", "o2", 100, "a2"),
            ("u2", "repost", "o1", 5, "b1"),
            ("u2", "repost", "o2", 105, "b2"),
            # u3 shares once: out at step 1 although it shares o1 in time
            ("u3", "repost", "o1", 6, "c1"),
        ],
    )
    got = pairs_of(coortweet_pairs(con, a, window=10, min_participation=2))
    assert got == [("o1", "u1", "u2", "a1", "b1", 5.0), ("o2", "u1", "u2", "a2", "b2", 5.0)]
    assert len(pairs_of(coortweet_pairs(con, a, window=10, min_participation=1))) == 4


def test_coortweet_window_includes_its_bound(con: duckdb.DuckDBPyConnection) -> None:
    a = actions(
        con,
        [
            ("u1", "repost", "o", 0, "a1"),
            ("u2", "repost", "o", 10, "b1"),
            ("u3", "repost", "o", 21, "c1"),
        ],
    )
    got = pairs_of(coortweet_pairs(con, a, window=10, min_participation=1))
    assert got == [("o", "u1", "u2", "a1", "b1", 10.0)]


def test_coortweet_removes_loops(con: duckdb.DuckDBPyConnection) -> None:
    a = actions(
        con,
        [
            # the original post shared as itself: content id = object id
            ("u0", "repost", "o", 0, "o"),
            ("u1", "repost", "o", 1, "a1"),
            # two accounts with one content id
            ("u2", "repost", "p", 0, "same"),
            ("u3", "repost", "p", 1, "same"),
            # one account twice
            ("u4", "repost", "q", 0, "d1"),
            ("u4", "repost", "q", 1, "d2"),
        ],
    )
    assert pairs_of(coortweet_pairs(con, a, window=10, min_participation=1)) == []


def test_coortweet_refines_by_participation(con: duckdb.DuckDBPyConnection) -> None:
    a = actions(
        con,
        [
            ("A", "repost", "o1", 0, "a1"),
            ("A", "repost", "o2", 100, "a2"),
            ("B", "repost", "o1", 5, "b1"),
            ("B", "repost", "o2", 105, "b2"),
            # C pairs only on o1: kept, for its partners A and B are kept
            ("C", "repost", "o1", 7, "c1"),
            ("C", "repost", "o9", 1000, "c2"),
            # D and E pair once each, elsewhere alone: out at step 4
            ("D", "repost", "o5", 300, "d1"),
            ("D", "repost", "o7", 2000, "d2"),
            ("E", "repost", "o5", 302, "e1"),
            ("E", "repost", "o8", 3000, "e2"),
        ],
    )
    got = pairs_of(coortweet_pairs(con, a, window=10, min_participation=2))
    assert got == [
        ("o1", "A", "B", "a1", "b1", 5.0),
        ("o1", "A", "C", "a1", "c1", 7.0),
        ("o1", "B", "C", "b1", "c1", 2.0),
        ("o2", "A", "B", "a2", "b2", 5.0),
    ]


def test_coortweet_puts_the_older_share_first(con: duckdb.DuckDBPyConnection) -> None:
    a = actions(
        con,
        [
            ("a", "repost", "o", 9, "late"),
            ("b", "repost", "o", 2.5, "early"),
            # a tie: the smaller account first
            ("z", "repost", "p", 3, "z1"),
            ("y", "repost", "p", 3, "y1"),
        ],
    )
    got = coortweet_pairs(con, a, window=10, min_participation=1)
    assert got.columns == [
        "object_id",
        "account_id",
        "account_id_y",
        "content_id",
        "content_id_y",
        "time_delta",
    ]
    assert pairs_of(got) == [("o", "b", "a", "early", "late", 6.5), ("p", "y", "z", "y1", "z1", 0)]


def test_coortweet_keeps_duplicate_rows(con: duckdb.DuckDBPyConnection) -> None:
    a = actions(
        con,
        [
            ("u1", "repost", "o", 0, "a1"),
            ("u1", "repost", "o", 0, "a1"),
            ("u2", "repost", "o", 3, "b1"),
            ("u2", "repost", "o", 99, "b2"),
        ],
    )
    got = pairs_of(coortweet_pairs(con, a, window=10, min_participation=2))
    assert got == [("o", "u1", "u2", "a1", "b1", 3.0)] * 2


def test_coortweet_kinds_run_apart(con: duckdb.DuckDBPyConnection) -> None:
    a = actions(
        con,
        [
            ("u1", "share_url", "7", 0, "a1"),
            ("u2", "hashtag", "7", 1, "b1"),
            ("u1", "hashtag", "8", 50, "a2"),
            ("u2", "hashtag", "8", 51, "b2"),
            ("u2", "hashtag", "9", 90, "b3"),
            ("u1", "share_url", "9", 91, "a3"),
        ],
    )
    # per kind, u1 has 2 share_url rows and 1 hashtag row: out of the hashtag run
    assert pairs_of(coortweet_pairs(con, a, window=10, min_participation=2)) == []
    assert pairs_of(coortweet_pairs(con, a, window=10, min_participation=1)) == [
        ("8", "u1", "u2", "a2", "b2", 1.0)
    ]
    assert (
        pairs_of(coortweet_pairs(con, a, window=10, min_participation=1, kinds=("share_url",)))
        == []
    )


def test_coortweet_settings_that_make_no_sense(con: duckdb.DuckDBPyConnection) -> None:
    a = actions(con, [])
    with pytest.raises(ConfigError, match="min_participation"):
        coortweet_pairs(con, a, window=10, min_participation=-1)
    with pytest.raises(ConfigError, match="kind"):
        coortweet_pairs(con, a, window=10, min_participation=2, kinds=())
    pairs = coortweet_pairs(con, a, window=10, min_participation=2)
    assert pairs.fetchall() == []
    assert coortweet_network(con, pairs).fetchall() == []
    with pytest.raises(ConfigError, match="edge_weight"):
        coortweet_network(con, pairs, edge_weight=1.5)
    with pytest.raises(ConfigError, match="subgraph"):
        coortweet_network(con, pairs, subgraph=2)


# -- CooRTweet: generate_coordinated_network ---------------------------------------------

Pair = tuple[str, str, str, str, str, float]


def pairs_relation(con: duckdb.DuckDBPyConnection, rows: Sequence[Pair]) -> duckdb.DuckDBPyRelation:
    """The pairs as an Arrow-backed relation, as CooRTweet's output read from a file would be."""
    names = ["object_id", "account_id", "account_id_y", "content_id", "content_id_y"]
    schema = pa.schema(
        [pa.field(n, pa.string()) for n in names] + [pa.field("time_delta", pa.float64())]
    )
    columns = {n: [r[i] for r in rows] for i, n in enumerate([*names, "time_delta"])}
    return con.from_arrow(pa.Table.from_pydict(columns, schema=schema))


def weighted(weights: Sequence[int]) -> list[Pair]:
    """Pairs that make edge i (accounts ``a<i>``, ``b<i>``) weigh ``weights[i]``."""
    return [
        ("o", f"a{i:03}", f"b{i:03}", f"c{i}_{j}", f"d{i}_{j}", 1.0)
        for i, w in enumerate(weights)
        for j in range(w)
    ]


def test_network_orders_accounts_and_counts_each_side(con: duckdb.DuckDBPyConnection) -> None:
    pairs = pairs_relation(
        con,
        [
            ("o1", "B", "A", "b1", "a1", 2.0),
            ("o2", "A", "B", "a2", "b2", 4.0),
            ("o3", "A", "B", "a2", "b3", 9.0),
            ("o4", "C", "A", "c1", "a1", 1.0),
        ],
    )
    got = coortweet_network(con, pairs)
    assert got.columns == [
        "from",
        "to",
        "weight",
        "avg_time_delta",
        "n_content_id",
        "n_content_id_y",
        "edge_symmetry_score",
        "weight_threshold",
    ]
    rows = sorted(got.fetchall())
    # older sides {b1, a2}, newer sides {a1, b2, b3}; weights [3, 1], median 2
    assert rows == [
        ("A", "B", 3, 5.0, 2, 3, pytest.approx(2 / 3), 1),
        ("A", "C", 1, 1.0, 1, 1, 1.0, 0),
    ]


def r_quantile7(x: Sequence[int], p: float) -> float:
    """R's ``quantile(x, p)`` (type 7), written as R's ``quantile.default`` computes it."""
    xs = sorted(x)
    index = 1 + (len(xs) - 1) * p
    lo, hi = math.floor(index), math.ceil(index)
    q = float(xs[lo - 1])
    if index > lo and xs[hi - 1] != xs[lo - 1]:
        h = index - lo
        q = (1 - h) * q + h * xs[hi - 1]
    return q


def flags(con: duckdb.DuckDBPyConnection, weights: Sequence[int], q: float) -> list[int]:
    got = coortweet_network(con, pairs_relation(con, weighted(weights)), edge_weight=q)
    return [row[7] for row in got.order('"from"').fetchall()]


@pytest.mark.parametrize(
    ("weights", "q", "expected"),
    [
        # quantile(c(1, 2, 3, 4), 0.6) = 2.8 in R; type 6 would give 3
        ([1, 2, 3, 4], 0.6, [0, 0, 1, 1]),
        # quantile(c(1, 3, 3, 3), 0.5) = 3: strictly above it, none
        ([1, 3, 3, 3], 0.5, [0, 0, 0, 0]),
        # quantile(c(1, 1, 1, 10), 0.99) = 9.73
        ([1, 1, 1, 10], 0.99, [0, 0, 0, 1]),
        ([4, 1, 2], 0.0, [1, 0, 1]),
        ([4, 1, 2], 1.0, [0, 0, 0]),
    ],
)
def test_network_threshold_is_r_type_7(
    con: duckdb.DuckDBPyConnection, weights: list[int], q: float, expected: list[int]
) -> None:
    assert flags(con, weights, q) == expected
    assert [int(w > r_quantile7(weights, q)) for w in weights] == expected


@settings(max_examples=examples(40), deadline=None)
@given(
    weights=st.lists(st.integers(1, 6), min_size=1, max_size=25),
    q=st.sampled_from([0.0, 0.1, 0.25, 0.3, 0.5, 0.6, 0.7, 0.75, 0.9, 0.95, 0.99, 1.0])
    | st.floats(0, 1),
)
def test_network_threshold_matches_r_everywhere(weights: list[int], q: float) -> None:
    with duckdb.connect() as c:
        assert flags(c, weights, q) == [int(w > r_quantile7(weights, q)) for w in weights]


def test_network_subgraph_keeps_the_edges_above_the_threshold(
    con: duckdb.DuckDBPyConnection,
) -> None:
    pairs = pairs_relation(con, weighted([1, 2, 3, 4]))
    full = coortweet_network(con, pairs, edge_weight=0.6)
    sub = coortweet_network(con, pairs, edge_weight=0.6, subgraph=1)
    assert sorted(sub.fetchall()) == sorted(full.filter("weight_threshold = 1").fetchall())
    assert sorted(r[2] for r in sub.fetchall()) == [3, 4]


# -- CooRTweet: the published figures ------------------------------------------------------


def nodes(rel: duckdb.DuckDBPyRelation) -> int:
    return len({account for row in rel.fetchall() for account in row[:2]})


@needs_shared
@pytest.mark.parametrize(
    ("participation", "window", "n_pairs", "n_nodes", "n_edges"),
    [(5, 10, 22, 23, 20), (2, 60, 3_791, 2_110, 3_721)],
)
def test_coortweet_russian_coord_tweets(
    store: Store, participation: int, window: int, n_pairs: int, n_nodes: int, n_edges: int
) -> None:
    load(store, COORTWEET / "russian_coord_tweets.parquet", "coortweet")
    pairs = coortweet_pairs(store.con, "actions", window=window, min_participation=participation)
    assert pairs.count("*").fetchone() == (n_pairs,)
    assert pairs.filter(f"time_delta < 0 OR time_delta > {window}").fetchall() == []
    network = coortweet_network(store.con, pairs)
    assert network.count("*").fetchone() == (n_edges,)
    assert nodes(network) == n_nodes
    assert network.filter('"from" >= "to"').fetchall() == []
    # every edge weighs 1 or more and the median is 1: the subgraph is the heavier edges
    sub = coortweet_network(store.con, pairs, subgraph=1)
    assert sub.count("*").fetchone() == network.filter("weight > 1").count("*").fetchone()


@needs_shared
def test_coortweet_german_elections_runs_each_kind_apart(store: Store) -> None:
    load(store, COORTWEET / "german_elections.parquet", "coortweet")
    con = store.con
    every = coortweet_pairs(con, "actions", window=60, min_participation=2)
    kinds = ("share_url", "share_domain", "hashtag", "image")
    each = [
        coortweet_pairs(con, "actions", window=60, min_participation=2, kinds=(k,)) for k in kinds
    ]
    together = sorted(every.fetchall())
    assert together
    assert together == sorted(row for rel in each for row in rel.fetchall())
    network = coortweet_network(con, every, edge_weight=0.9, subgraph=1)
    assert network.filter("weight_threshold <> 1").fetchall() == []
    assert network.count("*").fetchone() != (0,)
