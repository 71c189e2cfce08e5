"""Ingest through the generic adapter: every file type, every table, the actions,
idempotency, duplicates, bad input and quarantine."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from concerted.errors import ConfigError, SchemaError, UnknownComponentError
from concerted.store import Store
from tests.conftest import FIXTURES, load, rows

GENERIC = FIXTURES / "generic"


def test_posts_csv_with_mapping_and_extra(store: Store) -> None:
    report = load(store, GENERIC / "posts.csv", table="posts", mapping={"account_id": "author"})
    assert report.status == "ingested"
    assert report.rows_read == 4
    assert report.rows_added == {"posts": 4}
    p1 = store.sql(
        "SELECT account_id, platform, ts, venue_id, urls, hashtags, mentions, image_hashes, "
        "extra->>'likes' FROM posts WHERE post_id = 'p1'"
    ).fetchone()
    assert p1 == (
        "a1",
        "facebook",
        datetime(2021, 3, 1, 10, tzinfo=UTC),
        "g1",
        ["https://www.News.example/Story/?utm_source=fb&id=7", "http://blog.example/a"],
        ["#Vote", "#PAKISTAN"],
        ["a2"],
        ["img1"],
        "10",
    )
    p4 = store.sql("SELECT ts, reply_to, image_hashes FROM posts WHERE post_id = 'p4'").fetchone()
    assert p4 == (datetime(2021, 3, 1, 5, 2, tzinfo=UTC), "p2", ["img1", "img2"])


def test_actions_from_posts(store: Store) -> None:
    report = load(store, GENERIC / "posts.csv", table="posts", mapping={"account_id": "author"})
    got = sorted(
        rows(store, "SELECT kind, actor_id, object_id, source_id FROM actions WHERE kind <> 'text'")
    )
    assert got == sorted(
        [
            ("share_url", "a1", "news.example/Story?id=7", "p1"),
            ("share_url", "a1", "blog.example/a", "p1"),
            ("share_domain", "a1", "news.example", "p1"),
            ("share_domain", "a1", "blog.example", "p1"),
            ("share_url", "a2", "news.example/Story?id=7", "p2"),
            ("share_domain", "a2", "news.example", "p2"),
            ("hashtag", "a1", "vote", "p1"),
            ("hashtag", "a1", "pakistan", "p1"),
            ("hashtag", "a2", "vote", "p2"),
            ("repost", "a3", "p1", "p3"),
            ("reply", "a1", "p2", "p4"),
            ("image", "a1", "img1", "p1"),
            ("image", "a1", "img1", "p4"),
            ("image", "a1", "img2", "p4"),
        ]
    )
    # p1 and p2 say the same thing apart from case, spacing and a link: one text object.
    texts = dict(rows(store, "SELECT source_id, object_id FROM actions WHERE kind = 'text'"))
    assert set(texts) == {"p1", "p2", "p4"}
    assert texts["p1"] == texts["p2"] != texts["p4"]
    assert report.actions_added == 17
    # every action points back at a stored post
    orphans = rows(
        store,
        "SELECT count(*) FROM actions a ANTI JOIN posts p ON a.source_id = p.post_id",
    )
    assert orphans == [(0,)]


def test_accounts_tsv_kinds_and_extra(store: Store) -> None:
    load(store, GENERIC / "accounts.tsv", table="accounts")
    got = rows(
        store,
        "SELECT account_id, platform, kind, handle, followers, extra->>'country' FROM accounts "
        "ORDER BY platform, account_id",
    )
    assert got == [
        ("a1", "facebook", "page", "alpha", 1200, "PK"),
        ("a2", "facebook", "user", "beta2021", 15, "PK"),
        ("g1", "facebook", "group", None, 5000, None),
        ("a1", "instagram", "user", "alpha_ig", 300, "PK"),
    ]


def test_reports_jsonl_and_report_actions(store: Store) -> None:
    report = load(store, GENERIC / "reports.jsonl", table="reports")
    assert report.rows_read == 3  # the blank line is no record
    got = rows(
        store,
        "SELECT report_id, target_kind, outcome, ts, client FROM reports ORDER BY report_id",
    )
    assert got[0] == ("r1", "account", None, datetime(2021, 3, 2, 9, tzinfo=UTC), None)
    assert got[1][2] == "rejected"
    assert json.loads(got[1][4]) == {"ua": "ext/1.0"}
    assert got[2][1:4] == ("post", "upheld", datetime(2021, 3, 2, 9, 0, 8, tzinfo=UTC))
    assert sorted(rows(store, "SELECT actor_id, object_id FROM actions WHERE kind = 'report'")) == [
        ("a2", "c9"),
        ("a3", "c9"),
        ("a3", "p9"),
    ]


def test_roles_json_and_join_actions(store: Store) -> None:
    load(store, GENERIC / "roles.json", table="roles")
    assert rows(store, "SELECT account_id, role FROM roles ORDER BY account_id") == [
        ("a1", "admin"),
        ("a2", "member"),
        ("a3", "member"),
    ]
    # a role without a start date is kept, but is no timed action
    assert sorted(rows(store, "SELECT actor_id, object_id FROM actions WHERE kind = 'join'")) == [
        ("a1", "g1"),
        ("a3", "g1"),
    ]


def test_parquet_matches_csv(tmp_path: Path) -> None:
    def stored(path: Path) -> list[tuple[object, ...]]:
        with Store(tmp_path / f"{path.suffix[1:]}.duckdb") as s:
            load(s, path, table="posts", mapping={"account_id": "author"})
            return rows(s, "SELECT * EXCLUDE (extra) FROM posts ORDER BY post_id")

    assert stored(GENERIC / "posts.csv") == stored(GENERIC / "posts.parquet")


def test_typed_parquet_keeps_types(store: Store) -> None:
    load(store, GENERIC / "typed_posts.parquet", table="posts")
    assert rows(store, "SELECT count(*), min(ts), max(extra->>'n') FROM posts") == [
        (5, datetime(2021, 3, 1, 10, tzinfo=UTC), "4"),
    ]


def test_ingest_is_idempotent(store: Store, tmp_path: Path) -> None:
    first = load(store, GENERIC / "posts.csv", table="posts", mapping={"account_id": "author"})
    before = store.counts()
    again = load(store, GENERIC / "posts.csv", table="posts", mapping={"account_id": "author"})
    assert again.status == "already ingested"
    assert again.sha256 == first.sha256
    assert store.counts() == before
    # the same content under another name is the same source
    copy = tmp_path / "copy.csv"
    copy.write_bytes((GENERIC / "posts.csv").read_bytes())
    assert load(store, copy, table="posts", mapping={"account_id": "author"}).status == (
        "already ingested"
    )
    assert rows(store, "SELECT count(*) FROM sources") == [(1,)]


def test_overlapping_files_add_each_row_once(store: Store, tmp_path: Path) -> None:
    load(store, GENERIC / "posts.csv", table="posts", mapping={"account_id": "author"})
    actions = store.counts()["actions"]
    overlap = tmp_path / "overlap.csv"
    lines = (GENERIC / "posts.csv").read_text().splitlines()
    overlap.write_text("\n".join([*lines[:3], lines[1].replace("p1,", "p9,", 1)]) + "\n")
    report = load(store, overlap, table="posts", mapping={"account_id": "author"})
    assert report.rows_added == {"posts": 1}
    assert report.rows_duplicate == 2
    assert store.counts()["posts"] == 5
    assert store.counts()["actions"] == actions + report.actions_added
    recorded = rows(store, "SELECT rows_read, rows_duplicate FROM sources WHERE source_id = 2")
    assert recorded == [(3, 2)]


def test_accounts_seen_again_fill_in_missing_fields(store: Store, tmp_path: Path) -> None:
    thin = tmp_path / "thin.csv"
    thin.write_text("account_id,platform,handle\na1,facebook,\nz9,facebook,zed\n")
    load(store, thin, table="accounts")
    load(store, GENERIC / "accounts.tsv", table="accounts")
    got = rows(
        store,
        "SELECT handle, followers FROM accounts WHERE account_id = 'a1' AND platform = 'facebook'",
    )
    assert got == [("alpha", 1200)]
    assert store.counts()["accounts"] == 5


def test_platform_option_fills_a_missing_column(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_text("post_id,account_id,ts\np1,a1,2021-03-01T10:00:00Z\n")
    with pytest.raises(SchemaError) as e:
        load(store, f, table="posts")
    assert e.value.column == "platform"
    assert "--platform" in str(e.value)
    load(store, f, table="posts", platform="Telegram")
    assert rows(store, "SELECT platform FROM posts") == [("telegram",)]


# -- bad input --------------------------------------------------------------------------


def test_broken_csv_line_is_named(store: Store) -> None:
    with pytest.raises(SchemaError) as e:
        load(store, GENERIC / "posts_broken.csv", table="posts")
    assert (e.value.row, e.value.line) == (2, 3)
    assert "broken line" in e.value.reason
    assert "posts_broken.csv" in str(e.value)
    assert any("3 rows" in n for n in e.value.__notes__)
    assert store.counts()["posts"] == 0  # nothing written


def test_quarantine_sets_aside_exactly_the_bad_rows(store: Store) -> None:
    report = load(store, GENERIC / "posts_broken.csv", table="posts", on_error="quarantine")
    assert report.rows_read == 6
    assert report.rows_set_aside == 3
    assert report.rows_added == {"posts": 3}
    assert rows(store, "SELECT post_id FROM posts ORDER BY 1") == [("p1",), ("p3",), ("p6",)]
    q = rows(store, 'SELECT "row", line, "column", reason FROM quarantine ORDER BY "row"')
    assert [(r[0], r[2]) for r in q] == [(2, None), (4, "ts"), (5, "account_id")]
    assert q[0][1] == 3 and "broken line" in q[0][3]
    assert q[1][3].startswith("unparseable timestamp 'not a time'; accepted: ISO 8601")
    assert q[2][3] == "missing value"
    assert rows(store, "SELECT rows_set_aside FROM sources") == [(3,)]


def test_a_csv_read_leaves_nothing_on_the_connection(store: Store, tmp_path: Path) -> None:
    """The reader's rejects tables (both of DuckDB's) are dropped once a file is in,
    with broken lines or without: a long-lived connection does not collect them."""

    def temporary() -> set[str]:
        return {
            name
            for (name,) in store.con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'temp'"
            ).fetchall()
        }

    before = temporary()
    load(store, GENERIC / "posts_broken.csv", table="posts", on_error="quarantine")
    f = tmp_path / "clean.csv"
    f.write_text("post_id,account_id,platform,ts\nq1,a,x,2021-03-01T10:00:00Z\n")
    load(store, f, table="posts")
    assert temporary() == before
    assert rows(store, "SELECT count(*) FROM posts") == [(4,)]


@pytest.mark.parametrize("on_error", ["raise", "quarantine"])
def test_a_nul_in_a_column_name_is_named(store: Store, tmp_path: Path, on_error: str) -> None:
    """No SQL can hold a NUL in a name: the header's column is named, nothing stored."""
    f = tmp_path / "nul.csv"
    f.write_bytes(b"post_id,account_id,platform,ts,\x00ote\np1,a,x,2021-03-01T10:00:00Z,n\n")
    with pytest.raises(SchemaError) as e:
        load(store, f, table="posts", on_error=on_error)
    assert e.value.column == "\\0ote"
    assert "column 5's name" in e.value.reason and "NUL" in e.value.reason
    assert store.counts()["posts"] == 0


