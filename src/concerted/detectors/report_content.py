"""S4, what reports say: one reason across a burst, reasons that do not fit the
target, and the same words from many reporters.

A brigade's organiser tells members which reason to pick ("Select reason: Terrorism");
an extension files every report with one reason; a template circulates for the free
text. People who come upon a bad post on their own pick from the whole menu, in their
own words. This detector reads the ``reports`` table (reason, target, time, text); it
does not read the ``actions`` relation, which carries none of these.

**Episodes.** A target's reports are cut into episodes wherever two consecutive
reports on it are more than ``episode_gap`` seconds apart (24 hours by default): a
wave of reports and the quiet around it. Episodes with at least ``min_reports``
reports that give a reason are scored; a target reported in several waves has one
episode each.

**The platform's reason mix.** The share of each reason among reports on targets of
one kind (account, post, page, group) on one platform, with every target weighing the
same: each target's own reason shares, averaged over the targets of that kind. A
brigade or a viral post files thousands of reports on a few dozen targets; weighing
targets and not reports keeps them from setting the norm they are measured against.

Layers (``detector`` is ``report_content``):

``reason_homogeneity``
    One reason dominating an episode beyond the platform's mix. For the episode's most
    frequent reason *r* (``k`` of ``n`` reports; ties to the first name) the share is
    smoothed towards the mix, :math:`s = (k + a\\,p_r) / (n + a)` with ``a`` =
    ``prior_strength``, and the score is the excess over the mix,
    :math:`(s - p_r) / (1 - p_r)`, at least 0: 0 when the episode is as mixed as
    usual, near 1 when all of many reports name a reason that is rarely chosen.
    ``value`` is ``k / n``. Rows: one per episode on the ``target`` (``related_id``
    the episode's first report, ``first_ts``/``last_ts`` its span) and one per report
    of the episode that gave *r* (``related_id`` the target).
``reason_mismatch``
    The episode's dominant reason does not fit the target. Reports carry no verdict
    on the content, so fit is read from two things the data does hold: how often
    that reason is chosen for targets of that kind (rarity: 0 for a reason chosen at
    least as often as the average reason, :math:`1 - p_r R` for a rarer one, where
    ``R`` is the number of reasons seen for the kind), and whether the target drew
    that reason before the episode (novelty: one minus the smoothed share of the
    reason among the target's earlier reports, with the same prior). Score =
    rarity × novelty; ``value`` is the rarity. A reason that the kind of target
    rarely draws and this target never drew before ("terrorism" against a
    journalist's profile, "nudity" on a text post) scores high; a target reported
    for the same thing again and again does not. Rows as for ``reason_homogeneity``,
    where the score is above 0. Chosen over a fixed table of which reason suits which
    kind, which would not carry from one platform's reason codes to another's.
``templated_text``
    The same free text from several reporters. Texts are put in the normal form of
    :mod:`concerted.textnorm` (NFKC, case folding, links, mentions, invisible characters
    and punctuation removed, Arabic-script diacritics and letter variants, Devanagari
    nukta and the digits of every script folded) and hashed; a normal form of at least
    ``min_text_chars`` characters that ``k`` ≥ 2 distinct reporters wrote marks each
    of those reports with score :math:`1 - 1/k` (``value`` ``k``,
    ``related_id`` the target). Short stock phrases ("fake account", "spam") are what
    people type on their own and are left out by the length floor. Each target with
    such reports gets a row whose score is the share of its reports that are
    templated times the highest report score, ``value`` the number templated.

Settings: ``episode_gap`` (seconds, 86400), ``min_reports`` (5), ``prior_strength``
(5 reports), ``min_text_chars`` (20). Without a ``reports`` table the detector
returns nothing; edges and events are always empty.

On the simulator (``brigade``, seeds 0 to 2, standard difficulty) target-level
homogeneity tells the brigade's targets from all other reported targets with
best-threshold F1 0.95 to 1.0 (the organic report spikes come closest), while
report-level rows do not tell extension-driven from human reports apart (F1 0.34 to
0.41): the extension picks the called reason, and so do three quarters of the people.

Limitations. Homogeneity alone does not tell a brigade from many people reporting a
genuinely violating post for what it is (most of them pick the one fitting reason):
it is one signal for the brigade stage to weigh with the others. Mismatch knows
nothing of the content; on a platform whose reason mix is the same for every kind of
target (as in concerted's simulator) it reduces to "a rarely used reason, new for this
target". Templated text uses exact hashes of the normal form; edited copies escape it.

The module also holds the small helpers the report detectors share
(:func:`has_table`, :func:`as_signals`, :func:`exact_sum`, :func:`normalised_table`,
:func:`temp_names`).

>>> ReportContent().name
'report_content'
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import duckdb

from concerted.detectors.base import Evidence, empty
from concerted.errors import ConfigError
from concerted.schema import EVIDENCE_CONTRACTS, sql_literal
from concerted.textnorm import normalize_array

__all__ = [
    "ReportContent",
    "as_signals",
    "exact_sum",
    "has_table",
    "normalised_table",
    "temp_names",
]

_ids = itertools.count()


def temp_names(prefix: str, *parts: str) -> dict[str, str]:
    """Unique names for the temporary tables of one run of a detector.

    >>> sorted(temp_names("x", "a", "b"))
    ['a', 'b']
    """
    n = next(_ids)
    return {p: f"_{prefix}_{p}_{n}" for p in parts}


def exact_sum(expr: str) -> str:
    """SQL for the sum of a fraction-valued ``expr`` that is the same whatever the order
    of the rows: each value is fixed at 18 decimals and summed as an integer (a sum of
    doubles changes in its last digits with the order DuckDB's threads add them in).

    >>> con = duckdb.connect()
    >>> con.sql(f"SELECT {exact_sum('x')} FROM (VALUES (0.1), (0.2)) t(x)").fetchone()
    (0.3,)
    """
    return f"sum(CAST({expr} AS DECIMAL(38, 18)))::DOUBLE"


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether a table or view called ``name`` can be read on ``con``.

    >>> con = duckdb.connect()
    >>> has_table(con, "reports")
    False
    >>> _ = con.execute("CREATE TABLE reports (x INTEGER)")
    >>> has_table(con, "reports")
    True
    """
    try:
        con.execute(f"SELECT 1 FROM {name} LIMIT 0")
    except duckdb.CatalogException:
        return False
    return True


def as_signals(con: duckdb.DuckDBPyConnection, queries: Sequence[str]) -> duckdb.DuckDBPyRelation:
    """The union of ``queries`` (each naming the signal columns in any order) in the
    signals contract's order and types, with every score held to [0, 1].

    >>> con = duckdb.connect()
    >>> rel = as_signals(con, ["SELECT 'd' AS detector, 'l' AS layer, 'account' AS entity, "
    ...     "'x' AS platform, 'a' AS id, 1.5 AS score, NULL AS value, NULL AS related_id, "
    ...     "NULL AS first_ts, NULL AS last_ts, NULL AS detail"])
    >>> rel.fetchall()[0][:6]
    ('d', 'l', 'account', 'x', 'a', 1.0)
    """
    if not queries:
        return empty(con, "signals")
    columns = []
    for c in EVIDENCE_CONTRACTS["signals"].columns:
        value = c.name
        if c.name == "score":
            value = "CASE WHEN isnan(score::DOUBLE) THEN 0.0 ELSE score::DOUBLE END"
            value = f"greatest(0.0, least(1.0, coalesce({value}, 0.0)))"
        columns.append(f"CAST({value} AS {c.type}) AS {c.name}")
    select = ", ".join(columns)
    return con.sql(" UNION ALL ".join(f"SELECT {select} FROM ({q})" for q in queries))


def normalised_table(con: duckdb.DuckDBPyConnection, query: str, out: str) -> None:
    """Temporary table ``out``: the rows of ``query`` (whose last column is ``text``)
    with ``body``, the text in :func:`concerted.textnorm.normalize_array`'s normal form.

    >>> con = duckdb.connect()
    >>> normalised_table(con, "SELECT 1 AS k, 'Report THEM!! @bob ۱۲' AS text", "t")
    >>> con.sql("SELECT k, body FROM t").fetchall()
    [(1, 'report them 12')]
    """
    table = con.sql(query).to_arrow_table()
    table = table.append_column("body", normalize_array(table.column("text")))
    name = f"{out}_arrow"
    con.register(name, table)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {out} AS SELECT * FROM {name}")
    finally:
        con.unregister(name)


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


@dataclass(frozen=True, kw_only=True)
class ReportContent:
    """Reason homogeneity, reason mismatch and templated text (see the module).

    >>> ReportContent(min_reports=10).min_reports
    10
    """

    name: ClassVar[str] = "report_content"
    reads: ClassVar[tuple[str, ...]] = ("reports",)
    #: Seconds of quiet on a target that end an episode of reports.
    episode_gap: float = 86_400.0
    #: Reports with a reason an episode needs to be scored.
    min_reports: int = 5
    #: Weight of the platform's mix, in reports, when shares are smoothed.
    prior_strength: float = 5.0
    #: Characters a normalised report text needs to count as a template.
    min_text_chars: int = 20

    def __post_init__(self) -> None:
        object.__setattr__(self, "episode_gap", float(self.episode_gap))
        object.__setattr__(self, "prior_strength", float(self.prior_strength))
        if not self.episode_gap > 0:
            raise ConfigError(
                f"report_content: episode_gap must be positive, not {self.episode_gap}"
            )
        if self.min_reports < 2:
            raise ConfigError(
                f"report_content: min_reports must be at least 2, not {self.min_reports}"
            )
        if not self.prior_strength > 0:
            raise ConfigError("report_content: prior_strength must be positive")
        if self.min_text_chars < 1:
            raise ConfigError("report_content: min_text_chars must be at least 1")

    def detect(self, con: duckdb.DuckDBPyConnection, actions: str) -> Evidence:
        none = Evidence(empty(con, "edges"), empty(con, "events"), empty(con, "signals"))
        if not has_table(con, "reports"):
            return none
        t = temp_names("s4", "busy", "episodes", "mix", "scored", "texts")
        name = sql_literal(self.name)
        a = self.prior_strength
        con.execute(
            f"""
            -- Only targets with enough reports can hold an episode that is scored.
            CREATE OR REPLACE TEMP TABLE {t["busy"]} AS
            SELECT platform, target_id FROM reports GROUP BY ALL
            HAVING count(reason) >= {self.min_reports};

            CREATE OR REPLACE TEMP TABLE {t["episodes"]} AS
            WITH r AS (
                SELECT platform, report_id, target_id, target_kind, reason, ts,
                       epoch_us(ts) AS t
                FROM reports SEMI JOIN {t["busy"]} USING (platform, target_id)),
            g AS (
                SELECT *, CASE WHEN t - lag(t) OVER w > {_micros(self.episode_gap)}
                               THEN 1 ELSE 0 END AS new
                FROM r WINDOW w AS (PARTITION BY platform, target_id ORDER BY t, report_id))
            SELECT platform, report_id, target_id, target_kind, reason, ts, t,
                   sum(new) OVER (PARTITION BY platform, target_id ORDER BY t, report_id
                                  ROWS UNBOUNDED PRECEDING) AS episode
            FROM g;

            CREATE OR REPLACE TEMP TABLE {t["mix"]} AS
            WITH c AS (
                SELECT platform, target_kind, target_id, reason, count(*)::DOUBLE AS c
                FROM reports WHERE reason IS NOT NULL GROUP BY ALL),
            s AS (
                SELECT platform, target_kind, target_id, reason,
                       c / sum(c) OVER (PARTITION BY platform, target_kind, target_id) AS share
                FROM c),
            n AS (
                SELECT platform, target_kind, count(DISTINCT target_id)::DOUBLE AS targets,
                       count(DISTINCT reason)::DOUBLE AS reasons
                FROM c GROUP BY ALL)
            SELECT s.platform, s.target_kind, s.reason,
                   {exact_sum("s.share")} / any_value(n.targets) AS p,
                   any_value(n.reasons) AS reasons
            FROM s JOIN n USING (platform, target_kind) GROUP BY ALL;

            CREATE OR REPLACE TEMP TABLE {t["scored"]} AS
            WITH ek AS (
                SELECT platform, target_id, episode, reason, count(*) AS k
                FROM {t["episodes"]} WHERE reason IS NOT NULL GROUP BY ALL),
            en AS (
                SELECT platform, target_id, episode, min(target_kind) AS kind,
                       count(reason) AS n, min(ts) AS first_ts, max(ts) AS last_ts,
                       arg_min(report_id, struct_pack(t := t, r := report_id)) AS first_report
                FROM {t["episodes"]} GROUP BY ALL),
            hist AS (
                SELECT *,
                       coalesce(sum(n) OVER (PARTITION BY platform, target_id ORDER BY episode
                           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS n_before
                FROM en),
            ranked AS (
                SELECT *,
                       coalesce(sum(k) OVER (PARTITION BY platform, target_id, reason
                           ORDER BY episode ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
                           0) AS k_before,
                       row_number() OVER (PARTITION BY platform, target_id, episode
                                          ORDER BY k DESC, reason) AS rank
                FROM ek)
            SELECT h.platform, h.target_id, h.episode, h.kind, h.n, h.first_ts, h.last_ts,
                   h.first_report, d.reason, d.k, d.k_before, h.n_before,
                   coalesce(m.p, 0.0) AS p, coalesce(m.reasons, 1.0) AS reasons,
                   (d.k + {a} * coalesce(m.p, 0.0)) / (h.n + {a}) AS smoothed
            FROM hist h
            JOIN ranked d ON d.platform = h.platform AND d.target_id = h.target_id
                         AND d.episode = h.episode AND d.rank = 1
            LEFT JOIN {t["mix"]} m ON m.platform = h.platform AND m.target_kind = h.kind
                                  AND m.reason = d.reason
            WHERE h.n >= {self.min_reports};
            """
        )
        homogeneity = "greatest(0.0, (smoothed - p) / greatest(1.0 - p, 1e-9))"
        rarity = "greatest(0.0, 1.0 - p * reasons)"
        novelty = f"1.0 - (k_before + {a} * p) / (n_before + {a})"
        mismatch = f"({rarity}) * ({novelty})"
        spans = "round(epoch(last_ts) - epoch(first_ts)) / 3600.0"
        homogeneity_detail = (
            f"format('{{}} of {{}} reports in {{:.1f}} h gave reason {{}} (usual share "
            f"{{:.1f}}%)', k, n, {spans}, reason, 100 * p)"
        )
        mismatch_detail = (
            "format('reason {} is {:.1f}% of reports on targets of kind {} and {} of {} "
            "earlier reports on this target', reason, 100 * p, kind, k_before, n_before)"
        )
        queries: list[str] = []
        for layer, score, value, detail in (
            ("reason_homogeneity", homogeneity, "k / n", homogeneity_detail),
            ("reason_mismatch", mismatch, rarity, mismatch_detail),
        ):
            where = "" if layer == "reason_homogeneity" else f"WHERE {score} > 0"
            queries.append(
                f"""SELECT {name} AS detector, '{layer}' AS layer, 'target' AS entity, platform,
                           target_id AS id, {score} AS score, {value} AS value,
                           first_report AS related_id, first_ts, last_ts, {detail} AS detail
                    FROM {t["scored"]} {where}"""
            )
            queries.append(
                f"""SELECT {name} AS detector, '{layer}' AS layer, 'report' AS entity,
                           e.platform, e.report_id AS id, {score} AS score, {value} AS value,
                           e.target_id AS related_id, e.ts AS first_ts, e.ts AS last_ts,
                           {detail} AS detail
                    FROM {t["scored"]} s
                    JOIN {t["episodes"]} e USING (platform, target_id, episode, reason)
                    {where}"""
            )
        self._templates(con, t["texts"])
        queries.extend(self._template_queries(t["texts"], name))
        notes: dict[str, Any] = {
            "episode_gap_seconds": self.episode_gap,
            "min_reports": self.min_reports,
            "prior_strength": self.prior_strength,
            "min_text_chars": self.min_text_chars,
        }
        return Evidence(
            edges=none.edges,
            events=none.events,
            signals=as_signals(con, queries),
            notes=notes,
            temporary=tuple(t.values()),
        )

    def _templates(self, con: duckdb.DuckDBPyConnection, table: str) -> None:
        """Reports whose normal-form text at least two reporters wrote, with ``k``."""
        normalised_table(
            con, "SELECT DISTINCT text FROM reports WHERE text IS NOT NULL", f"{table}_bodies"
        )
        try:
            con.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE {table} AS
                WITH h AS (
                    SELECT r.platform, r.report_id, r.reporter_id, r.target_id, r.ts,
                           md5(b.body) AS h
                    FROM reports r JOIN {table}_bodies b USING (text)
                    WHERE length(b.body) >= {self.min_text_chars}),
                g AS (
                    SELECT h, count(DISTINCT (platform, reporter_id)) AS k,
                           count(DISTINCT (platform, target_id)) AS targets
                    FROM h GROUP BY h HAVING count(DISTINCT (platform, reporter_id)) >= 2)
                SELECT h.platform, h.report_id, h.target_id, h.ts, g.k, g.targets
                FROM h JOIN g USING (h)
                """
            )
        finally:
            con.execute(f"DROP TABLE IF EXISTS {table}_bodies")

    @staticmethod
    def _template_queries(table: str, name: str) -> list[str]:
        report = f"""
            SELECT {name} AS detector, 'templated_text' AS layer, 'report' AS entity, platform,
                   report_id AS id, 1.0 - 1.0 / k AS score, k AS value, target_id AS related_id,
                   ts AS first_ts, ts AS last_ts,
                   format('same wording as reports by {{}} other reporters on {{}} targets',
                          k - 1, targets) AS detail
            FROM {table}"""
        target = f"""
            WITH t AS (
                SELECT platform, target_id, count(*) AS m, max(1.0 - 1.0 / k) AS top,
                       min(ts) AS first_ts, max(ts) AS last_ts
                FROM {table} GROUP BY ALL),
            n AS (
                SELECT platform, target_id, count(*) AS n FROM reports
                SEMI JOIN t USING (platform, target_id) GROUP BY ALL)
            SELECT {name} AS detector, 'templated_text' AS layer, 'target' AS entity, platform,
                   target_id AS id, top * m / n AS score, m AS value, NULL AS related_id,
                   first_ts, last_ts,
                   format('{{}} of {{}} reports on this target share their wording with other '
                          'reporters', m, n) AS detail
            FROM t JOIN n USING (platform, target_id)"""
        return [report, target]
