"""``concerted coaction`` straight from a data file: no case built, the same edges.

``analyze`` builds a case (posts, accounts, actions, each row typed and checked) because
every stage after it reads one. ``coaction --compat qut`` or ``--compat coortweet``
reads a file once and writes one network, so for a coordination-network-toolkit CSV
(``--format qut``) and the kinds ``repost`` and ``reply`` it reads only the columns the
pairing needs, in one DuckDB pass, straight into actions:

1. ``read_csv`` (the same dialect sniffing as ingest, every field as text), keeping
   ``message_id``, ``user_id``, ``repost_id``, ``reply_id`` and ``timestamp``;
2. one aggregate checks what ingest would check on those rows: a message id and a user
   id in every row, message ids unique, every time epoch seconds between 1970 and 2100.
   When a check fails, or the reader meets a line it cannot split, the direct path gives
   way (:func:`coaction` returns ``None``) and the command builds the case as before,
   which raises naming the file, row and column as ingest does; a file that passes has
   no row ingest would refuse, so none is dropped here;
3. ``--compat qut``: the pairs are counted on integers in numpy (:func:`message_matches`)
   and the edges written without sorting; ``--compat coortweet``: the actions go through
   :func:`concerted.compat.coortweet_pairs` and :func:`~concerted.compat.coortweet_network`
   as on the full path.

The accounts, ids and times are the ones ingest would store (ids trimmed, epoch
seconds to the microsecond), so the edges are the ones the full path writes;
``tests/test_fastpath.py`` holds the two paths to that on random files.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from concerted import __version__, paths
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
    are the weights of the two directed edges. The codes come in ``parts`` runs, each
    sorted (counted in that many threads).

    Rows are sorted by object and time once; each row's window is then a range of
    positions, found by binary search on a key that grows with time within an object
    and jumps by more than the window between objects (a longer gap counts as just over
    the window, so the key stays small). Each pair of rows is met once; a row of account
    v counts for message x when no earlier row of v lies in x's window.

    >>> a = np.array([0, 1, 1, 2]); o = np.array([0, 0, 0, 0]); t = np.array([0, 5, 9, 50])
    >>> sorted((int(c) >> 2, (int(c) >> 1) & 1, int(c) & 1) for c in message_matches(a, o, t, 10))
    [(1, 0, 1), (1, 1, 1)]
    """
    if parts < 1:
        raise ConfigError(f"message_matches: parts must be at least 1, got {parts}")
    n = len(t)
    if n == 0:
        return np.zeros(0, np.int64)
    accounts = int(account.max()) + 1
    index = np.int32 if n < 2**31 else np.int64
    order = np.lexsort((t, obj))
    a, o, ts = account[order].astype(index), obj[order], t[order]
    step = np.full(n, window + 1, dtype=np.int64)
    same = o[1:] == o[:-1]
    step[1:][same] = np.minimum(np.diff(ts)[same], window + 1)
    step[0] = 0
    key = np.cumsum(step)
    pos: np.ndarray[Any, Any] = np.arange(n, dtype=index)
    # Each row's window: positions lo[x] .. hi[x] - 1.
    lo = np.searchsorted(key, key - window, side="left").astype(index)
    hi: np.ndarray[Any, Any] = np.searchsorted(key, key + window, side="right").astype(index)
    ahead = hi - pos - 1
    # The previous row of the same account on the same object, by position (-1: none).
    by_account = np.lexsort((pos, a, o)).astype(index)
    sa, so = a[by_account], o[by_account]
    follows = (sa[1:] == sa[:-1]) & (so[1:] == so[:-1])
    prev = np.full(n, -1, dtype=index)
    prev[by_account[1:][follows]] = by_account[:-1][follows]

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

    # numpy lets go of the interpreter in these steps: the rows, cut where the pairs
    # are split evenly, run in threads, one per core.
    reach = np.cumsum(ahead, dtype=np.int64)
    cuts = [0, *np.searchsorted(reach, reach[-1] * np.arange(1, parts) / parts).tolist(), n]
    with ThreadPoolExecutor(max_workers=parts) as pool:
        found = list(pool.map(pairs_of, cuts[:-1], cuts[1:]))
    return np.concatenate(found)


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


