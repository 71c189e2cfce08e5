"""``concerted coaction`` straight from a data file: no case built, the same edges.

``analyze`` builds a case (posts, accounts, actions, each row typed and checked) because
every stage after it reads one. ``coaction --compat qut`` or ``--compat coortweet``
reads a file once and writes one network, so for a coordination-network-toolkit CSV
(``--format qut``) and the kinds ``repost`` and ``reply`` it reads only the columns the
pairing needs, straight into actions. Two readers do this:

* **pyarrow** (``--compat qut``), for a plain file: no quote, NUL or byte-order mark,
  lines all ending in LF or all in CR LF, valid UTF-8, and a dialect that DuckDB's
  sniffer (run beside the read) finds to be plain commas with the same header. Such a
  file splits the same way in any CSV reader, and pyarrow's reads the five columns on
  every core. The checks run on its Arrow columns; any value ingest would trim (an edge
  of a space or a byte beyond ASCII), a missing id, a time other than integer epoch
  seconds within bounds, or a repeated message id sends the file to the DuckDB reader,
  which decides as before (:func:`_read_arrow`).
* **DuckDB**, for every other file and for ``--compat coortweet``:

  1. ``read_csv`` (the same dialect sniffing as ingest, every field as text), keeping
     ``message_id``, ``user_id``, ``repost_id``, ``reply_id`` and ``timestamp``;
  2. one aggregate checks what ingest would check on those rows: a message id and a
     user id in every row, message ids unique, every time epoch seconds between 1970
     and 2100. When a check fails, or the reader meets a line it cannot split, the
     direct path gives way (:func:`coaction` returns ``None``) and the command builds
     the case as before, which raises naming the file, row and column as ingest does;
     a file that passes has no row ingest would refuse, so none is dropped here.

Then ``--compat qut``: the pairs are counted on integers in numpy
(:func:`message_matches`, in sorted runs, counted in threads), the runs cut into
ranges of pairs, each range summed in a thread, and the edges written in few row
groups, in no particular order; ``--compat coortweet``: the actions go through
:func:`concerted.compat.coortweet_pairs` and :func:`~concerted.compat.coortweet_network`
as on the full path. ``run.json`` names the reader (``notes.reader``) and, for DuckDB,
why pyarrow did not read the file.

The accounts, ids and times are the ones ingest would store (ids trimmed, epoch
seconds to the microsecond), so the edges are the ones the full path writes;
``tests/test_fastpath.py`` holds the paths to that on random files.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import mmap
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from concerted import __version__, heap, paths
from concerted.adapters.qut import COLUMNS
from concerted.errors import ConfigError
from concerted.schema import _EPOCH, _EPOCH_LIMIT, TIME_BOUNDS, sql_literal
from concerted.store import default_memory_limit

__all__ = ["DIRECT_KINDS", "applies", "coaction", "message_matches"]

log = logging.getLogger(__name__)

#: The action kinds the direct path derives (the toolkit's co_retweet and co_reply).
DIRECT_KINDS = ("repost", "reply")

_LONGEST_LINE = 32 * 2**20

_READ = """
    CREATE OR REPLACE TEMP TABLE _direct_rows AS
    SELECT message_id AS m, user_id AS u, repost_id AS repost, reply_id AS reply,
           "timestamp" AS s
    FROM read_csv({path}, header = true, all_varchar = true,
                  max_line_size = {longest}, buffer_size = {longest})
"""

# Ingest trims ids (DuckDB's trim: spaces, Unicode's among them) and reads '' as none.
# Trimming a million strings costs more than the read, so it is done only where a value
# is empty or starts or ends with a space or a character beyond ASCII.
_EDGE = (
    "({x} = '' OR ascii({x}) = 32 OR ascii({x}) > 127"
    " OR ascii(right({x}, 1)) = 32 OR ascii(right({x}, 1)) > 127)"
)
_PADDED = "SELECT count(*) FROM _direct_rows WHERE " + " OR ".join(
    _EDGE.format(x=x) for x in ("m", "u", "repost", "reply", "s")
)
_TRIM = """
    CREATE OR REPLACE TEMP TABLE _direct_rows AS
    SELECT NULLIF(trim(m), '') AS m, NULLIF(trim(u), '') AS u,
           NULLIF(trim(repost), '') AS repost, NULLIF(trim(reply), '') AS reply,
           trim(s) AS s
    FROM _direct_rows
"""

# What ingest would refuse in these columns: rows counted, not looked at one by one.
# Distinct hashes prove distinct ids; a clash only sends the file to the full path.
# Times as ingest reads epoch seconds: its pattern, |x| under its limit, within bounds.
_CHECK = """
    SELECT count(*) AS rows,
           count(*) FILTER (WHERE m IS NULL OR u IS NULL) AS missing,
           count(*) FILTER (WHERE NOT coalesce(
               regexp_full_match(s, '{epoch}')
               AND abs(TRY_CAST(s AS DOUBLE)) < {limit}
               AND to_timestamp(TRY_CAST(s AS DOUBLE)) >= TIMESTAMPTZ '{lo}'
               AND to_timestamp(TRY_CAST(s AS DOUBLE)) < TIMESTAMPTZ '{hi}', false)) AS bad_time,
           count(DISTINCT hash(m)) AS messages
    FROM _direct_rows
