"""Pseudonymisation at ingest: every identifier hashed, consistently, nothing raw left."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.adapters.base import AdapterOptions
from concerted.errors import ConfigError
from concerted.ingest import IngestOptions, ingest
from concerted.privacy import Pseudonymiser
from concerted.store import Store
from tests.budget import examples
from tests.conftest import FIXTURES, rows

KEY = b"a test key that is long enough"


@settings(max_examples=examples(200), deadline=None)
@given(st.text(min_size=1, max_size=60))
def test_sql_and_python_tokens_agree(value: str) -> None:
    p = Pseudonymiser(KEY)
    con = duckdb.connect()
    (sql_token,) = con.execute(f"SELECT {p.sql('?')}", [value]).fetchone() or (None,)
    assert sql_token == p.token(value)
    assert p.token(value) == hmac.new(KEY, value.encode(), hashlib.sha256).hexdigest()[:20]


def test_short_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 16"):
        Pseudonymiser(b"short")
    f = tmp_path / "k"
    f.write_bytes(KEY + b"\n")
    assert Pseudonymiser.from_file(f).token("x") == Pseudonymiser(KEY).token("x")


def _ingest(store: Store, path: Path, key: bytes | None, **adapter: object) -> None:
    ingest(
        store,
        [path],
        IngestOptions(format="generic", adapter=AdapterOptions(**adapter)),  # type: ignore[arg-type]
        pseudonymiser=Pseudonymiser(key) if key else None,
    )


def test_every_identifier_is_hashed_and_joins_still_work(store: Store) -> None:
    p = Pseudonymiser(KEY)
    posts = FIXTURES / "generic" / "posts.csv"
    _ingest(store, posts, KEY, table="posts", mapping={"account_id": "author"})
    _ingest(store, FIXTURES / "generic" / "reports.jsonl", KEY, table="reports")
    assert rows(
        store,
        "SELECT post_id, account_id FROM posts WHERE post_id = ?".replace(
            "?", f"'{p.token('p1')}'"
        ),
    ) == [(p.token("p1"), p.token("a1"))]
    assert rows(store, "SELECT mentions FROM posts WHERE mentions IS NOT NULL") == [
        ([p.token("a2")],),
        ([p.token("a3")],),
    ]
    raw_ids = {"p1", "p2", "p3", "p4", "a1", "a2", "a3", "c9", "p9", "r1", "r2", "r3"}
    for table in ("posts", "reports", "actions"):
        cur = store.sql(f"SELECT * FROM {table}")
        for row in cur.fetchall():
            for value in row:
                items = value if isinstance(value, list) else [value]
                assert not raw_ids & {str(v) for v in items}, (table, row)
    # a repost's object is the reposted post's token: co-action still lines up
    assert rows(store, "SELECT object_id FROM actions WHERE kind = 'repost'") == [(p.token("p1"),)]
    # content objects (links, hashtags) are not identifiers and stay readable
    assert ("vote",) in rows(store, "SELECT object_id FROM actions WHERE kind = 'hashtag'")


def test_a_case_keeps_one_key(store: Store, tmp_path: Path) -> None:
    _ingest(store, FIXTURES / "generic" / "roles.json", KEY, table="roles")
    with pytest.raises(ConfigError, match="not the one"):
        _ingest(
            store,
            FIXTURES / "generic" / "accounts.tsv",
            b"another key, long enough",
            table="accounts",
        )
    with pytest.raises(ConfigError, match="pseudonymises"):
        _ingest(store, FIXTURES / "generic" / "accounts.tsv", None, table="accounts")
    with Store(tmp_path / "raw.duckdb") as raw:
        _ingest(raw, FIXTURES / "generic" / "roles.json", None, table="roles")
        with pytest.raises(ConfigError, match="not pseudonymised"):
            _ingest(raw, FIXTURES / "generic" / "accounts.tsv", KEY, table="accounts")


def test_quarantine_keeps_no_raw_row_in_a_pseudonymised_case(store: Store) -> None:
    ingest(
        store,
        [FIXTURES / "generic" / "posts_broken.csv"],
        IngestOptions(
            format="generic", adapter=AdapterOptions(table="posts"), on_error="quarantine"
        ),
        pseudonymiser=Pseudonymiser(KEY),
    )
    assert rows(store, "SELECT count(*), count(raw) FROM quarantine") == [(3, 0)]


def _raw_ids(path: Path, columns: tuple[str, ...]) -> set[str]:
    """The values of ``columns`` in a CSV file, or of JSON paths in an API document."""
    con = duckdb.connect()
    if path.suffix == ".json":
        con.execute(
            "CREATE TABLE raw AS SELECT unnest(json_extract(json, '$.result.posts[*]')) AS p "
            f"FROM read_json_objects('{path}', format = 'unstructured')"
        )
        picks = [f"json_extract_string(p, '{c}')" for c in columns]
    else:
        con.register("raw", con.read_csv(str(path), all_varchar=True))
        picks = [f'"{c}"' for c in columns]
    found = {str(v) for pick in picks for (v,) in con.execute(f"SELECT {pick} FROM raw").fetchall()}
    con.close()
    return found - {"None", ""}


@pytest.mark.parametrize(
    ("fmt", "files", "columns"),
    [
        (
            "twitter-io",
            ("example_tweets_csv_hashed.csv", "example_users_csv_hashed.csv"),
            (
                "tweetid",
                "userid",
                "in_reply_to_userid",
                "in_reply_to_tweetid",
                "quoted_tweet_tweetid",
                "retweet_userid",
                "retweet_tweetid",
            ),
        ),
        ("crowdtangle", ("export_page.csv",), ("Facebook Id", "User Name")),
        ("crowdtangle", ("api_posts.json",), ("$.platformId", "$.account.id", "$.account.handle")),
    ],
)
def test_no_raw_identifier_survives_anywhere_in_a_pseudonymised_case(
    store: Store, fmt: str, files: tuple[str, ...], columns: tuple[str, ...]
) -> None:
    """Every table of the case, ``extra`` included, is searched for every raw id."""
    folder = FIXTURES / fmt.replace("-", "_")
    first = folder / files[0]
    wanted = _raw_ids(first, columns)
    assert wanted
    ingest(
        store,
        [folder / f for f in files],
        IngestOptions(format=fmt),
        pseudonymiser=Pseudonymiser(KEY),
    )
    tables = [
        name
        for (name,) in store.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
        ).fetchall()
    ]
    found: dict[str, list[str]] = {}
    for table in tables:
        text = "\n".join(
            str(row) for row in store.con.execute(f'SELECT * FROM "{table}"').fetchall()
        )
        leaked = sorted(i for i in wanted if i in text)
        if leaked:
            found[table] = leaked
    assert not found
