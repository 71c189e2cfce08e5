"""Assemble: each cluster of reporters with its targets, span, reports, mobilising
posts, organisers and automated reporters, as the ``campaigns``, ``members`` and
``targets`` result tables (see :mod:`concerted.brigades` for what each is)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from concerted.brigades.score import noisy_or
from concerted.brigades.workspace import AUTOMATION, CALLS, CO_REPORT, Workspace
from concerted.config import BrigadeSettings
from concerted.schema import RESULT_CONTRACTS, arrow_schema, sql_literal

__all__ = ["assemble", "organisers", "tables"]


def tables(ws: Workspace, settings: BrigadeSettings) -> None:
    """Targets, spans and reports of each cluster: ``_bg_targets``, ``_bg_spans`` and
    ``_bg_reports``."""
    ws.table(
        "_bg_pair_events",
        f"""SELECT c1.cluster, v.platform_1 AS platform, v.object_id AS target_id,
                   v.account_1, v.account_2, v.ts_1, v.ts_2
            FROM _bg_events v
            JOIN _bg_clusters c1 ON c1.platform = v.platform_1 AND c1.account_id = v.account_1
            JOIN _bg_clusters c2 ON c2.platform = v.platform_2 AND c2.account_id = v.account_2
             AND c2.cluster = c1.cluster
            WHERE v.detector = '{CO_REPORT}'""",
    )
    # A target is the brigade's when enough members co-reported it, and when they filed
    # at least min_target_share of its reports over the time they did: a popular post
    # that members also reported, among hundreds of others, is not.
    ws.table(
        "_bg_targets",
        f"""WITH m AS (SELECT cluster, platform, target_id, account_1 AS a,
                              least(ts_1, ts_2) AS t0, greatest(ts_1, ts_2) AS t1
                       FROM _bg_pair_events
                       UNION ALL SELECT cluster, platform, target_id, account_2,
                              least(ts_1, ts_2), greatest(ts_1, ts_2) FROM _bg_pair_events),
            c AS (SELECT cluster, platform, target_id, count(DISTINCT a) AS reporters,
                         min(t0) AS first_ts, max(t1) AS last_ts FROM m
                  GROUP BY ALL HAVING count(DISTINCT a) >= {settings.min_target_reporters}),
            shares AS (
                SELECT c.cluster, c.platform, c.target_id,
                       count(*) FILTER (WHERE k.account_id IS NOT NULL) / count(*) AS share
                FROM c JOIN reports r ON r.platform = c.platform AND r.target_id = c.target_id
                 AND r.ts BETWEEN c.first_ts AND c.last_ts
                LEFT JOIN _bg_clusters k ON k.cluster = c.cluster AND k.platform = r.platform
                 AND k.account_id = r.reporter_id
                GROUP BY ALL)
            SELECT c.cluster, c.platform, c.target_id, c.reporters FROM c
            JOIN shares USING (cluster, platform, target_id)
            WHERE shares.share >= {settings.min_target_share}""",
    )
    ws.table(
        "_bg_spans",
        """SELECT e.cluster, min(least(e.ts_1, e.ts_2)) AS first_ts,
                  max(greatest(e.ts_1, e.ts_2)) AS last_ts
           FROM _bg_pair_events e SEMI JOIN _bg_targets t USING (cluster, platform, target_id)
           GROUP BY e.cluster""",
    )
    ws.table(
        "_bg_reports",
        """SELECT c.cluster, r.platform, r.report_id, r.reporter_id, r.target_id,
                  r.target_kind, r.ts
           FROM reports r
           JOIN _bg_clusters c ON c.platform = r.platform AND c.account_id = r.reporter_id
           JOIN _bg_targets t ON t.cluster = c.cluster AND t.platform = r.platform
            AND t.target_id = r.target_id
           JOIN _bg_spans s ON s.cluster = c.cluster
           WHERE r.ts BETWEEN s.first_ts AND s.last_ts""",
    )


def organisers(ws: Workspace, settings: BrigadeSettings) -> None:
    """Mobilising posts (``_bg_calls``) and organisers (``_bg_organisers``)."""
    lead = f"INTERVAL ({settings.lead}) SECOND"
    ws.table(
        "_bg_calls",
        f"""SELECT t.cluster, p.platform, p.post_id, any_value(p.account_id) AS account_id,
                   any_value(p.venue_id) AS venue_id, max(s.score) AS score
            FROM _bg_signals s
            JOIN posts p ON p.platform = s.platform AND p.post_id = s.id
            JOIN _bg_targets t ON t.platform = s.platform AND t.target_id = s.related_id
            JOIN _bg_spans sp ON sp.cluster = t.cluster
            WHERE s.detector = '{CALLS}' AND s.entity = 'post'
              AND p.ts BETWEEN sp.first_ts - {lead} AND sp.last_ts
            GROUP BY t.cluster, p.platform, p.post_id
            HAVING max(s.score) >= {settings.mobilisation}
               AND count(DISTINCT s.related_id) >= {settings.call_targets}""",
    )
    ws.table(
        "_bg_organisers",
        """SELECT cluster, platform, account_id, list(DISTINCT why ORDER BY why) AS why
           FROM (SELECT cluster, platform, account_id, 'mobilisation' AS why FROM _bg_calls
                 UNION ALL
                 SELECT c.cluster, r.platform, r.account_id, 'admin'
                 FROM (SELECT DISTINCT cluster, platform, venue_id FROM _bg_calls
                       WHERE venue_id IS NOT NULL) c
                 JOIN roles r ON r.platform = c.platform AND r.venue_id = c.venue_id
                 WHERE r.role = 'admin')
           GROUP BY ALL""",
    )


def assemble(
    ws: Workspace,
    settings: BrigadeSettings,
    strengths: Mapping[int, Mapping[str, Mapping[str, float]]],
) -> tuple[pa.Table, pa.Table, pa.Table, dict[int, str]]:
    """The campaigns, members and targets tables; the campaign id of each cluster."""
    weights = dict(settings.signal_weights)
    tools = ", ".join(sql_literal(layer) for layer in settings.tool_layers) or "NULL"
    rows = ws.con.sql(
        """WITH m AS (SELECT cluster, count(*) AS reporters FROM _bg_clusters GROUP BY ALL),
                t AS (SELECT cluster, count(*) AS targets FROM _bg_targets GROUP BY ALL),
                r AS (SELECT cluster, count(*) AS reports FROM _bg_reports GROUP BY ALL)
           SELECT m.cluster, m.reporters, coalesce(t.targets, 0), coalesce(r.reports, 0),
                  s.first_ts, s.last_ts
           FROM m LEFT JOIN t USING (cluster) LEFT JOIN r USING (cluster)
           LEFT JOIN _bg_spans s USING (cluster)
           ORDER BY m.reporters DESC, 3 DESC, m.cluster"""
    ).fetchall()
    automated = {
        (int(c), str(p), str(a))
        for c, p, a in ws.con.sql(
            f"""SELECT c.cluster, c.platform, c.account_id FROM _bg_clusters c
                JOIN _bg_signals s ON s.platform = c.platform AND s.id = c.account_id
                WHERE s.detector = '{AUTOMATION}' AND s.entity = 'account'
                  AND s.layer IN ({tools}) AND s.score >= {settings.automated}
                GROUP BY ALL
                HAVING count(DISTINCT s.layer) >= {settings.automated_layers}"""
        ).fetchall()
    }
    calls: dict[int, list[str]] = {}
    venues: dict[int, list[str]] = {}
    for cluster, post, venue in ws.con.sql(
        "SELECT cluster, post_id, venue_id FROM _bg_calls ORDER BY cluster, post_id"
    ).fetchall():
        calls.setdefault(int(cluster), []).append(str(post))
        if venue is not None and str(venue) not in venues.setdefault(int(cluster), []):
            venues[int(cluster)].append(str(venue))
    ids: dict[int, str] = {}
    campaigns: list[dict[str, Any]] = []
    for number, (cluster, reporters, n_targets, n_reports, first_ts, last_ts) in enumerate(
        rows, start=1
    ):
        cid = f"brigade-{number}"
        ids[int(cluster)] = cid
        parts = dict(strengths.get(int(cluster), {}))
        score = noisy_or(parts, weights)
        fired = sorted(name for name, p in parts.items() if p["strength"] >= settings.fired)
        # co_report ties are what made the cluster; say so even when few members have them.
        if CO_REPORT in parts and CO_REPORT not in fired:
            fired.insert(0, CO_REPORT)
        n_auto = sum(1 for a in automated if a[0] == int(cluster))
        flagged = (
            score >= settings.flag
            and reporters >= settings.min_reporters
            and n_targets >= settings.min_targets
        )
        summary = {
            "reporters": int(reporters),
            "automated_reporters": n_auto,
            "targets": int(n_targets),
            "reports": int(n_reports),
            "mobilising_posts": calls.get(int(cluster), [])[:50],
            "venues": venues.get(int(cluster), []),
            "signals": {
                name: {"strength": round(float(p["strength"]), 4), "fired_on": int(p["fired_on"])}
                for name, p in sorted(parts.items())
            },
        }
        campaigns.append(
            {
                "campaign_id": cid,
                "kind": "brigade",
                "score": score,
                "flagged": bool(flagged),
                "signals": fired,
                "first_ts": first_ts,
                "last_ts": last_ts,
                "targets": int(n_targets),
                "reports": int(n_reports),
                "summary": json.dumps(summary, sort_keys=True),
            }
        )
    members = _members(ws, settings, ids, automated)
    per_campaign: dict[str, int] = {}
    for row in members:
        per_campaign[row["campaign_id"]] = per_campaign.get(row["campaign_id"], 0) + 1
    for c in campaigns:
        c["accounts"] = per_campaign.get(c["campaign_id"], 0)
    targets = _targets(ws, ids)
    return (
        pa.Table.from_pylist(campaigns, schema=arrow_schema(RESULT_CONTRACTS["campaigns"])),
        pa.Table.from_pylist(members, schema=arrow_schema(RESULT_CONTRACTS["members"])),
        targets,
        ids,
    )


def _members(
    ws: Workspace,
    settings: BrigadeSettings,
    ids: Mapping[int, str],
    automated: set[tuple[int, str, str]],
) -> list[dict[str, Any]]:
    """Reporters (their tie strength: the highest NPMI of their significant ties inside
    the brigade) and organisers."""
    fired = settings.fired
    reporters = ws.con.sql(
        f"""WITH ties AS (
                SELECT c1.cluster, e.platform_1 AS p, e.account_1 AS a, e.score
                FROM _bg_edges e
                JOIN _bg_clusters c1 ON c1.platform = e.platform_1
                 AND c1.account_id = e.account_1
                JOIN _bg_clusters c2 ON c2.platform = e.platform_2
                 AND c2.account_id = e.account_2 AND c2.cluster = c1.cluster
                WHERE e.detector = '{CO_REPORT}'
                UNION ALL
                SELECT c1.cluster, e.platform_2, e.account_2, e.score
                FROM _bg_edges e
                JOIN _bg_clusters c1 ON c1.platform = e.platform_2
                 AND c1.account_id = e.account_2
                JOIN _bg_clusters c2 ON c2.platform = e.platform_1
                 AND c2.account_id = e.account_1 AND c2.cluster = c1.cluster
                WHERE e.detector = '{CO_REPORT}'),
            strength AS (SELECT cluster, p, a, max(score) AS score FROM ties GROUP BY ALL),
            fired AS (SELECT platform, id, list(DISTINCT detector ORDER BY detector) AS names
                      FROM _bg_signals WHERE entity = 'account' AND score >= {fired}
                      GROUP BY ALL)
            SELECT c.cluster, c.platform, c.account_id, s.score, f.names, c.core
            FROM _bg_clusters c
            LEFT JOIN strength s ON s.cluster = c.cluster AND s.p = c.platform
             AND s.a = c.account_id
            LEFT JOIN fired f ON f.platform = c.platform AND f.id = c.account_id
            ORDER BY c.cluster, c.platform, c.account_id"""
    ).fetchall()
    organisers = {
        (int(c), str(p), str(a)): list(why)
        for c, p, a, why in ws.con.sql(
            "SELECT cluster, platform, account_id, why FROM _bg_organisers"
        ).fetchall()
    }
    out: list[dict[str, Any]] = []
    for cluster, platform, account, score, names, core in reporters:
        key = (int(cluster), str(platform), str(account))
        signals = [CO_REPORT if core else "co_report_attached", *(names or [])]
        if key in organisers:
            role = "organiser"
            signals += organisers.pop(key)
        elif key in automated:
            role = "automated_reporter"
        else:
            role = "reporter"
        out.append(
            {
                "campaign_id": ids[int(cluster)],
                "account_id": account,
                "platform": platform,
                "role": role,
                "score": float(score) if score is not None else None,
                "signals": sorted(set(signals)),
            }
        )
    for (cluster, platform, account), why in sorted(organisers.items()):
        out.append(
            {
                "campaign_id": ids[cluster],
                "account_id": account,
                "platform": platform,
                "role": "organiser",
                "score": None,
                "signals": sorted(why),
            }
        )
    return out


def _targets(ws: Workspace, ids: Mapping[int, str]) -> pa.Table:
    """Each brigade's targets: its coordinated reports against them and their share of
    all reports on the target in the brigade's span (the score)."""
    table = ws.con.sql(
        """WITH b AS (SELECT cluster, platform, target_id, any_value(target_kind) AS kind,
                             count(*) AS reports, min(ts) AS first_ts, max(ts) AS last_ts
                      FROM _bg_reports GROUP BY ALL),
                every AS (SELECT t.cluster, t.platform, t.target_id, count(r.report_id) AS n
                          FROM _bg_targets t JOIN _bg_spans s USING (cluster)
                          JOIN reports r ON r.platform = t.platform
                           AND r.target_id = t.target_id
                           AND r.ts BETWEEN s.first_ts AND s.last_ts
                          GROUP BY ALL)
           SELECT t.cluster, t.target_id, t.platform, coalesce(b.kind, 'account') AS target_kind,
                  coalesce(b.reports, 0) / greatest(every.n, 1)::DOUBLE AS score,
                  coalesce(b.reports, 0)::BIGINT AS reports, b.first_ts, b.last_ts
           FROM _bg_targets t
           LEFT JOIN b USING (cluster, platform, target_id)
           LEFT JOIN every USING (cluster, platform, target_id)
           ORDER BY t.cluster, t.platform, t.target_id"""
    ).to_arrow_table()
    cluster = table.column("cluster").to_pylist()
    out = table.drop_columns(["cluster"])
    names = [ids[int(c)] for c in cluster if c is not None]
    out = out.add_column(0, "campaign_id", pa.array(names, pa.string()))
    return out.cast(arrow_schema(RESULT_CONTRACTS["targets"]))