"""


def applies(
    inputs: Sequence[Path],
    *,
    case_path: Path | None,
    format_: str,
    compat_mode: str | None,
    kinds: tuple[str, ...] | None,
) -> tuple[str, ...] | None:
    """The kinds the direct path would pair for these arguments, or ``None`` when the
    command must build a case: a case given or asked for, a format or mode it does not
    read, several inputs, or kinds other than :data:`DIRECT_KINDS`.

    >>> applies([Path("f.csv")], case_path=None, format_="qut", compat_mode="qut", kinds=None)
    ('repost',)
    >>> applies([Path("f.csv")], case_path=None, format_="qut", compat_mode=None, kinds=None)
    """
    if case_path is not None or format_ != "qut" or compat_mode not in ("qut", "coortweet"):
        return None
    if len(inputs) != 1 or inputs[0].suffix in (".duckdb", ".db") or inputs[0].is_dir():
        return None
    used = kinds or (("repost",) if compat_mode == "qut" else None)
    if used is None or not set(used) <= set(DIRECT_KINDS):
        return None
    return tuple(dict.fromkeys(used))


def _order_by(
    major: np.ndarray[Any, np.dtype[Any]], minor: np.ndarray[Any, np.dtype[Any]]
) -> np.ndarray[Any, np.dtype[np.intp]]:
    """The stable order of rows by (major, minor), both non-negative or ``minor`` any.

    Where the key packed with the row number fits in 64 bits, one sort of those packed
    keys (half the time of a stable ``argsort``; the row number breaks ties, so the
    order is stable); a common step of ``minor`` (times in whole seconds, counted in
    microseconds) is divided out first. Where only the key fits, a stable ``argsort``
    of it (twice as fast as ``lexsort``); otherwise ``lexsort``.

    >>> _order_by(np.array([1, 0, 1, 0]), np.array([5, 7, 5, -2])).tolist()
    [3, 1, 0, 2]
    >>> _order_by(np.array([1, 0, 1, 0]), np.array([5, 7, 5, -2]) * 10**15).tolist()
    [3, 1, 0, 2]
    """
    rows = len(major)
    if rows == 0:
        return np.zeros(0, np.intp)
    base = int(minor.min())
    span = int(minor.max()) - base + 1
    majors = int(major.max()) + 1
    if int(major.min()) < 0 or majors * span >= 2**63:
        return np.lexsort((minor, major))
    offset = minor.astype(np.int64)
    offset -= base
    bits = (rows - 1).bit_length()
    if majors * span > 2 ** (63 - bits):
        step = int(np.gcd.reduce(offset))
        if step > 1:
            offset //= step
            span = (span - 1) // step + 1
    packed = major.astype(np.int64)
    packed *= span
    packed += offset
    if majors * span > 2 ** (63 - bits):
        return np.argsort(packed, kind="stable")
    packed <<= bits
    packed |= np.arange(rows, dtype=np.int64)
    packed.sort()
    packed &= (1 << bits) - 1
    return packed.astype(np.intp, copy=False)


#: Pairs of rows counted at once by a thread of :func:`message_matches`, about.
_CHUNK = 2**20


def message_matches(
    account: np.ndarray[Any, np.dtype[np.int64]],
    obj: np.ndarray[Any, np.dtype[np.int64]],
    t: np.ndarray[Any, np.dtype[np.int64]],
    window: int,
    parts: int = min(4, os.cpu_count() or 1),
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The toolkit's weights in parts: every message (a row: its account, object and
    time in microseconds) counts once for each other account with a row on the same
    object at most ``window`` microseconds away. One code per pair of rows that makes
    such a count: ``(low * n + high) << 2 | up << 1 | down``, with ``n`` accounts
    numbered from 0, ``up`` 1 when the row of ``low`` counts for low → high, ``down``
    when the row of ``high`` counts for high → low. Summed by pair, ``up`` and ``down``
    are the weights of the two directed edges. The codes come in sorted runs, each of
    about :data:`_CHUNK` pairs of rows or fewer, at least one per part (counted in
    ``parts`` threads).

    Rows are sorted by object and time once; each row's window is then a range of
    positions, found by binary search on a key that grows with time within an object
    and jumps by more than the window between objects (a longer gap counts as just over
    the window, so the key stays small). Each pair of rows is met once; a row of account
    v counts for message x when no earlier row of v lies in x's window.

    >>> a = np.array([0, 1, 1, 2]); o = np.array([0, 0, 0, 0]); t = np.array([0, 5, 9, 50])
    >>> sorted((int(c) >> 2, (int(c) >> 1) & 1, int(c) & 1) for c in message_matches(a, o, t, 10))
    [(1, 0, 1), (1, 1, 1)]
    """
    return np.concatenate(_matched_runs(account, obj, t, window, parts))


