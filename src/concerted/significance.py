"""Which co-action edges are more than chance: a null model and false-discovery control.

Peers cut at a percentile of edge weights (CooRTweet keeps the top half, CooRnet the
top 10%), so they flag something in any data, organic or not. concerted asks instead
how many pairs as strong as each one chance alone would produce, and keeps an edge
only when the share of chance among edges at least as strong stays below a
false-discovery rate.

**The test.** The unit is the account pair, over all the layers (action kinds) it was
found on: its statistic is its total weight, the distinct objects the two accounts
acted on together, summed over layers. The detector is run again on ``replicates``
randomised copies of the actions. Writing :math:`N_0(w)` for the pairs of weight at
least :math:`w` over all replicates and :math:`N(w)` for the observed ones, a pair of
weight :math:`w` gets

* ``expected`` = :math:`N_0(w) / R`: how many pairs at least this strong chance alone
  yields, per randomised copy;
* ``p_value`` = :math:`(N_0(w) + 1) / (N_0(1) + 1)`: how rare that weight is among
  the pairs that co-act by chance at all;
* ``q_value``: Benjamini-Hochberg over the observed pairs, which with these p-values is
  the estimated false-discovery rate :math:`N_0(w)/(R\\,N(w))` made monotone;
* ``significant`` when ``q_value`` ≤ ``fdr``.

**The null models** (``null``):

``relabel`` (default)
    Within each platform, the accounts are shuffled over the posts (the actions'
    sources): every post keeps its actions and its time, so every object keeps its
    times (a viral burst stays a burst) and a post's link and its domain still go
    together; every account keeps its number of posts; who acted with whom is random.
    It answers the question an analyst asks of a network: do the same accounts meet
    again and again beyond what their activity and the content's popularity explain?
``shift``
    Each account's timeline is shifted by its own random offset, circularly over the
    span of the data. It keeps each account's rhythm and objects but breaks every
    object's burst, so a shifted copy holds few chance pairs to compare with.
``shuffle``
    Within each object, the times are shuffled over its actions. It keeps who acted on
    what and the object's burst, so it cannot see a network whose content only the
    network shares: every randomised copy keeps the network's co-action.

The figures behind the choice of ``relabel``, measured on the simulator, are in
``docs/analysis.md``.

**Copies of a pairing.** A detector's copies are made of the actions and run through
the whole detector (:meth:`Significance.null_weights`). Where the edges are a co-action
pairing's (co-reporting, in the brigade stage), :meth:`Significance.null_weights_of_pairing`
makes them of the pairing's rows instead: ``relabel`` on their integer keys
(:func:`relabelled_rows`), and the pairs of a copy counted as they stream, never
stored. On 10 million synthetic reports a copy then takes about 20 s instead of 40.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from concerted.detectors.base import Detector
from concerted.detectors.coaction import Pairs, pair_keys, pair_weight_counts
from concerted.errors import ConfigError
from concerted.schema import sql_literal

__all__ = [
    "NULL_MODELS",
    "Significance",
    "benjamini_hochberg",
    "null_actions",
    "relabelled_rows",
]

_ids = itertools.count()

NullModel = Literal["relabel", "shift", "shuffle"]
NULL_MODELS: tuple[str, ...] = ("relabel", "shift", "shuffle")

# Every query keeps the actions contract's columns. The random order comes from a hash
# of the row and the replicate's seed, so a replicate is the same on every run.
_NULLS: dict[str, str] = {
    "relabel": """(
        WITH x AS (SELECT * FROM {actions} {where}),
        sources AS (SELECT DISTINCT platform, source_id, actor_id FROM x),
        slots AS (SELECT platform, source_id, actor_id AS was,
                         row_number() OVER (PARTITION BY platform ORDER BY
                             hash(source_id, actor_id, {seed}), source_id, actor_id) AS i
                  FROM sources),
        actors AS (SELECT platform, actor_id,
                          row_number() OVER (PARTITION BY platform ORDER BY
                              hash(actor_id, source_id, {seed2}), actor_id, source_id) AS i
                   FROM sources)
        SELECT a.actor_id, x.platform, x.kind, x.object_id, x.ts, x.source_id
        FROM x JOIN slots s ON s.platform = x.platform AND s.source_id = x.source_id
                           AND s.was = x.actor_id
        JOIN actors a ON a.platform = s.platform AND a.i = s.i)""",
    "shift": """(
        WITH x AS (SELECT * FROM {actions} {where}),
        span AS (SELECT min(epoch_us(ts)) AS lo,
                        max(epoch_us(ts)) - min(epoch_us(ts)) + 1 AS len FROM x)
        SELECT actor_id, platform, kind, object_id,
               make_timestamptz(lo + (epoch_us(ts) - lo
                   + (hash(platform, actor_id, {seed}) % len)::BIGINT) % len) AS ts,
               source_id
        FROM x, span)""",
    "shuffle": """(
        WITH x AS (SELECT * FROM {actions} {where}),
        times AS (SELECT kind, object_id, ts,
                         row_number() OVER (PARTITION BY kind, object_id ORDER BY
                             hash(ts, source_id, actor_id, {seed}), ts, source_id, actor_id)
                             AS i
                  FROM x),
        rest AS (SELECT kind, object_id, platform, actor_id, source_id,
                        row_number() OVER (PARTITION BY kind, object_id ORDER BY
                            hash(actor_id, source_id, ts, {seed2}), actor_id, source_id, ts)
                            AS i
                 FROM x)
        SELECT r.actor_id, r.platform, t.kind, t.object_id, t.ts, r.source_id
        FROM times t JOIN rest r USING (kind, object_id, i))""",
}


def null_actions(
    actions: str, *, null: str, seed: int, kinds: tuple[str, ...] | None = None
) -> str:
    """A parenthesised query: one randomised copy of the actions under ``null``.

    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE a AS SELECT 'u' || (i % 7) AS actor_id, 'x' AS platform,"
    ...     " 'repost' AS kind, 'o' || (i % 5) AS object_id,"
    ...     " TIMESTAMPTZ '2020-01-01 00:00:00+00' + INTERVAL (i) MINUTE AS ts,"
    ...     " 'p' || i AS source_id FROM range(50) t(i)")
    >>> q = null_actions("a", null="relabel", seed=1)
    >>> con.sql(f"SELECT count(*), count(DISTINCT source_id) FROM {q}").fetchall()
    [(50, 50)]
    >>> kept = "SELECT actor_id, count(*) FROM {} GROUP BY 1 ORDER BY 1"
    >>> con.sql(kept.format(q)).fetchall() == con.sql(kept.format("a")).fetchall()
    True
    """
    if null not in _NULLS:
        raise ConfigError(f"no null model named {null!r}; known: {', '.join(NULL_MODELS)}")
    where = ""
    if kinds is not None:
        where = f"WHERE kind IN ({', '.join(sql_literal(k) for k in kinds)})"
    return _NULLS[null].format(actions=actions, where=where, seed=int(seed), seed2=int(seed) + 7919)


def relabelled_rows(con: duckdb.DuckDBPyConnection, rows: str, *, seed: int) -> str:
    """The ``relabel`` null of :func:`null_actions` on a pairing's rows
    (:class:`~concerted.detectors.coaction.Pairs`): within each platform, the accounts
    are shuffled over the (source, account) slots, and every row of a slot takes the
    slot's new account. Everything but the account is kept (row, kind, object, time,
    bucket), so every object keeps its times and every account its number of sources.
    Joins and sorts run on integers. Returns the name of a temporary table laid out
    as the rows' keys (``rid, kid, oid, aid, t, b``), one row for each of ``rows``.

    >>> from concerted.detectors.coaction import pair_keys
    >>> con = duckdb.connect()
    >>> keys = pair_keys(con, "(SELECT 'u' || (i % 7) AS actor_id, 'x' AS platform,"
    ...     " 'report' AS kind, 'o' || (i % 5) AS object_id, to_timestamp(i) AS ts,"
    ...     " 'p' || i AS source_id FROM range(50) t(i))", window=60)
    >>> copy = relabelled_rows(con, keys.rows, seed=1)
    >>> per_account = "SELECT aid, count(*) FROM {} GROUP BY 1 ORDER BY 1"
    >>> con.sql(per_account.format(copy)).fetchall() == con.sql(
    ...     per_account.format(keys.rows)).fetchall()
    True
    """
    table = f"_null_rows_{next(_ids)}"
    seed, seed2 = int(seed), int(seed) + 7919
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {table} AS
            WITH k AS (SELECT rid, kid, oid, aid, t, b, hash(platform) AS pc,
                              hash(platform, source_id) AS sid FROM {rows}),
            s AS (SELECT DISTINCT pc, sid, aid FROM k),
            slots AS (SELECT pc, sid, aid AS was,
                             row_number() OVER (PARTITION BY pc ORDER BY
                                 hash(sid, aid, {seed}), sid, aid) AS i
                      FROM s),
            actors AS (SELECT pc, aid, row_number() OVER (PARTITION BY pc ORDER BY
                                  hash(aid, sid, {seed2}), aid, sid) AS i
                       FROM s)
            SELECT k.rid, k.kid, k.oid, a.aid, k.t, k.b
            FROM k JOIN slots x ON x.sid = k.sid AND x.was = k.aid
            JOIN actors a ON a.pc = x.pc AND a.i = x.i"""
    )
    return table


