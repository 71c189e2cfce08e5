"""S7, report automation: the signature of a bulk-reporting tool.

A browser extension or script that files a brigade's list for its user reports target
after target faster than a person can click through a report form, at regular
intervals, straight into the report flow, in the list's order, and often says so in
its client string. People in the same brigade open each link, read, choose, confirm:
slower, irregular, each in their own order. This detector reads the ``reports`` table
(times, channel, client); the ``actions`` relation is not read.

A reporter's reports, in time order, form **sessions**: a new session begins after a
pause longer than ``session_gap`` seconds (30 minutes by default). Layers
(``detector`` ``report_automation``), each on ``report`` rows (``related_id`` the
target) and ``account`` rows (the reporter):

``subhuman_gap``
    The pause before a report, since the same reporter's previous one, against
    ``human_floor`` seconds (5 by default: about the fastest a person gets through a
    report form): score :math:`1 / (1 + (g / f)^4)`, 0.5 at the floor, near 1 well
    below it, near 0 well above; ``value`` the gap in seconds. Report rows scoring
    below 0.01 are left out. Account score: the mean over the reporter's gaps with
    one pseudo-gap at human speed added, so a single quick pair of reports weighs
    half; ``value`` the gaps scoring over 0.5.
``clockwork``
    Regularity within a session of at least ``min_run`` reports: the robust
    coefficient of variation ``cv`` of its gaps, 1.4826 × their median absolute
    deviation over their median (a pause between two runs of a tool within one
    session leaves it as it was, where it would swell a standard deviation); score
    :math:`1 / (1 + (cv / c)^2)` with ``c`` = ``clockwork_cv`` (0.25). A tool's fixed
    delay gives ``cv`` near 0 and a score near 1, whatever the delay's length;
    people's pauses vary by about their own size (``cv`` near 1, score near 0).
    ``value`` is ``cv``. Account score: the best of its sessions.
``sustained_pace``
    The pace of a run: the median gap within a session of at least ``min_run``
    reports, against ``human_pace`` seconds (10 by default: a person who reads each
    target and fills the form does not keep under that over a run): score
    :math:`1 / (1 + (m / p)^4)`; ``value`` the median gap. A tool that adds random
    delays (2 to 8 s apart, say) is neither clockwork nor always under the floor of
    ``subhuman_gap``, but it keeps its pace over the whole list; a person's one quick
    pair of reports does not move a median. Report rows scoring below 0.01 are left
    out. Account score: the best of its sessions.
``direct_entry``
    The report came straight into the report flow (its ``channel`` is one of
    ``direct_channels``: a direct link, an API) instead of from the target's page.
    A report's score is one minus the share of direct entries among the platform's
    reporters (each reporter weighing the same): where nearly everyone files through
    the page, a direct entry says more. Account score: the reporter's share of direct
    entries, smoothed towards that platform share with ``prior_strength`` reports,
    as an excess over it.
``identical_sequence``
    A session of at least ``min_sequence`` reports whose ordered list of targets is
    exactly that of another reporter's session: ``k`` reporters walking one list in
    one order. Score :math:`1 - 1/k`, ``value`` ``k``; an account's best session.
    (Similar but not identical orders are S8's, ``list_order``.)
``client_fingerprint``
    A client string, or one of its tokens (split at spaces, ``;``, ``(``, ``)``, ``[``,
    ``]`` and ``,``), that marks a cluster. For each token, lower-cased, with ``R``
    distinct reporters carrying it among ``N`` with a client on the platform, and
    ``B`` of them reporting a target within ``fingerprint_window`` seconds of
    another carrier's report on it: score :math:`(B/R)(1 - 1/B)(1 - R/N)`, 0 for
    ``B`` < 2. A browser's version token is carried by thousands who report on their
    own (``B/R`` small, ``R/N`` large); a tool's mark is carried by a few who report
    together (both factors near 1), and no list of known marks is needed. Tokens
    carried by more than ``max_token_share`` of reporters (and more than 20) are not
    examined (they would score near 0 and cost most). ``value`` is ``R``; ``detail`` names the
    token. Reports and accounts get their client's best token's score.

The point of the layers together is to tell extension-driven reporters from the people
of the same brigade: both report the same targets within hours (S1, S2, S3 see both),
but only tools are fast, regular, ordered and marked. On the simulator (``brigade``
seeds 0 to 2 and ``pakistan-2020`` seed 0, standard difficulty), among the brigade's
reporters, the account scores of ``clockwork``, ``subhuman_gap`` and
``identical_sequence`` each split extension-driven from human reporters with
best-threshold F1 0.97 to 1.0; ``client_fingerprint`` has precision 1.0 and finds the
half of them whose client shows the tool's mark; ``direct_entry`` (F1 0.94 to 1.0)
leans on the simulator's tools always entering by direct link.

Settings: ``human_floor`` (seconds, 5), ``session_gap`` (1800), ``min_run`` (5),
``clockwork_cv`` (0.25), ``human_pace`` (10), ``direct_channels``, ``prior_strength`` (2),
``min_sequence`` (5), ``fingerprint_window`` (3600), ``max_token_share`` (0.01).
Edges and events are always empty.

Computation. The reports are read once and sorted by reporter (an integer code), time
and id in numpy, which numbers gaps and sessions; only the reporters with a gap short
enough to score and the sessions long enough to compare are kept for the SQL of the
gap, clockwork and sequence layers, and each reporter's direct entries are counted in
the same pass. Clients are few: their distinct strings are split into tokens in SQL,
each report's client is found by its hash among them, and a token's reporters are
counted exactly only where its clients' counts leave its rarity in doubt.

Limitations. A careful tool adds random delays, and clockwork and sub-human gaps then
fade; identical sequences need the exact order and miss a tool that shuffles; clients
are often not recorded at all, or normalised by the platform before export. Many
people reporting in quick succession from one shared device look like one fast
reporter only if they share an account.

>>> ReportAutomation().human_floor
5.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from concerted.detectors.base import Evidence, empty
from concerted.detectors.columnar import (
    arrow_table,
    as_signals,
    dictionary_codes,
    distinct_rows,
    exact_sum,
    group_codes,
    has_table,
    integers,
    take,
    temp_names,
    time_order,
)
from concerted.errors import ConfigError
from concerted.schema import sql_literal

__all__ = ["ReportAutomation"]

_US = 1_000_000
#: The median absolute deviation times this estimates a normal spread's sigma.
_MAD_SIGMA = 1.4826
#: Tokens carried by this many reporters or fewer are examined whatever their share.
_ALWAYS_EXAMINED = 20


def _one_to_one(hashes: int, clients: pa.ChunkedArray[Any]) -> bool:
    """Whether ``hashes`` distinct hashes tell the distinct ``clients`` apart."""
    return hashes == pc.count_distinct(clients).as_py()


class _Reports(NamedTuple):
    """The reports as fetched once, with the integer codes the layers share."""

    rows: pa.Table
    #: Each report's platform, as a code into ``platforms``.
    platform: npt.NDArray[np.int64]
    platforms: pa.Array[Any]
    #: Each report's (platform, reporter), as a code.
    reporter: npt.NDArray[np.int64]
    #: Each report's client, as a code (-1 for none).
    client: npt.NDArray[np.int64]
    #: Whether each client code says something (is not blank).
    used: npt.NDArray[np.bool_]


@dataclass(frozen=True, kw_only=True)
class ReportAutomation:
    """Sub-human and clockwork gaps, direct entry, identical sequences and client
    fingerprints (see the module).

    >>> ReportAutomation(direct_channels=("api",)).direct_channels
    ('api',)
    """

    name: ClassVar[str] = "report_automation"
    #: It holds the reports in numpy: the brigade stage lowers DuckDB's memory limit
    #: while it runs (:meth:`~concerted.brigades.workspace.Workspace.lend`).
    holds_arrays: ClassVar[bool] = True
    family: ClassVar[str] = "report"
    weight: ClassVar[float] = 0.3
    reads: ClassVar[tuple[str, ...]] = ("reports",)
    #: Seconds between two reports at which a person is as likely as a tool.
    human_floor: float = 5.0
    #: Seconds of pause that end a reporter's session.
    session_gap: float = 1800.0
    #: Reports a session needs for its regularity to be scored.
    min_run: int = 5
    #: Coefficient of variation of gaps at which the clockwork score is 0.5.
    clockwork_cv: float = 0.25
    #: Median seconds between reports over a run at which a person is as likely as a
    #: tool (the sustained pace score is 0.5).
    human_pace: float = 10.0
    #: Channels that mean direct entry into the report flow (compared lower-case).
    direct_channels: tuple[str, ...] = ("direct_link", "direct", "link", "api")
    #: Reports, at the platform's share, that a reporter's direct share is smoothed with.
    prior_strength: float = 2.0
    #: Reports a session needs for its target sequence to be compared.
    min_sequence: int = 5
    #: Seconds within which two carriers of a client token report one target together.
    fingerprint_window: float = 3600.0
    #: Share of reporters above which a client token is not examined.
    max_token_share: float = 0.01

    def __post_init__(self) -> None:
        for field in (
            "human_floor",
            "session_gap",
            "clockwork_cv",
            "human_pace",
            "prior_strength",
            "fingerprint_window",
            "max_token_share",
        ):
            value = float(getattr(self, field))
            object.__setattr__(self, field, value)
            if not value > 0:
                raise ConfigError(f"report_automation: {field} must be positive")
        if self.max_token_share > 1:
            raise ConfigError("report_automation: max_token_share must be at most 1")
        if self.min_run < 3:
            raise ConfigError("report_automation: min_run must be at least 3")
        if self.min_sequence < 2:
            raise ConfigError("report_automation: min_sequence must be at least 2")
        object.__setattr__(self, "direct_channels", tuple(c.lower() for c in self.direct_channels))

    def detect(self, con: duckdb.DuckDBPyConnection, actions: str) -> Evidence:
        none = Evidence(empty(con, "edges"), empty(con, "events"), empty(con, "signals"))
        if not has_table(con, "reports"):
            return none
        t = temp_names(
            "s7",
            "timeline",
            "sessions",
            "spread",
            "sequences",
            "shared",
            "per",
            "base",
            "clients",
            "pairs",
            "acts",
            "carriers",
            "tokens",
        )
        name = sql_literal(self.name)
        channels = ", ".join(sql_literal(c) for c in self.direct_channels) or "NULL"
        direct = f"""(SELECT platform, reporter_id, report_id, target_id, ts,
                             coalesce(lower(channel) IN ({channels}), false) AS direct
                      FROM reports)"""
        rows = self._timeline(con, t, channels)
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {t["sessions"]} AS
            SELECT platform, reporter_id, session, count(*) AS reports,
                   min(ts) AS first_ts, max(ts) AS last_ts
            FROM {t["timeline"]} GROUP BY ALL;

            -- The spread of the gaps within each long session (the first report's gap
            -- is the pause before the session: left out), from medians, which a pause
            -- between two runs of a tool inside one session leaves as they were.
            CREATE OR REPLACE TEMP TABLE {t["spread"]} AS
            WITH g AS (
                SELECT platform, reporter_id, session, gap_us FROM {t["timeline"]}
                SEMI JOIN (SELECT platform, reporter_id, session FROM {t["sessions"]}
                           WHERE reports >= {self.min_run})
                    USING (platform, reporter_id, session)
                WHERE gap <= {self.session_gap}),
            m AS (SELECT platform, reporter_id, session, median(gap_us) AS med
                  FROM g GROUP BY ALL),
            d AS (SELECT platform, reporter_id, session, any_value(m.med) AS med,
                         median(abs(g.gap_us - m.med)) AS mad
                  FROM g JOIN m USING (platform, reporter_id, session) GROUP BY ALL)
            SELECT s.*, d.med / {_US} AS median_gap,
                   CASE WHEN d.med > 0 THEN {_MAD_SIGMA} * d.mad / d.med
                        WHEN d.mad = 0 THEN 0.0
                        ELSE 'infinity'::DOUBLE END AS cv
            FROM {t["sessions"]} s JOIN d USING (platform, reporter_id, session);

            CREATE OR REPLACE TEMP TABLE {t["sequences"]} AS
            SELECT platform, reporter_id, session,
                   md5(string_agg(target_id, chr(31) ORDER BY t, report_id)) AS sequence
            FROM {t["timeline"]}
            SEMI JOIN (SELECT platform, reporter_id, session FROM {t["sessions"]}
                       WHERE reports >= {self.min_sequence})
                USING (platform, reporter_id, session)
            GROUP BY ALL;

            CREATE OR REPLACE TEMP TABLE {t["shared"]} AS
            SELECT platform, sequence, count(DISTINCT reporter_id) AS k
            FROM {t["sequences"]}
            GROUP BY ALL HAVING count(DISTINCT reporter_id) >= 2;
            """
        )
        queries = [
            *self._gaps(t["timeline"], name),
            *self._clockwork(t["timeline"], t["spread"], name),
            *self._pace(t["timeline"], t["spread"], name),
            *self._direct(direct, t["per"], t["base"], name),
            *self._sequences(t["timeline"], t["sessions"], t["sequences"], t["shared"], name),
        ]
        self._fingerprints(con, rows, t)
        queries.extend(self._fingerprint_queries(t["carriers"], name))
        notes: dict[str, Any] = {
            "human_floor_seconds": self.human_floor,
            "session_gap_seconds": self.session_gap,
            "min_run": self.min_run,
            "clockwork_cv": self.clockwork_cv,
            "human_pace_seconds": self.human_pace,
            "direct_channels": list(self.direct_channels),
            "min_sequence": self.min_sequence,
            "fingerprint_window_seconds": self.fingerprint_window,
            "max_token_share": self.max_token_share,
        }
        return Evidence(
            edges=none.edges,
            events=none.events,
            signals=as_signals(con, queries),
            notes=notes,
            temporary=tuple(t.values()),
        )

    def _gaps(self, timeline: str, name: str) -> list[str]:
        report = f"""
            SELECT {name} AS detector, 'subhuman_gap' AS layer, 'report' AS entity, platform,
                   report_id AS id, quick AS score, gap AS value, target_id AS related_id,
                   ts AS first_ts, ts AS last_ts,
                   format('{{:.2f}} s after the same reporter''s previous report', gap) AS detail
            FROM {timeline} WHERE quick >= 0.01"""
        account = f"""
            SELECT {name} AS detector, 'subhuman_gap' AS layer, 'account' AS entity, platform,
                   reporter_id AS id, {exact_sum("quick")} / (count(quick) + 1) AS score,
                   count(*) FILTER (quick > 0.5) AS value, NULL AS related_id,
                   min(ts) AS first_ts, max(ts) AS last_ts,
                   format('{{}} of {{}} gaps between reports under {{}} s; median gap {{:.1f}} s',
                          count(*) FILTER (quick > 0.5), count(quick), {self.human_floor},
                          median(gap)) AS detail
            FROM {timeline} GROUP BY platform, reporter_id
            HAVING count(*) FILTER (quick >= 0.01) > 0"""
        return [report, account]

    def _clockwork(self, timeline: str, spread: str, name: str) -> list[str]:
        score = f"1.0 / (1.0 + pow(cv / {self.clockwork_cv}, 2))"
        scored = f"SELECT *, {score} AS score FROM {spread}"
        detail = (
            "format('{} reports, a median {:.1f} s apart, varying by {:.0f}%', "
            "s.reports, s.median_gap, 100 * s.cv)"
        )
        report = f"""
            SELECT {name} AS detector, 'clockwork' AS layer, 'report' AS entity, r.platform,
                   r.report_id AS id, s.score, s.cv AS value, r.target_id AS related_id,
                   s.first_ts, s.last_ts, {detail} AS detail
            FROM ({scored}) s JOIN {timeline} r USING (platform, reporter_id, session)"""
        account = f"""
            SELECT {name} AS detector, 'clockwork' AS layer, 'account' AS entity, s.platform,
                   s.reporter_id AS id, s.score, s.cv AS value, NULL AS related_id,
                   s.first_ts, s.last_ts, {detail} AS detail
            FROM ({scored}) s
            QUALIFY row_number() OVER (PARTITION BY s.platform, s.reporter_id
                                       ORDER BY s.score DESC, s.session) = 1"""
        return [report, account]

    def _pace(self, timeline: str, spread: str, name: str) -> list[str]:
        score = f"1.0 / (1.0 + pow(median_gap / {self.human_pace}, 4))"
        scored = f"SELECT *, {score} AS score FROM {spread}"
        detail = "format('{} reports, a median {:.1f} s apart', s.reports, s.median_gap)"
        report = f"""
            SELECT {name} AS detector, 'sustained_pace' AS layer, 'report' AS entity,
                   r.platform, r.report_id AS id, s.score, s.median_gap AS value,
                   r.target_id AS related_id, s.first_ts, s.last_ts, {detail} AS detail
            FROM ({scored}) s JOIN {timeline} r USING (platform, reporter_id, session)
            WHERE s.score >= 0.01"""
        account = f"""
            SELECT {name} AS detector, 'sustained_pace' AS layer, 'account' AS entity,
                   s.platform, s.reporter_id AS id, s.score, s.median_gap AS value,
                   NULL AS related_id, s.first_ts, s.last_ts, {detail} AS detail
            FROM ({scored}) s WHERE s.score >= 0.01
            QUALIFY row_number() OVER (PARTITION BY s.platform, s.reporter_id
                                       ORDER BY s.score DESC, s.session) = 1"""
        return [report, account]

    def _direct(self, reports: str, per: str, base: str, name: str) -> list[str]:
        a = self.prior_strength
        report = f"""
            SELECT {name} AS detector, 'direct_entry' AS layer, 'report' AS entity, platform,
                   report_id AS id, 1.0 - p0 AS score, 1.0 AS value, target_id AS related_id,
                   ts AS first_ts, ts AS last_ts,
                   format('filed straight into the report flow; {{:.1f}}% of reporters '
                          'file that way', 100 * p0) AS detail
            FROM {reports} JOIN {base} USING (platform) WHERE direct"""
        smoothed = f"(d + {a} * p0) / (n + {a})"
        account = f"""
            SELECT {name} AS detector, 'direct_entry' AS layer, 'account' AS entity, platform,
                   reporter_id AS id, ({smoothed} - p0) / greatest(1.0 - p0, 1e-9) AS score,
                   d / n AS value, NULL AS related_id, first_ts, last_ts,
                   format('{{}} of {{}} reports filed straight into the report flow; '
                          '{{:.1f}}% of reporters file that way', d, n, 100 * p0) AS detail
            FROM {per} JOIN {base} USING (platform)"""
        return [report, account]

    def _sequences(
        self, timeline: str, sessions: str, sequences: str, shared: str, name: str
    ) -> list[str]:
        scored = f"""
            SELECT s.*, x.k, 1.0 - 1.0 / x.k AS score
            FROM {sessions} s JOIN {sequences} q USING (platform, reporter_id, session)
            JOIN {shared} x USING (platform, sequence)"""
        detail = (
            "format('the same {} targets in the same order as {} other reporters', "
            "s.reports, s.k - 1)"
        )
        report = f"""
            SELECT {name} AS detector, 'identical_sequence' AS layer, 'report' AS entity,
                   r.platform, r.report_id AS id, s.score, s.k AS value,
                   r.target_id AS related_id, s.first_ts, s.last_ts, {detail} AS detail
            FROM ({scored}) s JOIN {timeline} r USING (platform, reporter_id, session)"""
        account = f"""
            SELECT {name} AS detector, 'identical_sequence' AS layer, 'account' AS entity,
                   s.platform, s.reporter_id AS id, s.score, s.k AS value, NULL AS related_id,
                   s.first_ts, s.last_ts, {detail} AS detail
            FROM ({scored}) s
            QUALIFY row_number() OVER (PARTITION BY s.platform, s.reporter_id
                                       ORDER BY s.score DESC, s.session) = 1"""
        return [report, account]

    def _timeline(
        self, con: duckdb.DuckDBPyConnection, t: dict[str, str], channels: str
    ) -> _Reports:
        """Temporary tables ``timeline`` (the reports, in each reporter's time order, with
        their gap and session, of every reporter that has a gap short enough to score
        and of every session long enough to be compared; the layers read nothing else
        of it), ``per`` (reporters with direct entries and their counts) and ``base``
        (each platform's share of direct entry), from one numpy pass over the reports:
        integer reporter codes, one sort by reporter and time.
        """
        # The distinct clients (few), and each report's client by its hash where the
        # hash tells the clients apart (else by the text itself).
        seen = con.sql(
            """SELECT platform, client, hash(client) AS h FROM reports
               WHERE client IS NOT NULL GROUP BY ALL"""
        ).to_arrow_table()
        unique, first = np.unique(integers(seen["h"], np.uint64), return_index=True)
        by_hash = _one_to_one(len(unique), seen["client"])
        rows = con.sql(
            f"""SELECT platform, reporter_id, report_id, target_id, ts, epoch_us(ts) AS t,
                       coalesce(lower(channel) IN ({channels}), false) AS direct,
                       {"hash(client)" if by_hash else "client"} AS client_key,
                       client IS NULL AS no_client
                FROM reports"""
        ).to_arrow_table()
        if by_hash:
            # (hash(NULL) is a number too; those reports get -1 below)
            client = np.searchsorted(unique, integers(rows["client_key"], np.uint64))
            names = take(seen["client"], first)
        else:
            client, names = dictionary_codes(rows["client_key"])
        client = np.where(integers(rows["no_client"], bool), -1, client)
        arrow_table(con, {"code": np.arange(len(names)), "client": names}, t["clients"])
        arrow_table(con, seen.select(["platform", "client"]), f"{t['clients']}_seen")
        used = np.zeros(len(names), dtype=bool)
        nonblank = con.sql(f"SELECT code FROM {t['clients']} WHERE trim(client) <> ''")
        used[np.asarray(nonblank.to_arrow_table()["code"], dtype=np.int64)] = True
        platform, platforms = dictionary_codes(rows["platform"])
        reporter = group_codes(rows["platform"], rows["reporter_id"])
        when = integers(rows["t"])
        order, key, shift = time_order(reporter, when, rows["report_id"])
        when = when[order]
        first = np.diff(key >> shift, prepend=-1) != 0
        heads = np.flatnonzero(first)
        sizes = np.diff(np.append(heads, len(key)))
        owner = np.cumsum(first) - 1
        gap_us = np.diff(when, prepend=0)
        # Sessions as the SQL would number them: from 1 in each reporter's reports, a
        # new one after a gap (in seconds, a double) longer than the session gap.
        new = first | (gap_us / _US > self.session_gap)
        running = np.cumsum(new)
        session = running - running[heads][owner] + 1
        session_sizes = np.bincount(running - 1)
        # quick >= 0.01 needs a gap under 3.16 human floors: four is a safe margin.
        close = ~first & (gap_us <= 4 * self.human_floor * _US)
        scored = np.bincount(owner[close], minlength=len(heads)) > 0
        long = session_sizes[running - 1] >= min(self.min_run, self.min_sequence)
        keep = np.flatnonzero((sizes[owner] >= 2) & (scored[owner] | long))
        at = order[keep]
        arrow_table(
            con,
            {
                "platform": take(rows["platform"], at),
                "reporter_id": take(rows["reporter_id"], at),
                "report_id": take(rows["report_id"], at),
                "target_id": take(rows["target_id"], at),
                "ts": take(rows["ts"], at),
                "t": when[keep],
                "gap_us": pa.array(gap_us[keep], mask=first[keep]),
                "session": session[keep],
            },
            f"{t['timeline']}_raw",
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {t["timeline"]} AS
                SELECT *, 1.0 / (1.0 + pow(gap / {self.human_floor}, 4)) AS quick
                FROM (SELECT * EXCLUDE (gap_us, session), gap_us, gap_us / {_US}.0 AS gap,
                             session
                      FROM {t["timeline"]}_raw);
                DROP TABLE {t["timeline"]}_raw"""
        )
        # Direct entry: every reporter's count, and the platform's mean share.
        direct = integers(rows["direct"], bool)[order]
        d = np.add.reduceat(direct.astype(np.int64), heads) if len(heads) else sizes
        on = platform[order[heads]]
        (pk, dd, nn), many = distinct_rows(on, d, sizes)
        arrow_table(
            con,
            {
                "platform": take(platforms, pk),
                "d": dd,
                "n": nn,
                "reporters": many,
            },
            f"{t['base']}_raw",
        )
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {t["base"]} AS
                SELECT platform,
                       sum(reporters * CAST(d / n AS DECIMAL(38, 18)))::DOUBLE
                           / sum(reporters)::BIGINT AS p0
                FROM {t["base"]}_raw GROUP BY ALL;
                DROP TABLE {t["base"]}_raw"""
        )
        some = np.flatnonzero(d > 0)
        firsts = order[heads[some]]
        lasts = order[heads[some] + sizes[some] - 1]
        arrow_table(
            con,
            {
                "platform": take(rows["platform"], firsts),
                "reporter_id": take(rows["reporter_id"], firsts),
                "n": sizes[some],
                "d": d[some],
                "first_ts": take(rows["ts"], firsts),
                "last_ts": take(rows["ts"], lasts),
            },
            t["per"],
        )
        return _Reports(rows, platform, platforms, reporter, client, used)

    def _fingerprints(
        self, con: duckdb.DuckDBPyConnection, reports: _Reports, t: dict[str, str]
    ) -> None:
        """Score client tokens (table ``tokens``); ``carriers`` gets each (platform,
        client) its best token.

        Clients are few where reports are many: the distinct clients are split into
        tokens in SQL, and the reporters carrying each client are counted in numpy from
        the reports' client codes. A token's reporters are counted exactly only where
        its clients leave it in doubt: a token of a client that alone has more
        reporters than the share allows, or whose clients together have fewer than 2,
        is not rare whatever the exact count.
        """
        w = max(1, round(self.fingerprint_window * _US))
        share = f"greatest({self.max_token_share} * n, {_ALWAYS_EXAMINED})"
        code, used = reports.client, reports.used
        # Distinct (reporter, client) pairs of the clients that say something.
        given = np.flatnonzero(code >= 0)
        given = given[used[code[given]]]
        (pair_reporter, pair_client), _ = distinct_rows(reports.reporter[given], code[given])
        platforms = max(len(reports.platforms), 1)
        clients = max(len(used), 1)
        reporter_platform = np.zeros(int(reports.reporter.max(initial=-1)) + 1, np.int64)
        reporter_platform[reports.reporter] = reports.platform
        pair_platform = reporter_platform[pair_reporter]
        heads = np.diff(pair_reporter, prepend=-1) != 0
        carriers = np.bincount(pair_platform[heads], minlength=platforms)
        cell = pair_platform * clients + pair_client
        counts = np.bincount(cell, minlength=platforms * clients)
        held = np.flatnonzero(counts)
        arrow_table(
            con,
            {
                "pk": held // clients,
                "code": held % clients,
                "reporters": counts[held],
                "n": carriers[held // clients],
            },
            t["pairs"],
        )
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {t["tokens"]}_split AS
            SELECT DISTINCT code, token FROM (
                SELECT code,
                       unnest(list_append(
                           string_split_regex(lower(client), '[\\s;()\\[\\],]+'),
                           '=' || lower(trim(client)))) AS token
                FROM {t["clients"]})
            WHERE token <> '' AND token <> '=';

            -- Tokens a count could make rare: every client of theirs within the share,
            -- and at least two reporters among them all.
            CREATE OR REPLACE TEMP TABLE {t["tokens"]}_doubt AS
            SELECT p.pk, s.token FROM {t["pairs"]} p JOIN {t["tokens"]}_split s USING (code)
            GROUP BY ALL
            HAVING max(p.reporters) <= greatest({self.max_token_share} * any_value(p.n),
                                                {_ALWAYS_EXAMINED})
               AND sum(p.reporters) >= 2;
            """
        )
        doubt = con.sql(
            f"""SELECT DISTINCT p.pk, p.code FROM {t["pairs"]} p
                JOIN {t["tokens"]}_split s USING (code)
                SEMI JOIN {t["tokens"]}_doubt d USING (pk, token)"""
        ).to_arrow_table()
        wanted = np.zeros(platforms * clients, dtype=bool)
        wanted[
            np.asarray(doubt["pk"], np.int64) * clients + np.asarray(doubt["code"], np.int64)
        ] = True
        counted = np.flatnonzero(wanted[cell])
        arrow_table(
            con,
            {
                "pk": pair_platform[counted],
                "reporter": pair_reporter[counted],
                "code": pair_client[counted],
            },
            f"{t['tokens']}_counted",
        )
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {t["tokens"]}_rare AS
            SELECT c.pk, s.token, count(DISTINCT c.reporter) AS r, any_value(n.n) AS n
            FROM {t["tokens"]}_counted c JOIN {t["tokens"]}_split s USING (code)
            SEMI JOIN {t["tokens"]}_doubt d USING (pk, token)
            JOIN (SELECT DISTINCT pk, n FROM {t["pairs"]}) n USING (pk)
            GROUP BY ALL;
            DELETE FROM {t["tokens"]}_rare WHERE NOT (r >= 2 AND r <= {share});

            CREATE OR REPLACE TEMP TABLE {t["tokens"]}_marked AS
            SELECT p.pk, p.code, s.token FROM {t["pairs"]} p
            JOIN {t["tokens"]}_split s USING (code)
            SEMI JOIN {t["tokens"]}_rare x USING (pk, token)
            """
        )
        marked = con.sql(f"SELECT DISTINCT pk, code FROM {t['tokens']}_marked").to_arrow_table()
        flag = np.zeros(platforms * clients, dtype=bool)
        flag[
            np.asarray(marked["pk"], np.int64) * clients + np.asarray(marked["code"], np.int64)
        ] = True
        arrow_table(
            con,
            pa.table({"pk": np.arange(len(reports.platforms)), "platform": reports.platforms}),
            f"{t['tokens']}_names",
        )
        rows = reports.rows
        acting = np.flatnonzero(
            (code >= 0) & flag[reports.platform * clients + np.maximum(code, 0)]
        )
        at = acting
        arrow_table(
            con,
            {
                "platform": take(rows["platform"], at),
                "reporter_id": take(rows["reporter_id"], at),
                "target_id": take(rows["target_id"], at),
                "t": take(rows["t"], at),
                "pk": reports.platform[acting],
                "code": code[acting],
            },
            t["acts"],
        )
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {t["tokens"]} AS
            WITH rare AS (SELECT names.platform, x.token, x.r, x.n
                          FROM {t["tokens"]}_rare x JOIN {t["tokens"]}_names names USING (pk)),
            acts AS (
                SELECT DISTINCT a.platform, m.token, a.reporter_id, a.target_id, a.t
                FROM {t["acts"]} a JOIN {t["tokens"]}_marked m USING (pk, code)),
            together AS (
                SELECT DISTINCT x.platform, x.token, x.reporter_id
                FROM acts x JOIN acts y
                  ON y.platform = x.platform AND y.token = x.token
                 AND y.target_id = x.target_id
                WHERE y.reporter_id <> x.reporter_id AND abs(y.t - x.t) <= {w}),
            b AS (SELECT platform, token, count(*) AS b FROM together GROUP BY ALL)
            SELECT rare.platform, rare.token, rare.r, rare.n, b.b,
                   (b.b / rare.r) * (1.0 - 1.0 / b.b) * (1.0 - rare.r / rare.n) AS score
            FROM rare JOIN b USING (platform, token) WHERE b.b >= 2;

            CREATE OR REPLACE TEMP TABLE {t["carriers"]} AS
            WITH best AS (
                SELECT s.platform, s.client, k.token, k.r, k.n, k.b, k.score
                FROM (SELECT DISTINCT platform, client FROM {t["clients"]}_seen) s
                JOIN {t["tokens"]} k ON k.platform = s.platform
                 AND (list_contains(string_split_regex(lower(s.client), '[\\s;()\\[\\],]+'),
                                    k.token)
                      OR k.token = '=' || lower(trim(s.client)))
                QUALIFY row_number() OVER (PARTITION BY s.platform, s.client
                                           ORDER BY k.score DESC, k.token) = 1)
            SELECT * FROM best;

            DROP TABLE {t["tokens"]}_split;
            DROP TABLE {t["tokens"]}_doubt;
            DROP TABLE {t["tokens"]}_rare;
            DROP TABLE {t["tokens"]}_marked;
            DROP TABLE {t["tokens"]}_counted;
            DROP TABLE {t["tokens"]}_names;
            DROP TABLE {t["clients"]}_seen;
            """
        )

    def _fingerprint_queries(self, carriers: str, name: str) -> list[str]:
        detail = (
            "format('client {} {} is carried by {} of {} reporters, {} of whom reported "
            "the same targets within {:.0f} min of another carrier', "
            "CASE WHEN c.token LIKE '=%' THEN 'string' ELSE 'token' END, "
            "left(ltrim(c.token, '='), 60), c.r, c.n, c.b, "
            f"{self.fingerprint_window / 60})"
        )
        report = f"""
            SELECT {name} AS detector, 'client_fingerprint' AS layer, 'report' AS entity,
                   r.platform, r.report_id AS id, c.score, c.r AS value,
                   r.target_id AS related_id, r.ts AS first_ts, r.ts AS last_ts,
                   {detail} AS detail
            FROM reports r JOIN {carriers} c USING (platform, client)"""
        account = f"""
            SELECT {name} AS detector, 'client_fingerprint' AS layer, 'account' AS entity,
                   r.platform, r.reporter_id AS id, c.score, c.r AS value, NULL AS related_id,
                   min(r.ts) OVER a AS first_ts, max(r.ts) OVER a AS last_ts, {detail} AS detail
            FROM reports r JOIN {carriers} c USING (platform, client)
            WINDOW a AS (PARTITION BY r.platform, r.reporter_id)
            QUALIFY row_number() OVER (PARTITION BY r.platform, r.reporter_id
                                       ORDER BY c.score DESC, c.token, r.ts, r.report_id) = 1"""
        return [report, account]
