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

A batch body is decoded straight into :class:`Wire` structs (one msgspec call for a
JSON array, one a line for NDJSON), which :func:`check_wire` types without the
intermediate row of text values.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

__all__ = ["Wire", "as_text", "check", "check_wire"]

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


@functools.lru_cache(maxsize=1 << 16)
def _time(value: str) -> str | None:
    """The stored form (UTC, ``Z``) of a time of the common shape, or None. Cached:
    reports come many to a second, so the same time text repeats within a batch."""
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
    """Text that every reading agrees on: valid UTF-8, no NUL. (Called on the fields
    joined: a lone surrogate stays one in any concatenation, so one call answers for
    all of them.)"""
    if "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


_KINDS = frozenset(_CHOICES["target_kind"])
_OUTCOMES = frozenset(_CHOICES["outcome"])


class Wire(msgspec.Struct, forbid_unknown_fields=True):
    """A report as a batch body may send it, decoded by msgspec in one call for a whole
    body: every field a report has (in the contract's order), each text, a number or
    null (``extra`` an object). A report of any other shape (an unknown field, a list,
    ``true``) fails this decoding and is read the general way, which names its error;
    one that passes is exactly what :func:`concerted.service.bodies.prepare` takes
    without error (see :func:`as_text`)."""

    report_id: str | int | float | None = None
    reporter_id: str | int | float | None = None
    target_id: str | int | float | None = None
    target_kind: str | int | float | None = None
    reason: str | int | float | None = None
    ts: str | int | float | None = None
    channel: str | int | float | None = None
    client: str | int | float | None = None
    text: str | int | float | None = None
    outcome: str | int | float | None = None
    platform: str | int | float | None = None
    extra: dict[str, Any] | None = None
    reporter_created_at: str | int | float | None = None


def as_text(value: str | int | float | None) -> str | None:
    """A field's value as :func:`~concerted.service.bodies.prepare` writes it: numbers
    are ids, or epoch seconds for times.

    >>> as_text(12), as_text(1.5), as_text("a"), as_text(None)
    ('12', '1.5', 'a', None)
    """
    if value is None or isinstance(value, str):
        return value
    return repr(value) if isinstance(value, float) else str(value)


def check(row: Mapping[str, str | None]) -> dict[str, Any] | None:
    """The typed report (as :func:`concerted.service.bodies._validate` gives it, its
    fields in the same order) when ``row`` (a report from
    :func:`~concerted.service.bodies.prepare`) is of the common shape; None when it
    must go through :func:`concerted.schema.validate`.

    >>> check({"report_id": "1", "platform": "Lemmy", "reporter_id": "a",
    ...        "target_id": "p", "ts": "0"})["platform"]
    'lemmy'
    >>> check({"report_id": " 1", "platform": "lemmy", "reporter_id": "a",
    ...        "target_id": "p", "ts": "0"}) is None
    True
    """
    get = row.get
    if get("extra") is not None:
        return None
    return _check(
        get("report_id"),
        get("reporter_id"),
        get("target_id"),
        get("platform"),
        get("ts"),
        get("target_kind"),
        get("outcome"),
        get("reason"),
        get("channel"),
        get("client"),
        get("text"),
        get("reporter_created_at"),
    )


def check_wire(report: Wire) -> dict[str, Any] | None:
    """:func:`check` of the row :func:`~concerted.service.bodies.prepare` makes of
    ``report``, without making it.

    >>> check_wire(Wire(report_id=1, platform="x", reporter_id="a", target_id="p",
    ...                 ts=1767268800))["ts"]
    '2026-01-01T12:00:00Z'
    """
    if report.extra is not None:
        return None
    # Most fields arrive as text or null: only the others go through as_text.
    t = as_text
    v_report_id = report.report_id
    if v_report_id is not None and v_report_id.__class__ is not str:
        v_report_id = t(v_report_id)
    v_reporter_id = report.reporter_id
    if v_reporter_id is not None and v_reporter_id.__class__ is not str:
        v_reporter_id = t(v_reporter_id)
    v_target_id = report.target_id
    if v_target_id is not None and v_target_id.__class__ is not str:
        v_target_id = t(v_target_id)
    v_platform = report.platform
    if v_platform is not None and v_platform.__class__ is not str:
        v_platform = t(v_platform)
    v_ts = report.ts
    if v_ts is not None and v_ts.__class__ is not str:
        v_ts = t(v_ts)
    v_target_kind = report.target_kind
    if v_target_kind is not None and v_target_kind.__class__ is not str:
        v_target_kind = t(v_target_kind)
    v_outcome = report.outcome
    if v_outcome is not None and v_outcome.__class__ is not str:
        v_outcome = t(v_outcome)
    v_reason = report.reason
    if v_reason is not None and v_reason.__class__ is not str:
        v_reason = t(v_reason)
    v_channel = report.channel
    if v_channel is not None and v_channel.__class__ is not str:
        v_channel = t(v_channel)
    v_client = report.client
    if v_client is not None and v_client.__class__ is not str:
        v_client = t(v_client)
    v_text = report.text
    if v_text is not None and v_text.__class__ is not str:
        v_text = t(v_text)
    v_reporter_created_at = report.reporter_created_at
    if v_reporter_created_at is not None and v_reporter_created_at.__class__ is not str:
        v_reporter_created_at = t(v_reporter_created_at)
    return _check(
        v_report_id,
        v_reporter_id,
        v_target_id,
        v_platform,
        v_ts,
        v_target_kind,
        v_outcome,
        v_reason,
        v_channel,
        v_client,
        v_text,
        v_reporter_created_at,
    )


def _check(
    report_id: str | None,
    reporter: str | None,
    target: str | None,
    platform: str | None,
    ts: str | None,
    kind: str | None,
    outcome: str | None,
    reason: str | None,
    channel: str | None,
    client: str | None,
    text: str | None,
    created: str | None,
) -> dict[str, Any] | None:
    if not (report_id and reporter and target and platform and ts):
        return None
    if (
        report_id != report_id.strip()
        or reporter != reporter.strip()
        or target != target.strip()
        or platform != platform.strip()
        or not platform.isascii()
    ):
        return None
    if kind is None:
        kind = "account"
    else:
        if not kind.isascii():
            return None
        kind = kind.lower()
        if kind not in _KINDS:
            return None
    if outcome is not None:
        if not outcome.isascii():
            return None
        outcome = outcome.lower()
        if outcome not in _OUTCOMES:
            return None
    if not _plain(
        "".join([report_id, reporter, target, platform, reason or "", channel or "", client or ""])
        + (text or "")
    ):
        return None
    at = _time(ts)
    if at is None:
        return None
    if created is not None:
        created = _time(created)
        if created is None:
            return None
    return {
        "report_id": report_id,
        "reporter_id": reporter,
        "target_id": target,
        "target_kind": kind,
        "reason": reason or None,
        "ts": at,
        "channel": channel or None,
        "client": client or None,
        "text": text or None,
        "outcome": outcome,
        "platform": platform.lower(),
        "extra": None,
        "reporter_created_at": created,
    }