def _matched_runs(
    account: np.ndarray[Any, np.dtype[np.int64]],
    obj: np.ndarray[Any, np.dtype[np.int64]],
    t: np.ndarray[Any, np.dtype[np.int64]],
    window: int,
    parts: int,
) -> list[np.ndarray[Any, np.dtype[np.int64]]]:
    """:func:`message_matches`'s codes as its sorted runs: the rows cut where the pairs
    split evenly, into at least ``parts`` ranges and as many more as keep each under
    about :data:`_CHUNK` pairs. Each thread counts its ranges one after the other, so
    the memory of one range's arrays serves the next (at 10^6 rows the counting touched
    190 MiB of fresh pages so, 313 MiB with the parts counted at once, and those
    arrays grow with the pairs)."""
    if parts < 1:
        raise ConfigError(f"message_matches: parts must be at least 1, got {parts}")
    n = len(t)
    if n == 0:
        return [np.zeros(0, np.int64)]
    accounts = int(account.max()) + 1
    index = np.int32 if n < 2**31 else np.int64
    order = _order_by(obj, t)
    a, o, ts = account[order].astype(index), obj[order], t[order]
    step = np.full(n, window + 1, dtype=np.int64)
    same = o[1:] == o[:-1]
    step[1:][same] = np.minimum(np.diff(ts)[same], window + 1)
    step[0] = 0
    key = np.cumsum(step)
    pos: np.ndarray[Any, Any] = np.arange(n, dtype=index)

    def previous() -> np.ndarray[Any, Any]:
        """The previous row of the same account on the same object, by position (-1:
        none). Rows of an object are adjacent, in order of position: (object, account,
        position)."""
        by_account = _order_by(o, a).astype(index)
        sa, so = a[by_account], o[by_account]
        follows = (sa[1:] == sa[:-1]) & (so[1:] == so[:-1])
        found = np.full(n, -1, dtype=index)
        found[by_account[1:][follows]] = by_account[:-1][follows]
        return found

    def pairs_of(begin: int, end: int) -> np.ndarray[Any, np.dtype[np.int64]]:
        """The sorted codes of rows x in begin..end - 1, each with each y after it
        within x's window (every pair of rows once)."""
        part = ahead[begin:end]
        total = int(part.sum(dtype=np.int64))
        span = np.int32 if total + n < 2**31 else np.int64
        starts = (np.cumsum(part, dtype=np.int64) - part).astype(span)
        y = np.arange(total, dtype=span) - np.repeat(starts - pos[begin:end] - 1, part)
        ax, lx, px = (np.repeat(v[begin:end], part) for v in (a, lo, prev))
        ay = a[y]
        other = ax != ay
        y_counts = other & (prev[y] < lx)  # no earlier row of y's account in x's window
        x_counts = other & (px < lo[y])  # no earlier row of x's account in y's window
        x_low = ax < ay
        # In place, on the few arrays there are: the pairs are most of the memory.
        code: np.ndarray[Any, np.dtype[np.int64]] = np.minimum(ax, ay).astype(np.int64)
        code *= accounts
        code += np.maximum(ax, ay)
        code <<= 2
        up = np.where(x_low, y_counts, x_counts).view(np.uint8)
        down = np.where(x_low, x_counts, y_counts).view(np.uint8)
        flags = (up << 1) | down
        code |= flags
        kept: np.ndarray[Any, np.dtype[np.int64]] = code[flags != 0]
        kept.sort()
        return kept

    with ThreadPoolExecutor(max_workers=parts) as pool:
        # In a thread while the windows are found: numpy lets go of the interpreter.
        earlier = pool.submit(previous)
        # Each row's window: positions lo[x] .. hi[x] - 1.
        lo = np.searchsorted(key, key - window, side="left").astype(index)
        hi: np.ndarray[Any, Any] = np.searchsorted(key, key + window, side="right").astype(index)
        ahead = hi - pos - 1
        # numpy lets go of the interpreter in these steps: the rows, cut where the pairs
        # are split evenly, run in threads, one per core.
        reach = np.cumsum(ahead, dtype=np.int64)
        ranges = parts * max(1, -(-int(reach[-1]) // (parts * _CHUNK)))
        cuts = [0, *np.searchsorted(reach, reach[-1] * np.arange(1, ranges) / ranges).tolist(), n]
        prev = earlier.result()
        return list(pool.map(pairs_of, cuts[:-1], cuts[1:]))


def _hash_file(path: Path, into: dict[str, str]) -> None:
    with path.open("rb") as fh:
        into["sha256"] = hashlib.file_digest(fh, "sha256").hexdigest()


def _read(con: duckdb.DuckDBPyConnection, path: Path) -> str | None:
    """Read the columns into ``_direct_rows``; why the full path is needed, or None."""
    try:
        described = con.execute(
            f"DESCRIBE SELECT * FROM read_csv({sql_literal(str(path))}, header = true, "
            f"all_varchar = true, max_line_size = {_LONGEST_LINE}, "
            f"buffer_size = {_LONGEST_LINE})"
        ).fetchall()
        missing_columns = set(COLUMNS) - {str(r[0]) for r in described}
        if missing_columns:
            # Read by position, or refused, by the adapter.
            return f"the header lacks {', '.join(sorted(missing_columns))}"
        con.execute(_READ.format(path=sql_literal(str(path)), longest=_LONGEST_LINE))
    except duckdb.Error as exc:
        # A line the reader cannot split, a missing column, text that is not UTF-8:
        # ingest says which and where.
        return f"the file needs the full read ({str(exc).splitlines()[0]})"
    padded = con.execute(_PADDED).fetchone()
    if padded and padded[0]:
        con.execute(_TRIM)
    lo, hi = TIME_BOUNDS
    row = con.execute(_CHECK.format(epoch=_EPOCH, limit=_EPOCH_LIMIT, lo=lo, hi=hi)).fetchone()
    assert row is not None
    rows, missing, bad_time, messages = (int(v) for v in row)
    if rows == 0:
        return "no rows"
    if missing or bad_time:
        return f"{missing + bad_time:,} rows ingest would refuse"
    if messages != rows:
        return f"{rows - messages:,} message ids seen twice"
    return None


# The Arrow reader: a plain file (no quote, NUL or BOM, lines all LF or all CR LF, valid
# UTF-8, and a dialect DuckDB's sniffer finds to be plain commas) splits the same way
# in any CSV reader, and pyarrow's reads the five columns on every core in a fraction of
# DuckDB's time. Anything else, and any value ingest would trim or refuse, goes to the
# DuckDB reader above, which decides as before.
_ARROW_MAX_BYTES = 2**31
_ARROW_BLOCK = 16 * 2**20
# pyarrow reads in blocks of 4 MiB: in blocks of 16 MiB a process's first read cost two
# to four times the CPU (fresh large allocations, faulted in as huge pages).
_ARROW_READ_BLOCK = 4 * 2**20
_SNIFF = (
    "SELECT Delimiter, Quote, Escape, NewLineDelimiter, Comment, SkipRows, "
    "[c.name FOR c IN Columns] FROM sniff_csv({path}, header = true, all_varchar = true, "
    "max_line_size = {longest}, buffer_size = {longest})"
)
_PICKED = ("message_id", "user_id", "repost_id", "reply_id", "timestamp")


@dataclass(frozen=True)
class _Actions:
    """Actions as the pairing takes them: account and object names, the kind (0 a
    repost, 1 a reply) and the time in microseconds."""

    rows: int
    account: pa.ChunkedArray[Any]
    obj: pa.ChunkedArray[Any]
    kind: np.ndarray[Any, np.dtype[np.int64]]
    t: np.ndarray[Any, np.dtype[np.int64]]


def _sniffed(path: Path, into: dict[str, Any]) -> None:
    """DuckDB's dialect for the file, as ingest's reader would sniff it."""
    try:
        con = duckdb.connect()
        try:
            into["dialect"] = con.execute(
                _SNIFF.format(path=sql_literal(str(path)), longest=_LONGEST_LINE)
            ).fetchone()
        finally:
            con.close()
    except duckdb.Error as exc:
        into["error"] = str(exc).splitlines()[0]


def _bytes_of(
    column: pa.ChunkedArray[Any],
) -> Iterator[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]]:
    """Each chunk's value offsets and data bytes, without a copy."""
    for chunk in column.chunks:
        _, offsets, data = chunk.buffers()
        assert offsets is not None
        o = np.frombuffer(memoryview(offsets), np.int32, len(chunk) + 1, 4 * chunk.offset)
        d = np.frombuffer(memoryview(data), np.uint8) if data is not None else np.zeros(0, np.uint8)
        yield o, d


def _edged(column: pa.ChunkedArray[Any]) -> bool:
    """Whether a value starts or ends with a space or a byte beyond ASCII, which ingest
    would trim (the DuckDB reader's ``_EDGE``), or with a control character, which no
    reader should be trusted to keep alike."""
    for o, d in _bytes_of(column):
        filled = o[1:] > o[:-1]
        for at in (o[:-1][filled], o[1:][filled] - 1):
            edge = d[at]
            if np.any((edge <= 32) | (edge > 127)):
                return True
    return False


def _numpy(values: pa.Array[Any] | pa.ChunkedArray[Any]) -> np.ndarray[Any, np.dtype[Any]]:
    """An integer array without nulls as numpy, with no copy where it has one chunk.
    (pyarrow's ``to_numpy`` imports pandas first, where it is installed: 0.2 s.)

    >>> _numpy(pa.chunked_array([[1, 2], [3]], pa.int32())).tolist()
    [1, 2, 3]
    """
    if isinstance(values, pa.ChunkedArray):
        chunks = values.chunks or [pa.array([], values.type)]
        values = chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks)
    if values.null_count or not pa.types.is_integer(values.type):
        raise TypeError(f"not integers without nulls: {values.type}")
    kind = "i" if pa.types.is_signed_integer(values.type) else "u"
    dtype = np.dtype(f"{kind}{values.type.bit_width // 8}")
    data = values.buffers()[1]
    if data is None:
        return np.zeros(0, dtype)
    return np.frombuffer(memoryview(data), dtype, len(values), values.offset * dtype.itemsize)


