"""S3 dense blocks: FRAUDAR's peeling, its bound, exact pruning, planted blocks."""

from __future__ import annotations

import heapq
import itertools
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.detectors import dense_block, peeling
from concerted.detectors.dense_block import (
    DenseBlock,
    column_weights,
    core,
    peel,
    peel_within,
)
from concerted.errors import ConfigError
from concerted.testing.planted import report_actions
from tests.budget import examples

Edge = tuple[str, str]  # reporter, target


def _actions(con: duckdb.DuckDBPyConnection, edges: list[Edge], name: str = "a") -> str:
    """One report per edge, a minute apart."""
    return report_actions(
        con, [(who, target, 60.0 * i) for i, (who, target) in enumerate(edges)], name
    )


def _organic(rng: np.random.Generator, reporters: int = 400, reports: int = 900) -> list[Edge]:
    """Reporters of heavy-tailed activity reporting targets of heavy-tailed popularity."""
    activity = rng.pareto(1.5, reporters) + 1
    popularity = rng.pareto(1.2, 300) + 1
    who = rng.choice(reporters, reports, p=activity / activity.sum())
    what = rng.choice(300, reports, p=popularity / popularity.sum())
    return [(f"o{w}", f"t{t}") for w, t in zip(who, what, strict=True)]


def _block(prefix: str, reporters: int, targets: int, share: float, seed: int) -> list[Edge]:
    rng = np.random.default_rng(seed)
    return [
        (f"{prefix}m{i}", f"{prefix}x{j}")
        for i in range(reporters)
        for j in range(targets)
        if rng.random() < share
    ]


def _members(con: duckdb.DuckDBPyConnection, table: str, **settings: float) -> dict[str, set[str]]:
    signals = DenseBlock(**settings).detect(con, table).signals  # type: ignore[arg-type]
    found: dict[str, set[str]] = {}
    for block, entity, id_ in signals.project("related_id, entity, id").fetchall():
        found.setdefault(f"{block}/{entity}", set()).add(id_)
    return found


def test_peel_finds_the_densest_set_of_a_small_graph() -> None:
    """A 3x3 complete block beside a star of one target and five reporters."""
    rows = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 4, 5, 6, 7])
    cols = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 3, 3, 3, 3])
    block = peel(rows, cols, np.ones(rows.size), 8, 4)
    assert np.flatnonzero(block.rows).tolist() == [0, 1, 2]
    assert np.flatnonzero(block.cols).tolist() == [0, 1, 2]
    assert block.density == pytest.approx(9 / 6)


def test_a_planted_block_is_found_exactly(con: duckdb.DuckDBPyConnection) -> None:
    rng = np.random.default_rng(1)
    edges = _organic(rng) + _block("", 15, 12, 1.0, seed=2)
    found = _members(con, _actions(con, edges))
    assert found == {
        "dense-block-1/account": {f"m{i}" for i in range(15)},
        "dense-block-1/target": {f"x{j}" for j in range(12)},
    }


def test_camouflage_does_not_hide_the_block(con: duckdb.DuckDBPyConnection) -> None:
    """Each member also reports five of the most popular targets: the block stays the
    members and their own targets (the popular ones weigh little)."""
    rng = np.random.default_rng(3)
    organic = _organic(rng)
    popular = [t for t, _ in _count_targets(organic)[:5]]
    camouflage = [(f"m{i}", t) for i in range(15) for t in popular]
    edges = organic + _block("", 15, 12, 0.9, seed=4) + camouflage
    found = _members(con, _actions(con, edges))
    assert found["dense-block-1/account"] == {f"m{i}" for i in range(15)}
    assert {f"x{j}" for j in range(12)} <= found["dense-block-1/target"]


