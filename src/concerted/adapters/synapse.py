"""Matrix reports: Synapse's ``GET /_synapse/admin/v1/event_reports`` items.

====================  ==============================================================
contract column       from
====================  ==============================================================
``report_id``         ``id``
``reporter_id``       ``user_id``
``target_id``         ``sender`` (the reported event's sender: ``target_kind``
                      account), else ``event_id`` (post)
``ts``                ``received_ts`` (milliseconds since the epoch)
``text``              ``reason`` (free text)
``platform``          ``matrix``
====================  ==============================================================

``room_id``, ``event_id`` and ``score`` (-100 to 0) are kept in ``extra``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from concerted.adapters.base import AdapterOptions, RawTable, Scan
from concerted.adapters.moderation import pick, report_table
from concerted.adapters.scans import scan_by_extension
from concerted.schema import sql_literal

__all__ = ["Synapse"]


class Synapse:
    """Synapse event_reports items, JSON or JSONL."""

    name: ClassVar[str] = "synapse"
    summary: ClassVar[str] = (
        "Matrix Synapse event_reports items (id, received_ts, room_id, event_id, user_id, "
        "reason, score, sender), JSON or JSONL; fills reports"
    )

    def scan(self, path: Path, options: AdapterOptions) -> Scan:
        return scan_by_extension(path, options)

    def tables(
        self, columns: Mapping[str, str], path: Path, options: AdapterOptions
    ) -> list[RawTable]:
        sender = pick(columns, "sender")
        received = pick(columns, "received_ts")
        # Milliseconds as epoch seconds, which validate reads; anything else as it is,
        # so that validate names it.
        ms = f"TRY_CAST({received} AS DOUBLE)"
        exprs = {
            "report_id": pick(columns, "id"),
            "reporter_id": pick(columns, "user_id"),
            "target_id": f"coalesce({sender}, {pick(columns, 'event_id')})",
            "target_kind": f"CASE WHEN {sender} IS NULL THEN 'post' ELSE 'account' END",
            "ts": f"CASE WHEN {ms} IS NULL THEN CAST({received} AS VARCHAR) "
            f"ELSE CAST({ms} / 1000 AS VARCHAR) END",
            "text": pick(columns, "reason"),
            "platform": sql_literal(options.platform or "matrix"),
        }
        extra = {
            "room_id": pick(columns, "room_id"),
            "event_id": pick(columns, "event_id"),
            "score": pick(columns, "score"),
        }
        return [report_table(exprs, extra)]