def test_rows_after_a_broken_line_keep_their_numbers(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "late.csv"
    lines = ["post_id,account_id,platform,ts"]
    lines += [f"p{i},a,x,2021-03-01T10:00:00Z" for i in range(1, 9)]
    lines[3] = "p3,a,x"  # record 3: too few fields
    lines[6] = "p6,a,x,2021-03-01T10:00:00Z,more"  # record 6: too many
    lines[8] = "p8,a,x,yesterday"  # record 8: bad time
    f.write_text("\n".join(lines) + "\n")
    load(store, f, table="posts", on_error="quarantine")
    assert rows(store, 'SELECT "row" FROM quarantine ORDER BY 1') == [(3,), (6,), (8,)]


def test_broken_json_lines_are_named(store: Store) -> None:
    with pytest.raises(SchemaError) as e:
        load(store, GENERIC / "posts_broken.jsonl", table="posts")
    assert (e.value.row, e.value.line, e.value.reason) == (2, 2, "broken JSON")
    report = load(store, GENERIC / "posts_broken.jsonl", table="posts", on_error="quarantine")
    assert (report.rows_read, report.rows_set_aside) == (4, 2)
    assert rows(store, 'SELECT "row", reason FROM quarantine ORDER BY 1') == [
        (2, "broken JSON"),
        (3, "not a JSON object"),
    ]


def test_a_json_line_that_is_not_utf8_is_that_line_only(store: Store, tmp_path: Path) -> None:
    """Such a line failed the whole file, under quarantine too, with the CSV reader's
    "CSV Error on Line: 2"; now it is named in raise and set aside in quarantine, and
    the lines after it keep their numbers."""
    f = tmp_path / "posts.jsonl"
    good = '{"post_id": "p%d", "account_id": "a", "platform": "x", "ts": "%s"}\n'
    f.write_bytes(
        (good % (1, "2021-03-01T10:00:00Z")).encode()
        + b'{"post_id": "p2", "account_id": "\xff\xfe", "platform": "x"}\n'
        + b"\n"
        + (good % (4, "2021-03-01T10:00:04Z")).encode()
        + (good % (5, "yesterday")).encode()
    )
    with pytest.raises(SchemaError) as e:
        load(store, f, table="posts")
    assert (e.value.row, e.value.line) == (2, 2)
    assert "not utf-8" in e.value.reason and "CSV Error" not in str(e.value)
    report = load(store, f, table="posts", on_error="quarantine")
    assert (report.rows_read, report.rows_set_aside) == (4, 2)
    assert rows(store, "SELECT post_id FROM posts ORDER BY 1") == [("p1",), ("p4",)]
    assert rows(store, 'SELECT "row", "column" FROM quarantine ORDER BY 1') == [
        (2, None),
        (5, "ts"),
    ]


@pytest.mark.parametrize(
    ("content", "broken"),
    [
        (b'{"post_id": "p1", "acc\n', [(1, "broken json")]),
        (b'{"post_id": "p1"}}\n\n{"post_id": "\xff"}\n', [(1, "broken json"), (3, "not utf-8")]),
    ],
)
def test_a_json_lines_file_none_of_whose_lines_reads(
    store: Store, tmp_path: Path, content: bytes, broken: list[tuple[int, str]]
) -> None:
    """No record read, so the file's fields are unknown: it was refused for a "missing
    column 'post_id'" (with "the input has: " and nothing after it), under quarantine
    too. Now its first broken line is named, or every line is set aside."""
    f = tmp_path / "posts.jsonl"
    f.write_bytes(content)
    with pytest.raises(SchemaError) as e:
        load(store, f, table="posts")
    assert (e.value.row, e.value.line) == (broken[0][0], broken[0][0])
    assert broken[0][1] in e.value.reason.lower() and "missing column" not in str(e.value)
    report = load(store, f, table="posts", on_error="quarantine")
    assert (report.rows_read, report.rows_set_aside, report.rows_added) == (
        len(broken),
        len(broken),
        {},
    )
    found = rows(store, 'SELECT "row", reason FROM quarantine ORDER BY 1')
    assert [r for r, _ in found] == [r for r, _ in broken]
    assert all(why in reason.lower() for (_, why), (_, reason) in zip(broken, found, strict=True))
    assert rows(store, "SELECT count(*) FROM posts") == [(0,)]


@pytest.mark.parametrize(
    ("name", "content"), [("posts.jsonl", b""), ("posts.jsonl", b"\n \n"), ("posts.json", b"[]")]
)
def test_a_json_file_of_no_record_adds_nothing(
    store: Store, tmp_path: Path, name: str, content: bytes
) -> None:
    """It was refused for a missing column; it holds no record to be wrong."""
    for on_error in ("raise", "quarantine"):
        f = tmp_path / on_error / name
        f.parent.mkdir()
        # Each mode's file differs by a trailing blank, so neither is the other again.
        f.write_bytes(content + b" " * (on_error == "raise"))
        report = load(store, f, table="posts", on_error=on_error)
        assert (report.rows_read, report.rows_set_aside, report.rows_added) == (0, 0, {})
        assert "the file holds no record" in report.notes


_EXPORT = [
    {
        "id": str(i),
        "created_at": f"2026-03-01T12:00:0{i}Z",
        "comment": 'a, b ] } \\ " é',
        "account": {"id": f"u{i}"},
        "target_account": {"id": "t"},
    }
    for i in range(1, 5)
]


@pytest.mark.parametrize(
    ("broken", "kept", "set_aside"),
    [
        # A download cut off inside the third record.
        (lambda text: text[: text.index('"id": "3"') + 20], ["1", "2"], [3]),
        # A stray byte in the second record's value.
        (lambda text: text.replace('"id": "2"', '"id": 2x', 1), ["1", "3", "4"], [2]),
        # A comma too many, and text after the array.
        (lambda text: text.replace("\n },\n", "\n },,\n", 1) + "x", ["1", "2", "3", "4"], [2, 6]),
        # A byte that is not UTF-8 in the second record (written back as that byte).
        (lambda text: text.replace('"id": "2"', '"id": "2\udcff"', 1), ["1", "3", "4"], [2]),
    ],
)
def test_a_broken_json_array_keeps_its_whole_records(
    store: Store, tmp_path: Path, broken: Any, kept: list[str], set_aside: list[int]
) -> None:
    """A JSON array (a moderation tool's export) that does not parse was refused whole,
    under --on-error quarantine too: now each element is read on its own, the broken
    ones named by their number and set aside, the others kept."""
    f = tmp_path / "reports.json"
    text = broken(json.dumps(_EXPORT, indent=1, ensure_ascii=False))
    f.write_text(text, encoding="utf-8", errors="surrogateescape")
    with pytest.raises(SchemaError) as e:
        load(store, f, "mastodon")
    assert (e.value.row, e.value.line) == (set_aside[0], None)
    report = load(store, f, "mastodon", on_error="quarantine")
    assert report.rows_set_aside == len(set_aside)
    assert report.rows_read == len(kept) + len(set_aside)
    assert rows(store, "SELECT report_id FROM reports ORDER BY 1") == [(k,) for k in kept]
    assert rows(store, 'SELECT "row" FROM quarantine ORDER BY 1') == [(r,) for r in set_aside]
    assert rows(store, "SELECT DISTINCT text FROM reports") == [(_EXPORT[0]["comment"],)]


def test_wrong_type_is_named(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    f.write_text("account_id,platform,followers\na1,x,12\na2,x,many\n")
    with pytest.raises(SchemaError) as e:
        load(store, f, table="accounts")
    assert (e.value.row, e.value.column) == (2, "followers")
    assert "not an integer" in str(e.value)


def test_missing_column_names_file_and_column(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "r.csv"
    f.write_text("report_id,reporter_id,ts,platform\nr1,u1,2021-03-01T10:00:00Z,x\n")
    with pytest.raises(SchemaError) as e:
        load(store, f, table="reports")
    assert e.value.column == "target_id"
    assert str(f) in str(e.value)


def test_naive_times_need_a_timezone(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "p.csv"
    f.write_text("post_id,account_id,platform,ts\np1,a,x,2021-03-01 15:00\n")
    with pytest.raises(SchemaError, match="--timezone"):
        load(store, f, table="posts")
    load(store, f, table="posts", timezone="Asia/Karachi")
    assert rows(store, "SELECT ts FROM posts") == [(datetime(2021, 3, 1, 10, tzinfo=UTC),)]


def test_options_are_checked(store: Store, tmp_path: Path) -> None:
    unnamed = tmp_path / "export.csv"
    unnamed.write_bytes((GENERIC / "posts.csv").read_bytes())
    with pytest.raises(ConfigError, match="--table"):
        load(store, unnamed)
    # A file named after its table needs no --table; this one maps its author column.
    assert load(store, GENERIC / "posts.csv", mapping={"account_id": "author"}).rows_read > 0
    with pytest.raises(ConfigError, match="author2"):
        load(store, GENERIC / "posts.csv", table="posts", mapping={"account_id": "author2"})
    with pytest.raises(UnknownComponentError):
        load(store, GENERIC / "posts.csv", format="tiktok")
    with pytest.raises(ConfigError, match="no such file"):
        load(store, tmp_path / "missing.csv", table="posts")
    odd = tmp_path / "posts.xlsx"
    odd.write_text("x")
    with pytest.raises(ConfigError, match="file type"):
        load(store, odd, table="posts")


def test_unreadable_file_is_a_schema_error(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "bad.parquet"
    f.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(SchemaError, match="cannot be read"):
        load(store, f, table="posts")


def test_encoding_errors_and_empty_files_are_named(store: Store, tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes(
        b"post_id,account_id,platform,ts,text\n"
        b"p1,a,x,2021-03-01T10:00:00Z,ok\n"
        b"p2,a,x,2021-03-01T10:00:00Z,caf\xe9\n"
    )
    with pytest.raises(SchemaError) as e:
        load(store, latin, table="posts")
    assert (e.value.row, e.value.line) == (2, 3)
    assert "not utf-8" in e.value.reason
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(SchemaError, match="empty file"):
        load(store, empty, table="posts")
    header = tmp_path / "header.csv"
    header.write_text("post_id,account_id,platform,ts\n")
    assert load(store, header, table="posts").rows_read == 0


def _reports_without_platform(tmp_path: Path) -> tuple[Path, Path]:
    accounts = tmp_path / "accounts.csv"
    accounts.write_text(
        "account_id,platform,kind\nr1,facebook,user\nr2,instagram,user\nboth,facebook,user\n"
        "both,instagram,user\n"
    )
    reports = tmp_path / "reports.csv"
    reports.write_text(
        "report_id,reporter_id,target_id,ts\n"
        "1,r1,t,2020-06-01T00:00:00Z\n2,r2,t,2020-06-01T00:01:00Z\n"
    )
    return accounts, reports


def test_reports_without_platform_take_their_reporters(store: Store, tmp_path: Path) -> None:
    accounts, reports = _reports_without_platform(tmp_path)
    load(store, accounts, table="accounts")
    report = load(store, reports, "reports")
    assert rows(store, "SELECT report_id, platform FROM reports ORDER BY 1") == [
        ("1", "facebook"),
        ("2", "instagram"),
    ]
    assert report.notes and "reporter_id's account" in report.notes[0]


def test_reports_without_platform_and_an_unknown_reporter_are_refused(
    store: Store, tmp_path: Path
) -> None:
    accounts, reports = _reports_without_platform(tmp_path)
    load(store, accounts, table="accounts")
    reports.write_text("report_id,reporter_id,target_id,ts\n1,both,t,2020-06-01T00:00:00Z\n")
    with pytest.raises(SchemaError, match="platform"):
        load(store, reports, "reports")


def test_platform_option_fills_reports_without_one(store: Store, tmp_path: Path) -> None:
    _, reports = _reports_without_platform(tmp_path)
    report = load(store, reports, "reports", platform="twitter")
    assert rows(store, "SELECT DISTINCT platform FROM reports") == [("twitter",)]
    assert report.notes == ("no platform column: --platform twitter for every row",)


def test_a_misspelt_setting_is_refused_with_the_settings_the_format_reads(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "shares.csv"
    path.write_text("object_id,account_id,content_id,timestamp_share\no,a,c,1600000000\n")
    with pytest.raises(
        ConfigError, match="--set objet: the coortweet format has these settings: object"
    ):
        load(store, path, "coortweet", settings={"objet": "share_url"})
    with pytest.raises(ConfigError, match="the generic format has no settings"):
        load(store, path, "generic", table="posts", settings={"objet": "share_url"})
    assert rows(store, "SELECT count(*) FROM actions") == [(0,)]


def test_times_that_are_no_times_are_set_aside_with_the_reason(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "posts.csv"
    path.write_text(
        "post_id,account_id,platform,ts\n"
        "ok,a,x,2020-06-01T00:00:00Z\n"
        "inf,a,x,inf\n"
        "offset,a,x,2020-06-01T00:00:00+99:00\n"
        "year0,a,x,0000-01-01T00:00:00Z\n"
        "year10000,a,x,10000-01-01T00:00:00Z\n"
        "epoch,a,x,9999999999\n"
    )
    report = load(store, path, table="posts", on_error="quarantine")
    assert report.rows_set_aside == 5
    assert rows(store, "SELECT post_id FROM posts") == [("ok",)]
    reasons = dict(
        rows(store, "SELECT json_extract_string(raw, '$.post_id'), reason FROM quarantine")
    )
    assert reasons["inf"].startswith("unparseable timestamp 'inf'")
    assert reasons["offset"].startswith("a UTC offset beyond 14 hours")
    for name in ("year0", "epoch"):
        assert reasons[name].endswith("is outside 1970-01-01 to 2100-01-01"), reasons[name]
    assert "year10000" in reasons


def test_posts_that_make_no_action_are_counted(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "posts.csv"
    path.write_text(
        "post_id,account_id,platform,ts,text\n"
        "p1,a1,x,2020-01-01T00:00:00Z,hello\n"
        "p2,a2,x,2020-01-01T00:01:00Z,\n"
        "p3,a3,x,2020-01-01T00:02:00Z,\n",
        encoding="utf-8",
    )
    report = load(store, path, table="posts")
    assert report.actions_added == 1
    assert report.notes == (
        "2 posts carry no link, hashtag, repost, reply, text or image, so they make no "
        "action and take part in no co-action",
    )


def test_a_file_set_aside_whole_adds_no_account(store: Store, tmp_path: Path) -> None:
    """Every row set aside (every timestamp bad): nothing is added, not even the
    accounts the rows name; an account a good row also names is kept (test_qut)."""
    path = tmp_path / "messages.csv"
    path.write_text(
        "message_id,user_id,username,repost_id,reply_id,message,timestamp,urls\n"
        "1,u1,alice,,,hello,yesterday,\n"
        "2,u2,bob,,,hi,tomorrow,\n",
        encoding="utf-8",
    )
    report = load(store, path, "qut", on_error="quarantine")
    assert report.rows_set_aside == report.rows_read == 2
    assert report.rows_added == {"posts": 0, "accounts": 0}
    assert rows(store, "SELECT count(*) FROM accounts") == [(0,)]


# from_posts as it was before links were split by count and the text's normal form was
# taken through a one-item list: the plain statement the faster one must equal.
def _from_posts_plain(posts: str) -> str:
    one = (
        "SELECT account_id AS actor_id, platform, '{kind}' AS kind, {obj} AS object_id, ts, "
        "post_id AS source_id FROM {src}"
    )

    def each(kind: str, items: str) -> str:
        unique = f"list_filter(list_distinct({items}), x -> x IS NOT NULL AND x <> '')"
        return one.format(kind=kind, obj=f"unnest({unique})", src=posts)

    links = f"""
        SELECT DISTINCT actor_id, platform, kind, object_id, ts, source_id FROM (
            SELECT x.account_id AS actor_id, x.platform, x.ts, x.post_id AS source_id,
                   n.share_url, n.share_domain
            FROM (SELECT account_id, platform, ts, post_id, unnest(urls) AS u FROM {posts}) x
            JOIN (SELECT u, concerted_url(u) AS share_url, concerted_domain(u) AS share_domain
                  FROM (SELECT DISTINCT unnest(urls) AS u FROM {posts})) n USING (u)
        ) UNPIVOT (object_id FOR kind IN (share_url, share_domain))
        WHERE object_id <> ''
    """
    texts = (
        f"(SELECT account_id, platform, ts, post_id, concerted_text(text) AS t "
        f"FROM {posts} WHERE repost_of IS NULL AND text IS NOT NULL)"
    )
    parts = [
        one.format(kind="repost", obj="repost_of", src=f"{posts} WHERE repost_of IS NOT NULL"),
        one.format(kind="reply", obj="reply_to", src=f"{posts} WHERE reply_to IS NOT NULL"),
        links,
        each("hashtag", "list_transform(hashtags, h -> lower(ltrim(h, '#')))"),
        each("image", "image_hashes"),
        one.format(kind="text", obj="md5(t)", src=f"{texts} WHERE t <> ''"),
    ]
    return " UNION ALL ".join(parts)


# Links chosen to collide: one page under several spellings, one host under several
# pages, tracking-only queries, no host, blanks and NULLs.
_LINKS = [
    "https://www.News.example/Story/?utm_source=fb&id=7",
    "http://news.example/Story?id=7#top",
    "HTTPS://NEWS.EXAMPLE:443/Story/?id=7&fbclid=x",
    "https://news.example/other",
    "news.example",
    "https://blog.example/a/",
    "http://blog.example/a",
    "//0",
    "?utm_source=x",
    "   ",
    "",
    None,
    "https://user@m.example.co.uk:80/x?y=1",
]
_TEXTS = ["Vote today", "vote   TODAY", "@someone", "https://t.co/x", "  ", "", None, "Café"]


@pytest.mark.parametrize("seed", range(6))
def test_actions_from_posts_equal_the_plain_statement(seed: int) -> None:
    """The derivation ingest runs gives exactly the rows of the plain statement, on
    random posts with colliding links and texts that normalise to nothing."""
    import random

    import duckdb

    from concerted.actions import SQL_MACROS, from_posts
    from concerted.schema import CONTRACTS

    draw = random.Random(seed)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(SQL_MACROS)
    con.execute(CONTRACTS["posts"].ddl())

    def some(pool: list[str | None], most: int) -> list[str | None] | None:
        if draw.random() < 0.2:
            return None
        return [draw.choice(pool) for _ in range(draw.randint(0, most))]

    posts = [
        (
            f"p{i}",
            f"a{draw.randint(1, 30)}",
            draw.choice(["twitter", "facebook"]),
            datetime(2024, 3, 1, tzinfo=UTC).replace(minute=draw.randint(0, 59)),
            draw.choice(_TEXTS),
            some(_LINKS, 4),
            some(["#Vote", "vote", "#", "", None, "#VOTE", "rally"], 3),
            draw.choice([None, f"p{draw.randint(0, 99)}"]),
            draw.choice([None, None, f"p{draw.randint(0, 99)}"]),
            some(["img1", "img2", "", None], 2),
        )
        for i in range(400)
    ]
    con.executemany(
        "INSERT INTO posts (post_id, account_id, platform, ts, text, urls, hashtags, "
        "repost_of, reply_to, image_hashes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        posts,
    )
    order = "ORDER BY ALL"
    new = con.sql(f"SELECT * FROM ({from_posts('posts')}) {order}").fetchall()
    plain = con.sql(f"SELECT * FROM ({_from_posts_plain('posts')}) {order}").fetchall()
    assert new == plain
    kinds = {row[2] for row in new}
    assert {"share_url", "share_domain", "hashtag", "text", "repost"} <= kinds
    # Several links of one post with one normal form: the case the DISTINCT is for.
    several = con.sql(
        "SELECT count(*) FROM posts WHERE len(list_distinct(list_transform(urls, "
        "u -> concerted_url(u)))) < len(list_filter(urls, u -> u IS NOT NULL))"
    ).fetchone()
    assert several is not None and several[0] > 0


def test_a_parquet_file_with_a_broken_page_is_a_schema_error(store: Store, tmp_path: Path) -> None:
    """A Parquet file is read through a view: a page that breaks while typing is
    named as the file's fault, and nothing is stored."""
    import duckdb

    good = tmp_path / "good.parquet"
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT 'p' || range AS post_id, 'a' || (range % 7) AS account_id, "
        "'twitter' AS platform, '2024-03-01T00:00:00Z' AS ts, md5(range::VARCHAR) AS text "
        f"FROM range(20000)) TO '{good}' (FORMAT parquet, COMPRESSION uncompressed)"
    )
    con.close()
    data = bytearray(good.read_bytes())
    # Overwrite the middle of the data pages (the footer, at the end, stays readable).
    middle = len(data) // 3
    data[middle : middle + 4096] = b"\xff" * 4096
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(bytes(data))
    with pytest.raises(SchemaError, match="cannot be read"):
        load(store, bad, table="posts")
    assert store.counts()["posts"] == 0
    assert load(store, good, table="posts").rows_added == {"posts": 20000}


def test_a_parquet_file_named_with_pattern_characters_is_read(store: Store, tmp_path: Path) -> None:
    """Such a file is read through a link removed after the scan, into a table."""
    import duckdb

    odd = tmp_path / "posts[1]*.parquet"
    plain = tmp_path / "plain.parquet"
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT 'p1' AS post_id, 'a1' AS account_id, 'twitter' AS platform, "
        f"'2024-03-01T00:00:00Z' AS ts, ['#x'] AS hashtags) TO '{plain}' (FORMAT parquet)"
    )
    con.close()
    plain.rename(odd)
    report = load(store, odd, table="posts")
    assert report.rows_added == {"posts": 1}
    assert report.actions_added == 1
