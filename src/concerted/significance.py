"""Which co-action edges are more than chance: a null model and false-discovery control.

Peers cut at a percentile of edge weights (CooRTweet keeps the top half, CooRnet the
top 10%), so they flag something in any data, organic or not. concerted asks instead
how many pairs as strong as each one chance alone would produce, and keeps an edge
only when the share of chance among edges at least as strong stays below a
false-discovery rate.

**The test** (``null = "stratified"``, the default). The unit is the account pair,
over all the layers (action kinds) it was found on. Its statistic is how many times
the two met: in each stratum of time (a day by default), the fewer of the two
accounts' posts that were matched, summed over strata, so a post whose link, domain
and hashtags all matched counts once and an account that reposts one thing three
times does not meet three times. Chance spreads each stratum's meetings over the
pairs of accounts in proportion to how much each pair could meet (the product of
their posts in that stratum), which gives every pair its own expected count; its
p-value is the Poisson tail of its count given that it met at all
(:meth:`Significance.test_stratified`). This is the analytic form of relabelling
accounts over posts within each day: it keeps each account's active days and volume
and each day's bursts, and needs no randomised copy, so its p-values have no floor.
``q_value`` is Benjamini-Hochberg over the pairs tested, and ``significant`` means
``q_value`` ≤ ``fdr``.

Why per pair and per day: accounts in real archives live for weeks, not for the
archive's years, and two accounts never active on the same day cannot meet by chance.
A null that spreads each account's posts over the whole span (``relabel``) expects
random accounts to meet far more partners than real ones do, and then certifies only
the very heaviest pairs; one cut for the whole network cannot tell a pair of light
accounts meeting four times from a pair of heavy ones doing the same.

**Tests against randomised copies** (``null`` = ``relabel``, ``shift`` or
``shuffle``, and ``copies`` for the statistics that have no analytic tail: synchrony,
rhythm and co-reporting). The detector is run again on ``replicates`` randomised
copies of the actions. Writing :math:`N_0(w)` for the pairs of weight at least
:math:`w` over all replicates and :math:`N(w)` for the observed ones, a pair of
weight :math:`w` gets

* ``expected`` = :math:`N_0(w) / R`: how many pairs at least this strong chance alone
  yields, per randomised copy;
* ``p_value`` = :math:`(N_0(w) + 1) / (N_0(1) + 1)`: how rare that weight is among
  the pairs that co-act by chance at all;
* ``q_value``: Benjamini-Hochberg over the observed pairs, which with these p-values is
  the estimated false-discovery rate :math:`N_0(w)/(R\\,N(w))` made monotone;
* ``significant`` when ``q_value`` ≤ ``fdr``.

The copies:

``relabel``
    Within each platform, the accounts are shuffled over the posts (the actions'
    sources): every post keeps its actions and its time, so every object keeps its
    times (a viral burst stays a burst) and a post's link and its domain still go
    together; every account keeps its number of posts; who acted with whom is random.
``shift``
    Each account's timeline is shifted by its own random offset, circularly over the
    span of the data. It keeps each account's rhythm and objects but breaks every
    object's burst, so a shifted copy holds few chance pairs to compare with.
``shuffle``
    Within each object, the times are shuffled over its actions. It keeps who acted on
    what and the object's burst, so it cannot see a network whose content only the
    network shares: every randomised copy keeps the network's co-action.

The figures behind the choice of ``stratified``, measured on the simulator and on real
data, are in ``docs/analysis.md``.

**Copies of a pairing.** A detector's copies are made of the actions and run through
the whole detector (:meth:`Significance.null_weights`). Where the edges are a co-action
pairing's (co-reporting, in the brigade stage), :meth:`Significance.null_weights_of_pairing`
makes them of the pairing's rows instead: ``relabel`` on their integer keys
(:func:`relabelled_rows`), and the pairs of a copy counted as they stream, never
stored. On 10 million synthetic reports a copy then takes about 20 s instead of 40.
Synchrony's ``relabel`` copies (:meth:`Significance.null_statistics`) are made the same
way: the detector is given each copy's seed (or its draw, :func:`relabelled_accounts`:
which account every (source, account) slot goes to), makes the draw on the slots of
actions it numbered once and moves them, so a copy neither rewrites the actions nor
numbers them again; the values are those of the detector run on :func:`null_actions`'
copy.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import Any, Literal

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from scipy import special

from concerted.config import COPY_NULLS, NULL_MODELS, SignificanceSettings
from concerted.detectors.base import Detector
from concerted.detectors.pairing import Pairs, pair_keys, pair_weight_counts
from concerted.engines.base import EXPECTATION_COLUMNS, Engine, Paired
from concerted.engines.duck import DuckDBEngine
from concerted.errors import ConfigError
from concerted.schema import sql_literal

__all__ = [
    "NULL_MODELS",
    "Significance",
    "Verdict",
    "COPY_NULLS",
    "benjamini_hochberg",
    "truncated_poisson_sf",
    "null_actions",
    "relabelled_accounts",
    "relabelled_rows",
    "edges_with_tails",
]

_ids = itertools.count()

NullModel = Literal["stratified", "relabel", "shift", "shuffle"]

# The relabel null's draw: within each platform, the (source, account) slots in one
# random order and the accounts in another; the i-th slot goes to the i-th account.
_RELABEL_DRAW = """
        x AS (SELECT * FROM {actions} {where}),
        sources AS (SELECT DISTINCT platform, source_id, actor_id FROM x),
        slots AS (SELECT platform, source_id, actor_id AS was,
                         row_number() OVER (PARTITION BY platform ORDER BY
                             hash(source_id, actor_id, {seed}), source_id, actor_id) AS i
                  FROM sources),
        actors AS (SELECT platform, actor_id,
                          row_number() OVER (PARTITION BY platform ORDER BY
                              hash(actor_id, source_id, {seed2}), actor_id, source_id) AS i
                   FROM sources)"""

# Each slot of the relabel null and the account it goes to, which is all that a copy
# changes: a detector that keeps the actions' keys can relabel them itself.
_RELABEL_ACCOUNTS = (
    "(\n        WITH"
    + _RELABEL_DRAW
    + """
        SELECT s.platform, s.source_id, s.was AS actor_id, a.actor_id AS new_actor_id
        FROM slots s JOIN actors a ON a.platform = s.platform AND a.i = s.i)"""
)

# Every query keeps the actions contract's columns. The random order comes from a hash
# of the row and the replicate's seed, so a replicate is the same on every run.
_NULLS: dict[str, str] = {
    "relabel": "(\n        WITH"
    + _RELABEL_DRAW
    + """
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
        raise ConfigError(f"no randomised copy named {null!r}; known: {', '.join(COPY_NULLS)}")
    where = ""
    if kinds is not None:
        where = f"WHERE kind IN ({', '.join(sql_literal(k) for k in kinds)})"
    return _NULLS[null].format(actions=actions, where=where, seed=int(seed), seed2=int(seed) + 7919)


