"""The multiplex coordination network, and its GraphML and GEXF files.

Detectors emit one row per account pair and layer (``repost``, ``share_url``, ...).
:func:`build` folds them into one undirected network: a node per account, sorted by
``(platform, account_id)`` so that node numbers do not depend on input order, and an
edge per pair carrying the total weight, the weight in each layer and the layers that
link the pair. Analysts look at the result in Gephi or any GraphML reader; the writers
stream line by line, since a case may hold millions of edges.

>>> edges = pa.table({
...     "platform_1": ["fb", "fb"], "account_1": ["a", "a"],
...     "platform_2": ["fb", "fb"], "account_2": ["b", "b"],
...     "layer": ["repost", "hashtag"], "weight": [2.0, 0.5],
... })
>>> net = build(edges)
>>> net.layers
('hashtag', 'repost')
>>> net.edges.to_pylist()  # doctest: +NORMALIZE_WHITESPACE
[{'source': 0, 'target': 1, 'weight': 2.5, 'layers': ['hashtag', 'repost'],
  'weight_hashtag': 0.5, 'weight_repost': 2.0}]
>>> net.nodes.column("kind").to_pylist()
['unknown', 'unknown']
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO, cast
from xml.sax.saxutils import escape

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from concerted.errors import ConfigError
from concerted.schema import quote_ident, sql_literal

__all__ = [
    "INPUT_COLUMNS",
    "LAYER_PREFIX",
    "NODE_ATTRIBUTES",
    "Network",
    "build",
    "write_gexf",
    "write_graphml",
]

#: The columns :func:`build` reads from the detectors' edge table.
INPUT_COLUMNS: tuple[str, ...] = (
    "platform_1",
    "account_1",
    "platform_2",
    "account_2",
    "layer",
    "weight",
)
#: Prefix of the per-layer weight columns of :attr:`Network.edges`.
LAYER_PREFIX = "weight_"
#: Node attributes every written file carries.
NODE_ATTRIBUTES: tuple[str, ...] = ("platform", "kind", "account_id", "label")

_NODE_FIELDS: list[pa.Field[Any]] = [
    pa.field("node", pa.int64(), nullable=False),
    pa.field("platform", pa.string(), nullable=False),
    pa.field("account_id", pa.string(), nullable=False),
    pa.field("kind", pa.string(), nullable=False),
    pa.field("name", pa.string()),
    pa.field("handle", pa.string()),
]
_NODE_SCHEMA = pa.schema(_NODE_FIELDS)
_EDGE_FIELDS: list[pa.Field[Any]] = [
    pa.field("source", pa.int64(), nullable=False),
    pa.field("target", pa.int64(), nullable=False),
    pa.field("weight", pa.float64(), nullable=False),
    pa.field("layers", pa.list_(pa.string()), nullable=False),
]
_ACCOUNT_COLUMNS = ("account_id", "platform", "kind", "name", "handle")
_BATCH_ROWS = 65_536


@dataclass(frozen=True)
class Network:
    """Accounts as numbered nodes and the weighted, layered pairs between them.

    ``nodes`` has ``node`` (0..n-1), ``platform``, ``account_id``, ``kind``, ``name``
    and ``handle``; ``edges`` has ``source < target``, ``weight`` (the sum over
    layers), ``layers`` and one ``weight_<layer>`` column per layer.
    """

    nodes: pa.Table
    edges: pa.Table

    @property
    def layers(self) -> tuple[str, ...]:
        """The layers, in the order of their weight columns (sorted)."""
        return tuple(
            name.removeprefix(LAYER_PREFIX)
            for name in self.edges.column_names
            if name.startswith(LAYER_PREFIX)
        )

    @property
    def num_nodes(self) -> int:
        return self.nodes.num_rows

    @property
    def num_edges(self) -> int:
        return self.edges.num_rows


def _missing(table: pa.Table, columns: Sequence[str], what: str) -> None:
    absent = [c for c in columns if c not in table.column_names]
    if absent:
        raise ConfigError(f"the {what} table lacks columns {', '.join(absent)}")


_CHECKS = (
    (
        " OR ".join(f"{c} IS NULL" for c in INPUT_COLUMNS),
        f"lack a value in one of {', '.join(INPUT_COLUMNS)}",
    ),
    ("NOT (weight > 0 AND isfinite(weight))", "have a weight that is not a positive number"),
    ("platform_1 = platform_2 AND account_1 = account_2", "pair an account with itself"),
    ("layer = ''", "have an empty layer name"),
)


def _check_edges(con: duckdb.DuckDBPyConnection) -> None:
    counts = con.execute(
        "SELECT " + ", ".join(f"count(*) FILTER (WHERE {test})" for test, _ in _CHECKS) + " FROM e"
    ).fetchone()
    for count, (_, problem) in zip(counts or (), _CHECKS, strict=True):
        if count:
            raise ConfigError(f"{count} edge rows {problem}")


def _accounts_relation(accounts: pa.Table | None) -> pa.Table:
    if accounts is None:
        return pa.table({c: pa.array([], pa.string()) for c in _ACCOUNT_COLUMNS})
    _missing(accounts, ("account_id", "platform"), "accounts")
    columns = {
        c: (
            accounts.column(c).cast(pa.string())
            if c in accounts.column_names
            else pa.nulls(accounts.num_rows, pa.string())
        )
        for c in _ACCOUNT_COLUMNS
    }
    return pa.table(columns)


_NODES_SQL = """
WITH ends AS (
    SELECT platform_1 AS platform, account_1 AS account_id FROM e
    UNION
    SELECT platform_2, account_2 FROM e
), acc AS (
    SELECT platform, account_id, kind, name, handle FROM a
    QUALIFY row_number() OVER (
        PARTITION BY platform, account_id
        ORDER BY kind NULLS LAST, name NULLS LAST, handle NULLS LAST
    ) = 1
)
SELECT (row_number() OVER (ORDER BY ends.platform, ends.account_id) - 1)::BIGINT AS node,
       ends.platform, ends.account_id, coalesce(acc.kind, 'unknown') AS kind,
       acc.name, acc.handle
