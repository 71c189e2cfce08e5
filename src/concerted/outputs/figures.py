"""Numbers, times and chart geometry as the page shows them, and how much it shows.

Everything here is pure: values in, values out. The page's limits (:class:`Limits`)
cap big runs; what they leave out is said on the page.

>>> Limits().graph_nodes
300
>>> Limits(table_rows=0)
Traceback (most recent call last):
...
concerted.errors.ConfigError: report limit table_rows must be a whole number of at least 1
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import numpy as np

from concerted.errors import ConfigError

__all__ = [
    "FRAMED_FROM",
    "Limits",
    "assets_phrase",
    "backbone",
    "bucket",
    "bucket_name",
    "clean",
    "epoch",
    "layout",
    "number",
    "span",
    "when",
]

# Network views of at least this many accounts are framed on their central quantiles.
FRAMED_FROM = 50

# Bucket widths a timeline may use, in seconds: the finest that keeps the points few.
_BUCKETS = (60, 300, 900, 3600, 3 * 3600, 6 * 3600, 86400, 7 * 86400, 28 * 86400)

_KIND_NAMES = {"page": ("Page", "Pages"), "group": ("Group", "Groups")}
_KIND_ORDER = {"page": 0, "group": 1, "user": 3}


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
    node_ties: int = 3
    timeline_points: int = 600

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"report limit {f.name} must be a whole number of at least 1")


# --------------------------------------------------------------------------- formatting


def when(value: Any, *, day: bool = False) -> str | None:
    """A timestamp as the page shows it, always UTC.

    >>> when(datetime(2020, 6, 4, 11, 12, 58, tzinfo=UTC))
    '2020-06-04 11:12 UTC'
    >>> when("2020-06-04T11:12:58Z", day=True)
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


def epoch(value: Any) -> float | None:
    """Seconds since 1970 of a timestamp (naive ones are UTC), else None.

    >>> epoch(datetime(1970, 1, 2, tzinfo=UTC)), epoch("2020")
    (86400.0, None)
    """
    if not isinstance(value, datetime):
        return None
    moment: datetime = value if value.tzinfo else value.replace(tzinfo=UTC)
    return moment.timestamp()


def span(first: Any, last: Any) -> str | None:
    """The days from ``first`` to ``last``, one day when they are the same.

    >>> span("2020-06-01T08:00:00Z", "2020-06-04T00:00:00Z")
    '2020-06-01 to 2020-06-04'
    """
    a, b = when(first, day=True), when(last, day=True)
    if a is None and b is None:
        return None
    return a if a == b else f"{a} to {b}"


def number(value: Any, digits: int = 3) -> Any:
    """JSON-ready numbers: floats rounded, NaN as None."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, digits)
    return value


def clean(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row ready for the page and JSON: times as text, numbers rounded."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, datetime):
            out[key] = when(value)
        elif isinstance(value, list | tuple):
            out[key] = [number(v) for v in value]
        else:
            out[key] = number(value)
    return out


def bucket(span_seconds: float, points: int, finest: int = 60) -> int:
    """The finest bucket width that keeps ``span_seconds`` within ``points`` buckets.

    >>> bucket(14 * 86400, 600, finest=3600)
    3600
    >>> bucket(3 * 365 * 86400, 600)  # three years by the week
    604800
    """
    for width in _BUCKETS:
        if width >= finest and span_seconds / width <= points:
            return width
    return _BUCKETS[-1]


def bucket_name(width: int) -> str:
    """A bucket width in words.

    >>> bucket_name(3600), bucket_name(3 * 3600), bucket_name(300)
    ('hour', '3 hours', '5 minutes')
    """
    names = {60: "minute", 3600: "hour", 86400: "day", 7 * 86400: "week"}
    if width in names:
        return names[width]
    if width % 86400 == 0:
        return f"{width // 86400} days"
    if width % 3600 == 0:
        return f"{width // 3600} hours"
    return f"{width // 60} minutes"


def assets_phrase(assets: Mapping[str, Mapping[str, int]]) -> str:
    """Assets counted the way takedown reports count them.

    >>> assets_phrase({"facebook": {"page": 10, "group": 1, "user": 45},
    ...                 "instagram": {"user": 10}})
    '10 Facebook Pages, 1 Group and 45 accounts; 10 Instagram accounts'
    >>> assets_phrase({"telegram": {"channel": 2, "user": 1}})
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