def relabelled_accounts(actions: str, *, seed: int, kinds: tuple[str, ...] | None = None) -> str:
    """A parenthesised query: the draw of :func:`null_actions`' ``relabel`` copy with
    this ``seed``, as one row per (source, account) slot of the actions of ``kinds``
    (``platform, source_id, actor_id``) with the account its actions go to in the copy
    (``new_actor_id``). Every action of a slot takes the slot's new account; nothing
    else changes.

    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE a AS SELECT 'u' || (i % 7) AS actor_id, 'x' AS platform,"
    ...     " 'repost' AS kind, 'o' || (i % 5) AS object_id,"
    ...     " TIMESTAMPTZ '2020-01-01 00:00:00+00' + INTERVAL (i) MINUTE AS ts,"
    ...     " 'p' || i AS source_id FROM range(50) t(i)")
    >>> draw = relabelled_accounts("a", seed=1)
    >>> copy = (f"SELECT m.new_actor_id, a.source_id FROM a "
    ...     f"JOIN {draw} m USING (platform, source_id, actor_id)")
    >>> made = f"SELECT actor_id, source_id FROM {null_actions('a', null='relabel', seed=1)}"
    >>> sorted(con.sql(copy).fetchall()) == sorted(con.sql(made).fetchall())
    True
    """
    where = ""
    if kinds is not None:
        where = f"WHERE kind IN ({', '.join(sql_literal(k) for k in kinds)})"
    return _RELABEL_ACCOUNTS.format(
        actions=actions, where=where, seed=int(seed), seed2=int(seed) + 7919
    )


