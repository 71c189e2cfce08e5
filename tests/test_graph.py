"""The coordination network: folding layers, node numbering, and the written files."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import duckdb
import networkx as nx
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted import graph
from concerted.errors import ConfigError
from concerted.graph import Network, build, write_gexf, write_graphml
from tests.budget import examples

Edge = tuple[str, str, str, str, str, float]


def edge_table(rows: list[Edge], **extra: list[Any]) -> pa.Table:
    columns = ["platform_1", "account_1", "platform_2", "account_2", "layer", "weight"]
    data: dict[str, Any] = {c: [r[i] for r in rows] for i, c in enumerate(columns)}
    data["weight"] = pa.array(data["weight"], pa.float64())
    for c in columns[:-1]:
        data[c] = pa.array(data[c], pa.string())
    return pa.table({**data, **extra})


ROWS: list[Edge] = [
    ("facebook", "b", "facebook", "c", "repost", 2.0),
    ("facebook", "a", "facebook", "b", "repost", 1.0),
    ("facebook", "a", "facebook", "b", "hashtag", 0.5),
    ("facebook", "a", "instagram", "a", "share_url", 3.0),
]
ACCOUNTS = pa.table(
    {
        "account_id": ["a", "b", "a"],
        "platform": ["facebook", "facebook", "instagram"],
        "kind": ["page", "user", "user"],
        "name": ['Tom & "Jerry" <fans>', None, "insta"],
        "handle": [None, "bee", None],
        "followers": [10, 20, 30],
    }
)


def test_nodes_are_sorted_and_carry_account_attributes() -> None:
    net = build(edge_table(ROWS), ACCOUNTS)
    assert net.nodes.to_pylist() == [
        {
            "node": 0,
            "platform": "facebook",
            "account_id": "a",
            "kind": "page",
            "name": 'Tom & "Jerry" <fans>',
            "handle": None,
        },
        {
            "node": 1,
            "platform": "facebook",
            "account_id": "b",
            "kind": "user",
            "name": None,
            "handle": "bee",
        },
        {
            "node": 2,
            "platform": "facebook",
            "account_id": "c",
            "kind": "unknown",
            "name": None,
            "handle": None,
        },
        {
            "node": 3,
            "platform": "instagram",
            "account_id": "a",
            "kind": "user",
            "name": "insta",
            "handle": None,
        },
    ]
    assert net.nodes.schema.field("node").type == pa.int64()


def test_edges_fold_layers_into_one_row_per_pair() -> None:
    net = build(edge_table(ROWS), ACCOUNTS)
    assert net.layers == ("hashtag", "repost", "share_url")
    assert net.edges.column_names == [
        "source",
        "target",
        "weight",
        "layers",
        "weight_hashtag",
        "weight_repost",
        "weight_share_url",
    ]
    assert net.edges.to_pylist() == [
        {
            "source": 0,
            "target": 1,
            "weight": 1.5,
            "layers": ["hashtag", "repost"],
            "weight_hashtag": 0.5,
            "weight_repost": 1.0,
            "weight_share_url": 0.0,
        },
        {
            "source": 0,
            "target": 3,
            "weight": 3.0,
            "layers": ["share_url"],
            "weight_hashtag": 0.0,
            "weight_repost": 0.0,
            "weight_share_url": 3.0,
        },
        {
            "source": 1,
            "target": 2,
            "weight": 2.0,
            "layers": ["repost"],
            "weight_hashtag": 0.0,
            "weight_repost": 2.0,
            "weight_share_url": 0.0,
        },
    ]
    assert (net.num_nodes, net.num_edges) == (4, 3)


def test_extra_columns_and_missing_accounts_are_fine() -> None:
    net = build(edge_table(ROWS, score=[9.0] * 4, detector=["x"] * 4))
    assert "score" not in net.edges.column_names
    assert set(net.nodes.column("kind").to_pylist()) == {"unknown"}
    assert net.nodes.column("name").null_count == 4


def test_pairs_in_either_orientation_and_repeats_add_up() -> None:
    rows: list[Edge] = [
        ("fb", "a", "fb", "b", "repost", 1.0),
        ("fb", "b", "fb", "a", "repost", 2.0),
        ("fb", "b", "fb", "a", "text", 4.0),
    ]
    (edge,) = build(edge_table(rows)).edges.to_pylist()
    assert edge == {
        "source": 0,
        "target": 1,
        "weight": 7.0,
        "layers": ["repost", "text"],
        "weight_repost": 3.0,
        "weight_text": 4.0,
    }


def test_build_does_not_depend_on_row_order() -> None:
    net = build(edge_table(ROWS), ACCOUNTS)
    flipped = [(p2, a2, p1, a1, layer, w) for p1, a1, p2, a2, layer, w in reversed(ROWS)]
    other = build(edge_table(flipped), ACCOUNTS.take([2, 0, 1]))
    assert other.nodes.equals(net.nodes)
    assert other.edges.equals(net.edges)


def test_empty_edges_give_an_empty_network() -> None:
    net = build(edge_table([]), ACCOUNTS)
    assert (net.num_nodes, net.num_edges, net.layers) == (0, 0, ())
    assert net.edges.column_names == ["source", "target", "weight", "layers"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("fb", "a", "fb", "a", "repost", 1.0)], "itself"),
        ([("fb", "a", "fb", "b", "repost", 0.0)], "positive"),
        ([("fb", "a", "fb", "b", "repost", float("nan"))], "positive"),
        ([("fb", "a", "fb", "b", "", 1.0)], "layer"),
    ],
)
def test_bad_edges_are_refused(rows: list[Edge], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build(edge_table(rows))


def test_missing_columns_and_nulls_are_refused() -> None:
    with pytest.raises(ConfigError, match="lacks columns layer"):
        build(edge_table(ROWS).drop_columns(["layer"]))
    with pytest.raises(ConfigError, match="lack a value"):
        build(edge_table(ROWS).set_column(1, "account_1", pa.array([None, "a", "a", "a"])))
    with pytest.raises(ConfigError, match="accounts table lacks columns platform"):
        build(edge_table(ROWS), ACCOUNTS.drop_columns(["platform"]))


def clusters() -> pa.Table:
    return pa.table(
        {
            "node": pa.array([2, 0, 1], pa.int64()),
            "cluster": pa.array([1, 0, 0], pa.int64()),
            "campaign": ["c-2", "c-1", None],
            "score": [0.5, 0.25, None],
            "flagged": [True, False, True],
        }
    )


def test_graphml_reads_back_with_attributes(tmp_path: Path) -> None:
    net = build(edge_table(ROWS), ACCOUNTS)
    path = tmp_path / "net.graphml"
    write_graphml(net, path, clusters())
    g = nx.read_graphml(path)
    assert not g.is_directed()
    assert g.nodes["0"] == {
        "platform": "facebook",
        "kind": "page",
        "account_id": "a",
        "label": 'Tom & "Jerry" <fans>',
        "cluster": 0,
        "campaign": "c-1",
        "score": 0.25,
        "flagged": False,
    }
    assert g.nodes["1"]["label"] == "bee"
    assert "campaign" not in g.nodes["1"] and "score" not in g.nodes["1"]
    assert g.nodes["2"]["label"] == "c"
    assert "cluster" not in g.nodes["3"]
    assert g.edges["0", "1"] == {
        "weight": 1.5,
        "weight_hashtag": 0.5,
        "weight_repost": 1.0,
        "weight_share_url": 0.0,
        "layers": "hashtag,repost",
    }
    assert g.number_of_edges() == 3


def test_gexf_reads_back_with_typed_attributes(tmp_path: Path) -> None:
    net = build(edge_table(ROWS), ACCOUNTS)
    path = tmp_path / "net.gexf"
    write_gexf(net, path, clusters())
    text = path.read_text(encoding="utf-8")
    assert 'xmlns="http://gexf.net/1.3"' in text and 'version="1.3"' in text
    assert '<attributes class="node" mode="static">' in text
    assert '<attribute id="3" title="cluster" type="long"/>' in text
    g = nx.read_gexf(path, version="1.3")
    assert not g.is_directed()
    node = g.nodes["0"]
    assert node["label"] == 'Tom & "Jerry" <fans>'
    assert (node["platform"], node["kind"], node["account_id"]) == ("facebook", "page", "a")
    assert (node["cluster"], node["campaign"], node["score"]) == (0, "c-1", 0.25)
    assert node["flagged"] is False
    assert "cluster" not in g.nodes["3"] and "campaign" not in g.nodes["1"]
    edge = g.edges["0", "1"]
    assert edge["weight"] == 1.5
    assert (edge["weight_hashtag"], edge["weight_repost"]) == (0.5, 1.0)
    assert edge["layers"] == "hashtag,repost"


NASTY = "x<y & \"z\" 'q' >\n\ttab\r\x01\x1b end"


@pytest.mark.parametrize("writer", [write_graphml, write_gexf])
def test_names_are_escaped(tmp_path: Path, writer: Any) -> None:
    accounts = pa.table(
        {
            "account_id": ["a&b", "<c>"],
            "platform": ["fb", "fb"],
            "kind": ["user", 'page"s'],
            "name": [NASTY, None],
            "handle": [None, None],
        }
    )
    net = build(edge_table([("fb", "a&b", "fb", "<c>", "re<post>", 1.0)]), accounts)
    path = tmp_path / "net.xml"
    writer(net, path, pa.table({"node": [0, 1], "campaign": ["<&>", '"']}))
    g = nx.read_gexf(path, version="1.3") if writer is write_gexf else nx.read_graphml(path)
    labels = {g.nodes[n]["account_id"]: g.nodes[n]["label"] for n in g.nodes}
    # Control characters that XML cannot hold become U+FFFD; all else survives.
    assert labels == {
        "<c>": "<c>",
        "a&b": NASTY.replace("\x01", "\ufffd").replace("\x1b", "\ufffd"),
    }
    assert g.nodes["0"]["kind"] == 'page"s'
    assert [g.nodes[n]["campaign"] for n in ("0", "1")] == ["<&>", '"']
    (edge,) = g.edges(data=True)
    assert edge[2]["layers"] == "re<post>" and edge[2]["weight_re<post>"] == 1.0


@pytest.mark.parametrize("writer", [write_graphml, write_gexf])
def test_empty_network_writes_a_readable_file(tmp_path: Path, writer: Any) -> None:
    path = tmp_path / "empty.xml"
    writer(build(edge_table([])), path)
    g = nx.read_gexf(path, version="1.3") if writer is write_gexf else nx.read_graphml(path)
    assert g.number_of_nodes() == 0


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (pa.table({"cluster": [1]}), "lacks columns node"),
        (pa.table({"node": [0], "kind": ["x"]}), "may not replace kind"),
        (pa.table({"node": [7], "cluster": [1]}), "outside"),
        (pa.table({"node": [-1], "cluster": [1]}), "outside"),
        (pa.table({"node": [0, 0], "cluster": [1, 2]}), "more than once"),
        (pa.table({"node": [0], "tags": [["a"]]}), "cannot be written"),
    ],
)
def test_bad_node_attributes_are_refused(tmp_path: Path, table: pa.Table, message: str) -> None:
    net = build(edge_table(ROWS))
    with pytest.raises(ConfigError, match=message):
        write_graphml(net, tmp_path / "x.graphml", table)


def test_network_is_frozen() -> None:
    net = build(edge_table(ROWS))
    with pytest.raises(AttributeError):
        net.nodes = net.edges  # type: ignore[misc]
    assert isinstance(net, Network)


_ids = st.sampled_from(["a", "b", "c", "d", "é", "B"])
_platforms = st.sampled_from(["facebook", "instagram"])
_layers = st.sampled_from(["repost", "hashtag", "share_url"])
_weights = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False)


@st.composite
def edge_rows(draw: st.DrawFn) -> list[Edge]:
    """Distinct (pair, layer) rows, as the detectors emit them."""
    seen: dict[tuple[tuple[str, str], tuple[str, str], str], float] = {}
    for _ in range(draw(st.integers(0, 12))):
        one, two = (draw(_platforms), draw(_ids)), (draw(_platforms), draw(_ids))
        if one == two:
            continue
        seen[(min(one, two), max(one, two), draw(_layers))] = draw(_weights)
    return [(p1, a1, p2, a2, layer, w) for ((p1, a1), (p2, a2), layer), w in seen.items()]


@settings(max_examples=examples(40), deadline=None)
@given(rows=edge_rows(), data=st.data())
def test_build_is_invariant_to_row_order_and_orientation(
    rows: list[Edge], data: st.DataObject
) -> None:
    net = build(edge_table(rows))
    shuffled = data.draw(st.permutations(rows))
    flips = data.draw(st.lists(st.booleans(), min_size=len(rows), max_size=len(rows)))
    turned = [
        (p2, a2, p1, a1, layer, w) if flip else (p1, a1, p2, a2, layer, w)
        for (p1, a1, p2, a2, layer, w), flip in zip(shuffled, flips, strict=True)
    ]
    other = build(edge_table(turned))
    assert other.nodes.equals(net.nodes)
    assert other.edges.equals(net.edges)
    # The total is the layers' sum, and every pair is stored once, in order.
    total = sum(w for *_, w in rows)
    assert float(net.edges.column("weight").to_numpy().sum()) == pytest.approx(total)
    source = net.edges.column("source").to_numpy()
    target = net.edges.column("target").to_numpy()
    pairs = list(zip(source.tolist(), target.tolist(), strict=True))
    assert pairs == sorted(set(pairs)) and bool((source < target).all())


@settings(max_examples=examples(30), deadline=None)
@given(rows=edge_rows(), with_accounts=st.booleans())
def test_build_on_a_cursor_of_a_bounded_database_is_the_same(
    rows: list[Edge], with_accounts: bool
) -> None:
    """Folded on a cursor of another database (as the analysis does, inside the case's
    memory limit), the network is the one a database of its own gives; that database's
    own tables and registrations are untouched."""
    accounts = ACCOUNTS if with_accounts else None
    plain = build(edge_table(rows), accounts)
    con = duckdb.connect(config={"memory_limit": "256MB"})
    try:
        con.execute("CREATE TABLE e AS SELECT 1 AS x")
        shared = build(edge_table(rows), accounts, con=con)
        assert con.execute("SELECT x FROM e").fetchall() == [(1,)]
    finally:
        con.close()
    assert shared.nodes.equals(plain.nodes)
    assert shared.edges.equals(plain.edges)


def test_bad_edges_are_refused_on_a_cursor_too() -> None:
    con = duckdb.connect()
    try:
        with pytest.raises(ConfigError, match="itself"):
            build(edge_table([("facebook", "a", "facebook", "a", "repost", 1.0)]), con=con)
    finally:
        con.close()


def _joined_lines(out: Any, parts: Any, length: int) -> None:
    """The plain way to write the lines: each batch joined as Python strings."""
    for start in range(0, length, graph._BATCH_ROWS):
        pieces: list[Any] = []
        for part in parts:
            if isinstance(part, str):
                pieces.append(part)
            elif isinstance(part, graph._Attribute):
                pieces.append(part.text(start, graph._BATCH_ROWS))
            else:
                before, attribute, after = part
                text = attribute.text(start, graph._BATCH_ROWS)
                pieces.append(pc.binary_join_element_wise(before, text, after, ""))
        lines = pc.binary_join_element_wise(
            *pieces, "", null_handling="replace", null_replacement=""
        )
        out.write("\n".join(lines.to_pylist()))
        out.write("\n")


_names = st.one_of(st.none(), st.text(max_size=6))


@settings(max_examples=examples(30), deadline=None)
@given(rows=edge_rows(), names=st.lists(_names, min_size=12, max_size=12), batch=st.integers(1, 4))
def test_lines_from_arrow_buffers_are_the_joined_lines(
    rows: list[Edge], names: list[str | None], batch: int
) -> None:
    """GraphML and GEXF written from Arrow's buffers, batch after batch (sliced,
    several chunks), are byte for byte the files the plain string join writes."""
    net = build(edge_table(rows))
    n = net.num_nodes
    # Two chunks per column, so that lines cross chunk and batch boundaries.
    name = pa.chunked_array(
        [pa.array(names[: n // 2], pa.string()), pa.array(names[n // 2 : n], pa.string())]
    )
    nodes = net.nodes.set_column(net.nodes.column_names.index("name"), "name", name)
    net = Network(nodes=nodes, edges=pa.concat_tables([net.edges.slice(0, 1), net.edges.slice(1)]))
    attributes = pa.table(
        {"node": pa.array(range(n), pa.int64()), "campaign": pa.array(names[:n], pa.string())}
    )
    with tempfile.TemporaryDirectory() as d, pytest.MonkeyPatch.context() as mp:
        mp.setattr(graph, "_BATCH_ROWS", batch)
        for writer in (write_graphml, write_gexf):
            writer(net, Path(d) / "arrow.xml", attributes)
            with mp.context() as plain:
                plain.setattr(graph, "_write_lines", _joined_lines)
                writer(net, Path(d) / "plain.xml", attributes)
            arrow = (Path(d) / "arrow.xml").read_bytes()
            assert arrow == (Path(d) / "plain.xml").read_bytes()