FROM ends LEFT JOIN acc
  ON acc.platform = ends.platform AND acc.account_id = ends.account_id
ORDER BY node
"""


def _edges_sql(layers: Sequence[str]) -> str:
    # Each pair has one row per layer once duplicates are folded, so `max` picks that
    # row's weight exactly, and the total adds layers in a fixed order: the sums come
    # out bit for bit the same whatever the order of the input rows.
    per_layer = [
        f"coalesce(max(w) FILTER (WHERE layer = {sql_literal(layer)}), 0.0)" for layer in layers
    ]
    total = " + ".join(per_layer) if per_layer else "0.0"
    columns = "".join(
        f",\n       {expr} AS {quote_ident(LAYER_PREFIX + layer)}"
        for expr, layer in zip(per_layer, layers, strict=True)
    )
    return f"""
WITH c AS (
    SELECT CASE WHEN swap THEN platform_2 ELSE platform_1 END AS p1,
           CASE WHEN swap THEN account_2 ELSE account_1 END AS a1,
           CASE WHEN swap THEN platform_1 ELSE platform_2 END AS p2,
           CASE WHEN swap THEN account_1 ELSE account_2 END AS a2,
           layer, weight
    FROM (
        SELECT *, platform_1 > platform_2
               OR (platform_1 = platform_2 AND account_1 > account_2) AS swap
        FROM e
    )
), per AS (
    SELECT p1, a1, p2, a2, layer, list_sum(list(weight ORDER BY weight)) AS w
    FROM c GROUP BY ALL
)
SELECT n1.node AS source, n2.node AS target, {total} AS weight,
       list_sort(list(layer)) AS layers{columns}
