"""The brigade stage: from the report detectors' evidence to brigades, their targets,
their organisers, and a score for every report.

:func:`find` runs whenever a case holds reports. Its stages, each timed in the notes:

1. **detect** (:mod:`~concerted.brigades.detect`): every detector of
   :attr:`BrigadeSettings.detectors` (S1-S8, M1, M3 by default) on the case.
2. **test** (:mod:`~concerted.brigades.test`): each ``co_report`` pair (S2) against
   its own expected meetings under ``null`` (``analytic``, the default: reporters
   relabelled over the reports, computed per pair from the pairing with no copy made,
   as co-action's stratified null is; ``copies``: randomised copies of the reports),
   in ``rounds``: after a round that finds significant reporters, their reports are
   set aside and the rest is tested again, as long as the accounts left still hold a
   candidate (``min_reporters`` accounts in exclusive pairs of ``attach_weight`` or
   more that were not significant). The null keeps every reporter's volume and every
   target's bursts, so a big brigade's reports are chance meetings in it too and raise
   every heavy pair's expectation; a smaller brigade beside it clears the bar more
   easily once the big one is set aside.
3. **reporters** (:mod:`~concerted.brigades.reporters`): the network of co-reporting
   pairs that are significant and exclusive: they share at least ``min_overlap`` of the
   distinct targets the less active of the two ever reported (two heavy reporters who
   share many popular targets only because both report a lot are significant by weight,
   but share a sliver of what they report). It is cut to its ``min_degree``-core and
   falls into connected components. Components with members in one dense block (S3), or
   with two members who walked one list in the same order (an S8 pair scoring ``fired``
   or more), join; neither creates a component. An account outside the core joins the
   component to whose members it has ``attach_edges`` exclusive co-reporting pairs of
   weight ``attach_weight`` or more, significant or not: given that the component is a
   brigade, an account that meets many of its members again and again is one of them.
4. **brigades** (:mod:`~concerted.brigades.assemble`): each component with its targets
   (those that at least ``min_target_reporters`` of its members co-reported, and whose
   reports over the time they did were at least ``min_target_share`` theirs: a popular
   post that members also reported among hundreds of others is not a target), its span
   (its members' matched reports on those targets), its reports (its members' reports on
   its targets within the span), its mobilising posts (M1 posts naming at least
   ``call_targets`` of its targets, from ``lead`` before the span to its end, with an M1
   score of ``mobilisation`` or more: given the brigade, the call need not show the mass
   response by itself) and organisers (their authors, and the admins of the pages and
   groups they were posted in), its automated reporters (members on whom at least
   ``automated_layers`` of S7's ``tool_layers`` score ``automated`` or more: one fast
   pair of reports, or one regular session, happens to people; two signatures of a tool
   rarely do), the strength of every signal and one score. **Flagged** when the score
   reaches ``flag`` and the brigade has ``min_reporters`` reporters and ``min_targets``
   targets: the one place where a threshold turns scores into a finding.
5. **scores** (:mod:`~concerted.brigades.score`): the causal score of every report
   (:mod:`concerted.scoring`), then what hindsight adds. A report of a flagged brigade
   (one of its reporters, on one of its targets, within its span) is flagged, gets the
   brigade's ``campaign_id`` and a score of at least the brigade's; so is any report
   whose causal score reaches ``scoring.discount``. Flagged reports are to be
   discounted; targets with ``protect_min_reports`` reports or more, at least
   ``protect_share`` of them flagged, are to be protected (report-driven enforcement on
   them goes to a human), and every report on them, or whose causal recommendation says
   so, is for review.

Organic report spikes (many people reporting one viral post, once each) give no
co-reporting pair beyond chance, so they form no component; a call among friends to
report an account or two forms at most a small one, below ``min_targets``.

Signal strengths and the brigade's score: :mod:`~concerted.brigades.score`. Every
temporary table of the stage is made and dropped by one
:class:`~concerted.brigades.workspace.Workspace`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa

from concerted import detectors as registry
from concerted.brigades import assemble, detect, evidence, reporters, score
from concerted.brigades.score import PROTECTED_SCHEMA
from concerted.brigades.workspace import Workspace
from concerted.clock import Clock
from concerted.config import BrigadeSettings, SignificanceSettings
from concerted.significance import Significance

if TYPE_CHECKING:
    from concerted.engines.base import Engine

__all__ = [
    "DETECTORS",
    "PROTECTED_SCHEMA",
    "SIGNAL_WEIGHTS",
    "BrigadeSettings",
    "Brigades",
    "find",
]

#: The report detectors a brigade analysis runs by default (S1-S8, M1, M3): the
#: built-in detectors of the ``report`` family. A third-party one is enabled by name
#: in ``[brigades] detectors``.
DETECTORS: tuple[str, ...] = registry.of_family("report")

#: Each default detector's weight in a brigade's score (its class's ``weight``).
SIGNAL_WEIGHTS: tuple[tuple[str, float], ...] = tuple(
    (name, registry.weight(name)) for name in DETECTORS
)


@dataclass(frozen=True)
class Brigades:
    """What :func:`find` returns: result tables in :data:`RESULT_CONTRACTS` shape
    (``campaigns``, ``members``, ``targets``, ``report_scores``), the evidence in
    :data:`EVIDENCE_CONTRACTS` shape (``edges``, ``events``, ``signals``), the targets
    to protect (:data:`PROTECTED_SCHEMA`) and notes for ``run.json``."""

    campaigns: pa.Table
    members: pa.Table
    targets: pa.Table
    report_scores: pa.Table
    edges: pa.Table
    events: pa.Table
    signals: pa.Table
    protected: pa.Table
    notes: dict[str, Any]

    @property
    def flagged(self) -> int:
        return sum(bool(f) for f in self.campaigns.column("flagged").to_pylist())


def find(
    con: duckdb.DuckDBPyConnection,
    settings: BrigadeSettings | None = None,
    significance: SignificanceSettings | None = None,
    *,
    progress: Callable[[str], None] = lambda _: None,
    engine: Engine | None = None,
) -> Brigades:
    """Find the brigades in the case on ``con`` and score every report; ``engine``
    (opened on ``con``) pairs the reports for co-reporting where it is not DuckDB
    (:func:`concerted.brigades.test.on_engine`).

    ``con`` holds the case tables (``accounts``, ``posts``, ``reports``, ``roles``,
    ``actions``) under their contract names. Makes temporary tables and drops them
    all, whatever happens; changes nothing else but DuckDB's memory limit, lowered
    while the steps that hold the reports in numpy run and set back as DuckDB shows it
    (:meth:`~concerted.brigades.workspace.Workspace.lend`).
    """
    settings = settings or BrigadeSettings()
    # Co-reporting's test (brigades.test) reads fdr, and, with ``null = "copies"``,
    # the copies' settings.
    test = Significance.of(significance or SignificanceSettings())
    clock = Clock(lambda name: progress(f"brigades: {name}"))
    notes: dict[str, Any] = {}
    with Workspace(con) as ws:
        rolled_up = detect.reports_on_authors(ws)
        n_reports = int(ws.scalar("SELECT count(*) FROM reports"))
        notes["detectors"] = detect.detect(ws, settings, test, clock, engine)
        notes["significance"] = notes["detectors"].pop("significance", None)
        with clock.stage("reporters"):
            _, notes["reporters"] = reporters.reporters(ws, settings)
        with clock.stage("brigades"):
            assemble.tables(ws, settings)
            assemble.organisers(ws, settings)
            strengths = score.strengths(ws, settings)
            campaigns, members, targets, ids = assemble.assemble(ws, settings, strengths)
        # The scorer holds every report's figures in numpy: DuckDB makes room.
        with clock.stage("scores"), ws.lend():
            report_scores, protected = score.reports(ws, settings, campaigns, ids)
        with clock.stage("evidence"):
            edges, events, signals = evidence.collect(ws)
    flagged = sum(bool(f) for f in campaigns.column("flagged").to_pylist())
    notes["counts"] = {
        "reports": n_reports,
        "brigades": campaigns.num_rows,
        "flagged_brigades": flagged,
        "brigade_members": members.num_rows,
        "brigade_targets": targets.num_rows,
        "flagged_reports": sum(bool(f) for f in report_scores.column("flagged").to_pylist()),
        "protected_targets": protected.num_rows,
        "evidence_rows": {
            "edges": edges.num_rows,
            "events": events.num_rows,
            "signals": signals.num_rows,
        },
    }
    notes["settings"] = settings.as_dict()
    notes["seconds"] = clock.seconds
    notes["reports_on_posts_rolled_up"] = rolled_up
    return Brigades(
        campaigns=campaigns,
        members=members,
        targets=targets,
        report_scores=report_scores,
        edges=edges,
        events=events,
        signals=signals,
        protected=protected,
        notes=notes,
    )