def _arrow(values: np.ndarray[Any, np.dtype[Any]]) -> pa.Array[Any]:
    """A numpy integer array as Arrow, without a copy (and without pandas, which
    ``pa.array`` looks for first).

    >>> _arrow(np.array([4, 5], np.int32)).type
    DataType(int32)
    """
    values = np.ascontiguousarray(values)
    arrow_type = pa.from_numpy_dtype(values.dtype)
    if not pa.types.is_integer(arrow_type):
        raise TypeError(f"not integers: {values.dtype}")
    data = pa.py_buffer(values.data)
    return pa.Array.from_buffers(arrow_type, len(values), [None, data])


def _epoch_seconds(column: pa.ChunkedArray[Any]) -> pa.ChunkedArray[Any] | None:
    """The times as integer epoch seconds within the bounds ingest takes, or ``None``
    where any is missing, not only digits, or out of bounds (ingest's reading of a
    fraction is left to the DuckDB reader)."""
    if column.null_count:
        return None
    for o, d in _bytes_of(column):
        # As unsigned bytes, a digit less '0' is 0..9 and anything else is above 9.
        if len(o) > 1 and int((d[o[0] : o[-1]] - np.uint8(48)).max(initial=0)) > 9:
            return None
    try:
        seconds = pc.cast(column, pa.int64())
    except pa.ArrowInvalid:
        return None  # too many digits for an integer
    lo, hi = (int(datetime.fromisoformat(b).timestamp()) for b in TIME_BOUNDS)
    least, most = pc.min_max(seconds).values()
    if len(seconds) and (least.as_py() < lo or most.as_py() >= hi):
        return None
    return seconds