def relabelled_rows(con: duckdb.DuckDBPyConnection, rows: str, *, seed: int) -> str:
    """The ``relabel`` null of :func:`null_actions` on a pairing's rows
    (:class:`~concerted.detectors.pairing.Pairs`): within each platform, the accounts
    are shuffled over the (source, account) slots, and every row of a slot takes the
    slot's new account. Everything but the account is kept (row, kind, object, time,
    bucket), so every object keeps its times and every account its number of sources.
    Joins and sorts run on integers. Returns the name of a temporary table laid out
    as the rows' keys (``rid, kid, oid, aid, t, b``), one row for each of ``rows``.

    >>> from concerted.detectors.pairing import pair_keys
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


def truncated_poisson_sf(w: npt.ArrayLike, lam: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """:math:`P(X \\ge w \\mid X \\ge 1)` for :math:`X \\sim \\mathrm{Poisson}(\\lambda)`:
    how rare a weight of ``w`` is for a pair that met at all and expected ``lam``.
    Accurate where :math:`\\lambda` is tiny (a weight of 2 then has a p-value of
    about :math:`\\lambda/2`); a pair of weight 1 always has 1.

    >>> truncated_poisson_sf([1, 2, 3, 2], [0.5, 1e-6, 1e-6, 0.0]).round(9).tolist()
    [1.0, 5e-07, 0.0, 0.0]
    """
    weights = np.asarray(w, dtype=np.float64)
    means = np.asarray(lam, dtype=np.float64)
    whole = np.ceil(weights)
    # P(X >= w) = P(X > w - 1); pdtrc is the upper tail of the Poisson sum.
    upper = special.pdtrc(np.maximum(whole - 1, 0), means)
    met = -np.expm1(-means)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(met > 0, upper / met, 0.0)
    p = np.where(whole <= 1, 1.0, p)
    return np.clip(p, 0.0, 1.0)


#: How many Poisson terms :func:`_expected_at_least` adds before it calls ``pdtrc``
#: instead (each term costs about a tenth of a ``pdtrc``).
_TERMS = 6


def _expected_at_least(
    weights: npt.NDArray[np.float64], lam: npt.NDArray[np.float64]
) -> list[float]:
    """For each weight, how many of the pairs chance makes that strong: the sum over
    the pairs of :func:`truncated_poisson_sf` at that weight, for the means ``lam``.

    The largest weight's upper tail is ``pdtrc``'s; a smaller weight's adds the
    Poisson terms between it and the next larger one (positive terms only, so each
    tail stays within a few ulps of its own ``pdtrc``), unless more than
    :data:`_TERMS` lie between. On the demo's 1.5M pairs and 60 weights, a ``pdtrc``
    per weight took 5.9 to 7.3 CPU s, this 0.8.

    >>> lam = np.array([0.5, 1e-6, 0.0, 3.0])
    >>> weights = np.array([1.0, 2.0, 4.0, 30.0])
    >>> plain = [truncated_poisson_sf([w] * 4, lam).sum() for w in weights]
    >>> np.allclose(_expected_at_least(weights, lam), plain, rtol=1e-13, atol=0)
    True
    """
    wholes = np.ceil(weights)
    sums: dict[float, float] = {1.0: float(lam.size)}
    met = -np.expm1(-lam)
    with np.errstate(divide="ignore"):
        log_lam = np.log(lam)
    tail, above = np.zeros(lam.size), np.inf
    for k in sorted({float(k) for k in wholes if k > 1}, reverse=True):
        if above - k > _TERMS:
            tail = special.pdtrc(k - 1, lam)
        else:
            # P(X >= j) = P(X >= j + 1) + pmf(j), down to j = k.
            for j in np.arange(above - 1, k - 1, -1):
                with np.errstate(invalid="ignore"):
                    term = j * log_lam - lam - special.gammaln(j + 1)
                tail += np.exp(np.where(lam > 0, term, -np.inf))
        with np.errstate(divide="ignore", invalid="ignore"):
            p = np.where(met > 0, tail / met, 0.0)
        sums[k] = float(np.clip(p, 0.0, 1.0, out=p).sum())
        above = k
    return [sums[max(float(k), 1.0)] for k in wholes]


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


def edges_with_tails(
    con: duckdb.DuckDBPyConnection,
    edges: str,
    table: str,
    ids: npt.ArrayLike,
    p: npt.ArrayLike,
    q: npt.ArrayLike,
    *,
    fdr: float,
) -> duckdb.DuckDBPyRelation:
    """``edges`` with each pair's expectation and tails filled in: a per-pair test's
    last step, shared by co-action's stratified test and co-reporting's analytic one.

    ``table`` holds one row per pair: its accounts, ``lam`` (the expectation) and ``i``
    (a row number); ``p`` and ``q``, computed in numpy, are in the order of ``ids``, the
    ``i`` read with the values, so that no scan order is relied on. ``table`` is
    replaced by itself with ``p_value`` and ``q_value`` (and without ``i``), and stays on
    the connection for the relation returned to read: ``expected`` = ``lam``,
    ``significant`` = ``q_value <= fdr``.
    """
    name = f"{table}_values"
    con.register(
        name,
        pa.table(
            {
                "i": pa.array(np.asarray(ids, dtype=np.int64)),
                "p_value": pa.array(np.asarray(p, dtype=np.float64), pa.float64()),
                "q_value": pa.array(np.asarray(q, dtype=np.float64), pa.float64()),
            }
        ),
    )
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {table} AS
                SELECT t.* EXCLUDE (i), v.p_value, v.q_value
                FROM {table} t JOIN {name} v USING (i)"""
        )
    finally:
        con.unregister(name)
    return con.sql(
        f"""
        SELECT e.* EXCLUDE (expected, p_value, q_value, significant),
               s.lam AS expected, s.p_value, s.q_value,
               s.q_value <= {fdr!r} AS significant
        FROM {edges} e
        JOIN {table} s USING (platform_1, account_1, platform_2, account_2)
        """
    )


