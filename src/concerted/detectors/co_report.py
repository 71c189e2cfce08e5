"""S2 co-reporting: reporter pairs who report the same targets within hours of each other.

**What.** Two reporters are tied when they reported the same distinct targets within
``window`` seconds of each other, again and again. The pairing is the co-action join
(:class:`~concerted.detectors.coaction.CoAction` on action kind ``report``: an exact
sliding window, no bins), so every edge keeps the figures co-action gives (matched
report pairs, who reported first, the median gap, first and last matched report) and
every matched pair of reports is an event whose ``source_1`` and ``source_2`` are the
two report ids.

**Why.** A brigade's members work through the same posted list within an hour or two
of the call, so they meet on many of the same targets within hours; people who report
on their own meet on one viral post at most. The default window is generous (3 hours)
because humans answer a call over hours, not seconds; on the simulator's brigades,
widening it from 1 to 3 hours lifts the share of member pairs with 5 or more shared
targets from 89% to 99%, while organic pairs stay at 3 shared targets at most.

**Weight and significance.** ``weight`` is the number of distinct targets the pair
co-reported within the window, an integer; it is what the brigade stage tests
(:mod:`concerted.brigades.test`): by default against each pair's own expected meetings
when reporters are relabelled over the reports, computed from the pairing with no copy
made, or against randomised copies of the actions
(:class:`~concerted.significance.Significance`). The detector reads nothing but the
``actions`` relation, so every null model randomises it completely.

**Score: smoothed NPMI.** The strength of a pair is the normalised pointwise mutual
information of "a reported the target" and "b reported the target" over the ``N``
distinct reported targets of the input. With ``n_a`` and ``n_b`` the distinct targets
each reported (at any time) and ``n_ab`` the weight, and ``κ`` = ``smoothing``::

    M     = N + κ
    p_ab  = n_ab / M
    p_a   = (n_a + κ) / M,   p_b = (n_b + κ) / M
    NPMI  = ln(p_ab / (p_a p_b)) / -ln(p_ab)
    score = max(NPMI, 0)

The smoothing credits each reporter with ``κ`` more targets that the other did not
share. Unsmoothed NPMI is 1 for two accounts whose only report is on the same viral
post; with ``κ`` = 10 and ``n_a = n_b = n_ab = n`` the score is
``1 - 2 ln(1 + κ/n) / ln(M/n)``: about 0.4 for one shared target and 0.76 for ten
among 3,000 targets. A pair's score rises with what it shares and with how exclusive
that is; it never says whether the sharing is more than chance (that is the
significance test's job).

**Settings.** ``window`` (seconds, default 10,800); ``min_weight`` (distinct targets a
pair must share to be an edge, default 2: one shared target within hours is the
everyday coincidence of a viral post, and at platform scale those pairs outnumber all
others by orders of magnitude); ``smoothing`` (``κ`` ≥ 0, default 10);
``max_object_pairs`` (co-action's cap on the candidate pairs of one target: a post
that thousands report within hours is left out of the pairing and listed in the
notes; ``None`` pairs everything).

**Evidence.** ``edges``: detector ``co_report``, layer ``report``, ``weight`` = distinct
co-reported targets, ``score`` = smoothed NPMI, ``events`` = matched report pairs, and
co-action's lead counts, median gap and first and last matched reports. ``events``:
every matched pair (object = target, sources = report ids). No signals.

**Measured** on the simulator under the copies (seeds 0 to 2, default settings,
``relabel``, 3 replicates, FDR 0.01; the brigade stage's default is now the analytic
form of that null): on the ``organic`` scenario no pair is
significant (226 pairs share two or three targets, none more); on ``brigade`` every
significant pair is two members of one brigade, with NPMI 0.63 to 0.86 (5th to 95th
percentile, seed 0), and 59% to 97% of the members have a significant pair. The
relabel null is strict where a brigade files most of a case's reports, as there:
randomised copies still hand the brigade's many reports to a few heavy reporters, who
then meet on the brigaded targets, so the least significant weight is 21 to 42
shared targets.

**Limitations.** NPMI of an exclusive pair grows with ``ln N``: the same sharing scores
higher in a large case than in a small one, so compare scores within one case. A
target left out as viral contributes nothing to any pair. A pair is only as
coordinated as its shared targets are rare in the window; brigades that spread their
reports over days need a wider window.

>>> import duckdb
>>> con = duckdb.connect()
>>> _ = con.execute("CREATE TABLE a AS SELECT 'u' || (i % 2) AS actor_id, 'x' AS platform,"
...     " 'report' AS kind, 't' || (i // 2) AS object_id,"
...     " TIMESTAMPTZ '2020-01-01 00:00:00+00' + INTERVAL (i) MINUTE AS ts,"
...     " 'r' || i AS source_id FROM range(6) t(i)")
>>> ev = CoReport(smoothing=0).detect(con, "a")
>>> ev.edges.project("account_1, account_2, weight, score").fetchall()
[('u0', 'u1', 3.0, 1.0)]
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import duckdb

from concerted.detectors.base import EDGE_COLUMNS, EVENT_COLUMNS, Evidence, empty
from concerted.detectors.pairing import (
    Pairs,
    check_pairs,
    pair_edges,
    pair_events,
    pair_keys,
    pairs_of_rows,
    viral_objects,
    viral_of_rows,
)
from concerted.errors import ConfigError
from concerted.schema import sql_literal

__all__ = ["CoReport", "Derived", "npmi"]

_ids = itertools.count()

#: A number of distinct targets no reporter reaches: :meth:`CoReport.unpaired` asks
#: :func:`~concerted.detectors.pairing.pair_keys` to pair only accounts that reach it,
#: so that it makes the pairing's tables but joins no two reports.
_UNPAIRED = 2**62

#: The test's columns of an edge, empty until the brigade stage tests it.
_UNTESTED = {
    "expected": "NULL::DOUBLE AS expected",
    "p_value": "NULL::DOUBLE AS p_value",
    "q_value": "NULL::DOUBLE AS q_value",
    "significant": "NULL::BOOLEAN AS significant",
}


def _npmi_sql(m: str, k: str) -> str:
    """SQL: the smoothed NPMI of edge ``e`` (its ``weight``) between reporters ``m1`` and
    ``m2`` (their distinct targets ``n``), among ``m`` targets with smoothing ``k``.
    ``p_ab`` = 1 only when ``k`` = 0 and the pair shares every target, where NPMI is 1
    by continuity."""
    return f"""CASE WHEN e.weight::DOUBLE >= {m} + {k} THEN 1.0
                    ELSE greatest(0.0,
                        ln(e.weight::DOUBLE * ({m} + {k}) / ((m1.n + {k}) * (m2.n + {k})))
                        / ln(({m} + {k}) / e.weight::DOUBLE)) END::DOUBLE"""


def npmi(n_ab: float, n_a: float, n_b: float, n: float, smoothing: float) -> float:
    """The smoothed NPMI of a pair that shares ``n_ab`` of ``n`` targets, having
    reported ``n_a`` and ``n_b`` (the formula of the module's notes, not clipped).

    >>> round(npmi(1, 1, 1, 3000, 10), 3)
    0.401
    >>> npmi(2, 2, 2, 2, 0)
    1.0
    """
    m = n + smoothing
    p_ab = n_ab / m
    if p_ab >= 1.0:
        return 1.0
    p_a, p_b = (n_a + smoothing) / m, (n_b + smoothing) / m
    return math.log(p_ab / (p_a * p_b)) / -math.log(p_ab)


@dataclass(frozen=True)
class Derived:
    """What :meth:`CoReport.derive` makes: the derived pairing's tables (``pairs``
    holding the changed account pairs' pairs only), the figures of every account pair
    (``found``) and the changed account pairs by name (``changed``)."""

    keys: Pairs
    found: str
    changed: str

    @property
    def tables(self) -> tuple[str, ...]:
        return (*self.keys.tables, self.found, self.changed)


@dataclass(frozen=True, kw_only=True)
class CoReport:
    """Reporter pairs who reported the same distinct targets within ``window`` seconds,
    scored by smoothed NPMI (see the module's notes).

    >>> CoReport().window
    10800.0
    """

    name: ClassVar[str] = "co_report"
    family: ClassVar[str] = "report"
    weight: ClassVar[float] = 0.5
    reads: ClassVar[tuple[str, ...]] = ()
    window: float = 10_800.0
    min_weight: int = 2
    smoothing: float = 10.0
    max_object_pairs: int | None = 2_000_000

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", float(self.window))
        object.__setattr__(self, "smoothing", float(self.smoothing))
        if not self.window >= 0:
            raise ConfigError(f"co_report: window must not be negative, got {self.window}")
        if self.min_weight < 1:
            raise ConfigError(f"co_report: min_weight must be at least 1, got {self.min_weight}")
        if not self.smoothing >= 0:
            raise ConfigError(f"co_report: smoothing must not be negative, got {self.smoothing}")
        if self.max_object_pairs is not None and self.max_object_pairs < 1:
            raise ConfigError("co_report: max_object_pairs must be at least 1 (or None)")

    def detect(self, con: duckdb.DuckDBPyConnection, actions: str) -> Evidence:
        keys = self.pairing(con, actions)
        found = self.from_pairs(con, keys)
        return replace(found, temporary=(*keys.tables, *found.temporary))

    def pairing(self, con: duckdb.DuckDBPyConnection, actions: str) -> Pairs:
        """The pairing of the reports in ``actions`` that :meth:`from_pairs` reads, made
        with this detector's settings; its tables are the caller's to drop."""
        return pair_keys(
            con,
            actions,
            window=self.window,
            kinds=("report",),
            max_object_pairs=self.max_object_pairs,
            min_objects=self.min_weight,
        )

    def pairing_without(self, con: duckdb.DuckDBPyConnection, keys: Pairs, left_out: str) -> Pairs:
        """The pairing :meth:`pairing` makes of the reports of ``keys`` less those of the
        accounts in ``left_out`` (a relation of ``platform, actor_id``), derived from
        ``keys`` (made by :meth:`pairing`) instead of pairing the reports again: the
        brigade stage's later rounds set accounts aside and test the rest.

        Setting reports aside only lowers each target's candidate pairs, so the targets
        left out as viral are some of those ``keys`` left out, and every account that
        reached ``min_weight`` targets still does. The pairs of ``keys`` between two
        accounts kept are all kept; the new ones are those on a target no longer viral
        or of an account that now reaches ``min_weight`` targets (through such
        targets), paired here on the reports of the targets they touch. Rows, objects
        and accounts keep their numbers. The tables are the caller's to drop.

        >>> import duckdb
        >>> con = duckdb.connect()
        >>> reports = ("(SELECT 'u' || (i % 3) AS actor_id, 'x' AS platform, 'report' AS kind,"
        ...     " 't' || (i // 3) AS object_id, now() AS ts, 'r' || i AS source_id"
        ...     " FROM range(9) t(i))")
        >>> d = CoReport()
        >>> keys = d.pairing(con, reports)
        >>> aside = "(SELECT 'x' AS platform, 'u2' AS actor_id)"
        >>> fewer = d.pairing_without(con, keys, aside)
        >>> con.sql(f"SELECT count(*) FROM {keys.pairs}").fetchone()
        (9,)
        >>> con.sql(f"SELECT count(*) FROM {fewer.pairs}").fetchone()
        (3,)
        """
        n = self._derivable(keys)
        names = {k: f"_co_report_{k}_{n}" for k in ("rows", "objects", "accounts", "pairs")}
        work = {k: f"_co_report_{k}_{n}" for k in ("few", "fresh", "near", "delta", "new")}
        try:
            return self._without(con, keys, left_out, names, work)
        except BaseException:
            for table in (*names.values(), *work.values()):
                con.execute(f"DROP TABLE IF EXISTS {table}")
            raise

    def _derivable(self, keys: Pairs) -> int:
        """Check that ``keys`` is a pairing this detector made (:meth:`pairing`), to
        derive another from; returns a fresh number for the derived tables' names."""
        check_pairs(
            keys, "co_report", self.window, ("report",), self.max_object_pairs, self.min_weight
        )
        if keys.min_objects != self.min_weight:
            raise ConfigError("co_report: the pairing to derive from was not made by pairing()")
        return next(_ids)

    def derive(
        self, con: duckdb.DuckDBPyConnection, keys: Pairs, found: str, left_out: str
    ) -> Derived:
        """:meth:`pairing_without` with its evidence's figures, paid for the account
        pairs that setting accounts aside changes only. ``found`` is the table
        :meth:`edges_of` made of ``keys``; the result's ``found`` is the table it makes
        of the derived pairing (the pairs of ``found`` between two accounts kept, and
        those figured again), its ``keys`` the derived pairing's tables but for
        ``pairs``, which holds the pairs of the changed account pairs only (all of
        theirs), and ``changed`` those account pairs as the evidence names them
        (``layer, platform_1, account_1, platform_2, account_2``). Every other account
        pair kept has the same pairs, so the same figures and events, as in ``keys``.
        :meth:`from_pairs` reads ``keys`` with ``found``: all the edges, the events of
        the changed ones. The tables are the caller's to drop.

        >>> import duckdb
        >>> con = duckdb.connect()
        >>> reports = ("(SELECT 'u' || (i % 3) AS actor_id, 'x' AS platform, 'report' AS kind,"
        ...     " 't' || (i // 3) AS object_id, now() AS ts, 'r' || i AS source_id"
        ...     " FROM range(9) t(i))")
        >>> d = CoReport()
        >>> keys = d.pairing(con, reports)
        >>> derived = d.derive(con, keys, d.edges_of(con, keys), "(SELECT 'x' AS platform, "
        ...     "'u2' AS actor_id)")
        >>> con.sql(f"SELECT a_1, a_2, weight FROM {derived.found}").fetchall()
        [(1, 2, 3)]
        >>> con.sql(f"SELECT count(*) FROM {derived.changed}").fetchone()
        (0,)
        """
        n = self._derivable(keys)
        names = {k: f"_co_report_{k}_{n}" for k in ("rows", "objects", "accounts", "pairs")}
        work = {
            k: f"_co_report_{k}_{n}" for k in ("few", "fresh", "near", "delta", "new", "touched")
        }
        made = {k: f"_co_report_{k}_{n}" for k in ("found", "changed")}
        try:
            derived = self._without(con, keys, left_out, names, work, found, made)
        except BaseException:
            for table in (*names.values(), *work.values(), *made.values()):
                con.execute(f"DROP TABLE IF EXISTS {table}")
            raise
        return Derived(keys=derived, found=made["found"], changed=made["changed"])

    def edges_of(self, con: duckdb.DuckDBPyConnection, keys: Pairs) -> str:
        """The figures of every account pair of ``keys`` (made by :meth:`pairing`) that
        shares ``min_weight`` targets, as a table of integers
        (:func:`~concerted.detectors.pairing.pair_edges`) that :meth:`from_pairs` and
        :meth:`derive` read; the caller's to drop."""
        return pair_edges(con, keys, min_weight=self.min_weight)

    def _without(
        self,
        con: duckdb.DuckDBPyConnection,
        keys: Pairs,
        left_out: str,
        names: dict[str, str],
        work: dict[str, str],
        found: str | None = None,
        made: dict[str, str] | None = None,
    ) -> Pairs:
        """:meth:`pairing_without` into the tables ``names``, through the tables
        ``work`` (dropped before it returns); with ``found`` (:meth:`edges_of` of
        ``keys``), :meth:`derive`'s, its ``found`` and ``changed`` into ``made``."""
        rows, objects, accounts, pairs = names.values()
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {accounts} AS
                SELECT * FROM {keys.accounts} ANTI JOIN {left_out} USING (platform, actor_id);
                CREATE OR REPLACE TEMP TABLE {rows} AS
                SELECT * FROM {keys.rows} SEMI JOIN {accounts} USING (aid);
                CREATE OR REPLACE TEMP TABLE {objects} AS
                SELECT kind, object_id, oid, kid, count(*) AS n FROM {rows} GROUP BY ALL"""
        )
        viral = None
        if self.max_object_pairs is not None:
            viral = viral_of_rows(con, rows, cap=int(self.max_object_pairs))
        was_viral = f"ANTI JOIN {keys.viral} v USING (oid)" if keys.viral else ""
        is_viral = f"ANTI JOIN {viral} v USING (oid)" if viral else ""
        # Targets no longer viral (of the reports kept); accounts that reach min_weight
        # targets now and did not before (the others are paired already, or were not
        # and still are not).
        fresh = (
            f"SELECT oid FROM {keys.viral} {is_viral} SEMI JOIN {objects} USING (oid)"
            if keys.viral
            else "SELECT NULL::BIGINT AS oid LIMIT 0"
        )
        few = int(self.min_weight)
        new = work["new"]
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {work['fresh']} AS {fresh}")
            # Where no report kept is on a target that was viral and is no longer,
            # every account counts the targets it counted before: nothing is new.
            if self._scalar(con, f"SELECT count(*) FROM {work['fresh']}"):
                con.execute(
                    f"""CREATE OR REPLACE TEMP TABLE {work["few"]} AS
                        SELECT kid, aid FROM {rows} {is_viral}
                        GROUP BY kid, aid HAVING count(DISTINCT oid) >= {few};
                        CREATE OR REPLACE TEMP TABLE {work["delta"]} AS
                        SELECT kid, aid FROM {work["few"]} ANTI JOIN (
                            SELECT kid, aid FROM {rows} {was_viral}
                            GROUP BY kid, aid HAVING count(DISTINCT oid) >= {few}) o
                        USING (kid, aid);
                        CREATE OR REPLACE TEMP TABLE {work["near"]} AS
                        SELECT r.rid, r.kid, r.oid, r.aid, r.t, r.b FROM {rows} r {is_viral}
                        SEMI JOIN {work["few"]} f USING (kid, aid)
                        WHERE r.oid IN (SELECT oid FROM {work["fresh"]})
                           OR r.oid IN (SELECT x.oid FROM {rows} x
                                        SEMI JOIN {work["delta"]} w USING (kid, aid));
                        CREATE OR REPLACE TEMP TABLE {new} AS
                        SELECT p.* FROM ({pairs_of_rows(work["near"], window=self.window)}) p
                        LEFT JOIN {work["delta"]} w1 ON w1.kid = p.kid AND w1.aid = p.a_1
                        LEFT JOIN {work["delta"]} w2 ON w2.kid = p.kid AND w2.aid = p.a_2
                        WHERE p.oid IN (SELECT oid FROM {work["fresh"]})
                           OR w1.aid IS NOT NULL OR w2.aid IS NOT NULL"""
                )
            else:
                con.execute(
                    f"CREATE OR REPLACE TEMP TABLE {new} AS SELECT * FROM {keys.pairs} LIMIT 0"
                )
            if found is None or made is None:
                con.execute(
                    f"""CREATE OR REPLACE TEMP TABLE {pairs} AS
                        SELECT p.* FROM {keys.pairs} p
                        SEMI JOIN {accounts} u1 ON u1.aid = p.a_1
                        SEMI JOIN {accounts} u2 ON u2.aid = p.a_2;
                        INSERT INTO {pairs} BY NAME SELECT * FROM {new}"""
                )
            else:
                self._changed(con, keys, found, names, work, made)
        finally:
            for table in work.values():
                con.execute(f"DROP TABLE IF EXISTS {table}")
        return replace(
            keys, viral=viral, pairs=pairs, rows=rows, objects=objects, accounts=accounts
        )

    def _changed(
        self,
        con: duckdb.DuckDBPyConnection,
        keys: Pairs,
        found: str,
        names: dict[str, str],
        work: dict[str, str],
        made: dict[str, str],
    ) -> None:
        """:meth:`derive`'s tables from the new pairs (``work["new"]``): the pairs of
        the account pairs they touch (all of theirs, in ``names["pairs"]``), the figures
        of every account pair kept (``made["found"]``: those of ``found`` untouched,
        the touched ones figured again) and the touched ones by name
        (``made["changed"]``)."""
        pairs, objects, accounts = names["pairs"], names["objects"], names["accounts"]
        new, touched = work["new"], work["touched"]
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {touched} AS
                SELECT DISTINCT kid, a_1, a_2 FROM {new};
                CREATE OR REPLACE TEMP TABLE {pairs} AS
                SELECT p.* FROM {keys.pairs} p SEMI JOIN {touched} USING (kid, a_1, a_2);
                INSERT INTO {pairs} BY NAME SELECT * FROM {new};
                CREATE OR REPLACE TEMP TABLE {made["changed"]} AS
                SELECT k.kind AS layer, u1.platform AS platform_1, u1.actor_id AS account_1,
                       u2.platform AS platform_2, u2.actor_id AS account_2
                FROM {touched} c
                JOIN (SELECT DISTINCT kid, kind FROM {objects}) k USING (kid)
                JOIN {accounts} u1 ON u1.aid = c.a_1
                JOIN {accounts} u2 ON u2.aid = c.a_2"""
        )
        again = pair_edges(con, replace(keys, pairs=pairs), min_weight=self.min_weight)
        try:
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE {made["found"]} AS
                    SELECT f.* FROM {found} f
                    SEMI JOIN {accounts} u1 ON u1.aid = f.a_1
                    SEMI JOIN {accounts} u2 ON u2.aid = f.a_2
                    ANTI JOIN {touched} USING (kid, a_1, a_2);
                    INSERT INTO {made["found"]} BY NAME SELECT * FROM {again}"""
            )
        finally:
            con.execute(f"DROP TABLE IF EXISTS {again}")

    @staticmethod
    def _scalar(con: duckdb.DuckDBPyConnection, query: str) -> int:
        got = con.sql(query).fetchone()
        return int(got[0]) if got else 0

    def unpaired(self, con: duckdb.DuckDBPyConnection, actions: str) -> Pairs:
        """The tables of :meth:`pairing` but its pairs (``rows``, ``objects``,
        ``accounts``, ``viral``; ``pairs`` is empty), for a caller whose pairing is made
        elsewhere (an engine's, :mod:`concerted.engines`): :meth:`from_paired` reads
        them for the score's counts, the brigade stage's analytic test for the targets'
        reports. No two reports are joined, so they cost a few scans of the reports.
        Their tables are the caller's to drop.

        >>> import duckdb
        >>> con = duckdb.connect()
        >>> keys = CoReport().unpaired(con, "(SELECT 'u' || i AS actor_id, 'x' AS platform,"
        ...     " 'report' AS kind, 't' AS object_id, now() AS ts, 'r' || i AS source_id"
        ...     " FROM range(3) t(i))")
        >>> counts = f"SELECT (SELECT count(*) FROM {keys.rows}), count(*) FROM {keys.pairs}"
        >>> con.sql(counts).fetchone()
        (3, 0)
        """
        return pair_keys(
            con,
            actions,
            window=self.window,
            kinds=("report",),
            max_object_pairs=self.max_object_pairs,
            min_objects=_UNPAIRED,
        )

    def _edge_columns(self, total: float, **given: str) -> str:
        """The select list of the edges: the detector's name, the weight as a double,
        the NPMI score over ``total`` reports, the untested columns, ``given`` (column:
        expression), and every other column as the edge row ``e`` has it."""
        m, k = f"{float(total)!r}", repr(self.smoothing)
        own = {
            "detector": f"{sql_literal(self.name)} AS detector",
            "weight": "e.weight::DOUBLE AS weight",
            "score": f"{_npmi_sql(m, k)} AS score",
            **_UNTESTED,
            **given,
        }
        return ", ".join(own.get(c, f"e.{c}") for c in EDGE_COLUMNS)

    def from_paired(
        self,
        con: duckdb.DuckDBPyConnection,
        keys: Pairs,
        edges: str,
        events: str,
        viral: list[dict[str, Any]] | None = None,
    ) -> Evidence:
        """The evidence :meth:`from_pairs` gives, from a pairing of the reports made
        elsewhere: ``edges`` and ``events`` are relations in the evidence contracts
        (any detector's name) of co-action on kind ``report`` with this detector's
        ``window``, ``min_weight`` and ``max_object_pairs``, as an engine's
        :meth:`~concerted.engines.base.Engine.pair` gives them; ``keys`` are
        :meth:`unpaired`'s tables of the same reports, for the score's counts and the
        viral objects. ``viral``, the objects that pairing left out (its notes'
        ``viral_objects``), is checked against those of ``keys``. The caller keeps
        ``keys``, ``edges`` and ``events`` until the evidence is read.

        >>> import duckdb
        >>> from concerted.detectors.coaction import CoAction
        >>> from concerted.engines.duck import DuckDBEngine
        >>> con = duckdb.connect()
        >>> _ = con.execute("CREATE TABLE a AS SELECT 'u' || (i % 2) AS actor_id,"
        ...     " 'x' AS platform, 'report' AS kind, 't' || (i // 2) AS object_id,"
        ...     " TIMESTAMPTZ '2020-01-01 00:00:00+00' + INTERVAL (i) MINUTE AS ts,"
        ...     " 'r' || i AS source_id FROM range(6) t(i)")
        >>> d = CoReport(smoothing=0)
        >>> paired = DuckDBEngine(con).pair("a", [CoAction(window=d.window,
        ...     kinds=("report",), min_weight=d.min_weight, max_object_pairs=d.max_object_pairs)])
        >>> ev = d.from_paired(con, d.unpaired(con, "a"), paired.edges, paired.events)
        >>> ev.edges.project("detector, account_1, account_2, weight, score").fetchall()
        [('co_report', 'u0', 'u1', 3.0, 1.0)]
        """
        check_pairs(keys, "co_report", self.window, ("report",), self.max_object_pairs, _UNPAIRED)
        left_out = viral_objects(con, keys)
        if viral is not None:
            theirs = sorted((str(v["kind"]), str(v["object_id"])) for v in viral)
            ours = sorted((str(v["kind"]), str(v["object_id"])) for v in left_out)
            if theirs != ours:
                raise ConfigError(
                    f"co_report: the pairing left out {len(theirs)} viral targets where "
                    f"these settings leave out {len(ours)}: it was made with other settings"
                )
        marginals = f"_co_report_marginals_{next(_ids)}"
        counted = con.sql(f"SELECT count(*) FROM {keys.objects}").fetchone()
        total = int(counted[0]) if counted else 0
        # Each reporter's distinct targets (every report, viral targets too), as
        # from_pairs counts them, for the accounts that have an edge.
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {marginals} AS
                SELECT platform, actor_id, count(DISTINCT oid)::DOUBLE AS n FROM {keys.rows}
                SEMI JOIN (SELECT platform_1 AS platform, account_1 AS actor_id FROM {edges}
                           UNION SELECT platform_2, account_2 FROM {edges}) t
                USING (platform, actor_id)
                GROUP BY platform, actor_id"""
        )
        columns = self._edge_columns(total)
        found = con.sql(
            f"""SELECT {columns}
                FROM {edges} e
                JOIN {marginals} m1 ON m1.platform = e.platform_1 AND m1.actor_id = e.account_1
                JOIN {marginals} m2 ON m2.platform = e.platform_2 AND m2.actor_id = e.account_2"""
        )
        matched = con.sql(
            "SELECT "
            + ", ".join(
                f"{sql_literal(self.name)} AS detector" if c == "detector" else c
                for c in EVENT_COLUMNS
            )
            + f" FROM {events}"
        )
        notes: dict[str, Any] = {
            "window_seconds": self.window,
            "min_weight": self.min_weight,
            "smoothing": self.smoothing,
            "targets": total,
            "max_object_pairs": self.max_object_pairs,
            "viral_objects": left_out,
        }
        return Evidence(
            edges=found,
            events=matched,
            signals=empty(con, "signals"),
            notes=notes,
            temporary=(marginals,),
        )

    def from_pairs(
        self, con: duckdb.DuckDBPyConnection, keys: Pairs, found: str | None = None
    ) -> Evidence:
        """The evidence from a pairing of the reports already made (with this detector's
        ``window`` and ``max_object_pairs``, kind ``report``), for a caller that shares
        one pairing among detectors (:class:`~concerted.detectors.list_order.ListOrder`
        pairs the same reports); the pairing's tables stay the caller's to drop.
        ``found``, the pairs' figures made already (:meth:`edges_of`, :meth:`derive`),
        stays the caller's too; the events are those of its pairs in ``keys``.

        >>> import duckdb
        >>> con = duckdb.connect()
        >>> keys = pair_keys(con, "(SELECT 'u' AS actor_id, 'x' AS platform,"
        ...     " 'report' AS kind, 't' AS object_id, now() AS ts, 'r' AS source_id)",
        ...     window=10_800, kinds=("report",), max_object_pairs=2_000_000)
        >>> CoReport().from_pairs(con, keys).notes["targets"]
        1
        """
        check_pairs(
            keys, "co_report", self.window, ("report",), self.max_object_pairs, self.min_weight
        )
        made = found is None
        found = self.edges_of(con, keys) if found is None else found
        marginals = f"_co_report_marginals_{next(_ids)}"
        # Distinct targets of all reporters (the objects of the pairing are the reported
        # targets), and of each account that has an edge.
        counted = con.sql(f"SELECT count(*) FROM {keys.objects}").fetchone()
        total = int(counted[0]) if counted else 0
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {marginals} AS
                SELECT aid, count(DISTINCT oid)::DOUBLE AS n FROM {keys.rows}
                SEMI JOIN (SELECT a_1 AS aid FROM {found} UNION SELECT a_2 FROM {found}) t
                USING (aid)
                GROUP BY aid"""
        )
        columns = self._edge_columns(
            total,
            layer="'report' AS layer",
            platform_1="u1.platform AS platform_1",
            account_1="u1.actor_id AS account_1",
            platform_2="u2.platform AS platform_2",
            account_2="u2.actor_id AS account_2",
            first_ts="make_timestamptz(e.first_t) AS first_ts",
            last_ts="make_timestamptz(e.last_t) AS last_ts",
        )
        edges = con.sql(
            f"""SELECT {columns}
                FROM {found} e
                JOIN {marginals} m1 ON m1.aid = e.a_1
                JOIN {marginals} m2 ON m2.aid = e.a_2
                JOIN {keys.accounts} u1 ON u1.aid = e.a_1
                JOIN {keys.accounts} u2 ON u2.aid = e.a_2"""
        )
        events = con.sql(pair_events(keys, found, self.name))
        notes: dict[str, Any] = {
            "window_seconds": self.window,
            "min_weight": self.min_weight,
            "smoothing": self.smoothing,
            "targets": total,
            "max_object_pairs": self.max_object_pairs,
            "viral_objects": viral_objects(con, keys),
        }
        return Evidence(
            edges=edges,
            events=events,
            signals=empty(con, "signals"),
            notes=notes,
            temporary=(found, marginals) if made else (marginals,),
        )
