"""S1 report bursts: more reports on a target in a short time than its own history and
its audience explain.

**What.** For every report, the window of ``window`` seconds that it opens on its
target (the report and every later report on the same target at most ``window``
seconds after it: a sliding window, no bins) holds ``k`` reports. The detector asks how
likely ``k`` or more reports in that window would be if the target went on being
reported at its usual rate, and merges the windows where that is unlikely into
bursts, one per stretch of overlapping windows.

**Why.** A brigade turns a quiet account into one that draws dozens of reports in an
hour; a target with a steady stream of reports (a celebrity, a news page) does not
burst by drawing its usual stream. The unit is the target's own baseline, not a
platform-wide count.

**The model (Gamma-Poisson).** A target's reports arrive as a Poisson process whose
rate is unknown; its prior is a Gamma with the weight of ``prior_days`` days at the
rate ``r · e`` expected of a target of its exposure, and it is updated with the
target's reports outside the window (``N - k`` of them over ``T - w`` days, ``T`` the
span of all reports in the input, ``w`` the window). The reports of the window then
follow a negative binomial, and the tail probability of the window is::

    alpha = prior_days · r · e + (N - k)
    beta  = prior_days + (T - w)                     (days)
    p     = P(X >= k) = I_q(k, alpha),   q = w / (beta + w)

(``I`` the regularised incomplete beta function). The Gamma prior makes this more
cautious than a plain Poisson tail with the rate plugged in: a target with little
history has an uncertain rate. Every report opens one window, so ``p`` is multiplied
by the number of reports in the input (Bonferroni over all windows tested), and a
window belongs to a burst when that adjusted ``p`` is at most ``max_p_value``.

**Exposure.** A big account draws more reports organically. When the ``accounts``
table gives a target's ``followers``, its exposure is
``e = ((1 + followers) / (1 + median followers))^exposure_power`` (1 for targets
without a known follower count, such as posts). The rate ``r`` (reports per day of a
target of median exposure) is fitted over every account in ``accounts``, reported or
not, so that it is not conditioned on being reported: ``r = Σ N_a / (T Σ e_a)``. The
fit is made robust to the bursts it is meant to find by capping each account's count
at the 99.9% Poisson quantile of what the current fit expects of it, until the rate
settles (a brigade's targets would otherwise raise everyone's baseline: on the
simulator's brigade case, seed 0, the plain mean is 0.0155 a day, the capped fit
0.0030, against 0.0027 on the organic case). Without
follower counts, ``r`` is the median of ``N / T`` over the reported targets. On the
simulator, whose organic reports fall on accounts in proportion to their followers,
the linear exposure (``exposure_power`` = 1) fits: accounts with 2^13 to 2^17
followers draw 9, 19, 40, 71 and 130 reports in 14 days.

**Scores.** A burst's score is ``1 - p_adj`` of its strongest window: the chance that
it is not the target's usual rate at work. Any real burst scores close to 1; the
figures in ``detail`` (and the burst's size in ``value``) say how big and how tight
it is.

**Settings.** ``window`` (seconds, default 3,600); ``min_reports`` (the fewest reports
in a window worth testing, default 3: it only bounds the work); ``max_p_value``
(default 0.05, after Bonferroni: the minimum needed to say where a burst begins and
ends, not a flag); ``prior_days`` (weight of the exposure prior in days, default 7);
``exposure_power`` (default 1; 0 ignores followers).

**Evidence.** Signals only, layer ``report``. One ``target`` row per burst:
``related_id`` is the burst id (``burst-`` and 16 hex digits, a hash of platform,
target and first report time), ``value`` the reports in the burst, ``first_ts`` and
``last_ts`` its first and last report, ``score`` as above, and ``detail`` the figures
others need to tell a brigade from an organic spike: distinct reporters, span and
median gap between reports, the peak window's count against what was expected, the
prior rate and followers, the share of the target's reports that fall in the
burst and the most common reason and its share. One ``report`` row per report in a
burst: ``related_id`` the burst id, ``value`` and ``score`` the burst's, ``first_ts``
= ``last_ts`` its time, and its place in the burst in ``detail``.

**Measured** on the simulator (``concerted simulate``, seeds 0 to 2): every brigaded
target bursts (recall 1.0) and 96% of the targets that burst are brigaded; the rest
are the organic report spikes on viral posts and the call-outs, 16 to 22 targets per
case, as many as on the ``organic`` scenario.

**Limitations.** Many people independently reporting a genuinely violating viral post
burst too: S1 cannot tell a brigade from an organic spike, and is not meant to; the
other signals (co-reporting, dense blocks, list order, automation, mobilisation) do.
Views are not in the contracts, so exposure is followers only, and posts get the
median exposure. A target reported steadily at a high rate before a brigade hides a
small brigade; one window length is tested (Kleinberg's multi-scale bursts are not
implemented). Reports are read from the ``report`` actions (so any selection of the
actions, and the null models, apply); ``reports`` adds the target kind and reason.

>>> import duckdb
>>> con = duckdb.connect()
>>> _ = con.execute("CREATE TABLE a AS SELECT 'u' || i AS actor_id, 'x' AS platform,"
...     " 'report' AS kind, CASE WHEN i < 20 THEN 'calm' ELSE 'hit' END AS object_id,"
...     " CASE WHEN i < 20 THEN TIMESTAMPTZ '2020-01-01 00:00:00+00' + INTERVAL (i) DAY"
...     " ELSE TIMESTAMPTZ '2020-01-10 00:00:00+00' + INTERVAL (i) SECOND END AS ts,"
...     " 'r' || i AS source_id FROM range(50) t(i)")
>>> ev = ReportBurst().detect(con, "a")
>>> ev.signals.filter("entity = 'target'").project("id, value").fetchall()
[('hit', 30.0)]
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from scipy import special, stats

from concerted.detectors.base import SIGNAL_COLUMNS, Evidence, empty
from concerted.errors import ConfigError
from concerted.schema import sql_hash, sql_literal

__all__ = ["ReportBurst", "burst_tail", "exposure_rate"]

_ids = itertools.count()
_DAY_US = 86_400_000_000.0
FloatArray = npt.NDArray[np.float64]


def burst_tail(
    k: npt.ArrayLike, alpha: npt.ArrayLike, beta: npt.ArrayLike, window: float
) -> FloatArray:
    """P(X ≥ k) for the negative binomial of a window ``window`` days long, when the
    rate is Gamma(``alpha``, ``beta``) (shape, rate per day).

    >>> burst_tail([0, 1], [2.0, 2.0], [1.0, 1.0], 1.0).round(3).tolist()
    [1.0, 0.75]
    """
    k = np.asarray(k, dtype=np.float64)
    alpha = np.maximum(np.asarray(alpha, dtype=np.float64), 1e-12)
    beta = np.asarray(beta, dtype=np.float64)
    q = window / (beta + window)
    out = np.ones(np.broadcast(k, alpha, beta).shape)
    positive = np.broadcast_to(k > 0, out.shape)
    tail = special.betainc(np.maximum(k, 1.0), alpha, q)
    out[positive] = np.broadcast_to(tail, out.shape)[positive]
    return np.asarray(out, dtype=np.float64)


def exposure_rate(
    counts: npt.ArrayLike, exposure: npt.ArrayLike, days: float, rounds: int = 100
) -> float:
    """Reports per day of a target of exposure 1, fitted over accounts with ``counts``
    reports and ``exposure`` each over ``days``, robust to a few heavily reported ones:
    each count is capped at the 99.9% Poisson quantile of what the fit expects (plus
    one), until the rate settles (at most ``rounds`` times).

    >>> round(exposure_rate([0, 1, 0, 1, 0, 0, 0, 0, 0, 500], [1.0] * 10, 1.0), 2)
    0.8
    """
    n = np.asarray(counts, dtype=np.float64)
    e = np.asarray(exposure, dtype=np.float64)
    # An exact sum, so that the rate does not depend on the order of the accounts
    # (the counts are whole numbers, whose sums are exact anyway).
    total = math.fsum(e.tolist()) * days
    if total <= 0 or n.size == 0:
        return 0.0
    rate = float(n.sum()) / total
    # Exposures repeat (one per follower count): the quantiles of the distinct ones.
    levels, index = np.unique(e, return_inverse=True)
    for _ in range(rounds):
        cap = (stats.poisson.ppf(0.999, np.maximum(rate * levels * days, 1e-12)) + 1.0)[index]
        fitted = float(np.minimum(n, cap).sum()) / total
        if abs(fitted - rate) <= 1e-9 * max(rate, 1e-300):
            return fitted
        rate = fitted
    return rate


@dataclass(frozen=True, kw_only=True)
class ReportBurst:
    """Bursts of reports on a target against its own, exposure-adjusted baseline (see
    the module's notes).

    >>> ReportBurst().window
    3600.0
    """

    name: ClassVar[str] = "report_burst"
    family: ClassVar[str] = "report"
    weight: ClassVar[float] = 0.3
    reads: ClassVar[tuple[str, ...]] = ("reports", "accounts")
    window: float = 3_600.0
    min_reports: int = 3
    max_p_value: float = 0.05
    prior_days: float = 7.0
    exposure_power: float = 1.0

    def __post_init__(self) -> None:
        for field in ("window", "max_p_value", "prior_days", "exposure_power"):
            object.__setattr__(self, field, float(getattr(self, field)))
        if not self.window > 0:
            raise ConfigError(f"report_burst: window must be positive, got {self.window}")
        if self.min_reports < 2:
            raise ConfigError(
                f"report_burst: min_reports must be at least 2, got {self.min_reports}"
            )
        if not 0 < self.max_p_value <= 1:
            raise ConfigError(
                f"report_burst: max_p_value must lie in (0, 1], got {self.max_p_value}"
            )
        if not self.prior_days > 0:
            raise ConfigError(f"report_burst: prior_days must be positive, got {self.prior_days}")
        if not self.exposure_power >= 0:
            raise ConfigError(
                f"report_burst: exposure_power must not be negative, got {self.exposure_power}"
            )

    def detect(self, con: duckdb.DuckDBPyConnection, actions: str) -> Evidence:
        n = next(_ids)
        names = {
            k: f"_report_burst_{k}_{n}"
            for k in ("events", "targets", "windows", "tested", "peaks", "bursts", "members")
        }
        events, targets, windows = names["events"], names["targets"], names["windows"]
        bursts, members = names["bursts"], names["members"]
        has_reports = _has_table(con, "reports")
        has_accounts = _has_table(con, "accounts")
        # Each report with an integer key for its target (a hash of platform and
        # target, checked below), so that windows and joins run on integers.
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {events} AS
                SELECT {sql_hash("platform, object_id")} AS gid, platform,
                       object_id AS target_id, actor_id AS reporter_id,
                       source_id AS report_id, ts, epoch_us(ts) AS t
                FROM {actions} WHERE kind = 'report'"""
        )
        span = con.sql(f"SELECT count(*), min(t), max(t) FROM {events}").fetchone() or (0, 0, 0)
        total = int(span[0])
        if not total:
            for table in names.values():
                con.execute(f"DROP TABLE IF EXISTS {table}")
            return Evidence(
                edges=empty(con, "edges"),
                events=empty(con, "events"),
                signals=empty(con, "signals"),
            )
        window_days = self.window * 1e6 / _DAY_US
        days = max((span[2] - span[1]) / _DAY_US, window_days)

        # Targets with their followers (posts have none) and exposure.
        reference: float | None = None
        if has_accounts:
            row = con.sql(
                """SELECT median(followers) FROM (
                       SELECT max(followers) AS followers FROM accounts
                       WHERE followers IS NOT NULL GROUP BY platform, account_id)"""
            ).fetchone()
            reference = float(row[0]) if row and row[0] is not None else None
        followers = "NULL::BIGINT"
        matched = ""
        if reference is not None:
            followers = "m.followers"
            # Followers of the account a target names, unless its reports say it is a
            # post (ids of posts and accounts may look alike).
            posts = (
                """SELECT DISTINCT r.platform, r.target_id FROM reports r
                   SEMI JOIN f USING (platform, target_id) WHERE r.target_kind = 'post'"""
                if has_reports
                else "SELECT NULL::VARCHAR AS platform, NULL::VARCHAR AS target_id WHERE false"
            )
            matched = f""", f AS (
                    SELECT c.gid, c.platform, c.target_id, max(a.followers) AS followers
                    FROM c JOIN accounts a
                      ON a.platform = c.platform AND a.account_id = c.target_id
                    WHERE a.followers IS NOT NULL GROUP BY ALL),
                m AS (SELECT gid, followers FROM f
                      ANTI JOIN ({posts}) p USING (platform, target_id))"""
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {targets} AS
                SELECT gid, platform, target_id, count(*) AS n
                FROM {events} GROUP BY gid, platform, target_id"""
        )
        _unclash(con, events, targets)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {targets} AS
                WITH c AS (SELECT * FROM {targets}) {matched}
                SELECT c.gid, c.platform, c.target_id, c.n, {followers} AS followers,
                       CASE WHEN {followers} IS NULL THEN 1.0
                            ELSE pow((1.0 + greatest({followers}, 0))
                                     / (1.0 + {reference or 0.0!r}),
                                     {self.exposure_power!r}) END AS exposure
                FROM c {"LEFT JOIN m USING (gid)" if matched else ""}"""
        )
        # The rate r of a target of exposure 1, over every account with followers.
        rate = 0.0
        if reference is not None:
            fetched = con.sql(
                f"""SELECT a.followers, coalesce(t.n, 0)::DOUBLE AS n
                    FROM (SELECT platform, account_id, max(followers)::DOUBLE AS followers
                          FROM accounts WHERE followers IS NOT NULL
                          GROUP BY platform, account_id) a
                    LEFT JOIN (SELECT platform, target_id, n FROM {targets}
                               WHERE followers IS NOT NULL) t
                      ON t.platform = a.platform AND t.target_id = a.account_id"""
            ).fetchnumpy()
            f = np.asarray(fetched["followers"], dtype=np.float64)
            e = ((1.0 + np.maximum(f, 0.0)) / (1.0 + reference)) ** self.exposure_power
            rate = exposure_rate(np.asarray(fetched["n"], dtype=np.float64), e, days)
        if rate <= 0.0:
            # No follower counts: the median reported target's rate.
            row = con.sql(f"SELECT median(n) FROM {targets}").fetchone()
            rate = float(row[0]) / days if row and row[0] is not None else 0.0

        # Every report opens a window; those holding min_reports or more are tested.
        w_us = round(self.window * 1e6)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {windows} AS
                WITH k AS (
                    SELECT gid, t,
                           count(*) OVER (PARTITION BY gid ORDER BY t
                                          RANGE BETWEEN CURRENT ROW AND {w_us} FOLLOWING) AS k
                    FROM {events}
                    SEMI JOIN (SELECT gid FROM {targets} WHERE n >= {self.min_reports}) g
                    USING (gid))
                SELECT DISTINCT k.gid, k.t, k.k, g.n, g.exposure
                FROM k JOIN {targets} g USING (gid)
                WHERE k.k >= {self.min_reports}"""
        )
        got = con.sql(f"SELECT * FROM {windows}").fetch_arrow_table()
        k_arr = got.column("k").to_numpy().astype(np.float64)
        alpha = self.prior_days * rate * got.column("exposure").to_numpy() + (
            got.column("n").to_numpy().astype(np.float64) - k_arr
        )
        beta = self.prior_days + max(days - window_days, 0.0)
        p = np.minimum(burst_tail(k_arr, alpha, beta, window_days) * total, 1.0)
        got = got.append_column("p", pa.array(p, type=pa.float64()))
        got = got.append_column("expected", pa.array(alpha / beta * window_days))
        view = f"_report_burst_view_{n}"
        con.register(view, got)
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {names['tested']} AS SELECT * FROM {view}")
        finally:
            con.unregister(view)
        self._bursts(con, names, w_us, rate, has_reports)
        signals = self._signals(con, bursts, members)
        count = con.sql(f"SELECT count(*) FROM {bursts}").fetchone()
        notes: dict[str, Any] = {
            "window_seconds": self.window,
            "min_reports": self.min_reports,
            "max_p_value": self.max_p_value,
            "prior_days": self.prior_days,
            "exposure_power": self.exposure_power,
            "rate_per_day": rate,
            "reference_followers": reference,
            "days": days,
            "windows_tested": total,
            "bursts": int(count[0]) if count else 0,
        }
        return Evidence(
            edges=empty(con, "edges"),
            events=empty(con, "events"),
            signals=signals,
            notes=notes,
            temporary=tuple(names.values()),
        )

    def _bursts(
        self,
        con: duckdb.DuckDBPyConnection,
        names: dict[str, str],
        w_us: int,
        rate: float,
        has_reports: bool,
    ) -> None:
        """Merge the significant windows of each target into bursts, with their figures."""
        events, targets, tested = names["events"], names["targets"], names["tested"]
        peaks, bursts, members = names["peaks"], names["bursts"], names["members"]
        reason, reasons = "NULL::VARCHAR", ""
        if has_reports:
            reason = "r.reason"
            reasons = """LEFT JOIN reports r
                           ON r.platform = m.platform AND r.report_id = m.report_id"""
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {peaks} AS
                WITH s AS (
                    SELECT gid, t, k, p, expected,
                           CASE WHEN t <= max(t) OVER (PARTITION BY gid
                                    ORDER BY t ROWS BETWEEN UNBOUNDED PRECEDING
                                    AND 1 PRECEDING) + {w_us} THEN 0 ELSE 1 END AS fresh
                    FROM {tested} WHERE p <= {self.max_p_value!r}),
                n AS (SELECT *, sum(fresh) OVER (PARTITION BY gid ORDER BY t
                                                 ROWS UNBOUNDED PRECEDING) AS number
                      FROM s)
                SELECT gid, number, min(t) AS lo, max(t) + {w_us} AS hi,
                       min(p) AS p, arg_min(k, (p, t)) AS peak,
                       arg_min(expected, (p, t)) AS expected
                FROM n GROUP BY gid, number"""
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {members} AS
                WITH m AS (
                    SELECT e.gid, e.platform, e.target_id, e.report_id, e.reporter_id, e.ts,
                           e.t, b.lo, b.number
                    FROM {events} e JOIN {peaks} b
                      ON b.gid = e.gid AND e.t BETWEEN b.lo AND b.hi)
                SELECT m.*, {reason} AS reason FROM m {reasons}"""
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {bursts} AS
                WITH m AS (
                    SELECT gid, number, count(*) AS reports,
                           count(DISTINCT reporter_id) AS reporters,
                           min(t) AS first_t, max(t) AS last_t
                    FROM {members} GROUP BY ALL),
                gaps AS (
                    SELECT gid, number, median(gap) AS median_gap FROM (
                        SELECT gid, number,
                               t - lag(t) OVER (PARTITION BY gid, number
                                                ORDER BY t, report_id) AS gap
                        FROM {members}) WHERE gap IS NOT NULL GROUP BY ALL),
                reasons AS (
                    SELECT gid, number,
                           arg_max(reason, (c, reason)) AS reason, max(c) AS c FROM (
                        SELECT gid, number, reason, count(*) AS c
                        FROM {members} WHERE reason IS NOT NULL GROUP BY ALL)
                    GROUP BY ALL)
                SELECT b.gid, t.platform, t.target_id, b.number, b.p, b.peak, b.expected,
                       m.reports, m.reporters, m.first_t, m.last_t,
                       coalesce(g.median_gap, 0) / 1e6 AS median_gap,
                       r.reason, coalesce(r.c, 0) AS reason_count,
                       t.n AS target_reports, t.followers,
                       {rate!r} * t.exposure AS baseline,
                       'burst-' || left(md5(t.platform || chr(31) || t.target_id || chr(31)
                                            || m.first_t::VARCHAR), 16) AS burst_id
                FROM {peaks} b
                JOIN m USING (gid, number)
                LEFT JOIN gaps g USING (gid, number)
                LEFT JOIN reasons r USING (gid, number)
                JOIN {targets} t USING (gid)"""
        )

    def _signals(
        self, con: duckdb.DuckDBPyConnection, bursts: str, members: str
    ) -> duckdb.DuckDBPyRelation:
        name = sql_literal(self.name)
        minutes = f"{self.window / 60:g}"
        target_detail = f"""
            b.reports || ' reports from ' || b.reporters || ' reporters in '
            || round((b.last_t - b.first_t) / 60e6, 1) || ' min (median gap '
            || round(b.median_gap, 1) || ' s); peak ' || b.peak || ' in {minutes} min where '
            || printf('%.3g', b.expected) || ' expected (prior '
            || printf('%.3g', b.baseline) || ' a day'
            || coalesce(', ' || b.followers || ' followers', '') || '); '
            || round(100.0 * b.reports / b.target_reports)::BIGINT || '% of the target''s '
            || b.target_reports || ' reports'
            || coalesce('; top reason ' || b.reason || ' ('
                        || round(100.0 * b.reason_count / b.reports)::BIGINT || '%)', '')"""
        target_rows = f"""
            SELECT {name} AS detector, 'report' AS layer, 'target' AS entity, b.platform,
                   b.target_id AS id, (1.0 - b.p)::DOUBLE AS score, b.reports::DOUBLE AS value,
                   b.burst_id AS related_id, make_timestamptz(b.first_t) AS first_ts,
                   make_timestamptz(b.last_t) AS last_ts, {target_detail} AS detail
            FROM {bursts} b"""
        report_rows = f"""
            SELECT {name} AS detector, 'report' AS layer, 'report' AS entity, m.platform,
                   m.report_id AS id, (1.0 - b.p)::DOUBLE AS score, b.reports::DOUBLE AS value,
                   b.burst_id AS related_id, m.ts AS first_ts, m.ts AS last_ts,
                   'report ' || row_number() OVER (PARTITION BY m.gid, m.number
                                                   ORDER BY m.t, m.report_id)
                   || ' of ' || b.reports || ' in a burst on target ' || m.target_id || ', '
                   || round((m.t - b.first_t) / 60e6, 1) || ' min after its first' AS detail
            FROM {members} m JOIN {bursts} b USING (gid, number)"""
        columns = ", ".join(SIGNAL_COLUMNS)
        return con.sql(f"SELECT {columns} FROM ({target_rows} UNION ALL {report_rows})")


def _unclash(con: duckdb.DuckDBPyConnection, events: str, targets: str) -> None:
    """Number the targets instead if two of them ever share a hash."""
    row = con.sql(f"SELECT count(*) - count(DISTINCT gid) FROM {targets}").fetchone()
    if not row or not row[0]:
        return
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE {targets} AS
            SELECT (row_number() OVER ())::BIGINT AS gid, * EXCLUDE (gid) FROM {targets};
            UPDATE {events} e SET gid = g.gid FROM {targets} g
            WHERE g.platform IS NOT DISTINCT FROM e.platform
              AND g.target_id IS NOT DISTINCT FROM e.target_id"""
    )


def _has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? "
        "UNION ALL SELECT count(*) FROM duckdb_views() WHERE view_name = ?",
        [table, table],
    ).fetchall()
    return sum(int(r[0]) for r in row) > 0
