"""Mastodon reports: ``Admin::Report`` entities, or the ``report.created`` /
``report.updated`` webhook bodies that carry one in ``object``.

As ``GET /api/v1/admin/reports`` returns them (a JSON array, or JSON lines of them);
fields from Mastodon's REST entity ``Admin::Report``:

====================  =================================================================
contract column       from
====================  =================================================================
``report_id``         ``id``
``reporter_id``       ``account.id``; for a report forwarded from another server
                      (``forwarded``) the origin server, ``account.domain``, since it
                      arrives under that server's representative account
``target_id``         ``target_account.id`` (``target_kind`` account; the reported
                      ``statuses`` stay in ``extra``)
``reason``            ``category`` (spam, legal, violation, other)
``ts``                ``created_at``
``channel``           ``forwarded`` for forwarded reports
``text``              ``comment``
``platform``          ``mastodon`` (``--platform`` to tell servers apart)
====================  =================================================================

``action_taken`` says a report was closed, not whether it was upheld, so ``outcome``
stays empty. ``concerted serve`` takes the webhook at ``POST /v1/intake/mastodon``,
signed ``X-Hub-Signature: sha256=HMAC(secret, body)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from concerted.adapters.base import AdapterOptions, RawTable, Scan
from concerted.adapters.moderation import pick, report_table
from concerted.adapters.scans import scan_by_extension
from concerted.schema import sql_literal

__all__ = ["Mastodon"]


class Mastodon:
    """Mastodon's Admin::Report entities or report webhooks, as JSON or JSON lines."""

    name: ClassVar[str] = "mastodon"
    summary: ClassVar[str] = (
        "Mastodon Admin::Report entities (GET /api/v1/admin/reports) or report.created "
        "webhook bodies, JSON or JSONL; fills reports"
    )

    def scan(self, path: Path, options: AdapterOptions) -> Scan:
        return scan_by_extension(path, options)

    def tables(
        self, columns: Mapping[str, str], path: Path, options: AdapterOptions
    ) -> list[RawTable]:
        # A webhook body holds the report in `object`.
        p = "object." if "object.id" in columns else ""
        forwarded = f"lower(CAST({pick(columns, p + 'forwarded')} AS VARCHAR)) = 'true'"
        domain = pick(columns, p + "account.domain")
        exprs = {
            "report_id": pick(columns, p + "id"),
            "reporter_id": f"CASE WHEN {forwarded} AND {domain} IS NOT NULL THEN {domain} "
            f"ELSE {pick(columns, p + 'account.id')} END",
            "target_id": pick(columns, p + "target_account.id"),
            "target_kind": "'account'",
            "reason": pick(columns, p + "category"),
            "ts": pick(columns, p + "created_at"),
            "channel": f"CASE WHEN {forwarded} THEN 'forwarded' END",
            "text": pick(columns, p + "comment"),
            "platform": sql_literal(options.platform or "mastodon"),
        }
        statuses = pick(columns, p + "statuses")
        extra = {
            "action_taken": pick(columns, p + "action_taken"),
            "action_taken_at": pick(columns, p + "action_taken_at"),
            "status_ids": f"json_extract_string({statuses}, '$[*].id')"
            if statuses != "NULL"
            else "NULL",
            "event": pick(columns, "event") if p else "NULL",
        }
        return [report_table(exprs, extra)]
