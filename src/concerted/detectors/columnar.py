"""Plumbing shared by the detectors that work on Arrow columns and numpy arrays: names
for temporary tables, exact sums, dictionary and group codes, times packed beside
codes, orders within groups, distinct rows; and the evidence they return as SQL.

Detectors import these from here, never from one another.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from concerted.detectors.base import empty
from concerted.schema import EVIDENCE_CONTRACTS
from concerted.textnorm import normalize_array

__all__ = [
    "Column",
    "arrow_table",
    "as_signals",
    "dictionary_codes",
    "distinct_rows",
    "exact_sum",
    "group_codes",
    "has_table",
    "integers",
    "normalised_table",
    "packed_times",
    "sorted_codes",
    "take",
    "temp_names",
    "time_order",
]

_ids = itertools.count()

#: An Arrow column, whole or in chunks.
Column: TypeAlias = "pa.Array[Any] | pa.ChunkedArray[Any]"


def temp_names(prefix: str, *parts: str) -> dict[str, str]:
    """Unique names for the temporary tables of one run of a detector.

    >>> sorted(temp_names("x", "a", "b"))
    ['a', 'b']
    """
    n = next(_ids)
    return {p: f"_{prefix}_{p}_{n}" for p in parts}


def exact_sum(expr: str) -> str:
    """SQL for the sum of a fraction-valued ``expr`` that is the same whatever the order
    of the rows: each value is fixed at 18 decimals and summed as an integer (a sum of
    doubles changes in its last digits with the order DuckDB's threads add them in).

    >>> con = duckdb.connect()
    >>> con.sql(f"SELECT {exact_sum('x')} FROM (VALUES (0.1), (0.2)) t(x)").fetchone()
    (0.3,)
    """
    return f"sum(CAST({expr} AS DECIMAL(38, 18)))::DOUBLE"


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether a table or view called ``name`` can be read on ``con``.

    >>> con = duckdb.connect()
    >>> has_table(con, "reports")
    False
    >>> _ = con.execute("CREATE TABLE reports (x INTEGER)")
    >>> has_table(con, "reports")
    True
    """
    try:
        con.execute(f"SELECT 1 FROM {name} LIMIT 0")
    except duckdb.CatalogException:
        return False
    return True


def as_signals(con: duckdb.DuckDBPyConnection, queries: Sequence[str]) -> duckdb.DuckDBPyRelation:
    """The union of ``queries`` (each naming the signal columns in any order) in the
    signals contract's order and types, with every score held to [0, 1].

    >>> con = duckdb.connect()
    >>> rel = as_signals(con, ["SELECT 'd' AS detector, 'l' AS layer, 'account' AS entity, "
    ...     "'x' AS platform, 'a' AS id, 1.5 AS score, NULL AS value, NULL AS related_id, "
    ...     "NULL AS first_ts, NULL AS last_ts, NULL AS detail"])
    >>> rel.fetchall()[0][:6]
    ('d', 'l', 'account', 'x', 'a', 1.0)
    """
    if not queries:
        return empty(con, "signals")
    columns = []
    for c in EVIDENCE_CONTRACTS["signals"].columns:
        value = c.name
        if c.name == "score":
            value = "CASE WHEN isnan(score::DOUBLE) THEN 0.0 ELSE score::DOUBLE END"
            value = f"greatest(0.0, least(1.0, coalesce({value}, 0.0)))"
        columns.append(f"CAST({value} AS {c.type}) AS {c.name}")
    select = ", ".join(columns)
    return con.sql(" UNION ALL ".join(f"SELECT {select} FROM ({q})" for q in queries))


def arrow_table(
    con: duckdb.DuckDBPyConnection, table: pa.Table | Mapping[str, Any], out: str
) -> None:
    """Temporary table ``out`` holding the rows of the Arrow ``table`` (or of the
    columns, Arrow or numpy, named in a mapping).

    >>> con = duckdb.connect()
    >>> arrow_table(con, {"k": np.array([1, 2])}, "t")
    >>> con.sql("SELECT sum(k) FROM t").fetchone()
    (3,)
    """
    name = f"{out}_arrow"
    con.register(name, table if isinstance(table, pa.Table) else pa.table(dict(table)))
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {out} AS SELECT * FROM {name}")
    finally:
        con.unregister(name)


def take(column: Column, rows: npt.NDArray[np.int64]) -> Column:
    """The values of ``column`` at positions ``rows``.

    >>> take(pa.array(["a", "b", "c"]), np.array([2, 0])).to_pylist()
    ['c', 'a']
    """
    taken: Column = pc.take(column, pa.array(rows, type=pa.int64()))
    return taken


def integers(column: Column, dtype: Any = np.int64) -> npt.NDArray[Any]:
    """A NULL-free integer column as a numpy array (``to_numpy``, several times faster
    than ``np.asarray`` on a chunked column).

    >>> integers(pa.chunked_array([[1, 2], [3]])).tolist()
    [1, 2, 3]
    """
    if isinstance(column, pa.ChunkedArray):
        values = column.to_numpy() if column.num_chunks else np.zeros(0, dtype=dtype)
    else:
        values = column.to_numpy(zero_copy_only=False)
    return np.asarray(values).astype(dtype, copy=False)


#: Codes of combined columns above this are renumbered densely by :func:`group_codes`.
CODE_LIMIT = 2**31


def dictionary_codes(
    column: Column,
) -> tuple[npt.NDArray[np.int64], pa.Array[Any]]:
    """Codes from 0 for the values of ``column`` (NULL a value of its own) and the values
    they stand for, in order of first appearance.

    >>> codes, values = dictionary_codes(pa.array(["b", "a", "b"]))
    >>> codes.tolist(), values.to_pylist()
    ([0, 1, 0], ['b', 'a'])
    """
    if column.null_count == 0 and _one_value(column):
        return np.zeros(len(column), dtype=np.int64), pa.array([column[0].as_py()])
    encoded = pc.dictionary_encode(column, null_encoding="encode")
    chunks: list[Any] = list(encoded.chunks) if isinstance(encoded, pa.ChunkedArray) else [encoded]
    if not chunks:
        return np.zeros(0, dtype=np.int64), pa.array([], type=column.type)
    codes = integers(pa.chunked_array([c.indices for c in chunks]))
    return codes, chunks[0].dictionary


def group_codes(*columns: Column) -> npt.NDArray[np.int64]:
    """Integer codes from 0 that are equal exactly where the rows hold equal values in
    every one of ``columns`` (NULL equal to NULL). Codes follow no order of the values:
    they are keys to group and partition on, cheaper to sort and compare than strings,
    and never a tie-break.

    >>> group_codes(pa.array(["a", "b", "a"]), pa.array(["x", "x", "x"])).tolist()
    [0, 1, 0]
    """
    rows = len(columns[0]) if columns else 0
    codes = np.zeros(rows, dtype=np.int64)
    size = 1
    for column in columns:
        these, values = dictionary_codes(column)
        if len(values) <= 1:
            continue
        codes = these if size == 1 else codes * len(values) + these
        size *= len(values)
        if size >= CODE_LIMIT:  # keep codes small enough to pack beside a time
            unique, inverse = np.unique(codes, return_inverse=True)
            codes, size = inverse.astype(np.int64), max(len(unique), 1)
    return codes


#: Bits of an int64 key that :func:`packed_times` may fill (a module constant so that
#: tests can force its rank fallback on small data).
KEY_BITS = 63


def packed_times(
    groups: npt.NDArray[np.int64], *times: npt.NDArray[np.int64]
) -> tuple[int, list[npt.NDArray[np.int64]]]:
    """Times re-expressed so that ``(groups << shift) + time`` is one int64 key whose
    order is the order of (group, time): returns ``shift`` and the times of each of the
    arrays ``times``, in one coordinate that keeps every ``<`` and ``=`` between them.
    The coordinate is the offset from the earliest time, or, where group code and offset
    would not fit :data:`KEY_BITS` bits together, the time's rank among all of them.
    Sorting and searching one int64 key is several times faster than a sort on two.

    >>> shift, (t,) = packed_times(np.array([1, 0]), np.array([10**15, 10**15 + 7]))
    >>> shift, t.tolist()
    (3, [0, 7])
    """
    group_bits = int(groups.max(initial=1)).bit_length()
    values = [np.asarray(x, dtype=np.int64) for x in times]
    if not any(len(v) for v in values):
        return 1, values
    base = min(int(v.min()) for v in values if len(v))
    top = max(int(v.max()) for v in values if len(v)) - base
    if group_bits + max(top, 1).bit_length() <= KEY_BITS:
        return max(top, 1).bit_length(), [v - base for v in values]
    joined = np.concatenate(values)
    order = np.argsort(joined, kind="stable")
    ranked = joined[order]
    dense = np.empty(len(joined), dtype=np.int64)
    dense[order] = np.cumsum(np.concatenate([[0], ranked[1:] != ranked[:-1]]))
    ends = np.cumsum([len(v) for v in values])
    out = np.split(dense, ends[:-1])
    return max(int(dense.max(initial=1)), 1).bit_length(), out


def sorted_codes(column: Column) -> tuple[npt.NDArray[np.int64], pa.Array[Any]]:
    """Codes of a column with few distinct values, numbered in the order of the values
    (as DuckDB orders text: by bytes), with the distinct values; NULL is -1.

    >>> codes, values = sorted_codes(pa.array(["spam", None, "hate", "spam"]))
    >>> codes.tolist(), values.to_pylist()
    ([1, -1, 0, 1], ['hate', 'spam'])
    """
    encoded = pc.dictionary_encode(column)
    chunks: list[Any] = list(encoded.chunks) if isinstance(encoded, pa.ChunkedArray) else [encoded]
    if not chunks:
        return np.zeros(0, dtype=np.int64), pa.array([], type=pa.string())
    dictionary = chunks[0].dictionary
    rank = np.full(len(dictionary) + 1, -1, dtype=np.int64)  # the last: NULL
    by_value = integers(pc.array_sort_indices(dictionary))
    rank[by_value] = np.arange(len(dictionary))
    codes = integers(pa.chunked_array([c.indices.fill_null(len(dictionary)) for c in chunks]))
    return rank[codes], dictionary.take(by_value)


def time_order(
    groups: npt.NDArray[np.int64],
    t: npt.NDArray[np.int64],
    tiebreak: Column,
    rows: npt.NDArray[np.int64] | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], int]:
    """The row order of ``ORDER BY group, t, tiebreak`` (``tiebreak`` text, compared as
    DuckDB compares it; row ``i``'s is ``tiebreak[rows[i]]`` where ``rows`` is given),
    and the sorted int64 keys ``(group << shift) + time`` with ``shift`` (see
    :func:`packed_times`). Rows are sorted on the packed key; only the rare runs of rows
    with equal group and time are put in ``tiebreak`` order.

    >>> order, _, _ = time_order(np.array([1, 0, 1]), np.array([5, 9, 5]),
    ...                          pa.array(["b", "z", "a"]))
    >>> order.tolist()
    [1, 2, 0]
    """
    shift, (times,) = packed_times(groups, t)
    key = (groups << shift) + times
    order = np.argsort(key, kind="stable")
    key = key[order]
    tie = key[1:] == key[:-1]
    if tie.any():
        tied = np.zeros(len(key), dtype=bool)
        tied[:-1] |= tie
        tied[1:] |= tie
        members = np.flatnonzero(tied)
        starts = np.ones(len(members), dtype=bool)
        starts[1:] = ~tie[members[1:] - 1]
        run = np.cumsum(starts)
        which = order[members] if rows is None else rows[order[members]]
        ids = take(tiebreak, which)
        within = pc.sort_indices(
            pa.table({"run": run, "id": ids}),
            sort_keys=[("run", "ascending"), ("id", "ascending")],
        )
        order[members] = order[members][np.asarray(within, dtype=np.int64)]
    return order, key, shift