def _qut(
    con: duckdb.DuckDBPyConnection,
    out: Path,
    kinds: tuple[str, ...],
    window: float,
    min_weight: int,
) -> int:
    # The toolkit's co_reply and co_link skip reposts (concerted.compat's notes).
    skip = set(kinds) != {"repost"}
    found = con.execute(
        f"""SELECT u, (kind = 'reply')::INTEGER AS kind, o,
                   epoch_us(to_timestamp(CAST(s AS DOUBLE))) AS t
            FROM ({_actions_sql(kinds, skip)})"""
    ).to_arrow_table()
    # Accounts and objects numbered 0, 1, ... by dictionary encoding; the account
    # names are the dictionary, and the objects of the two kinds are kept apart.
    accounts = cast(
        "pa.DictionaryArray[Any, Any]", pc.dictionary_encode(found.column("u")).combine_chunks()
    )
    objects = cast(
        "pa.DictionaryArray[Any, Any]", pc.dictionary_encode(found.column("o")).combine_chunks()
    )
    names = accounts.dictionary
    rows = found.num_rows
    obj = objects.indices.to_numpy().astype(np.int64)
    obj += found.column("kind").to_numpy().astype(np.int64) * len(objects.dictionary)
    width = round(window * 1_000_000)
    if rows and width + 1 > (2**62) // rows:
        raise ConfigError(f"a window of {window} s is too wide to pair {rows:,} actions")
    if len(names) >= 2**30:
        raise ConfigError(f"{len(names):,} accounts are more than the direct path counts")
    code = message_matches(
        accounts.indices.to_numpy().astype(np.int64), obj, found.column("t").to_numpy(), width
    )
    count = max(len(names), 1)
    # Summed by pair: the codes, the two counts in their low bits, come in sorted runs
    # that a stable sort merges.
    code.sort(kind="stable")
    pair = code >> 2
    starts = np.flatnonzero(np.concatenate([[True], pair[1:] != pair[:-1]])[: len(pair)])
    ups = np.add.reduceat((code >> 1) & 1, starts) if len(code) else pair
    downs = np.add.reduceat(code & 1, starts) if len(code) else pair
    low, high = (pair[starts] // count).astype(np.int32), (pair[starts] % count).astype(np.int32)
    keep_up, keep_down = ups >= min_weight, downs >= min_weight

    def users(*parts: np.ndarray[Any, np.dtype[np.int32]]) -> pa.DictionaryArray[Any, Any]:
        # The names are the Parquet dictionary: no string is copied per edge.
        return pa.DictionaryArray.from_arrays(np.concatenate(parts), names)

    table = pa.table(
        {
            "user_1": users(low[keep_up], high[keep_down]),
            "user_2": users(high[keep_up], low[keep_down]),
            "weight": pa.array(np.concatenate([ups[keep_up], downs[keep_down]])),
        }
    )
    pq.write_table(
        table,
        out / "edges.parquet",
        compression="snappy",
        store_schema=False,
        # Statistics of the names would cost more than writing them.
        write_statistics=["weight"],
    )
    return table.num_rows


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
    # As a case in memory would be opened (concerted.store.Store).
    config: dict[str, Any] = {"memory_limit": memory_limit or default_memory_limit()}
    if temp_directory is not None:
        config["temp_directory"] = str(temp_directory)
    con = duckdb.connect(config=config)
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    hashed: dict[str, str] = {}
    hasher = threading.Thread(target=_hash_file, args=(path, hashed), daemon=True)
    hasher.start()
    try:
        say(f"reading {path.name}")
        why = _read(con, path)
        if why is not None:
            log.info("%s: %s; building the case", path, why)
            return None
        row = con.execute("SELECT count(*) FROM _direct_rows").fetchone()
        rows_read = int(row[0]) if row else 0
        say("pairing")
        if compat_mode == "qut":
            written = {"edges.parquet": _qut(con, out, used, window, min_weight)}
        else:
            written = _coortweet(
                con,
                out,
                used,
                window,
                (platform or "twitter").strip().lower(),
                min_participation,
                edge_weight,
                subgraph,
            )
    finally:
        con.close()
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
        "notes": {"read": "direct: the columns paired read straight into actions, no case"},
    }
    (out / "run.json").write_text(json.dumps(run, indent=2, default=str) + "\n")
    return written
