"""The sections of the page, one per campaign: a network's or a brigade's.

Each takes a :class:`~concerted.outputs.views.Builder` and the campaign's row of
campaigns.parquet (with its ``summary`` parsed) and returns the section's part of the
page model; charts and graphs go to the builder, as do the caps it applied.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from concerted.outputs.base import Result
from concerted.outputs.figures import (
    assets_phrase,
    bucket,
    bucket_name,
    clean,
    epoch,
    number,
    span,
    when,
)
from concerted.outputs.views import Builder
from concerted.schema import sql_literal

__all__ = ["assets", "brigade", "network", "signal_rows"]


def signal_rows(res: Result, where: str) -> list[dict[str, Any]]:
    """Signals of signals.parquet that match ``where`` (on alias ``s``), by detector."""
    rows = res.rows(
        f"""SELECT s.detector, s.layer, s.entity,
                   count(DISTINCT s.id) AS entities, avg(s.score) AS mean_score,
                   max(s.score) AS max_score,
                   -- The strongest signal's detail; ties broken by the detail itself,
                   -- so that the same result always gives the same page.
                   first(s.detail ORDER BY s.score DESC NULLS LAST, s.detail NULLS LAST)
                       AS example
            FROM signals s WHERE {where} GROUP BY ALL
            ORDER BY mean_score DESC, entities DESC, s.detector, layer"""
    )
    return [clean(r) for r in rows]


def network(b: Builder, c: dict[str, Any], index: int) -> dict[str, Any]:
    res, limits = b.res, b.limits
    cid = c["campaign_id"]
    slug = f"net-{index}"
    members = b.select_members(cid)
    b.account_names()
    graph = b.graph(f"{slug}-graph", cid, "kind")
    timeline = b.activity(f"{slug}-timeline", c)
    summary = c["summary"]
    tops = {
        "links": summary.get("top_urls") or [],
        "domains": summary.get("top_domains") or [],
        "hashtags": summary.get("top_hashtags") or [],
    }
    for name in tops:
        tops[name] = _tops(tops[name], limits.top)
    layers = [
        clean(r)
        for r in res.rows(
            """SELECT detector, layer, count(*) AS pairs, sum(weight) AS weight,
                      sum(events) AS events, median(median_dt) AS median_dt,
                      max(q_value) AS max_q
               FROM _e GROUP BY ALL ORDER BY pairs DESC, detector, layer"""
        )
    ]
    pairs = int(res.value("SELECT count(*) FROM _p") or 0)
    for layer in layers:
        layer["share"] = round(layer["pairs"] / pairs, 3) if pairs else 0.0
    signals = signal_rows(
        res,
        "s.entity = 'account' AND EXISTS (SELECT 1 FROM _m WHERE _m.platform = s.platform "
        "AND _m.account_id = s.id)",
    )
    return {
        "id": slug,
        "campaign_id": cid,
        "members": members,
        "score": number(c["score"]),
        "active": span(c["first_ts"], c["last_ts"]),
        "signals": list(c["signals"] or []),
        "facts": {
            "acting_accounts": summary.get("acting_accounts"),
            "venues": summary.get("venues_attributed"),
            "organisers": summary.get("organisers"),
            "ties": summary.get("ties"),
            "actions": summary.get("actions"),
        },
        "phrase": assets_phrase(assets(summary)),
        "graph": graph,
        "timeline": timeline,
        "tops": tops,
        "objects": _tops(summary.get("top_objects"), limits.top),
        "copies": _copies(b, cid),
        "layers": layers,
        "account_signals": signals,
        "accounts": _account_table(b, f"{cid} accounts"),
    }


def _tops(entries: Any, top: int) -> list[dict[str, Any]]:
    """A campaign summary's top list, each entry with exactly the keys the page shows.

    ``share`` is its accounts over the most accounts of the list (for the bars).

    >>> _tops([{"object": "nation", "accounts": 3}, "junk", {"object": "x", "accounts": 1}], 10)
    ... # doctest: +NORMALIZE_WHITESPACE
    [{'object': 'nation', 'kind': None, 'accounts': 3, 'actions': None, 'share': 100.0},
     {'object': 'x', 'kind': None, 'accounts': 1, 'actions': None, 'share': 33.3}]
    """
    if not isinstance(entries, list):
        return []
    keys = ("object", "kind", "accounts", "actions")
    rows = [{k: number(e.get(k)) for k in keys} for e in entries if isinstance(e, Mapping)]
    rows = rows[:top]
    counts = [r["accounts"] for r in rows if isinstance(r["accounts"], int | float)]
    most = max(counts, default=0) or 1
    for r in rows:
        n = r["accounts"] if isinstance(r["accounts"], int | float) else 0
        r["share"] = round(100 * n / most, 1)
    return rows


def _copies(b: Builder, cid: str) -> dict[str, Any]:
    """The texts that several of the campaign's accounts posted: the campaign's copied
    texts of posts.parquet (``role`` ``copied_text``, exact or near-duplicate, counted
    over all its members' posts)."""
    rows = b.res.rows(
        f"""SELECT post_id, text, copies FROM posts
            WHERE role = 'copied_text' AND campaign_id = ?
            ORDER BY copies DESC NULLS LAST, post_id LIMIT {b.limits.top}""",
        [cid],
    )
    return {
        "rows": [
            {
                "object": None,
                "accounts": r["copies"],
                "posts": None,
                "example_post": r["post_id"],
                "text": b.text(r["text"]),
            }
            for r in rows
        ],
        "note": "texts hidden (--hide-text)" if b.hide_text and rows else None,
    }


def _account_table(b: Builder, what: str) -> dict[str, Any]:
    res, limits = b.res, b.limits
    total = int(res.value("SELECT count(*) FROM _m") or 0)
    rows = res.rows(
        f"""SELECT m.platform, m.account_id, m.role, m.score, m.signals,
                   c.kind, c.degree, c.strength
            FROM _m m LEFT JOIN clusters c USING (platform, account_id)
            ORDER BY m.role = 'organiser' DESC, m.score DESC NULLS LAST, m.platform,
                     m.account_id
            LIMIT {limits.table_rows}"""
    )
    if total > len(rows):
        b.caps.append(f"{what}: the table lists {len(rows):,} of {total:,} accounts")
    out = []
    for r in rows:
        known = b.names.get((r["platform"], r["account_id"]), {})
        out.append(
            {
                "platform": r["platform"],
                "account_id": r["account_id"],
                "kind": b.kind_of(r["platform"], r["account_id"], r["kind"]),
                "role": r["role"],
                "name": known.get("name"),
                "handle": known.get("handle"),
                "created": when(known.get("created_at"), day=True),
                "followers": known.get("followers"),
                "degree": r["degree"],
                "score": number(r["score"]),
                "signals": ", ".join(
                    str(s).removeprefix("co_action:") for s in (r["signals"] or [])
                ),
            }
        )
    return {"rows": out, "total": total, "names": bool(b.names)}


def brigade(b: Builder, c: dict[str, Any], index: int) -> dict[str, Any]:
    res = b.res
    cid = c["campaign_id"]
    slug = f"brig-{index}"
    members = b.select_members(cid)
    b.account_names()
    roles = {
        r["role"]: int(r["n"]) for r in res.rows("SELECT role, count(*) AS n FROM _m GROUP BY 1")
    }
    graph = b.graph(f"{slug}-graph", cid, "role")
    timeline = b.activity(f"{slug}-timeline", c)
    targets = _targets(b, slug, cid)
    automation = _automation(b, cid)
    scores = _report_scores(b, slug, cid)
    where = [
        "(s.entity = 'account' AND EXISTS (SELECT 1 FROM _m WHERE _m.platform = s.platform "
        "AND _m.account_id = s.id))"
    ]
    ours = sql_literal(cid)
    where += [
        f"(s.entity = 'target' AND s.id IN (SELECT target_id FROM targets "
        f"WHERE campaign_id = {ours}))",
        f"(s.entity = 'post' AND s.related_id IN (SELECT target_id FROM targets "
        f"WHERE campaign_id = {ours}))",
        f"(s.entity = 'report' AND s.id IN (SELECT report_id FROM report_scores "
        f"WHERE campaign_id = {ours}))",
    ]
    strengths = []
    parts = c["summary"].get("signals")
    if isinstance(parts, Mapping):
        fired = set(c["signals"] or [])
        for name, part in parts.items():
            if not isinstance(part, Mapping):
                continue
            strengths.append(
                {
                    "signal": name,
                    "strength": number(part.get("strength")),
                    "fired_on": part.get("fired_on"),
                    "fired": name in fired,
                }
            )
        strengths.sort(key=lambda x: (-(x["strength"] or 0.0), x["signal"]))
    return {
        "id": slug,
        "campaign_id": cid,
        "members": members,
        "roles": roles,
        "strengths": strengths,
        "score": number(c["score"]),
        "active": span(c["first_ts"], c["last_ts"]),
        "signals": list(c["signals"] or []),
        "targets_count": c["targets"],
        "reports_count": c["reports"],
        "graph": graph,
        "timeline": timeline,
        "targets": targets,
        "automation": automation,
        "scores": scores,
        "fired": signal_rows(res, " OR ".join(where)),
        "accounts": _account_table(b, f"{cid} reporters"),
    }


def _targets(b: Builder, slug: str, cid: str) -> dict[str, Any]:
    res, limits = b.res, b.limits
    rows = res.rows(
        """SELECT target_id, platform, target_kind, score, reports, first_ts, last_ts
            FROM targets WHERE campaign_id = ?
            ORDER BY reports DESC NULLS LAST, score DESC NULLS LAST, target_id""",
        [cid],
    )
    if len(rows) > limits.table_rows:
        b.caps.append(f"{cid} targets: the table lists {limits.table_rows:,} of {len(rows):,}")
    held = {
        (r["platform"], r["target_id"])
        for r in res.rows("SELECT platform, target_id FROM protected")
    }
    for t in rows:
        t["held"] = (t["platform"], t["target_id"]) in held
    markers = _markers(b, cid)
    charts = []
    for i, t in enumerate(rows[: limits.target_charts]):
        key = f"{slug}-target-{i}"
        marks = markers.get(t["target_id"], [])
        charts.append(
            {
                "key": _target_chart(b, key, cid, t, marks),
                "target_id": t["target_id"],
                "platform": t["platform"],
                "kind": t["target_kind"],
                "reports": t["reports"],
                "active": span(t["first_ts"], t["last_ts"]),
                "held": t["held"],
                "markers": marks[: limits.top],
                "more_markers": max(len(marks) - limits.top, 0),
                "mobilising": sum(m["kind"] == "mobilisation" for m in marks),
                "boasts": sum(m["kind"] == "boast" for m in marks),
            }
        )
    if len(rows) > limits.target_charts:
        b.caps.append(
            f"{cid}: report timelines for the {limits.target_charts} most reported of "
            f"{len(rows):,} targets"
        )
    return {
        "rows": [clean(r) for r in rows[: limits.table_rows]],
        "total": len(rows),
        "charts": charts,
    }


def _markers(b: Builder, cid: str) -> dict[str, list[dict[str, Any]]]:
    """Mobilising and boasting posts tied to each target of the brigade (signals with
    ``related_id`` = target)."""
    rows = b.res.rows(
        """SELECT s.related_id AS target_id, s.id AS post_id, s.platform, s.detector,
                  s.layer, s.score, s.first_ts AS ts_signal, s.detail,
                  p.account_id, p.ts AS ts_post, p.text
            FROM signals s
            LEFT JOIN posts p ON p.platform = s.platform AND p.post_id = s.id
            WHERE s.entity = 'post'
              AND (s.detector IN ('mobilisation', 'boasting') OR s.layer ILIKE '%boast%'
                   OR s.layer ILIKE '%mobilis%')
              AND s.related_id IN (SELECT target_id FROM targets WHERE campaign_id = ?)
            ORDER BY s.related_id, coalesce(ts_signal, ts_post), s.id""",
        [cid],
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        ts = r["ts_signal"] or r["ts_post"]
        boast = "boast" in f"{r['detector']} {r['layer']}".lower()
        out.setdefault(r["target_id"], []).append(
            {
                "kind": "boast" if boast else "mobilisation",
                "post_id": r["post_id"],
                "account": b.label(r["platform"], r["account_id"]) if r["account_id"] else None,
                "t": epoch(ts),
                "when": when(ts),
                "score": number(r["score"]),
                "detail": r["detail"],
                "text": b.text(r["text"]),
            }
        )
    return out


def _target_chart(
    b: Builder, key: str, cid: str, target: Mapping[str, Any], marks: list[dict[str, Any]]
) -> str | None:
    match = "AND r.platform = ?" if target.get("platform") else ""
    params: list[Any] = [cid, target["target_id"]]
    if match:
        params.append(target["platform"])
    rows = b.res.rows(
        f"""SELECT epoch(r.ts) AS t, r.campaign_id = ? AS ours
            FROM report_scores r WHERE r.target_id = ? {match} AND r.ts IS NOT NULL""",
        params,
    )
    times = [float(r["t"]) for r in rows] + [m["t"] for m in marks if m["t"] is not None]
    if not times:
        return None
    first, last = min(times), max(times)
    width = bucket(max(last - first, 1.0), 200)
    start = math.floor(first / width) * width
    count = int((last - start) // width) + 1
    ours = [0.0] * count
    other = [0.0] * count
    for r in rows:
        i = int((float(r["t"]) - start) // width)
        (ours if r["ours"] else other)[i] += 1
    b.charts[key] = {
        "type": "reports",
        "x": [start + i * width for i in range(count)],
        "series": [
            {"label": "reports in this brigade", "values": ours},
            {"label": "other reports", "values": other},
        ],
        "markers": [
            {"t": m["t"], "kind": m["kind"], "label": m["post_id"]}
            for m in marks
            if m["t"] is not None
        ],
        "y": f"reports per {bucket_name(width)}",
    }
    return key


def _automation(b: Builder, cid: str) -> dict[str, Any]:
    res, limits = b.res, b.limits
    automated = int(res.value("SELECT count(*) FROM _m WHERE role = 'automated_reporter'") or 0)
    rows = res.rows(
        f"""SELECT s.platform, s.id AS account_id, m.role, s.detector, s.layer, s.score,
                   s.value, s.first_ts, s.last_ts, s.detail
            FROM signals s JOIN _m m ON m.platform = s.platform AND m.account_id = s.id
            WHERE s.entity = 'account'
              AND (s.detector ILIKE '%automation%' OR s.layer ILIKE '%automat%')
            ORDER BY s.score DESC, s.platform, s.id, s.detector
            LIMIT {limits.table_rows + 1}"""
    )
    if len(rows) > limits.table_rows:
        rows = rows[: limits.table_rows]
        b.caps.append(f"{cid} automation evidence: the first {limits.table_rows:,} rows")
    out = []
    for r in rows:
        row = clean(r)
        row["label"] = b.label(r["platform"], r["account_id"])
        out.append(row)
    return {"rows": out, "automated": automated}


def _report_scores(b: Builder, slug: str, cid: str) -> dict[str, Any]:
    res, limits = b.res, b.limits
    hist = res.rows(
        """SELECT least(floor(score * 20), 19) AS bin, coalesce(campaign_id = ?, false) AS ours,
                  count(*) AS n
           FROM report_scores
           WHERE (campaign_id = ?
                  OR target_id IN (SELECT target_id FROM targets WHERE campaign_id = ?))
             AND score IS NOT NULL
           GROUP BY ALL""",
        [cid, cid, cid],
    )
    key = None
    if hist:
        ours_counts = [0.0] * 20
        other = [0.0] * 20
        for r in hist:
            (ours_counts if r["ours"] else other)[int(r["bin"])] += int(r["n"])
        key = f"{slug}-scores"
        b.charts[key] = {
            "type": "bars",
            "x": [round(0.025 + i * 0.05, 3) for i in range(20)],
            "series": [
                {"label": "reports in this brigade", "values": ours_counts},
                {"label": "other reports on its targets", "values": other},
            ],
            "y": "reports",
            "xlabel": "coordination score",
        }
    recommendations = [
        clean(r)
        for r in res.rows(
            """SELECT coalesce(recommendation, 'none') AS recommendation, count(*) AS reports
               FROM report_scores WHERE campaign_id = ? GROUP BY 1 ORDER BY 2 DESC, 1""",
            [cid],
        )
    ]
    rows = res.rows(
        f"""SELECT report_id, score, reporter_id, target_id, ts, flagged, recommendation,
                   signals
            FROM report_scores WHERE campaign_id = ?
            ORDER BY score DESC, ts NULLS LAST, report_id LIMIT {limits.table_rows}""",
        [cid],
    )
    total = int(res.value("SELECT count(*) FROM report_scores WHERE campaign_id = ?", [cid]) or 0)
    if total > limits.table_rows:
        b.caps.append(
            f"{cid} reports: the table lists the {limits.table_rows:,} of {total:,} "
            "with the highest scores"
        )
    return {
        "rows": [clean(r) for r in rows[: limits.table_rows]],
        "total": total,
        "key": key,
        "recommendations": recommendations,
    }


def assets(summary: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """A network's accounts by platform, then kind, as its summary counts them; counts
    that are not numbers are left out.

    >>> assets({"assets": {"facebook": {"page": 3, "user": "many"}, "x": "junk"}})
    {'facebook': {'page': 3}}
    """
    raw = summary.get("assets")
    if not isinstance(raw, Mapping):
        return {}
    return {
        str(platform): {
            str(kind): int(n) for kind, n in kinds.items() if isinstance(n, int | float)
        }
        for platform, kinds in raw.items()
        if isinstance(kinds, Mapping)
    }