def _count_targets(edges: list[Edge]) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for _, t in edges:
        counts[t] = counts.get(t, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def test_two_blocks_are_two(con: duckdb.DuckDBPyConnection) -> None:
    rng = np.random.default_rng(5)
    edges = _organic(rng) + _block("a", 20, 15, 0.95, seed=6) + _block("b", 18, 14, 0.95, seed=7)
    found = _members(con, _actions(con, edges))
    blocks = {key.split("/")[0] for key in found}
    assert blocks == {"dense-block-1", "dense-block-2"}
    assert found["dense-block-1/account"] == {f"am{i}" for i in range(20)}
    assert found["dense-block-2/account"] == {f"bm{i}" for i in range(18)}


def test_organic_graphs_have_no_block(con: duckdb.DuckDBPyConnection) -> None:
    for seed in range(3):
        rng = np.random.default_rng(seed)
        assert _members(con, _actions(con, _organic(rng), f"a{seed}")) == {}


def test_signals_carry_the_block(con: duckdb.DuckDBPyConnection) -> None:
    rng = np.random.default_rng(8)
    edges = _organic(rng) + _block("", 10, 10, 1.0, seed=9)
    evidence = DenseBlock().detect(con, _actions(con, edges))
    rows = evidence.signals.project("score, value, related_id, detail").fetchall()
    (block,) = evidence.notes["blocks"]
    whole = evidence.notes["graph_density"]
    assert {r[2] for r in rows} == {"dense-block-1"}
    assert [r[1] for r in rows] == pytest.approx([block["density"]] * 20)
    assert [r[0] for r in rows] == pytest.approx([1 - whole / block["density"]] * 20)
    assert all("10 reporters x 10 targets, 100 reports" in r[3] for r in rows)
    assert evidence.edges.fetchall() == [] and evidence.events.fetchall() == []


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError):
        DenseBlock(max_blocks=0)
    with pytest.raises(ConfigError):
        DenseBlock(min_density_ratio=0.5)
    with pytest.raises(ConfigError):
        DenseBlock(log_offset=1)


def _density(
    rows: npt.NDArray[np.int64],
    cols: npt.NDArray[np.int64],
    w: npt.NDArray[np.float64],
    r_set: set[int],
    c_set: set[int],
) -> float:
    size = len(r_set) + len(c_set)
    if not size:
        return 0.0
    inside = [k for k in range(rows.size) if rows[k] in r_set and cols[k] in c_set]
    return float(w[inside].sum()) / size


graphs = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1, max_size=18).map(
    lambda e: np.array(sorted(set(e)), dtype=np.int64)
)


@settings(max_examples=examples(60), deadline=None)
@given(edges=graphs)
def test_peeling_is_within_half_of_the_best(edges: npt.NDArray[np.int64]) -> None:
    """FRAUDAR's bound, against every subset of a small graph: the peel's density is at
    least half the best, and never below the whole graph's."""
    rows, cols = edges[:, 0], edges[:, 1]
    w = column_weights(cols, 5, 5.0)
    block = peel(rows, cols, w, 5, 5)
    r_nodes, c_nodes = sorted(set(rows.tolist())), sorted(set(cols.tolist()))
    best = 0.0
    for rs in range(len(r_nodes) + 1):
        for r_set in itertools.combinations(r_nodes, rs):
            for cs in range(len(c_nodes) + 1):
                for c_set in itertools.combinations(c_nodes, cs):
                    best = max(best, _density(rows, cols, w, set(r_set), set(c_set)))
    whole = _density(rows, cols, w, set(r_nodes), set(c_nodes))
    assert block.density >= best / 2 - 1e-9
    assert block.density >= whole - 1e-9
    got = _density(
        rows,
        cols,
        w,
        set(np.flatnonzero(block.rows).tolist()),
        set(np.flatnonzero(block.cols).tolist()),
    )
    assert got == pytest.approx(block.density)


