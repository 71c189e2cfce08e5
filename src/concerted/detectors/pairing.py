"""The windowed pairing of actions on shared objects: the engine of every detector that
pairs accounts (co-action, co-reporting, list order, synchrony, account bursts), of the
significance test's copies and of the peer-compatible modes.

Two actions pair when they are of the same kind, on the same object, by two different
accounts, and at most ``window`` seconds apart (inclusive, to the microsecond). The
join is an equi-join on (kind, object, time bucket) with buckets one window wide,
against the same bucket and the next one, then a filter on the exact gap; it scales on
any engine where a range join on time does not. :func:`pair_keys` makes a
:class:`Pairs`; :func:`pair_edges` and :func:`pair_events` read it as evidence.

**Viral objects.** An object that thousands of accounts act on within minutes yields
millions of pairs and says little about any one of them. Before the join, each
object's candidate pairs are counted from its bucket sizes; objects with more than
``max_object_pairs`` are left out, and :func:`viral_objects` lists them. ``None`` gives
the exact answer whatever it costs.

**Copies on integers.** :func:`numbered_slots` numbers the (source, account) slots of
some actions and reads them as integers once; each relabelled copy then moves them to
their drawn accounts (:meth:`Slots.relabelled`, the ``relabel`` null's draw) and keeps
the actions to pair (:meth:`Slots.moved`, viral objects left out) in numpy.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt

from concerted.errors import ConfigError
from concerted.schema import sql_hash, sql_literal

__all__ = [
    "BYTES_PER_ACTION",
    "PARTITION_SHARE",
    "PairedRows",
    "Pairs",
    "SlotActions",
    "Slots",
    "check_pairs",
    "memory_limit_bytes",
    "merge_pair_counts",
    "numbered_slots",
    "pair_edges",
    "pair_events",
    "pair_keys",
    "pair_weight_counts",
    "pairs_of_rows",
    "partition_of",
    "partitions_for",
    "viral_of_arrays",
    "viral_of_rows",
    "viral_objects",
    "window_pairs",
]

_ids = itertools.count()

# The rows a co-action join reads: the actions of the chosen kinds, copied once, each
# with a row number, its time in microseconds and its bucket, and integer keys for its
# kind, its object and its account (joins and groups on integers, not strings). The
# keys of kinds and objects are hashes, checked for clashes on the distinct values
# (numbers replace them if two ever clash); account numbers follow (platform, actor_id)
# order, so comparing them orders accounts as their ids do, and reach the rows through
# the hash of the account (or through its id, if two hashes clash).
_ROWS = """
    CREATE OR REPLACE TEMP TABLE {rows} AS
    SELECT NULL::BIGINT AS rid, {kid} AS kid, {oid} AS oid, NULL::BIGINT AS aid,
           kind, object_id, platform, actor_id, source_id, ts,
           epoch_us(ts) AS t, epoch_us(ts) // {width} AS b, {ah} AS ah
    FROM {actions}
    WHERE kind IS NOT NULL AND object_id IS NOT NULL
      AND platform IS NOT NULL AND actor_id IS NOT NULL {kinds};
    UPDATE {rows} SET rid = rowid;
    CREATE OR REPLACE TEMP TABLE {objects} AS
    SELECT kind, object_id, oid, kid, count(*) AS n FROM {rows} GROUP BY ALL;
    CREATE OR REPLACE TEMP TABLE {accounts} AS
    SELECT platform, actor_id, (row_number() OVER (ORDER BY platform, actor_id))::BIGINT AS aid,
           ah
    FROM (SELECT DISTINCT platform, actor_id, ah FROM {rows});
"""

# Numbers instead of hashes for kinds and objects, when two hashes clashed.
_RENUMBER = """
    CREATE OR REPLACE TEMP TABLE {objects} AS
    SELECT kind, object_id, (row_number() OVER ())::BIGINT AS oid,
           (dense_rank() OVER (ORDER BY kind))::BIGINT AS kid, n
    FROM (SELECT kind, object_id, sum(n)::BIGINT AS n FROM {objects} GROUP BY ALL);
    UPDATE {rows} SET oid = o.oid, kid = o.kid FROM {objects} o
    WHERE o.kind = {rows}.kind AND o.object_id = {rows}.object_id;
