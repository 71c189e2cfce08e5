"""S3 dense blocks: groups of reporters who reported the same group of targets (FRAUDAR).

**What.** The reporters and the targets they reported form a bipartite graph (one
edge per reporter and target, however many times the one reported the other). The
detector finds its densest blocks by FRAUDAR's greedy peeling (Hooi, Song, Beutel,
Shah, Shin and Faloutsos, "FRAUDAR: Bounding Graph Fraud in the Face of Camouflage",
KDD 2016), written here from the paper.

**Why.** A brigade is a block: tens of members each reporting most of the same tens
of targets, which ordinary reporters almost never do. FRAUDAR's weighting makes the
block stand out even when its members add camouflage (reports on popular targets
that everyone reports) and resists the pull of the popular targets themselves.

**The algorithm.** Each edge into target ``j`` weighs ``1 / ln(d_j + c)``, ``d_j`` the
number of reporters of ``j`` and ``c`` = ``log_offset`` (5, as in the paper): an edge
into a target that everyone reports says little. The density of a set ``S`` of
reporters and targets is ``g(S) = f(S) / |S|``, ``f(S)`` the weight of the edges inside
``S``. Peeling starts from the whole graph and removes, one at a time, the node
(reporter or target) whose edges inside the current set weigh least, keeping the
set of highest density seen; a priority queue with lazy deletion makes it
O(E log V). The set found has at least half the best density (the paper's bound) and
camouflage cannot lower it. For more blocks, the block's edges are removed, the
weights recomputed on what is left, and the peeling run again (the paper's
``detect_blocks``), up to ``max_blocks`` times, while the block found is at least
``min_density_ratio`` times the background density (below). Peeling keeps two
equally dense blocks that no edge joins as one set (dropping either does not raise
the density), so a peeled set is split into its connected parts, each kept on its
own merit.

**Pruning first, with the same answer.** Before peeling, nodes whose weighted degree is
at most ``τ`` are removed, repeatedly (the ``τ``-core): reporters with one report and
targets with one reporter always go once ``τ`` reaches ``1/ln(1 + c)``, the most an
edge can weigh. With ``τ`` the smallest density that would be kept (``min_density_ratio``
times the graph's), the peel on what is left finds exactly the block the peel on the
whole graph finds whenever that block is kept: peeling always removes the nodes
outside the ``τ``-core first (each has weighted degree at most ``τ`` when it goes,
and no core node does), and removing a node of weighted degree ``δ ≤ τ ≤ g(S)`` never
lowers ``g``, so no set passed on the way to the core that is dense enough to keep is
denser than the best set found from it. (A block too thin to keep may differ; it is
not reported either way.) Weights are rounded to multiples of 2^-24, so that every sum
of them is exact in floating point: ties between nodes then fall alike on the whole
graph and on its core, and on any order of the input. On the simulator's cases
pruning keeps under half of the edges of a brigade case and under 1% of an organic
one.

**Background and score.** The background is the density of the whole graph (all
reporters and targets, first-round weights). A block is kept while its density is at
least ``min_density_ratio`` times that, and scores ``1 - graph density / block
density`` (0 at the background, towards 1 far above it). On the simulator (seeds 0 to
2) the densest organic blocks, friends answering a call-out to report two or three
accounts, reach 2.0 to 2.2 times the graph's density; the main block of each brigade
10 to 15 times; the default ratio of 2.5 keeps the second. So set, no organic case
yields a block, and on the brigade cases the blocks hold 96% to 100% of the members
and every brigaded target, and nothing else.

**Settings.** ``max_blocks`` (default 20); ``min_density_ratio`` (default 2.5: the least
needed to stop peeling, not a flag); ``log_offset`` (``c``, default 5).

**Evidence.** Signals only, layer ``report``: one ``account`` row per reporter and one
``target`` row per target of each block, with ``related_id`` the block id
(``dense-block-1`` is the first found), ``value`` the block's density, ``score`` as
above, ``first_ts`` and ``last_ts`` the member's first and last report inside the
block, and ``detail`` the block's size, its density against the whole graph's, and the
member's share of the block. Notes give each block's
figures and the pruning's.

**Limitations.** Who reported what is all it reads: the time of the reports does not
matter, so a block may join reports made weeks apart (S2 and S8 look at time). A
member who reported only a few of the block's targets can be left out of the block
(peeling drops nodes lighter than the block's density), and a few ordinary heavy
reporters of the block's targets can stay in it. Peeling is sequential Python over
the pruned graph: on graphs whose core keeps tens of millions of edges it takes
minutes.

>>> import duckdb
>>> con = duckdb.connect()
>>> _ = con.execute("CREATE TABLE a AS SELECT 'm' || (i % 10) AS actor_id, 'x' AS platform,"
...     " 'report' AS kind, 'b' || (i // 10) AS object_id,"
...     " TIMESTAMPTZ '2020-01-01 00:00:00+00' + INTERVAL (i) MINUTE AS ts,"
...     " 'r' || i AS source_id FROM range(100) t(i) UNION ALL"
...     " SELECT 'o' || i, 'x', 'report', 'p' || (i % 40), TIMESTAMPTZ '2020-01-02 00:00:00+00',"
...     " 's' || i FROM range(200) t(i)")
>>> ev = DenseBlock().detect(con, "a")
>>> ev.signals.aggregate("entity, count(*)", "entity").order("entity").fetchall()
[('account', 10), ('target', 10)]
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass
from typing import Any, ClassVar

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import scipy.sparse
from scipy.sparse.csgraph import connected_components

from concerted.detectors.base import SIGNAL_COLUMNS, Evidence, empty
from concerted.errors import ConfigError
from concerted.schema import sql_literal

__all__ = ["Block", "DenseBlock", "column_weights", "core", "peel", "split"]

_ids = itertools.count()
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
_QUANTUM = float(2**24)


@dataclass(frozen=True)
class Block:
    """A block found by :func:`peel`: which edges lie inside it, its reporters and
    targets (as masks over the node numbers) and its density."""

    rows: BoolArray
    cols: BoolArray
    density: float


def column_weights(cols: IntArray, n_cols: int, offset: float) -> FloatArray:
    """The weight of every edge: ``1 / ln(d + offset)`` for an edge into a column of
    degree ``d``, rounded to a multiple of 2^-24 so that every sum of weights is exact
    in floating point whatever the order of its terms (up to 2^29 in all): peeling then
    breaks ties alike on any input order, and on a pruned graph as on the whole.

    >>> column_weights(np.array([0, 0, 1]), 2, 5.0).round(3).tolist()
    [0.514, 0.514, 0.558]
    """
    degree = np.bincount(cols, minlength=n_cols).astype(np.float64)
    weights = np.round(_QUANTUM / np.log(degree[cols] + offset)) / _QUANTUM
    return np.asarray(weights, dtype=np.float64)


def core(
    rows: IntArray, cols: IntArray, weights: FloatArray, n_rows: int, n_cols: int, tau: float
) -> BoolArray:
    """The edges of the ``tau``-core: remove every node whose weighted degree is at most
    ``tau``, with its edges, until none is left to remove.

    >>> core(np.array([0, 0, 1]), np.array([0, 1, 0]), np.ones(3), 2, 2, 1.0).tolist()
    [False, False, False]
    >>> core(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), np.ones(4), 2, 2, 1.0).tolist()
    [True, True, True, True]
    """
    keep = np.ones(rows.size, dtype=bool)
    while True:
        wr = np.bincount(rows[keep], weights=weights[keep], minlength=n_rows)
        wc = np.bincount(cols[keep], weights=weights[keep], minlength=n_cols)
        drop = keep & ((wr[rows] <= tau) | (wc[cols] <= tau))
        if not drop.any():
            return keep
        keep &= ~drop


def peel(rows: IntArray, cols: IntArray, weights: FloatArray, n_rows: int, n_cols: int) -> Block:
    """FRAUDAR's greedy peeling: the densest set seen while removing, one at a time, the
    node whose edges inside the current set weigh least (ties: the lower number, rows
    before columns).

    >>> b = peel(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 0, 1, 2]), np.ones(5), 3, 3)
    >>> b.rows.tolist(), b.cols.tolist(), b.density
    ([True, True, False], [True, True, False], 1.0)
    """
    n = n_rows + n_cols
    src = np.concatenate([rows, cols + n_rows])
    dst = np.concatenate([cols + n_rows, rows])
    both = np.concatenate([weights, weights])
    order = np.argsort(src, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n))]).tolist()
    neighbours = dst[order].tolist()
    edge_weight = both[order].tolist()
    priority = np.bincount(src, weights=both, minlength=n).tolist()
    present = np.bincount(src, minlength=n) > 0
    alive = int(present.sum())
    total = float(weights.sum())
    heap = [(priority[v], v) for v in np.flatnonzero(present).tolist()]
    heapq.heapify(heap)
    removed = bytearray(n)
    sequence: list[int] = []
    best = total / alive if alive else 0.0
    best_step = 0
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        p, v = pop(heap)
        if removed[v] or p != priority[v]:
            continue
        removed[v] = 1
        sequence.append(v)
        total -= p
        alive -= 1
        for i in range(indptr[v], indptr[v + 1]):
            u = neighbours[i]
            if not removed[u]:
                priority[u] -= edge_weight[i]
                push(heap, (priority[u], u))
        if alive and total / alive > best:
            best, best_step = total / alive, len(sequence)
    inside = present.copy()
    inside[np.asarray(sequence[:best_step], dtype=np.int64)] = False
    block_rows, block_cols = inside[:n_rows], inside[n_rows:]
    # The density again, exactly, from the edges inside.
    within = block_rows[rows] & block_cols[cols]
    size = int(inside.sum())
    density = float(weights[within].sum()) / size if size else 0.0
    return Block(block_rows, block_cols, density)


def split(block: Block, rows: IntArray, cols: IntArray, weights: FloatArray) -> list[Block]:
    """The parts of ``block`` that no edge joins, densest first (ties: the part with the
    lowest-numbered reporter first). Peeling keeps two equally dense blocks that share
    nothing as one set, since dropping either does not raise the density.

    >>> b = Block(np.array([True, True]), np.array([True, True]), 1.0)
    >>> [p.density for p in split(b, np.array([0, 1]), np.array([0, 1]), np.array([1.0, 3.0]))]
    [1.5, 0.5]
    """
    n_rows, n_cols = block.rows.size, block.cols.size
    inside = block.rows[rows] & block.cols[cols]
    r, c, w = rows[inside], cols[inside], weights[inside]
    graph = scipy.sparse.coo_matrix(
        (np.ones(r.size), (r, c + n_rows)), shape=(n_rows + n_cols, n_rows + n_cols)
    )
    _, labels = connected_components(graph, directed=False)
    members = np.concatenate([block.rows, block.cols])
    parts: list[Block] = []
    for label in np.unique(labels[members]):
        nodes = members & (labels == label)
        size = int(nodes.sum())
        mass = float(w[labels[r] == label].sum())
        parts.append(Block(nodes[:n_rows].copy(), nodes[n_rows:].copy(), mass / size))
    parts.sort(key=lambda p: (-p.density, int(np.argmax(np.concatenate([p.rows, p.cols])))))
    return parts


@dataclass(frozen=True, kw_only=True)
class DenseBlock:
    """FRAUDAR's densest reporter x target blocks (see the module's notes).

    >>> DenseBlock().max_blocks
    20
    """

    name: ClassVar[str] = "dense_block"
    reads: ClassVar[tuple[str, ...]] = ()
    max_blocks: int = 20
    min_density_ratio: float = 2.5
    log_offset: float = 5.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "min_density_ratio", float(self.min_density_ratio))
        object.__setattr__(self, "log_offset", float(self.log_offset))
        if self.max_blocks < 1:
            raise ConfigError(f"dense_block: max_blocks must be at least 1, got {self.max_blocks}")
        if not self.min_density_ratio >= 1:
            raise ConfigError(
                f"dense_block: min_density_ratio must be at least 1, got {self.min_density_ratio}"
            )
        if not self.log_offset > 1:
            raise ConfigError(f"dense_block: log_offset must be above 1, got {self.log_offset}")

    def detect(self, con: duckdb.DuckDBPyConnection, actions: str) -> Evidence:
        n = next(_ids)
        names = {k: f"_dense_block_{k}_{n}" for k in ("source", "reporters", "targets")}
        source, reporters, targets = names.values()
        members = f"_dense_block_members_{n}"
        # Numbers for reporters and targets in the order of their ids; the edges as
        # pairs of numbers, deduplicated in numpy (sorting integers, not strings).
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {source} AS
                SELECT platform, actor_id, object_id, ts FROM {actions} WHERE kind = 'report';
                CREATE OR REPLACE TEMP TABLE {reporters} AS
                SELECT (row_number() OVER (ORDER BY platform, actor_id) - 1)::BIGINT AS r,
                       platform, actor_id
                FROM (SELECT DISTINCT platform, actor_id FROM {source});
                CREATE OR REPLACE TEMP TABLE {targets} AS
                SELECT (row_number() OVER (ORDER BY platform, object_id) - 1)::BIGINT AS c,
                       platform, object_id
                FROM (SELECT DISTINCT platform, object_id FROM {source});"""
        )
        got = con.sql(
            f"""SELECT u.r, t.c FROM {source} s JOIN {reporters} u USING (platform, actor_id)
                JOIN {targets} t USING (platform, object_id)"""
        ).fetchnumpy()
        counted = con.sql(f"SELECT count(*) FROM {targets}").fetchone()
        n_cols = max(1, int(counted[0]) if counted else 1)
        keys = np.sort(
            np.asarray(got["r"], dtype=np.int64) * n_cols + np.asarray(got["c"], dtype=np.int64)
        )
        if keys.size:
            keys = keys[np.concatenate([[True], keys[1:] != keys[:-1]])]
        rows, cols = keys // n_cols, keys % n_cols
        notes: dict[str, Any] = {
            "max_blocks": self.max_blocks,
            "min_density_ratio": self.min_density_ratio,
            "log_offset": self.log_offset,
            "edges": int(rows.size),
            "blocks": [],
        }
        found = self._blocks(rows, cols, notes) if rows.size else []
        return self._evidence(con, names, members, found, notes)

    def _blocks(self, rows: IntArray, cols: IntArray, notes: dict[str, Any]) -> list[Block]:
        """Up to ``max_blocks`` blocks, each at least ``min_density_ratio`` times as dense
        as the whole graph."""
        n_rows, n_cols = int(rows.max()) + 1, int(cols.max()) + 1
        weights = column_weights(cols, n_cols, self.log_offset)
        # Every number from 0 to the largest names a reporter or target with an edge.
        whole = float(weights.sum()) / (n_rows + n_cols)
        notes["graph_density"] = whole
        floor = self.min_density_ratio * whole
        blocks: list[Block] = []
        left = np.ones(rows.size, dtype=bool)
        while len(blocks) < self.max_blocks:
            r, c = rows[left], cols[left]
            if not r.size:
                break
            w = column_weights(c, n_cols, self.log_offset)
            # Exact for every block dense enough to be kept (see the module's notes).
            kept = core(r, c, w, n_rows, n_cols, floor)
            if not blocks:
                notes["pruned_edges"] = int(kept.sum())
            if not kept.any():
                break
            peeled = peel(r[kept], c[kept], w[kept], n_rows, n_cols)
            parts = [b for b in split(peeled, r[kept], c[kept], w[kept]) if b.density >= floor]
            if not parts:
                break
            for block in parts[: self.max_blocks - len(blocks)]:
                blocks.append(block)
                left &= ~(block.rows[rows] & block.cols[cols])
                notes["blocks"].append(
                    {
                        "block": f"dense-block-{len(blocks)}",
                        "reporters": int(block.rows.sum()),
                        "targets": int(block.cols.sum()),
                        "density": block.density,
                    }
                )
        return blocks

    def _evidence(
        self,
        con: duckdb.DuckDBPyConnection,
        names: dict[str, str],
        members: str,
        found: list[Block],
        notes: dict[str, Any],
    ) -> Evidence:
        block_ids: list[int] = []
        sides: list[str] = []
        nodes: list[int] = []
        for number, block in enumerate(found):
            for side, mask in (("account", block.rows), ("target", block.cols)):
                index = np.flatnonzero(mask).tolist()
                nodes.extend(index)
                sides.extend([side] * len(index))
                block_ids.extend([number + 1] * len(index))
        densities = [b.density for b in found]
        table = pa.table(
            {
                "block": pa.array(block_ids, pa.int64()),
                "side": pa.array(sides, pa.string()),
                "node": pa.array(nodes, pa.int64()),
                "density": pa.array([densities[b - 1] for b in block_ids], pa.float64()),
            }
        )
        view = f"{members}_view"
        con.register(view, table)
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {members} AS SELECT * FROM {view}")
        finally:
            con.unregister(view)
        whole = float(notes.get("graph_density", 0.0))
        name = sql_literal(self.name)
        signals = con.sql(
            f"""
            WITH reporters AS (SELECT block, node AS r, density FROM {members}
                               WHERE side = 'account'),
                 targets AS (SELECT block, node AS c, density FROM {members}
                             WHERE side = 'target'),
                 mr AS (SELECT x.block, x.density, x.r, u.platform, u.actor_id
                        FROM reporters x JOIN {names["reporters"]} u USING (r)),
                 mt AS (SELECT y.block, y.c, t.platform, t.object_id
                        FROM targets y JOIN {names["targets"]} t USING (c)),
                 inside AS (SELECT mr.block, mr.density, mr.r, mt.c, s.ts
                            FROM {names["source"]} s
                            JOIN mr ON mr.platform = s.platform AND mr.actor_id = s.actor_id
                            JOIN mt ON mt.platform = s.platform AND mt.object_id = s.object_id
                             AND mt.block = mr.block),
                 size AS (SELECT block, count(DISTINCT r) AS reporters,
                                 count(DISTINCT c) AS targets, count(*) AS reports
                          FROM inside GROUP BY block),
                 rows AS (
                    SELECT i.block, 'account' AS entity, u.platform, u.actor_id AS id,
                           i.density, i.hit, i.first_ts, i.last_ts
                    FROM (SELECT block, r, density, count(DISTINCT c) AS hit,
                                 min(ts) AS first_ts, max(ts) AS last_ts
                          FROM inside GROUP BY ALL) i
                    JOIN {names["reporters"]} u USING (r)
                    UNION ALL
                    SELECT i.block, 'target', t.platform, t.object_id, i.density, i.hit,
                           i.first_ts, i.last_ts
                    FROM (SELECT block, c, density, count(DISTINCT r) AS hit,
                                 min(ts) AS first_ts, max(ts) AS last_ts
                          FROM inside GROUP BY ALL) i
                    JOIN {names["targets"]} t USING (c))
            SELECT {name} AS detector, 'report' AS layer, x.entity, x.platform, x.id,
                   greatest(0.0, 1.0 - {whole!r} / x.density)::DOUBLE AS score,
                   x.density::DOUBLE AS value, 'dense-block-' || x.block AS related_id,
                   x.first_ts, x.last_ts,
                   'block ' || x.block || ' of ' || {len(found)} || ': ' || s.reporters
                   || ' reporters x ' || s.targets || ' targets, ' || s.reports
                   || ' reports; density ' || printf('%.3g', x.density) || ' against '
                   || printf('%.3g', {whole!r}) || ' for the whole graph; this '
                   || CASE WHEN x.entity = 'account'
                           THEN 'reporter reported ' || x.hit || ' of its targets'
                           ELSE 'target was reported by ' || x.hit || ' of its reporters'
                      END AS detail
            FROM rows x JOIN size s USING (block)
            """
        ).project(", ".join(SIGNAL_COLUMNS))
        return Evidence(
            edges=empty(con, "edges"),
            events=empty(con, "events"),
            signals=signals,
            notes=notes,
            temporary=(*names.values(), members),
        )
