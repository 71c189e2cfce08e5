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

Computation. The reports are read once; targets, kinds and reasons become integer
codes, and episodes, reason counts, the counts before each episode and the mix come
from sorts of packed int64 keys in numpy (one by target and time, ties in report id
order), where windows over text keys cost several times more; DuckDB sums the mix's
shares exactly, joins and words the rows. Templated text is SQL.

The module also holds the helpers the report detectors share: :func:`has_table`,
:func:`as_signals`, :func:`exact_sum`, :func:`normalised_table`, :func:`temp_names`,
and for the numpy passes :func:`arrow_table`, :func:`take`, :func:`integers`,
:func:`dictionary_codes`, :func:`group_codes`, :func:`sorted_codes`,
:func:`packed_times`, :func:`time_order` and :func:`distinct_rows`.

>>> ReportContent().name
'report_content'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import duckdb
import numpy as np
import numpy.typing as npt

from concerted.detectors.base import Evidence, empty
from concerted.detectors.columnar import (
    arrow_table,
    as_signals,
    distinct_rows,
    group_codes,
    has_table,
    integers,
    normalised_table,
    sorted_codes,
    take,
    temp_names,
    time_order,
)
from concerted.errors import ConfigError
from concerted.schema import sql_literal

__all__ = ["ReportContent"]


def _before(values: npt.NDArray[np.int64], starts: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """The sum of ``values`` over the earlier rows of each run (a run begins where
    ``starts`` is true; the first row must begin one).

    >>> _before(np.array([1, 2, 3, 4]), np.array([True, False, True, False])).tolist()
    [0, 1, 0, 3]
    """
    running = np.cumsum(values) - values
    before: npt.NDArray[np.int64] = running - running[np.flatnonzero(starts)][np.cumsum(starts) - 1]
    return before


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)


