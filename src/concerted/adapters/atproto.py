"""Bluesky / AT Protocol reports: ``com.atproto.moderation.createReport`` records.

The output of ``createReport`` (lexicons/com/atproto/moderation/createReport.json in
bluesky-social/atproto): ``id``, ``reasonType``, ``reason``, ``subject``,
``reportedBy``, ``createdAt``, and the input's ``modTool`` when the client set it.
The input alone has no id, reporter or time: the service that receives it (a PDS
proxying to a labeler) knows them, and sends them along in the same field names (the
reporter is the ``iss`` of the service-auth token).

====================  ==============================================================
contract column       from
====================  ==============================================================
``report_id``         ``id``
``reporter_id``       ``reportedBy``
``target_id``         ``subject.uri`` (a record: ``target_kind`` post), else
                      ``subject.did`` (an account), else ``subject.messageId``
                      (a chat message: post)
``reason``            ``reasonType``, as the string it is (no fixed list: the
                      legacy ``com.atproto.moderation.defs#reason*`` and the
                      ``tools.ozone.report.defs#reason*`` values alike)
``ts``                ``createdAt``
``client``            ``modTool.name`` (a hint of tooling set by the client)
``text``              ``reason``
``platform``          ``bluesky``
====================  ==============================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from concerted.adapters.base import AdapterOptions, RawTable, Scan
from concerted.adapters.moderation import pick, report_table
from concerted.adapters.scans import scan_by_extension
from concerted.schema import sql_literal

__all__ = ["Atproto"]


class Atproto:
    """createReport records (with id, reportedBy and createdAt), JSON or JSONL."""

    name: ClassVar[str] = "atproto"
    summary: ClassVar[str] = (
        "Bluesky com.atproto.moderation.createReport records (id, reasonType, reason, "
        "subject, reportedBy, createdAt, modTool), JSON or JSONL; fills reports"
    )

    def scan(self, path: Path, options: AdapterOptions) -> Scan:
        return scan_by_extension(path, options)

    def tables(
        self, columns: Mapping[str, str], path: Path, options: AdapterOptions
    ) -> list[RawTable]:
        uri = pick(columns, "subject.uri")
        did = pick(columns, "subject.did")
        message = pick(columns, "subject.messageId")
        exprs = {
            "report_id": pick(columns, "id"),
            "reporter_id": pick(columns, "reportedBy"),
            "target_id": f"coalesce({uri}, {did}, {message})",
            "target_kind": f"CASE WHEN {uri} IS NULL AND {message} IS NULL THEN 'account' "
            "ELSE 'post' END",
            "reason": pick(columns, "reasonType"),
            "ts": pick(columns, "createdAt"),
            "client": pick(columns, "modTool.name"),
            "text": pick(columns, "reason"),
            "platform": sql_literal(options.platform or "bluesky"),
        }
        extra = {
            "subject_type": pick(columns, "subject.$type"),
            "cid": pick(columns, "subject.cid"),
            "convo_id": pick(columns, "subject.convoId"),
        }
        return [report_table(exprs, extra)]
