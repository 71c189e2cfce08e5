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

Computation. The reports are read once and sorted by reporter (an integer code) and
time in numpy; a binary search over each reporter's known times gives every report its
counts (where an as-of join per report costs several times more), and one over all
reports in time order the platform's. DuckDB keeps the rows with an earlier outcome
and words them.

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
import numpy as np
import pyarrow as pa

from concerted.detectors.base import Evidence, empty
from concerted.detectors.columnar import (
    arrow_table,
    as_signals,
    group_codes,
    has_table,
    integers,
    packed_times,
    take,
    temp_names,
)
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
    #: It holds the reports in numpy: the brigade stage lowers DuckDB's memory limit
    #: while it runs (:meth:`~concerted.brigades.workspace.Workspace.lend`).
    holds_arrays: ClassVar[bool] = True
    family: ClassVar[str] = "report"
    weight: ClassVar[float] = 0.1
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
        t = temp_names("s5", "timeline", "standing")
        platform = self._timeline(con, t["timeline"], t["standing"])
        name = sql_literal(self.name)
        a = self.prior_strength
        rate = f"(u + {a} * p0) / (n + {a})"
        detail = (
            "format('{} of {} earlier decided reports upheld; platform rate {:.1f}%', "
            "u, n, 100 * p0)"
        )
        report = f"""
            SELECT {name} AS detector, 'reputation' AS layer, 'report' AS entity,
                   {platform} AS platform, report_id AS id, (p0 - {rate}) / p0 AS score,
                   {rate} AS value, target_id AS related_id,
                   make_timestamptz(first_filed) AS first_ts,
                   ts AS last_ts, {detail} AS detail
            FROM (SELECT *, {self._prior("pu", "pn")} AS p0 FROM {t["timeline"]})"""
        account = f"""
            SELECT {name} AS detector, 'reputation' AS layer, 'account' AS entity, platform,
                   reporter_id AS id, (p0 - {rate}) / p0 AS score, {rate} AS value,
                   NULL AS related_id, make_timestamptz(first_filed) AS first_ts,
                   make_timestamptz(last_filed) AS last_ts, {detail} AS detail
            FROM (SELECT *, {self._prior("pu", "pn")} AS p0 FROM {t["standing"]})"""
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

    def _timeline(self, con: duckdb.DuckDBPyConnection, timeline: str, standing: str) -> str:
        """Temporary tables ``timeline``: each report with an earlier known outcome of
        its reporter, with the counts known when it was filed (``u`` upheld of ``n``,
        the first of them filed at ``first_filed``; the platform's ``pu`` of ``pn``),
        whose platform is the SQL returned (a column, or the one platform's name);
        and ``standing``: each reporter with an outcome, with the counts over all of
        them and the platform's over all outcomes.

        The counts come from one sort of the reports by reporter and time (numpy over
        integer codes): an outcome known at ``e.ts + lag`` counts for report ``q`` of
        the same reporter when it precedes ``q.ts``, which a binary search over the
        reporter's known times finds for every report at once.
        """
        lag = round(self.decision_lag * 1_000_000)
        rows = con.sql(
            """SELECT platform, reporter_id, report_id, target_id, ts, epoch_us(ts) AS t,
                      outcome IS NOT NULL AS decided, coalesce(outcome = 'upheld', false) AS up
               FROM reports"""
        ).to_arrow_table()
        platform = group_codes(rows["platform"])
        reporter = group_codes(rows["platform"], rows["reporter_id"])
        t = integers(rows["t"])
        decided = integers(rows["decided"], bool)
        up = integers(rows["up"], bool)
        # Filing and known times packed beside the reporter's code in one int64 key.
        shift, (filing, known_at) = packed_times(reporter, t, t[decided] + lag)
        known = np.zeros(len(t), dtype=np.int64)
        known[decided] = known_at
        key = (reporter << shift) + filing
        order = np.argsort(key)
        key = key[order]
        # The decided reports in key order (by reporter, then time), with their known
        # times in the same packing and the upheld ones counted before each.
        chosen = order[decided[order]]
        groups = key[decided[order]] >> shift
        known_key = (groups << shift) + known[chosen]
        upheld_before = np.concatenate([[0], np.cumsum(up[chosen])])
        end = np.searchsorted(known_key, key, side="left")
        start = np.searchsorted(known_key, (key >> shift) << shift, side="left")
        has = np.flatnonzero(end > start)
        end, start, at = end[has], start[has], order[has]
        counts = {
            "u": upheld_before[end] - upheld_before[start],
            "n": end - start,
            "first_filed": t[chosen[start]],
        }
        # The platform's outcomes known before each report: with every report in time
        # order, the decided (and upheld) ones counted up to the last filed more than
        # the lag before it (needles in order keep the binary search in cache).
        by_time = np.argsort(t)
        known_by = {"pn": np.zeros(len(t), np.int64), "pu": np.zeros(len(t), np.int64)}
        platforms = int(platform.max(initial=0)) + 1
        for p in range(platforms):
            mine = by_time if platforms == 1 else by_time[platform[by_time] == p]
            when = t[mine]
            before = np.searchsorted(when, when - lag, side="left")
            for column, outcomes in (("pn", decided), ("pu", decided & up)):
                running = np.concatenate([[0], np.cumsum(outcomes[mine])])
                known_by[column][mine] = running[before]
        # Back in the fetched order, beside the ids, for DuckDB to keep the rows with
        # an earlier known outcome.
        # (One platform, the usual case, is written into the query and not stored.)
        single = platforms == 1 and len(t) > 0
        ids = (
            ("report_id", "target_id", "ts")
            if single
            else ("platform", "report_id", "target_id", "ts")
        )
        columns: dict[str, Any] = {c: rows[c] for c in ids}
        for column, values in counts.items():
            full = np.zeros(len(t), dtype=np.int64)
            full[at] = values
            columns[column] = full
        columns.update(known_by)
        name = f"{timeline}_arrow"
        con.register(name, pa.table(columns))
        try:
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE {timeline} AS
                    SELECT * FROM {name} WHERE n > 0"""
            )
        finally:
            con.unregister(name)
        # Standing at the end: every reporter's decided reports together.
        firsts = np.flatnonzero(np.diff(groups, prepend=-1) != 0)
        lasts = np.append(firsts[1:], len(groups))[: len(firsts)] - 1
        on = platform[chosen[firsts]]
        totals_n = np.bincount(platform[decided], minlength=int(platform.max(initial=0)) + 1)
        totals_u = np.bincount(platform[decided & up], minlength=len(totals_n))
        picked = chosen[firsts]
        arrow_table(
            con,
            {
                "platform": take(rows["platform"], picked),
                "reporter_id": take(rows["reporter_id"], picked),
                "u": np.diff(np.append(upheld_before[firsts], upheld_before[-1])),
                "n": lasts - firsts + 1,
                "first_filed": t[chosen[firsts]],
                "last_filed": t[chosen[lasts]],
                "pu": totals_u[on].astype(np.int64),
                "pn": totals_n[on].astype(np.int64),
            },
            standing,
        )
        return sql_literal(rows["platform"][0].as_py()) if single else "platform"

    def _prior(self, upheld: str, decided: str) -> str:
        if self.prior_rate is not None:
            return repr(self.prior_rate)
        return f"({upheld} + 1.0) / ({decided} + 2.0)"
