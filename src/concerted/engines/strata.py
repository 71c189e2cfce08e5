"""The strata two accounts share, summed compiled: the ``shared`` term of the stratified
null's expectation (:meth:`concerted.engines.duck.DuckDBEngine.expectations`).

A pair of accounts expects, over the strata in which both posted and some pair met,
:math:`\\sum_s n_1(s)\\, n_2(s)\\, r(s)`. In SQL that is every pair joined to each of
its first account's strata, then to its second account's: one row per pair and
stratum (at 10^7 actions, the largest join of the analysis). Here each account's
strata are one sorted run of arrays, and a pair's sum is a merge of its two runs, one
loop compiled with numba.

The sum is exact, as the SQL's is: each term, computed in doubles in the SQL's order
(``n_1 * n_2 * r``), is taken as DuckDB casts a DOUBLE to ``DECIMAL(38, 22)``, an
integer of 10^-22 units (:func:`units`), and the units are added as two int64 (the
multiples of 2^53 and the rest), so no order of the terms changes the total. The SQL
statement stays as the reference (``tests/test_significance_strata.py`` holds the two
equal, bit for bit, on random actions and events).

>>> import numpy as np
>>> runs = Runs(starts=np.array([0, 0, 2, 3]), s=np.array([1, 2, 2]),
...             n=np.array([2.0, 1.0, 3.0]), r=np.array([0.5, 0.25, 0.25]))
>>> high, low = shared(runs, np.array([1, 1]), np.array([2, 1]))
>>> [h * 2**53 + lo for h, lo in zip(high.tolist(), low.tolist())]  # 1*3*.25; 2*2*.5 + 1*1*.25
[7500000000000000000000, 22500000000000000000000]
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

__all__ = ["Runs", "shared", "units"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: 10^22 (a double exactly) and 2^53 (as a double, and as the units' high word).
_SCALE = 1e22
_WORD = 2.0**53
_WORD_BITS = 53
_LOW = (1 << _WORD_BITS) - 1


@numba.njit(cache=True, inline="always")
def _units(value: float) -> tuple[np.int64, np.int64]:
    # ``value * 1e22`` rounded half away from zero (for the positive values here), as
    # two exact integers: the multiple of 2^53, and the rest (at most 2^53).
    scaled = value * _SCALE
    high = np.floor(scaled / _WORD)
    low = scaled - high * _WORD
    whole = np.floor(low)
    rounded = whole + 1.0 if low - whole >= 0.5 else whole
    return np.int64(high), np.int64(rounded)


@numba.njit(cache=True)
def _units_many(values: FloatArray) -> tuple[IntArray, IntArray]:
    high = np.empty(values.size, dtype=np.int64)
    low = np.empty(values.size, dtype=np.int64)
    for i in range(values.size):
        high[i], low[i] = _units(values[i])
    return high, low


def units(values: FloatArray) -> tuple[IntArray, IntArray]:
    """Positive doubles as DuckDB casts them to ``DECIMAL(38, 22)``, in units of
    10^-22, each as ``high * 2**53 + low``.

    ``1/3`` here is 0.3333333333333332983808, as DuckDB casts it too: the product by
    10^22 is taken in doubles first.

    >>> high, low = units(np.array([1 / 3, 3.8397666450631463e-07]))
    >>> [h * 2**53 + lo for h, lo in zip(high.tolist(), low.tolist())]
    [3333333333333332983808, 3839766645063147]
    """
    return _units_many(np.ascontiguousarray(values, dtype=np.float64))


@dataclass(frozen=True)
class Runs:
    """Every account's strata, one run each: account ``a``'s rows are ``starts[a]`` to
    ``starts[a + 1]`` (numbers beyond ``starts`` hold none), sorted by stratum ``s``,
    with its posts ``n`` there and the stratum's rate ``r`` (NaN where no pair met)."""

    starts: IntArray
    s: IntArray
    n: FloatArray
    r: FloatArray


@numba.njit(cache=True)
def _shared(
    starts: IntArray,
    s: IntArray,
    n: FloatArray,
    r: FloatArray,
    first: IntArray,
    second: IntArray,
) -> tuple[IntArray, IntArray]:
    high = np.zeros(first.size, dtype=np.int64)
    low = np.zeros(first.size, dtype=np.int64)
    accounts = starts.size - 1
    for p in range(first.size):
        a, b = first[p], second[p]
        if a < 0 or b < 0 or a >= accounts or b >= accounts:
            continue
        i, i_end = starts[a], starts[a + 1]
        j, j_end = starts[b], starts[b + 1]
        h, lo = np.int64(0), np.int64(0)
        while i < i_end and j < j_end:
            if s[i] < s[j]:
                i += 1
            elif s[j] < s[i]:
                j += 1
            else:
                if not np.isnan(r[i]):
                    th, tl = _units(n[i] * n[j] * r[i])
                    h += th
                    lo += tl
                    if lo > _LOW:
                        h += lo >> _WORD_BITS
                        lo &= _LOW
                i += 1
                j += 1
        high[p], low[p] = h, lo
    return high, low


def shared(runs: Runs, first: IntArray, second: IntArray) -> tuple[IntArray, IntArray]:
    """Each pair's (accounts ``first[i]`` and ``second[i]``) sum of ``n_1 * n_2 * r``
    over the strata both hold a rate in, exactly, in units of 10^-22 as ``high * 2**53
    + low`` (``low`` below 2^53)."""
    return _shared(
        np.ascontiguousarray(runs.starts, dtype=np.int64),
        np.ascontiguousarray(runs.s, dtype=np.int64),
        np.ascontiguousarray(runs.n, dtype=np.float64),
        np.ascontiguousarray(runs.r, dtype=np.float64),
        np.ascontiguousarray(first, dtype=np.int64),
        np.ascontiguousarray(second, dtype=np.int64),
    )
