"""Detect: the report detectors on the case, their evidence gathered in one place.

:func:`reports_on_authors` first makes a report on a known post count against the
post's author; :func:`detect` then runs every detector of the settings and leaves their
evidence in ``_bg_edges``, ``_bg_events`` and ``_bg_signals`` (co-reporting's edges
tested, :mod:`concerted.brigades.test`).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from concerted.brigades import test
from concerted.brigades.workspace import CO_REPORT, Workspace, columns
from concerted.clock import Clock
from concerted.config import BrigadeSettings
from concerted.detectors.base import Detector
from concerted.detectors.pairing import Pairs
from concerted.schema import quote_ident
from concerted.significance import Significance

if TYPE_CHECKING:
    from concerted.engines.base import Engine

__all__ = ["detect", "reports_on_authors"]


def reports_on_authors(ws: Workspace) -> int:
    """While the stage runs, a report on a post counts as a report on the post's
    author, where the case knows the post: a brigade that reports a listed account's
    posts instead of its profile is after the account. Temporary tables ``reports``
    and ``actions`` stand in for the case's (the reported post kept in the report's
    ``extra`` as ``reported_post``) until the workspace closes; nothing is made where
    no report names a known post. Returns how many reports were rolled up."""
    database = quote_ident(str(ws.scalar("SELECT current_database()")))
    case = f"{database}.main"
    rolled = int(
        ws.scalar(
            f"""SELECT count(*) FROM {case}.reports r JOIN {case}.posts p
                ON p.platform = r.platform AND p.post_id = r.target_id
                WHERE r.target_kind = 'post' AND p.account_id IS NOT NULL"""
        )
    )
    if not rolled:
        return 0
    ws.table(
        "_bg_authors",
        f"""SELECT r.platform, r.report_id, r.target_id AS post_id, p.account_id AS author
            FROM {case}.reports r JOIN {case}.posts p
              ON p.platform = r.platform AND p.post_id = r.target_id
            WHERE r.target_kind = 'post' AND p.account_id IS NOT NULL""",
    )
    ws.table(
        "reports",
        f"""SELECT r.* REPLACE (
                   coalesce(a.author, r.target_id) AS target_id,
                   CASE WHEN a.author IS NULL THEN r.target_kind ELSE 'account' END
                       AS target_kind,
                   CASE WHEN a.author IS NULL THEN r.extra
                        ELSE json_merge_patch(coalesce(r.extra, '{{}}'::JSON),
                                              json_object('reported_post', a.post_id))
                   END AS extra)
            FROM {case}.reports r LEFT JOIN _bg_authors a USING (platform, report_id)""",
    )
    # Every join condition an equality, so that DuckDB hashes it: with
    # ``x.kind = 'report'`` in the ON clause it compared every action with every
    # rolled-up report (a nested-loop join, 13 CPU seconds for the demo's 1.2M actions).
    ws.table(
        "actions",
        f"""SELECT x.* REPLACE (coalesce(a.author, x.object_id) AS object_id)
            FROM {case}.actions x LEFT JOIN (
                SELECT 'report' AS kind, platform, report_id, author FROM _bg_authors) a
              ON a.kind = x.kind AND a.platform = x.platform
             AND a.report_id = x.source_id""",
    )
    return rolled


def detect(
    ws: Workspace,
    settings: BrigadeSettings,
    significance: Significance,
    clock: Clock,
    engine: Engine | None = None,
) -> dict[str, Any]:
    """Run the detectors; leave their evidence in ``_bg_edges``, ``_bg_events`` and
    ``_bg_signals`` (co_report's edges tested). Co-reporting's pairing runs on
    ``engine`` where :func:`~concerted.brigades.test.on_engine` says so (the detector
    that could read it then pairs the reports itself). Returns the notes, by detector,
    and co-reporting's test rounds under ``significance``."""
    con = ws.con
    for part in ("edges", "events", "signals"):
        ws.empty(f"_bg_{part}", part)
    # Each reporter's distinct targets, against which a pair's sharing is measured.
    ws.table(
        "_bg_reported",
        """SELECT platform, actor_id, count(DISTINCT object_id) AS n FROM actions
           WHERE kind = 'report' GROUP BY ALL""",
    )
    notes: dict[str, Any] = {}
    # A detector that can read co-reporting's first pairing runs next, on that pairing.
    chosen = list(settings.detectors)
    co_report = next((d for d in chosen if d.name == CO_REPORT), None)
    sharing = _sharing(co_report, chosen)
    reader: Any = sharing
    shared: Pairs | None = None
    if sharing is not None and co_report is not None:
        chosen.remove(sharing)
        chosen.insert(chosen.index(co_report) + 1, sharing)
    for detector in chosen:
        if detector is co_report:
            notes[detector.name], notes["significance"], shared = test.rounds(
                ws,
                detector,
                settings,
                significance,
                clock,
                keep=sharing is not None and not test.on_engine(engine, detector, settings),
                engine=engine,
            )
            continue
        # A detector that holds the reports in numpy (it says so) runs with DuckDB
        # making room for them.
        lent = ws.lend() if getattr(detector, "holds_arrays", False) else nullcontext()
        with clock.stage(f"detect {detector.name}"), lent:
            if detector is sharing and shared is not None:
                evidence = reader.from_pairs(con, shared)
                evidence = replace(evidence, temporary=(*shared.tables, *evidence.temporary))
                shared = None
            else:
                evidence = detector.detect(con, "actions")
            ws.own(*evidence.temporary)
            for part in ("signals", "edges", "events"):
                query = getattr(evidence, part).sql_query()
                con.execute(f"INSERT INTO _bg_{part} SELECT {columns(part)} FROM ({query})")
            notes[detector.name] = evidence.notes
            evidence.release(con)
    if shared is not None:
        ws.drop(*shared.tables)
    return notes


def _sharing(co_report: Detector | None, chosen: list[Detector]) -> Any:
    """The detector that can read co-reporting's first pairing instead of pairing the
    reports again (it says so with ``reads_pairing_of``), if both run."""
    if co_report is None or not hasattr(co_report, "pairing"):
        return None
    for detector in chosen:
        reads = getattr(detector, "reads_pairing_of", None)
        if detector is not co_report and callable(reads) and reads(co_report):
            return detector
    return None
