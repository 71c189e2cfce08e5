"""The DuckDB engine: the heavy stages on the case's own connection.

It delegates to the code that defines each stage: the actions' SQL of
:mod:`concerted.actions`, the co-action join of :mod:`concerted.detectors.coaction`,
and here the stratified null's per-day sums (:data:`_EXPECTATIONS`), whose formula
:meth:`~concerted.significance.Significance.test_stratified` gives. Nothing is copied
in or out: the relations it is given and gives back are the connection's.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from concerted.actions import ensure_macros, from_posts, from_reports, from_roles
from concerted.detectors.coaction import CoAction, CoActionLayers
from concerted.detectors.columnar import arrow_table
from concerted.detectors.pairing import PairedRows
from concerted.engines import strata
from concerted.engines.base import Paired, stratum_filter
from concerted.errors import ConfigError

__all__ = ["DuckDBEngine"]

_ids = itertools.count()

_DERIVE: Mapping[str, Callable[[str], str]] = {
    "posts": from_posts,
    "reports": from_reports,
    "roles": from_roles,
}

# Expected counts are summed as decimals: exact, so a pair's expectation does not
# depend on the order a parallel sum happens to take.
_EXACT = "DECIMAL(38, 22)"

# Per stratum ``s``: each account's posts ``n`` (act), each pair's meetings ``w`` and
# whether all of them straddle two strata (met), the stratum's rate of meetings per
# possible pair (rate); then per pair its meetings and its expectation ``lam``. The
# accounts (ids) and each account's sources (src) are numbered once, so that the
# events are grouped into meetings on integers (ev, met) and the largest join, every
# pair against both its accounts' strata, runs on integers; the names come back in
# the last step. An account or source of the events that no action of these kinds
# has is numbered too (_EXTEND): such an account has no posts, so its pairs expect
# only their straddling meetings. A source is numbered within its account (the
# meetings count one account's distinct sources), so its number takes the bits of the
# busiest account's sources, not of all of them, and the packed keys of _meetings stay
# within 63 bits as the case grows (at 10^7 actions over 140 days: 22 bits for 4.2M
# sources numbered together, which leaves none to spare, 13 for the busiest account's
# 4,887).
_NUMBERS = """
    CREATE OR REPLACE TEMP TABLE {act} AS
    SELECT platform, actor_id, epoch_us(ts) // {micros} AS s,
           count(DISTINCT source_id)::DOUBLE AS n
    FROM {actions}
    WHERE object_id IS NOT NULL AND actor_id IS NOT NULL {where}
    GROUP BY ALL;
    CREATE OR REPLACE TEMP TABLE {ids} AS
    SELECT platform, actor_id, (row_number() OVER ())::INTEGER AS aid
    FROM (SELECT DISTINCT platform, actor_id FROM {act});
    CREATE OR REPLACE TEMP TABLE {act_ids} AS
    SELECT i.aid, a.s, a.n FROM {act} a JOIN {ids} i USING (platform, actor_id);
    CREATE OR REPLACE TEMP TABLE {src} AS
    SELECT platform, actor_id, source_id, i.aid,
           (row_number() OVER (PARTITION BY i.aid))::INTEGER AS sid
    FROM (SELECT DISTINCT platform, actor_id, source_id FROM {actions}
          WHERE object_id IS NOT NULL AND actor_id IS NOT NULL {where}) a
    JOIN {ids} i USING (platform, actor_id);
"""

# Each event as integers: its accounts' numbers, their sources' numbers, its stratum
# and whether it straddles two strata. A source no action numbered is NULL here, and
# the events are read again once _EXTEND has numbered it. (Grouped in the same query,
# the meetings of the demo's 4M co-action events took 7.8 CPU s, against 5.5 for this
# table and the grouping of it.)
_EVENTS = """
    CREATE OR REPLACE TEMP TABLE {ev} AS
    SELECT x.aid AS aid_1, x.sid AS sid_1, y.aid AS aid_2, y.sid AS sid_2,
           epoch_us(least(e.ts_1, e.ts_2)) // {micros} AS s,
           epoch_us(e.ts_1) // {micros} <> epoch_us(e.ts_2) // {micros} AS straddles
    FROM {events} e
    LEFT JOIN {src} x
      ON x.platform = e.platform_1 AND x.actor_id = e.account_1 AND x.source_id = e.source_1
    LEFT JOIN {src} y
      ON y.platform = e.platform_2 AND y.actor_id = e.account_2 AND y.source_id = e.source_2
