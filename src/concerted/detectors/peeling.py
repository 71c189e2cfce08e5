"""The peeling loop of S3 (:func:`concerted.detectors.dense_block.peel`), compiled.

FRAUDAR's peel removes one node at a time, the lightest, and updates its neighbours:
a loop that no array operation expresses. :func:`peel_order` runs it on a binary heap
of integers compiled with numba; :func:`peel_order_plain` is the same loop in Python
on :mod:`heapq`, the reference it is held to (``tests/test_dense_block.py`` compares
them on random graphs). Both take the graph as a CSR adjacency over the nodes
(reporters then targets) and give the order in which the nodes went and how many of
the first went before the densest set was reached.

Heap entries are one integer each, ``priority * n + node``, so they order as
``(priority, node)``; a node's priority only falls while it waits, so two live entries
never tie and any correct heap pops the same sequence.

>>> import numpy as np
>>> indptr = np.array([0, 1, 2, 3, 4])
>>> neighbours = np.array([2, 3, 0, 1])
>>> steps = np.array([4, 4, 4, 4]) * 4
>>> keys = np.array([4, 4, 4, 4]) * 4 + np.arange(4)
>>> present = np.ones(4, dtype=bool)
>>> order, best = peel_order(indptr, neighbours, steps, keys, present, 8, 4.0)
>>> order.tolist(), best  # 0 goes first, then 2, left with no edge
([0, 2, 1, 3], 0)
>>> plain = peel_order_plain(indptr, neighbours, steps, keys, present, 8, 4.0)
>>> plain[0].tolist() == order.tolist() and plain[1] == best
True
"""

from __future__ import annotations

import heapq

import numba
import numpy as np
import numpy.typing as npt

__all__ = ["core_edges", "peel_order", "peel_order_plain"]

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@numba.njit(cache=True)
def _sift_down(heap: IntArray, size: int) -> None:
    """Restore the heap from its root down, after the root was replaced."""
    i = 0
    item = heap[0]
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and heap[child + 1] < heap[child]:
            child += 1
        if heap[child] >= item:
            break
        heap[i] = heap[child]
        i = child
    heap[i] = item


@numba.njit(cache=True)
def _sift_up(heap: IntArray, i: int) -> None:
    """Restore the heap from leaf ``i`` up, after an entry was added there."""
    item = heap[i]
    while i > 0:
        parent = (i - 1) // 2
        if heap[parent] <= item:
            break
        heap[i] = heap[parent]
        i = parent
    heap[i] = item


@numba.njit(cache=True)
def _peel_order(
    indptr: IntArray,
    neighbours: IntArray,
    steps: IntArray,
    keys: IntArray,
    present: BoolArray,
    total: int,
    quantum: float,
) -> tuple[IntArray, int]:
    n = keys.size
    current = np.full(n, -1, dtype=np.int64)
    heap = np.empty(n + neighbours.size, dtype=np.int64)
    size = 0
    for v in range(n):
        if present[v]:
            current[v] = keys[v]
            heap[size] = keys[v]
            size += 1
            _sift_up(heap, size - 1)
    alive = size
    sequence = np.empty(alive, dtype=np.int64)
    done = 0
    best = total / quantum / alive if alive else 0.0
    best_step = 0
    while size:
        key = heap[0]
        size -= 1
        if size:
            heap[0] = heap[size]
            _sift_down(heap, size)
        v = key % n
        if key != current[v]:
            continue
        current[v] = -1
        sequence[done] = v
        done += 1
        total -= key // n
        alive -= 1
        for e in range(indptr[v], indptr[v + 1]):
            u = neighbours[e]
            k = current[u]
            if k >= 0:
                k -= steps[e]
                current[u] = k
                heap[size] = k
                size += 1
                _sift_up(heap, size - 1)
        if alive and total / quantum / alive > best:
            best = total / quantum / alive
            best_step = done
    return sequence[:done], best_step


def peel_order(
    indptr: IntArray,
    neighbours: IntArray,
    steps: IntArray,
    keys: IntArray,
    present: BoolArray,
    total: int,
    quantum: float,
) -> tuple[IntArray, int]:
    """The order in which peeling removes the nodes, and how many of the first went
    before the densest set (``best_step``: the set is the present nodes less those).

    The graph: node ``v``'s edges are ``indptr[v]`` to ``indptr[v + 1]`` of
    ``neighbours`` and ``steps`` (each edge's weight in quanta, times ``n``);
    ``keys[v]`` is ``v``'s weighted degree in quanta times ``n``, plus ``v``;
    ``present`` marks the nodes with an edge; ``total`` is the edges' weight in
    quanta, and ``quantum`` the quanta in a unit of weight.
    """
    order, best = _peel_order(
        np.ascontiguousarray(indptr, dtype=np.int64),
        np.ascontiguousarray(neighbours, dtype=np.int64),
        np.ascontiguousarray(steps, dtype=np.int64),
        np.ascontiguousarray(keys, dtype=np.int64),
        np.ascontiguousarray(present, dtype=np.bool_),
        int(total),
        float(quantum),
    )
    return np.asarray(order, dtype=np.int64), int(best)


