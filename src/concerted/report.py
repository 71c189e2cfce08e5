"""The investigation report: one HTML file that opens offline, built from a result
directory alone.

:func:`write` reads what ``concerted analyze`` wrote (Parquet tables, ``run.json``) and
writes ``report.html`` and ``summary.json`` beside it, so ``concerted report DIR``
can rebuild both from a finished run. The page is rendered from the Jinja2 templates
in ``concerted/templates``; the charting libraries (uPlot for timelines, Cytoscape.js
for the network views) are vendored in ``concerted/assets`` and inlined with every
style and script, so no request leaves the page.

Every part degrades: a file or column an older run did not write, or a run without
brigades, gives a section that says what is missing instead of an error. Big runs are
capped (graph nodes and edges, table rows, target charts; see :class:`Limits`) and
the page says what was capped.

>>> Limits().graph_nodes
300
>>> Limits(table_rows=0)
Traceback (most recent call last):
...
concerted.errors.ConfigError: report limit table_rows must be a whole number of at least 1
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import jinja2
import numpy as np
import pyarrow as pa

from concerted import __version__
from concerted.errors import ConfigError
from concerted.schema import quote_ident, sql_literal
from concerted.store import default_memory_limit

__all__ = ["REPORT_FILE", "SUMMARY_FILE", "Demo", "Limits", "collect", "demo", "render", "write"]

REPORT_FILE = "report.html"
SUMMARY_FILE = "summary.json"

#: The tables a result directory may hold, each ``NAME.parquet``; all are optional.
TABLES: tuple[str, ...] = (
    "campaigns",
    "members",
    "clusters",
    "edges",
    "events",
    "signals",
    "targets",
    "report_scores",
    "accounts",
    "posts",
    "timeline",
    "protected",
)

# Vendored files, inlined in this order (see scripts/vendor_assets.sh).
_STYLES = ("uPlot.min.css",)
_SCRIPTS = ("uPlot.iife.min.js", "cytoscape.min.js")

# Bucket widths a timeline may use, in seconds: the finest that keeps the points few.
_BUCKETS = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400, 28 * 86400)

_KIND_NAMES = {"page": ("Page", "Pages"), "group": ("Group", "Groups")}
_KIND_ORDER = {"page": 0, "group": 1, "user": 3}

_NULL_MODELS = {
    "relabel": "Within each platform the accounts were shuffled over the posts: every post "
    "kept its actions and time, every account its number of posts; who acted with whom "
    "became random.",
    "shift": "Each account's timeline was shifted by its own random offset, circularly over "
    "the span of the data, keeping its rhythm but breaking alignment with others.",
    "shuffle": "Within each object, the times were shuffled over its actions, keeping who "
    "acted on what and each object's burst.",
}


@dataclass(frozen=True, kw_only=True)
class Limits:
    """How much of a big run the page shows; what is left out is said on the page."""

    graph_nodes: int = 300
    graph_edges: int = 2500
    table_rows: int = 200
    target_charts: int = 12
    campaigns: int = 12
    top: int = 10
    node_evidence: int = 6
    timeline_points: int = 600

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"report limit {f.name} must be a whole number of at least 1")


# --------------------------------------------------------------------------- reading


class _Result:
    """The Parquet files of a result directory as DuckDB views, and what they hold."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.con = duckdb.connect(config={"memory_limit": default_memory_limit()})
        self.con.execute("SET TimeZone = 'UTC'")
        self.columns: dict[str, set[str]] = {}
        self.problems: list[str] = []
        for name in TABLES:
            path = directory / f"{name}.parquet"
            if not path.is_file():
                continue
            try:
                self.con.execute(
                    f"CREATE VIEW {name} AS SELECT * FROM read_parquet({sql_literal(str(path))})"
                )
                described = self.con.execute(f"DESCRIBE {name}").fetchall()
            except duckdb.Error as exc:
                self.problems.append(f"{path.name} could not be read: {exc}")
                self.con.execute(f"DROP VIEW IF EXISTS {name}")
                continue
            self.columns[name] = {str(row[0]) for row in described}

    def has(self, table: str, *columns: str) -> bool:
        return table in self.columns and set(columns) <= self.columns[table]

    def col(self, table: str, column: str, alias: str = "", default: str = "NULL") -> str:
        """``alias.column`` when the table has it, else ``default`` (an older run)."""
        if not self.has(table, column):
            return default
        return f"{alias + '.' if alias else ''}{quote_ident(column)}"

    def rows(self, query: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = self.con.execute(query, list(params))
        names = [d[0] for d in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def value(self, query: str, params: Sequence[Any] = ()) -> Any:
        row = self.con.execute(query, list(params)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        self.con.close()


# --------------------------------------------------------------------------- formatting


def _when(value: Any, *, day: bool = False) -> str | None:
    """A timestamp as the page shows it, always UTC.

    >>> _when(datetime(2020, 6, 4, 11, 12, 58, tzinfo=UTC))
    '2020-06-04 11:12 UTC'
    >>> _when("2020-06-04T11:12:58Z", day=True)
    '2020-06-04'
    """
    if value is None:
        return None
    moment: datetime
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    elif isinstance(value, datetime):
        moment = value
    else:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d") if day else moment.strftime("%Y-%m-%d %H:%M UTC")


def _epoch(value: Any) -> float | None:
    if not isinstance(value, datetime):
        return None
    moment: datetime = value if value.tzinfo else value.replace(tzinfo=UTC)
    return moment.timestamp()


def _span(first: Any, last: Any) -> str | None:
    a, b = _when(first, day=True), _when(last, day=True)
    if a is None and b is None:
        return None
    return a if a == b else f"{a} to {b}"


def _number(value: Any, digits: int = 3) -> Any:
    """JSON-ready numbers: floats rounded, NaN as None."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, digits)
    return value


def _clean(row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, datetime):
            out[key] = _when(value)
        elif isinstance(value, list | tuple):
            out[key] = [_number(v) for v in value]
        else:
            out[key] = _number(value)
    return out


def _bucket(span_seconds: float, points: int, finest: int = 60) -> int:
    """The finest bucket width that keeps ``span_seconds`` within ``points`` buckets.

    >>> _bucket(14 * 86400, 600, finest=3600)
    3600
    >>> _bucket(3 * 365 * 86400, 600)  # three years by the week
    604800
    """
    for width in _BUCKETS:
        if width >= finest and span_seconds / width <= points:
            return width
    return _BUCKETS[-1]


def _bucket_name(width: int) -> str:
    names = {60: "minute", 3600: "hour", 86400: "day", 7 * 86400: "week"}
    if width in names:
        return names[width]
    if width % 86400 == 0:
        return f"{width // 86400} days"
    if width % 3600 == 0:
        return f"{width // 3600} hours"
    return f"{width // 60} minutes"


def _assets_phrase(assets: Mapping[str, Mapping[str, int]]) -> str:
    """Assets counted the way takedown reports count them.

    >>> _assets_phrase({"facebook": {"page": 10, "group": 1, "user": 45},
    ...                 "instagram": {"user": 10}})
    '10 Facebook Pages, 1 Group and 45 accounts; 10 Instagram accounts'
    >>> _assets_phrase({"telegram": {"channel": 2, "user": 1}})
    '2 Telegram channels and 1 account'
    """
    parts = []
    for platform in sorted(assets):
        kinds = assets[platform]
        label = platform.capitalize()
        items = []
        for kind in sorted(kinds, key=lambda k: (_KIND_ORDER.get(k, 2), k)):
            n = int(kinds[kind])
            if kind in _KIND_NAMES:
                noun = _KIND_NAMES[kind][0 if n == 1 else 1]
            elif kind == "user":
                noun = "account" if n == 1 else "accounts"
            else:
                noun = kind if n == 1 else f"{kind}s"
            items.append(f"{n:,} {noun}")
        if not items:
            continue
        items[0] = items[0].replace(" ", f" {label} ", 1)
        joined = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
        parts.append(joined)
    return "; ".join(parts)


# --------------------------------------------------------------------------- layout


def _layout(
    n: int, source: np.ndarray[Any, Any], target: np.ndarray[Any, Any], weight: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """Fruchterman-Reingold positions in a 1000-unit box; seeded, so the same graph
    draws the same way.

    >>> _layout(3, np.array([0, 1]), np.array([1, 2]), np.array([1.0, 1.0])).shape
    (3, 2)
    """
    if n == 0:
        return np.zeros((0, 2))
    rng = np.random.default_rng(0)
    pos = rng.uniform(-1.0, 1.0, (n, 2))
    if n == 1:
        return np.full((1, 2), 500.0)
    k = math.sqrt(4.0 / n)
    w = np.sqrt(weight / weight.max()) if weight.size else weight
    step = 0.2
    for _ in range(150):
        dx = pos[:, 0:1] - pos[:, 0]
        dy = pos[:, 1:2] - pos[:, 1]
        push = k * k / (dx * dx + dy * dy + 1e-6)
        disp = np.stack([(push * dx).sum(axis=1), (push * dy).sum(axis=1)], axis=1)
        if source.size:
            d = pos[source] - pos[target]
            length = np.sqrt((d**2).sum(axis=1)) + 1e-9
            pull = d * (length / k * w)[:, None]
            for axis in (0, 1):
                disp[:, axis] += np.bincount(target, pull[:, axis], n) - np.bincount(
                    source, pull[:, axis], n
                )
        disp -= 0.5 * k * pos
        length = np.sqrt((disp**2).sum(axis=1)) + 1e-9
        pos += disp / length[:, None] * np.minimum(length, step)[:, None]
        step *= 0.97
    low, high = pos.min(axis=0), pos.max(axis=0)
    scaled: np.ndarray[Any, Any] = (pos - low) / np.maximum(high - low, 1e-9) * 1000.0
    return scaled


# --------------------------------------------------------------------------- sections


@dataclass
class _Builder:
    """Collects the page's model: sections, chart and graph data, and caps."""

    res: _Result
    limits: Limits
    hide_text: bool
    charts: dict[str, Any] = field(default_factory=dict)
    graphs: dict[str, Any] = field(default_factory=dict)
    caps: list[str] = field(default_factory=list)
    names: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def text(self, value: Any) -> str | None:
        if value is None:
            return None
        return None if self.hide_text else str(value)

    # ---- the members of one campaign and the evidence among them

    def select_members(self, campaign_id: str) -> int:
        res = self.res
        if res.has("members", "campaign_id", "platform", "account_id"):
            res.con.execute(
                f"""CREATE OR REPLACE TEMP TABLE _m AS
                    SELECT platform, account_id,
                           {res.col("members", "role", default="'member'")} AS role,
                           CAST({res.col("members", "score")} AS DOUBLE) AS score,
                           {res.col("members", "signals", default="CAST(NULL AS VARCHAR[])")}
                           AS signals
                    FROM members WHERE campaign_id = ?""",
                [campaign_id],
            )
        else:
            res.con.execute(
                """CREATE OR REPLACE TEMP TABLE _m AS
                   SELECT NULL::VARCHAR AS platform, NULL::VARCHAR AS account_id,
                          NULL::VARCHAR AS role, NULL::DOUBLE AS score,
                          NULL::VARCHAR[] AS signals WHERE false"""
            )
        if res.has("edges", "platform_1", "account_1", "platform_2", "account_2", "weight"):
            significant = "coalesce(significant, true)" if res.has("edges", "significant") else ""
            edges = f"""
                SELECT e.platform_1, e.account_1, e.platform_2, e.account_2,
                       {res.col("edges", "detector", "e", "'co_action'")} AS detector,
                       {res.col("edges", "layer", "e", "'?'")} AS layer, e.weight,
                       {res.col("edges", "events", "e")} AS events,
                       {res.col("edges", "median_dt", "e")} AS median_dt,
                       {res.col("edges", "q_value", "e")} AS q_value,
                       {res.col("edges", "first_ts", "e")} AS first_ts,
                       {res.col("edges", "last_ts", "e")} AS last_ts
                FROM (SELECT * FROM edges {"WHERE " + significant if significant else ""}) e
                SEMI JOIN _m a ON a.platform = e.platform_1 AND a.account_id = e.account_1
                SEMI JOIN _m b ON b.platform = e.platform_2 AND b.account_id = e.account_2"""
        else:
            edges = """SELECT NULL::VARCHAR AS platform_1, NULL::VARCHAR AS account_1,
                NULL::VARCHAR AS platform_2, NULL::VARCHAR AS account_2,
                NULL::VARCHAR AS detector, NULL::VARCHAR AS layer, NULL::DOUBLE AS weight,
                NULL::BIGINT AS events, NULL::DOUBLE AS median_dt, NULL::DOUBLE AS q_value,
                NULL::TIMESTAMPTZ AS first_ts, NULL::TIMESTAMPTZ AS last_ts WHERE false"""
        res.con.execute(f"CREATE OR REPLACE TEMP TABLE _e AS {edges}")
        res.con.execute(
            """CREATE OR REPLACE TEMP TABLE _p AS
               SELECT platform_1, account_1, platform_2, account_2, sum(weight) AS weight,
                      sum(events) AS events, min(q_value) AS q_value
               FROM _e GROUP BY ALL"""
        )
        return int(res.value("SELECT count(*) FROM _m") or 0)

    def account_names(self) -> None:
        """Name and handle of every account of ``_m`` (accounts.parquet), cached."""
        if not self.res.has("accounts", "platform", "account_id"):
            return
        cols = ", ".join(
            f"{self.res.col('accounts', c, 'a')} AS {c}"
            for c in ("kind", "name", "handle", "created_at", "followers")
        )
        for r in self.res.rows(
            f"""SELECT a.platform, a.account_id, {cols} FROM accounts a
                SEMI JOIN _m USING (platform, account_id)"""
        ):
            self.names[(r["platform"], r["account_id"])] = r

    def label(self, platform: str, account_id: str) -> str:
        known = self.names.get((platform, account_id), {})
        handle = known.get("handle")
        return f"@{handle}" if handle else str(known.get("name") or account_id)

    def kind_of(self, platform: str, account_id: str, fallback: Any = None) -> str:
        known = self.names.get((platform, account_id), {})
        return str(known.get("kind") or fallback or "unknown")

    # ---- graph

    def graph(self, key: str, what: str, color_by: str) -> dict[str, Any]:
        """The network view of ``_m`` over the pairs in ``_p``: the most strongly tied
        accounts, their strongest ties, and each one's evidence."""
        res, limits = self.res, self.limits
        strength = res.rows(
            """WITH ends AS (
                   SELECT platform_1 AS platform, account_1 AS account_id, weight FROM _p
                   UNION ALL SELECT platform_2, account_2, weight FROM _p)
               SELECT platform, account_id, count(*) AS degree, sum(weight) AS strength
               FROM ends GROUP BY ALL ORDER BY strength DESC, platform, account_id"""
        )
        members = {
            (r["platform"], r["account_id"]): r
            for r in res.rows("SELECT platform, account_id, role FROM _m")
        }
        kinds: dict[tuple[str, str], Any] = {}
        if res.has("clusters", "platform", "account_id", "kind"):
            kinds = {
                (r["platform"], r["account_id"]): r["kind"]
                for r in res.rows(
                    "SELECT platform, account_id, kind FROM clusters "
                    "SEMI JOIN _m USING (platform, account_id)"
                )
            }
        shown = strength[: limits.graph_nodes]
        if len(strength) > len(shown):
            self.caps.append(
                f"{what}: the network view shows the {len(shown):,} most strongly tied of "
                f"{len(strength):,} accounts with ties"
            )
        index = {(r["platform"], r["account_id"]): i for i, r in enumerate(shown)}
        self._table("_n", ("platform", "account_id"), list(index))
        ties_total = int(res.value("SELECT count(*) FROM _p") or 0)
        drawn = res.rows(
            f"""SELECT p.* FROM _p p
                SEMI JOIN _n a ON a.platform = p.platform_1 AND a.account_id = p.account_1
                SEMI JOIN _n b ON b.platform = p.platform_2 AND b.account_id = p.account_2
                ORDER BY weight DESC, platform_1, account_1, platform_2, account_2
                LIMIT {limits.graph_edges + 1}"""
        )
        if len(drawn) > limits.graph_edges:
            drawn = drawn[: limits.graph_edges]
            self.caps.append(
                f"{what}: the network view draws the {limits.graph_edges:,} strongest of "
                f"{ties_total:,} ties"
            )
        tie_rows = self._ties()
        pairs = {r["pair"] for r in tie_rows}
        self._table("_w", ("platform_1", "account_1", "platform_2", "account_2"), sorted(pairs))
        layers = self._layers()
        source = np.array([index[(e["platform_1"], e["account_1"])] for e in drawn], dtype=int)
        target = np.array([index[(e["platform_2"], e["account_2"])] for e in drawn], dtype=int)
        weight = np.array([float(e["weight"]) for e in drawn], dtype=float)
        pos = _layout(len(shown), source, target, weight)

        ties: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in tie_rows:
            ties.setdefault(r["node"], []).append(
                {
                    "with": self.label(*r["other"]),
                    "layers": layers.get(r["pair"], ""),
                    "weight": _number(r["weight"]),
                    "events": r["events"],
                    "q": None if r["q_value"] is None else f"{r['q_value']:.2g}",
                }
            )
        signals = self._node_signals()
        events = self._node_events()
        platforms = sorted({p for p, _ in index})
        groups: list[str] = []
        nodes = []
        for i, r in enumerate(shown):
            key_ = (r["platform"], r["account_id"])
            role = members.get(key_, {}).get("role") or "member"
            kind = self.kind_of(*key_, kinds.get(key_))
            group = kind if color_by == "kind" else role
            if group not in groups:
                groups.append(group)
            known = self.names.get(key_, {})
            nodes.append(
                {
                    "id": f"n{i}",
                    "label": self.label(*key_),
                    "account_id": key_[1],
                    "platform": key_[0],
                    "kind": kind,
                    "role": role,
                    "name": known.get("name"),
                    "handle": known.get("handle"),
                    "group": group,
                    "shape": platforms.index(key_[0]),
                    "degree": int(r["degree"]),
                    "strength": _number(float(r["strength"])),
                    "x": round(float(pos[i, 0]), 1),
                    "y": round(float(pos[i, 1]), 1),
                    "ties": ties.get(key_, []),
                    "signals": signals.get(key_, []),
                    "events": events.get(key_, []),
                }
            )
        edges = [
            {"s": f"n{int(source[j])}", "t": f"n{int(target[j])}", "w": _number(float(weight[j]))}
            for j in range(len(drawn))
        ]
        self.graphs[key] = {
            "nodes": nodes,
            "edges": edges,
            "groups": groups,
            "platforms": platforms,
        }
        return {
            "key": key,
            "nodes": len(nodes),
            "edges": len(edges),
            "accounts_with_ties": len(strength),
            "isolated": max(len(members) - len(strength), 0),
            "ties": ties_total,
            "groups": groups,
            "platforms": platforms,
        }

    def _table(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """A temporary table of text columns holding ``rows``."""
        data = {c: pa.array([r[i] for r in rows], type=pa.string()) for i, c in enumerate(columns)}
        view = f"{name}_arrow"
        self.res.con.register(view, pa.table(data))
        try:
            self.res.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {view}")
        finally:
            self.res.con.unregister(view)

    def _ties(self) -> list[dict[str, Any]]:
        """Each shown account's strongest ties (pairs of ``_p``), strongest first."""
        rows = self.res.rows(
            f"""WITH ends AS (
                    SELECT platform_1 AS platform, account_1 AS account_id,
                           platform_2 AS other_platform, account_2 AS other, weight, events,
                           q_value, platform_1, account_1, platform_2, account_2 FROM _p
                    UNION ALL
                    SELECT platform_2, account_2, platform_1, account_1, weight, events,
                           q_value, platform_1, account_1, platform_2, account_2 FROM _p)
                SELECT * FROM ends SEMI JOIN _n USING (platform, account_id)
                QUALIFY row_number() OVER (PARTITION BY platform, account_id
                                           ORDER BY weight DESC, other_platform, other)
                        <= {self.limits.node_evidence}
                ORDER BY platform, account_id, weight DESC, other_platform, other"""
        )
        return [
            {
                "node": (r["platform"], r["account_id"]),
                "other": (r["other_platform"], r["other"]),
                "pair": (r["platform_1"], r["account_1"], r["platform_2"], r["account_2"]),
                "weight": r["weight"],
                "events": r["events"],
                "q_value": r["q_value"],
            }
            for r in rows
        ]

    def _layers(self) -> dict[tuple[str, str, str, str], str]:
        """What each pair of ``_w`` shared, strongest layer first: 'repost 12 · text 3'."""
        rows = self.res.rows(
            """SELECT platform_1, account_1, platform_2, account_2,
                      string_agg(layer || ' ' || CAST(round(weight) AS BIGINT), ' · '
                                 ORDER BY weight DESC, layer) AS layers
               FROM _e SEMI JOIN _w USING (platform_1, account_1, platform_2, account_2)
               GROUP BY ALL"""
        )
        return {
            (r["platform_1"], r["account_1"], r["platform_2"], r["account_2"]): r["layers"]
            for r in rows
        }

    def _node_signals(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        res = self.res
        if not res.has("signals", "detector", "entity", "platform", "id", "score"):
            return {}
        rows = res.rows(
            f"""SELECT s.platform, s.id AS account_id, s.detector,
                       {res.col("signals", "layer", "s")} AS layer, s.score,
                       {res.col("signals", "value", "s")} AS value,
                       {res.col("signals", "detail", "s")} AS detail
                FROM signals s JOIN _n n ON n.platform = s.platform AND n.account_id = s.id
                WHERE s.entity = 'account'
                QUALIFY row_number() OVER (PARTITION BY s.platform, s.id
                                           ORDER BY s.score DESC, s.detector, layer)
                        <= {self.limits.node_evidence}
                ORDER BY s.platform, s.id, s.score DESC, s.detector, layer"""
        )
        out: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in rows:
            out.setdefault((r["platform"], r["account_id"]), []).append(
                {
                    "detector": r["detector"],
                    "layer": r["layer"],
                    "score": _number(r["score"]),
                    "value": _number(r["value"]),
                    "detail": r["detail"],
                }
            )
        return out

    def _node_events(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """The first matched actions of each shown account with its strongest ties (the
        pairs of ``_w``: reading every event of a big network would take long)."""
        res = self.res
        needed = ("platform_1", "account_1", "platform_2", "account_2", "object_id", "ts_1")
        if not res.has("events", *needed, "ts_2", "layer"):
            return {}
        s1, s2 = res.col("events", "source_1"), res.col("events", "source_2")
        rows = res.rows(
            f"""WITH ev AS (
                    SELECT * FROM events
                    SEMI JOIN _w USING (platform_1, account_1, platform_2, account_2)),
                ends AS (
                    SELECT platform_1 AS platform, account_1 AS account_id, platform_2 AS op,
                           account_2 AS other, layer, object_id, ts_1 AS ts, ts_2 AS other_ts,
                           {s1} AS source FROM ev
                    UNION ALL
                    SELECT platform_2, account_2, platform_1, account_1, layer, object_id,
                           ts_2, ts_1, {s2} FROM ev)
                SELECT * FROM ends SEMI JOIN _n USING (platform, account_id)
                QUALIFY row_number() OVER (PARTITION BY platform, account_id
                                           ORDER BY ts, layer, object_id, op, other)
                        <= {self.limits.node_evidence}
                ORDER BY platform, account_id, ts, layer, object_id, op, other"""
        )
        out: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in rows:
            gap = None
            if r["ts"] is not None and r["other_ts"] is not None:
                gap = round(abs((r["other_ts"] - r["ts"]).total_seconds()))
            out.setdefault((r["platform"], r["account_id"]), []).append(
                {
                    "layer": r["layer"],
                    "object": r["object_id"],
                    "when": _when(r["ts"]),
                    "with": self.label(r["op"], r["other"]),
                    "gap": gap,
                    "source": r["source"],
                }
            )
        return out

    # ---- timelines

    def activity(self, key: str, campaign: Mapping[str, Any]) -> dict[str, Any]:
        """The campaign's actions over time, by kind."""
        res = self.res
        first, last = _epoch(campaign.get("first_ts")), _epoch(campaign.get("last_ts"))
        source = ""
        rows: list[dict[str, Any]] = []
        finest = 60
        if res.has("timeline", "campaign_id", "bucket", "kind", "actions"):
            rows = res.rows(
                """SELECT epoch(bucket) AS t, kind, sum(actions) AS n FROM timeline
                   WHERE campaign_id = ? GROUP BY ALL""",
                [campaign["campaign_id"]],
            )
            source = "all actions of the campaign's accounts (timeline.parquet)"
            finest = 3600
        if not rows and res.has("events", "layer", "ts_1", "ts_2", "account_1", "account_2"):
            s1, s2 = res.col("events", "source_1"), res.col("events", "source_2")
            rows = res.rows(
                f"""WITH ev AS (
                        SELECT v.* FROM events v
                        SEMI JOIN _p p ON p.platform_1 = v.platform_1
                         AND p.account_1 = v.account_1 AND p.platform_2 = v.platform_2
                         AND p.account_2 = v.account_2),
                    acts AS (
                        SELECT DISTINCT layer, platform_1 AS platform, account_1 AS account,
                               {s1} AS src, object_id, ts_1 AS ts FROM ev
                        UNION
                        SELECT layer, platform_2, account_2, {s2},
                               object_id, ts_2 FROM ev)
                    SELECT floor(epoch(ts) / 60) * 60 AS t, layer AS kind, count(*) AS n
                    FROM acts GROUP BY ALL"""
            )
            source = "the matched actions in the evidence (events.parquet)"
        if not rows:
            return {"key": None, "source": None, "outside": 0}
        if first is None or last is None:
            first = min(float(r["t"]) for r in rows)
            last = max(float(r["t"]) for r in rows)
        width = _bucket(max(last - first, 1.0), self.limits.timeline_points, finest)
        start = math.floor(first / width) * width
        count = int((last - start) // width) + 1
        kinds = sorted({str(r["kind"]) for r in rows})
        series = {k: [0.0] * count for k in kinds}
        outside = 0
        for r in rows:
            i = int((float(r["t"]) - start) // width)
            if 0 <= i < count:
                series[str(r["kind"])][i] += float(r["n"])
            else:
                outside += int(r["n"])
        totals = {k: sum(v) for k, v in series.items()}
        if not any(totals.values()):
            return {"key": None, "source": source, "outside": outside}
        ordered = sorted(kinds, key=lambda k: (-totals[k], k))
        self.charts[key] = {
            "type": "lines",
            "x": [start + i * width for i in range(count)],
            "series": [{"label": k, "values": series[k]} for k in ordered if totals[k] > 0],
            "y": f"actions per {_bucket_name(width)}",
        }
        return {"key": key, "source": source, "outside": outside, "bucket": _bucket_name(width)}


# --------------------------------------------------------------------------- model


def _read_run(directory: Path) -> tuple[dict[str, Any], str | None]:
    path = directory / "run.json"
    if not path.is_file():
        return {}, "run.json is missing: version, settings and inputs are unknown"
    try:
        run = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return {}, f"run.json could not be read: {exc}"
    return (run if isinstance(run, dict) else {}), None


def _pseudonymised(run: Mapping[str, Any]) -> bool | None:
    """What run.json says, else what the case file says, else unknown."""
    if isinstance(run.get("pseudonymised"), bool):
        return bool(run["pseudonymised"])
    case = run.get("case")
    if not isinstance(case, str) or not Path(case).is_file():
        return None
    try:
        con = duckdb.connect(case, read_only=True, config={"memory_limit": "256MB"})
    except (duckdb.Error, OSError):
        return None
    try:
        row = con.execute(
            "SELECT count(*) FROM case_meta WHERE key = 'pseudonymisation_key'"
        ).fetchone()
    except duckdb.Error:
        return None
    finally:
        con.close()
    return bool(row and row[0])


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
        hashed = path.suffix not in (".duckdb", ".html") and path.name != SUMMARY_FILE
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


def _signal_rows(res: _Result, where: str) -> list[dict[str, Any]]:
    """Signals of signals.parquet that match ``where`` (on alias ``s``), by detector."""
    if not res.has("signals", "detector", "entity", "platform", "id", "score"):
        return []
    rows = res.rows(
        f"""SELECT s.detector, {res.col("signals", "layer", "s")} AS layer, s.entity,
                   count(DISTINCT s.id) AS entities, avg(s.score) AS mean_score,
                   max(s.score) AS max_score,
                   arg_max({res.col("signals", "detail", "s")}, s.score) AS example
            FROM signals s WHERE {where} GROUP BY ALL
            ORDER BY mean_score DESC, entities DESC, s.detector, layer"""
    )
    return [_clean(r) for r in rows]


def collect(
    result_dir: str | Path,
    *,
    hide_text: bool = False,
    limits: Limits | None = None,
    title: str | None = None,
) -> dict[str, Any]:
    """The page's model: everything :func:`render` shows, JSON-ready."""
    directory = Path(result_dir)
    limits = limits or Limits()
    run, run_problem = _read_run(directory)
    res = _Result(directory)
    try:
        b = _Builder(res=res, limits=limits, hide_text=hide_text)
        campaigns = _campaign_rows(res)
        networks = [c for c in campaigns if c["kind"] == "network" and c["flagged"]]
        brigades = [c for c in campaigns if c["kind"] == "brigade" and c["flagged"]]
        network_sections = [_network(b, c, i) for i, c in enumerate(networks[: limits.campaigns])]
        brigade_sections = [_brigade(b, c, i) for i, c in enumerate(brigades[: limits.campaigns])]
        for kind, found in (("networks", networks), ("brigades", brigades)):
            if len(found) > limits.campaigns:
                b.caps.append(
                    f"{kind}: the {limits.campaigns} largest of {len(found)} have a section; "
                    "the summary lists all"
                )
        summary = _summary(b, campaigns, networks, brigades)
        method = _method(res, run, run_problem, directory)
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
    case = run.get("case")
    if isinstance(case, str) and Path(case).name not in ("case.duckdb", ":memory:"):
        return f"Coordination report: {Path(case).stem}"
    return f"Coordination report: {directory.resolve().name}"


def _campaign_rows(res: _Result) -> list[dict[str, Any]]:
    if not res.has("campaigns", "campaign_id"):
        return []
    cols = ", ".join(
        f"{res.col('campaigns', c)} AS {c}"
        for c in (
            "kind",
            "score",
            "flagged",
            "signals",
            "accounts",
            "targets",
            "reports",
            "first_ts",
            "last_ts",
            "summary",
        )
    )
    rows = res.rows(
        f"""SELECT campaign_id, {cols} FROM campaigns
            ORDER BY coalesce(accounts, 0) DESC, coalesce(reports, 0) DESC, campaign_id"""
    )
    for r in rows:
        r["kind"] = r["kind"] or "network"
        r["flagged"] = bool(r["flagged"]) if r["flagged"] is not None else True
        try:
            parsed = json.loads(r["summary"]) if r["summary"] else {}
        except json.JSONDecodeError:
            parsed = {}
        r["summary"] = parsed if isinstance(parsed, dict) else {}
    return rows


def _assets(res: _Result, campaign_id: str, summary: Mapping[str, Any]) -> dict[str, Any]:
    """Counts by platform, then kind: the summary's, else from members and accounts."""
    raw = summary.get("assets")
    if isinstance(raw, Mapping):
        given = {
            str(platform): {
                str(kind): int(n) for kind, n in kinds.items() if isinstance(n, int | float)
            }
            for platform, kinds in raw.items()
            if isinstance(kinds, Mapping)
        }
        if any(given.values()):
            return given
    if not res.has("members", "campaign_id", "platform", "account_id"):
        return {}
    kind = "'unknown'"
    join = ""
    if res.has("accounts", "platform", "account_id", "kind"):
        kind, join = (
            "coalesce(a.kind, 'unknown')",
            "LEFT JOIN accounts a USING (platform, account_id)",
        )
    elif res.has("clusters", "platform", "account_id", "kind"):
        kind, join = (
            "coalesce(a.kind, 'unknown')",
            "LEFT JOIN clusters a USING (platform, account_id)",
        )
    out: dict[str, dict[str, int]] = {}
    for r in res.rows(
        f"""SELECT m.platform, {kind} AS kind, count(DISTINCT m.account_id) AS n
            FROM members m {join} WHERE m.campaign_id = ? GROUP BY ALL""",
        [campaign_id],
    ):
        out.setdefault(r["platform"], {})[r["kind"]] = int(r["n"])
    return out


def _summary(
    b: _Builder,
    campaigns: list[dict[str, Any]],
    networks: list[dict[str, Any]],
    brigades: list[dict[str, Any]],
) -> dict[str, Any]:
    res, limits, caps = b.res, b.limits, b.caps
    network_rows = []
    totals: dict[str, dict[str, int]] = {}
    for c in networks:
        assets = _assets(res, c["campaign_id"], c["summary"])
        per_platform = []
        for platform in sorted(assets):
            kinds = assets[platform]
            row = {
                "platform": platform,
                "pages": kinds.get("page", 0),
                "groups": kinds.get("group", 0),
                "users": kinds.get("user", 0),
                "other": sum(n for k, n in kinds.items() if k not in ("page", "group", "user")),
            }
            row["total"] = row["pages"] + row["groups"] + row["users"] + row["other"]
            per_platform.append(row)
            t = totals.setdefault(platform, {"pages": 0, "groups": 0, "users": 0, "other": 0})
            for k in ("pages", "groups", "users", "other"):
                t[k] += row[k]
        network_rows.append(
            {
                "campaign_id": c["campaign_id"],
                "accounts": c["accounts"],
                "assets": per_platform,
                "phrase": _assets_phrase(assets),
                "active": _span(c["first_ts"], c["last_ts"]),
                "score": _number(c["score"]),
                "signals": [str(s).removeprefix("co_action:") for s in c["signals"] or []],
            }
        )
    brigade_rows = []
    for c in brigades:
        roles: dict[str, int] = {}
        if res.has("members", "campaign_id", "role"):
            roles = {
                r["role"]: int(r["n"])
                for r in res.rows(
                    "SELECT role, count(*) AS n FROM members WHERE campaign_id = ? GROUP BY 1",
                    [c["campaign_id"]],
                )
            }
        targets = c["targets"]
        if targets is None and res.has("targets", "campaign_id"):
            targets = res.value(
                "SELECT count(*) FROM targets WHERE campaign_id = ?", [c["campaign_id"]]
            )
        reports = c["reports"]
        if reports is None and res.has("report_scores", "campaign_id"):
            reports = res.value(
                "SELECT count(*) FROM report_scores WHERE campaign_id = ?", [c["campaign_id"]]
            )
        brigade_rows.append(
            {
                "campaign_id": c["campaign_id"],
                "reporters": roles.get("reporter", 0) + roles.get("automated_reporter", 0),
                "automated": roles.get("automated_reporter", 0),
                "organisers": roles.get("organiser", 0),
                "targets": targets,
                "reports": reports,
                "active": _span(c["first_ts"], c["last_ts"]),
                "score": _number(c["score"]),
                "signals": list(c["signals"] or []),
            }
        )
    protected: dict[str, Any] | None = None
    if res.has("protected", "target_id"):
        cols = ", ".join(
            f"{res.col('protected', c)} AS {c}"
            for c in ("platform", "target_kind", "reports", "flagged", "share", "campaign_id")
        )
        total = int(res.value("SELECT count(*) FROM protected") or 0)
        rows = res.rows(
            f"""SELECT target_id, {cols} FROM protected
                ORDER BY share DESC NULLS LAST, reports DESC NULLS LAST, target_id
                LIMIT {limits.table_rows}"""
        )
        if total > len(rows):
            caps.append(f"targets to protect: the table lists {len(rows):,} of {total:,}")
        protected = {"rows": [_clean(r) for r in rows], "total": total}
    flagged_reports = None
    if res.has("report_scores", "flagged"):
        flagged_reports = res.value("SELECT count(*) FROM report_scores WHERE flagged")
    return {
        "networks": network_rows,
        "brigades": brigade_rows,
        "totals": [
            {"platform": p, **t, "total": sum(t.values())} for p, t in sorted(totals.items())
        ],
        "network_accounts": sum(int(c["accounts"] or 0) for c in networks),
        "unflagged": sum(not c["flagged"] for c in campaigns),
        "campaigns_file": res.has("campaigns", "campaign_id"),
        "reports_scored": res.value("SELECT count(*) FROM report_scores")
        if res.has("report_scores")
        else None,
        "reports_flagged": flagged_reports,
        "protected": protected,
    }


def _network(b: _Builder, c: dict[str, Any], number: int) -> dict[str, Any]:
    res, limits = b.res, b.limits
    cid = c["campaign_id"]
    slug = f"net-{number}"
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
        _clean(r)
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
    signals = _signal_rows(
        res,
        "s.entity = 'account' AND EXISTS (SELECT 1 FROM _m WHERE _m.platform = s.platform "
        "AND _m.account_id = s.id)",
    )
    return {
        "id": slug,
        "campaign_id": cid,
        "members": members,
        "score": _number(c["score"]),
        "active": _span(c["first_ts"], c["last_ts"]),
        "signals": list(c["signals"] or []),
        "facts": {
            "acting_accounts": summary.get("acting_accounts"),
            "venues": summary.get("venues_attributed"),
            "organisers": summary.get("organisers"),
            "ties": summary.get("ties", pairs),
            "actions": summary.get("actions"),
        },
        "phrase": _assets_phrase(_assets(res, cid, summary)),
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
    rows = [{k: _number(e.get(k)) for k in keys} for e in entries if isinstance(e, Mapping)]
    rows = rows[:top]
    counts = [r["accounts"] for r in rows if isinstance(r["accounts"], int | float)]
    most = max(counts, default=0) or 1
    for r in rows:
        n = r["accounts"] if isinstance(r["accounts"], int | float) else 0
        r["share"] = round(100 * n / most, 1)
    return rows


def _copies(b: _Builder, cid: str) -> dict[str, Any]:
    """The texts that several of the campaign's accounts posted: the campaign's copied
    texts of posts.parquet (``role`` ``copied_text``, exact or near-duplicate, counted
    over all its members' posts); for a result without them, the ``text`` and
    ``near_text`` matched actions of events.parquet."""
    res = b.res
    if res.has("posts", "post_id", "text", "role", "campaign_id", "copies"):
        rows = res.rows(
            f"""SELECT post_id, text, copies FROM posts
                WHERE role = 'copied_text' AND campaign_id = ?
                ORDER BY copies DESC NULLS LAST, post_id LIMIT {b.limits.top}""",
            [cid],
        )
        if rows:
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
                "note": "texts hidden (--hide-text)" if b.hide_text else None,
            }
    needed = ("layer", "object_id", "platform_1", "account_1", "source_1", "source_2")
    if not res.has("events", *needed):
        return {"rows": [], "note": "this result has no matched texts (events.parquet)"}
    has_posts = res.has("posts", "platform", "post_id", "text")
    text = "NULL"
    if has_posts:
        text = """(SELECT p.text FROM sides s JOIN posts p
                     ON p.platform = s.platform AND p.post_id = s.post_id
                   WHERE s.object_id = t.object_id AND p.text IS NOT NULL
                   ORDER BY p.post_id LIMIT 1)"""
    rows = res.rows(
        f"""WITH ev AS (
                SELECT v.* FROM events v
                SEMI JOIN _p p ON p.platform_1 = v.platform_1 AND p.account_1 = v.account_1
                 AND p.platform_2 = v.platform_2 AND p.account_2 = v.account_2
                WHERE v.layer IN ('text', 'near_text')),
            sides AS (
                SELECT object_id, platform_1 AS platform, account_1 AS account_id,
                       source_1 AS post_id FROM ev
                UNION SELECT object_id, platform_2, account_2, source_2 FROM ev),
            t AS (
                SELECT object_id, count(DISTINCT (platform, account_id)) AS accounts,
                       count(DISTINCT post_id) AS posts, min(post_id) AS example_post
                FROM sides GROUP BY object_id
                ORDER BY accounts DESC, posts DESC, object_id LIMIT {b.limits.top})
            SELECT t.*, {text} AS text FROM t ORDER BY accounts DESC, posts DESC, object_id"""
    )
    note = None
    if not has_posts:
        note = "the texts themselves are not in this result (posts.parquet); hashes shown"
    elif b.hide_text:
        note = "texts hidden (--hide-text)"
    out = []
    for r in rows:
        out.append(
            {
                "object": r["object_id"],
                "accounts": r["accounts"],
                "posts": r["posts"],
                "example_post": r["example_post"],
                "text": b.text(r["text"]),
            }
        )
    return {"rows": out, "note": note}


def _account_table(b: _Builder, what: str) -> dict[str, Any]:
    res, limits = b.res, b.limits
    degree = "NULL"
    strength = "NULL"
    kind = "NULL"
    join = ""
    if res.has("clusters", "platform", "account_id"):
        join = "LEFT JOIN clusters c USING (platform, account_id)"
        degree = res.col("clusters", "degree", "c")
        strength = res.col("clusters", "strength", "c")
        kind = res.col("clusters", "kind", "c")
    total = int(res.value("SELECT count(*) FROM _m") or 0)
    rows = res.rows(
        f"""SELECT m.platform, m.account_id, m.role, m.score, m.signals,
                   {kind} AS kind, {degree} AS degree, {strength} AS strength
            FROM _m m {join}
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
                "created": _when(known.get("created_at"), day=True),
                "followers": known.get("followers"),
                "degree": r["degree"],
                "score": _number(r["score"]),
                "signals": ", ".join(
                    str(s).removeprefix("co_action:") for s in (r["signals"] or [])
                ),
            }
        )
    return {"rows": out, "total": total, "names": bool(b.names)}


def _brigade(b: _Builder, c: dict[str, Any], number: int) -> dict[str, Any]:
    res = b.res
    cid = c["campaign_id"]
    slug = f"brig-{number}"
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
    if res.has("targets", "campaign_id", "target_id"):
        where.append(
            f"(s.entity = 'target' AND s.id IN (SELECT target_id FROM targets "
            f"WHERE campaign_id = {sql_literal(cid)}))"
        )
        if res.has("signals", "related_id"):
            where.append(
                f"(s.entity = 'post' AND s.related_id IN (SELECT target_id FROM targets "
                f"WHERE campaign_id = {sql_literal(cid)}))"
            )
    if res.has("report_scores", "campaign_id", "report_id"):
        where.append(
            f"(s.entity = 'report' AND s.id IN (SELECT report_id FROM report_scores "
            f"WHERE campaign_id = {sql_literal(cid)}))"
        )
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
                    "strength": _number(part.get("strength")),
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
        "score": _number(c["score"]),
        "active": _span(c["first_ts"], c["last_ts"]),
        "signals": list(c["signals"] or []),
        "targets_count": c["targets"],
        "reports_count": c["reports"],
        "graph": graph,
        "timeline": timeline,
        "targets": targets,
        "automation": automation,
        "scores": scores,
        "fired": _signal_rows(res, " OR ".join(where)),
        "accounts": _account_table(b, f"{cid} reporters"),
    }


def _targets(b: _Builder, slug: str, cid: str) -> dict[str, Any]:
    res, limits = b.res, b.limits
    if not res.has("targets", "campaign_id", "target_id"):
        return {"rows": [], "charts": [], "note": "this result has no targets.parquet"}
    rows = res.rows(
        f"""SELECT target_id, {res.col("targets", "platform", default="NULL")} AS platform,
                   {res.col("targets", "target_kind")} AS target_kind,
                   {res.col("targets", "score")} AS score,
                   {res.col("targets", "reports")} AS reports,
                   {res.col("targets", "first_ts")} AS first_ts,
                   {res.col("targets", "last_ts")} AS last_ts
            FROM targets WHERE campaign_id = ?
            ORDER BY reports DESC NULLS LAST, score DESC NULLS LAST, target_id""",
        [cid],
    )
    if len(rows) > limits.table_rows:
        b.caps.append(f"{cid} targets: the table lists {limits.table_rows:,} of {len(rows):,}")
    held: set[tuple[Any, str]] = set()
    if res.has("protected", "target_id"):
        platform = res.col("protected", "platform")
        held = {
            (r["platform"], r["target_id"])
            for r in res.rows(f"SELECT {platform} AS platform, target_id FROM protected")
        }
    for t in rows:
        t["held"] = (t["platform"], t["target_id"]) in held or (None, t["target_id"]) in held
    times = res.has("report_scores", "target_id", "ts")
    markers = _markers(b, cid)
    charts = []
    for i, t in enumerate(rows[: limits.target_charts]):
        key = f"{slug}-target-{i}"
        marks = markers.get(t["target_id"], [])
        chart = _target_chart(b, key, cid, t, marks) if times else None
        charts.append(
            {
                "key": chart,
                "target_id": t["target_id"],
                "platform": t["platform"],
                "kind": t["target_kind"],
                "reports": t["reports"],
                "active": _span(t["first_ts"], t["last_ts"]),
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
    note = None
    if not times:
        note = "this result has no report times (report_scores.parquet lacks target_id or ts)"
    return {
        "rows": [_clean(r) for r in rows[: limits.table_rows]],
        "total": len(rows),
        "charts": charts,
        "note": note,
    }


def _markers(b: _Builder, cid: str) -> dict[str, list[dict[str, Any]]]:
    """Mobilising and boasting posts tied to each target of the brigade (signals with
    ``related_id`` = target)."""
    res = b.res
    if not res.has("signals", "detector", "entity", "id", "related_id") or not res.has(
        "targets", "campaign_id", "target_id"
    ):
        return {}
    has_posts = res.has("posts", "platform", "post_id")
    post_cols = "NULL AS account_id, NULL AS ts_post, NULL AS text"
    join = ""
    if has_posts:
        post_cols = (
            f"{res.col('posts', 'account_id', 'p')} AS account_id, "
            f"{res.col('posts', 'ts', 'p')} AS ts_post, {res.col('posts', 'text', 'p')} AS text"
        )
        join = "LEFT JOIN posts p ON p.platform = s.platform AND p.post_id = s.id"
    rows = res.rows(
        f"""SELECT s.related_id AS target_id, s.id AS post_id, s.platform, s.detector,
                   {res.col("signals", "layer", "s")} AS layer, s.score,
                   {res.col("signals", "first_ts", "s")} AS ts_signal,
                   {res.col("signals", "detail", "s")} AS detail, {post_cols}
            FROM signals s {join}
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
                "t": _epoch(ts),
                "when": _when(ts),
                "score": _number(r["score"]),
                "detail": r["detail"],
                "text": b.text(r["text"]),
            }
        )
    return out


def _target_chart(
    b: _Builder, key: str, cid: str, target: Mapping[str, Any], marks: list[dict[str, Any]]
) -> str | None:
    res = b.res
    platform = res.col("report_scores", "platform", "r", "NULL")
    match = f"AND {platform} = ?" if target.get("platform") and platform != "NULL" else ""
    params: list[Any] = [cid, target["target_id"]]
    if match:
        params.append(target["platform"])
    rows = res.rows(
        f"""SELECT epoch(r.ts) AS t,
                   {res.col("report_scores", "campaign_id", "r")} = ? AS ours
            FROM report_scores r WHERE r.target_id = ? {match} AND r.ts IS NOT NULL""",
        params,
    )
    times = [float(r["t"]) for r in rows] + [m["t"] for m in marks if m["t"] is not None]
    if not times:
        return None
    first, last = min(times), max(times)
    width = _bucket(max(last - first, 1.0), 200)
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
        "y": f"reports per {_bucket_name(width)}",
    }
    return key


def _automation(b: _Builder, cid: str) -> dict[str, Any]:
    res, limits = b.res, b.limits
    automated = int(res.value("SELECT count(*) FROM _m WHERE role = 'automated_reporter'") or 0)
    if not res.has("signals", "detector", "entity", "platform", "id", "score"):
        return {"rows": [], "automated": automated, "note": "this result has no signals.parquet"}
    rows = res.rows(
        f"""SELECT s.platform, s.id AS account_id, m.role, s.detector,
                   {res.col("signals", "layer", "s")} AS layer, s.score,
                   {res.col("signals", "value", "s")} AS value,
                   {res.col("signals", "first_ts", "s")} AS first_ts,
                   {res.col("signals", "last_ts", "s")} AS last_ts,
                   {res.col("signals", "detail", "s")} AS detail
            FROM signals s JOIN _m m ON m.platform = s.platform AND m.account_id = s.id
            WHERE s.entity = 'account'
              AND (s.detector ILIKE '%automation%' OR {res.col("signals", "layer", "s", "''")}
                   ILIKE '%automat%')
            ORDER BY s.score DESC, s.platform, s.id, s.detector
            LIMIT {limits.table_rows + 1}"""
    )
    if len(rows) > limits.table_rows:
        rows = rows[: limits.table_rows]
        b.caps.append(f"{cid} automation evidence: the first {limits.table_rows:,} rows")
    out = []
    for r in rows:
        row = _clean(r)
        row["label"] = b.label(r["platform"], r["account_id"])
        out.append(row)
    return {"rows": out, "automated": automated, "note": None}


def _report_scores(b: _Builder, slug: str, cid: str) -> dict[str, Any]:
    res, limits = b.res, b.limits
    if not res.has("report_scores", "report_id", "score"):
        return {
            "rows": [],
            "key": None,
            "recommendations": [],
            "total": 0,
            "note": "this result has no report_scores.parquet",
        }
    has_campaign = res.has("report_scores", "campaign_id")
    ours = "campaign_id = ?" if has_campaign else "false"
    ours_params: list[Any] = [cid] if has_campaign else []
    scope, scope_params = ours, list(ours_params)
    if res.has("report_scores", "target_id") and res.has("targets", "campaign_id", "target_id"):
        scope = f"({ours} OR target_id IN (SELECT target_id FROM targets WHERE campaign_id = ?))"
        scope_params.append(cid)
    hist = res.rows(
        f"""SELECT least(floor(score * 20), 19) AS bin, coalesce({ours}, false) AS ours,
                   count(*) AS n
            FROM report_scores WHERE {scope} AND score IS NOT NULL GROUP BY ALL""",
        [*ours_params, *scope_params],
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
    rec = res.col("report_scores", "recommendation", default="NULL")
    recommendations = [
        _clean(r)
        for r in res.rows(
            f"""SELECT coalesce({rec}, 'none') AS recommendation, count(*) AS reports
                FROM report_scores WHERE {ours} GROUP BY 1 ORDER BY 2 DESC, 1""",
            ours_params,
        )
    ]
    cols = ", ".join(
        f"{res.col('report_scores', c)} AS {c}"
        for c in ("reporter_id", "target_id", "ts", "flagged", "recommendation", "signals")
    )
    rows = res.rows(
        f"""SELECT report_id, score, {cols} FROM report_scores WHERE {ours}
            ORDER BY score DESC, ts NULLS LAST, report_id LIMIT {limits.table_rows}""",
        ours_params,
    )
    total = int(res.value(f"SELECT count(*) FROM report_scores WHERE {ours}", ours_params) or 0)
    if total > limits.table_rows:
        b.caps.append(
            f"{cid} reports: the table lists the {limits.table_rows:,} of {total:,} "
            "with the highest scores"
        )
    return {
        "rows": [_clean(r) for r in rows[: limits.table_rows]],
        "total": total,
        "key": key,
        "recommendations": recommendations,
        "note": None,
    }


def _method(
    res: _Result, run: Mapping[str, Any], run_problem: str | None, directory: Path
) -> dict[str, Any]:
    settings = run.get("settings") or {}
    significance = settings.get("significance") if isinstance(settings, Mapping) else None
    notes = run.get("notes") or {}
    sig_notes = notes.get("significance") if isinstance(notes, Mapping) else None
    null_name = (significance or {}).get("null") if isinstance(significance, Mapping) else None
    seconds = run.get("seconds")
    timings: list[dict[str, Any]] = []
    if isinstance(seconds, Mapping):
        total = sum(float(v) for v in seconds.values()) or 1.0
        timings = [
            {"stage": k, "seconds": float(v), "share": round(float(v) / total, 3)}
            for k, v in seconds.items()
        ]
    elif isinstance(seconds, int | float):
        timings = [{"stage": "total", "seconds": float(seconds), "share": 1.0}]
    by_weight = []
    if isinstance(sig_notes, Mapping) and isinstance(sig_notes.get("by_weight"), list):
        keys = ("weight", "observed_at_least", "expected_at_least", "q_value")
        by_weight = [
            {k: _number(row.get(k)) for k in keys}
            for row in sig_notes["by_weight"]
            if isinstance(row, Mapping)
        ]
    co_notes = notes.get("co_action") if isinstance(notes, Mapping) else None
    viral = len((co_notes or {}).get("viral_objects") or []) if isinstance(co_notes, Mapping) else 0
    missing = [
        f"{name}.parquet" for name in TABLES if not (directory / f"{name}.parquet").is_file()
    ]
    problems = list(res.problems)
    if run_problem:
        problems.append(run_problem)
    return {
        "version": run.get("concerted"),
        "command": run.get("command"),
        "started": _when(run.get("started")),
        "case": run.get("case"),
        "pseudonymised": _pseudonymised(run),
        "settings": _flatten(settings),
        "inputs": [
            {
                "path": i.get("path"),
                "format": i.get("format"),
                "sha256": i.get("sha256"),
                "rows_read": i.get("rows_read"),
                "rows_set_aside": i.get("rows_set_aside"),
            }
            for i in run.get("inputs") or []
            if isinstance(i, Mapping)
        ],
        "timings": timings,
        "total_seconds": round(sum(t["seconds"] for t in timings), 1),
        "counts": dict(run.get("counts") or {}),
        "null_model": null_name,
        "null_text": _NULL_MODELS.get(str(null_name)),
        "significance": {
            k: v for k, v in (significance or {}).items() if not isinstance(v, list | dict)
        }
        if isinstance(significance, Mapping)
        else {},
        "significance_notes": {
            k: v for k, v in (sig_notes or {}).items() if not isinstance(v, list | dict)
        }
        if isinstance(sig_notes, Mapping)
        else {},
        "by_weight": by_weight[:20],
        "viral_objects": viral,
        "missing": missing,
        "problems": problems,
        "files": _files(directory),
    }


# --------------------------------------------------------------------------- rendering


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("concerted", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["count"] = lambda v: "–" if v is None else f"{int(v):,}"
    env.filters["num"] = lambda v, d=2: "–" if v is None else f"{float(v):,.{d}f}"
    env.filters["score"] = _score
    env.filters["plural"] = _plural
    env.filters["fmt"] = _fmt
    env.filters["pct"] = lambda v: "–" if v is None else f"{100 * float(v):.0f}%"
    env.filters["size"] = _size
    return env


def _plural(n: Any, one: str, many: str | None = None) -> str:
    """A count and its noun.

    >>> _plural(1, "member"), _plural(1200, "member"), _plural(None, "report")
    ('1 member', '1,200 members', 'an unknown number of reports')
    """
    if n is None:
        return f"an unknown number of {many or one + 's'}"
    return f"{int(n):,} {one if int(n) == 1 else many or one + 's'}"


def _score(value: Any) -> str:
    """A score as the tables show it: whole numbers for large sums, else two decimals.

    >>> _score(501.0), _score(0.8321), _score(None)
    ('501', '0.83', '–')
    """
    if value is None:
        return "–"
    v = float(value)
    return f"{v:,.0f}" if abs(v) >= 10 else f"{v:.2f}"


def _fmt(value: Any) -> str:
    """Any setting or count for people.

    >>> _fmt(100660), _fmt(0.0042736), _fmt(True), _fmt("relabel")
    ('100,660', '0.00427', 'yes', 'relabel')
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return "none" if value is None else str(value)


def _size(n: int) -> str:
    """Bytes for people.

    >>> _size(1536)
    '1.5 KB'
    """
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover


def _asset(name: str) -> str:
    text = resources.files("concerted").joinpath("assets", name).read_text(encoding="utf-8")
    # An inline script ends at the first "</script" whatever the JavaScript means.
    return text.replace("</script", "<\\/script").replace("</style", "<\\/style")


def render(model: Mapping[str, Any]) -> str:
    """The HTML page of a model from :func:`collect`."""
    env = _environment()
    template = env.get_template("report.html.j2")
    styles = "\n".join(_asset(n) for n in _STYLES)
    scripts = [_asset(n) for n in _SCRIPTS]
    return template.render(
        m=model,
        vendor_styles=styles,
        vendor_scripts=scripts,
        own_style=_own("report.css"),
        own_script=_own("report.js"),
    )


def _own(name: str) -> str:
    text = resources.files("concerted").joinpath("templates", name).read_text(encoding="utf-8")
    return text.replace("</script", "<\\/script").replace("</style", "<\\/style")


def _summary_json(model: Mapping[str, Any]) -> dict[str, Any]:
    """The findings as JSON (no message text): what the summary section shows."""
    method = model["method"]
    return {
        "concerted": model["concerted"],
        "generated": model["generated"],
        "pseudonymised": method["pseudonymised"],
        "networks": model["summary"]["networks"],
        "brigades": model["summary"]["brigades"],
        "totals": model["summary"]["totals"],
        "protected_targets": model["summary"]["protected"],
        "unflagged_campaigns": model["summary"]["unflagged"],
        "inputs": method["inputs"],
        "settings": dict(method["settings"]),
        "capped": model["caps"],
    }


def write(
    result_dir: str | Path,
    *,
    hide_text: bool = False,
    out: str | Path | None = None,
    limits: Limits | None = None,
    title: str | None = None,
) -> Path:
    """Write ``report.html`` (to ``out``, default ``result_dir/report.html``) and
    ``summary.json`` beside it, from the result directory alone; returns the page's
    path. ``hide_text`` leaves every message text out of the page; ``title`` replaces
    the one named after the case."""
    directory = Path(result_dir)
    if not (directory / "run.json").is_file() and not (directory / "campaigns.parquet").is_file():
        raise ConfigError(
            f"{directory} holds no analysis result (no run.json, no campaigns.parquet); "
            "run concerted analyze CASE --out DIR first"
        )
    model = collect(directory, hide_text=hide_text, limits=limits, title=title)
    target = Path(out) if out is not None else directory / REPORT_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    html = render(model)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(html, encoding="utf-8")
    partial.replace(target)
    (target.parent / SUMMARY_FILE).write_text(
        json.dumps(_summary_json(model), indent=2, default=str) + "\n"
    )
    return target


# --------------------------------------------------------------------------- demo


@dataclass(frozen=True)
class Demo:
    """Where ``concerted demo`` left its files, and how the analysis scored."""

    data: Path
    result: Path
    report: Path
    run: dict[str, Any]
    evaluation: dict[str, Any]


def demo(
    out: str | Path = "concerted-demo",
    *,
    seed: int = 0,
    scale: float = 1.0,
    scenario: str = "pakistan-2020",
    progress: Callable[[str], None] | None = None,
) -> Demo:
    """Simulate ``scenario``, ingest it, analyse it, write the report (titled after the
    scenario) and score the result against the simulation's truth: ``out/data`` holds
    the simulated platform, ``out/result`` the analysis and ``report.html``. A rerun
    replaces both."""
    from concerted import analysis, evaluate, simulate
    from concerted.ingest import IngestOptions, open_case

    say = progress or (lambda _: None)
    out = Path(out)
    data, result = out / "data", out / "result"
    simulate.simulate(
        simulate.scenario(scenario, scale=scale), seed=seed, out=data, overwrite=True, progress=say
    )
    case = result / "case.duckdb"
    # The demo's own case from a former run: a new seed must not add to it.
    for stale in (case, case.with_name(case.name + ".wal"), result / REPORT_FILE):
        stale.unlink(missing_ok=True)
    shutil.rmtree(case.with_name(case.name + ".tmp"), ignore_errors=True)
    store, _ = open_case([data], case, IngestOptions(format="generic"), progress=say)
    with store:
        run = analysis.analyze(store, result, overwrite=True, progress=say)
    say("report")
    report = write(result, title=f"Coordination report: simulated {scenario}, seed {seed}")
    say("evaluate")
    evaluation = evaluate.evaluate(result, data)
    return Demo(data=data, result=result, report=report, run=run, evaluation=evaluation)