@settings(max_examples=examples(30), deadline=None)
@given(seed=st.integers(0, 100_000), size=st.integers(2, 12), ratio=st.floats(1.0, 3.0))
def test_pruning_keeps_the_answer(seed: int, size: int, ratio: float) -> None:
    """Peeling the τ-core finds the block peeling the whole graph finds, for τ up to
    the block's density (the module's argument), with τ = ratio x the graph's."""
    rng = np.random.default_rng(seed)
    edges = _organic(rng, reporters=120, reports=300) + _block("", size, size, 0.8, seed)
    names_r = {r: i for i, r in enumerate(sorted({e[0] for e in edges}))}
    names_c = {c: i for i, c in enumerate(sorted({e[1] for e in edges}))}
    pairs = np.unique(np.array([(names_r[r], names_c[c]) for r, c in edges]), axis=0)
    rows, cols = pairs[:, 0], pairs[:, 1]
    n_r, n_c = len(names_r), len(names_c)
    w = column_weights(cols, n_c, 5.0)
    whole = float(w.sum()) / (n_r + n_c)
    full = peel(rows, cols, w, n_r, n_c)
    assert full.density >= whole - 1e-9
    tau = ratio * whole
    kept = core(rows, cols, w, n_r, n_c, tau)
    if not kept.any():
        assert full.density < tau
        return
    pruned = peel(rows[kept], cols[kept], w[kept], n_r, n_c)
    if full.density >= tau:
        assert pruned.density == pytest.approx(full.density)
        assert (pruned.rows == full.rows).all() and (pruned.cols == full.cols).all()
    else:
        assert pruned.density <= full.density + 1e-9


@settings(max_examples=examples(15), deadline=None)
@given(seed=st.integers(0, 10_000))
def test_row_order_and_scores(seed: int) -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        rng = np.random.default_rng(seed)
        edges = _organic(rng) + _block("", 12, 10, 0.9, seed)
        first = DenseBlock().detect(con, _actions(con, edges))
        rows = sorted(first.signals.fetchall(), key=repr)
        assert all(0.0 <= r[5] <= 1.0 for r in rows)
        con.execute(f"CREATE TABLE b AS SELECT * FROM a ORDER BY hash(source_id, {seed})")
        assert sorted(DenseBlock().detect(con, "b").signals.fetchall(), key=repr) == rows
    finally:
        con.close()


def _reference_peel(
    rows: npt.NDArray[np.int64],
    cols: npt.NDArray[np.int64],
    weights: npt.NDArray[np.float64],
    n_rows: int,
    n_cols: int,
) -> tuple[list[int], float]:
    """The greedy peel written plainly: a heap of (priority, node) pairs in floats; the
    nodes of the first densest set and its density."""
    n = n_rows + n_cols
    adjacent: dict[int, list[tuple[int, float]]] = {}
    for r, c, w in zip(rows.tolist(), cols.tolist(), weights.tolist(), strict=True):
        adjacent.setdefault(r, []).append((c + n_rows, w))
        adjacent.setdefault(c + n_rows, []).append((r, w))
    priority = {v: sum(w for _, w in edges) for v, edges in adjacent.items()}
    heap = [(p, v) for v, p in priority.items()]
    heapq.heapify(heap)
    alive, total = set(adjacent), float(weights.sum())
    best, best_set = total / len(alive), sorted(alive)
    while heap:
        p, v = heapq.heappop(heap)
        if v not in alive or p != priority[v]:
            continue
        alive.remove(v)
        total -= p
        for u, w in adjacent[v]:
            if u in alive:
                priority[u] -= w
                heapq.heappush(heap, (priority[u], u))
        if alive and total / len(alive) > best:
            best, best_set = total / len(alive), sorted(alive)
    assert n >= len(adjacent)
    return best_set, best


bigger_graphs = st.lists(
    st.tuples(st.integers(0, 14), st.integers(0, 9)), min_size=1, max_size=80
).map(lambda e: np.array(sorted(set(e)), dtype=np.int64))


@settings(max_examples=examples(80), deadline=None)
@given(edges=bigger_graphs, unit=st.booleans())
def test_peel_is_the_plain_greedy_peel(edges: npt.NDArray[np.int64], unit: bool) -> None:
    """The integer heap gives the plain float heap's answer exactly, ties included
    (unit weights make many)."""
    rows, cols = edges[:, 0], edges[:, 1]
    w = np.ones(rows.size) if unit else column_weights(cols, 10, 5.0)
    block = peel(rows, cols, w, 15, 10)
    nodes, density = _reference_peel(rows, cols, w, 15, 10)
    got = np.flatnonzero(np.concatenate([block.rows, block.cols])).tolist()
    assert got == nodes
    assert block.density == density


