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
    "Limits",
    "assets_phrase",
    "bucket",
    "bucket_name",
    "clean",
    "epoch",
    "layout",
    "number",
    "span",
    "when",
]

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


def layout(
    n: int, source: np.ndarray[Any, Any], target: np.ndarray[Any, Any], weight: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """Fruchterman-Reingold positions in a 1000-unit box; seeded, so the same graph
    draws the same way.

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
