"""The information-operations archive through the real ingest: tweets and users files,
told apart by their columns, the actions they give, idempotency and bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from concerted import adapters
from concerted.adapters.twitter_io import TWEET_COLUMNS, USER_COLUMNS, TwitterIO
from concerted.errors import SchemaError
from concerted.ingest import IngestOptions, SourceReport, ingest
from concerted.store import Store
from tests.conftest import rows

IO = Path(__file__).resolve().parents[1] / "fixtures" / "twitter_io"
TWEETS = IO / "example_tweets_csv_hashed.csv"
USERS = IO / "example_users_csv_hashed.csv"
BROKEN = IO / "broken_tweets_csv_hashed.csv"
# Hashed accounts (fewer than 5,000 followers): id, name and handle are one hash.
H1 = "0ebe23d2c4f0a7c70d26504107af8be35d684a822d5afdca7a4ca2c65a0220d7"
H2 = "06713816796c0307b880db4032405f654f7ce398c1470d4c686fdde3b9c910f1"
T1, T2, T3, T4, T5 = (f"90000000000000000{i}" for i in range(1, 6))


def load(
    store: Store, path: Path, *, timezone: str | None = None, quarantine: bool = False
) -> SourceReport:
    options = IngestOptions(
        format="twitter-io",
        timezone=timezone,
        on_error="quarantine" if quarantine else "raise",
    )
    (report,) = ingest(store, [path], options)
    return report


def test_registered_under_twitter_io() -> None:
    assert isinstance(adapters.get("twitter-io"), TwitterIO)


def test_fixtures_have_the_archive_columns() -> None:
    assert len(TWEET_COLUMNS) == 31
    assert TWEETS.read_text().splitlines()[0].split(",") == list(TWEET_COLUMNS)
    assert USERS.read_text().splitlines()[0].split(",") == list(USER_COLUMNS)


def test_tweets_file_counts(store: Store) -> None:
    report = load(store, TWEETS)
    assert report.status == "ingested"
    assert report.rows_read == 5
    assert report.rows_added == {"posts": 5, "accounts": 3}
    assert report.rows_duplicate == 0
    assert report.rows_set_aside == 0


def test_tweets_become_posts(store: Store) -> None:
    load(store, TWEETS)
    got = {
        r[0]: r[1:]
        for r in rows(
            store,
            "SELECT post_id, account_id, platform, ts, lang, text, repost_of, reply_to, "
            "hashtags, urls, mentions FROM posts",
        )
    }
    assert got[T1] == (
        "1100000001",
        "twitter",
        datetime(2019, 3, 1, 10, 15, tzinfo=UTC),
        "en",
        "Big story today #Breaking #News https://t.co/x1 https://t.co/x2",
        None,
        None,
        ["Breaking", "News"],
        ["https://www.news.example/story/1?utm_source=twitter", "http://blog.example/post/"],
        [],
    )
    # A retweet by a hashed account.
    assert got[T2][0] == H1
    assert got[T2][5:] == (
        T1,
        None,
        ["Breaking", "News"],
        ["https://www.news.example/story/1?utm_source=twitter"],
        ["1100000001"],
    )
    # A reply whose text spans two lines.
    assert got[T3][2:] == (
        datetime(2019, 3, 1, 11, 2, tzinfo=UTC),
        "en",
        "@dailynews_example So true!\n#news",
        None,
        T1,
        ["news"],
        [],
        ["1100000001"],
    )
    # A quote tweet with an empty hashtags field; mentions are user ids.
    assert got[T4][1:4] == ("twitter", datetime(2019, 3, 2, 8, tzinfo=UTC), "und")
    assert got[T4][7:] == (None, ["https://news.example/story/1"], [])
    assert got[T5][7:] == ([], None, ["1100000008", "1100000009"])


def test_other_tweet_columns_go_to_extra(store: Store) -> None:
    load(store, TWEETS)
    extra = {
        post: json.loads(e)
        for post, e in rows(store, "SELECT post_id, CAST(extra AS VARCHAR) FROM posts")
    }
    assert extra[T1] == {
        "tweet_client_name": "Twitter Web Client",
        "in_reply_to_userid": None,
        "quoted_tweet_tweetid": None,
        "is_retweet": "False",
        "retweet_userid": None,
        "latitude": None,
        "longitude": None,
        "quote_count": "1",
        "reply_count": "2",
        "like_count": "10",
        "retweet_count": "5",
        "poll_choices": None,
    }
    assert extra[T2]["retweet_userid"] == "1100000001"
    assert extra[T3]["in_reply_to_userid"] == "1100000001"
    assert extra[T4]["quoted_tweet_tweetid"] == T1
    assert extra[T5]["poll_choices"] == "Yes|No"


def test_tweets_file_accounts(store: Store) -> None:
    load(store, TWEETS)
    assert rows(
        store,
        "SELECT account_id, platform, kind, created_at, name, handle, followers "
        "FROM accounts ORDER BY account_id",
    ) == [
        (H2, "twitter", "user", datetime(2019, 1, 5, tzinfo=UTC), None, None, 42),
        # Hashed: no name or handle; followers from the account's first tweet.
        (H1, "twitter", "user", datetime(2018, 11, 20, tzinfo=UTC), None, None, 150),
        (
            "1100000001",
            "twitter",
            "user",
            datetime(2016, 4, 2, tzinfo=UTC),
            "Daily News Example",
            "dailynews_example",
            12000,
        ),
    ]
    (extra,) = rows(store, "SELECT CAST(extra AS VARCHAR) FROM accounts WHERE followers = 12000")[0]
    assert json.loads(extra) == {
        "user_reported_location": "Springfield",
        "user_profile_description": "News, every day.",
        "user_profile_url": "https://t.co/prof1",
        "following_count": "300",
        "account_language": "en",
    }


def test_actions(store: Store) -> None:
    report = load(store, TWEETS)
    got = rows(
        store,
        "SELECT kind, actor_id, object_id, source_id FROM actions WHERE kind <> 'text' "
        "ORDER BY ALL",
    )
    assert got == sorted(
        [
            ("repost", H1, T1, T2),
            ("reply", H2, T1, T3),
            ("hashtag", "1100000001", "breaking", T1),
            ("hashtag", "1100000001", "news", T1),
            ("hashtag", H1, "breaking", T2),
            ("hashtag", H1, "news", T2),
            ("hashtag", H2, "news", T3),
            ("share_url", "1100000001", "news.example/story/1", T1),
            ("share_url", "1100000001", "blog.example/post", T1),
            ("share_url", H1, "news.example/story/1", T2),
            ("share_url", H1, "news.example/story/1", T4),
            ("share_domain", "1100000001", "news.example", T1),
            ("share_domain", "1100000001", "blog.example", T1),
            ("share_domain", H1, "news.example", T2),
            ("share_domain", H1, "news.example", T4),
        ]
    )
    assert rows(store, "SELECT ts FROM actions WHERE kind = 'repost'") == [
        (datetime(2019, 3, 1, 10, 16, tzinfo=UTC),)
    ]
    # Every tweet but the retweet gives a text action.
    assert rows(store, "SELECT source_id FROM actions WHERE kind = 'text' ORDER BY 1") == [
        (T1,),
        (T3,),
        (T4,),
        (T5,),
    ]
    assert report.actions_added == 19


def test_users_file(store: Store) -> None:
    report = load(store, USERS)
    assert report.rows_read == 4
    assert report.rows_added == {"accounts": 4}
    assert rows(store, "SELECT count(*) FROM posts") == [(0,)]
    assert rows(
        store,
        "SELECT account_id, created_at, name, handle, followers, extra->>'account_language' "
        "FROM accounts ORDER BY account_id",
    ) == [
        (H2, datetime(2019, 1, 5, tzinfo=UTC), None, None, 42, "es"),
        (H1, datetime(2018, 11, 20, tzinfo=UTC), None, None, 150, "en"),
        (
            "1100000001",
            datetime(2016, 4, 2, tzinfo=UTC),
            "Daily News Example",
            "dailynews_example",
            12000,
            "en",
        ),
        (
            "1100000007",
            datetime(2017, 7, 7, tzinfo=UTC),
            "Quiet Account Example",
            "quiet_example",
            5200,
            "fr",
        ),
    ]


def test_columns_a_release_adds_go_to_extra(store: Store, tmp_path: Path) -> None:
    lines = USERS.read_text().splitlines()
    added = tmp_path / "later_users_csv_hashed.csv"
    added.write_text(
        "\n".join([lines[0] + ",account_status", *(x + ",suspended" for x in lines[1:])])
    )
    load(store, added)
    assert rows(store, "SELECT DISTINCT extra->>'account_status' FROM accounts") == [("suspended",)]


def test_users_after_tweets_adds_only_new_accounts(store: Store) -> None:
    load(store, TWEETS)
    report = load(store, USERS)
    assert report.rows_added == {"accounts": 1}
    assert report.rows_duplicate == 3
    assert rows(store, "SELECT count(*) FROM accounts") == [(4,)]


def test_file_kind_is_told_by_columns_not_name(store: Store, tmp_path: Path) -> None:
    misnamed = tmp_path / "misnamed_tweets_csv_hashed.csv"
    misnamed.write_bytes(USERS.read_bytes())
    report = load(store, misnamed)
    assert report.rows_added == {"accounts": 4}
    neither = tmp_path / "other_tweets_csv_hashed.csv"
    neither.write_text("id,text\n1,hello\n")
    with pytest.raises(SchemaError, match="not an information-operations archive file"):
        load(store, neither)


def test_reingest_adds_nothing(store: Store) -> None:
    load(store, TWEETS)
    load(store, USERS)
    counts = (
        "SELECT (SELECT count(*) FROM posts), (SELECT count(*) FROM accounts), "
        "(SELECT count(*) FROM actions), (SELECT count(*) FROM sources)"
    )
    assert rows(store, counts) == [(5, 4, 19, 2)]
    assert load(store, TWEETS).status == "already ingested"
    assert load(store, USERS).status == "already ingested"
    assert rows(store, counts) == [(5, 4, 19, 2)]


def test_timezone_option_wins_over_the_archives_utc(store: Store) -> None:
    load(store, TWEETS, timezone="Asia/Karachi")
    assert rows(store, f"SELECT ts FROM posts WHERE post_id = '{T1}'") == [
        (datetime(2019, 3, 1, 5, 15, tzinfo=UTC),)
    ]


def test_bad_tweet_time_names_row_and_column(store: Store) -> None:
    with pytest.raises(SchemaError) as e:
        load(store, BROKEN)
    assert (e.value.row, e.value.column) == (2, "tweet_time")
    assert "2019-02-30 10:20" in e.value.reason
    assert rows(store, "SELECT count(*) FROM posts") == [(0,)]


def test_bad_tweet_time_quarantined(store: Store) -> None:
    report = load(store, BROKEN, quarantine=True)
    assert report.rows_read == 3
    assert report.rows_set_aside == 1
    assert report.rows_added == {"posts": 2, "accounts": 2}
    assert rows(store, 'SELECT "table", "row", "column" FROM quarantine') == [
        ("posts", 2, "tweet_time")
    ]
    assert rows(store, "SELECT post_id, repost_of FROM posts ORDER BY 1") == [
        ("900000000000000011", None),
        ("900000000000000013", "900000000000000011"),
    ]
    assert rows(store, "SELECT count(*) FROM actions WHERE source_id = '900000000000000012'") == [
        (0,)
    ]