@settings(max_examples=examples(80), deadline=None)
@given(edges=bigger_graphs, unit=st.booleans(), ratio=st.floats(0.0, 4.0))
def test_peeling_within_a_core_is_the_whole_peel(
    edges: npt.NDArray[np.int64], unit: bool, ratio: float
) -> None:
    """peel_within finds exactly what peel finds on all the edges, whatever τ."""
    rows, cols = edges[:, 0], edges[:, 1]
    w = np.ones(rows.size) if unit else column_weights(cols, 10, 5.0)
    whole = peel(rows, cols, w, 15, 10)
    tau = ratio * float(w.sum()) / (np.unique(rows).size + np.unique(cols).size)
    within = peel_within(rows, cols, w, 15, 10, tau)
    assert (within.rows == whole.rows).all() and (within.cols == whole.cols).all()
    assert within.density == whole.density


def test_peeling_within_a_core_takes_the_small_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """A complete block, five reporters of half its targets, and a big sparse mesh:
    the answer comes from peeling the block's own core (the sets before it are less
    dense by a margin), and it is the whole peel's."""
    rng = np.random.default_rng(11)
    mesh = np.unique(rng.integers(0, 200, size=(600, 2)), axis=0) + 30
    block = np.array([(i, j) for i in range(20) for j in range(20)])
    hangers = np.array([(20 + h, j) for h in range(5) for j in range(0, 20, 2)])
    edges = np.concatenate([mesh, block, hangers])
    rows, cols = edges[:, 0].astype(np.int64), edges[:, 1].astype(np.int64)
    w = column_weights(cols, 230, 5.0)
    whole = peel(rows, cols, w, 230, 230)
    sizes: list[int] = []

    def counted(*args: npt.NDArray[Any] | int) -> dense_block.Block:
        sizes.append(len(args[0]))  # type: ignore[arg-type]
        return peel(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(dense_block, "peel", counted)
    found = peel_within(rows, cols, w, 230, 230, 1.0)
    assert (found.rows == whole.rows).all() and (found.cols == whole.cols).all()
    assert np.flatnonzero(found.rows).tolist() == list(range(20))
    assert sizes and max(sizes) == 400 and rows.size > 1000


def test_hash_clashes_change_nothing(
    con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reporters and targets are keyed by hashes; when two clash, numbers replace them
    and the answer is the same."""
    rng = np.random.default_rng(12)
    edges = _organic(rng) + _block("a", 15, 12, 0.9, seed=13) + _block("b", 12, 10, 1.0, 14)
    table = _actions(con, edges)
    expected = sorted(DenseBlock().detect(con, table).signals.fetchall(), key=repr)
    monkeypatch.setattr(dense_block, "sql_hash", lambda columns: f"(hash({columns}) % 7)::BIGINT")
    clashing = sorted(DenseBlock().detect(con, table).signals.fetchall(), key=repr)
    assert clashing == expected
    assert len({row[2] for row in expected}) == 2  # accounts and targets both found


@settings(max_examples=examples(80), deadline=None)
@given(
    seed=st.integers(0, 10_000),
    size=st.integers(0, 400),
    spread=st.integers(2, 40),
    ratio=st.floats(0.0, 3.0),
    unit=st.booleans(),
)
def test_the_compiled_core_is_the_plain_core(
    seed: int, size: int, spread: int, ratio: float, unit: bool
) -> None:
    """The compiled τ-core keeps exactly the edges that rounds of array operations
    keep, on random graphs with FRAUDAR's weights (or unit weights) and any τ."""
    rng = np.random.default_rng(seed)
    edges = np.unique(rng.integers(0, spread, size=(size, 2)), axis=0)
    rows, cols = edges[:, 0].astype(np.int64), edges[:, 1].astype(np.int64)
    n = spread
    w = np.ones(rows.size) if unit else column_weights(cols, n, 5.0)
    tau = ratio * float(w.sum()) / max(1, np.unique(rows).size + np.unique(cols).size)
    fast = core(rows, cols, w, n, n, tau)
    assert fast.tolist() == core(rows, cols, w, n, n, tau, plain=True).tolist()
    # At a τ equal to a node's weighted degree, the node goes (at most τ).
    if rows.size:
        exact = float(np.bincount(rows, weights=w)[rows[0]])
        assert (
            core(rows, cols, w, n, n, exact).tolist()
            == core(rows, cols, w, n, n, exact, plain=True).tolist()
        )


@pytest.mark.parametrize("side", ["actor_id", "object_id"])
def test_a_clash_on_one_side_changes_nothing(
    con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch, side: str
) -> None:
    """When only reporters' (or only targets') hashes clash, numbers replace those
    alone, the other side keeps its hashes, and the answer is the same."""
    rng = np.random.default_rng(15)
    edges = _organic(rng) + _block("a", 15, 12, 0.9, seed=16)
    table = _actions(con, edges)
    expected = sorted(DenseBlock().detect(con, table).signals.fetchall(), key=repr)
    monkeypatch.setattr(
        dense_block,
        "sql_hash",
        lambda columns: f"(hash({columns}) % {3 if side in columns else 2**62})::BIGINT",
    )
    clashing = sorted(DenseBlock().detect(con, table).signals.fetchall(), key=repr)
    assert clashing == expected
    assert len({row[2] for row in expected}) == 2


@settings(max_examples=examples(60), deadline=None)
@given(
    ids=st.lists(st.integers(0, 40), max_size=80),
    spare=st.integers(1, 5),
)
def test_renumbering_is_numpy_unique(ids: list[int], spare: int) -> None:
    """The counted renumbering of peel_within gives np.unique's ids and inverse."""
    values = np.array(ids, dtype=np.int64)
    got_ids, got_inverse = dense_block._renumber(values, 41 + spare)
    want_ids, want_inverse = np.unique(values, return_inverse=True)
    assert got_ids.tolist() == want_ids.tolist()
    assert got_inverse.tolist() == want_inverse.tolist()


def test_peeling_within_a_core_with_a_vanishing_tau_ends_quickly() -> None:
    """A τ of the smallest float used to try cores for ever (a Hypothesis find)."""
    rng = np.random.default_rng(3)
    edges = np.unique(rng.integers(0, 10, size=(60, 2)), axis=0)
    rows, cols = edges[:, 0], edges[:, 1]
    w = column_weights(cols, 10, 5.0)
    whole = peel(rows, cols, w, 15, 10)
    for tau in (5e-324, 1e-300, 1e-12):
        within = peel_within(rows, cols, w, 15, 10, tau)
        assert (within.rows == whole.rows).all() and (within.cols == whole.cols).all()
        assert within.density == whole.density


@settings(max_examples=examples(60), deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    reporters=st.integers(1, 60),
    targets=st.integers(1, 40),
    edges=st.integers(1, 400),
    unit=st.booleans(),
)
def test_the_compiled_peel_peels_as_the_python_loop(
    seed: int, reporters: int, targets: int, edges: int, unit: bool
) -> None:
    """On random graphs, the compiled loop removes the nodes in the Python loop's
    order and stops at the same densest set (unit weights give many ties)."""
    rng = np.random.default_rng(seed)
    pairs = np.unique(
        np.stack([rng.integers(0, reporters, edges), rng.integers(0, targets, edges)], 1), axis=0
    )
    rows, cols = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    w = np.ones(rows.size) if unit else column_weights(cols, targets, 5.0)
    compiled = peel(rows, cols, w, reporters, targets)
    plain = peel(rows, cols, w, reporters, targets, plain=True)
    assert (compiled.rows == plain.rows).all() and (compiled.cols == plain.cols).all()
    assert compiled.density == plain.density
    n = reporters + targets
    src = np.concatenate([rows, cols + reporters])
    dst = np.concatenate([cols + reporters, rows])
    scaled = np.round(w * 2**24).astype(np.int64)
    both = np.concatenate([scaled, scaled])
    order = np.argsort(src, kind="stable")
    counts = np.bincount(src, minlength=n)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    keys = np.bincount(src, weights=both, minlength=n).astype(np.int64) * n + np.arange(n)
    args = (indptr, dst[order], both[order] * n, keys, counts > 0, int(scaled.sum()), 2.0**24)
    fast_order, fast_best = peeling.peel_order(*args)
    slow_order, slow_best = peeling.peel_order_plain(*args)
    assert fast_order.tolist() == slow_order.tolist()
    assert fast_best == slow_best
    assert sorted(fast_order.tolist()) == np.flatnonzero(counts).tolist()
