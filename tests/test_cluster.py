"""Communities in the network, and the takedown-style summary of each."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import duckdb
import graspologic_native
import networkx as nx
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.cluster import components, leiden, members, merge_dense, renumber, summarise
from concerted.errors import ConfigError, StoreError
from concerted.graph import Network, build
from concerted.store import Store
from tests.budget import examples


def network(pairs: list[tuple[str, str, float]], layer: str = "repost") -> Network:
    return build(
        pa.table(
            {
                "platform_1": ["fb"] * len(pairs),
                "account_1": pa.array([a for a, _, _ in pairs], pa.string()),
                "platform_2": ["fb"] * len(pairs),
                "account_2": pa.array([b for _, b, _ in pairs], pa.string()),
                "layer": [layer] * len(pairs),
                "weight": pa.array([w for _, _, w in pairs], pa.float64()),
            }
        )
    )


def cliques() -> list[tuple[str, str, float]]:
    """Two cliques of six, p0..p5 and q0..q5, joined by one weak edge."""
    pairs = [
        (f"{c}{i}", f"{c}{j}", 1.0) for c in "pq" for i, j in itertools.combinations(range(6), 2)
    ]
    return [*pairs, ("p5", "q0", 0.1)]


def with_isolates(net: Network, ids: list[str]) -> Network:
    """The same network with extra nodes that no edge touches."""
    n = net.num_nodes
    extra = pa.table(
        {
            "node": pa.array(range(n, n + len(ids)), pa.int64()),
            "platform": ["zz"] * len(ids),
            "account_id": ids,
            "kind": ["unknown"] * len(ids),
            "name": pa.nulls(len(ids), pa.string()),
            "handle": pa.nulls(len(ids), pa.string()),
        }
    )
    return Network(
        nodes=pa.concat_tables([net.nodes, extra.cast(net.nodes.schema)]), edges=net.edges
    )


def test_renumber_orders_by_size_then_first_node() -> None:
    assert renumber(np.array([5, 5, 1, 1, 9])).tolist() == [0, 0, 1, 1, 2]
    assert renumber(np.array([4, 2, 2, 8, 8, 8])).tolist() == [2, 1, 1, 0, 0, 0]
    assert renumber(np.array([], dtype=np.int64)).dtype == np.int64


def test_leiden_recovers_two_planted_cliques() -> None:
    net = network(cliques())
    labels = leiden(net, seed=3)
    assert labels.dtype == np.int64
    ids = net.nodes.column("account_id").to_pylist()
    by_id = dict(zip(ids, labels.tolist(), strict=True))
    assert {by_id[f"p{i}"] for i in range(6)} == {0}
    assert {by_id[f"q{i}"] for i in range(6)} == {1}


def test_leiden_is_deterministic_for_a_seed() -> None:
    net = network(cliques())
    first = leiden(net, seed=11, resolution=2.0)
    assert all(np.array_equal(first, leiden(net, seed=11, resolution=2.0)) for _ in range(5))
    reordered = network(list(reversed(cliques())))
    assert np.array_equal(first, leiden(reordered, seed=11, resolution=2.0))


def test_leiden_without_the_csr_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    # Releases before graspologic-native 1.3 only take edges as string triples.
    monkeypatch.delattr(graspologic_native, "leiden_csr", raising=False)
    net = network(cliques())
    labels = leiden(net, seed=1)
    assert sorted(np.bincount(labels).tolist()) == [6, 6]
    assert np.array_equal(labels, leiden(net, seed=1))


def test_isolated_nodes_get_clusters_of_their_own() -> None:
    net = with_isolates(network([("a", "b", 1.0), ("b", "c", 1.0)]), ["x", "y"])
    for labels in (leiden(net), components(net)):
        assert labels.tolist() == [0, 0, 0, 1, 2]
    lonely = with_isolates(network([]), ["x", "y", "z"])
    assert leiden(lonely).tolist() == [0, 1, 2]
    assert components(lonely).tolist() == [0, 1, 2]


def test_empty_network_gives_no_labels() -> None:
    net = network([])
    for labels in (leiden(net), components(net)):
        assert labels.dtype == np.int64 and labels.shape == (0,)


@pytest.mark.parametrize(
    "options",
    [{"resolution": 0.0}, {"resolution": -1.0}, {"iterations": 0}, {"seed": -1}],
)
def test_leiden_refuses_bad_settings(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        leiden(network(cliques()), **options)


def test_components_join_what_any_path_joins() -> None:
    net = network([("a", "b", 1.0), ("x", "y", 1.0), ("y", "z", 1.0), ("c", "b", 0.5)])
    ids = net.nodes.column("account_id").to_pylist()
    assert ids == ["a", "b", "c", "x", "y", "z"]
    # Equal sizes: the cluster holding node 0 comes first.
    assert components(net).tolist() == [0, 0, 0, 1, 1, 1]
    assert components(network(cliques())).tolist() == [0] * 12


def test_members_table_lines_up_with_nodes() -> None:
    net = network([("a", "b", 1.0), ("c", "d", 1.0), ("d", "e", 1.0)])
    table = members(net, components(net))
    assert table.column_names == ["node", "platform", "account_id", "cluster"]
    assert table.column("cluster").to_pylist() == [1, 1, 0, 0, 0]
    with pytest.raises(ConfigError, match="3 cluster labels"):
        members(net, np.zeros(3, dtype=np.int64))


_nodes = st.integers(min_value=0, max_value=14)


@settings(max_examples=examples(60), deadline=None)
@given(pairs=st.lists(st.tuples(_nodes, _nodes).filter(lambda p: p[0] != p[1]), max_size=25))
def test_components_never_split_a_linked_pair(pairs: list[tuple[int, int]]) -> None:
    net = network([(f"n{a:02d}", f"n{b:02d}", 1.0) for a, b in pairs])
    labels = components(net)
    source = net.edges.column("source").to_numpy()
    target = net.edges.column("target").to_numpy()
    assert np.array_equal(labels[source], labels[target])
    g = nx.Graph()
    g.add_nodes_from(range(net.num_nodes))
    g.add_edges_from(zip(source.tolist(), target.tolist(), strict=True))
    assert len(set(labels.tolist())) == nx.number_connected_components(g)
    sizes = np.bincount(labels) if labels.size else np.array([], dtype=np.int64)
    assert np.all(sizes[:-1] >= sizes[1:])
    # Leiden labels every node, and never joins nodes that no path links.
    found = leiden(net, seed=0)
    assert found.shape == labels.shape
    for cluster in set(found.tolist()):
        assert len(set(labels[found == cluster].tolist())) == 1


# -- summaries ------------------------------------------------------------------------


@pytest.fixture
def case() -> Iterator[Store]:
    with Store(":memory:", memory_limit="256MB") as store:
        store.con.execute(
            """INSERT INTO accounts (account_id, platform, kind, name) VALUES
            ('a', 'facebook', 'page', 'A'), ('b', 'facebook', 'user', NULL),
            ('g', 'facebook', 'group', NULL), ('x', 'instagram', 'user', NULL),
            ('o', 'facebook', 'user', NULL)"""
        )
        store.con.execute(
            """INSERT INTO actions VALUES
            ('a', 'facebook', 'hashtag', 'vote', '2024-03-01 10:00:00+00', 'p1'),
            ('b', 'facebook', 'hashtag', 'vote', '2024-03-01 12:30:00+02', 'p2'),
            ('b', 'facebook', 'hashtag', 'vote', '2024-03-02 10:00:00+00', 'p3'),
            ('b', 'facebook', 'hashtag', 'rigged', '2024-03-02 10:00:00+00', 'p3'),
            ('x', 'instagram', 'hashtag', 'rigged', '2024-03-02 11:00:00+00', 'i1'),
            ('a', 'facebook', 'share_url', 'https://n.example/1', '2024-03-01 10:00:00+00', 'p1'),
            ('a', 'facebook', 'share_domain', 'n.example', '2024-03-01 10:00:00+00', 'p1'),
            ('x', 'instagram', 'repost', 'post-9', '2024-03-04 08:15:30+00', 'i2'),
            ('g', 'facebook', 'report', 'victim', '2024-03-03 00:00:00+00', 'r1'),
            ('x', 'facebook', 'hashtag', 'vote', '2024-03-01 00:00:00+00', 'f9'),
            ('o', 'facebook', 'hashtag', 'vote', '2024-02-01 00:00:00+00', 'p8')"""
        )
        yield store


def clusters(labels: list[Any], cluster_type: pa.DataType | None = None) -> pa.Table:
    return pa.table(
        {
            "cluster": pa.array(labels, cluster_type or pa.int64()),
            "platform": ["facebook", "facebook", "facebook", "instagram", "facebook"],
            "account_id": ["a", "b", "g", "x", "nobody"],
        }
    )


def test_summarise_reads_like_a_takedown_report(case: Store) -> None:
    found = summarise(case.con, clusters([0, 0, 0, 0, 1]))
    assert found == [
        {
            "cluster": 0,
            "accounts": 4,
            "assets": {
                "facebook": {"group": 1, "page": 1, "user": 1},
                "instagram": {"user": 1},
            },
            # 12:30 at +02 is 10:30 UTC; x's facebook action is another account's.
            "first_ts": "2024-03-01T10:00:00Z",
            "last_ts": "2024-03-04T08:15:30Z",
            "actions": 9,
            "top_hashtags": [
                {"object": "vote", "accounts": 2, "actions": 3},
                {"object": "rigged", "accounts": 2, "actions": 2},
            ],
            "top_domains": [{"object": "n.example", "accounts": 1, "actions": 1}],
            "top_urls": [{"object": "https://n.example/1", "accounts": 1, "actions": 1}],
            "top_objects": [
                {"object": "post-9", "accounts": 1, "actions": 1, "kind": "repost"},
                {"object": "victim", "accounts": 1, "actions": 1, "kind": "report"},
            ],
        },
        {
            "cluster": 1,
            "accounts": 1,
            "assets": {"facebook": {"unknown": 1}},
            "first_ts": None,
            "last_ts": None,
            "actions": 0,
            "top_hashtags": [],
            "top_domains": [],
            "top_urls": [],
            "top_objects": [],
        },
    ]


def test_summarise_ranks_by_accounts_then_actions_and_keeps_the_top(case: Store) -> None:
    (found,) = summarise(case.con, clusters([0] * 5), top=1)
    assert found["top_hashtags"] == [{"object": "vote", "accounts": 2, "actions": 3}]
    assert summarise(case.con, clusters([0] * 5), top=0)[0]["top_urls"] == []


def test_summarise_takes_string_labels_and_any_session_time_zone(case: Store) -> None:
    case.con.execute("SET TimeZone = 'America/New_York'")
    found = summarise(case.con, clusters(["op-b", "op-a", "op-b", "op-b", "op-a"], pa.string()))
    assert [c["cluster"] for c in found] == ["op-a", "op-b"]
    assert [c["accounts"] for c in found] == [2, 3]
    assert found[0]["first_ts"] == "2024-03-01T10:30:00Z"


def test_summarise_leaves_no_table_behind(case: Store) -> None:
    def views() -> list[Any]:
        return case.con.execute("SELECT view_name FROM duckdb_views() WHERE temporary").fetchall()

    before = views()
    summarise(case.con, clusters([0] * 5))
    with pytest.raises(StoreError, match="no_such_table"):
        summarise(case.con, clusters([0] * 5), actions_table="no_such_table")
    assert views() == before


def test_summarise_refuses_unusable_members(case: Store) -> None:
    with pytest.raises(ConfigError, match="lacks columns cluster"):
        summarise(case.con, clusters([0] * 5).drop_columns(["cluster"]))
    with pytest.raises(ConfigError, match="integers or strings"):
        summarise(case.con, clusters([0.5] * 5, pa.float64()))


def test_summarise_of_no_members_is_empty() -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE actions (actor_id VARCHAR, platform VARCHAR, kind VARCHAR, "
        "object_id VARCHAR, ts TIMESTAMPTZ, source_id VARCHAR)"
    )
    con.execute("CREATE TABLE accounts (account_id VARCHAR, platform VARCHAR, kind VARCHAR)")
    assert summarise(con, clusters([0] * 5).slice(0, 0)) == []


def test_leiden_clusters_feed_the_summary(case: Store) -> None:
    net = build(
        pa.table(
            {
                "platform_1": ["facebook", "facebook"],
                "account_1": ["a", "b"],
                "platform_2": ["facebook", "instagram"],
                "account_2": ["b", "x"],
                "layer": ["hashtag", "hashtag"],
                "weight": [1.0, 1.0],
            }
        ),
        case.con.table("accounts").to_arrow_table(),
    )
    (found,) = summarise(case.con, members(net, leiden(net)))
    assert found["assets"] == {"facebook": {"page": 1, "user": 1}, "instagram": {"user": 1}}


def _cliques(*groups: str, bridges: tuple[tuple[str, str], ...] = ()) -> Network:
    pairs = [(a, b) for g in groups for a in g for b in g if a < b] + list(bridges)
    return build(
        pa.table(
            {
                "platform_1": ["x"] * len(pairs),
                "account_1": [a for a, _ in pairs],
                "platform_2": ["x"] * len(pairs),
                "account_2": [b for _, b in pairs],
                "layer": ["repost"] * len(pairs),
                "weight": [1.0] * len(pairs),
            }
        )
    )


def test_merge_dense_keeps_two_operations_joined_by_one_tie_apart() -> None:
    net = _cliques("abcdef", "uvwxyz", bridges=(("f", "u"),))
    labels = leiden(net, weighted=False)
    assert len(set(labels.tolist())) == 2
    assert merge_dense(net, labels).tolist() == labels.tolist()


def test_merge_dense_joins_a_near_clique_cut_in_two() -> None:
    net = _cliques("abcdefghij")
    cut = np.array([0] * 5 + [1] * 5)
    assert set(merge_dense(net, cut).tolist()) == {0}
    assert set(merge_dense(net, cut, ratio=0).tolist()) == {0, 1}
