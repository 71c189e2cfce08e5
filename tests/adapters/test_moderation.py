"""The moderation tools' report formats, through the real ingest, and the same records
through the service's mapping (one SELECT for both)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from concerted import adapters
from concerted.adapters.moderation import records_to_reports
from concerted.store import Store
from tests.conftest import FIXTURES, load, rows

MODERATION = FIXTURES / "moderation"
COLUMNS = "report_id, reporter_id, target_id, target_kind, reason, ts, channel, client, platform"

EXPECTED: dict[str, list[tuple[Any, ...]]] = {
    "mastodon.json": [
        (
            "17",
            "5",
            "9",
            "account",
            "spam",
            datetime(2026, 3, 1, 12, tzinfo=UTC),
            None,
            None,
            "mastodon",
        ),
        (
            "18",
            "other.example",
            "9",
            "account",
            "violation",
            datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC),
            "forwarded",
            None,
            "mastodon",
        ),
    ],
    "atproto.jsonl": [
        (
            "101",
            "did:plc:rep1",
            "did:plc:target1",
            "account",
            "com.atproto.moderation.defs#reasonSpam",
            datetime(2026, 3, 1, 12, tzinfo=UTC),
            None,
            None,
            "bluesky",
        ),
        (
            "102",
            "did:plc:rep2",
            "at://did:plc:target1/app.bsky.feed.post/3k",
            "post",
            "tools.ozone.report.defs#reasonHarassmentTroll",
            datetime(2026, 3, 1, 12, 0, 3, tzinfo=UTC),
            None,
            "bulk-reporter/1.0",
            "bluesky",
        ),
    ],
    "synapse.json": [
        (
            "2",
            "@rep:example.org",
            "@target:example.org",
            "account",
            None,
            datetime(2026, 3, 1, 12, tzinfo=UTC),
            None,
            None,
            "matrix",
        ),
        (
            "3",
            "@rep2:example.org",
            "$ev2",
            "post",
            None,
            datetime(2026, 3, 1, 12, 0, 1, 500000, tzinfo=UTC),
            None,
            None,
            "matrix",
        ),
    ],
    "lemmy.json": [
        (
            "post:4",
            "11",
            "post:300",
            "post",
            None,
            datetime(2026, 3, 1, 12, tzinfo=UTC),
            None,
            None,
            "lemmy",
        ),
        (
            "comment:4",
            "12",
            "comment:900",
            "post",
            "instance_rules",
            datetime(2026, 3, 1, 12, 0, 2, tzinfo=UTC),
            None,
            None,
            "lemmy",
        ),
    ],
}


def _format(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_format_ingests_as_reports(store: Store, name: str) -> None:
    report = load(store, MODERATION / name, _format(name))
    assert report.rows_read == 2
    got = rows(store, f"SELECT {COLUMNS} FROM reports ORDER BY ts")
    assert got == EXPECTED[name]


def test_no_e_mail_or_ip_is_kept(store: Store) -> None:
    load(store, MODERATION / "mastodon.json", "mastodon")
    extra = " ".join(str(e) for (e,) in rows(store, "SELECT extra FROM reports"))
    assert "alice@example.org" not in extra and "192.0.2.1" not in extra
    assert '"status_ids":["100"]' in extra.replace(" ", "")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_service_maps_records_as_ingest_does(name: str) -> None:
    path: Path = MODERATION / name
    text = path.read_text()
    records = (
        json.loads(text) if name.endswith(".json") else [json.loads(x) for x in text.splitlines()]
    )
    mapped = records_to_reports(adapters.get(_format(name)), [*records, "not an object"])
    assert len(mapped) == 3 and not isinstance(mapped[-1], dict)
    ids = [m["report_id"] for m in mapped[:2] if isinstance(m, dict)]
    assert ids == [row[0] for row in EXPECTED[name]]


@pytest.mark.parametrize("name", ["mastodon", "atproto", "synapse", "lemmy"])
def test_a_record_with_nothing_the_format_reads_is_its_own_error(name: str) -> None:
    """A batch of one empty object (schemathesis sent it) is refused, saying why: it
    was a KeyError that failed the request with a 500."""
    (mapped,) = records_to_reports(adapters.get(name), [{}])
    assert getattr(mapped, "reason", "").startswith(f"not a record of the {name} format")