def _unique(column: pa.ChunkedArray[Any]) -> bool:
    """Whether no value repeats; a file in id order (most exports) needs no hashing."""
    if len(column) < 2:
        return True
    values = column.combine_chunks()
    ahead, behind = values.slice(1), values.slice(0, len(values) - 1)
    for ordered in (pc.greater, pc.less):
        if pc.all(ordered(ahead, behind)).as_py():
            return True
    return len(pc.unique(values)) == len(values)


def _plain_file(path: Path, size: int) -> str | tuple[list[str], str]:
    """The header's names split at commas and the line end (as DuckDB's sniffer writes
    it), or why the file is not plain enough for the Arrow reader."""
    if not 0 < size <= _ARROW_MAX_BYTES:
        return f"{size:,} bytes"
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        if mm[:3] == b"\xef\xbb\xbf":
            return "a byte-order mark"
        for byte, what in ((b'"', "a quote"), (b"\0", "a NUL")):
            if mm.find(byte) >= 0:
                return what
        view = np.frombuffer(mm, np.uint8)
        ascii_only = int(view.max()) < 128
        # Lines end in LF, or all in CR LF (as Python's csv module writes them).
        mixed = False
        if mm.find(b"\r") >= 0:
            cr = np.flatnonzero(view == 13)
            mixed = int(cr[-1]) + 1 >= size or not bool(np.all(view[cr + 1] == 10))
            mixed = mixed or len(cr) != int(np.count_nonzero(view == 10))
            del cr
        del view  # the map closes only once no array looks at it
        if mixed:
            return "line ends other than all LF or all CR LF"
        if not ascii_only:
            decoder = codecs.getincrementaldecoder("utf-8")()
            try:
                for start in range(0, size, _ARROW_BLOCK):
                    end = start + _ARROW_BLOCK
                    decoder.decode(mm[start:end], final=end >= size)
            except UnicodeDecodeError:
                return "text that is not UTF-8"
        first = mm.find(b"\n")
        header = mm[: first if first >= 0 else size].decode()
        crlf = header.endswith("\r")
        return header.removesuffix("\r").split(","), "\\r\\n" if crlf else "\\n"


def _read_arrow(path: Path, kinds: tuple[str, ...], skip_reposts: bool) -> _Actions | str:
    """The actions of a plain file read by pyarrow, or why the DuckDB reader must read
    it (a reason, never a refusal: that reader decides)."""
    sniffed: dict[str, Any] = {}
    sniffer = threading.Thread(target=_sniffed, args=(path, sniffed), daemon=True)
    sniffer.start()
    try:
        plain_file = _plain_file(path, path.stat().st_size)
        if isinstance(plain_file, str):
            return f"{plain_file} in the file"
        table_header, line_end = plain_file
        try:
            table = pcsv.read_csv(
                path,
                read_options=pcsv.ReadOptions(block_size=_ARROW_READ_BLOCK),
                parse_options=pcsv.ParseOptions(
                    delimiter=",",
                    quote_char=False,
                    double_quote=False,
                    escape_char=False,
                    newlines_in_values=False,
                    ignore_empty_lines=False,
                ),
                convert_options=pcsv.ConvertOptions(
                    include_columns=list(_PICKED),
                    column_types=dict.fromkeys(_PICKED, pa.string()),
                    null_values=[""],
                    strings_can_be_null=True,
                ),
            )
        except pa.ArrowException as exc:
            return f"pyarrow: {str(exc).splitlines()[0]}"
    finally:
        sniffer.join()
    if sniffed.get("dialect") is None:
        return f"the sniffer: {sniffed.get('error', 'no dialect')}"
    delimiter, quote, escape, newline, comment, skip, names = sniffed["dialect"]
    plain = (
        delimiter == ","
        and quote in ('"', "(empty)")
        and escape in ('"', "(empty)")
        and newline == line_end
        and comment == "(empty)"
        and skip == 0
    )
    if not plain:
        return "a dialect other than plain commas"
    if list(names) != table_header:
        return "a header DuckDB names otherwise"
    rows = table.num_rows
    m, u = table.column("message_id"), table.column("user_id")
    if rows == 0 or m.null_count or u.null_count:
        return "no rows, or a row without its ids"
    if any(_edged(table.column(c)) for c in _PICKED[:4]):
        return "ids ingest would trim"
    seconds = _epoch_seconds(table.column("timestamp"))
    if seconds is None:
        return "times other than integer epoch seconds within bounds"
    if not _unique(m):
        return "message ids seen twice"
    accounts, objects, kind, times = [], [], [], []
    repost = table.column("repost_id")
    for code, name in enumerate(DIRECT_KINDS):
        if name not in kinds:
            continue
        objs = table.column(f"{name}_id")
        keep = pc.is_valid(objs)
        if name == "reply" and skip_reposts:
            keep = pc.and_(keep, pc.is_null(repost))
        # Every row kept (a file of reposts only): the columns as they are, not copied.
        every = keep.null_count == 0 and pc.all(keep).as_py()
        accounts.append(u if every else pc.filter(u, keep))
        objects.append(objs if every else pc.filter(objs, keep))
        picked = _numpy(seconds if every else pc.filter(seconds, keep)) * 1_000_000
        times.append(picked)
        kind.append(np.full(len(picked), code, np.int64))
    return _Actions(
        rows=rows,
        account=pa.chunked_array([c for a in accounts for c in a.chunks], pa.string()),
        obj=pa.chunked_array([c for a in objects for c in a.chunks], pa.string()),
        kind=np.concatenate(kind),
        t=np.concatenate(times),
    )