"""

# The objects over the cap. Candidate pairs per object: within a bucket, c(c-1)/2;
# with the next bucket, c*c'. They never exceed n(n-1)/2 for an object of n rows, so
# only objects over the cap by that bound are counted.
_VIRAL = """
    WITH cells AS (SELECT oid, b, count(*) AS c FROM {rows}
                   SEMI JOIN (SELECT oid FROM {objects} WHERE n * (n - 1) // 2 > {cap}) o
                   USING (oid) GROUP BY ALL)
    SELECT x.oid, sum(x.c * (x.c - 1) // 2 + x.c * coalesce(y.c, 0))::BIGINT AS candidate_pairs
    FROM cells x LEFT JOIN cells y ON y.oid = x.oid AND y.b = x.b + 1
    GROUP BY ALL HAVING sum(x.c * (x.c - 1) // 2 + x.c * coalesce(y.c, 0)) > {cap}
"""


# Every pair of rows of different accounts within the window, each unordered pair
# once, oriented so that account 1 comes before account 2: integers only.
_PAIRS = """
    WITH r AS (SELECT rid, kid, oid, aid, t, b FROM {rows} {keep} {few}),
    raw AS (
        SELECT x.kid, x.oid, x.aid AS ax, x.rid AS rx, x.t AS tx,
               y.aid AS ay, y.rid AS ry, y.t AS ty
        FROM r x JOIN r y ON y.oid = x.oid AND y.b = x.b
        WHERE x.aid < y.aid AND abs(x.t - y.t) <= {window}
        UNION ALL
        SELECT x.kid, x.oid, x.aid, x.rid, x.t, y.aid, y.rid, y.t
        FROM r x JOIN r y ON y.oid = x.oid AND y.b = x.b + 1
        WHERE x.aid <> y.aid AND y.t - x.t <= {window}
    )
    SELECT kid, oid,
           least(ax, ay) AS a_1, CASE WHEN ax < ay THEN rx ELSE ry END AS r_1,
           CASE WHEN ax < ay THEN tx ELSE ty END AS t_1,
           greatest(ax, ay) AS a_2, CASE WHEN ax < ay THEN ry ELSE rx END AS r_2,
           CASE WHEN ax < ay THEN ty ELSE tx END AS t_2
    FROM raw
"""


def _kinds_filter(kinds: tuple[str, ...] | None) -> str:
    if kinds is None:
        return ""
    return f"AND kind IN ({', '.join(sql_literal(k) for k in kinds)})"


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


def _pairs_sql(rows: str, viral: str | None, min_objects: int, window: float) -> str:
    """SQL: :data:`_PAIRS` over ``rows`` (``rid, kid, oid, aid, t, b``), leaving out the
    objects of table ``viral`` and, with ``min_objects`` above 1, the accounts that
    acted on fewer distinct objects of a kind."""
    keep = f"ANTI JOIN {viral} v USING (oid)" if viral else ""
    few = ""
    if min_objects > 1:
        few = f"""SEMI JOIN (SELECT kid, aid FROM {rows} {keep} GROUP BY kid, aid
                             HAVING count(DISTINCT oid) >= {int(min_objects)}) m
                  USING (kid, aid)"""
    return _PAIRS.format(rows=rows, keep=keep, few=few, window=_micros(window))


def pairs_of_rows(rows: str, *, window: float, viral: str | None = None) -> str:
    """SQL: every pair of rows of two accounts on one object within ``window`` seconds,
    from ``rows`` laid out as a pairing's keys (``rid, kid, oid, aid, t, b``, ``b`` the
    time bucket one window wide), leaving out the objects of table ``viral``
    (``oid``): the pairs a :class:`Pairs` holds (``kid, oid, a_1, r_1, t_1, a_2, r_2,
    t_2``), as a query to stream rather than a table."""
    return _pairs_sql(rows, viral, 1, window)


def viral_of_rows(con: duckdb.DuckDBPyConnection, rows: str, *, cap: int) -> str:
    """Materialise the objects of ``rows`` (laid out as in :func:`pairs_of_rows`) whose
    candidate pairs exceed ``cap``, as :func:`pair_keys` leaves them out; returns the
    name of a temporary table (``oid, candidate_pairs``)."""
    n = next(_ids)
    viral, objects = f"_coaction_viral_{n}", f"_coaction_objects_{n}"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {objects} AS "
        f"SELECT oid, count(*) AS n FROM {rows} GROUP BY oid"
    )
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {viral} AS "
            + _VIRAL.format(rows=rows, objects=objects, cap=int(cap))
        )
    finally:
        con.execute(f"DROP TABLE IF EXISTS {objects}")
    return viral


@dataclass(frozen=True)
class Pairs:
    """The temporary tables of one pairing, all on the same connection.

    ``pairs`` holds integer keys only (``kid, oid, a_1, r_1, t_1, a_2, r_2, t_2``):
    ``rows`` maps a row number ``rid`` to its action, ``objects`` an ``oid`` to its
    kind and object, ``accounts`` an ``aid`` to its platform and id; ``viral`` lists
    the objects left out (``oid, candidate_pairs``), when a cap was set. Where the
    pairs are not ``stored``, ``pairs`` is a parenthesised query over the other
    tables, made again wherever it is read, and not one of :attr:`tables`.
    """

    pairs: str
    rows: str
    objects: str
    accounts: str
    viral: str | None
    #: The settings of the pairing (``None`` where unknown).
    window: float | None = None
    kinds: tuple[str, ...] | None = None
    max_object_pairs: int | None = None
    min_objects: int = 1
    stored: bool = True

    @property
    def tables(self) -> tuple[str, ...]:
        """The temporary tables to drop once the pairing is done with."""
        pairs = self.pairs if self.stored else None
        named = (pairs, self.rows, self.objects, self.accounts, self.viral)
        return tuple(t for t in named if t)


@dataclass(frozen=True)
class PairedRows:
    """The integer tables behind one pairing's events, as :func:`pair_events` reads them:
    its :class:`Pairs`, and the table of :func:`pair_edges` whose pairs the events
    keep (``kid, a_1, a_2``; None: every pair). An engine that keeps the pairing on
    the case's connection reads the events from these on integers
    (:class:`concerted.engines.base.Paired`)."""

    keys: Pairs
    kept: str | None = None

    def pairs(self) -> str:
        """SQL: the rows of :attr:`Pairs.pairs` behind the events."""
        kept = f"SEMI JOIN {self.kept} e USING (kid, a_1, a_2)" if self.kept else ""
        return f"SELECT * FROM {self.keys.pairs} {kept}"


def pair_keys(
    con: duckdb.DuckDBPyConnection,
    actions: str,
    *,
    window: float,
    kinds: tuple[str, ...] | None = None,
    max_object_pairs: int | None = None,
    min_objects: int = 1,
    stored: bool = True,
) -> Pairs:
    """Pair every two actions of two accounts on one object within ``window`` seconds
    (the integer form that :func:`window_pairs` and the detector build on).

    With ``min_objects`` above 1, only accounts that acted on at least that many
    distinct objects of one kind (those left out as viral aside) are paired: a caller
    that keeps only pairs sharing ``min_objects`` objects loses nothing, and on real
    data, where most accounts act on one or two objects, far fewer pairs are made.
    The other tables hold every action all the same.

    With ``stored`` false the pairs are not written to a table but left as the query
    that makes them (:attr:`Pairs.pairs`), for a caller that reads them once or twice
    and would rather pair again than hold them: they are the largest of the tables
    (eight integers a pair of actions), and each read makes the same pairs.
    """
    if window < 0:
        raise ConfigError(f"the window must not be negative, got {window}")
    if min_objects < 1:
        raise ConfigError(f"min_objects must be at least 1, got {min_objects}")
    n = next(_ids)
    names = {k: f"_coaction_{k}_{n}" for k in ("rows", "objects", "accounts", "pairs")}
    rows, objects, accounts = names["rows"], names["objects"], names["accounts"]
    con.execute(
        _ROWS.format(
            width=max(1, _micros(window)),
            actions=actions,
            kinds=_kinds_filter(kinds),
            kid=sql_hash("kind"),
            oid=sql_hash("kind, object_id"),
            ah=sql_hash("platform, actor_id"),
            rows=rows,
            objects=objects,
            accounts=accounts,
        )
    )
    clashes = con.sql(
        f"""SELECT (SELECT count(*) - count(DISTINCT oid) + count(DISTINCT kind)
                           - count(DISTINCT kid) FROM {objects}),
                   (SELECT count(*) - count(DISTINCT ah) FROM {accounts})"""
    ).fetchone()
    if clashes and clashes[0]:
        con.execute(_RENUMBER.format(rows=rows, objects=objects))
    on = "u.ah = r.ah"
    if clashes and clashes[1]:
        on = "u.platform = r.platform AND u.actor_id = r.actor_id"
    con.execute(f"UPDATE {rows} r SET aid = u.aid FROM {accounts} u WHERE {on}")
    viral = None
    if max_object_pairs is not None:
        viral = f"_coaction_viral_{n}"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {viral} AS "
            + _VIRAL.format(rows=rows, objects=objects, cap=int(max_object_pairs))
        )
    made = _pairs_sql(rows, viral, int(min_objects), window)
    if stored:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {names['pairs']} AS {made}")
    else:
        names["pairs"] = f"({made})"
    return Pairs(
        viral=viral,
        window=float(window),
        kinds=tuple(kinds) if kinds is not None else None,
        max_object_pairs=max_object_pairs,
        min_objects=int(min_objects),
        stored=stored,
        **names,
    )


def check_pairs(
    keys: Pairs,
    detector: str,
    window: float,
    kinds: tuple[str, ...] | None,
    max_object_pairs: int | None,
    min_objects: int = 1,
) -> None:
    """Raise :class:`ConfigError` unless ``keys`` were made with these settings and pair
    every account that shares ``min_objects`` objects with another."""
    made = (keys.window, keys.kinds, keys.max_object_pairs)
    if made != (float(window), kinds, max_object_pairs) or keys.min_objects > min_objects:
        raise ConfigError(
            f"{detector}: the pairing was made with window, kinds, max_object_pairs and "
            f"min_objects {(*made, keys.min_objects)}, not "
            f"{(float(window), kinds, max_object_pairs)} and at most {min_objects}"
        )


def window_pairs(
    con: duckdb.DuckDBPyConnection,
    actions: str,
    *,
    window: float,
    kinds: tuple[str, ...] | None = None,
    max_object_pairs: int | None = None,
) -> tuple[str, str | None]:
    """Materialise every pair of actions of two accounts within ``window`` seconds.

    Returns the name of a temporary table of pairs (``kind, object_id, platform_1,
    account_1, t_1, ts_1, source_1, platform_2, account_2, t_2, ts_2, source_2``; ``t``
    in microseconds since the epoch), oriented so that (platform_1, account_1) <
    (platform_2, account_2), and, when ``max_object_pairs`` is set, the name of a
    temporary table of the objects left out (``kind, object_id, candidate_pairs``),
    else ``None``.

    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE a AS SELECT * FROM (VALUES "
    ...     "('u1', 'x', 'repost', 'o', TIMESTAMPTZ '2020-01-01 00:00:00+00', 'p1'),"
    ...     "('u2', 'x', 'repost', 'o', TIMESTAMPTZ '2020-01-01 00:01:00+00', 'p2'),"
    ...     "('u3', 'x', 'repost', 'o', TIMESTAMPTZ '2020-01-01 00:01:01+00', 'p3')"
    ...     ") t(actor_id, platform, kind, object_id, ts, source_id)")
    >>> pairs, _ = window_pairs(con, "a", window=60)
    >>> con.sql(f"SELECT account_1, account_2 FROM {pairs} ORDER BY ALL").fetchall()
    [('u1', 'u2'), ('u2', 'u3')]
    """
    keys = pair_keys(con, actions, window=window, kinds=kinds, max_object_pairs=max_object_pairs)
    n = next(_ids)
    pairs = f"_coaction_pairs_{n}"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {pairs} AS
            SELECT x.kind, x.object_id,
                   x.platform AS platform_1, x.actor_id AS account_1, p.t_1,
                   x.ts AS ts_1, x.source_id AS source_1,
                   y.platform AS platform_2, y.actor_id AS account_2, p.t_2,
                   y.ts AS ts_2, y.source_id AS source_2
            FROM {keys.pairs} p
            JOIN {keys.rows} x ON x.rid = p.r_1
            JOIN {keys.rows} y ON y.rid = p.r_2"""
    )
    viral = None
    if keys.viral:
        viral = f"_coaction_viral_{n}"
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {viral} AS
                SELECT o.kind, o.object_id, v.candidate_pairs
                FROM {keys.viral} v JOIN {keys.objects} o USING (oid)"""
        )
    for table in keys.tables:
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return pairs, viral


def viral_objects(con: duckdb.DuckDBPyConnection, keys: Pairs) -> list[dict[str, Any]]:
    """The objects a pairing left out, with their accounts and actions, largest first."""
    if keys.viral is None:
        return []
    rows = con.sql(
        f"""SELECT o.kind, o.object_id, count(DISTINCT r.aid) AS accounts,
                   count(*) AS actions, any_value(v.candidate_pairs) AS candidate_pairs
            FROM {keys.viral} v JOIN {keys.objects} o USING (oid)
            JOIN {keys.rows} r USING (oid)
            GROUP BY o.kind, o.object_id ORDER BY candidate_pairs DESC, o.kind, o.object_id"""
    ).fetchall()
    names = ("kind", "object_id", "accounts", "actions", "candidate_pairs")
    return [dict(zip(names, row, strict=True)) for row in rows]


def pair_weight_counts(
    con: duckdb.DuckDBPyConnection,
    keys: Pairs,
    rows: str | None = None,
    *,
    min_weight: int = 1,
) -> dict[int, int]:
    """How many account pairs have each total weight: the distinct objects they share
    within the window, summed over the kinds on which they share ``min_weight`` or more
    (what :func:`pair_edges` gives, added up over kinds). ``rows`` is a table laid out
    as the pairing's rows (``rid, kid, oid, aid, t, b``), such as a randomised copy of
    them; by default the pairing's own. The pairs stream into the count: none is
    stored, so a null replicate costs one join and one aggregate.

    >>> con = duckdb.connect()
    >>> keys = pair_keys(con, "(SELECT * FROM (VALUES ('u1', 'x', 'r', 'o1', 0, 'p1'),"
    ...     " ('u2', 'x', 'r', 'o1', 1, 'p2'), ('u1', 'x', 'r', 'o2', 0, 'p3'),"
    ...     " ('u2', 'x', 'r', 'o2', 2, 'p4'), ('u3', 'x', 'r', 'o2', 3, 'p5')) "
    ...     "t(actor_id, platform, kind, object_id, s, source_id)"
    ...     " CROSS JOIN (SELECT to_timestamp(0) AS ts))", window=60)
    >>> pair_weight_counts(con, keys)
    {1: 2, 2: 1}
    """
    if keys.window is None:
        raise ConfigError("pair_weight_counts needs a pairing that knows its window")
    pairs = _pairs_sql(rows or keys.rows, keys.viral, keys.min_objects, keys.window)
    # As in pair_edges, pairs with fewer matched actions than min_weight are dropped
    # before the distinct objects are counted (a third faster on 10M reports).
    thin = ""
    if min_weight > 1:
        thin = f"""SEMI JOIN (SELECT kid, a_1, a_2 FROM p GROUP BY ALL
                              HAVING count(*) >= {int(min_weight)}) c USING (kid, a_1, a_2)"""
    got = con.sql(
        f"""WITH p AS ({pairs}),
            o AS (SELECT DISTINCT kid, oid, a_1, a_2 FROM p {thin}),
            e AS (SELECT a_1, a_2, count(*) AS w FROM o GROUP BY kid, a_1, a_2
                  HAVING count(*) >= {int(min_weight)}),
            s AS (SELECT sum(w)::BIGINT AS w FROM e GROUP BY a_1, a_2)
            SELECT w, count(*) FROM s GROUP BY w ORDER BY w"""
    ).fetchall()
    return {int(w): int(n) for w, n in got}


def pair_edges(con: duckdb.DuckDBPyConnection, keys: Pairs, *, min_weight: int = 1) -> str:
    """Materialise the figures of every kind and account pair of a pairing that shares at
    least ``min_weight`` distinct objects; returns the name of a temporary table of
    integers (``kid, a_1, a_2, weight, events, lead_1, lead_2, median_dt, first_t,
    last_t``; ``median_dt`` in seconds, ``first_t`` and ``last_t`` in microseconds).

    A pair with fewer matched actions than ``min_weight`` cannot share that many
    objects, so the pairs are first thinned by that count, which is cheap.
    """
    table = f"_coaction_edges_{next(_ids)}"
    thin = ""
    if min_weight > 1:
        thin = f"""SEMI JOIN (SELECT kid, a_1, a_2 FROM {keys.pairs} GROUP BY kid, a_1, a_2
                              HAVING count(*) >= {int(min_weight)}) g USING (kid, a_1, a_2)"""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {table} AS
            SELECT kid, a_1, a_2, count(DISTINCT oid) AS weight,
                   count(*) AS events,
                   count(*) FILTER (WHERE t_1 < t_2) AS lead_1,
                   count(*) FILTER (WHERE t_2 < t_1) AS lead_2,
                   median(abs(t_1 - t_2)) / 1e6 AS median_dt,
                   min(least(t_1, t_2)) AS first_t, max(greatest(t_1, t_2)) AS last_t
            FROM (SELECT * FROM {keys.pairs} {thin}) p
            GROUP BY kid, a_1, a_2
            HAVING count(DISTINCT oid) >= {int(min_weight)}"""
    )
    return table