@dataclass(frozen=True, kw_only=True)
class ReportContent:
    """Reason homogeneity, reason mismatch and templated text (see the module).

    >>> ReportContent(min_reports=10).min_reports
    10
    """

    name: ClassVar[str] = "report_content"
    family: ClassVar[str] = "report"
    weight: ClassVar[float] = 0.2
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
        t = temp_names("s4", "shares", "mix", "episodes", "marked", "scored", "texts")
        name = sql_literal(self.name)
        a = self.prior_strength
        self._episodes(con, t)
        con.execute(
            f"""
            -- exact_sum of the shares, each distinct share counted once per cell.
            CREATE OR REPLACE TEMP TABLE {t["mix"]} AS
            SELECT pk, kind, reason,
                   sum(cells * CAST(c::DOUBLE / total::DOUBLE AS DECIMAL(38, 18)))::DOUBLE
                       / any_value(targets) AS p,
                   any_value(reasons) AS reasons
            FROM {t["shares"]} GROUP BY ALL;

            CREATE OR REPLACE TEMP TABLE {t["scored"]} AS
            SELECT h.platform, h.target_id, h.episode, h.kind, h.n, h.first_ts, h.last_ts,
                   h.first_report, h.reason, h.k, h.k_before, h.n_before,
                   coalesce(m.p, 0.0) AS p, coalesce(m.reasons, 1.0) AS reasons,
                   (h.k + {a} * coalesce(m.p, 0.0)) / (h.n + {a}) AS smoothed
            FROM {t["episodes"]} h
            LEFT JOIN {t["mix"]} m ON m.pk = h.pk AND m.kind = h.kind_code
                                  AND m.reason = h.reason_code
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
                    FROM {t["scored"]} s JOIN {t["marked"]} e USING (episode)
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

    def _episodes(self, con: duckdb.DuckDBPyConnection, t: dict[str, str]) -> None:
        """Temporary tables ``shares`` (each target's count of each reason, ``c`` of
        ``total``, by codes ``pk`` platform, ``kind``, ``reason`` and ``tk`` target),
        ``episodes`` (each episode with enough reasons, its dominant reason and the
        counts before it) and ``marked`` (the reports that gave their episode's dominant
        reason), from one pass over the reports in numpy: integer codes for targets and
        sorted codes for kinds and reasons, one sort of the busy targets' reports by
        target and time, and sorts of packed integer keys for every count.
        """
        rows = con.sql(
            """SELECT platform, target_id, target_kind, reason, report_id, ts,
                      epoch_us(ts) AS t
               FROM reports"""
        ).to_arrow_table()
        platform = group_codes(rows["platform"])
        target = group_codes(rows["platform"], rows["target_id"])
        kind, kinds = sorted_codes(rows["target_kind"])
        reason, reasons = sorted_codes(rows["reason"])
        n_kinds, n_reasons = max(len(kinds), 1), max(len(reasons), 1)
        given = reason >= 0
        # The platform's mix: each (target, kind)'s count of each reason.
        cell = np.sort(((target[given] * n_kinds + kind[given]) * n_reasons) + reason[given])
        firsts = np.flatnonzero(np.diff(cell, prepend=-1) != 0)
        counts = np.diff(np.append(firsts, len(cell)))
        cells = cell[firsts]
        owner = cells // n_reasons
        owner_firsts = np.flatnonzero(np.diff(owner, prepend=-1) != 0)
        totals = np.add.reduceat(counts, owner_firsts) if len(owner_firsts) else counts
        target_platform = np.zeros(int(target.max(initial=-1)) + 1, dtype=np.int64)
        target_platform[target] = platform
        # The cells' shares depend on (c, total) alone: DuckDB sums each distinct share
        # once, times the cells that hold it.
        cell_pk = target_platform[cells // (n_kinds * n_reasons)]
        cell_kind = (cells // n_reasons) % n_kinds
        cell_reason = cells % n_reasons
        cell_total = np.repeat(totals, np.diff(np.append(owner_firsts, len(owner))))
        (pk, kind_of, reason_of, c, total), cells_with = distinct_rows(
            cell_pk, cell_kind, cell_reason, counts, cell_total
        )
        of_kind = (cell_pk * n_kinds + cell_kind)[owner_firsts]
        size = (int(platform.max(initial=0)) + 1) * n_kinds
        targets = np.bincount(of_kind, minlength=size)
        (seen_pk, seen_kind, _), _ = distinct_rows(cell_pk, cell_kind, cell_reason)
        reasons_seen = np.bincount(seen_pk * n_kinds + seen_kind, minlength=size)
        combo_kind = pk * n_kinds + kind_of
        arrow_table(
            con,
            {
                "pk": pk,
                "kind": kind_of,
                "reason": reason_of,
                "c": c,
                "total": total,
                "cells": cells_with,
                "targets": targets[combo_kind].astype(np.float64),
                "reasons": reasons_seen[combo_kind].astype(np.float64),
            },
            t["shares"],
        )
        # Episodes of the busy targets: their reports by target, time and id.
        busy = np.bincount(target[given], minlength=len(target_platform)) >= self.min_reports
        chosen = np.flatnonzero(busy[target])
        tk = target[chosen]
        t_us = integers(rows["t"])[chosen]
        order, key, shift = time_order(tk, t_us, rows["report_id"], chosen)
        chosen, tk, t_us = chosen[order], tk[order], t_us[order]
        starts = np.diff(tk, prepend=-1) != 0
        gap = np.diff(t_us, prepend=0) > round(self.episode_gap * 1_000_000)
        episode = np.cumsum(starts | gap) - 1
        heads = np.flatnonzero(starts | gap)
        ends = np.append(heads[1:], len(episode))[: len(heads)] - 1
        row_reason = reason[chosen]
        with_reason = row_reason >= 0
        n = np.bincount(episode[with_reason], minlength=len(heads))
        n_before = _before(n, starts[heads])
        # Each episode's count of each reason, and the same reason's count on the same
        # target in earlier episodes.
        e_of = episode[with_reason]
        pair = np.sort(e_of * n_reasons + row_reason[with_reason])
        pair_firsts = np.flatnonzero(np.diff(pair, prepend=-1) != 0)
        k = np.diff(np.append(pair_firsts, len(pair)))
        pair = pair[pair_firsts]
        pair_episode, pair_reason = pair // n_reasons, pair % n_reasons
        pair_target = tk[heads][pair_episode]
        by_reason = np.lexsort((pair_episode, pair_reason, pair_target))
        same = pair_target[by_reason] * n_reasons + pair_reason[by_reason]
        k_before = np.empty(len(k), dtype=np.int64)
        k_before[by_reason] = _before(k[by_reason], np.diff(same, prepend=-1) != 0)
        # The dominant reason: most reports, ties to the first name (pairs are in
        # episode and reason order, so the first pair reaching the most is the one).
        heads_of_pairs = np.flatnonzero(np.diff(pair_episode, prepend=-1) != 0)
        most = np.maximum.reduceat(k, heads_of_pairs) if len(k) else k
        reach = np.flatnonzero(k == most[np.cumsum(np.diff(pair_episode, prepend=-1) != 0) - 1])
        top = reach[np.diff(pair_episode[reach], prepend=-1) != 0]
        scored = top[n[pair_episode[top]] >= self.min_reports]
        e = pair_episode[scored]
        first_kind = np.minimum.reduceat(kind[chosen], heads) if len(heads) else heads
        at = chosen[heads[e]]
        last = chosen[ends[e]]
        arrow_table(
            con,
            {
                "platform": take(rows["platform"], at),
                "target_id": take(rows["target_id"], at),
                "pk": platform[chosen[heads[e]]],
                "episode": e,
                "kind": take(kinds, first_kind[e]),
                "kind_code": first_kind[e],
                "n": n[e],
                "first_ts": take(rows["ts"], at),
                "last_ts": take(rows["ts"], last),
                "first_report": take(rows["report_id"], at),
                "reason": take(reasons, pair_reason[scored]),
                "reason_code": pair_reason[scored],
                "k": k[scored],
                "k_before": k_before[scored],
                "n_before": n_before[e],
            },
            t["episodes"],
        )
        dominant = np.full(len(heads), -2, dtype=np.int64)
        dominant[e] = pair_reason[scored]
        marked = np.flatnonzero(dominant[episode] == row_reason)
        picked = chosen[marked]
        arrow_table(
            con,
            {
                "platform": take(rows["platform"], picked),
                "report_id": take(rows["report_id"], picked),
                "target_id": take(rows["target_id"], picked),
                "ts": take(rows["ts"], picked),
                "episode": episode[marked],
            },
            t["marked"],
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
