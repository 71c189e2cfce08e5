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
one. The same argument lets the peel start from a smaller core still, when what it
finds there is denser than that core's ``τ`` by a margin (:func:`peel_within`): on
10 million synthetic reports (``benchmarks/reports.py``), where heavy reporters and
popular targets keep 4 million edges in the first core, the brigades' blocks come
from cores of some 600,000 edges.

**Scale.** Reporters and targets are keyed by integers in SQL (hashes, checked for
clashes), the edges deduplicated there, and the peel runs on a binary heap of
integers, compiled (:mod:`concerted.detectors.peeling`, numba): on a random graph of
245,790 edges it takes 0.06 to 0.07 CPU seconds where the same loop in Python takes
0.48 to 0.53 (on the 10 million reports above, the five peels in Python took about 20
of the detector's 70 CPU seconds). The τ-cores before each peel are compiled too
(:func:`~concerted.detectors.peeling.core_edges`): on those reports the rounds of
S3 took 18 to 19 CPU seconds where the same cores in array operations took 28 to 31.

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
reporters of the block's targets can stay in it. Peeling is sequential, one node at
a time, over the pruned graph (compiled, about 0.3 CPU seconds per million edges
peeled; in Python about 2.5).

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

import itertools
from dataclasses import dataclass
from typing import Any, ClassVar

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import scipy.sparse
from scipy.sparse.csgraph import connected_components

from concerted.detectors import peeling
from concerted.detectors.base import SIGNAL_COLUMNS, Evidence, empty
from concerted.errors import ConfigError
from concerted.schema import sql_hash, sql_literal

__all__ = ["Block", "DenseBlock", "column_weights", "core", "peel", "peel_within", "split"]

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
    # One weight per column, then one per edge: the same numbers as edge by edge.
    per_column = np.round(_QUANTUM / np.log(degree + offset)) / _QUANTUM
    return np.asarray(per_column[cols], dtype=np.float64)


def core(
    rows: IntArray,
    cols: IntArray,
    weights: FloatArray,
    n_rows: int,
    n_cols: int,
    tau: float,
    *,
    plain: bool = False,
) -> BoolArray:
    """The edges of the ``tau``-core: remove every node whose weighted degree is at most
    ``tau``, with its edges, until none is left to remove. Weights that are whole
    multiples of 2^-24 (as :func:`column_weights` makes them) go to the compiled loop
    (:func:`~concerted.detectors.peeling.core_edges`), exact in integers; other
    weights, or ``plain``, to rounds of array operations over the edges left, the
    reference it is held to.

    >>> core(np.array([0, 0, 1]), np.array([0, 1, 0]), np.ones(3), 2, 2, 1.0).tolist()
    [False, False, False]
    >>> core(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), np.ones(4), 2, 2, 1.0).tolist()
    [True, True, True, True]
    """
    if not plain and rows.size:
        units = np.round(weights * _QUANTUM)
        if (
            bool((units / _QUANTUM == weights).all())
            and bool((weights >= 0).all())
            and float(units.sum()) < 2.0**53
        ):
            return peeling.core_edges(
                rows, cols, units.astype(np.int64), n_rows, n_cols, tau * _QUANTUM
            )
    # The edges still in, by index; each round works on those alone (the first round
    # usually drops most of them).
    index = np.arange(rows.size)
    r, c, w = rows, cols, weights
    while True:
        wr = np.bincount(r, weights=w, minlength=n_rows)
        wc = np.bincount(c, weights=w, minlength=n_cols)
        stay = (wr[r] > tau) & (wc[c] > tau)
        if stay.all():
            break
        index, r, c, w = index[stay], r[stay], c[stay], w[stay]
    keep = np.zeros(rows.size, dtype=bool)
    keep[index] = True
    return keep


def peel(
    rows: IntArray,
    cols: IntArray,
    weights: FloatArray,
    n_rows: int,
    n_cols: int,
    *,
    plain: bool = False,
) -> Block:
    """FRAUDAR's greedy peeling: the densest set seen while removing, one at a time, the
    node whose edges inside the current set weigh least (ties: the lower number, rows
    before columns). The loop runs compiled (:func:`~concerted.detectors.peeling.peel_order`);
    ``plain`` runs it in Python instead, the reference that peels alike.

    >>> b = peel(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 0, 1, 2]), np.ones(5), 3, 3)
    >>> b.rows.tolist(), b.cols.tolist(), b.density
    ([True, True, False], [True, True, False], 1.0)
    """
    n = n_rows + n_cols
    src = np.concatenate([rows, cols + n_rows])
    dst = np.concatenate([cols + n_rows, rows])
    # Weights as whole multiples of 2^-24 (which they are): sums stay exact, and a
    # heap entry is one integer, priority * n + node, ordered as (priority, node).
    scaled = np.round(weights * _QUANTUM).astype(np.int64)
    both = np.concatenate([scaled, scaled])
    order = np.argsort(src, kind="stable")
    counts = np.bincount(src, minlength=n)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    present = counts > 0
    total = int(scaled.sum())
    keys = np.bincount(src, weights=both, minlength=n).astype(np.int64) * n + np.arange(n)
    run = peeling.peel_order_plain if plain else peeling.peel_order
    sequence, best_step = run(
        indptr, dst[order].astype(np.int64), both[order] * n, keys, present, total, _QUANTUM
    )
    inside = present.copy()
    inside[sequence[:best_step]] = False
    block_rows, block_cols = inside[:n_rows], inside[n_rows:]
    # The density again, exactly, from the edges inside.
    within = block_rows[rows] & block_cols[cols]
    size = int(inside.sum())
    density = float(weights[within].sum()) / size if size else 0.0
    return Block(block_rows, block_cols, density)


# The most cores :func:`peel_within` peels before it peels the whole edge set.
_MAX_TRIES = 64


def peel_within(
    rows: IntArray, cols: IntArray, weights: FloatArray, n_rows: int, n_cols: int, tau: float
) -> Block:
    """What :func:`peel` finds on these edges, found where possible by peeling a
    smaller core of them (``tau`` > 0: the least core worth trying).

    Peeling passes through every ``t``-core on its way (see the module's notes). A
    set it passes before the ``t``-core that is at least ``t`` dense only grows denser
    as the nodes outside the core go (each of weighted degree at most ``t``), so it
    is no denser than the core, and no denser than the set just before the core,
    which is below the core's density by ``(g - t) / (n + 1)`` at least (``g`` the
    core's density, ``n`` its nodes). So when the peel of the ``t``-core finds a set
    denser than ``t`` that is denser than the core, or is the core itself with that
    margin, it is the first densest set of the whole peel too. Cores for ``t`` rising
    by a quarter from ``tau`` are tried, smallest first; each peel tells a density
    the whole peel reaches, and just below it the core is sure to pass, which is
    tried as soon as it is smaller than the next one. The whole edge set comes last.

    >>> rows, cols = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 0, 1, 2])
    >>> peel_within(rows, cols, np.ones(5), 3, 3, 0.5).cols.tolist()
    [True, True, False]
    """
    # Numbers for the nodes of these edges alone, in the same order (so that ties fall
    # alike), which keeps every count below as small as the edges.
    row_ids, r = _renumber(rows, n_rows)
    col_ids, c = _renumber(cols, n_cols)
    n_r, n_c = row_ids.size, col_ids.size
    levels: list[tuple[float, IntArray]] = []
    index = np.arange(rows.size)
    # Below the lightest edge's weight every node with an edge is in the core, so no
    # smaller t is worth a try; and the tries are bounded, the whole peel being the
    # answer that is always right (a tau near zero would otherwise try cores for ever).
    t = max(tau, 0.5 * float(weights.min())) if tau > 0 and weights.size else tau
    tries = 0
    while t > 0:
        t *= 1.25
        kept = core(r[index], c[index], weights[index], n_r, n_c, t)
        if not kept.any():
            break
        if not kept.all():
            index = index[kept]
            levels.append((t, index))
    found: Block | None = None
    known = 0.0
    while levels and found is None and tries < _MAX_TRIES:
        tries += 1
        t, index = levels.pop()
        block, reached = _peel_core(r[index], c[index], weights[index], n_r, n_c, t)
        if block is not None:
            found = block
            break
        # The whole peel reaches `reached`; the core just below it passes for sure.
        known = max(known, reached)
        target = 0.99 * min(known, t)
        if target > tau and (not levels or levels[-1][0] < target):
            within = levels[-1][1] if levels else np.arange(rows.size)
            kept = core(r[within], c[within], weights[within], n_r, n_c, target)
            levels.append((target, within[kept]))
    if found is None:
        found = peel(r, c, weights, n_r, n_c)
    block_rows = np.zeros(n_rows, dtype=bool)
    block_cols = np.zeros(n_cols, dtype=bool)
    block_rows[row_ids[found.rows]] = True
    block_cols[col_ids[found.cols]] = True
    return Block(block_rows, block_cols, found.density)


def _renumber(ids: IntArray, n: int) -> tuple[IntArray, IntArray]:
    """``np.unique(ids, return_inverse=True)`` for ``ids`` in ``[0, n)``, counted
    rather than sorted: the distinct ids in order, and each one's rank among them.

    >>> [a.tolist() for a in _renumber(np.array([5, 2, 5, 9]), 10)]
    [[2, 5, 9], [1, 0, 1, 2]]
    """
    seen = np.zeros(n, dtype=bool)
    seen[ids] = True
    rank = np.cumsum(seen, dtype=np.int64) - 1
    return np.flatnonzero(seen).astype(np.int64), rank[ids]


def _peel_core(
    rows: IntArray, cols: IntArray, weights: FloatArray, n_rows: int, n_cols: int, t: float
) -> tuple[Block | None, float]:
    """Peel the ``t``-core given: the block, if it is the whole peel's answer (see
    :func:`peel_within`), and its density."""
    block = peel(rows, cols, weights, n_rows, n_cols)
    nodes = int(block.rows.sum()) + int(block.cols.sum())
    present = int(np.count_nonzero(np.bincount(rows))) + int(np.count_nonzero(np.bincount(cols)))
    density = float(weights.sum()) / present
    if block.density <= t:
        return None, block.density
    if block.density > density:
        return block, block.density
    assert nodes == present  # the core itself
    if (block.density - t) / (present + 1) > block.density * 1e-12:
        return block, block.density
    return None, block.density


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


def _unclash(
    con: duckdb.DuckDBPyConnection, actions: str, source: str, reporters: str, targets: str
) -> None:
    """Key the reports by node numbers instead of hashes, for reporters or targets,
    if two of them ever share a hash (the reports read again from ``actions``)."""
    clash: dict[str, bool] = {}
    for nodes, key in ((reporters, "rh"), (targets, "ch")):
        row = con.sql(f"SELECT count(*) - count(DISTINCT {key}) FROM {nodes}").fetchone()
        clash[key] = bool(row and row[0])
    if not any(clash.values()):
        return
    rh, ch = ("u.r" if clash["rh"] else "u.rh"), ("t.c" if clash["ch"] else "t.ch")
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {source} AS
            SELECT {rh} AS rh, {ch} AS ch, a.ts FROM {actions} a
            JOIN {reporters} u ON u.platform IS NOT DISTINCT FROM a.platform
                 AND u.actor_id IS NOT DISTINCT FROM a.actor_id
            JOIN {targets} t ON t.platform IS NOT DISTINCT FROM a.platform
                 AND t.object_id IS NOT DISTINCT FROM a.object_id
            WHERE a.kind = 'report'"""
    )
    if clash["rh"]:
        con.execute(f"UPDATE {reporters} SET rh = r")
    if clash["ch"]:
        con.execute(f"UPDATE {targets} SET ch = c")


@dataclass(frozen=True, kw_only=True)
class DenseBlock:
    """FRAUDAR's densest reporter x target blocks (see the module's notes).

    >>> DenseBlock().max_blocks
    20
    """

    name: ClassVar[str] = "dense_block"
    family: ClassVar[str] = "report"
    weight: ClassVar[float] = 0.3
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
        # Numbers for reporters and targets in the order of their ids; the reports keyed
        # by hashes of reporter and target (checked: numbers replace them if two ever
        # clash), so that every join and group runs on integers, not strings: the
        # reports are kept as two keys and a time, the ids once per node, each hashed
        # once. The edges come deduplicated and in no particular order: nothing below
        # depends on their order (weights sum exactly, and ties fall by node number).
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {source} AS
                SELECT {sql_hash("platform, actor_id")} AS rh,
                       {sql_hash("platform, object_id")} AS ch, ts
                FROM {actions} WHERE kind = 'report';
                CREATE OR REPLACE TEMP TABLE {reporters} AS
                SELECT (row_number() OVER (ORDER BY platform, actor_id) - 1)::BIGINT AS r,
                       platform, actor_id, {sql_hash("platform, actor_id")} AS rh
                FROM (SELECT DISTINCT platform, actor_id FROM {actions} WHERE kind = 'report');
                CREATE OR REPLACE TEMP TABLE {targets} AS
                SELECT (row_number() OVER (ORDER BY platform, object_id) - 1)::BIGINT AS c,
                       platform, object_id, {sql_hash("platform, object_id")} AS ch
                FROM (SELECT DISTINCT platform, object_id FROM {actions} WHERE kind = 'report');"""
        )
        _unclash(con, actions, source, reporters, targets)
        got = con.sql(
            f"""SELECT u.r, t.c FROM (SELECT DISTINCT rh, ch FROM {source}) s
                JOIN {reporters} u USING (rh) JOIN {targets} t USING (ch)"""
        ).fetchnumpy()
        rows = np.asarray(got["r"], dtype=np.int64)
        cols = np.asarray(got["c"], dtype=np.int64)
        notes: dict[str, Any] = {
            "max_blocks": self.max_blocks,
            "min_density_ratio": self.min_density_ratio,
            "log_offset": self.log_offset,
            "edges": int(rows.size),
            "blocks": [],
        }
        found = self._blocks(rows, cols, notes) if rows.size else []
        return self._evidence(con, names, members, found, notes, rows, cols)

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
            peeled = peel_within(r[kept], c[kept], w[kept], n_rows, n_cols, floor)
            parts = [b for b in split(peeled, r[kept], c[kept], w[kept]) if b.density >= floor]
            if not parts:
                break
            parts = parts[: self.max_blocks - len(blocks)]
            # The parts share no node: an edge lies in one when both its ends do.
            row_part = np.full(n_rows, -1, dtype=np.int64)
            col_part = np.full(n_cols, -2, dtype=np.int64)
            for number, block in enumerate(parts):
                row_part[block.rows] = number
                col_part[block.cols] = number
            left &= row_part[rows] != col_part[cols]
            for block in parts:
                blocks.append(block)
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
        rows: IntArray,
        cols: IntArray,
    ) -> Evidence:
        # The edges inside each block: one of its reporters on one of its targets,
        # whichever round peeled them. Blocks are taken a node-disjoint group at a
        # time (those of one round share no node), each group in one pass.
        n_rows, n_cols = (
            int(rows.max()) + 1 if rows.size else 0,
            int(cols.max()) + 1 if cols.size else 0,
        )
        groups: list[tuple[BoolArray, BoolArray, list[int]]] = []
        for number, block in enumerate(found):
            for used_rows, used_cols, held in groups:
                if not (used_rows & block.rows).any() and not (used_cols & block.cols).any():
                    used_rows |= block.rows
                    used_cols |= block.cols
                    held.append(number)
                    break
            else:
                groups.append((block.rows.copy(), block.cols.copy(), [number]))
        parts: list[tuple[IntArray, IntArray, IntArray]] = []
        for _, _, held in groups:
            row_part = np.full(n_rows, -1, dtype=np.int64)
            col_part = np.full(n_cols, -2, dtype=np.int64)
            for number in held:
                row_part[found[number].rows] = number
                col_part[found[number].cols] = number
            inside = np.flatnonzero(row_part[rows] == col_part[cols])
            parts.append((row_part[rows[inside]] + 1, rows[inside], cols[inside]))
        block_ids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
        densities = np.array([0.0] + [b.density for b in found], dtype=np.float64)
        table = pa.table(
            {
                "block": pa.array(block_ids, pa.int64()),
                "r": pa.array(np.concatenate([p[1] for p in parts]) if parts else block_ids),
                "c": pa.array(np.concatenate([p[2] for p in parts]) if parts else block_ids),
                "density": pa.array(densities[block_ids], pa.float64()),
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
            WITH e AS (SELECT m.block, m.density, m.r, m.c, u.rh, t.ch
                       FROM {members} m JOIN {names["reporters"]} u USING (r)
                       JOIN {names["targets"]} t USING (c)),
                 inside AS (SELECT e.block, e.density, e.r, e.c, s.ts
                            FROM {names["source"]} s JOIN e ON e.rh = s.rh AND e.ch = s.ch),
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