def benjamini_hochberg(p: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input's order.

    >>> benjamini_hochberg([0.01, 0.04, 0.03, 0.5]).round(3).tolist()
    [0.04, 0.053, 0.053, 0.5]
    """
    values = np.asarray(p, dtype=np.float64)
    m = values.size
    if m == 0:
        return values.copy()
    order = np.argsort(values, kind="stable")
    ranked = values[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out


@dataclass(frozen=True, kw_only=True)
class Significance:
    """Tests a detector's account pairs against ``replicates`` randomised copies.

    >>> Significance().null
    'relabel'
    """

    name: ClassVar[str] = "significance"
    null: str = "relabel"
    replicates: int = 3
    fdr: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        if self.null not in NULL_MODELS:
            raise ConfigError(
                f"significance: no null model {self.null!r}; known: {', '.join(NULL_MODELS)}"
            )
        if self.replicates < 1:
            raise ConfigError("significance: replicates must be at least 1")
        if not 0 < self.fdr < 1:
            raise ConfigError(f"significance: fdr must lie between 0 and 1, got {self.fdr}")

    def null_weights(
        self,
        con: duckdb.DuckDBPyConnection,
        actions: str,
        detector: Detector,
        kinds: tuple[str, ...] | None = None,
    ) -> npt.NDArray[np.int64]:
        """For every weight w ≥ 1, the pairs of total weight exactly w, summed over the
        replicates (index 0 unused)."""
        counts = np.zeros(2, dtype=np.int64)
        for r in range(self.replicates):
            shuffled = null_actions(actions, null=self.null, seed=self.seed * 1000 + r, kinds=kinds)
            evidence = detector.detect(con, shuffled)
            rows = con.sql(
                f"""SELECT w::BIGINT, count(*) FROM (
                        SELECT sum(weight) AS w FROM ({evidence.edges.sql_query()})
                        GROUP BY platform_1, account_1, platform_2, account_2)
                    GROUP BY 1"""
            ).fetchall()
            evidence.release(con)
            for w, n in rows:
                if w >= counts.size:
                    counts = np.pad(counts, (0, w + 1 - counts.size))
                counts[w] += n
        return counts

    def null_weights_of_pairing(
        self, con: duckdb.DuckDBPyConnection, keys: Pairs, *, min_weight: int = 1
    ) -> npt.NDArray[np.int64]:
        """:meth:`null_weights` for a co-action detector whose edges are a pairing's
        (:func:`~concerted.detectors.coaction.pair_edges` with ``min_weight``), from
        the pairing itself: the randomised copies are made of its rows and their pairs
        only counted, never stored. Under ``relabel`` the copy is made on the rows'
        integer keys (:func:`relabelled_rows`), the same null as :func:`null_actions`
        gives; the other nulls are made of the rows' actions."""
        counts = np.zeros(2, dtype=np.int64)
        for r in range(self.replicates):
            seed = self.seed * 1000 + r
            if self.null == "relabel":
                rows = relabelled_rows(con, keys.rows, seed=seed)
                got = pair_weight_counts(con, keys, rows, min_weight=min_weight)
                con.execute(f"DROP TABLE IF EXISTS {rows}")
            else:
                shuffled = null_actions(keys.rows, null=self.null, seed=seed)
                copy = pair_keys(
                    con,
                    f"(SELECT actor_id, platform, kind, object_id, ts, source_id FROM {shuffled})",
                    window=keys.window if keys.window is not None else 0.0,
                    kinds=keys.kinds,
                    max_object_pairs=keys.max_object_pairs,
                    min_objects=keys.min_objects,
                )
                got = pair_weight_counts(con, copy, min_weight=min_weight)
                for table in copy.tables:
                    con.execute(f"DROP TABLE IF EXISTS {table}")
            for w, n in got.items():
                if w >= counts.size:
                    counts = np.pad(counts, (0, w + 1 - counts.size))
                counts[w] += n
        return counts

    def test(
        self,
        con: duckdb.DuckDBPyConnection,
        edges: str,
        null_counts: npt.NDArray[np.int64],
    ) -> tuple[duckdb.DuckDBPyRelation, dict[str, Any]]:
        """``edges`` (a table in the evidence contract) with ``expected``, ``p_value``,
        ``q_value`` and ``significant`` filled, and a note of the figures behind them."""
        observed = con.sql(
            f"""SELECT w::BIGINT, count(*) FROM (
                    SELECT sum(weight) AS w FROM {edges}
                    GROUP BY platform_1, account_1, platform_2, account_2)
                GROUP BY 1 ORDER BY 1"""
        ).fetchall()
        top = max([w for w, _ in observed] + [null_counts.size - 1, 1])
        obs = np.zeros(top + 2, dtype=np.int64)
        for w, n in observed:
            obs[w] = n
        null = np.zeros(top + 2, dtype=np.int64)
        null[: null_counts.size] = null_counts
        # Tails: pairs of weight at least w.
        obs_tail = np.cumsum(obs[::-1])[::-1]
        null_tail = np.cumsum(null[::-1])[::-1]
        expected = null_tail / self.replicates
        p = (null_tail + 1) / (null_tail[1] + 1)
        weights = np.arange(top + 2)
        # BH over the observed pairs: at weight w, m pairs tested and N(w) at least w.
        m = int(obs_tail[1])
        with np.errstate(divide="ignore", invalid="ignore"):
            raw_q = np.where(obs_tail > 0, p * m / np.maximum(obs_tail, 1), 1.0)
        # Monotone: a heavier pair is never less significant than a lighter one.
        q = np.minimum(np.minimum.accumulate(raw_q), 1.0)
        rows = [
            f"({int(w)}, {float(expected[w])!r}, {float(p[w])!r}, {float(q[w])!r})"
            for w in weights
            if obs[w] > 0
        ]
        by_weight = (
            "SELECT w::BIGINT AS w, expected::DOUBLE AS expected, p_value::DOUBLE AS p_value, "
            f"q_value::DOUBLE AS q_value FROM (VALUES {', '.join(rows)}) t(w, expected, "
            "p_value, q_value)"
            if rows
            else "SELECT 0::BIGINT AS w, 0.0 AS expected, 1.0 AS p_value, 1.0 AS q_value "
            "WHERE false"
        )
        tested = con.sql(
            f"""
            WITH pairs AS (
                SELECT platform_1, account_1, platform_2, account_2, sum(weight)::BIGINT AS w
                FROM {edges} GROUP BY ALL),
            by_weight AS ({by_weight})
            SELECT e.* EXCLUDE (expected, p_value, q_value, significant),
                   s.expected, s.p_value, s.q_value, s.q_value <= {self.fdr!r} AS significant
            FROM {edges} e
            JOIN pairs USING (platform_1, account_1, platform_2, account_2)
            JOIN by_weight s ON s.w = pairs.w
            """
        )
        cut = next((int(w) for w in weights[1:] if obs[w] > 0 and q[w] <= self.fdr), None)
        notes = {
            "null": self.null,
            "replicates": self.replicates,
            "fdr": self.fdr,
            "seed": self.seed,
            "pairs_tested": m,
            "min_significant_weight": cut,
            "pairs_significant": int(obs_tail[cut]) if cut is not None else 0,
            "by_weight": [
                {
                    "weight": int(w),
                    "observed_at_least": int(obs_tail[w]),
                    "expected_at_least": float(expected[w]),
                    "q_value": float(q[w]),
                }
                for w in weights[1:]
                if obs[w] > 0 or null[w] > 0
            ],
        }
        return tested, notes

    def null_statistics(
        self,
        con: duckdb.DuckDBPyConnection,
        actions: str,
        detector: Detector,
        kinds: tuple[str, ...] | None = None,
        statistic: str = "sum(weight)",
    ) -> npt.NDArray[np.float64]:
        """The ``statistic`` of every pair the detector finds in the replicates, pooled
        over them and sorted: the null distribution :meth:`test_statistic` reads.

        ``statistic`` is an SQL aggregate over a pair's edge rows (one per layer), such
        as ``sum(weight)`` (what :meth:`null_weights` counts) or ``max(score)`` (a
        similarity in [0, 1], as synchrony and rhythm give).
        """
        parts: list[npt.NDArray[np.float64]] = [np.zeros(0)]
        for r in range(self.replicates):
            shuffled = null_actions(actions, null=self.null, seed=self.seed * 1000 + r, kinds=kinds)
            evidence = detector.detect(con, shuffled)
            values = con.sql(
                f"""SELECT ({statistic})::DOUBLE AS s FROM ({evidence.edges.sql_query()})
                    GROUP BY platform_1, account_1, platform_2, account_2"""
            ).fetchnumpy()["s"]
            evidence.release(con)
            parts.append(np.asarray(values, dtype=np.float64))
        return np.sort(np.concatenate(parts))

    def test_statistic(
        self,
        con: duckdb.DuckDBPyConnection,
        edges: str,
        null_values: npt.ArrayLike,
        statistic: str = "sum(weight)",
    ) -> tuple[duckdb.DuckDBPyRelation, dict[str, Any]]:
        """:meth:`test` for any statistic, whole or not: each pair's ``statistic`` (an
        SQL aggregate over its edge rows) against the pooled null values of
        :meth:`null_statistics`. With :math:`N_0(s)` the null pairs of statistic at
        least :math:`s` and :math:`N(s)` the observed ones, ``expected`` =
        :math:`N_0(s)/R`, ``p_value`` = :math:`(N_0(s) + 1) / (N_0 + 1)` over all
        :math:`N_0` null pairs, and ``q_value`` the Benjamini-Hochberg
        :math:`p m / N(s)`, made monotone so that a stronger pair is never less
        significant. For a whole-number ``sum(weight)`` of at least 1 it gives what
        :meth:`test` gives. The relation returned reads a temporary table of the
        pairs' statistics, which stays on the connection.
        """
        null = np.sort(np.asarray(null_values, dtype=np.float64))
        table = f"_significance_pairs_{next(_ids)}"
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {table} AS
                SELECT platform_1, account_1, platform_2, account_2,
                       ({statistic})::DOUBLE AS s
                FROM {edges} GROUP BY platform_1, account_1, platform_2, account_2"""
        )
        observed = np.sort(
            np.asarray(con.sql(f"SELECT s FROM {table}").fetchnumpy()["s"], dtype=np.float64)
        )
        values = np.unique(observed)
        null_tail = null.size - np.searchsorted(null, values, side="left")
        obs_tail = observed.size - np.searchsorted(observed, values, side="left")
        m = int(observed.size)
        expected = null_tail / self.replicates
        p = (null_tail + 1) / (null.size + 1)
        raw_q = p * m / np.maximum(obs_tail, 1)
        q = np.minimum(np.minimum.accumulate(raw_q), 1.0)
        name = f"{table}_by_value"
        con.register(
            name,
            pa.table(
                {
                    "s": pa.array(values, pa.float64()),
                    "expected": pa.array(expected.astype(np.float64), pa.float64()),
                    "p_value": pa.array(p.astype(np.float64), pa.float64()),
                    "q_value": pa.array(q.astype(np.float64), pa.float64()),
                }
            ),
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {name}_t AS SELECT * FROM {name}; "
            f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT t.*, v.expected, v.p_value, "
            f"v.q_value FROM {table} t JOIN {name}_t v USING (s)"
        )
        con.unregister(name)
        con.execute(f"DROP TABLE {name}_t")
        tested = con.sql(
            f"""
            SELECT e.* EXCLUDE (expected, p_value, q_value, significant),
                   s.expected, s.p_value, s.q_value, s.q_value <= {self.fdr!r} AS significant
            FROM {edges} e
            JOIN {table} s USING (platform_1, account_1, platform_2, account_2)
            """
        )
        passed = values[q <= self.fdr]
        cut = float(passed[0]) if passed.size else None
        shown = np.unique(np.quantile(values, np.linspace(0, 1, 11))) if values.size else values
        at = np.searchsorted(values, shown, side="left")
        notes = {
            "null": self.null,
            "replicates": self.replicates,
            "fdr": self.fdr,
            "seed": self.seed,
            "statistic": statistic,
            "pairs_tested": m,
            "null_pairs": int(null.size),
            "min_significant_statistic": cut,
            "pairs_significant": int(obs_tail[q <= self.fdr][0]) if passed.size else 0,
            "by_statistic": [
                {
                    "statistic": float(values[i]),
                    "observed_at_least": int(obs_tail[i]),
                    "expected_at_least": float(expected[i]),
                    "q_value": float(q[i]),
                }
                for i in at
            ],
        }
        return tested, notes