def _actions_sql(kinds: tuple[str, ...], skip_reposts: bool) -> str:
    parts = []
    if "repost" in kinds:
        parts.append(
            "SELECT u, m, 'repost' AS kind, repost AS o, s FROM _direct_rows "
            "WHERE repost IS NOT NULL"
        )
    if "reply" in kinds:
        but = " AND repost IS NULL" if skip_reposts else ""
        parts.append(
            "SELECT u, m, 'reply' AS kind, reply AS o, s FROM _direct_rows "
            f"WHERE reply IS NOT NULL{but}"
        )
    return " UNION ALL ".join(parts)


def _duck_actions(con: duckdb.DuckDBPyConnection, kinds: tuple[str, ...], rows: int) -> _Actions:
    """The actions of ``_direct_rows`` (the DuckDB reader's) as the pairing takes them."""
    found = con.execute(
        f"""SELECT u, (kind = 'reply')::BIGINT AS kind, o,
                   epoch_us(to_timestamp(CAST(s AS DOUBLE))) AS t
            FROM ({_actions_sql(kinds, _skips_reposts(kinds))})"""
    ).to_arrow_table()
    return _Actions(
        rows=rows,
        account=found.column("u"),
        obj=found.column("o"),
        kind=_numpy(found.column("kind")),
        t=_numpy(found.column("t")),
    )


def _skips_reposts(kinds: tuple[str, ...]) -> bool:
    # The toolkit's co_reply and co_link skip reposts (concerted.compat's notes).
    return set(kinds) != {"repost"}


_Ints = np.ndarray[Any, np.dtype[np.int64]]


def _numbered(found: _Actions) -> tuple[pa.Array[Any], _Ints, _Ints]:
    """The account names, and each action's account and object as a number.

    Numbered 0, 1, ... by dictionary encoding; the account names are the dictionary,
    and the objects of the two kinds are kept apart."""
    accounts = cast(
        "pa.DictionaryArray[Any, Any]", pc.dictionary_encode(found.account).combine_chunks()
    )
    objects = cast("pa.DictionaryArray[Any, Any]", pc.dictionary_encode(found.obj).combine_chunks())
    obj = _numpy(objects.indices).astype(np.int64)
    obj += found.kind * len(objects.dictionary)
    return accounts.dictionary, _numpy(accounts.indices).astype(np.int64), obj


def _summed(code: _Ints, count: int) -> tuple[_Ints, _Ints, _Ints, _Ints]:
    """Codes of :func:`message_matches` summed by pair: low and high account, the
    weight of low → high and of high → low."""
    # The codes come in sorted runs, which a stable sort merges.
    code.sort(kind="stable")
    pair = code >> 2
    starts = np.flatnonzero(np.concatenate([[True], pair[1:] != pair[:-1]])[: len(pair)])
    # The two counts are bits 1 and 0 of the low byte (read little-endian, whatever
    # the platform's order).
    flags = code.astype("<i8", copy=False).view(np.uint8)[::8]
    ups = np.add.reduceat((flags >> 1) & 1, starts, dtype=np.int64) if len(code) else pair
    downs = np.add.reduceat(flags & 1, starts, dtype=np.int64) if len(code) else pair
    pairs = pair[starts]
    return pairs // count, pairs % count, ups, downs


#: Codes summed per piece of :func:`_write_edges`.
_PIECE = 2**20
#: Edges held before :func:`_write_edges` writes them as one row group: each row group
#: holds the account names again, as the dictionary of both columns.
_ROW_GROUP = 2**23


