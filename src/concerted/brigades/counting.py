"""Counting pairs of reports within a window, compiled: the analytic test's per-target
counts (:mod:`concerted.brigades.test`).

Rows come sorted by group (a target) and time; each group's pairs of rows at most
``width`` apart are counted by two pointers walking the group once, a loop that is
O(rows) compiled with numba. :func:`pairs_within_plain` counts them by a binary search
per row in numpy, the reference it is held to.

>>> import numpy as np
>>> starts = np.array([0, 3])
>>> t = np.array([0, 5, 20, 7, 7])
>>> pairs_within(starts, t, 5).tolist(), pairs_within_plain(starts, t, 5).tolist()
([1, 1], [1, 1])
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

__all__ = ["pairs_within", "pairs_within_plain"]

IntArray = npt.NDArray[np.int64]


@numba.njit(cache=True)
def _pairs_within(starts: IntArray, t: IntArray, width: int) -> IntArray:
    out = np.zeros(starts.size, dtype=np.int64)
    n = t.size
    for group in range(starts.size):
        begin = starts[group]
        end = starts[group + 1] if group + 1 < starts.size else n
        low = begin
        count = 0
        for k in range(begin, end):
            while t[low] < t[k] - width:
                low += 1
            count += k - low
        out[group] = count
    return out


def pairs_within(starts: IntArray, t: IntArray, width: int) -> IntArray:
    """For each group (rows ``starts[i]`` to the next start, times ``t`` nondecreasing
    within it), its unordered pairs of rows at most ``width`` apart, ties included."""
    got = _pairs_within(
        np.ascontiguousarray(starts, dtype=np.int64),
        np.ascontiguousarray(t, dtype=np.int64),
        int(width),
    )
    return np.asarray(got, dtype=np.int64)


def pairs_within_plain(starts: IntArray, t: IntArray, width: int) -> IntArray:
    """:func:`pairs_within` by a binary search per row: the reference it is held to."""
    n = t.size
    if starts.size == 0:
        return np.zeros(0, dtype=np.int64)
    total = np.zeros(starts.size, dtype=np.int64)
    for number, begin in enumerate(starts.tolist()):
        end = int(starts[number + 1]) if number + 1 < starts.size else n
        times = t[begin:end]
        low = np.searchsorted(times, times - width, side="left")
        total[number] = int((np.arange(times.size) - low).sum())
    return total
