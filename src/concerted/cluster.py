"""Communities in the coordination network, and what each one holds.

Two partitions: :func:`leiden` (modularity communities, for networks where one
component hides several operations) and :func:`components` (connected components,
which never split a linked pair). Both number clusters by size, so that cluster 0 is
always the largest and a report reads from the biggest operation down.
:func:`summarise` describes each cluster the way a platform's takedown report does:
the assets per platform and kind, when they were active, and what they pushed.

>>> import pyarrow as pa
>>> from concerted.graph import build
>>> net = build(pa.table({
...     "platform_1": ["fb", "fb", "fb"], "account_1": ["a", "a", "c"],
...     "platform_2": ["fb", "fb", "fb"], "account_2": ["b", "z", "d"],
...     "layer": ["repost"] * 3, "weight": [1.0, 1.0, 1.0],
... }))
>>> components(net).tolist()
[0, 0, 1, 1, 0]
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import graspologic_native
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import scipy.sparse
from scipy.sparse.csgraph import connected_components

from concerted.errors import ConfigError, StoreError
from concerted.graph import Network
from concerted.schema import quote_ident

__all__ = ["TOP", "components", "core", "leiden", "members", "merge_dense", "renumber", "summarise"]

Labels = npt.NDArray[np.int64]

#: How many hashtags, domains, links and objects :func:`summarise` lists per cluster.
TOP = 10


def renumber(labels: npt.ArrayLike) -> Labels:
    """Relabel clusters 0, 1, ... from the largest down; ties go to the cluster
    holding the smaller node index, so the numbering depends on nothing else.

    >>> renumber([7, 3, 3, 9, 7, 5]).tolist()
    [0, 1, 1, 2, 0, 3]
    """
    values = np.asarray(labels)
    if values.size == 0:
        return np.empty(0, dtype=np.int64)
    _, first, inverse, counts = np.unique(
        values, return_index=True, return_inverse=True, return_counts=True
    )
    order = np.lexsort((first, -counts))
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    return rank[inverse.reshape(-1)]


def core(network: Network, min_degree: int) -> npt.NDArray[np.bool_]:
    """Which nodes lie in the ``min_degree``-core: every account left has at least
    ``min_degree`` ties to others left. A lone pair, or an account tied to a network
    by one chance edge, falls away.

    >>> nodes = pa.table({"node": [0, 1, 2, 3]})
    >>> edges = pa.table({"source": [0, 0, 1, 2], "target": [1, 2, 2, 3]})
    >>> core(Network(nodes=nodes, edges=edges), 2).tolist()
    [True, True, True, False]
    """
    n = network.num_nodes
    keep = np.ones(n, dtype=bool)
    source = network.edges.column("source").to_numpy()
    target = network.edges.column("target").to_numpy()
    while True:
        live = keep[source] & keep[target]
        degree = np.bincount(source[live], minlength=n) + np.bincount(target[live], minlength=n)
        drop = keep & (degree < min_degree)
        if not drop.any():
            return keep
        keep &= ~drop


def _endpoints(
    network: Network,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    edges = network.edges
    return (
        edges.column("source").to_numpy().astype(np.int64, copy=False),
        edges.column("target").to_numpy().astype(np.int64, copy=False),
        edges.column("weight").to_numpy().astype(np.float64, copy=False),
    )


def _adjacency(
    source: npt.NDArray[np.int64],
    target: npt.NDArray[np.int64],
    weight: npt.NDArray[np.float64],
    n: int,
) -> Any:
    """The symmetric weighted adjacency matrix, in canonical CSR form."""
    rows = np.concatenate([source, target])
    cols = np.concatenate([target, source])
    matrix = scipy.sparse.coo_matrix(
        (np.concatenate([weight, weight]), (rows, cols)), shape=(n, n)
    ).tocsr()
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix


def components(network: Network) -> Labels:
    """Connected components: every pair the network links ends up in one cluster."""
    n = network.num_nodes
    if n == 0:
        return np.empty(0, dtype=np.int64)
    _, labels = connected_components(_adjacency(*_endpoints(network), n), directed=False)
    return renumber(labels)


def _leiden_linked(
    source: npt.NDArray[np.int64],
    target: npt.NDArray[np.int64],
    weight: npt.NDArray[np.float64],
    n: int,
    options: dict[str, Any],
) -> Labels:
    """Leiden over nodes that all have at least one edge."""
    if hasattr(graspologic_native, "leiden_csr"):
        # 1.3 and later read the CSR arrays in place; their dtypes must be exactly these.
        matrix = _adjacency(source, target, weight, n)
        _, found = graspologic_native.leiden_csr(
            np.ascontiguousarray(matrix.indptr, dtype=np.int64),
            np.ascontiguousarray(matrix.indices, dtype=np.int32),
            np.ascontiguousarray(matrix.data, dtype=np.float64),
            n,
            **options,
        )
        return np.fromiter((found[i] for i in range(n)), dtype=np.int64, count=n)
    edges = [
        (str(s), str(t), float(w))
        for s, t, w in zip(source.tolist(), target.tolist(), weight.tolist(), strict=True)
    ]
    _, found = graspologic_native.leiden(edges, **options)
    return np.fromiter((found[str(i)] for i in range(n)), dtype=np.int64, count=n)


def leiden(
    network: Network,
    *,
    resolution: float = 1.0,
    seed: int = 0,
    iterations: int = 2,
    weighted: bool = True,
) -> Labels:
    """Leiden communities maximising modularity, the same for the same ``seed``.

    Higher ``resolution`` gives more, smaller clusters. Each of the ``iterations``
    restarts from the partition the last one found, so more can only refine it.
    Nodes without edges each form a cluster of their own. Without ``weighted``, every
    edge counts once, whatever its weight.
    """
    if not resolution > 0:
        raise ConfigError(f"resolution must be positive, not {resolution}")
    if iterations < 1:
        raise ConfigError(f"iterations must be at least 1, not {iterations}")
    if not 0 <= seed < 2**64:
        raise ConfigError(f"seed must be a non-negative integer below 2**64, not {seed}")
    n = network.num_nodes
    labels = np.empty(n, dtype=np.int64)
    if n == 0:
        return labels
    source, target, weight = _endpoints(network)
    if not weighted:
        weight = np.ones_like(weight)
    linked = np.zeros(n, dtype=bool)
    linked[source] = True
    linked[target] = True
    # The library refuses a network without edges and panics on one whose nodes all
    # lack them, so isolated nodes never reach it.
    compact = np.cumsum(linked, dtype=np.int64) - 1
    k = int(linked.sum())
    if k >= 2**31:
        raise ConfigError(f"{k} linked accounts are more than Leiden can index")
    offset = 0
    if k:
        options = {"resolution": resolution, "seed": seed, "iterations": iterations}
        found = _leiden_linked(compact[source], compact[target], weight, k, options)
        labels[linked] = found
        offset = int(found.max()) + 1
    labels[~linked] = offset + np.arange(n - k, dtype=np.int64)
    return renumber(labels)


def merge_dense(network: Network, labels: npt.ArrayLike, *, ratio: float = 0.25) -> Labels:
    """Join communities that their ties do not tell apart: two communities become one
    while the density of ties between them is at least ``ratio`` times the density
    inside the sparser of the two. Modularity can cut a near-clique anywhere (every
    cut of a complete graph scores about zero); two operations joined by a few cross
    ties stay apart. Repeated until no pair qualifies; ``ratio`` 0 merges nothing.
    Each edge counts once, whatever its weight.

    >>> import pyarrow as pa
    >>> from concerted.graph import build
    >>> pairs = [(a, b) for a in "abcdef" for b in "abcdef" if a < b]
    >>> net = build(pa.table({
    ...     "platform_1": ["x"] * len(pairs), "account_1": [a for a, _ in pairs],
    ...     "platform_2": ["x"] * len(pairs), "account_2": [b for _, b in pairs],
    ...     "layer": ["repost"] * len(pairs), "weight": [1.0] * len(pairs)}))
    >>> merge_dense(net, [0, 0, 0, 1, 1, 1]).tolist()  # one clique cut in two
    [0, 0, 0, 0, 0, 0]
    >>> merge_dense(net, [0, 0, 0, 1, 1, 1], ratio=0).tolist()
    [0, 0, 0, 1, 1, 1]
    """
    current = renumber(labels)
    if ratio <= 0 or current.size == 0:
        return current
    source, target, _ = _endpoints(network)
    while True:
        k = int(current.max()) + 1
        size = np.bincount(current, minlength=k).astype(np.float64)
        a, b = current[source], current[target]
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        keys, ties = np.unique(lo * k + hi, return_counts=True)
        pair_lo, pair_hi = keys // k, keys % k
        counts = ties.astype(np.float64)
        inside = np.zeros(k)
        same = pair_lo == pair_hi
        inside[pair_lo[same]] = counts[same]
        with np.errstate(divide="ignore", invalid="ignore"):
            density_in = np.where(size > 1, inside / (size * (size - 1) / 2), np.nan)
        across = ~same
        x, y, n = pair_lo[across], pair_hi[across], counts[across]
        between = n / (size[x] * size[y])
        sparser = np.fmin(density_in[x], density_in[y])
        joined = between >= ratio * sparser
        if not joined.any():
            return current
        # Join the pair whose ties are least told apart first, then look again.
        best = int(np.argmax(np.where(joined, between / np.maximum(sparser, 1e-12), -1)))
        current = renumber(np.where(current == y[best], x[best], current))


def members(network: Network, labels: npt.ArrayLike) -> pa.Table:
    """One row per node with its ``cluster``: the input of :func:`summarise`, and the
    ``node_attributes`` of :func:`concerted.graph.write_graphml`.
    """
    values = np.asarray(labels)
    if values.shape != (network.num_nodes,):
        raise ConfigError(
            f"{values.size} cluster labels for a network of {network.num_nodes} nodes"
        )
    nodes = network.nodes
    return pa.table(
        {
            "node": nodes.column("node"),
            "platform": nodes.column("platform"),
            "account_id": nodes.column("account_id"),
            "cluster": pa.array(values),
        }
    )


_TOP_LISTS = {
    "hashtag": "top_hashtags",
    "share_domain": "top_domains",
    "share_url": "top_urls",
}
_OTHER = "top_objects"
_ISO = "%Y-%m-%dT%H:%M:%SZ"


def _queries(members: str, actions: str, accounts: str, top: int) -> dict[str, str]:
    m = f"m AS (SELECT DISTINCT cluster, platform, account_id FROM {members})"
    joined = f"""{m}, x AS (
        SELECT m.cluster, a.platform, a.actor_id, a.kind, a.object_id, a.ts
        FROM m JOIN {actions} a ON a.platform = m.platform AND a.actor_id = m.account_id
    )"""
    lists = " ".join(f"WHEN '{kind}' THEN '{name}'" for kind, name in _TOP_LISTS.items())
    return {
        "assets": f"""
            WITH {m}, acc AS (
                SELECT platform, account_id, kind FROM {accounts}
                QUALIFY row_number() OVER (
                    PARTITION BY platform, account_id ORDER BY kind NULLS LAST) = 1
            )
            SELECT m.cluster, m.platform, coalesce(acc.kind, 'unknown') AS kind, count(*)
            FROM m LEFT JOIN acc
              ON acc.platform = m.platform AND acc.account_id = m.account_id
            GROUP BY ALL ORDER BY 1, 2, 3""",
        "activity": f"""
            WITH {joined}
            SELECT cluster, count(*),
                   strftime(timezone('UTC', min(ts)), '{_ISO}'),
                   strftime(timezone('UTC', max(ts)), '{_ISO}')
            FROM x GROUP BY 1""",
        "top": f"""
            WITH {joined}, o AS (
                SELECT cluster, CASE kind {lists} ELSE '{_OTHER}' END AS list, kind,
                       object_id, count(DISTINCT (platform, actor_id)) AS accounts,
                       count(*) AS actions
                FROM x GROUP BY cluster, kind, object_id
            )
            SELECT cluster, list, kind, object_id, accounts, actions FROM o
            QUALIFY row_number() OVER (
                PARTITION BY cluster, list
                ORDER BY accounts DESC, actions DESC, object_id, kind) <= {top}
            ORDER BY cluster, list, accounts DESC, actions DESC, object_id, kind""",
    }


def summarise(
    con: duckdb.DuckDBPyConnection,
    members: pa.Table,
    actions_table: str = "actions",
    accounts_table: str = "accounts",
    *,
    top: int = TOP,
) -> list[dict[str, Any]]:
    """A takedown-style summary of each cluster, in cluster order.

    Each dict has ``cluster``, ``accounts``, ``assets`` (counts by platform, then
    kind), ``first_ts``/``last_ts`` (ISO 8601 UTC, None without actions),
    ``actions``, and the ``top`` ``top_hashtags``, ``top_domains``, ``top_urls`` and
    ``top_objects`` (every other kind; its entries name the ``kind``) ranked by the
    members that used them, then by uses. An object counts across platforms.
    """
    absent = [c for c in ("cluster", "platform", "account_id") if c not in members.column_names]
    if absent:
        raise ConfigError(f"the members table lacks columns {', '.join(absent)}")
    cluster_type = members.schema.field("cluster").type
    if not (pa.types.is_integer(cluster_type) or pa.types.is_string(cluster_type)):
        raise ConfigError(f"cluster labels must be integers or strings, not {cluster_type}")
    if top < 0:
        raise ConfigError(f"top must not be negative, not {top}")
    name = f"_concerted_members_{uuid.uuid4().hex}"
    queries = _queries(
        quote_ident(name), quote_ident(actions_table), quote_ident(accounts_table), top
    )
    con.register(name, members.select(["cluster", "platform", "account_id"]))
    try:
        results = {key: con.execute(query).fetchall() for key, query in queries.items()}
    except duckdb.CatalogException as exc:
        raise StoreError(f"cannot summarise clusters: {exc}") from exc
    finally:
        con.unregister(name)
    return _assemble(results)


def _assemble(results: Mapping[str, Sequence[tuple[Any, ...]]]) -> list[dict[str, Any]]:
    out: dict[Any, dict[str, Any]] = {}
    for cluster, platform, kind, count in results["assets"]:
        entry = out.setdefault(
            cluster,
            {
                "cluster": cluster,
                "accounts": 0,
                "assets": {},
                "first_ts": None,
                "last_ts": None,
                "actions": 0,
                **{key: [] for key in (*_TOP_LISTS.values(), _OTHER)},
            },
        )
        entry["accounts"] += count
        entry["assets"].setdefault(platform, {})[kind] = count
    for cluster, count, first, last in results["activity"]:
        out[cluster].update(actions=count, first_ts=first, last_ts=last)
    for cluster, key, kind, obj, accounts, actions in results["top"]:
        item: dict[str, Any] = {"object": obj, "accounts": accounts, "actions": actions}
        if key == _OTHER:
            item["kind"] = kind
        out[cluster][key].append(item)
    return list(out.values())
