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
from concerted.errors import SchemaError
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


@pytest.mark.parametrize(
    ("name", "path", "value", "column"),
    [
        ("mastodon", ("created_at",), "yesterday", "created_at"),
        ("mastodon", ("target_account", "id"), None, "target_account.id"),
        ("atproto", ("createdAt",), "yesterday", "createdAt"),
        ("synapse", ("user_id",), None, "user_id"),
        ("lemmy", ("post_report", "published_at"), "yesterday", "post_report.published_at"),
    ],
)
def test_an_error_names_the_field_of_the_export(
    store: Store, tmp_path: Path, name: str, path: tuple[str, ...], value: Any, column: str
) -> None:
    """A bad or missing value is named by the export's own field
    (``target_account.id``, ``createdAt``), not the contract's column (``target_id``,
    ``ts``); where the format reads either of two fields, by both. A value the format
    derives (Mastodon's reporter of a forwarded report) keeps the contract's name."""
    (file,) = [f for f in EXPECTED if _format(f) == name]
    source = FIXTURES / "moderation" / file
    text = source.read_text(encoding="utf-8")
    records = (
        [json.loads(line) for line in text.splitlines() if line.strip()]
        if source.suffix == ".jsonl"
        else json.loads(text)
    )
    target = records[0]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    out = tmp_path / source.name
    if source.suffix == ".jsonl":
        out.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    else:
        out.write_text(json.dumps(records), encoding="utf-8")
    with pytest.raises(SchemaError) as caught:
        load(store, out, name)
    assert caught.value.row == 1
    assert caught.value.column is not None and column in caught.value.column.split(" or ")