def backbone(
    n: int,
    source: np.ndarray[Any, Any],
    target: np.ndarray[Any, Any],
    weight: np.ndarray[Any, Any],
    per_node: int,
) -> np.ndarray[Any, Any]:
    """Which ties to draw of a dense network: each account's ``per_node`` strongest,
    and the strongest that keep its parts connected (a maximum spanning forest), so
    at most ``(per_node + 1) * n`` of them. Ties of equal weight are taken in the order
    given, so the same ties give the same backbone.

    One tie per node: 2 and 3 are tied more strongly to 1 than to 0, and 0 most
    strongly to 1, so the weak ties 0-2 and 0-3 are left out:

    >>> backbone(4, np.array([0, 0, 0, 1, 1]), np.array([1, 2, 3, 2, 3]),
    ...          np.array([9.0, 1.0, 1.0, 2.0, 2.0]), 1).tolist()
    [True, False, False, True, True]
    >>> backbone(4, np.array([0, 0, 1]), np.array([1, 2, 2]), np.array([5.0, 1.0, 4.0]),
    ...          1).tolist()
    [True, False, True]
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import minimum_spanning_tree

    m = source.size
    keep = np.zeros(m, dtype=bool)
    if m == 0:
        return keep
    ends = np.concatenate([source, target])
    tie = np.concatenate([np.arange(m), np.arange(m)])
    order = np.lexsort((tie, -np.concatenate([weight, weight]), ends))
    ends, tie = ends[order], tie[order]
    first = np.searchsorted(ends, ends, side="left")
    keep[tie[np.arange(2 * m) - first < per_node]] = True
    # The forest of the heaviest ties: a minimum spanning forest of inverted weights
    # (positive, since the sparse graph reads zeros as no tie).
    low, high = np.minimum(source, target), np.maximum(source, target)
    cost = float(weight.max()) + 1.0 - weight
    forest = minimum_spanning_tree(coo_matrix((cost, (low, high)), shape=(n, n)).tocsr())
    where = {(int(a), int(b)): j for j, (a, b) in enumerate(zip(low, high, strict=True))}
    rows, cols = forest.nonzero()
    for a, b in zip(rows, cols, strict=True):
        keep[where[(min(int(a), int(b)), max(int(a), int(b)))]] = True
    return keep


def layout(
    n: int,
    source: np.ndarray[Any, Any],
    target: np.ndarray[Any, Any],
    weight: np.ndarray[Any, Any],
    groups: np.ndarray[Any, Any] | None = None,
) -> np.ndarray[Any, Any]:
    """Fruchterman-Reingold positions in a 1000-unit box; seeded, so the same graph
    draws the same way.

    ``groups`` (a community per node, negative for none), where it names two or more,
    starts each community in a place of its own and pulls its accounts together, so
    communities are drawn apart.
    From :data:`FRAMED_FROM` accounts, the box is framed on the central 96% of them on
    each axis: the few far outliers are drawn at its edge instead of shrinking everyone
    else to a dot.

    >>> layout(3, np.array([0, 1]), np.array([1, 2]), np.array([1.0, 1.0])).shape
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
    member = np.zeros(n, dtype=bool)
    label = np.zeros(n, dtype=int)
    if groups is not None and groups.size == n and np.unique(groups[groups >= 0]).size > 1:
        member = groups >= 0
        _, label = np.unique(np.where(member, groups, -1), return_inverse=True)
        count = int(label.max()) + 1
        # Communities start apart, on a circle in the order of their numbers.
        angle = 2 * math.pi * np.arange(count) / count
        centre = np.stack([np.cos(angle), np.sin(angle)], axis=1) * 0.8
        pos[member] = centre[label[member]] + 0.25 * pos[member]
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
        if member.any():
            size = np.bincount(label[member], minlength=int(label.max()) + 1)
            centre = (
                np.stack(
                    [np.bincount(label[member], pos[member, a], size.size) for a in (0, 1)], axis=1
                )
                / np.maximum(size, 1)[:, None]
            )
            disp[member] -= 0.3 * (pos[member] - centre[label[member]]) / k
        length = np.sqrt((disp**2).sum(axis=1)) + 1e-9
        pos += disp / length[:, None] * np.minimum(length, step)[:, None]
        step *= 0.97
    if n >= FRAMED_FROM:
        low, high = np.quantile(pos, 0.02, axis=0), np.quantile(pos, 0.98, axis=0)
        margin = 0.04 * np.maximum(high - low, 1e-9)
        pos = np.clip(pos, low - margin, high + margin)
    low, high = pos.min(axis=0), pos.max(axis=0)
    scaled: np.ndarray[Any, Any] = (pos - low) / np.maximum(high - low, 1e-9) * 1000.0
    return scaled
