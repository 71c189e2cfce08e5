"""S5, reporter reputation: how often a reporter's earlier reports were upheld.

Where the platform records what became of each report (``reports.outcome``:
``upheld`` or ``rejected``; empty while pending), a reporter whose reports are mostly
rejected is a poor witness, and a stream of reports from such reporters is worth less
than its volume says. This detector reads the ``reports`` table only.

**No hindsight.** A report is scored only from outcomes that could have been known
when it was filed. The contract has no decision time, so an outcome is taken to be
known ``decision_lag`` seconds after the report it concerns was filed (one day by
default): report *q* counts the outcome of an earlier report *e* of the same reporter
when ``e.ts + decision_lag < q.ts``. Outcomes decided later, or reports filed later,
never change the score of an earlier report.

**Score.** With ``u`` of ``n`` such earlier outcomes upheld, the reporter's uphold
rate is smoothed towards the platform's, :math:`\\hat r = (u + a\\,p_0) / (n + a)`
with ``a`` = ``prior_strength``. :math:`p_0` is ``prior_rate`` when set, otherwise
the platform's own uphold rate over the outcomes known by then, :math:`(U + 1) / (N +
2)`. The score is the shortfall against the platform,
:math:`\\max(0, (p_0 - \\hat r) / p_0)`: 0 for a reporter as good as the average or
better, or with no known outcome yet; towards 1 for one whose many earlier reports
were all rejected. ``value`` is :math:`\\hat r`.

Layer ``reputation`` (``detector`` ``reporter_reputation``):

* entity ``report``: every report with at least one earlier known outcome of its
  reporter (``related_id`` the target; ``first_ts`` the first such earlier report,
  ``last_ts`` the report itself);
* entity ``account``: every reporter with at least one outcome, scored from all of
  them and the platform's rate over all outcomes (the reporter's standing at the end
  of the data; ``first_ts``/``last_ts`` their first and last decided report).

Settings: ``decision_lag`` (seconds, 86400), ``prior_strength`` (2 reports),
``prior_rate`` (None: learnt). Edges and events are always empty.

Limitations. Outcomes measure what the platform did, not what was right; a platform
that acts on volume ("enough reports in a day and it acts") upholds a brigade's
reports and so gives its members a good name. concerted's simulator models exactly
such a platform: most brigade reports are upheld, while the everyday trickle of
reports is mostly rejected, so there S5 scores organic reporters above brigade
members and carries no weight against a brigade; it is meant for platforms whose
outcomes come from review of the content. With no outcomes at all it returns nothing.

>>> ReporterReputation().decision_lag
86400.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import duckdb

from concerted.detectors.base import Evidence, empty
from concerted.detectors.report_content import as_signals, has_table, temp_names
from concerted.errors import ConfigError
from concerted.schema import sql_literal

__all__ = ["ReporterReputation"]


@dataclass(frozen=True, kw_only=True)
class ReporterReputation:
    """Reporters whose earlier reports were mostly rejected (see the module).

    >>> ReporterReputation(prior_rate=0.3).prior_rate
    0.3
    """

    name: ClassVar[str] = "reporter_reputation"
    reads: ClassVar[tuple[str, ...]] = ("reports",)
    #: Seconds after a report at which its outcome is taken to be known.
    decision_lag: float = 86_400.0
    #: Weight of the platform's rate, in reports, when a reporter's rate is smoothed.
    prior_strength: float = 2.0
    #: The platform's uphold rate to compare with; None: learnt from outcomes so far.
    prior_rate: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "decision_lag", float(self.decision_lag))
        object.__setattr__(self, "prior_strength", float(self.prior_strength))
        if self.decision_lag < 0:
            raise ConfigError("reporter_reputation: decision_lag must not be negative")
        if not self.prior_strength > 0:
            raise ConfigError("reporter_reputation: prior_strength must be positive")
        if self.prior_rate is not None:
            object.__setattr__(self, "prior_rate", float(self.prior_rate))
            if not 0 < self.prior_rate <= 1:
                raise ConfigError("reporter_reputation: prior_rate must be in (0, 1]")

    def detect(self, con: duckdb.DuckDBPyConnection, actions: str) -> Evidence:
        none = Evidence(empty(con, "edges"), empty(con, "events"), empty(con, "signals"))
        if not has_table(con, "reports"):
            return none
        t = temp_names("s5", "rows", "decided", "mine", "platform", "timeline")
        lag = round(self.decision_lag * 1_000_000)
        a = self.prior_strength
        # Outcomes become known at filing time + lag; per reporter (and per platform) the
        # counts known so far, at each time an outcome became known. Each report then
        # takes the last such time strictly before it (an as-of join), so that only
        # outcomes known strictly before a report count for it.
        con.execute(
            f"""
            -- Integer keys for reporters and platforms: the windows and as-of joins
            -- below partition on them.
            CREATE OR REPLACE TEMP TABLE {t["rows"]} AS
            WITH k AS (
                SELECT platform, reporter_id, (row_number() OVER ())::BIGINT AS rk,
                       (dense_rank() OVER (ORDER BY platform))::INTEGER AS pk
                FROM (SELECT DISTINCT platform, reporter_id FROM reports))
            SELECT k.rk, k.pk, r.platform, r.reporter_id, r.report_id, r.target_id, r.ts,
                   epoch_us(r.ts) AS t, r.outcome
            FROM reports r JOIN k USING (platform, reporter_id);

            CREATE OR REPLACE TEMP TABLE {t["decided"]} AS
            SELECT rk, pk, t + {lag} AS known, count(*) FILTER (outcome = 'upheld') AS u,
                   count(*) AS n, min(t) AS filed
            FROM {t["rows"]} WHERE outcome IS NOT NULL GROUP BY ALL;

            CREATE OR REPLACE TEMP TABLE {t["mine"]} AS
            SELECT rk, known, sum(u) OVER mine AS u, sum(n) OVER mine AS n,
                   min(filed) OVER mine AS first_filed
            FROM {t["decided"]}
            WINDOW mine AS (PARTITION BY rk ORDER BY known ROWS UNBOUNDED PRECEDING);

            CREATE OR REPLACE TEMP TABLE {t["platform"]} AS
            SELECT pk, known, sum(u) OVER everyone AS pu, sum(n) OVER everyone AS pn
            FROM (SELECT pk, known, sum(u) AS u, sum(n) AS n FROM {t["decided"]}
                  GROUP BY ALL) d
            WINDOW everyone AS (PARTITION BY pk ORDER BY known ROWS UNBOUNDED PRECEDING);

            CREATE OR REPLACE TEMP TABLE {t["timeline"]} AS
            WITH m AS (
                SELECT r.*, m.u, m.n, m.first_filed
                FROM {t["rows"]} r ASOF JOIN {t["mine"]} m ON m.rk = r.rk AND r.t > m.known)
            SELECT m.platform, m.reporter_id, m.report_id, m.target_id, m.ts, m.u, m.n,
                   m.first_filed, {self._prior("p.pu", "p.pn")} AS p0
            FROM m ASOF JOIN {t["platform"]} p ON p.pk = m.pk AND m.t > p.known;
            """
        )
        name = sql_literal(self.name)
        rate = f"(u + {a} * p0) / (n + {a})"
        detail = (
            "format('{} of {} earlier decided reports upheld; platform rate {:.1f}%', "
            "u, n, 100 * p0)"
        )
        report = f"""
            SELECT {name} AS detector, 'reputation' AS layer, 'report' AS entity, platform,
                   report_id AS id, (p0 - {rate}) / p0 AS score, {rate} AS value,
                   target_id AS related_id, make_timestamptz(first_filed) AS first_ts,
                   ts AS last_ts, {detail} AS detail
            FROM {t["timeline"]}"""
        account = f"""
            WITH a AS (
                SELECT platform, reporter_id, count(*) FILTER (outcome = 'upheld') AS u,
                       count(outcome) AS n, min(ts) FILTER (outcome IS NOT NULL) AS first_ts,
                       max(ts) FILTER (outcome IS NOT NULL) AS last_ts
                FROM reports GROUP BY ALL HAVING count(outcome) > 0),
            p AS (
                SELECT platform, {
            self._prior("count(*) FILTER (outcome = 'upheld')", "count(outcome)")
        } AS p0
                FROM reports GROUP BY ALL)
            SELECT {name} AS detector, 'reputation' AS layer, 'account' AS entity, platform,
                   reporter_id AS id, (p0 - {rate}) / p0 AS score, {rate} AS value,
                   NULL AS related_id, first_ts, last_ts, {detail} AS detail
            FROM a JOIN p USING (platform)"""
        notes: dict[str, Any] = {
            "decision_lag_seconds": self.decision_lag,
            "prior_strength": self.prior_strength,
            "prior_rate": self.prior_rate if self.prior_rate is not None else "learnt",
        }
        return Evidence(
            edges=none.edges,
            events=none.events,
            signals=as_signals(con, [report, account]),
            notes=notes,
            temporary=tuple(t.values()),
        )

    def _prior(self, upheld: str, decided: str) -> str:
        if self.prior_rate is not None:
            return repr(self.prior_rate)
        return f"({upheld} + 1.0) / ({decided} + 2.0)"