"""

_EXTEND = """
    INSERT INTO {ids}
    SELECT platform, actor_id,
           ((SELECT coalesce(max(aid), 0) FROM {ids}) + row_number() OVER ())::INTEGER
    FROM (SELECT platform_1 AS platform, account_1 AS actor_id FROM {events}
          UNION SELECT platform_2, account_2 FROM {events}) e
    ANTI JOIN {ids} i USING (platform, actor_id);
    INSERT INTO {src}
    SELECT e.platform, e.actor_id, e.source_id, i.aid,
           ((SELECT coalesce(max(sid), 0) FROM {src})
            + row_number() OVER (PARTITION BY i.aid))::INTEGER
    FROM (SELECT platform_1 AS platform, account_1 AS actor_id, source_1 AS source_id
          FROM {events}
          UNION SELECT platform_2, account_2, source_2 FROM {events}) e
    JOIN {ids} i USING (platform, actor_id)
    ANTI JOIN {src} k USING (platform, actor_id, source_id);
"""

# The same numbers and events from the integer tables of the pairings that made the
# events (Paired.numbered), without reading one text column of the events: every
# account of the pairings numbered in (platform, actor_id) order, as each pairing
# numbers its own, so the events keep their orientation (_ACCOUNTS); each pairing's
# numbers mapped to those ({map}_i); each account's sources numbered once over every
# pairing's rows (_SOURCES), a source that two kinds share being one post; each
# pairing's rows as integers ({numbered}_i), and the accounts' posts per stratum
# (act_ids) from them. The pairings' rows hold every action of their kinds, so the
# posts are those _NUMBERS counts.
_ACCOUNTS = """
    CREATE OR REPLACE TEMP TABLE {ids} AS
    SELECT platform, actor_id, (row_number() OVER (ORDER BY platform, actor_id))::INTEGER AS aid
    FROM ({accounts});
"""
_MAP = """
    CREATE OR REPLACE TEMP TABLE {map} AS
    SELECT u.aid AS local, i.aid FROM {accounts} u JOIN {ids} i USING (platform, actor_id);
"""
_SOURCES = """
    CREATE OR REPLACE TEMP TABLE {src} AS
    SELECT aid, source_id, (row_number() OVER (PARTITION BY aid))::INTEGER AS sid
    FROM (SELECT DISTINCT aid, source_id FROM ({sources}));
"""
_NUMBERED_ROWS = """
    CREATE OR REPLACE TEMP TABLE {numbered} AS
    SELECT r.rid, m.aid, k.sid, r.t FROM {rows} r
    JOIN {map} m ON m.local = r.aid
    JOIN {src} k ON k.aid = m.aid AND k.source_id = r.source_id;
"""
_NUMBERED_ACT = """
    CREATE OR REPLACE TEMP TABLE {act_ids} AS
    SELECT aid, t // {micros} AS s, count(DISTINCT sid)::DOUBLE AS n
    FROM ({numbered_rows}) GROUP BY ALL;
"""
_NUMBERED_EVENTS = """
    SELECT x.aid AS aid_1, x.sid AS sid_1, y.aid AS aid_2, y.sid AS sid_2,
           least(p.t_1, p.t_2) // {micros} AS s,
           p.t_1 // {micros} <> p.t_2 // {micros} AS straddles
    FROM (SELECT r_1, r_2, t_1, t_2 FROM ({pairs})) p
    JOIN {numbered} x ON x.rid = p.r_1
    JOIN {numbered} y ON y.rid = p.r_2
"""

# Each pair's meetings in each stratum: the fewer of its two accounts' sources that
# met, and whether every meeting straddles two strata. This grouping, with its two
# distinct counts, is the plain form; _meetings gives the same rows from sorted keys.
_MEETINGS = """
    CREATE OR REPLACE TEMP TABLE {met} AS
    SELECT aid_1, aid_2, s, least(count(DISTINCT sid_1), count(DISTINCT sid_2)) AS w,
           bool_and(straddles) AS straddles
    FROM {ev} GROUP BY ALL
