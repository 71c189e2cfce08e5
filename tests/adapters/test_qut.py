"""The coordination-network-toolkit CSV through the real ingest: posts, accounts, the
actions they give, idempotency, reading by position, and bad input."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from concerted import adapters
from concerted.adapters.base import AdapterOptions
from concerted.adapters.qut import Qut
from concerted.errors import SchemaError
from concerted.ingest import IngestOptions, SourceReport, ingest
from concerted.store import Store
from tests.conftest import rows

QUT = Path(__file__).resolve().parents[1] / "fixtures" / "qut"


def load(
    store: Store, path: Path, *, platform: str | None = None, quarantine: bool = False
) -> SourceReport:
    options = IngestOptions(
        format="qut",
        adapter=AdapterOptions(platform=platform),
        on_error="quarantine" if quarantine else "raise",
    )
    (report,) = ingest(store, [path], options)
    return report


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def test_registered_under_qut() -> None:
    assert isinstance(adapters.get("qut"), Qut)


def test_counts(store: Store) -> None:
    report = load(store, QUT / "messages.csv")
    assert report.status == "ingested"
    assert report.rows_read == 6
    # Message 1001 appears twice: one post, one duplicate, as the toolkit keeps it.
    assert report.rows_added == {"posts": 5, "accounts": 4}
    assert report.rows_duplicate == 1
    assert report.rows_set_aside == 0
    assert rows(store, "SELECT count(*) FROM posts") == [(5,)]
    assert rows(store, "SELECT count(*) FROM accounts") == [(4,)]


def test_posts(store: Store) -> None:
    load(store, QUT / "messages.csv")
    got = {
        r[0]: r[1:]
        for r in rows(
            store,
            "SELECT post_id, account_id, platform, ts, repost_of, reply_to, text, urls FROM posts",
        )
    }
    assert got["1001"] == (
        "u1",
        "twitter",
        datetime(2020, 1, 1, 13, 44, 36, tzinfo=UTC),
        None,
        None,
        "Vote early! #Election2020 @bob_example https://t.co/aaa",
        ["https://www.News.example/story/?utm_source=tw"],
    )
    # A repost, at a fractional second, with an empty urls field.
    assert got["1003"] == (
        "u3",
        "twitter",
        datetime(2020, 1, 1, 13, 45, 1, 500000, tzinfo=UTC),
        "1001",
        None,
        "RT @alice_example: Vote early! #Election2020",
        None,
    )
    # A reply with two URLs, several spaces apart, one with commas in its path.
    assert got["1004"] == (
        "u2",
        "twitter",
        at(1577886400),
        None,
        "1001",
        "@alice_example agreed, both links say so",
        ["http://blog.example/a", "https://news.example/7,123,story.html"],
    )
    assert got["1005"][5:] == ("vote   EARLY! #election2020", None)
    # The first of the two rows for message 1001 stands.
    assert got["1001"][2] == at(1577886276)


def test_accounts(store: Store) -> None:
    load(store, QUT / "messages.csv")
    assert rows(store, "SELECT account_id, platform, kind, handle FROM accounts ORDER BY 1") == [
        ("u1", "twitter", "user", "alice_example"),
        ("u2", "twitter", "user", "bob_example"),
        ("u3", "twitter", "user", "carol_example"),
        ("u4", "twitter", "user", None),
    ]


def test_actions(store: Store) -> None:
    load(store, QUT / "messages.csv")
    got = rows(
        store,
        "SELECT kind, actor_id, object_id, source_id FROM actions WHERE kind <> 'text' "
        "ORDER BY ALL",
    )
    assert got == sorted(
        [
            ("repost", "u2", "1001", "1002"),
            ("repost", "u3", "1001", "1003"),
            ("reply", "u2", "1001", "1004"),
            ("share_url", "u1", "news.example/story", "1001"),
            ("share_url", "u2", "news.example/story", "1002"),
            ("share_url", "u2", "blog.example/a", "1004"),
            ("share_url", "u2", "news.example/7,123,story.html", "1004"),
            ("share_domain", "u1", "news.example", "1001"),
            ("share_domain", "u2", "news.example", "1002"),
            ("share_domain", "u2", "blog.example", "1004"),
            ("share_domain", "u2", "news.example", "1004"),
        ]
    )
    assert rows(store, "SELECT ts FROM actions WHERE kind = 'repost' AND source_id = '1003'") == [
        (datetime(2020, 1, 1, 13, 45, 1, 500000, tzinfo=UTC),)
    ]
    # Text of original posts only; 1001 and 1005 differ in store, spacing, a link and a
    # mention, so they are one object.
    texts = dict(rows(store, "SELECT source_id, object_id FROM actions WHERE kind = 'text'"))
    assert sorted(texts) == ["1001", "1004", "1005"]
    assert texts["1001"] == texts["1005"] != texts["1004"]
    # The format has no hashtag column: hashtags stay in the text.
    assert rows(store, "SELECT count(*) FROM actions WHERE kind = 'hashtag'") == [(0,)]


def test_reingest_adds_nothing(store: Store, tmp_path: Path) -> None:
    load(store, QUT / "messages.csv")
    counts = (
        "SELECT (SELECT count(*) FROM posts), (SELECT count(*) FROM accounts), "
        "(SELECT count(*) FROM actions), (SELECT count(*) FROM sources)"
    )
    assert rows(store, counts) == [(5, 4, 14, 1)]
    again = load(store, QUT / "messages.csv")
    assert again.status == "already ingested"
    assert again.rows_added == {}
    # The same content under another name is the same source.
    copy = tmp_path / "copy.csv"
    copy.write_bytes((QUT / "messages.csv").read_bytes())
    assert load(store, copy).status == "already ingested"
    assert rows(store, counts) == [(5, 4, 14, 1)]


def test_platform_option(store: Store) -> None:
    load(store, QUT / "messages.csv", platform="Mastodon")
    for table in ("posts", "accounts", "actions"):
        assert rows(store, f"SELECT DISTINCT platform FROM {table}") == [("mastodon",)]


def test_columns_read_by_position_when_not_named(store: Store) -> None:
    report = load(store, QUT / "by_position.csv")
    assert report.rows_added == {"posts": 2, "accounts": 2}
    assert rows(
        store, "SELECT post_id, account_id, ts, repost_of, text, urls FROM posts ORDER BY 1"
    ) == [
        (
            "4001",
            "u1",
            at(1577886276),
            None,
            "hello",
            ["https://news.example/a", "https://news.example/b"],
        ),
        ("4002", "u2", at(1577886290), "4001", "RT @alice_example: hello", None),
    ]
    assert rows(store, "SELECT account_id, handle FROM accounts ORDER BY 1") == [
        ("u1", "alice_example"),
        ("u2", "bob_example"),
    ]


def test_not_a_toolkit_file(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("id,author,time\n1,u1,1577886276\n")
    with pytest.raises(SchemaError, match="expected 8 columns"):
        load(store, path)
    assert rows(store, "SELECT count(*) FROM sources") == [(0,)]


def test_unparseable_timestamp_names_row_and_column(store: Store) -> None:
    with pytest.raises(SchemaError) as e:
        load(store, QUT / "broken_timestamp.csv")
    assert (e.value.row, e.value.column) == (3, "timestamp")
    assert "yesterday" in e.value.reason
    assert rows(store, "SELECT count(*) FROM posts") == [(0,)]


def test_unparseable_timestamp_quarantined(store: Store) -> None:
    report = load(store, QUT / "broken_timestamp.csv", quarantine=True)
    assert report.rows_read == 4
    assert report.rows_set_aside == 1
    assert report.rows_added == {"posts": 3, "accounts": 3}
    assert rows(store, 'SELECT "table", "row", "column" FROM quarantine') == [
        ("posts", 3, "timestamp")
    ]
    assert rows(store, "SELECT post_id FROM posts ORDER BY 1") == [("2001",), ("2002",), ("2004",)]
    assert rows(store, "SELECT count(*) FROM actions WHERE source_id = '2003'") == [(0,)]


def test_line_with_too_many_fields(store: Store) -> None:
    with pytest.raises(SchemaError) as e:
        load(store, QUT / "broken_line.csv")
    assert (e.value.row, e.value.line, e.value.column) == (2, 3, None)
    assert "too many columns" in e.value.reason


def test_line_with_too_many_fields_quarantined(store: Store) -> None:
    report = load(store, QUT / "broken_line.csv", quarantine=True)
    assert report.rows_read == 3
    assert report.rows_set_aside == 1
    assert rows(store, 'SELECT "table", "row", line FROM quarantine') == [(None, 2, 3)]
    assert rows(store, "SELECT post_id, account_id FROM posts ORDER BY 1") == [
        ("3001", "u1"),
        ("3003", "u3"),
    ]
    # The unreadable line's account is not guessed at either.
    assert rows(store, "SELECT account_id FROM accounts ORDER BY 1") == [("u1",), ("u3",)]