def pair_events(keys: Pairs, edges: str | None, detector: str) -> str:
    """SQL: the events of a pairing (the evidence contract's ``events``, layer the kind),
    of the pairs in ``edges`` (a table of :func:`pair_edges`) or of all pairs."""
    return f"""
        SELECT {sql_literal(detector)} AS detector, x.kind AS layer,
               x.platform AS platform_1, x.actor_id AS account_1,
               y.platform AS platform_2, y.actor_id AS account_2,
               x.object_id, x.ts AS ts_1, y.ts AS ts_2,
               x.source_id AS source_1, y.source_id AS source_2
        FROM (SELECT r_1, r_2 FROM ({PairedRows(keys, edges).pairs()})) p
        JOIN {keys.rows} x ON x.rid = p.r_1
        JOIN {keys.rows} y ON y.rid = p.r_2
    """


def viral_of_arrays(
    obj: npt.NDArray[np.int64], bucket: npt.NDArray[np.int64], cap: int
) -> npt.NDArray[np.int64]:
    """:func:`viral_of_rows` on arrays: the objects whose candidate pairs exceed
    ``cap``, counted over each object's buckets of ``c`` rows, ``c(c-1)/2`` within a
    bucket and ``c * c'`` with the next bucket's ``c'``.

    >>> viral_of_arrays(np.array([1, 1, 1, 2, 2]), np.array([0, 0, 1, 5, 9]), 2).tolist()
    [1]
    """
    sizes = np.bincount(obj) if obj.size else obj
    big = np.flatnonzero(sizes * (sizes - 1) // 2 > cap)
    if big.size == 0:
        return big.astype(np.int64)
    inside = np.isin(obj, big)
    order = np.lexsort((bucket[inside], obj[inside]))
    o, b = obj[inside][order], bucket[inside][order]
    first = np.flatnonzero(np.r_[True, (o[1:] != o[:-1]) | (b[1:] != b[:-1])])
    cell_o, cell_b = o[first], b[first]
    c = np.diff(np.r_[first, o.size])
    following = np.zeros_like(c)
    adjacent = (cell_o[1:] == cell_o[:-1]) & (cell_b[1:] == cell_b[:-1] + 1)
    following[:-1][adjacent] = c[1:][adjacent]
    owners, at = np.unique(cell_o, return_index=True)
    per_object = np.add.reduceat(c * (c - 1) // 2 + c * following, at)
    return owners[per_object > cap].astype(np.int64)


#: What a pairing's numpy arrays take per action of one partition, at most: the five
#: per-action arrays of :class:`SlotActions` (33 bytes), the masked arrays they are read
#: from (about 40), the copy :meth:`SlotActions.moved` makes (24) and
#: :func:`~concerted.fastpath.message_matches`'s order, keys and positions (about 40).
BYTES_PER_ACTION = 160
#: The share of DuckDB's memory limit that one partition's arrays may take: the
#: process holds DuckDB's buffers beside them.
PARTITION_SHARE = 0.125


def memory_limit_bytes(con: duckdb.DuckDBPyConnection) -> int:
    """DuckDB's ``memory_limit`` on ``con``, in bytes, as DuckDB shows it (cut to a
    tenth of a GiB: 2 GB is 1.86 GiB, shown as 1.8).

    >>> con = duckdb.connect()
    >>> _ = con.execute("SET memory_limit = '2GB'")
    >>> memory_limit_bytes(con) // 2**20
    1843
    """
    row = con.sql("SELECT current_setting('memory_limit')").fetchone()
    text = str(row[0]) if row else ""
    units = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50}
    units |= {"KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15}
    number, _, unit = text.strip().partition(" ")
    try:
        return round(float(number) * units[unit or "bytes"])
    except (KeyError, ValueError) as error:
        raise ConfigError(f"unreadable DuckDB memory_limit {text!r}") from error


def partitions_for(actions: int, memory_limit: int) -> int:
    """How many hash partitions of objects keep one partition's numpy arrays (about
    :data:`BYTES_PER_ACTION` per action) within :data:`PARTITION_SHARE` of
    ``memory_limit`` bytes: 1 for 10^6 actions under 4 GB, 3 for 10^7 under 6 GB.

    >>> partitions_for(1_000_000, 4 * 10**9), partitions_for(10_000_000, 6 * 10**9)
    (1, 3)
    >>> partitions_for(100_000_000, 12 * 10**9)
    11
    """
    budget = max(1, int(memory_limit * PARTITION_SHARE))
    return max(1, -(-int(actions) * BYTES_PER_ACTION // budget))


def partition_of(oid: str, partitions: int) -> str:
    """SQL: the partition (0 to ``partitions - 1``) of the non-negative object number
    ``oid``; every action of an object falls in the same one, so pairs never cross.

    >>> duckdb.sql(f"SELECT {partition_of('41', 4)}").fetchone()
    (1,)
    """
    return f"({oid} % {max(1, int(partitions))})"


def merge_pair_counts(
    parts: Iterable[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Counts per pair from partitions, each given as its pair codes (sorted, distinct)
    and their counts: every code once, sorted, with its counts summed over the
    partitions. One partition comes back as it is.

    >>> pairs, counts = merge_pair_counts([
    ...     (np.array([3, 7]), np.array([1, 2])), (np.array([2, 7]), np.array([5, 1]))])
    >>> pairs.tolist(), counts.tolist()
    ([2, 3, 7], [5, 1, 3])
    """
    got = [(p, c) for p, c in parts if p.size]
    if not got:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if len(got) == 1:
        return got[0]
    pair = np.concatenate([p for p, _ in got])
    count = np.concatenate([c for _, c in got])
    order = np.argsort(pair, kind="stable")
    pair, count = pair[order], count[order]
    starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]])
    return pair[starts], np.add.reduceat(count, starts)


@dataclass(frozen=True)
class SlotActions:
    """The actions with an object of one partition of :class:`Slots`: ``slot``,
    ``obj``, ``t`` (microseconds), ``bucket`` (one window wide, as :func:`pair_keys`
    numbers it) and ``timed`` (whether it has a time)."""

    slot: npt.NDArray[np.int64]
    obj: npt.NDArray[np.int64]
    t: npt.NDArray[np.int64]
    bucket: npt.NDArray[np.int64]
    timed: npt.NDArray[np.bool_]

    def moved(
        self,
        account_of: npt.NDArray[np.int64],
        active: npt.NDArray[np.bool_],
        cap: int | None,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """These actions in a copy where each slot goes to account ``account_of[slot]``
        (-1: dropped), those of ``active`` accounts, with a time and on objects not
        over ``cap``; as (account, object, time)."""
        account = account_of[self.slot]
        keep = account >= 0
        keep[keep] = active[account[keep]]
        obj, timed = self.obj[keep], self.timed[keep]
        if cap is not None:
            timed &= ~np.isin(obj, viral_of_arrays(obj, self.bucket[keep], cap))
        return account[keep][timed], obj[timed], self.t[keep][timed]


@dataclass(frozen=True)
class Slots:
    """Actions numbered once for relabelled copies (:func:`numbered_slots`). By slot
    number (0 unused; a slot is a distinct ``platform, source_id, actor_id``):
    ``platform`` its platform's rank, ``by_actor`` its rank in (platform, account,
    source) order, ``own`` its account's number (-1: none), ``whole`` whether it has
    no missing value, ``count`` its actions of the kinds. The actions with an object
    stay in DuckDB (table ``actions``: ``sid, oid, t, b, part``), in ``partitions``
    hash partitions of their objects, read one partition at a time
    (:meth:`parts`); with one partition they are read once and kept. ``slots`` and
    ``accounts`` (``platform, actor_id, aid``) are the tables on the connection.
    """

    slots: str
    accounts: str
    platform: npt.NDArray[np.int64]
    by_actor: npt.NDArray[np.int64]
    own: npt.NDArray[np.int64]
    whole: npt.NDArray[np.bool_]
    count: npt.NDArray[np.int64]
    actions: str
    partitions: int
    con: duckdb.DuckDBPyConnection
    kept: list[SlotActions] = field(default_factory=list)

    def _read(self, part: int | None) -> SlotActions:
        where = f"WHERE part = {int(part)}" if part is not None else ""
        base = self.con.sql(f"SELECT sid, oid, t, b FROM {self.actions} {where}").fetchnumpy()
        # An action without a time never pairs, but counts in its object's bucket of
        # its own.
        t = base.pop("t")
        timed = ~np.ma.getmaskarray(t)
        return SlotActions(
            slot=np.asarray(base.pop("sid"), dtype=np.int64),
            obj=np.asarray(base.pop("oid"), dtype=np.int64),
            t=np.ma.filled(t, 0).astype(np.int64),
            bucket=np.ma.filled(base.pop("b"), np.iinfo(np.int64).min).astype(np.int64),
            timed=timed,
        )

    def parts(self) -> Iterator[SlotActions]:
        """The actions, one partition at a time."""
        if self.partitions == 1:
            if not self.kept:
                self.kept.append(self._read(None))
            yield self.kept[0]
            return
        for part in range(self.partitions):
            yield self._read(part)

    def relabelled(
        self, slot_hash: npt.ArrayLike, actor_hash: npt.ArrayLike
    ) -> npt.NDArray[np.int64]:
        """The account of each slot under the relabel null's draw, given per slot (by
        number, from 1) the hashes it orders slots and accounts by: within each
        platform, the slots in order of ``slot_hash`` (then source and account) go to
        the accounts of the slots in order of ``actor_hash`` (then account and
        source), the i-th to the i-th. -1 where the slot loses its actions."""
        by_slot = np.arange(self.own.size, dtype=np.int64)
        slots = np.lexsort((by_slot, _after_zero(slot_hash), self.platform))
        actors = np.lexsort((self.by_actor, _after_zero(actor_hash), self.platform))
        # Both orders run platform by platform, each platform as many slots.
        account = np.empty_like(self.own)
        account[slots] = self.own[actors]
        return np.where(self.whole, account, -1)

    def moved(
        self, account_of: npt.NDArray[np.int64], *, min_actions: int, cap: int | None
    ) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]]:
        """The actions to pair in a copy where each slot goes to account
        ``account_of[slot]`` (-1: its actions dropped): those of accounts with
        ``min_actions`` actions (objectless ones count), with a time, and on objects
        not over ``cap`` (:func:`viral_of_arrays`); as (account, object, time), one
        partition at a time."""
        moved = account_of >= 0
        active = np.bincount(account_of[moved], weights=self.count[moved]) >= min_actions
        for part in self.parts():
            yield part.moved(account_of, active, cap)


def _after_zero(values: npt.ArrayLike) -> npt.NDArray[np.uint64]:
    return np.concatenate((np.zeros(1, dtype=np.uint64), np.asarray(values, dtype=np.uint64)))


@contextmanager
def numbered_slots(
    con: duckdb.DuckDBPyConnection,
    actions: str,
    kinds: tuple[str, ...] | None,
    window: float,
    *,
    partitions: int | None = None,
) -> Iterator[Slots]:
    """Number the slots of ``actions`` (every distinct ``platform, source_id,
    actor_id``, missing values included, as the relabel null's draw counts them;
    ``sid`` their rank in that order) and their accounts, and keep the actions of
    ``kinds`` in whole slots as integers in ``partitions`` hash partitions of their
    objects (by default as many as :func:`partitions_for` gives for their number and
    the connection's memory limit) (:class:`Slots`); the tables are dropped on exit."""
    n = next(_ids)
    slots, accounts = f"_slots_{n}", f"_slots_accounts_{n}"
    objects, numbered = f"_slots_objects_{n}", f"_slots_actions_{n}"
    kept = (
        f"(SELECT * FROM {actions} WHERE platform IS NOT NULL AND source_id IS NOT NULL "
        f"AND actor_id IS NOT NULL {_kinds_filter(kinds)})"
    )
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {accounts} AS
                SELECT platform, actor_id, (row_number() OVER ())::BIGINT AS aid
                FROM (SELECT DISTINCT platform, actor_id FROM {actions}
                      WHERE platform IS NOT NULL AND actor_id IS NOT NULL);
                CREATE OR REPLACE TEMP TABLE {slots} AS
                SELECT s.*, coalesce(u.aid, -1) AS own FROM (
                    SELECT platform, source_id, actor_id,
                           (row_number() OVER (ORDER BY platform, source_id, actor_id))::BIGINT
                               AS sid,
                           (row_number() OVER (ORDER BY platform, actor_id, source_id))::BIGINT
                               AS by_actor,
                           (dense_rank() OVER (ORDER BY platform))::BIGINT AS platform_rank
                    FROM (SELECT DISTINCT platform, source_id, actor_id FROM {actions})) s
                LEFT JOIN {accounts} u USING (platform, actor_id);
                CREATE OR REPLACE TEMP TABLE {objects} AS
                SELECT kind, object_id, (row_number() OVER ())::BIGINT AS oid
                FROM (SELECT DISTINCT kind, object_id FROM {kept}
                      WHERE kind IS NOT NULL AND object_id IS NOT NULL);"""
        )
        got = con.sql(
            f"""SELECT platform_rank, by_actor, own, platform IS NOT NULL
                       AND source_id IS NOT NULL AND actor_id IS NOT NULL AS whole
                FROM {slots} ORDER BY sid"""
        ).fetchnumpy()
        # An action without an object counts towards min_actions (the slots' counts);
        # only those with one are kept to pair, in partitions of their objects.
        counted = con.sql(
            f"""SELECT s.sid, count(*) AS n, count(o.oid) AS paired
                FROM {kept} x JOIN {slots} s USING (platform, source_id, actor_id)
                LEFT JOIN {objects} o USING (kind, object_id) GROUP BY s.sid"""
        ).fetchnumpy()
        parts = partitions
        if parts is None:
            total = int(np.sum(counted["paired"])) if len(counted["paired"]) else 0
            parts = partitions_for(total, memory_limit_bytes(con))
        if parts < 1:
            raise ConfigError(f"partitions must be at least 1, got {parts}")
        order = "ORDER BY part" if parts > 1 else ""
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {numbered} AS
                SELECT s.sid, o.oid, epoch_us(x.ts) AS t,
                       epoch_us(x.ts) // {max(1, _micros(window))} AS b,
                       {partition_of("o.oid", parts)} AS part
                FROM {kept} x JOIN {slots} s USING (platform, source_id, actor_id)
                JOIN {objects} o USING (kind, object_id) {order}"""
        )
        count = np.zeros(len(got["own"]) + 1, dtype=np.int64)
        count[np.asarray(counted["sid"], dtype=np.int64)] = counted["n"]
        del counted

        def first(values: Any, fill: int | bool, dtype: Any) -> Any:
            return np.r_[np.array([fill], dtype=dtype), np.asarray(values, dtype=dtype)]

        yield Slots(
            slots=slots,
            accounts=accounts,
            platform=first(got["platform_rank"], 0, np.int64),
            by_actor=first(got["by_actor"], 0, np.int64),
            own=first(got["own"], -1, np.int64),
            whole=first(got["whole"], False, np.bool_),
            count=count,
            actions=numbered,
            partitions=int(parts),
            con=con,
        )
    finally:
        for table in (slots, accounts, objects, numbered):
            con.execute(f"DROP TABLE IF EXISTS {table}")