"""

# Each event's pair and stratum packed into one integer ``g``, with the number of one of
# its two sources below; the first source's key has whether the event does not
# straddle as its lowest bit. Sorted, a key's runs are its pair's meetings in a stratum.
_KEY = """
    SELECT {key} FROM (
        SELECT (((aid_1::BIGINT << {aid_bits}) | aid_2) << {s_bits} | (s - {s_min}))
               << {sid_bits} AS g, sid_1, sid_2, straddles
        FROM {ev} {where})
"""
_FIRST_KEY = "(g | sid_1) << 1 | (NOT straddles)::BIGINT"
_SECOND_KEY = "g | sid_2"

# The packed keys are read into numpy only while they fit in 63 bits, and at most this
# many events at a time (numpy holds about 33 bytes an event at once: 0.5 GiB here):
# beyond, the events are grouped in runs of first accounts that hold at most this many
# (a meeting's key starts with its first account, so no meeting spans two runs), and
# DuckDB groups them only when one account alone holds more.
_SORTED_EVENTS = 1 << 24

# Per stratum its rate of meetings per possible pair (rate); per pair its meetings and
# what its straddling meetings expect (pairs).
_RATES = """
    CREATE OR REPLACE TEMP TABLE {rate} AS
    WITH strata AS (
        SELECT s, (sum(n) * sum(n) - sum(n * n)) / 2 AS possible
        FROM {act} GROUP BY ALL)
    SELECT s, sum(w) / greatest(any_value(possible), 1) AS r
    FROM {met} JOIN strata USING (s) GROUP BY ALL;
    CREATE OR REPLACE TEMP TABLE {pairs} AS
    SELECT aid_1, aid_2, sum(w) AS w,
           sum(CASE WHEN straddles THEN (r.r * w)::{exact} ELSE 0 END) AS straddling
    FROM {met} m JOIN {rate} r USING (s) GROUP BY ALL;
"""

# What each pair expects in the strata both its accounts posted in: every pair joined
# to its accounts' strata. The plain form; strata.shared gives the same sums, exactly,
# from one merge of the two accounts' strata per pair.
_SHARED = """
    CREATE OR REPLACE TEMP TABLE {shared} AS
    SELECT p.aid_1, p.aid_2, sum((a.n * b.n * r.r)::{exact}) AS lam
    FROM (SELECT aid_1, aid_2 FROM {pairs}) p
    JOIN {act_ids} a ON a.aid = p.aid_1
    JOIN {act_ids} b ON b.aid = p.aid_2 AND b.s = a.s
    JOIN {rate} r ON r.s = a.s
    GROUP BY ALL;
"""

# Each account's strata, in order, with the stratum's rate where a pair met in it, for
# strata.Runs: the strata numbered by rank (a few thousand), posts as integers.
_RUNS = """
    SELECT a.aid, k.rank, a.n::INTEGER AS n FROM {act_ids} a
    JOIN (SELECT s, (row_number() OVER (ORDER BY s) - 1)::INTEGER AS rank
          FROM (SELECT DISTINCT s FROM {act_ids} WHERE s IS NOT NULL)) k USING (s)
    ORDER BY a.aid, k.rank
"""
_RANKED_RATES = """
    SELECT r.r FROM (SELECT DISTINCT s FROM {act_ids} WHERE s IS NOT NULL) k
    LEFT JOIN {rate} r USING (s) ORDER BY k.s
"""

# The sums strata.shared gives, in units of 10^-22 (high * 2^53 + low), as decimals.
_SHARED_UNITS = f"""
    SELECT aid_1, aid_2,
           ((high::DECIMAL(38, 0) * {1 << 53}::DECIMAL(38, 0) + low::DECIMAL(38, 0))
            * 0.{"0" * 21}1::{_EXACT}) AS lam
    FROM {{batch}}