def _edge_table(
    names: pa.Array[Any], summed: tuple[_Ints, _Ints, _Ints, _Ints], min_weight: int
) -> pa.Table:
    """The directed edges of at least ``min_weight``: ``user_1``, ``user_2``, ``weight``,
    the names as a dictionary (no string is copied per edge)."""
    low, high, ups, downs = summed
    keep_up, keep_down = ups >= min_weight, downs >= min_weight

    def users(*parts: _Ints) -> pa.DictionaryArray[Any, Any]:
        indices = np.concatenate(parts).astype(np.int32)
        return pa.DictionaryArray.from_arrays(_arrow(indices), names)

    return pa.table(
        {
            "user_1": users(low[keep_up], high[keep_down]),
            "user_2": users(high[keep_up], low[keep_down]),
            "weight": _arrow(np.concatenate([ups[keep_up], downs[keep_down]])),
        }
    )


def _pieces(runs: Sequence[_Ints], pieces: int) -> list[list[_Ints]]:
    """Sorted runs of codes cut into ``pieces`` ranges of pairs (a pair's codes all in
    one range), each as its slice of every run, cut at quantiles of the longest run.

    >>> runs = [np.array([4, 5, 9, 12]), np.array([1, 8, 13, 20])]
    >>> [[r.tolist() for r in p] for p in _pieces(runs, 2)]
    [[[4, 5], [1]], [[9, 12], [8, 13, 20]]]
    """
    longest = max(runs, key=len)
    # Codes of a pair differ only in their two low bits: cut at a multiple of 4.
    cuts = sorted({int(longest[len(longest) * k // pieces]) & ~3 for k in range(1, pieces)})
    at = [[0, *np.searchsorted(run, cuts, side="left").tolist(), len(run)] for run in runs]
    return [
        [run[ends[k] : ends[k + 1]] for run, ends in zip(runs, at, strict=True)]
        for k in range(len(cuts) + 1)
    ]


def _write_edges(
    out: Path,
    names: pa.Array[Any],
    runs: Sequence[_Ints],
    min_weight: int,
    parts: int = min(4, os.cpu_count() or 1),
) -> int:
    """The directed edges of at least ``min_weight`` to ``edges.parquet``; their count.

    ``runs`` are :func:`message_matches`'s sorted runs. They are cut into ranges of
    pairs; each range is merged and summed in a thread (:func:`_summed`), and the
    ranges are written together, one row group each time :data:`_ROW_GROUP` edges are
    held (each range its own row group cost 0.06 s of CPU at 10^6 rows, most of it
    writing the names again)."""
    count = max(len(names), 1)
    pieces = max(1, -(-sum(len(run) for run in runs) // _PIECE))

    def summed(piece: list[_Ints]) -> pa.Table:
        return _edge_table(names, _summed(np.concatenate(piece), count), min_weight)

    users = pa.dictionary(pa.int32(), names.type)
    schema = pa.schema([("user_1", users), ("user_2", users), ("weight", pa.int64())])
    written = 0
    held: list[pa.Table] = []
    with (
        ThreadPoolExecutor(max_workers=max(parts, 1)) as pool,
        pq.ParquetWriter(
            out / "edges.parquet",
            schema,
            compression="snappy",
            store_schema=False,
            # Statistics of the names would cost more than writing them.
            write_statistics=["weight"],
            # The names' dictionary whole, however many accounts (the default limit of
            # 1 MiB falls back to writing every name in full past about 80,000 of them).
            dictionary_pagesize_limit=max(2**20, 2 * names.nbytes),
        ) as writer,
    ):

        def write_held() -> None:
            table = pa.concat_tables(held)
            held.clear()
            writer.write_table(table, row_group_size=table.num_rows)

        for table in pool.map(summed, _pieces(runs, pieces)):
            if table.num_rows:
                held.append(table)
                written += table.num_rows
                if sum(t.num_rows for t in held) >= _ROW_GROUP:
                    write_held()
        if held:
            write_held()
        if not written:
            writer.write_table(schema.empty_table())
    return written


def _qut(found: _Actions, out: Path, window: float, min_weight: int) -> int:
    """The toolkit's directed edges of these actions, written to ``edges.parquet``."""
    names, account, obj = _numbered(found)
    rows = len(found.t)
    width = round(window * 1_000_000)
    if rows and width + 1 > (2**62) // rows:
        raise ConfigError(f"a window of {window} s is too wide to pair {rows:,} actions")
    if len(names) >= 2**30:
        raise ConfigError(f"{len(names):,} accounts are more than the direct path counts")
    runs = _matched_runs(account, obj, found.t, width, min(4, os.cpu_count() or 1))
    return _write_edges(out, names, runs, min_weight)


def _coortweet(
    con: duckdb.DuckDBPyConnection,
    out: Path,
    kinds: tuple[str, ...],
    window: float,
    platform: str,
    min_participation: int,
    edge_weight: float,
    subgraph: int,
) -> dict[str, int]:
    from concerted import compat

    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _direct_actions AS
            SELECT u AS actor_id, {sql_literal(platform)} AS platform, kind, o AS object_id,
                   to_timestamp(CAST(s AS DOUBLE)) AS ts, m AS source_id
            FROM ({_actions_sql(kinds, False)})"""
    )
    pairs = compat.coortweet_pairs(
        con, "_direct_actions", window=window, min_participation=min_participation, kinds=kinds
    )
    network = compat.coortweet_network(con, pairs, edge_weight=edge_weight, subgraph=subgraph)
    written = {}
    for relation, name, order in (
        (pairs, "pairs.parquet", "object_id, content_id, content_id_y"),
        (network, "edges.parquet", '"from", "to"'),
    ):
        path = out / name
        con.execute(
            f"COPY (SELECT * FROM ({relation.sql_query()}) ORDER BY {order}) "
            f"TO {sql_literal(str(path))} (FORMAT parquet, COMPRESSION zstd)"
        )
        written[name] = pq.read_metadata(path).num_rows
    return written


def _read_duck(
    path: Path,
    out: Path,
    used: tuple[str, ...],
    compat_mode: str,
    *,
    window: float,
    min_weight: int,
    platform: str,
    min_participation: int,
    edge_weight: float,
    subgraph: int,
    memory_limit: str | None,
    temp_directory: Path | None,
    say: Callable[[str], None],
) -> tuple[int, dict[str, int]] | None:
    """The direct path through the DuckDB reader: the rows read and the rows written
    per file, or ``None`` when the file needs the full path."""
    # As a case in memory would be opened (concerted.store.Store).
    config: dict[str, Any] = {"memory_limit": memory_limit or default_memory_limit()}
    if temp_directory is not None:
        config["temp_directory"] = str(temp_directory)
    con = duckdb.connect(config=config)
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        why = _read(con, path)
        if why is not None:
            log.info("%s: %s; building the case", path, why)
            return None
        row = con.execute("SELECT count(*) FROM _direct_rows").fetchone()
        rows_read = int(row[0]) if row else 0
        say("pairing")
        if compat_mode == "qut":
            found = _duck_actions(con, used, rows_read)
            return rows_read, {"edges.parquet": _qut(found, out, window, min_weight)}
        written = _coortweet(
            con,
            out,
            used,
            window,
            platform,
            min_participation,
            edge_weight,
            subgraph,
        )
        return rows_read, written
    finally:
        con.close()


def coaction(
    inputs: Sequence[Path],
    out: str | Path,
    *,
    window: float,
    compat_mode: str,
    kinds: tuple[str, ...] | None = None,
    platform: str | None = None,
    min_weight: int = 1,
    min_participation: int = 2,
    edge_weight: float = 0.5,
    subgraph: int = 0,
    overwrite: bool = False,
    memory_limit: str | None = None,
    temp_directory: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int] | None:
    """``concerted coaction --compat MODE`` on one data file without building a case:
    rows written per file, or ``None`` when the file needs the full path (see the
    module's notes; nothing is written then). Writes what
    :func:`concerted.analysis.coaction` writes, ``run.json`` included."""
    used = applies(
        list(inputs), case_path=None, format_="qut", compat_mode=compat_mode, kinds=kinds
    )
    if used is None:
        return None
    path = Path(inputs[0])
    if platform is not None and not platform.strip():
        return None  # ingest refuses a blank platform, and says so
    if window < 0:
        raise ConfigError(f"the window must not be negative, got {window}")
    say = progress or (lambda _: None)
    started = time.perf_counter()
    names = {"qut": ("edges.parquet",), "coortweet": ("pairs.parquet", "edges.parquet")}
    out = paths.output_directory(Path(out), (*names[compat_mode], "run.json"), overwrite)
    hashed: dict[str, str] = {}
    hasher = threading.Thread(target=_hash_file, args=(path, hashed), daemon=True)
    hasher.start()
    # numpy's huge pages cost more than they save here, and so do fresh pages for
    # every large array (BENCHMARKS.md, "Co-action").
    with heap.kept():
        try:
            say(f"reading {path.name}")
            read: _Actions | str = "the CooRTweet mode reads through DuckDB"
            if compat_mode == "qut":
                read = _read_arrow(path, used, _skips_reposts(used))
            if isinstance(read, _Actions):
                reader = "pyarrow"
                rows_read = read.rows
                say("pairing")
                written = {"edges.parquet": _qut(read, out, window, min_weight)}
            else:
                log.info("%s: %s; reading through DuckDB", path, read)
                reader = f"DuckDB ({read})"
                found = _read_duck(
                    path,
                    out,
                    used,
                    compat_mode,
                    window=window,
                    min_weight=min_weight,
                    platform=(platform or "twitter").strip().lower(),
                    min_participation=min_participation,
                    edge_weight=edge_weight,
                    subgraph=subgraph,
                    memory_limit=memory_limit,
                    temp_directory=temp_directory,
                    say=say,
                )
                if found is None:
                    return None
                rows_read, written = found
        finally:
            hasher.join()
    run = {
        "concerted": __version__,
        "command": "coaction",
        "case": None,
        "inputs": [
            {
                "path": str(path),
                "sha256": hashed.get("sha256"),
                "format": "qut",
                "rows_read": rows_read,
                "rows_set_aside": 0,
            }
        ],
        "settings": {
            "window": window,
            "kinds": list(used),
            "compat": compat_mode,
            "min_weight": min_weight,
            "min_participation": min_participation,
            "edge_weight": edge_weight,
            "subgraph": subgraph,
            "max_object_pairs": None,
        },
        "seconds": round(time.perf_counter() - started, 3),
        "rows": written,
        "notes": {
            "read": "direct: the columns paired read straight into actions, no case",
            "reader": reader,
        },
    }
    (out / "run.json").write_text(json.dumps(run, indent=2, default=str) + "\n")
    return written
