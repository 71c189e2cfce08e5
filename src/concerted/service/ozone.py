"""Write-back for Bluesky's Ozone: ``tools.ozone.moderation.emitEvent`` bodies.

For each report on the Ozone platform (``bluesky`` unless ``ozone_platform`` says
otherwise) that was recommended ``review`` or ``discount``, two events on the report's
subject (field names from the lexicons ``tools.ozone.moderation.emitEvent`` and
``tools.ozone.moderation.defs``):

* ``modEventTag``: ``add`` the tag ``concerted:review`` or ``concerted:discount``,
  with a comment naming the score and the signals;
* ``modEventPriorityScore``: ``score`` = the report's score × 100, rounded (0–100).

``subject`` is ``com.atproto.repo.strongRef`` {uri, cid} for a record whose CID the
report carried (``extra.cid``), else ``com.atproto.admin.defs#repoRef`` {did}: the
account reported, or the account holding the record. Reports on anything else (a chat
message) have no Ozone subject and give no event. ``createdBy`` is the guard's own DID
(``ozone_did``), ``modTool`` is ``{"name": "concerted"}``, and ``externalId`` is
``concerted:{platform}:{report_id}:{tag|priority}``: Ozone refuses a second event of
one type with one external id on one subject, so sending an event again is harmless.

The events are read from the log (the results stored with each report), so they are as
durable as the reports: ``GET /v1/ozone/events?after=OFFSET`` pages through them by
log offset, and the :class:`Pusher` (when ``ozone_url`` is set) POSTs them in log
order, keeping its place in ``STATE/ozone.cursor``. It never acts on an account: tags
and priorities only order a human's queue.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from concerted.service.base import Entry, IntakeLog

__all__ = ["Pusher", "events", "page"]

log = logging.getLogger(__name__)

_DID = re.compile(r"did:[a-z]+:[A-Za-z0-9._:%-]+")
_AT_URI = re.compile(r"at://(did:[a-z]+:[A-Za-z0-9._:%-]+)(/.*)?")
#: The most log entries one page reads, whatever it finds.
SCAN = 10_000


def subject(target_id: str, report: Mapping[str, Any]) -> dict[str, Any] | None:
    """The Ozone subject of a report's target, or None when it has none."""
    if _DID.fullmatch(target_id):
        return {"$type": "com.atproto.admin.defs#repoRef", "did": target_id}
    match = _AT_URI.fullmatch(target_id)
    if match is None:
        return None
    extra = report.get("extra") or {}
    cid = extra.get("cid") if isinstance(extra, Mapping) else None
    if match[2] and isinstance(cid, str) and cid:
        return {"$type": "com.atproto.repo.strongRef", "uri": target_id, "cid": cid}
    return {"$type": "com.atproto.admin.defs#repoRef", "did": match[1]}


def events(entry: Entry, created_by: str, platform: str = "bluesky") -> list[dict[str, Any]]:
    """The emitEvent bodies for one logged report (none unless it was flagged)."""
    record = entry.record
    result = record.result
    recommendation = str(result.get("recommendation"))
    if record.platform != platform or recommendation not in ("review", "discount"):
        return []
    about = subject(record.target_id, record.report)
    if about is None:
        return []
    score = float(result.get("score", 0.0))
    signals = ", ".join(str(s) for s in result.get("signals", ())) or "none"
    comment = (
        f"concerted: a report scored {score:.2f} ({recommendation}); signals: {signals}. "
        "Hold report-driven enforcement for a human review."
    )
    key = f"concerted:{record.platform}:{record.report_id}"
    common = {"subject": about, "createdBy": created_by, "modTool": {"name": "concerted"}}
    return [
        {
            "event": {
                "$type": "tools.ozone.moderation.defs#modEventTag",
                "add": [f"concerted:{recommendation}"],
                "remove": [],
                "comment": comment,
            },
            **common,
            "externalId": f"{key}:tag",
        },
        {
            "event": {
                "$type": "tools.ozone.moderation.defs#modEventPriorityScore",
                "score": max(0, min(100, round(score * 100))),
                "comment": comment,
            },
            **common,
            "externalId": f"{key}:priority",
        },
    ]


def page(
    intake_log: IntakeLog, after: int, limit: int, created_by: str, platform: str
) -> tuple[list[dict[str, Any]], int]:
    """Up to ``limit`` events of the reports after offset ``after`` (whole reports: a
    report's two events come together), as ``{"offset", "body"}``; and the offset to
    ask after next (the last report read, at most :data:`SCAN` reports on)."""
    out: list[dict[str, Any]] = []
    last = after
    for scanned, entry in enumerate(intake_log.read(after, chunk=1000), start=1):
        bodies = events(entry, created_by, platform)
        if bodies and out and len(out) + len(bodies) > limit:
            break
        out += [{"offset": entry.offset, "body": b} for b in bodies]
        last = entry.offset
        if scanned >= SCAN or len(out) >= limit:
            break
    return out, last


@dataclass
class Pusher:
    """POSTs the events to Ozone in log order, one at a time, resuming after a restart.

    An event is done when Ozone answers 2xx, or 400 ``DuplicateExternalId`` (sent
    before); anything else is retried with a growing pause (1 s to 60 s). The cursor
    (the offset of the last report whose events are all done) is written atomically
    after each report.
    """

    intake_log: IntakeLog
    url: str
    created_by: str
    cursor_file: Path
    token: str | None = None
    platform: str = "bluesky"
    idle: float = 1.0
    sent: int = 0

    def cursor(self) -> int:
        try:
            return int(self.cursor_file.read_text().strip() or 0)
        except (OSError, ValueError):
            return 0

    def _save(self, offset: int) -> None:
        tmp = self.cursor_file.with_suffix(".tmp")
        tmp.write_text(f"{offset}\n")
        os.replace(tmp, self.cursor_file)

    def post(self, body: Mapping[str, Any]) -> None:
        """POST one event; raises on anything Ozone does not take (or took before)."""
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                text = exc.read()
            if exc.code == 400 and b"DuplicateExternalId" in text:
                return
            raise

    def step(self) -> int:
        """Send what is pending from the cursor on (one page); the events sent."""
        events_, last = page(self.intake_log, self.cursor(), 100, self.created_by, self.platform)
        done = 0
        offset = None
        for item in events_:
            if offset is not None and item["offset"] != offset:
                self._save(offset)
            offset = item["offset"]
            self.post(item["body"])
            done += 1
            self.sent += 1
        if last != self.cursor():
            self._save(last)
        return done

    async def run(self) -> None:
        pause = 1.0
        while True:
            try:
                done = await asyncio.to_thread(self.step)
                pause = 1.0
                if not done:
                    await asyncio.sleep(self.idle)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Ozone down, refusing, unreachable: retry later
                log.warning("posting to Ozone failed (%s); retrying", type(exc).__name__)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 60.0)