FROM per
JOIN nodes n1 ON n1.platform = per.p1 AND n1.account_id = per.a1
JOIN nodes n2 ON n2.platform = per.p2 AND n2.account_id = per.a2
GROUP BY 1, 2
ORDER BY 1, 2
"""


def build(
    edges: pa.Table,
    accounts: pa.Table | None = None,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
) -> Network:
    """Fold per-layer pair evidence into one network.

    Pairs may come in either orientation and rows in any order; a pair repeated within
    a layer adds up. Accounts without a row in ``accounts`` get kind ``unknown``. With
    ``con`` the folding runs on a cursor of its database, inside that database's memory
    limit (the analysis passes the case's), not on a database of its own.
    """
    _missing(edges, INPUT_COLUMNS, "edges")
    typed = pa.table(
        {
            c: edges.column(c).cast(pa.float64() if c == "weight" else pa.string())
            for c in INPUT_COLUMNS
        }
    )
    # A cursor shares its database's buffer pool and limit; a fresh database would
    # take DuckDB's default, 80% of the machine's memory.
    con = duckdb.connect() if con is None else con.cursor()
    try:
        con.register("e", typed)
        con.register("a", _accounts_relation(accounts))
        _check_edges(con)
        layers = [
            str(r[0]) for r in con.execute("SELECT DISTINCT layer FROM e ORDER BY layer").fetchall()
        ]
        nodes = con.sql(_NODES_SQL).to_arrow_table().cast(_NODE_SCHEMA)
        con.register("nodes", nodes)
        schema = pa.schema(
            _EDGE_FIELDS
            + [pa.field(LAYER_PREFIX + layer, pa.float64(), nullable=False) for layer in layers]
        )
        edge_table = con.sql(_edges_sql(layers)).to_arrow_table().cast(schema)
    finally:
        con.close()
    return Network(nodes=nodes.combine_chunks(), edges=edge_table.combine_chunks())


# -- writing ------------------------------------------------------------------------

# What XML 1.0 cannot hold at all; such characters become U+FFFD.
_INVALID_XML = "[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
# Newlines, tabs and carriage returns as references, so that parsers keep them in
# attributes (and a bare carriage return in text) instead of normalising them.
_ENTITIES = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), *_ENTITIES.items())


def _escape(value: str) -> str:
    """Escape a name for element content or a double-quoted attribute.

    >>> _escape('say "<hi>" & go\\n\\x01')
    'say &quot;&lt;hi&gt;&quot; &amp; go&#10;\\ufffd'
    """
    return escape(re.sub(_INVALID_XML, "\ufffd", value), _ENTITIES)


def _escape_all(values: pa.ChunkedArray[Any]) -> pa.ChunkedArray[Any]:
    """:func:`_escape` over a whole column at once; nulls stay null."""
    out = pc.replace_substring_regex(values, pattern=_INVALID_XML, replacement="\ufffd")
    for plain, entity in _ESCAPES:  # `&` first, so that no entity is escaped twice
        out = pc.replace_substring(out, pattern=plain, replacement=entity)
    return out


Format = Literal["graphml", "gexf"]


@dataclass(frozen=True)
class _Attribute:
    name: str
    values: pa.ChunkedArray[Any]
    graphml_type: str
    gexf_type: str

    def text(self, start: int, length: int) -> pa.ChunkedArray[Any]:
        """A slice of the values as escaped XML text, null where the value is."""
        values = self.values.slice(start, length)
        if self.graphml_type == "boolean":
            return cast("pa.ChunkedArray[Any]", pc.if_else(values, "true", "false"))
        if self.graphml_type == "string":
            return _escape_all(values)
        # Arrow writes the shortest text that reads back to the same number.
        return values.cast(pa.string())


def _typed(name: str, values: pa.ChunkedArray[Any] | pa.Array[Any]) -> _Attribute:
    if isinstance(values, pa.Array):
        values = pa.chunked_array([values], values.type)
    t = values.type
    if pa.types.is_dictionary(t):
        values = values.cast(t.value_type)
        t = values.type
    if pa.types.is_boolean(t):
        return _Attribute(name, values, "boolean", "boolean")
    if pa.types.is_integer(t):
        if t.bit_width > 32 or (pa.types.is_unsigned_integer(t) and t.bit_width == 32):
            return _Attribute(name, values, "long", "long")
        return _Attribute(name, values, "int", "integer")
    if pa.types.is_floating(t):
        return _Attribute(name, values.cast(pa.float64()), "double", "double")
    try:
        text = values.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ConfigError(f"node attribute {name!r} has type {t}, which cannot be written") from exc
    return _Attribute(name, text, "string", "string")


def _label(nodes: pa.Table) -> pa.ChunkedArray[Any]:
    """Handle, else name, else the account id: what an analyst recognises first."""
    return pc.coalesce(nodes.column("handle"), nodes.column("name"), nodes.column("account_id"))


def _node_attributes(network: Network, extra: pa.Table | None) -> list[_Attribute]:
    nodes = network.nodes
    attributes = [
        _typed("platform", nodes.column("platform")),
        _typed("kind", nodes.column("kind")),
        _typed("account_id", nodes.column("account_id")),
        _typed("label", _label(nodes)),
    ]
    if extra is None:
        return attributes
    _missing(extra, ["node"], "node attributes")
    clash = sorted(set(extra.column_names) & set(NODE_ATTRIBUTES))
    if clash:
        raise ConfigError(f"node attributes may not replace {', '.join(clash)}")
    keys = extra.column("node").to_numpy()
    n = network.num_nodes
    if keys.dtype.kind not in "iu" or (len(keys) and (keys.min() < 0 or keys.max() >= n)):
        raise ConfigError(f"node attributes name nodes outside 0..{n - 1}")
    if len(np.unique(keys)) != len(keys):
        raise ConfigError("node attributes name a node more than once")
    # Arrange each column in node order; nodes the table leaves out get nulls.
    position = np.full(n, -1, dtype=np.int64)
    position[keys] = np.arange(len(keys), dtype=np.int64)
    take = pa.array(position, type=pa.int64(), mask=position < 0)
    for name in extra.column_names:
        if name != "node":
            attributes.append(_typed(name, extra.column(name).take(take)))
    return attributes


def _edge_attributes(network: Network) -> list[_Attribute]:
    edges = network.edges
    attributes = [_typed("weight", edges.column("weight"))]
    attributes += [
        _typed(LAYER_PREFIX + layer, edges.column(LAYER_PREFIX + layer)) for layer in network.layers
    ]
    layers = cast("pa.ChunkedArray[Any]", pc.binary_join(edges.column("layers"), ","))
    attributes.append(_typed("layers", layers))
    return attributes


# A line is a sequence of fixed strings and attributes; a fragment is an attribute
# wrapped in its markup, left out of the line where the value is null.
_Part = str | _Attribute | tuple[str, _Attribute, str]


def _write_lines(out: TextIO, parts: Sequence[_Part], length: int) -> None:
    """Write one line per row, building each batch of lines in Arrow."""
    for start in range(0, length, _BATCH_ROWS):
        pieces: list[Any] = []
        for part in parts:
            if isinstance(part, str):
                pieces.append(part)
            elif isinstance(part, _Attribute):
                pieces.append(part.text(start, _BATCH_ROWS))
            else:
                before, attribute, after = part
                fragment: list[Any] = [before, attribute.text(start, _BATCH_ROWS), after, ""]
                pieces.append(pc.binary_join_element_wise(*fragment))
        lines = pc.binary_join_element_wise(
            *pieces, "\n", "", null_handling="replace", null_replacement=""
        )
        # The lines lie end to end in each chunk's data buffer: written from there as
        # they are, no Python string is made of them.
        out.flush()
        for chunk in lines.chunks:
            if len(chunk):
                _, offsets, data = chunk.buffers()
                width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
                ends = np.frombuffer(offsets, dtype=width)[
                    [chunk.offset, chunk.offset + len(chunk)]
                ]
                out.buffer.write(memoryview(data)[int(ends[0]) : int(ends[1])])


def _index(name: str, length: int) -> _Attribute:
    return _typed(name, pa.array(np.arange(length, dtype=np.int64)))


def _write_graphml(
    out: TextIO,
    network: Network,
    node_attrs: list[_Attribute],
    edge_attrs: list[_Attribute],
) -> None:
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://graphml.graphdrawing.org/xmlns '
        'http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd">\n'
    )
    for prefix, scope, attrs in (("n", "node", node_attrs), ("e", "edge", edge_attrs)):
        for i, a in enumerate(attrs):
            out.write(
                f'  <key id="{prefix}{i}" for="{scope}" attr.name="{_escape(a.name)}" '
                f'attr.type="{a.graphml_type}"/>\n'
            )
    out.write('  <graph id="G" edgedefault="undirected">\n')
    node_data = [(f'<data key="n{i}">', a, "</data>") for i, a in enumerate(node_attrs)]
    node_line: list[_Part] = ['    <node id="', _index("node", network.num_nodes), '">']
    _write_lines(out, [*node_line, *node_data, "</node>"], network.num_nodes)
    source, target = _endpoints(network)
    edge_data = [(f'<data key="e{i}">', a, "</data>") for i, a in enumerate(edge_attrs)]
    edge_line: list[_Part] = ['    <edge source="', source, '" target="', target, '">']
    _write_lines(out, [*edge_line, *edge_data, "</edge>"], network.num_edges)
    out.write("  </graph>\n</graphml>\n")


def _endpoints(network: Network) -> tuple[_Attribute, _Attribute]:
    return _typed("source", network.edges["source"]), _typed("target", network.edges["target"])


def _attvalues(attrs: Sequence[_Attribute]) -> list[_Part]:
    if not attrs:
        return []
    values = [(f'<attvalue for="{i}" value="', a, '"/>') for i, a in enumerate(attrs)]
    return ["<attvalues>", *values, "</attvalues>"]


def _write_gexf(
    out: TextIO,
    network: Network,
    node_attrs: list[_Attribute],
    edge_attrs: list[_Attribute],
) -> None:
    # GEXF carries the label and the weight in the element itself; the rest are
    # declared attributes, so that Gephi types them (partition by cluster, kind, ...).
    label = node_attrs[NODE_ATTRIBUTES.index("label")]
    declared_nodes = [a for a in node_attrs if a is not label]
    weight, declared_edges = edge_attrs[0], edge_attrs[1:]
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(
        '<gexf xmlns="http://gexf.net/1.3" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://gexf.net/1.3 http://gexf.net/1.3/gexf.xsd" '
        'version="1.3">\n'
    )
    out.write("  <meta><creator>concerted</creator></meta>\n")
    out.write('  <graph defaultedgetype="undirected" mode="static">\n')
    for scope, attrs in (("node", declared_nodes), ("edge", declared_edges)):
        out.write(f'    <attributes class="{scope}" mode="static">\n')
        for i, a in enumerate(attrs):
            out.write(
                f'      <attribute id="{i}" title="{_escape(a.name)}" type="{a.gexf_type}"/>\n'
            )
        out.write("    </attributes>\n")
    out.write("    <nodes>\n")
    node_line: list[_Part] = [
        '      <node id="',
        _index("node", network.num_nodes),
        '" label="',
        label,
        '">',
    ]
    _write_lines(out, [*node_line, *_attvalues(declared_nodes), "</node>"], network.num_nodes)
    out.write("    </nodes>\n    <edges>\n")
    source, target = _endpoints(network)
    edge_line: list[_Part] = [
        '      <edge id="',
        _index("edge", network.num_edges),
        '" source="',
        source,
        '" target="',
        target,
        '" weight="',
        weight,
        '">',
    ]
    _write_lines(out, [*edge_line, *_attvalues(declared_edges), "</edge>"], network.num_edges)
    out.write("    </edges>\n  </graph>\n</gexf>\n")


def _write(
    network: Network, path: str | Path, node_attributes: pa.Table | None, format: Format
) -> None:
    node_attrs = _node_attributes(network, node_attributes)
    edge_attrs = _edge_attributes(network)
    writer = _write_graphml if format == "graphml" else _write_gexf
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        writer(out, network, node_attrs, edge_attrs)


def write_graphml(
    network: Network, path: str | Path, node_attributes: pa.Table | None = None
) -> None:
    """Write the network as GraphML, for networkx, igraph, Cytoscape or Gephi.

    ``node_attributes`` holds a ``node`` column and any further columns (``cluster``,
    ``campaign``, ...) to attach to the nodes; null values are left out. Lines are
    built a batch at a time, so memory stays flat however large the network.
    """
    _write(network, path, node_attributes, "graphml")


def write_gexf(network: Network, path: str | Path, node_attributes: pa.Table | None = None) -> None:
    """Write the network as GEXF 1.3, Gephi's own format, with typed attributes.

    ``node_attributes`` is as for :func:`write_graphml`.
    """
    _write(network, path, node_attributes, "gexf")