def peel_order_plain(
    indptr: IntArray,
    neighbours: IntArray,
    steps: IntArray,
    keys: IntArray,
    present: BoolArray,
    total: int,
    quantum: float,
) -> tuple[IntArray, int]:
    """:func:`peel_order` in Python, on :mod:`heapq`: the reference it is held to."""
    n = int(keys.size)
    starts = indptr.tolist()
    near = neighbours.tolist()
    step_of = steps.tolist()
    alive = int(present.sum())
    heap = keys[present].tolist()
    heapq.heapify(heap)
    # The key of each node still in (-1 once removed); a popped key that differs is stale.
    current = np.where(present, keys, -1).tolist()
    sequence: list[int] = []
    best = total / quantum / alive if alive else 0.0
    best_step = 0
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        key = pop(heap)
        v = key % n
        if key != current[v]:
            continue
        current[v] = -1
        sequence.append(v)
        total -= key // n
        alive -= 1
        start, stop = starts[v], starts[v + 1]
        for u, step in zip(near[start:stop], step_of[start:stop], strict=True):
            k = current[u]
            if k >= 0:
                k -= step
                current[u] = k
                push(heap, k)
        if alive and total / quantum / alive > best:
            best, best_step = total / quantum / alive, len(sequence)
    return np.asarray(sequence, dtype=np.int64), best_step


@numba.njit(cache=True)
def _core_edges(
    rows: IntArray, cols: IntArray, weights: IntArray, n_rows: int, n_cols: int, tau: float
) -> BoolArray:
    """The edges of the ``tau``-core, weights in whole units (see :func:`core_edges`)."""
    n = n_rows + n_cols
    degree = np.zeros(n, dtype=np.int64)
    # Rounds over the edges left, in order, while a round drops a quarter of them (the
    # first usually drops most); then each node that goes, one at a time.
    left = np.arange(rows.size)
    size = rows.size
    while True:
        degree[:] = 0
        for k in range(size):
            e = left[k]
            degree[rows[e]] += weights[e]
            degree[n_rows + cols[e]] += weights[e]
        kept = 0
        for k in range(size):
            e = left[k]
            if degree[rows[e]] > tau and degree[n_rows + cols[e]] > tau:
                left[kept] = e
                kept += 1
        dropped = size - kept
        size = kept
        if dropped == 0 or dropped * 4 < size + dropped:
            break
    keep = np.zeros(rows.size, dtype=np.bool_)
    if dropped == 0:
        for k in range(size):
            keep[left[k]] = True
        return keep
    degree[:] = 0
    start = np.zeros(n + 1, dtype=np.int64)
    for k in range(size):
        e = left[k]
        keep[e] = True
        degree[rows[e]] += weights[e]
        degree[n_rows + cols[e]] += weights[e]
        start[rows[e] + 1] += 1
        start[n_rows + cols[e] + 1] += 1
    for v in range(n):
        start[v + 1] += start[v]
    fill = start[:-1].copy()
    edges = np.empty(2 * size, dtype=np.int64)
    for k in range(size):
        e = left[k]
        edges[fill[rows[e]]] = e
        fill[rows[e]] += 1
        edges[fill[n_rows + cols[e]]] = e
        fill[n_rows + cols[e]] += 1
    gone = np.zeros(n, dtype=np.bool_)
    stack = np.empty(n, dtype=np.int64)
    top = 0
    for v in range(n):
        if start[v + 1] > start[v] and degree[v] <= tau:
            gone[v] = True
            stack[top] = v
            top += 1
    while top > 0:
        top -= 1
        v = stack[top]
        for k in range(start[v], start[v + 1]):
            e = edges[k]
            if not keep[e]:
                continue
            keep[e] = False
            u = n_rows + cols[e] if v < n_rows else rows[e]
            degree[u] -= weights[e]
            if not gone[u] and degree[u] <= tau:
                gone[u] = True
                stack[top] = u
                top += 1
    return keep


def core_edges(
    rows: IntArray,
    cols: IntArray,
    units: IntArray,
    n_rows: int,
    n_cols: int,
    tau: float,
) -> BoolArray:
    """Which edges are in the ``tau``-core: nodes of weighted degree at most ``tau``
    (``tau`` in the same units as the integer weights ``units``) removed, with their
    edges, until none is left to remove. The core is the largest set of edges whose
    every node weighs more than ``tau``, whatever the order of removal: here each
    node goes once, its edges taken off its neighbours' degrees (exact in integers),
    in time proportional to the edges, where rounds of array operations over the
    edges left take as many rounds as the core has layers.

    >>> rows, cols = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 0, 1, 2])
    >>> core_edges(rows, cols, np.ones(5, dtype=np.int64), 3, 3, 1.0).tolist()
    [True, True, True, True, False]
    """
    return np.asarray(
        _core_edges(
            np.ascontiguousarray(rows, dtype=np.int64),
            np.ascontiguousarray(cols, dtype=np.int64),
            np.ascontiguousarray(units, dtype=np.int64),
            int(n_rows),
            int(n_cols),
            float(tau),
        ),
        dtype=bool,
    )