@dataclass(frozen=True)
class Verdict:
    """What a test gives: ``edges``, the edges tested, with ``expected``, ``p_value``,
    ``q_value`` and ``significant`` filled in; ``notes``, what ``run.json`` says of the
    test; ``temporary``, the tables ``edges`` reads, which stay on the connection until
    :meth:`release`. Store ``edges`` first, then release, or the tables stay to the end
    of the run: one row per pair tested (7,296,264 rows for co-action's at 10^7
    actions).

    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TEMP TABLE t AS SELECT 1 AS x")
    >>> Verdict(edges=con.sql("SELECT * FROM t"), notes={}, temporary=("t",)).release(con)
    >>> con.sql("SELECT count(*) FROM duckdb_tables() WHERE table_name = 't'").fetchone()
    (0,)
    """

    edges: duckdb.DuckDBPyRelation
    notes: dict[str, Any]
    temporary: tuple[str, ...] = ()

    def release(self, con: duckdb.DuckDBPyConnection) -> None:
        """Drop the tables :attr:`edges` reads; it cannot be read after."""
        for table in self.temporary:
            con.execute(f"DROP TABLE IF EXISTS {table}")


@dataclass(frozen=True, kw_only=True)
class Significance(SignificanceSettings):
    """Tests a detector's account pairs: per pair under the ``stratified`` null, or
    against ``replicates`` randomised copies. Its settings are
    :class:`~concerted.config.SignificanceSettings` (``[significance]``).

    >>> Significance().null, Significance().copies
    ('stratified', 'relabel')
    >>> Significance.of(SignificanceSettings(fdr=0.05)).fdr
    0.05
    """

    @classmethod
    def of(cls, settings: SignificanceSettings) -> Significance:
        """The test with these settings."""
        if isinstance(settings, Significance):
            return settings
        return cls(**{f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)})

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
            shuffled = null_actions(
                actions, null=self.monte_carlo().null, seed=self.seed * 1000 + r, kinds=kinds
            )
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
        (:func:`~concerted.detectors.pairing.pair_edges` with ``min_weight``), from
        the pairing itself: the randomised copies are made of its rows and their pairs
        only counted, never stored. Under ``relabel`` the copy is made on the rows'
        integer keys (:func:`relabelled_rows`), the same null as :func:`null_actions`
        gives; the other nulls are made of the rows' actions."""
        counts = np.zeros(2, dtype=np.int64)
        for r in range(self.replicates):
            seed = self.seed * 1000 + r
            if self.monte_carlo().null == "relabel":
                rows = relabelled_rows(con, keys.rows, seed=seed)
                got = pair_weight_counts(con, keys, rows, min_weight=min_weight)
                con.execute(f"DROP TABLE IF EXISTS {rows}")
            else:
                shuffled = null_actions(keys.rows, null=self.monte_carlo().null, seed=seed)
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
    ) -> Verdict:
        """``edges`` (a table in the evidence contract) with ``expected``, ``p_value``,
        ``q_value`` and ``significant`` filled, and a note of the figures behind them
        (no temporary table: the weights' tails are a list of values in the query)."""
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
            "null": self.monte_carlo().null,
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
        return Verdict(edges=tested, notes=notes)

    def test_stratified(
        self,
        con: duckdb.DuckDBPyConnection,
        edges: str,
        events: str | Paired,
        actions: str,
        kinds: tuple[str, ...] | None = None,
        *,
        engine: Engine | None = None,
    ) -> Verdict:
        """:meth:`test` under the ``stratified`` null: every pair gets its own expected
        weight, and its p-value is a Poisson tail, so no run of copies sets a floor
        under it.

        ``edges`` and ``events`` are a co-action detector's output (tables or
        parenthesised queries in the evidence contract; ``events`` may be the
        engine's whole :class:`~concerted.engines.base.Paired`, which it may read on
        integers) and ``actions`` the actions it paired, of ``kinds`` (all, if
        None). Time is cut into strata ``stratum``
        seconds long (a day by default). In stratum :math:`s`, account :math:`a`
        made :math:`n_a` posts (distinct sources of its actions), and a pair's
        meetings are the fewer of its two accounts' posts that were matched. The
        pairs met :math:`M` times in all; chance spreads those meetings over the
        pairs in proportion to how much each could meet, :math:`n_a n_b` out of
        :math:`P = \\sum_{a<b} n_a n_b`, so the pair expects

        .. math:: \\lambda_{ab} = \\sum_s n_a n_b \\, M / P,

        and its meetings :math:`w` (summed over strata) get
        :math:`p = P(X \\ge w \\mid X \\ge 1)` for :math:`X \\sim
        \\mathrm{Poisson}(\\lambda_{ab})`: the test is of the pairs that met at all,
        as the copies' p-value is. Two accounts that are never active in the same
        stratum expect nothing; a heavy account expects many partners; a day when
        everyone meets (a viral burst) raises everyone's expectation that day. A
        meeting whose two posts straddle two strata adds the rate of the first one's
        stratum, so no pair that met expects zero. ``expected`` is
        :math:`\\lambda_{ab}`; ``q_value`` is Benjamini-Hochberg over the pairs
        tested.

        The sums over the actions and the events are the ``engine``'s
        (:meth:`~concerted.engines.base.Engine.expectations`; DuckDB on ``con`` by
        default); the tails, on one row per pair, are computed here, and the edges
        are joined to them on ``con``. The edges returned read a temporary table of
        the pairs' tails (:attr:`Verdict.temporary`), and ``edges`` once, so a query
        serves as well as a table.
        """
        # The sums over the actions and the events cross the engine seam; the tails and
        # the false-discovery control, on one row per pair, are computed here.
        engine = engine or DuckDBEngine(con)
        sums = engine.expectations(events, actions, stratum=self.stratum, kinds=kinds)
        table = f"_significance_pairs_{next(_ids)}"
        # Each pair's tail is computed in numpy and joined back by the pair's row
        # number, read with the values so that no scan order is relied on.
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS "
            f"SELECT {', '.join(EXPECTATION_COLUMNS)}, NULL::BIGINT AS i FROM {sums}"
        )
        engine.release(sums)
        con.execute(f"UPDATE {table} SET i = rowid")
        got = con.sql(f"SELECT i, w, lam FROM {table} ORDER BY i").fetchnumpy()
        w = np.asarray(got["w"], dtype=np.float64)
        lam = np.asarray(got["lam"], dtype=np.float64)
        p = truncated_poisson_sf(w, lam)
        q = benjamini_hochberg(p)
        tested = edges_with_tails(con, edges, table, got["i"], p, q, fdr=self.fdr)
        return Verdict(edges=tested, notes=self._stratified_notes(w, lam, p, q), temporary=(table,))

    def _stratified_notes(
        self,
        w: npt.NDArray[np.float64],
        lam: npt.NDArray[np.float64],
        p: npt.NDArray[np.float64],
        q: npt.NDArray[np.float64],
    ) -> dict[str, Any]:
        """What ``run.json`` says of a stratified test: per weight, the pairs observed at
        least that strong, how many of the tested pairs chance makes that strong (the
        sum of their probabilities), and the best q-value there."""
        significant = q <= self.fdr
        by_weight = []
        weights = np.unique(w)[:60]
        for weight, expected in zip(weights, _expected_at_least(weights, lam), strict=True):
            at_least = w >= weight
            by_weight.append(
                {
                    "weight": int(weight) if float(weight).is_integer() else float(weight),
                    "observed_at_least": int(at_least.sum()),
                    "expected_at_least": expected,
                    "q_value": float(q[at_least].min()),
                }
            )
        best = int(np.argmin(q)) if q.size else None
        return {
            "null": self.null,
            "statistic": "meetings",
            "stratum": self.stratum,
            "fdr": self.fdr,
            "pairs_tested": int(w.size),
            "min_significant_weight": float(w[significant].min()) if significant.any() else None,
            "pairs_significant": int(significant.sum()),
            "expected_weight": float(lam.sum()),
            "observed_weight": float(w.sum()),
            "best_q_value": float(q[best]) if best is not None else None,
            "best_pair_weight": float(w[best]) if best is not None else None,
            "best_pair_expected": float(lam[best]) if best is not None else None,
            "by_weight": by_weight,
        }

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
        null = self.monte_carlo().null
        seeds = [self.seed * 1000 + r for r in range(self.replicates)]
        # A detector that keeps the actions' keys (synchrony) relabels them itself
        # under the same draws: the same values, without copying the actions or
        # numbering them again for each copy.
        # One that makes relabel's draws itself from their seeds (synchrony, on the
        # slots it numbered) skips even the draws' SQL.
        of_draws = getattr(detector, "null_statistics_of_draws", None)
        of_seeds = getattr(detector, "null_statistics_of_seeds", None)
        if null == "relabel" and statistic == "sum(weight)" and callable(of_draws):
            where = ""
            if kinds is not None:
                where = f"WHERE kind IN ({', '.join(sql_literal(k) for k in kinds)})"
            chosen = f"(SELECT * FROM {actions} {where})"
            if callable(of_seeds):
                values = of_seeds(con, chosen, seeds)
            else:
                draws = [relabelled_accounts(actions, seed=seed, kinds=kinds) for seed in seeds]
                values = of_draws(con, chosen, draws)
            parts += [np.asarray(v, dtype=np.float64) for v in values]
            return np.sort(np.concatenate(parts))
        for r in range(self.replicates):
            shuffled = null_actions(
                actions, null=self.monte_carlo().null, seed=self.seed * 1000 + r, kinds=kinds
            )
            # A detector that can give its pairs' weights alone (synchrony) skips
            # the rest of its evidence: the same values, a third of the work.
            weights_only = getattr(detector, "null_statistic", None)
            if statistic == "sum(weight)" and callable(weights_only):
                parts.append(np.asarray(weights_only(con, shuffled), dtype=np.float64))
                continue
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
    ) -> Verdict:
        """:meth:`test` for any statistic, whole or not: each pair's ``statistic`` (an
        SQL aggregate over its edge rows) against the pooled null values of
        :meth:`null_statistics`. With :math:`N_0(s)` the null pairs of statistic at
        least :math:`s` and :math:`N(s)` the observed ones, ``expected`` =
        :math:`N_0(s)/R`, ``p_value`` = :math:`(N_0(s) + 1) / (N_0 + 1)` over all
        :math:`N_0` null pairs, and ``q_value`` the Benjamini-Hochberg
        :math:`p m / N(s)`, made monotone so that a stronger pair is never less
        significant. For a whole-number ``sum(weight)`` of at least 1 it gives what
        :meth:`test` gives. The edges read a temporary table of the pairs'
        statistics (:attr:`Verdict.temporary`).
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
            "null": self.monte_carlo().null,
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
        return Verdict(edges=tested, notes=notes, temporary=(table,))
