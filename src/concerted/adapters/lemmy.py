"""Lemmy reports: ``PostReport`` and ``CommentReport``, bare or in the views of
``GET /api/v4/report/list`` (``{"post_report": {...}, ...}``).

====================  ==============================================================
contract column       from
====================  ==============================================================
``report_id``         ``post:ID`` or ``comment:ID`` (the two kinds number apart)
``reporter_id``       ``creator_id``
``target_id``         ``post:POST_ID`` or ``comment:COMMENT_ID`` (``target_kind``
                      post)
``reason``            ``instance_rules`` when ``violates_instance_rules``
``ts``                ``published_at`` (``published`` before Lemmy 1.0)
``text``              ``reason``
``platform``          ``lemmy``
====================  ==============================================================

``resolved`` says a report was closed, not whether it was upheld: it is kept in
``extra``, and ``outcome`` stays empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from concerted.adapters.base import AdapterOptions, RawTable, Scan
from concerted.adapters.moderation import pick, report_table
from concerted.adapters.scans import scan_by_extension
from concerted.schema import sql_literal

__all__ = ["Lemmy"]


class Lemmy:
    """Lemmy post and comment reports, bare or as report views, JSON or JSONL."""

    name: ClassVar[str] = "lemmy"
    summary: ClassVar[str] = (
        "Lemmy PostReport / CommentReport records or report-list views, JSON or JSONL; "
        "fills reports"
    )

    def scan(self, path: Path, options: AdapterOptions) -> Scan:
        return scan_by_extension(path, options)

    def tables(
        self, columns: Mapping[str, str], path: Path, options: AdapterOptions
    ) -> list[RawTable]:
        def field(name: str) -> str:
            return pick(columns, f"post_report.{name}", f"comment_report.{name}", name)

        post = pick(columns, "post_report.post_id", "post_id")
        comment = pick(columns, "comment_report.comment_id", "comment_id")
        kind = f"CASE WHEN {comment} IS NOT NULL THEN 'comment' ELSE 'post' END"
        rules = f"lower(CAST({field('violates_instance_rules')} AS VARCHAR)) = 'true'"
        exprs = {
            "report_id": f"{kind} || ':' || {field('id')}",
            "reporter_id": field("creator_id"),
            "target_id": f"{kind} || ':' || coalesce({comment}, {post})",
            "target_kind": "'post'",
            "reason": f"CASE WHEN {rules} THEN 'instance_rules' END",
            "ts": pick(
                columns,
                "post_report.published_at",
                "comment_report.published_at",
                "post_report.published",
                "comment_report.published",
                "published_at",
                "published",
            ),
            "text": field("reason"),
            "platform": sql_literal(options.platform or "lemmy"),
        }
        extra = {"resolved": field("resolved")}
        return [report_table(exprs, extra)]
