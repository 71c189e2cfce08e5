"""The CooRTweet adapter on hand-written files and on the published data sets."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from concerted.errors import ConfigError, SchemaError
from concerted.store import Store
from tests.conftest import FIXTURES, SHARED_DATA, load, rows

COORTWEET = SHARED_DATA / "coortweet"
needs_shared = pytest.mark.skipif(
    not (COORTWEET / "russian_coord_tweets.parquet").exists(),
    reason="the shared real data sets (../shared/data) are not on this machine",
)


def test_long_form_rows_become_actions(store: Store) -> None:
    report = load(store, FIXTURES / "coortweet" / "long.csv", "coortweet")
    assert report.rows_added == {"actions": 6, "accounts": 3}
    got = rows(store, "SELECT actor_id, kind, object_id, source_id, ts FROM actions ORDER BY ts")
    assert got[0] == ("u1", "repost", "o1", "c1", datetime.fromtimestamp(1623881091, UTC))
    # the duplicated share is an event as given: kept, as CooRTweet keeps it
    assert [r[3] for r in got].count("c5") == 2
    assert rows(store, "SELECT DISTINCT platform FROM actions") == [("twitter",)]


def test_long_form_object_kind_is_a_setting(store: Store) -> None:
    load(store, FIXTURES / "coortweet" / "long.csv", "coortweet", settings={"object": "share_url"})
    assert rows(store, "SELECT DISTINCT kind FROM actions") == [("share_url",)]
    # another setting reads the same file differently: not the same source
    report = load(store, FIXTURES / "coortweet" / "long.csv", "coortweet")
    assert report.status == "ingested"
    assert rows(store, "SELECT kind, count(*) FROM actions GROUP BY 1 ORDER BY 1") == [
        ("repost", 6),
        ("share_url", 6),
    ]
    with pytest.raises(ConfigError, match="not an action kind"):
        load(
            store,
            FIXTURES / "coortweet" / "long.csv",
            "coortweet",
            settings={"object": "x"},
            platform="other",
        )


def test_wide_form_one_action_per_kind_and_object(store: Store) -> None:
    report = load(store, FIXTURES / "coortweet" / "wide.csv", "coortweet")
    got = sorted(rows(store, "SELECT platform, actor_id, kind, object_id, source_id FROM actions"))
    assert got == [
        ("facebook", "fb_1", "hashtag", "55", "100"),
        ("facebook", "fb_1", "share_domain", "3", "100"),
        ("facebook", "fb_1", "share_url", "7", "100"),
        ("facebook", "fb_3", "image", "9", "300"),
        ("twitter", "tw_2", "hashtag", "55", "200"),
        ("twitter", "tw_2", "share_domain", "3", "200"),
        ("twitter", "tw_2", "share_domain", "4", "201"),
        ("twitter", "tw_2", "share_url", "7", "200"),
    ]
    assert report.rows_read == 5
    assert rows(store, "SELECT platform, count(*) FROM accounts GROUP BY 1 ORDER BY 1") == [
        ("facebook", 2),
        ("twitter", 1),
    ]


def test_not_coortweet_says_what_it_expected(store: Store) -> None:
    with pytest.raises(SchemaError, match="not a CooRTweet file"):
        load(store, FIXTURES / "generic" / "posts.csv", "coortweet")


@needs_shared
def test_russian_coord_tweets(store: Store) -> None:
    report = load(store, COORTWEET / "russian_coord_tweets.parquet", "coortweet")
    assert report.rows_read == 35_125
    assert rows(
        store, "SELECT kind, count(*), count(DISTINCT actor_id) FROM actions GROUP BY 1"
    ) == [
        ("repost", 35_125, 9_509),
    ]
    assert store.counts()["accounts"] == 9_509
    before = store.counts()
    assert load(store, COORTWEET / "russian_coord_tweets.parquet", "coortweet").status == (
        "already ingested"
    )
    assert store.counts() == before


@needs_shared
def test_german_elections(store: Store) -> None:
    report = load(store, COORTWEET / "german_elections.parquet", "coortweet")
    assert report.rows_read == 218_971
    assert report.rows_set_aside == 0
    kinds = dict(rows(store, "SELECT kind, count(*) FROM actions GROUP BY 1"))
    assert set(kinds) == {"share_url", "share_domain", "hashtag", "image"}
    # per kind: the distinct (object, account, post, time) rows with an object
    expected = dict(
        rows(
            store,
            f"""
            SELECT 'share_url', count(*) FROM (SELECT DISTINCT url_id, account_id, post_id,
                timestamp FROM '{COORTWEET}/german_elections.parquet' WHERE url_id IS NOT NULL)
            UNION ALL SELECT 'share_domain', count(*) FROM (SELECT DISTINCT domain_id,
                account_id, post_id, timestamp FROM '{COORTWEET}/german_elections.parquet'
                WHERE domain_id IS NOT NULL)
            UNION ALL SELECT 'hashtag', count(*) FROM (SELECT DISTINCT hashtag_id, account_id,
                post_id, timestamp FROM '{COORTWEET}/german_elections.parquet'
                WHERE hashtag_id IS NOT NULL)
            UNION ALL SELECT 'image', count(*) FROM (SELECT DISTINCT phash_id, account_id,
                post_id, timestamp FROM '{COORTWEET}/german_elections.parquet'
                WHERE phash_id IS NOT NULL)
            """,
        )
    )
    assert kinds == expected
    platforms = dict(rows(store, "SELECT platform, count(*) FROM accounts GROUP BY 1"))
    assert set(platforms) == {"facebook", "twitter"}
    assert sum(platforms.values()) == 58_317
    wrong = rows(
        store,
        "SELECT count(*) FROM accounts WHERE (platform = 'facebook') <> "
        "starts_with(account_id, 'fb_')",
    )
    assert wrong == [(0,)]
    again = load(store, COORTWEET / "german_elections.parquet", "coortweet")
    assert again.status == "already ingested"


def test_a_bad_wide_row_is_set_aside_once(store: Store, tmp_path: Path) -> None:
    """A wide row makes one action per object column; a bad time sets the row aside
    once, with one quarantine row per table, not one per action."""
    path = tmp_path / "wide.csv"
    path.write_text(
        "account_id,post_id,url_id,hashtag_id,domain_id,phash_id,timestamp\n"
        "fb_1,100,7,55,3,,1629589836\n"
        "tw_2,200,7,55,3,,not-a-time\n"
        "tw_3,300,7,55,3,,1629589840\n",
        encoding="utf-8",
    )
    report = load(store, path, "coortweet", on_error="quarantine")
    assert report.rows_read == 3 and report.rows_set_aside == 1
    assert rows(store, 'SELECT "table", "row" FROM quarantine ORDER BY 1') == [("actions", 2)]
    assert rows(store, "SELECT count(DISTINCT actor_id) FROM actions") == [(2,)]
    assert rows(store, "SELECT count(*) FROM accounts WHERE account_id = 'tw_2'") == [(0,)]


@pytest.mark.parametrize(
    ("text", "column", "value"),
    [
        (
            "object_id,account_id,content_id,timestamp_share\n"
            "o1,u1,c1,1623881091\n"
            "o1,u2,c2,notatime\n"
            "o2,u3,c3,1623881101\n",
            "timestamp_share",
            "notatime",
        ),
        (
            "account_id,post_id,url_id,hashtag_id,domain_id,phash_id,timestamp\n"
            "fb_1,100,7,55,3,,1629589836\n"
            "fb_2,101,7,55,3,,notatime\n"
            "fb_3,102,7,55,3,,\n",
            "timestamp",
            "notatime",
        ),
    ],
    ids=["long", "wide"],
)
def test_a_bad_time_names_the_file_s_column_and_counts_the_file_s_rows(
    store: Store, tmp_path: Path, text: str, column: str, value: str
) -> None:
    """The error names the column as the file has it (``timestamp_share``,
    ``timestamp``), not the contract's ``ts``; and "rows have errors" counts the file's
    rows, not the actions a wide row makes (two bad rows of three actions each)."""
    path = tmp_path / "shares.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SchemaError) as caught:
        load(store, path, "coortweet")
    error = caught.value
    assert (error.row, error.column) == (2, column)
    assert f"unparseable timestamp '{value}'" in str(error)
    notes = " ".join(getattr(error, "__notes__", []))
    if column == "timestamp":
        assert "2 rows in" in notes and "have errors" in notes
