"""S6, reporter inauthenticity: accounts that look made for reporting.

Brigades pad their numbers with accounts opened days before a campaign, opened
together, that do little besides report. Three layers (``detector``
``reporter_inauthenticity``), read from ``reports``, ``accounts`` (``created_at``) and
``posts`` (for the rest of an account's activity); the ``actions`` relation is not
read.

``account_age``
    How new the account was when it reported. Score :math:`2^{-d/h}` for an age of
    ``d`` days and half-life ``h`` = ``age_half_life`` days (30 by default): 1 for an
    account opened that day, 0.5 at a month, about 0.001 at ten half-lives; ``value``
    is the age in days (a creation date after the report counts as age 0). Rows: each
    ``report`` (``related_id`` the target), and each reporting ``account`` at its
    first report. Rows scoring below 0.001 are left out (absent reads as 0).
    Accounts without ``created_at`` are not scored.
``report_share``
    Reports as a share of everything the account did in the data, reports / (reports
    + posts), smoothed towards the platform's share over active accounts,
    :math:`s = (n_r + a\\,p_0) / (n_r + n_p + a)` with ``a`` = ``prior_strength``;
    score the excess :math:`\\max(0, (s - p_0) / (1 - p_0))`, ``value`` the raw
    share. An account that filed a hundred reports and posted nothing scores near 1;
    one report among twenty posts near 0. Rows on ``account``. Left out when the case
    holds no posts at all (a report log alone cannot tell reporting from the rest).
``creation_burst``
    Reporters created within ``burst_window`` seconds (either side; 6 hours by
    default) of many other reporters of the same platform. The count ``k`` of other
    reporters created that close is compared with what the density of reporters'
    creation dates around that time (within ``baseline_days`` either side, the burst
    window left out, and never less than the platform's average density) leads one
    to expect, ``λ``: the Poisson tail :math:`P = P(X \\ge k \\mid λ)`, corrected for
    the number of reporters tested (Bonferroni, ``M`` reporters with a creation date
    on the platform), gives score :math:`1 - \\min(1, P\\,M)`. Reporters opened one
    after another by the dozen score near 1; the chance coincidences a large
    population always holds score 0. ``value`` is ``k``. Rows on ``account``.

Settings: ``age_half_life`` (days, 30), ``prior_strength`` (5 actions),
``burst_window`` (seconds, 21600), ``baseline_days`` (30). Edges and events are
always empty.

On the simulator (``brigade``, seeds 0 to 2) ``creation_burst`` finds the fake
reporters (created in two bursts weeks before) with precision 0.93 to 1.0 and recall 1.0
among all reporters, ``report_share`` separates brigade members from organic
reporters (F1 0.99), and ``account_age`` ranks fake reporters first (F1 0.94 on seed
0); none of them tells extension-driven reporters from human ones, which is S7's job.

Computation. Reporters are counted once in SQL; only reporters young enough at their
first report are joined to their reports for ``account_age``; the platform's share of
reports comes from the reporters' counts and the number of posting accounts (no union
of all reports and posts); creation bursts count neighbours by binary searches of the
sorted creation times in numpy, as the RANGE windows they replace would.

Limitations. New accounts report in good faith too (a first-time user who meets
abuse), so age is weak alone; the share of reports is only as good as the posts the
case holds for the same accounts and period; the creation burst looks at reporters
only, not at what they reported (co-reporting, S2, does that).

>>> ReporterInauthenticity().age_half_life
30.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import duckdb
import numpy as np
import pyarrow as pa
from scipy.stats import poisson

from concerted.detectors.base import Evidence, empty
from concerted.detectors.columnar import (
    arrow_table,
    as_signals,
    dictionary_codes,
    has_table,
    temp_names,
)
from concerted.errors import ConfigError
from concerted.schema import sql_literal

__all__ = ["ReporterInauthenticity"]

_DAY = 86_400.0
#: Rows of ``account_age`` scoring below this are left out.
_AGE_FLOOR = 0.001


@dataclass(frozen=True, kw_only=True)
class ReporterInauthenticity:
    """New, report-only accounts created together (see the module).

    >>> ReporterInauthenticity(burst_window=3600).burst_window
    3600.0
    """

    name: ClassVar[str] = "reporter_inauthenticity"
    family: ClassVar[str] = "report"
    weight: ClassVar[float] = 0.2
    reads: ClassVar[tuple[str, ...]] = ("reports", "accounts", "posts")
    #: Days after which an account's age score halves.
    age_half_life: float = 30.0
    #: Weight of the platform's share, in actions, when an account's share is smoothed.
    prior_strength: float = 5.0
    #: Seconds either side of a reporter's creation that count as created together.
    burst_window: float = 6 * 3600.0
    #: Days either side of a creation that set the expected density of creations.
    baseline_days: float = 30.0

    def __post_init__(self) -> None:
        for field in ("age_half_life", "prior_strength", "burst_window", "baseline_days"):
            value = float(getattr(self, field))
            object.__setattr__(self, field, value)
            if not value > 0:
                raise ConfigError(f"reporter_inauthenticity: {field} must be positive")
        if self.baseline_days * _DAY <= self.burst_window:
            raise ConfigError(
                "reporter_inauthenticity: baseline_days must span more than burst_window"
            )

    def detect(self, con: duckdb.DuckDBPyConnection, actions: str) -> Evidence:
        none = Evidence(empty(con, "edges"), empty(con, "events"), empty(con, "signals"))
        if not has_table(con, "reports"):
            return none
        t = temp_names("s6", "posters", "reporters", "bursts")
        name = sql_literal(self.name)
        accounts = has_table(con, "accounts")
        posts = (
            has_table(con, "posts")
            and con.execute("SELECT 1 FROM posts LIMIT 1").fetchone() is not None
        )
        created = (
            "LEFT JOIN (SELECT platform, account_id AS reporter_id, min(created_at) AS created_at"
            " FROM accounts GROUP BY ALL) c USING (platform, reporter_id)"
            if accounts
            else ""
        )
        activity = (
            f"LEFT JOIN (SELECT platform, account_id AS reporter_id, posts FROM {t['posters']})"
            " p USING (platform, reporter_id)"
            if posts
            else ""
        )
        if posts:
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE {t["posters"]} AS
                    SELECT platform, account_id, count(*) AS posts FROM posts GROUP BY ALL"""
            )
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {t["reporters"]} AS
            SELECT r.platform, r.reporter_id, r.reports, r.first_ts, r.last_ts,
                   {"c.created_at" if accounts else "NULL::TIMESTAMPTZ"} AS created_at,
                   {"coalesce(p.posts, 0)" if posts else "0"} AS posts
            FROM (SELECT platform, reporter_id, count(*) AS reports, min(ts) AS first_ts,
                         max(ts) AS last_ts FROM reports GROUP BY ALL) r
            {created}
            {activity}
            """
        )
        queries: list[str] = []
        if accounts:
            queries.extend(self._age(t["reporters"], name))
            self._bursts(con, t["reporters"], t["bursts"])
            queries.append(
                f"""SELECT {name} AS detector, 'creation_burst' AS layer, 'account' AS entity,
                           platform, reporter_id AS id, score, k AS value, NULL AS related_id,
                           created_at AS first_ts, created_at AS last_ts,
                           format('created within {{:.1f}} h of {{}} other reporters where '
                                  'about {{:.2f}} were expected', {self.burst_window / 3600},
                                  k, expected) AS detail
                    FROM {t["bursts"]} WHERE score > 0"""
            )
        if posts:
            queries.append(self._share(t["reporters"], t["posters"], name))
        notes: dict[str, Any] = {
            "age_half_life_days": self.age_half_life,
            "burst_window_seconds": self.burst_window,
            "baseline_days": self.baseline_days,
            "prior_strength": self.prior_strength,
            "accounts": accounts,
            "posts": posts,
        }
        return Evidence(
            edges=none.edges,
            events=none.events,
            signals=as_signals(con, queries),
            notes=notes,
            temporary=tuple(t.values()),
        )

    def _age(self, reporters: str, name: str) -> list[str]:
        # A report is no younger than its reporter's first: only reporters young at their
        # first report (with a margin for rounding) are joined to their reports.
        days = "greatest(0.0, (epoch({at}) - epoch(created_at)) / 86400.0)"
        score = f"pow(2.0, -{days} / {self.age_half_life})"
        report_age = days.format(at="r.ts")
        report = f"""
            SELECT {name} AS detector, 'account_age' AS layer, 'report' AS entity, r.platform,
                   r.report_id AS id, {score.format(at="r.ts")} AS score,
                   {report_age} AS value, r.target_id AS related_id,
                   created_at AS first_ts, r.ts AS last_ts,
                   format('account {{:.1f}} days old at this report', {report_age}) AS detail
            FROM reports r
            JOIN (SELECT platform, reporter_id, created_at FROM {reporters}
                  WHERE created_at IS NOT NULL
                    AND {score.format(at="first_ts")} >= {_AGE_FLOOR / 2}) a
                USING (platform, reporter_id)
            WHERE {score.format(at="r.ts")} >= {_AGE_FLOOR}"""
        first_age = days.format(at="first_ts")
        account = f"""
            SELECT {name} AS detector, 'account_age' AS layer, 'account' AS entity, platform,
                   reporter_id AS id, {score.format(at="first_ts")} AS score,
                   {first_age} AS value, NULL AS related_id, created_at AS first_ts,
                   first_ts AS last_ts,
                   format('account {{:.1f}} days old at its first report', {first_age}) AS detail
            FROM {reporters}
            WHERE created_at IS NOT NULL AND {score.format(at="first_ts")} >= {_AGE_FLOOR}"""
        return [report, account]

    def _share(self, reporters: str, posters: str, name: str) -> str:
        a = self.prior_strength
        # The platform's share over every account that posted or reported: reporters'
        # own shares (summed once per distinct count of reports and posts), and 0 for
        # each account that posted and never reported.
        prior = f"""
            WITH mine AS (
                SELECT platform, reports, posts, count(*) AS accounts
                FROM {reporters} GROUP BY ALL),
            sums AS (
                SELECT platform,
                       sum(accounts * CAST(reports / (reports + posts) AS DECIMAL(38, 18)))
                           ::DOUBLE AS shares,
                       sum(accounts) AS reporters,
                       sum(accounts) FILTER (posts > 0) AS posting
                FROM mine GROUP BY ALL),
            posted AS (SELECT platform, count(*) AS posters FROM {posters} GROUP BY ALL)
            SELECT platform,
                   shares / (reporters + coalesce(posters, 0) - coalesce(posting, 0))::BIGINT
                       AS p0
            FROM sums LEFT JOIN posted USING (platform)"""
        smoothed = f"(reports + {a} * p0) / (reports + posts + {a})"
        return f"""
            SELECT {name} AS detector, 'report_share' AS layer, 'account' AS entity, platform,
                   reporter_id AS id, ({smoothed} - p0) / greatest(1.0 - p0, 1e-9) AS score,
                   reports / (reports + posts) AS value, NULL AS related_id,
                   first_ts, last_ts,
                   format('{{}} reports and {{}} posts; usual share of reports {{:.1f}}%',
                          reports, posts, 100 * p0) AS detail
            FROM {reporters} JOIN ({prior}) USING (platform)"""

    def _bursts(self, con: duckdb.DuckDBPyConnection, reporters: str, out: str) -> None:
        """Reporters' creation bursts, with the Poisson tail computed in numpy."""
        w = round(self.burst_window)
        b = round(self.baseline_days * _DAY)
        # Creations within w (and b) seconds either side, as DuckDB's RANGE frames on
        # epoch seconds would count them, by binary searches of the sorted creations.
        data = con.sql(
            f"""SELECT platform, reporter_id, created_at, epoch(created_at) AS s
                FROM {reporters} WHERE created_at IS NOT NULL"""
        ).to_arrow_table()
        seconds = np.asarray(data["s"], dtype=np.float64)
        platform, platforms = dictionary_codes(data["platform"])
        near = np.zeros(len(seconds), dtype=np.int64)
        around = np.zeros(len(seconds), dtype=np.int64)
        m = np.zeros(len(seconds), dtype=np.float64)
        span = np.zeros(len(seconds), dtype=np.float64)
        for p in range(len(platforms)):
            mine = np.flatnonzero(platform == p)
            mine = mine[np.argsort(seconds[mine], kind="stable")]
            ordered = seconds[mine]
            for counts, reach in ((near, w), (around, b)):
                counts[mine] = np.searchsorted(ordered, ordered + reach, side="right")
                counts[mine] -= np.searchsorted(ordered, ordered - reach, side="left")
            m[mine] = len(mine)
            span[mine] = max(ordered[-1] - ordered[0], 2 * b)
        k = (near - 1).astype(np.float64)
        local = (around - near).astype(np.float64) * (2 * w) / (2 * b - 2 * w)
        overall = (m - 1) * (2 * w) / span
        expected = np.maximum(local, overall)
        tail = poisson.sf(k - 1, np.maximum(expected, 1e-12)) if len(k) else np.zeros(0)
        score = np.where(k > 0, 1.0 - np.minimum(1.0, tail * m), 0.0)
        table = pa.table(
            {
                "platform": data["platform"],
                "reporter_id": data["reporter_id"],
                "created_at": data["created_at"],
                "k": pa.array(k),
                "expected": pa.array(expected),
                "score": pa.array(score),
            }
        )
        arrow_table(con, table, out)
