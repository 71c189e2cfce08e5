"""CrowdTangle posts through the real ingest: the API's JSON and JSON lines, the API's
fields flattened to CSV, the dashboard's page, group and Instagram exports, the
actions they give, time zones, idempotency and a bad date."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from concerted.adapters.crowdtangle import _with_offset
from concerted.errors import SchemaError
from concerted.store import Store
from tests.conftest import FIXTURES, load, rows

CT = FIXTURES / "crowdtangle"
GAZETTE = "100000000000001"
RIVERSIDE = "300000000000003"
SUNNY = "17841400000000001"
ALEX = "500000000000005"
COUNCIL_VOTE = "example-news.org/council-vote?id=7"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


POST_COLUMNS = "post_id, account_id, platform, ts, venue_id, text, lang, urls, hashtags"
ACCOUNT_COLUMNS = "account_id, platform, kind, name, handle, followers, created_at"

API_POSTS = [
    (
        f"{GAZETTE}_200000000000001",
        GAZETTE,
        "facebook",
        utc(2020, 3, 15, 16, 0, 11),
        GAZETTE,
        "Council vote tonight. Read more: https://bit.ly/3xAmpl",
        "en",
        ["https://www.example-news.org/council-vote?utm_source=facebook&utm_medium=social&id=7"],
        [],
    ),
    (
        f"{RIVERSIDE}_400000000000004",
        RIVERSIDE,
        "facebook",
        utc(2020, 3, 15, 16, 2, 40),
        RIVERSIDE,
        "Everyone share this before it gets deleted! #CouncilVote #riverside",
        "en",
        [],
        ["CouncilVote", "riverside"],
    ),
    (
        f"{RIVERSIDE}_400000000000005",
        RIVERSIDE,
        "facebook",
        utc(2020, 3, 15, 16, 3, 5),
        RIVERSIDE,
        "Same story, and sign the petition",
        "en",
        [
            "https://example-news.org/council-vote/?utm_campaign=share&id=7",
            "https://www.example.org/petition",
        ],
        [],
    ),
    (
        f"2270000000000000001_{SUNNY}",
        SUNNY,
        "instagram",
        utc(2020, 3, 16, 8, 15),
        None,
        "Fresh loaves this morning #sourdough #Bakery",
        None,
        [],
        ["sourdough", "Bakery"],
    ),
    (
        f"{ALEX}_600000000000006",
        ALEX,
        "facebook",
        utc(2020, 3, 17, 10),
        None,
        "Agree with the Gazette on this one https://bit.ly/3xAmpl",
        "en",
        ["https://example-news.org/council-vote?id=7&fbclid=IwAR0exampleonly"],
        [],
    ),
]

API_ACCOUNTS = [
    (
        GAZETTE,
        "facebook",
        "page",
        "Harbour Town Gazette",
        "harbourtowngazette",
        15200,
        utc(2011, 6, 1, 9, 30),
    ),
    (RIVERSIDE, "facebook", "group", "Riverside Neighbours Forum", None, 4800, None),
    (ALEX, "facebook", "user", "Alex Example", "alex.example", 250000, None),
    (SUNNY, "instagram", "user", "Sunny Bakes", "sunny.bakes", 52000, None),
]


def posts(store: Store) -> list[tuple[object, ...]]:
    return rows(store, f"SELECT {POST_COLUMNS} FROM posts ORDER BY ts")


def accounts(store: Store) -> list[tuple[object, ...]]:
    return rows(store, f"SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY platform, account_id")


def actions(store: Store, *kinds: str) -> list[tuple[object, ...]]:
    wanted = ", ".join(f"'{k}'" for k in kinds)
    return sorted(
        rows(
            store,
            f"SELECT kind, actor_id, object_id, source_id FROM actions WHERE kind IN ({wanted})",
        )
    )


# -- the API's JSON ----------------------------------------------------------------


def test_api_document(store: Store) -> None:
    report = load(store, CT / "api_posts.json", "crowdtangle")
    assert report.rows_read == 5
    assert report.rows_added == {"posts": 5, "accounts": 4}
    assert posts(store) == API_POSTS
    assert accounts(store) == API_ACCOUNTS


def test_api_extra_keeps_what_no_column_holds(store: Store) -> None:
    load(store, CT / "api_posts.json", "crowdtangle")
    post = rows(
        store,
        "SELECT extra->>'postUrl', extra->>'type', extra->>'statistics.actual.shareCount', "
        "extra->>'link', extra->>'account.name' FROM posts "
        f"WHERE post_id = '{GAZETTE}_200000000000001'",
    )
    assert post == [
        (
            f"https://www.facebook.com/{GAZETTE}/posts/200000000000001",
            "link",
            "3",
            "https://bit.ly/3xAmpl",
            None,  # account fields are the account's
        )
    ]
    account = rows(
        store,
        "SELECT extra->>'account.accountType', extra->>'account.pageAdminTopCountry', "
        "extra->>'account.id', extra->>'account.name', extra->>'account' "
        f"FROM accounts WHERE account_id = '{GAZETTE}'",
    )
    assert account == [("facebook_page", "NZ", "11111", None, None)]


def test_api_actions(store: Store) -> None:
    report = load(store, CT / "api_posts.json", "crowdtangle")
    assert actions(store, "share_url", "share_domain", "hashtag") == sorted(
        [
            ("hashtag", RIVERSIDE, "councilvote", f"{RIVERSIDE}_400000000000004"),
            ("hashtag", RIVERSIDE, "riverside", f"{RIVERSIDE}_400000000000004"),
            ("hashtag", SUNNY, "bakery", f"2270000000000000001_{SUNNY}"),
            ("hashtag", SUNNY, "sourdough", f"2270000000000000001_{SUNNY}"),
            ("share_domain", GAZETTE, "example-news.org", f"{GAZETTE}_200000000000001"),
            ("share_domain", RIVERSIDE, "example-news.org", f"{RIVERSIDE}_400000000000005"),
            ("share_domain", RIVERSIDE, "example.org", f"{RIVERSIDE}_400000000000005"),
            ("share_domain", ALEX, "example-news.org", f"{ALEX}_600000000000006"),
            # Three spellings of one story, one object: tracking parameters, www. and the
            # trailing slash do not count.
            ("share_url", GAZETTE, COUNCIL_VOTE, f"{GAZETTE}_200000000000001"),
            ("share_url", RIVERSIDE, COUNCIL_VOTE, f"{RIVERSIDE}_400000000000005"),
            ("share_url", RIVERSIDE, "example.org/petition", f"{RIVERSIDE}_400000000000005"),
            ("share_url", ALEX, COUNCIL_VOTE, f"{ALEX}_600000000000006"),
        ]
    )
    assert rows(store, "SELECT count(*) FROM actions WHERE kind = 'text'") == [(5,)]
    assert report.actions_added == 12 + 5


def test_api_json_lines_and_bare_array_read_as_the_document(store: Store, tmp_path: Path) -> None:
    load(store, CT / "api_posts.jsonl", "crowdtangle")
    assert posts(store) == API_POSTS
    assert accounts(store) == API_ACCOUNTS

    document = json.loads((CT / "api_posts.json").read_text(encoding="utf-8"))
    array = tmp_path / "posts_array.json"
    array.write_text(json.dumps(document["result"]["posts"]), encoding="utf-8")
    with Store(tmp_path / "other.duckdb", memory_limit="1GB") as other:
        report = load(other, array, "crowdtangle")
        assert report.rows_added == {"posts": 5, "accounts": 4}
        assert posts(other) == API_POSTS


def _underscored(value: dict[str, object], prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, item in value.items():
        if isinstance(item, dict):
            out.update(_underscored(item, f"{prefix}{key}_"))
        else:
            out[prefix + key] = json.dumps(item) if isinstance(item, list) else item
    return out


def test_flattened_with_underscores_as_pycoornet_writes_it(store: Store, tmp_path: Path) -> None:
    """PyCooRnet flattens the API's posts with ``_`` (``account_name``,
    ``statistics_actual_likeCount``) and writes pandas' index as a first, unnamed
    column: the same posts and accounts as the API document."""
    document = json.loads((CT / "api_posts.json").read_text(encoding="utf-8"))
    flat = [_underscored(p) for p in document["result"]["posts"]]
    names = list(dict.fromkeys(k for row in flat for k in row))
    path = tmp_path / "pycoornet.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["", *names])
        writer.writeheader()
        for i, row in enumerate(flat):
            writer.writerow({"": i, **row})
    report = load(store, path, "crowdtangle")
    assert report.rows_added == {"posts": 5, "accounts": 4}
    assert posts(store) == API_POSTS
    assert accounts(store) == API_ACCOUNTS


def test_the_same_posts_in_another_file_are_duplicates(store: Store) -> None:
    load(store, CT / "api_posts.json", "crowdtangle")
    report = load(store, CT / "api_posts.jsonl", "crowdtangle")
    assert report.status == "ingested"
    assert report.rows_added == {"posts": 0, "accounts": 0}
    assert report.rows_duplicate == 5  # file rows: each post (its account is not a row read)
    assert report.actions_added == 0
    assert store.counts()["posts"] == 5


def test_reingest_adds_nothing(store: Store) -> None:
    first = load(store, CT / "api_posts.json", "crowdtangle")
    before = store.counts()
    again = load(store, CT / "api_posts.json", "crowdtangle")
    assert first.status == "ingested"
    assert again.status == "already ingested"
    assert again.rows_added == {}
    assert store.counts() == before
    assert before["actions"] == 17


def test_api_document_without_posts(store: Store, tmp_path: Path) -> None:
    empty = tmp_path / "leaderboard.json"
    empty.write_text('{"status": 200, "result": {"accountStatistics": []}}', encoding="utf-8")
    with pytest.raises(SchemaError, match="no posts were found"):
        load(store, empty, "crowdtangle")


def test_not_crowdtangle(store: Store, tmp_path: Path) -> None:
    other = tmp_path / "other.csv"
    other.write_text("user,text\nu1,hello\n", encoding="utf-8")
    with pytest.raises(SchemaError, match="not CrowdTangle posts.*user, text"):
        load(store, other, "crowdtangle")


# -- the API's fields flattened to CSV -----------------------------------------------


def test_flattened_by_pandas(store: Store) -> None:
    report = load(store, CT / "flat_posts.csv", "crowdtangle")
    assert report.rows_added == {"posts": 3, "accounts": 2}
    assert posts(store) == [
        (
            f"{GAZETTE}_200000000000009",
            GAZETTE,
            "facebook",
            utc(2020, 4, 1, 12),
            GAZETTE,
            "Budget day coverage",  # not the link's description
            "en",
            ["https://example-news.org/budget?utm_source=fb&utm_medium=social"],
            [],
        ),
        (
            f"2280000000000000002_{SUNNY}",
            SUNNY,
            "instagram",
            utc(2020, 4, 1, 12, 5),
            None,
            "Hot cross buns are back #easter",  # Instagram's caption is the description
            None,
            [],
            ["easter"],
        ),
        (
            f"{GAZETTE}_200000000000010",
            GAZETTE,
            "facebook",
            utc(2020, 4, 2, 9),
            GAZETTE,
            "No links today, just #thanks to our readers",
            "en",
            [],
            ["thanks"],
        ),
    ]
    # One row per account, as at its latest post.
    assert accounts(store) == [
        (GAZETTE, "facebook", "page", "Harbour Town Gazette", "harbourtowngazette", 15310, None),
        (SUNNY, "instagram", "user", "Sunny Bakes", "sunny.bakes", 52100, None),
    ]
    assert actions(store, "share_url") == [
        ("share_url", GAZETTE, "example-news.org/budget", f"{GAZETTE}_200000000000009")
    ]


def test_flattened_by_minet(store: Store) -> None:
    report = load(store, CT / "flat_posts_minet.csv", "crowdtangle")
    assert report.rows_added == {"posts": 2, "accounts": 2}
    got = rows(store, f"SELECT {POST_COLUMNS}, extra->>'ct_id' FROM posts ORDER BY ts")
    assert got == [
        (
            "700000000000007_800000000000008",
            "700000000000007",
            "facebook",
            utc(2020, 4, 3, 7, 30),  # "datetime", not the day in "date"
            "700000000000007",
            "Sign today",
            None,
            [
                "https://example-news.org/budget?utm_source=pulse",
                "https://www.example.org/petition?utm_medium=email&ref_src=pulse",
            ],
            [],
            "90000021",
        ),
        (
            f"{RIVERSIDE}_400000000000011",
            RIVERSIDE,
            "facebook",
            utc(2020, 4, 3, 8),
            RIVERSIDE,
            "Meeting moved to Thursday #riverside",
            None,
            [],
            ["riverside"],
            "90000022",
        ),
    ]
    assert accounts(store) == [
        (RIVERSIDE, "facebook", "group", "Riverside Neighbours Forum", None, 4810, None),
        ("700000000000007", "facebook", "page", "Civic Pulse", "civicpulse", 8800, None),
    ]
    assert [a[2] for a in actions(store, "share_url")] == [
        "example-news.org/budget",
        "example.org/petition",
    ]


# -- the dashboard's export ----------------------------------------------------------


def test_export_of_pages(store: Store) -> None:
    report = load(store, CT / "export_page.csv", "crowdtangle")
    assert report.rows_added == {"posts": 4, "accounts": 2}
    assert posts(store) == [
        (
            f"{GAZETTE}_200000000000002",
            GAZETTE,
            "facebook",
            utc(2020, 1, 20, 14),  # 09:00 EST
            GAZETTE,
            "Snow day at the harbour #HarbourTown #snow",
            None,
            [],  # its Link is the post itself
            ["HarbourTown", "snow"],
        ),
        (
            f"{GAZETTE}_200000000000001",
            GAZETTE,
            "facebook",
            utc(2020, 3, 15, 16, 0, 11),  # 12:00:11 EDT
            GAZETTE,
            "Council vote tonight. Read more: https://bit.ly/3xAmpl",
            None,
            [
                "https://www.example-news.org/council-vote"
                "?utm_source=facebook&utm_medium=social&id=7"
            ],
            [],
        ),
        (
            "700000000000007_800000000000001",
            "700000000000007",
            "facebook",
            utc(2020, 3, 15, 16, 1, 30),
            "700000000000007",
            "Big night at the council",
            None,
            ["https://example-news.org/council-vote/?utm_campaign=pulse&id=7"],
            [],
        ),
        (
            "700000000000007_800000000000002",
            "700000000000007",
            "facebook",
            utc(2020, 3, 16, 22, 30),
            "700000000000007",
            "Thanks to everyone who came along tonight",
            None,
            [],  # a post without link
            [],
        ),
    ]
    assert accounts(store) == [
        # Page Created has no zone: it takes the zone of the latest post (EDT).
        (
            GAZETTE,
            "facebook",
            "page",
            "Harbour Town Gazette",
            "harbourtowngazette",
            15150,
            utc(2011, 6, 1, 13, 30),
        ),
        (
            "700000000000007",
            "facebook",
            "page",
            "Civic Pulse",
            "civicpulse",
            8760,
            utc(2015, 2, 10, 22),
        ),
    ]
    assert rows(
        store,
        "SELECT extra->>'Page Category', extra->>'Page Description' FROM accounts "
        "ORDER BY account_id",
    ) == [("NEWSPAPER", "Local news for Harbour Town."), ("COMMUNITY", "Civic news, every day.")]
    assert rows(
        store,
        "SELECT extra->>'Type', extra->>'Followers at Posting', extra->>'Link', "
        "extra->>'Page Name' FROM posts WHERE post_id = '700000000000007_800000000000001'",
    ) == [("Link", "8750", "https://ow.ly/xyz", None)]
    assert actions(store, "share_url") == [
        ("share_url", GAZETTE, COUNCIL_VOTE, f"{GAZETTE}_200000000000001"),
        ("share_url", "700000000000007", COUNCIL_VOTE, "700000000000007_800000000000001"),
    ]


def test_export_and_api_name_a_post_alike(store: Store) -> None:
    load(store, CT / "api_posts.json", "crowdtangle")
    report = load(store, CT / "export_page.csv", "crowdtangle")
    # The Gazette's council-vote post and the Gazette are already in the case.
    assert report.rows_added == {"posts": 3, "accounts": 1}
    assert report.rows_duplicate == 1  # the council-vote post
    assert rows(store, f"SELECT count(*) FROM posts WHERE account_id = '{GAZETTE}'") == [(2,)]


def test_export_of_groups(store: Store) -> None:
    report = load(store, CT / "export_group.csv", "crowdtangle")
    assert report.rows_added == {"posts": 3, "accounts": 2}
    assert posts(store) == [
        (
            f"{RIVERSIDE}_400000000000004",
            RIVERSIDE,
            "facebook",
            utc(2020, 3, 15, 16, 2, 40),  # 09:02:40 PDT
            RIVERSIDE,
            "Everyone share this before it gets deleted! #CouncilVote #riverside",
            None,
            [],
            ["CouncilVote", "riverside"],
        ),
        (
            f"{RIVERSIDE}_400000000000005",
            RIVERSIDE,
            "facebook",
            utc(2020, 3, 15, 16, 3, 5),
            RIVERSIDE,
            "Same story, and sign the petition",
            None,
            ["https://example-news.org/council-vote/?utm_campaign=share&id=7"],
            [],
        ),
        (
            "900000000000009_910000000000001",
            "900000000000009",
            "facebook",
            utc(2020, 3, 18, 14),
            "900000000000009",
            "Sunrise walk photos",
            None,
            ["https://www.facebook.com/photo.php?fbid=910000000000002"],
            [],
        ),
    ]
    assert accounts(store) == [
        (RIVERSIDE, "facebook", "group", "Riverside Neighbours Forum", None, 4800, None),
        ("900000000000009", "facebook", "group", "Harbour Walkers", None, 1200, None),
    ]
    assert [a[2] for a in actions(store, "share_url")] == [
        COUNCIL_VOTE,
        "facebook.com/photo.php?fbid=910000000000002",
    ]


def test_export_of_instagram(store: Store) -> None:
    report = load(store, CT / "export_instagram.csv", "crowdtangle")
    assert report.rows_added == {"posts": 3, "accounts": 2}
    assert posts(store) == [
        (
            "B9xAmPlE1",
            "sunny.bakes",
            "instagram",
            utc(2020, 3, 16, 8, 15),
            None,
            "Fresh loaves this morning #sourdough #Bakery",
            None,
            [],
            ["sourdough", "Bakery"],
        ),
        (
            "B9zRuNnEr3",
            "town_runner",
            "instagram",
            utc(2020, 3, 16, 19, 45),
            None,
            "Evening loop, 10k done #running @sunny.bakes",
            None,
            [],
            ["running"],
        ),
        (
            "B9wAmPlE4",
            "sunny.bakes",
            "instagram",
            utc(2020, 3, 18, 7),
            None,
            "Market stall this Saturday. Details: https://www.example.org/market?utm_source=ig",
            None,
            [],
            [],
        ),
    ]
    assert accounts(store) == [
        ("sunny.bakes", "instagram", "user", "Sunny Bakes", "sunny.bakes", 52300, None),
        ("town_runner", "instagram", "user", "Town Runner", "town_runner", 8100, None),
    ]
    assert actions(store, "share_url", "share_domain") == []


# -- time zones ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("2020-03-15 12:00:11 EDT", "2020-03-15 12:00:11-04:00"),
        ("2020-01-20 09:00:00 est", "2020-01-20 09:00:00-05:00"),
        ("2020-03-15 09:02:40 PDT", "2020-03-15 09:02:40-07:00"),
        ("2020-03-15 09:02:40 PST", "2020-03-15 09:02:40-08:00"),
        ("2020-03-16 08:15:00 UTC", "2020-03-16 08:15:00+00:00"),
        ("2020-03-16 08:15:00 -03", "2020-03-16 08:15:00-03"),
        ("2020-03-16 08:15:00 +0530", "2020-03-16 08:15:00+0530"),
        # An abbreviation of several zones is dropped, for --timezone to say which.
        ("2020-03-16 08:15:00 IST", "2020-03-16 08:15:00"),
        ("2020-03-16T08:15:00Z", "2020-03-16T08:15:00Z"),
        ("2020-03-16 08:15 PM", "2020-03-16 08:15 PM"),
        ("yesterday", "yesterday"),
    ],
)
def test_zone_abbreviations_become_offsets(written: str, read: str) -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT CAST(? AS VARCHAR) AS s", [written])
    assert con.execute(f"SELECT {_with_offset('s')} FROM t").fetchone() == (read,)


def test_an_ambiguous_zone_needs_timezone(store: Store, tmp_path: Path) -> None:
    export = tmp_path / "export_ist.csv"
    export.write_text(
        "Page Name,User Name,Facebook Id,Post Created,URL,Message\n"
        "Delhi Desk,delhidesk,810000000000001,2020-03-15 12:00:11 IST,"
        "https://www.facebook.com/810000000000001/posts/1,Namaste\n",
        encoding="utf-8",
    )
    with pytest.raises(SchemaError, match="--timezone") as e:
        load(store, export, "crowdtangle")
    assert (e.value.row, e.value.column) == (1, "Post Created")
    load(store, export, "crowdtangle", timezone="Asia/Kolkata")
    assert rows(store, "SELECT post_id, ts FROM posts") == [
        ("810000000000001_1", utc(2020, 3, 15, 6, 30, 11))
    ]


# -- a bad date ------------------------------------------------------------------------


def test_bad_date_names_row_and_column(store: Store) -> None:
    with pytest.raises(SchemaError, match="unparseable timestamp") as e:
        load(store, CT / "export_page_bad_date.csv", "crowdtangle")
    assert e.value.row == 2
    assert e.value.column == "Post Created"
    assert store.counts() == {"accounts": 0, "posts": 0, "reports": 0, "roles": 0, "actions": 0}


def test_bad_date_quarantined(store: Store) -> None:
    report = load(store, CT / "export_page_bad_date.csv", "crowdtangle", on_error="quarantine")
    assert report.rows_read == 3
    assert report.rows_set_aside == 1
    assert report.rows_added == {"posts": 2, "accounts": 2}
    assert rows(store, 'SELECT "table", "row", "column" FROM quarantine') == [
        ("posts", 2, "Post Created")
    ]
    raw = rows(store, "SELECT raw::JSON->>'post_id', raw::JSON->'extra'->>'Type' FROM quarantine")
    assert raw == [(f"{GAZETTE}_200000000000003", "Status")]
    assert rows(store, "SELECT post_id FROM posts ORDER BY post_id") == [
        (f"{GAZETTE}_200000000000001",),
        ("700000000000007_800000000000001",),
    ]


def test_api_fields_without_an_account_id(store: Store, tmp_path: Path) -> None:
    flat = tmp_path / "no_account.csv"
    flat.write_text(
        "platformId,platform,date,message\n1_2,Facebook,2020-04-01 12:00:00,hello\n",
        encoding="utf-8",
    )
    with pytest.raises(SchemaError, match="missing the account's id") as e:
        load(store, flat, "crowdtangle")
    assert (e.value.row, e.value.column) == (None, "account.platformId")
