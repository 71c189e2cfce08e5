"""S8 shared list order: reporters who walk the same target list in the same order.

**What.** A brigade's call posts a list of targets; members work through it, and a
bulk-reporting extension walks it top to bottom. Two reporters who reported many of
the same targets within hours of each other, in the same order, followed the same
list. For candidate pairs of reporters the detector matches their reports on common
targets and measures how well the two orders agree.

**Candidates.** Reports are paired as co-reporting pairs them
(:func:`~concerted.detectors.pairing.pair_keys` on kind ``report``: the same target
within ``window`` seconds). A reporter pair is a candidate when it shares at least
``min_common`` distinct targets that way and is among the ``max_partners`` partners
of either reporter that share most targets with it; at most ``max_pairs`` candidates
are kept, those sharing most targets first (ties by account), so that the work stays
bounded on any input (a brigade of a hundred makes some two thousand candidate pairs
instead of five thousand); the notes say how many pairs were eligible and how many
were kept. Each report of one reporter is then matched to at most one report of the
other (the nearest in time on the same target, and the reverse), giving the pair's
matched items: (target, time of the first reporter, time of the second).

**Agreement (the score).** Over every two items of the pair whose first-reporter
times lie within ``window`` of each other (the same walk: two waves of a brigade days
apart are never compared, since every pair agrees that Monday came before Friday),
the pair is concordant when both reporters reported the two targets in the same
order and discordant when in opposite orders (Kendall's tau counts; ties count to
neither). The score is Kendall's tau shrunk towards 0 by ``smoothing`` (``κ``)
pseudo-comparisons, and cut at 0::

    score = max(0, (C - D) / (C + D + κ))

Two reporters who walked a 20-target list in the same order score 190 / 200 = 0.95;
two who shared two targets in the same order score 1 / 11 = 0.09; two who shuffled
score about 0.

**Weight.** ``weight`` is the number of common targets the two reported in the same
order: the longest run of matched items, in the first reporter's order, whose times
for the second reporter increase too (the longest common subsequence of the two
walks, found as the longest increasing subsequence by patience sorting, all pairs
at once in numpy). An integer, tested by
:class:`~concerted.significance.Significance` like co-action's weight.

**Signals.** One ``account`` row for each reporter of a candidate pair: ``score`` is the
``min_partners``-th highest agreement among its partners (0 with fewer partners), so
it is high only for an account that walks the same order as several others, as the
members of a brigade using one extension do; ``value`` is the number of partners;
``detail`` gives its best agreement and the median weight of its pairs; ``first_ts``
and ``last_ts`` its first and last matched report.

**Settings.** ``window`` (seconds, default 10,800, as co-reporting); ``min_common``
(default 4); ``max_partners`` (default 20); ``max_pairs`` (default 100,000);
``smoothing`` (``κ``, default 10); ``min_partners`` (default 5); ``max_object_pairs``
(co-action's viral-target cap).

**Evidence.** ``edges``: detector ``list_order``, layer ``report``, ``weight`` as above,
``score`` the agreement, ``events`` the matched items, ``lead_1``/``lead_2`` the items
each reported first, the median gap between the two reports of an item, the first
and last matched report. ``events``: every matched item (object = target, sources =
report ids). ``signals``: as above.

**Measured** on the simulator's brigade cases (seeds 0 to 2): no organic pair shares
four targets within hours, so no organic account is scored; every brigade member is
(scores 0.13 to 0.99, median 0.6 to 0.8); extension-driven members score 0.98 to 0.99
and human members 0.4 to 0.74 at the median, though a human who happened not to
shuffle in most waves scores as high (best-threshold F1 for telling the automated
members from the rest: 0.70 to 0.94, from this signal alone).

**Limitations.** The order is the order of the report times: two reports at the same
instant count as a tie, and a reporter who works through a list in parallel tabs has
no order. A human who shuffles the list now and then agrees with the others only on
the waves they did not shuffle; the score averages over waves. Short lists carry
little evidence and score low by design.

>>> import duckdb
>>> con = duckdb.connect()
>>> _ = con.execute("CREATE TABLE a AS SELECT 'u' || (i % 2) AS actor_id, 'x' AS platform,"
...     " 'report' AS kind, 't' || (i // 2) AS object_id,"
...     " TIMESTAMPTZ '2020-01-01 00:00:00+00' + INTERVAL (i) MINUTE AS ts,"
...     " 'r' || i AS source_id FROM range(12) t(i)")
>>> ev = ListOrder().detect(con, "a")
>>> ev.edges.project("account_1, account_2, weight, round(score, 3)").fetchall()
[('u0', 'u1', 6.0, 0.6)]
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from concerted.detectors.base import EDGE_COLUMNS, EVENT_COLUMNS, SIGNAL_COLUMNS, Evidence
from concerted.detectors.pairing import Pairs, check_pairs, pair_keys, viral_objects
from concerted.errors import ConfigError
from concerted.schema import sql_literal

__all__ = ["ListOrder", "longest_increasing"]

_ids = itertools.count()
IntArray = npt.NDArray[np.int64]


def longest_increasing(groups: npt.ArrayLike, values: npt.ArrayLike) -> IntArray:
    """The length of the longest strictly increasing subsequence of ``values`` within
    each group, for rows sorted by group and then by sequence position (groups
    numbered 0, 1, ... without gaps; values non-negative integers).

    Patience sorting for every group at once: the piles of group ``g`` live in a flat
    array, offset by ``g`` times a bound above every value, so that one sorted search
    places the next item of every group in one step.

    >>> longest_increasing([0, 0, 0, 0, 1, 1, 1], [3, 1, 2, 4, 2, 1, 0]).tolist()
    [3, 1]
    """
    g = np.asarray(groups, dtype=np.int64)
    v = np.asarray(values, dtype=np.int64)
    if g.size == 0:
        return np.zeros(0, dtype=np.int64)
    n_groups = int(g[-1]) + 1
    sizes = np.bincount(g, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    bound = int(v.max()) + 2
    fill = np.int64(bound - 1)
    piles = g * bound + fill
    position = np.arange(g.size) - starts[g]
    for step in range(int(sizes.max())):
        at = np.flatnonzero(position == step)
        key = g[at] * bound + v[at]
        slot = np.searchsorted(piles, key, side="left")
        piles[slot] = key
    used = (piles - g * bound) != fill
    return np.bincount(g, weights=used, minlength=n_groups).astype(np.int64)


def _longest_per_pair(
    first: IntArray, second: IntArray, times: IntArray
) -> tuple[IntArray, IntArray, IntArray]:
    """For items sorted by pair and then in the first reporter's order: each pair and
    the longest run of its items whose ``times`` (the second reporter's) increase."""
    if first.size == 0:
        return first, second, np.zeros(0, dtype=np.int64)
    new = np.ones(first.size, dtype=bool)
    new[1:] = (first[1:] != first[:-1]) | (second[1:] != second[:-1])
    group = np.cumsum(new) - 1
    # The second reporter's times as dense ranks within each pair.
    order = np.lexsort((times, group))
    g, t = group[order], times[order]
    step = np.ones(g.size, dtype=bool)
    step[1:] = (g[1:] != g[:-1]) | (t[1:] != t[:-1])
    rank = np.cumsum(step)
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    rank = rank - rank[starts[g]]
    values = np.empty(first.size, dtype=np.int64)
    values[order] = rank
    heads = np.flatnonzero(new)
    return first[heads], second[heads], longest_increasing(group, values)


@dataclass(frozen=True, kw_only=True)
class ListOrder:
    """Reporter pairs who reported common targets in the same order (see the module's
    notes).

    >>> ListOrder().min_common
    4
    """

    name: ClassVar[str] = "list_order"
    family: ClassVar[str] = "report"
    weight: ClassVar[float] = 0.3
    reads: ClassVar[tuple[str, ...]] = ()
    window: float = 10_800.0
    min_common: int = 4
    max_pairs: int = 100_000
    max_partners: int = 20
    smoothing: float = 10.0
    min_partners: int = 5
    max_object_pairs: int | None = 2_000_000

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", float(self.window))
        object.__setattr__(self, "smoothing", float(self.smoothing))
        if not self.window >= 0:
            raise ConfigError(f"list_order: window must not be negative, got {self.window}")
        if self.min_common < 2:
            raise ConfigError(f"list_order: min_common must be at least 2, got {self.min_common}")
        if self.max_pairs < 1:
            raise ConfigError(f"list_order: max_pairs must be at least 1, got {self.max_pairs}")
        if self.max_partners < 1:
            raise ConfigError(
                f"list_order: max_partners must be at least 1, got {self.max_partners}"
            )
        if not self.smoothing >= 0:
            raise ConfigError(f"list_order: smoothing must not be negative, got {self.smoothing}")
        if self.min_partners < 1:
            raise ConfigError(
                f"list_order: min_partners must be at least 1, got {self.min_partners}"
            )
        if self.max_object_pairs is not None and self.max_object_pairs < 1:
            raise ConfigError("list_order: max_object_pairs must be at least 1 (or None)")

    def reads_pairing_of(self, other: object) -> bool:
        """Whether this detector can read ``other``'s pairing of the reports (its
        :meth:`~concerted.detectors.co_report.CoReport.pairing`) instead of pairing them
        again: the same window and cap, and ``other`` keeps every pair this one needs.

        >>> from concerted.detectors.co_report import CoReport
        >>> ListOrder().reads_pairing_of(CoReport()), ListOrder(window=60).reads_pairing_of(
        ...     CoReport())
        (True, False)
        """
        if not callable(getattr(other, "pairing", None)):
            return False
        same = (getattr(other, "window", None), getattr(other, "max_object_pairs", None)) == (
            self.window,
            self.max_object_pairs,
        )
        least = getattr(other, "min_weight", None)
        return same and isinstance(least, int) and self.min_common >= least

    def detect(self, con: duckdb.DuckDBPyConnection, actions: str) -> Evidence:
        keys = pair_keys(
            con,
            actions,
            window=self.window,
            kinds=("report",),
            max_object_pairs=self.max_object_pairs,
            min_objects=self.min_common,
        )
        found = self.from_pairs(con, keys)
        return replace(found, temporary=(*keys.tables, *found.temporary))

    def from_pairs(self, con: duckdb.DuckDBPyConnection, keys: Pairs) -> Evidence:
        """The evidence from a pairing of the reports already made (with this detector's
        ``window`` and ``max_object_pairs``, kind ``report``), for a caller that shares
        one pairing among detectors; the pairing's tables stay the caller's to drop.

        >>> import duckdb
        >>> con = duckdb.connect()
        >>> keys = pair_keys(con, "(SELECT 'u' AS actor_id, 'x' AS platform,"
        ...     " 'report' AS kind, 't' AS object_id, now() AS ts, 'r' AS source_id)",
        ...     window=10_800, kinds=("report",), max_object_pairs=2_000_000)
        >>> ListOrder().from_pairs(con, keys).edges.fetchall()
        []
        """
        check_pairs(
            keys, "list_order", self.window, ("report",), self.max_object_pairs, self.min_common
        )
        n = next(_ids)
        names = {k: f"_list_order_{k}_{n}" for k in ("candidates", "items", "pairs", "lis")}
        candidates, items, pairs, lis = (
            names["candidates"],
            names["items"],
            names["pairs"],
            names["lis"],
        )
        # A pair with fewer matched reports than min_common cannot share that many
        # targets: the pairs are thinned by that count, which is cheap, before the
        # distinct targets are counted (half the time of counting them all, at 1M).
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {candidates} AS
                WITH c AS (SELECT a_1, a_2, count(DISTINCT oid) AS common FROM {keys.pairs}
                           SEMI JOIN (SELECT a_1, a_2 FROM {keys.pairs} GROUP BY a_1, a_2
                                      HAVING count(*) >= {self.min_common}) g
                           USING (a_1, a_2)
                           GROUP BY a_1, a_2 HAVING count(DISTINCT oid) >= {self.min_common}),
                ranked AS (
                    SELECT *, count(*) OVER () AS eligible,
                           row_number() OVER (PARTITION BY a_1 ORDER BY common DESC, a_2)
                               AS rank_1,
                           row_number() OVER (PARTITION BY a_2 ORDER BY common DESC, a_1)
                               AS rank_2
                    FROM c)
                SELECT a_1, a_2, common, eligible FROM ranked
                WHERE rank_1 <= {self.max_partners} OR rank_2 <= {self.max_partners}
                ORDER BY common DESC, a_1, a_2 LIMIT {self.max_pairs}"""
        )
        eligible = con.sql(f"SELECT any_value(eligible) FROM {candidates}").fetchone()
        kept = con.sql(f"SELECT count(*) FROM {candidates}").fetchone()
        # Each report matched to at most one of the other's, the nearest on the target,
        # and the reverse; a pair of report rows, (r_1, r_2), is one row of the pairs.
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {items} AS
                WITH p AS (SELECT p.a_1, p.a_2, p.oid, p.r_1, p.t_1, p.r_2, p.t_2
                           FROM {keys.pairs} p SEMI JOIN {candidates} c USING (a_1, a_2)),
                one AS (SELECT r_1, arg_min(r_2, (abs(t_1 - t_2), r_2)) AS r_2
                        FROM p GROUP BY a_2, r_1),
                two AS (SELECT p.* FROM p SEMI JOIN one USING (r_1, r_2)),
                back AS (SELECT r_2, arg_min(r_1, (abs(t_1 - t_2), r_1)) AS r_1
                         FROM two GROUP BY a_1, r_2)
                SELECT * FROM two SEMI JOIN back USING (r_1, r_2)"""
        )
        width = max(1, round(self.window * 1e6))
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {pairs} AS
                WITH i AS (SELECT a_1, a_2, oid, t_1, t_2, t_1 // {width} AS b FROM {items}),
                cmp AS (
                    SELECT x.a_1, x.a_2, sign(y.t_2 - x.t_2) AS s
                    FROM i x JOIN i y ON y.a_1 = x.a_1 AND y.a_2 = x.a_2 AND y.b = x.b
                    WHERE y.t_1 > x.t_1 AND y.t_1 - x.t_1 <= {width} AND y.oid <> x.oid
                    UNION ALL
                    SELECT x.a_1, x.a_2, sign(y.t_2 - x.t_2)
                    FROM i x JOIN i y ON y.a_1 = x.a_1 AND y.a_2 = x.a_2 AND y.b = x.b + 1
                    WHERE y.t_1 - x.t_1 <= {width} AND y.oid <> x.oid)
                SELECT a_1, a_2, count(*) FILTER (WHERE s > 0) AS concordant,
                       count(*) FILTER (WHERE s < 0) AS discordant
                FROM cmp GROUP BY a_1, a_2"""
        )
        # Items in the first reporter's order; at a tie, the second reporter's later
        # report first, so that a tie never counts as the same order.
        got = con.sql(
            f"SELECT a_1, a_2, t_2 FROM {items} ORDER BY a_1, a_2, t_1, t_2 DESC, oid"
        ).fetchnumpy()
        first, second, longest = _longest_per_pair(
            np.asarray(got["a_1"], dtype=np.int64),
            np.asarray(got["a_2"], dtype=np.int64),
            np.asarray(got["t_2"], dtype=np.int64),
        )
        view = f"{lis}_view"
        con.register(view, pa.table({"a_1": first, "a_2": second, "lis": longest}))
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {lis} AS SELECT * FROM {view}")
        finally:
            con.unregister(view)
        notes: dict[str, Any] = {
            "window_seconds": self.window,
            "min_common": self.min_common,
            "max_pairs": self.max_pairs,
            "max_partners": self.max_partners,
            "smoothing": self.smoothing,
            "min_partners": self.min_partners,
            "candidate_pairs": int(eligible[0]) if eligible and eligible[0] else 0,
            "pairs_kept": kept[0] if kept else 0,
            "viral_objects": viral_objects(con, keys),
        }
        return Evidence(
            edges=self._edges(con, keys.accounts, candidates, items, pairs, lis),
            events=self._events(con, keys.rows, items),
            signals=self._signals(con, keys.accounts, candidates, items, pairs, lis),
            notes=notes,
            temporary=tuple(names.values()),
        )

    def _agreement(self, pairs: str) -> str:
        k = repr(self.smoothing)
        return f"""(SELECT a_1, a_2, concordant, discordant,
                           CASE WHEN concordant + discordant + {k} > 0
                                THEN greatest(0.0, (concordant - discordant)
                                     / (concordant + discordant + {k}))
                                ELSE 0.0 END::DOUBLE AS score
                    FROM {pairs})"""

    def _edges(
        self,
        con: duckdb.DuckDBPyConnection,
        accounts: str,
        candidates: str,
        items: str,
        pairs: str,
        lis: str,
    ) -> duckdb.DuckDBPyRelation:
        name = sql_literal(self.name)
        figures = {
            "detector": f"{name} AS detector",
            "layer": "'report' AS layer",
            "platform_1": "u1.platform AS platform_1",
            "account_1": "u1.actor_id AS account_1",
            "platform_2": "u2.platform AS platform_2",
            "account_2": "u2.actor_id AS account_2",
            "weight": "l.lis::DOUBLE AS weight",
            "score": "coalesce(s.score, 0.0)::DOUBLE AS score",
            "events": "m.events",
            "lead_1": "m.lead_1",
            "lead_2": "m.lead_2",
            "median_dt": "m.median_dt",
            "first_ts": "make_timestamptz(m.first_t) AS first_ts",
            "last_ts": "make_timestamptz(m.last_t) AS last_ts",
            "expected": "NULL::DOUBLE AS expected",
            "p_value": "NULL::DOUBLE AS p_value",
            "q_value": "NULL::DOUBLE AS q_value",
            "significant": "NULL::BOOLEAN AS significant",
        }
        return con.sql(
            f"""WITH m AS (
                    SELECT a_1, a_2, count(*) AS events,
                           count(*) FILTER (WHERE t_1 < t_2) AS lead_1,
                           count(*) FILTER (WHERE t_2 < t_1) AS lead_2,
                           median(abs(t_1 - t_2)) / 1e6 AS median_dt,
                           min(least(t_1, t_2)) AS first_t, max(greatest(t_1, t_2)) AS last_t
                    FROM {items} GROUP BY a_1, a_2)
                SELECT {", ".join(figures[c] for c in EDGE_COLUMNS)}
                FROM {candidates} c
                JOIN m USING (a_1, a_2)
                JOIN {lis} l USING (a_1, a_2)
                LEFT JOIN {self._agreement(pairs)} s USING (a_1, a_2)
                JOIN {accounts} u1 ON u1.aid = c.a_1
                JOIN {accounts} u2 ON u2.aid = c.a_2"""
        )

    def _events(
        self, con: duckdb.DuckDBPyConnection, rows: str, items: str
    ) -> duckdb.DuckDBPyRelation:
        name = sql_literal(self.name)
        figures = {
            "detector": f"{name} AS detector",
            "layer": "'report' AS layer",
            "platform_1": "x.platform AS platform_1",
            "account_1": "x.actor_id AS account_1",
            "platform_2": "y.platform AS platform_2",
            "account_2": "y.actor_id AS account_2",
            "object_id": "x.object_id",
            "ts_1": "x.ts AS ts_1",
            "ts_2": "y.ts AS ts_2",
            "source_1": "x.source_id AS source_1",
            "source_2": "y.source_id AS source_2",
        }
        return con.sql(
            f"""SELECT {", ".join(figures[c] for c in EVENT_COLUMNS)}
                FROM {items} i JOIN {rows} x ON x.rid = i.r_1 JOIN {rows} y ON y.rid = i.r_2"""
        )

    def _signals(
        self,
        con: duckdb.DuckDBPyConnection,
        accounts: str,
        candidates: str,
        items: str,
        pairs: str,
        lis: str,
    ) -> duckdb.DuckDBPyRelation:
        name = sql_literal(self.name)
        m = self.min_partners
        return con.sql(
            f"""WITH e AS (
                    SELECT c.a_1, c.a_2, coalesce(s.score, 0.0) AS score, l.lis
                    FROM {candidates} c JOIN {lis} l USING (a_1, a_2)
                    LEFT JOIN {self._agreement(pairs)} s USING (a_1, a_2)),
                ends AS (SELECT a_1 AS aid, score, lis FROM e
                         UNION ALL SELECT a_2, score, lis FROM e),
                ranked AS (SELECT aid, score, lis,
                                  row_number() OVER (PARTITION BY aid
                                                     ORDER BY score DESC, lis DESC) AS k
                           FROM ends),
                per AS (SELECT aid, count(*) AS partners, max(score) AS best,
                               coalesce(max(score) FILTER (WHERE k = {m}), 0.0) AS score,
                               median(lis) AS median_lis
                        FROM ranked GROUP BY aid),
                times AS (SELECT aid, min(t) AS first_t, max(t) AS last_t FROM (
                              SELECT a_1 AS aid, t_1 AS t FROM {items}
                              UNION ALL SELECT a_2, t_2 FROM {items})
                          GROUP BY aid)
            SELECT {name} AS detector, 'report' AS layer, 'account' AS entity, u.platform,
                   u.actor_id AS id, p.score::DOUBLE AS score, p.partners::DOUBLE AS value,
                   NULL::VARCHAR AS related_id, make_timestamptz(t.first_t) AS first_ts,
                   make_timestamptz(t.last_t) AS last_ts,
                   'reported common targets in the same order as ' || p.partners
                   || ' reporter' || CASE WHEN p.partners = 1 THEN '' ELSE 's' END
                   || ': agreement ' || printf('%.2f', p.score) || ' with its {_ordinal(m)}'
                   || ' closest, ' || printf('%.2f', p.best) || ' with its closest; median '
                   || p.median_lis || ' targets in the same order per pair' AS detail
            FROM per p JOIN {accounts} u ON u.aid = p.aid JOIN times t ON t.aid = p.aid"""
        ).project(", ".join(SIGNAL_COLUMNS))


def _ordinal(n: int) -> str:
    """``n`` as an ordinal word.

    >>> [_ordinal(i) for i in (1, 2, 3, 4, 11, 12, 13, 21)]
    ['1st', '2nd', '3rd', '4th', '11th', '12th', '13th', '21st']
    """
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"