def _one_value(column: Column) -> bool:
    """Whether every value of the non-empty, NULL-free ``column`` is the same (the
    usual case of ``platform``, which then needs no encoding)."""
    if len(column) == 0:
        return False
    ends = pc.min_max(column)
    return bool(ends["min"] == ends["max"])


def normalised_table(con: duckdb.DuckDBPyConnection, query: str, out: str) -> None:
    """Temporary table ``out``: the rows of ``query`` (whose last column is ``text``)
    with ``body``, the text in :func:`concerted.textnorm.normalize_array`'s normal form.

    >>> con = duckdb.connect()
    >>> normalised_table(con, "SELECT 1 AS k, 'Report THEM!! @bob ۱۲' AS text", "t")
    >>> con.sql("SELECT k, body FROM t").fetchall()
    [(1, 'report them 12')]
    """
    table = con.sql(query).to_arrow_table()
    arrow_table(con, table.append_column("body", normalize_array(table.column("text"))), out)


def distinct_rows(
    *columns: npt.NDArray[np.int64],
) -> tuple[list[npt.NDArray[np.int64]], npt.NDArray[np.int64]]:
    """The distinct combinations of the non-negative integer ``columns`` (one array per
    column, in sorted order) and the number of rows holding each.

    >>> values, counts = distinct_rows(np.array([1, 0, 1]), np.array([2, 2, 2]))
    >>> [v.tolist() for v in values], counts.tolist()
    ([[0, 1], [2, 2]], [1, 2])
    """
    rows = len(columns[0])
    bits = [max(int(c.max(initial=0)), 1).bit_length() for c in columns]
    if sum(bits) <= KEY_BITS:
        key = np.zeros(rows, dtype=np.int64)
        for column, width in zip(columns, bits, strict=True):
            key = (key << width) | column
        key = np.sort(key)
        firsts = np.flatnonzero(np.diff(key, prepend=-1) != 0)
        key = key[firsts]
        values = []
        for width in reversed(bits):
            values.append(key & ((1 << width) - 1))
            key = key >> width
        values.reverse()
    else:
        order = np.lexsort(columns[::-1])
        change = np.zeros(rows, dtype=bool)
        change[:1] = True
        for column in columns:
            change[1:] |= column[order][1:] != column[order][:-1]
        firsts = np.flatnonzero(change)
        values = [column[order[firsts]] for column in columns]
    return values, np.diff(np.append(firsts, rows))