"""

# Each pair's meetings and expectation, with its accounts' names back.
_RESULT = """
    CREATE OR REPLACE TEMP TABLE {table} AS
    SELECT i1.platform AS platform_1, i1.actor_id AS account_1,
           i2.platform AS platform_2, i2.actor_id AS account_2, p.w::DOUBLE AS w,
           (coalesce(s.lam, 0) + p.straddling)::DOUBLE AS lam
    FROM {pairs} p
    JOIN {ids} i1 ON i1.aid = p.aid_1
    JOIN {ids} i2 ON i2.aid = p.aid_2
    LEFT JOIN {shared} s USING (aid_1, aid_2);
"""

# Pairs read at a time by _compiled_shared.
_PAIRS_AT_ONCE = 1 << 21

_SCRATCH = ("act", "ids", "act_ids", "src", "ev", "met", "rate", "pairs", "shared")


def _meetings(
    con: duckdb.DuckDBPyConnection, ev: str, met: str, *, limit: int = _SORTED_EVENTS
) -> None:
    """Table ``met`` of :data:`_MEETINGS` from the numbered events ``ev``: the same rows,
    grouped by sorting packed keys in numpy rather than by DuckDB's two distinct counts
    (on the demo's 7M events, 4.6 to 6.6 CPU s for DuckDB's grouping, 2.7 for this,
    reading the keys included), ``limit`` events or fewer at a time. Events whose keys
    need more than 63 bits, or one first account with more than ``limit`` events, are
    grouped by DuckDB.
    """
    got = con.sql(
        f"""SELECT count(*), max(greatest(aid_1, aid_2)), max(greatest(sid_1, sid_2)),
                   min(s), max(s) FROM {ev}"""
    ).fetchone()
    count, aid, sid, s_min, s_max = got if got else (0, None, None, None, None)
    if not count or aid is None or sid is None or s_min is None or s_max is None:
        con.execute(_MEETINGS.format(ev=ev, met=met))
        return
    bits = {
        "aid_bits": int(aid).bit_length(),
        "sid_bits": int(sid).bit_length(),
        "s_bits": int(s_max - s_min).bit_length(),
    }
    wide = 2 * bits["aid_bits"] + bits["s_bits"] + bits["sid_bits"] + 1 > 63
    runs = [] if wide else _runs(con, ev, limit) if count > limit else [None]
    if not runs:
        con.execute(_MEETINGS.format(ev=ev, met=met))
        return
    for i, run in enumerate(runs):
        where = "" if run is None else f"WHERE aid_1 BETWEEN {run[0]} AND {run[1]}"
        rows = _grouped(con, {"ev": ev, "where": where, "s_min": int(s_min), **bits})
        if i == 0:
            arrow_table(con, rows, met)
        else:
            name = f"{met}_arrow"
            con.register(name, rows)
            try:
                con.execute(f"INSERT INTO {met} SELECT * FROM {name}")
            finally:
                con.unregister(name)


def _runs(con: duckdb.DuckDBPyConnection, ev: str, limit: int) -> list[tuple[int, int]]:
    """Runs of first accounts (first, last) in order, each with at most ``limit`` events
    of ``ev``, as few as that allows; none if one account alone has more.

    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE ev AS SELECT unnest([1, 1, 2, 3, 3, 3, 7]) AS aid_1")
    >>> _runs(con, "ev", 3), _runs(con, "ev", 4), _runs(con, "ev", 2)
    ([(1, 2), (3, 3), (7, 7)], [(1, 2), (3, 7)], [])
    """
    got = con.sql(f"SELECT aid_1, count(*) AS n FROM {ev} GROUP BY aid_1 ORDER BY aid_1")
    column = got.fetchnumpy()
    accounts = np.asarray(column["aid_1"], dtype=np.int64)
    counts = np.asarray(column["n"], dtype=np.int64)
    if not counts.size or counts.max() > limit:
        return []
    runs: list[tuple[int, int]] = []
    start, held = 0, 0
    for i, n in enumerate(counts.tolist()):
        if held + n > limit:
            runs.append((int(accounts[start]), int(accounts[i - 1])))
            start, held = i, 0
        held += n
    runs.append((int(accounts[start]), int(accounts[-1])))
    return runs


def _grouped(con: duckdb.DuckDBPyConnection, packed: dict[str, Any]) -> pa.Table:
    """The meetings of the events of ``packed["ev"]`` that ``packed["where"]`` keeps, as
    :data:`_MEETINGS` lays them out, from their keys sorted in numpy."""
    s_bits, aid_bits, sid_bits = packed["s_bits"], packed["aid_bits"], packed["sid_bits"]
    first = _keys(con, _KEY.format(key=_FIRST_KEY, **packed))
    # The lowest bit is set where an event does not straddle: a group straddles when
    # none of its events sets it.
    flat = (first & 1).astype(bool)
    first >>= 1
    groups, sources_1, starts = _distinct(first, sid_bits)
    del first
    straddles = ~np.logical_or.reduceat(flat, starts)
    del flat, starts
    second = _keys(con, _KEY.format(key=_SECOND_KEY, **packed))
    sources_2 = _distinct(second, sid_bits)[1]
    del second
    s_mask = (1 << s_bits) - 1
    aid_mask = (1 << aid_bits) - 1
    return pa.table(
        {
            "aid_1": pa.array((groups >> (s_bits + aid_bits)).astype(np.int32)),
            "aid_2": pa.array(((groups >> s_bits) & aid_mask).astype(np.int32)),
            "s": pa.array((groups & s_mask) + packed["s_min"]),
            "w": pa.array(np.minimum(sources_1, sources_2)),
            "straddles": pa.array(straddles),
        }
    )


def _keys(con: duckdb.DuckDBPyConnection, query: str) -> npt.NDArray[np.int64]:
    """The one BIGINT column of ``query``, sorted."""
    column = con.sql(query).fetchnumpy()
    keys = np.asarray(column[next(iter(column))], dtype=np.int64)
    keys.sort()
    return keys


def _starts(groups: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
    """Where each run of equal values in sorted ``groups`` starts."""
    first = np.empty(groups.size, dtype=bool)
    first[:1] = True
    np.not_equal(groups[1:], groups[:-1], out=first[1:])
    return np.flatnonzero(first)


def _distinct(
    keys: npt.NDArray[np.int64], low: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.intp]]:
    """Sorted ``keys``' groups (``keys >> low``), how many distinct keys each holds, and
    where each starts.

    >>> groups, counts, starts = _distinct(np.array([4, 4, 5, 9, 12, 12, 13]), 2)
    >>> groups.tolist(), counts.tolist(), starts.tolist()
    ([1, 2, 3], [2, 1, 2], [0, 3, 4])
    """
    groups = keys >> low
    starts = _starts(groups)
    fresh = np.empty(keys.size, dtype=bool)
    fresh[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=fresh[1:])
    return groups[starts], np.add.reduceat(fresh, starts, dtype=np.int64), starts


#: The largest sum strata.shared holds (2^62 multiples of 2^53 units of 10^-22, about
#: 4.2e12): beyond, the SQL sums (DuckDB's decimals go to 1e16).
_MOST_SHARED = 2.0**62 * 2.0**53 * 1e-22


def _overflows(runs: strata.Runs) -> bool:
    """Whether a pair's sum could pass :data:`_MOST_SHARED`: the most posts squared,
    times the highest rate, times the most strata an account holds."""
    rated = runs.r[~np.isnan(runs.r)]
    if not rated.size:
        return False
    longest = int(np.diff(runs.starts).max())
    return float(runs.n.max()) ** 2 * float(rated.max()) * longest >= _MOST_SHARED


def _compiled_shared(con: duckdb.DuckDBPyConnection, names: dict[str, str]) -> None:
    """Table ``names["shared"]`` as :data:`_SHARED` makes it, by :func:`strata.shared`:
    every account's strata read once, in order, then the pairs a slice at a time."""
    rates = con.sql(_RANKED_RATES.format(**names)).fetchnumpy()["r"]
    rate = np.ma.filled(np.ma.asarray(rates, dtype=np.float64), np.nan)
    got = con.sql(_RUNS.format(**names)).fetchnumpy()
    aid = np.asarray(got["aid"], dtype=np.int64)
    rank = np.asarray(got["rank"], dtype=np.int64)
    del got["aid"]
    accounts = int(aid[-1]) + 1 if aid.size else 0
    runs = strata.Runs(
        starts=np.searchsorted(aid, np.arange(accounts + 1)),
        s=rank,
        n=np.asarray(got.pop("n"), dtype=np.float64),
        r=rate[rank] if rank.size else np.zeros(0),
    )
    del aid
    shared = names["shared"]
    if runs.n.size and _overflows(runs):
        con.execute(_SHARED.format(exact=_EXACT, **names))
        return
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {shared} (aid_1 INTEGER, aid_2 INTEGER, lam {_EXACT})"
    )
    counted = con.sql(f"SELECT count(*) FROM {names['pairs']}").fetchone()
    total = int(counted[0]) if counted else 0
    batch = f"{shared}_batch"
    for start in range(0, total, _PAIRS_AT_ONCE):
        pairs = con.sql(
            f"SELECT aid_1, aid_2 FROM {names['pairs']} "
            f"WHERE rowid >= {start} AND rowid < {start + _PAIRS_AT_ONCE}"
        ).fetchnumpy()
        first = np.asarray(pairs["aid_1"], dtype=np.int64)
        second = np.asarray(pairs["aid_2"], dtype=np.int64)
        high, low = strata.shared(runs, first, second)
        some = (high | low) != 0
        con.register(
            batch,
            pa.table(
                {
                    "aid_1": pa.array(first[some].astype(np.int32)),
                    "aid_2": pa.array(second[some].astype(np.int32)),
                    "high": pa.array(high[some]),
                    "low": pa.array(low[some]),
                }
            ),
        )
        try:
            con.execute(f"INSERT INTO {shared} {_SHARED_UNITS.format(batch=batch)}")
        finally:
            con.unregister(batch)


