"""The page's model from a result directory: the summary of every campaign, a section
for each of the largest, and how the run was made.

:func:`collect` is what the page (:mod:`concerted.outputs.page`) and summary.json
(:mod:`concerted.outputs.summary`) are built from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from concerted import __version__
from concerted.outputs.base import SUMMARY_FILE, Result
from concerted.outputs.figures import Limits, assets_phrase, clean, number, span, when
from concerted.outputs.sections import assets, brigade, network
from concerted.outputs.views import Builder

__all__ = ["collect"]

_NULL_MODELS = {
    "relabel": "Within each platform the accounts were shuffled over the posts: every post "
    "kept its actions and time, every account its number of posts; who acted with whom "
    "became random.",
    "shift": "Each account's timeline was shifted by its own random offset, circularly over "
    "the span of the data, keeping its rhythm but breaking alignment with others.",
    "shuffle": "Within each object, the times were shuffled over its actions, keeping who "
    "acted on what and each object's burst.",
}

# Files of the result directory that the method section lists without a hash: the case
# is large and may change, the page and summary.json are being written.
_UNHASHED = (".duckdb", ".html")


def collect(
    result_dir: str | Path,
    *,
    hide_text: bool = False,
    limits: Limits | None = None,
    title: str | None = None,
    memory_limit: str | None = None,
) -> dict[str, Any]:
    """The page's model: everything the page shows, JSON-ready.

    ``result_dir`` is a finished result of :data:`~concerted.outputs.base.RESULT_FORMAT`;
    ``hide_text`` leaves every message text out; ``limits`` caps what big runs show;
    ``title`` replaces the one named after the case; ``memory_limit`` bounds the
    DuckDB database that reads the result.
    """
    directory = Path(result_dir)
    limits = limits or Limits()
    res = Result(directory, memory_limit=memory_limit)
    run = res.run
    try:
        b = Builder(res=res, limits=limits, hide_text=hide_text)
        campaigns = _campaign_rows(res)
        networks = [c for c in campaigns if c["kind"] == "network" and c["flagged"]]
        brigades = [c for c in campaigns if c["kind"] == "brigade" and c["flagged"]]
        network_sections = [network(b, c, i) for i, c in enumerate(networks[: limits.campaigns])]
        brigade_sections = [brigade(b, c, i) for i, c in enumerate(brigades[: limits.campaigns])]
        for kind, found in (("networks", networks), ("brigades", brigades)):
            if len(found) > limits.campaigns:
                b.caps.append(
                    f"{kind}: the {limits.campaigns} largest of {len(found)} have a section; "
                    "the summary lists all"
                )
        summary = _summary(b, campaigns, networks, brigades)
        method = _method(run, directory)
        model = {
            "title": title or _title(run, directory),
            "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "concerted": __version__,
            "hide_text": hide_text,
            "summary": summary,
            "networks": network_sections,
            "brigades": brigade_sections,
            "method": method,
            "caps": b.caps,
            "data": {"charts": b.charts, "graphs": b.graphs},
        }
    finally:
        res.close()
    return model


def _title(run: Mapping[str, Any], directory: Path) -> str:
    """Named after the case file, or the result directory when the case is the default
    ``DIR/case.duckdb``."""
    case = run["case"]
    if Path(case).name not in ("case.duckdb", ":memory:"):
        return f"Coordination report: {Path(case).stem}"
    return f"Coordination report: {directory.resolve().name}"


def _campaign_rows(res: Result) -> list[dict[str, Any]]:
    """Every campaign, largest first, its summary parsed (a summary that is not a JSON
    object reads as empty)."""
    rows = res.rows(
        """SELECT campaign_id, kind, score, strength, flagged, signals, accounts, targets, reports,
                  first_ts, last_ts, summary
           FROM campaigns
           ORDER BY kind = 'brigade',
                    TRY_CAST(regexp_extract(campaign_id, '([0-9]+)$', 1) AS INTEGER), campaign_id"""
    )
    for r in rows:
        try:
            parsed = json.loads(r["summary"]) if r["summary"] else {}
        except json.JSONDecodeError:
            parsed = {}
        r["summary"] = parsed if isinstance(parsed, dict) else {}
    return rows


def _ties(campaign: Mapping[str, Any]) -> int | None:
    """A network's ties beyond chance among its acting accounts (its summary's)."""
    summary = campaign["summary"]
    if isinstance(summary, str):
        try:
            summary = json.loads(summary)
        except ValueError:
            return None
    ties = summary.get("ties") if isinstance(summary, Mapping) else None
    return int(ties) if isinstance(ties, int) else None


def _summary(
    b: Builder,
    campaigns: list[dict[str, Any]],
    networks: list[dict[str, Any]],
    brigades: list[dict[str, Any]],
) -> dict[str, Any]:
    res, limits, caps = b.res, b.limits, b.caps
    network_rows = []
    totals: dict[str, dict[str, int]] = {}
    for c in networks:
        found = assets(c["summary"])
        per_platform = []
        for platform in sorted(found):
            kinds = found[platform]
            counts = {
                "pages": kinds.get("page", 0),
                "groups": kinds.get("group", 0),
                "users": kinds.get("user", 0),
                "other": sum(n for k, n in kinds.items() if k not in ("page", "group", "user")),
            }
            per_platform.append({"platform": platform, **counts, "total": sum(counts.values())})
            t = totals.setdefault(platform, {"pages": 0, "groups": 0, "users": 0, "other": 0})
            for k, n in counts.items():
                t[k] += n
        network_rows.append(
            {
                "campaign_id": c["campaign_id"],
                "accounts": c["accounts"],
                "assets": per_platform,
                "phrase": assets_phrase(found),
                "active": span(c["first_ts"], c["last_ts"]),
                "score": number(c["score"]),
                "strength": number(c["strength"]),
                "ties": _ties(c),
                "signals": [str(s).removeprefix("co_action:") for s in c["signals"] or []],
            }
        )
    brigade_rows = []
    for c in brigades:
        roles = {
            r["role"]: int(r["n"])
            for r in res.rows(
                "SELECT role, count(*) AS n FROM members WHERE campaign_id = ? GROUP BY 1",
                [c["campaign_id"]],
            )
        }
        brigade_rows.append(
            {
                "campaign_id": c["campaign_id"],
                "reporters": roles.get("reporter", 0) + roles.get("automated_reporter", 0),
                "automated": roles.get("automated_reporter", 0),
                "organisers": roles.get("organiser", 0),
                "targets": c["targets"],
                "reports": c["reports"],
                "active": span(c["first_ts"], c["last_ts"]),
                "score": number(c["score"]),
                "signals": list(c["signals"] or []),
            }
        )
    total = int(res.value("SELECT count(*) FROM protected") or 0)
    rows = res.rows(
        f"""SELECT target_id, platform, target_kind, reports, flagged, share, campaign_id
            FROM protected
            ORDER BY share DESC NULLS LAST, reports DESC NULLS LAST, target_id
            LIMIT {limits.table_rows}"""
    )
    if total > len(rows):
        caps.append(f"targets to protect: the table lists {len(rows):,} of {total:,}")
    return {
        "networks": network_rows,
        "brigades": brigade_rows,
        "totals": [
            {"platform": p, **t, "total": sum(t.values())} for p, t in sorted(totals.items())
        ],
        "network_accounts": sum(int(c["accounts"] or 0) for c in networks),
        "unflagged": sum(not c["flagged"] for c in campaigns),
        "reports_scored": res.value("SELECT count(*) FROM report_scores"),
        "reports_flagged": res.value("SELECT count(*) FROM report_scores WHERE flagged"),
        "protected": {"rows": [clean(r) for r in rows], "total": total},
    }


def _method(run: Mapping[str, Any], directory: Path) -> dict[str, Any]:
    """How the run was made, from its run record."""
    settings = run["settings"]
    significance = settings["significance"]
    notes = run["notes"]
    sig_notes = notes["significance"]
    seconds = run["seconds"]
    total = sum(float(v) for v in seconds.values()) or 1.0
    timings = [
        {"stage": k, "seconds": float(v), "share": round(float(v) / total, 3)}
        for k, v in seconds.items()
    ]
    keys = ("weight", "observed_at_least", "expected_at_least", "q_value")
    by_weight = [{k: number(row.get(k)) for k in keys} for row in sig_notes.get("by_weight", [])]
    null_name = significance.get("null")
    return {
        "version": run["concerted"],
        "command": run["command"],
        "started": when(run["started"]),
        "case": run["case"],
        "pseudonymised": run["pseudonymised"],
        "settings": _flatten(settings),
        "inputs": [
            {k: i[k] for k in ("path", "format", "sha256", "rows_read", "rows_set_aside")}
            for i in run["inputs"]
        ],
        "timings": timings,
        "total_seconds": round(sum(t["seconds"] for t in timings), 1),
        "counts": dict(run["counts"]),
        "null_model": null_name,
        "null_text": _NULL_MODELS.get(str(null_name)),
        "significance": {k: v for k, v in significance.items() if not isinstance(v, list | dict)},
        "significance_notes": {
            k: v for k, v in sig_notes.items() if not isinstance(v, list | dict)
        },
        "by_weight": by_weight[:20],
        "viral_objects": len(notes.get("co_action", {}).get("viral_objects") or []),
        "files": _files(directory),
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _files(directory: Path) -> list[dict[str, Any]]:
    """The exports in the result directory (the case file and the report itself are not
    hashed: one is large and changing, the other is being written)."""
    out = []
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix not in (".parquet", ".graphml", ".gexf", ".json", ".html", ".duckdb"):
            continue
        hashed = path.suffix not in _UNHASHED and path.name != SUMMARY_FILE
        out.append(
            {
                "name": path.name,
                "bytes": path.stat().st_size,
                "sha256": _sha256(path) if hashed else None,
            }
        )
    return out


def _flatten(settings: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested settings as ``part.key = value`` rows.

    >>> _flatten({"coaction": {"window": 60.0, "kinds": ["repost", "text"]}})
    [('coaction.window', '60.0'), ('coaction.kinds', 'repost, text')]
    """
    if isinstance(settings, Mapping):
        rows: list[tuple[str, str]] = []
        for key, value in settings.items():
            rows.extend(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return rows
    if isinstance(settings, list | tuple):
        return [(prefix, ", ".join(str(v) for v in settings))]
    return [(prefix, "none" if settings is None else str(settings))]
