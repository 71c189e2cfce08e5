"""A fast, exact check of the common report, in Python, beside :func:`schema.validate`.

:func:`concerted.schema.validate` types rows in one DuckDB pass; for a group of one
report that pass costs 10–20 ms, which would set the latency of every single report.
:func:`check` types a report here when it is of the common shape, where the answer is
certain: ids and the platform without surrounding white space, ``target_kind`` and
``outcome`` among their choices, no ``extra``, times as ISO 8601 with ``T`` or a space,
seconds, at most six decimals and ``Z`` or a ``±HH:MM`` offset, or as whole epoch
seconds, within 1970–2100. For such a report it gives exactly what ``validate`` gives
(a property test compares the two on random reports); for anything else, errors
included, it returns None and the report goes through ``validate`` as before. It never
refuses a report itself, so every error message still comes from the one place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["check"]

_EPOCH = re.compile(r"-?[0-9]{1,11}")
_ISO = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[T ]([0-9]{2}:[0-9]{2}:[0-9]{2})(\.[0-9]{1,6})?"
    r"(Z|[+-]([0-9]{2}):[0-9]{2})"
)
_LOW = datetime(1970, 1, 1, tzinfo=UTC)
_HIGH = datetime(2100, 1, 1, tzinfo=UTC)
#: Columns typed as identifiers (trimmed), and lower-cased choices.
_IDS = ("report_id", "reporter_id", "target_id", "platform")
_CHOICES = {"target_kind": ("account", "post", "page", "group"), "outcome": ("upheld", "rejected")}
_TEXTS = ("reason", "channel", "client", "text")


def _time(value: str) -> str | None:
    """The stored form (UTC, ``Z``) of a time of the common shape, or None."""
    if _EPOCH.fullmatch(value):
        seconds = int(value)
        if abs(seconds) >= 10**11:
            return None
        at = _LOW + timedelta(seconds=seconds)
    else:
        match = _ISO.fullmatch(value)
        if match is None or (match[5] is not None and int(match[5]) > 14):
            return None
        try:
            at = datetime.fromisoformat(value.replace(" ", "T", 1).replace("Z", "+00:00"))
        except ValueError:
            return None
    if not _LOW <= at < _HIGH:
        return None
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _plain(value: str) -> bool:
    """Text that every reading agrees on: valid UTF-8, no NUL."""
    if "\x00" in value:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def check(row: Mapping[str, str | None]) -> dict[str, Any] | None:
    """The typed report (as :func:`concerted.service.intake._validate` gives it) when
    ``row`` (a report from :func:`~concerted.service.intake.prepare`) is of the common
    shape; None when it must go through :func:`concerted.schema.validate`."""
    if row.get("extra") is not None:
        return None
    out: dict[str, Any] = {}
    for name in _IDS:
        v = row.get(name)
        if not v or v != v.strip() or not _plain(v):
            return None
        if name == "platform":
            if not v.isascii():
                return None
            v = v.lower()
        out[name] = v
    for name, choices in _CHOICES.items():
        v = row.get(name)
        if v is None:
            out[name] = "account" if name == "target_kind" else None
            continue
        if not v.isascii() or v.strip().lower() not in choices or v != v.strip():
            return None
        out[name] = v.lower()
    for name in _TEXTS:
        v = row.get(name)
        if v is not None and not _plain(v):
            return None
        out[name] = v or None
    ts = row.get("ts")
    if ts is None:
        return None
    out["ts"] = _time(ts)
    if out["ts"] is None:
        return None
    created = row.get("reporter_created_at")
    if created is None:
        out["reporter_created_at"] = None
    else:
        out["reporter_created_at"] = _time(created)
        if out["reporter_created_at"] is None:
            return None
    out["extra"] = None
    return out