def _numbered(
    events: str | Paired, actions: str, kinds: tuple[str, ...] | None
) -> tuple[PairedRows, ...]:
    """The integer tables behind ``events`` when they give the expectations of
    ``actions`` of ``kinds``: a :class:`Paired` of that relation whose layers pair
    exactly those kinds (one layer of every kind, when ``kinds`` is None), so that
    their rows are the actions the posts are counted over. None otherwise.

    >>> _numbered("events", "actions", None)
    ()
    """
    if not isinstance(events, Paired) or not events.numbered or events.actions != actions:
        return ()
    paired = [part.keys.kinds for part in events.numbered]
    if kinds is None:
        return events.numbered if None in paired else ()
    if None in paired or {k for p in paired if p for k in p} != set(kinds):
        return ()
    return events.numbered


class DuckDBEngine:
    """The heavy stages in DuckDB, on connection ``con``.

    >>> con = duckdb.connect()
    >>> DuckDBEngine(con).name
    'duckdb'
    """

    name: ClassVar[str] = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def derive_actions(self, table: str, rows: str, into: str = "actions") -> int:
        if table not in _DERIVE:
            raise ConfigError(f"actions are derived from {', '.join(_DERIVE)}, not from {table!r}")
        # The normal forms of links and texts are SQL macros; a case's connection has
        # them already (Store).
        ensure_macros(self.con)
        inserted = self.con.execute(f"INSERT INTO {into} {_DERIVE[table](rows)}").fetchone()
        return int(inserted[0]) if inserted else 0

    def pair(self, actions: str, layers: Sequence[CoAction]) -> Paired:
        if not layers:
            raise ConfigError("a pairing needs at least one co-action layer")
        found, numbered = CoActionLayers(tuple(layers)).pairing(self.con, actions)
        return Paired(
            edges=f"({found.edges.sql_query()})",
            events=f"({found.events.sql_query()})",
            notes=found.notes,
            temporary=found.temporary,
            events_of=found.events_of,
            numbered=numbered,
            actions=actions,
        )

    def expectations(
        self,
        events: str | Paired,
        actions: str,
        *,
        stratum: float,
        kinds: tuple[str, ...] | None = None,
        plain: bool = False,
    ) -> str:
        """:meth:`Engine.expectations`. A :class:`Paired` this engine made of ``actions``
        with these ``kinds`` is read from its integer tables (:attr:`Paired.numbered`),
        any other events from their text columns: the same rows. ``plain`` sums each
        pair's shared strata by a join in SQL instead of
        :func:`concerted.engines.strata.shared` (the same sums, bit for bit: the
        reference the compiled one is held to)."""
        where = stratum_filter(stratum, kinds)
        table = f"_engine_expectations_{next(_ids)}"
        names = {k: f"{table}_{k}" for k in _SCRATCH}
        given = {
            "micros": round(stratum * 1_000_000),
            "where": where,
            "actions": actions,
            "exact": _EXACT,
            "table": table,
            **names,
        }
        parts = _numbered(events, actions, kinds)
        if parts:
            self._numbered_events(parts, given)
            given["act"] = names["act_ids"]
        else:
            given["events"] = events.events if isinstance(events, Paired) else events
            self._text_events(given)
        _meetings(self.con, names["ev"], names["met"])
        self.con.execute(_RATES.format(**given))
        if plain:
            self.con.execute(_SHARED.format(**given))
        else:
            _compiled_shared(self.con, names)
        self.con.execute(_RESULT.format(**given))
        for name in names.values():
            self.con.execute(f"DROP TABLE IF EXISTS {name}")
        return table

    def _text_events(self, given: dict[str, Any]) -> None:
        """The numbers (:data:`_NUMBERS`) and the numbered events (:data:`_EVENTS`) of
        ``given["events"]``, read from its text columns."""
        self.con.execute(_NUMBERS.format(**given))
        self.con.execute(_EVENTS.format(**given))
        missing = self.con.sql(
            f"SELECT count(*) FROM {given['ev']} WHERE sid_1 IS NULL OR sid_2 IS NULL"
        ).fetchone()
        if missing and missing[0]:
            self.con.execute(_EXTEND.format(**given))
            self.con.execute(_EVENTS.format(**given))

    def _numbered_events(self, parts: Sequence[PairedRows], given: dict[str, Any]) -> None:
        """The numbers and the numbered events (``ids``, ``act_ids``, ``ev``) of the
        pairings' integer tables ``parts`` (:data:`_ACCOUNTS` to
        :data:`_NUMBERED_EVENTS`); the tables it needs only on the way are dropped."""
        ids, src = given["ids"], given["src"]
        maps = [f"{given['table']}_map_{i}" for i in range(len(parts))]
        numbered = [f"{given['table']}_numbered_{i}" for i in range(len(parts))]
        accounts = " UNION ".join(
            f"SELECT platform, actor_id FROM {p.keys.accounts}" for p in parts
        )
        self.con.execute(_ACCOUNTS.format(ids=ids, accounts=accounts))
        for part, into in zip(parts, maps, strict=True):
            self.con.execute(_MAP.format(map=into, accounts=part.keys.accounts, ids=ids))
        sources = " UNION ALL ".join(
            f"SELECT m.aid, r.source_id FROM {p.keys.rows} r JOIN {m} m ON m.local = r.aid"
            for p, m in zip(parts, maps, strict=True)
        )
        self.con.execute(_SOURCES.format(src=src, sources=sources))
        for part, m, into in zip(parts, maps, numbered, strict=True):
            self.con.execute(
                _NUMBERED_ROWS.format(numbered=into, rows=part.keys.rows, map=m, src=src)
            )
        for m in maps:
            self.con.execute(f"DROP TABLE {m}")
        self.con.execute(f"DROP TABLE {src}")
        rows = " UNION ALL ".join(f"SELECT aid, sid, t FROM {n}" for n in numbered)
        self.con.execute(
            _NUMBERED_ACT.format(
                act_ids=given["act_ids"], micros=given["micros"], numbered_rows=rows
            )
        )
        events = " UNION ALL ".join(
            _NUMBERED_EVENTS.format(micros=given["micros"], pairs=p.pairs(), numbered=n)
            for p, n in zip(parts, numbered, strict=True)
        )
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {given['ev']} AS {events}")
        for n in numbered:
            self.con.execute(f"DROP TABLE {n}")

    def release(self, *relations: str) -> None:
        for name in relations:
            self.con.execute(f"DROP TABLE IF EXISTS {name}")
