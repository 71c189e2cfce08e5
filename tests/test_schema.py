"""validate(): every contract type from text and typed input, and every error it names."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import duckdb
import pytest

from concerted.errors import ConfigError, SchemaError
from concerted.schema import CONTRACTS, sql_literal, validate


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")
    return c


def typed(
    con: duckdb.DuckDBPyConnection, table: str, raw_sql: str, **kw: object
) -> list[dict[str, Any]]:
    con.execute(f"CREATE OR REPLACE TEMP TABLE raw AS {raw_sql}")
    v = validate(con, "raw", CONTRACTS[table], file="in.csv", into="t", **kw)  # type: ignore[arg-type]
    cur = con.execute("SELECT * FROM t ORDER BY _row")
    names = [d[0] for d in cur.description or []]
    out = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    assert v.rows == len(out)
    assert v.bad_rows == sum(1 for r in out if r["_error"] is not None)
    return out


POSTS = "SELECT * FROM (VALUES {}) AS v(_row, post_id, account_id, platform, ts)"


def test_timestamps_every_accepted_form(con: duckdb.DuckDBPyConnection) -> None:
    values = ", ".join(
        f"({i}, 'p{i}', 'a', 'x', '{ts}')"
        for i, ts in enumerate(
            [
                "2021-03-01T10:00:00Z",
                "2021-03-01 15:00:00+05:00",
                "2021-03-01T10:00:00.250Z",
                "1614592800",
                "1614592800.5",
                "2021-03-01 10:00:00 UTC",
                "2021-03-01 07:00:00 -03",
            ],
            start=1,
        )
    )
    out = typed(con, "posts", POSTS.format(values))
    assert [r["_error"] for r in out] == [None] * 7
    base = datetime(2021, 3, 1, 10, tzinfo=UTC)
    assert out[0]["ts"] == base
    assert out[1]["ts"] == base
    assert out[2]["ts"].microsecond == 250_000
    assert out[3]["ts"] == base
    assert out[4]["ts"].microsecond == 500_000
    assert out[5]["ts"] == base
    assert out[6]["ts"] == base


def test_naive_timestamps_need_a_zone(con: duckdb.DuckDBPyConnection) -> None:
    raw = POSTS.format("(1, 'p1', 'a', 'x', '2021-03-01 15:00:00')")
    out = typed(con, "posts", raw)
    assert out[0]["_error_column"] == "ts"
    assert "--timezone" in out[0]["_error"]
    out = typed(con, "posts", raw, timezone="Asia/Karachi")
    assert out[0]["_error"] is None
    assert out[0]["ts"] == datetime(2021, 3, 1, 10, tzinfo=UTC)


def test_naive_typed_timestamps_need_a_zone(con: duckdb.DuckDBPyConnection) -> None:
    raw = (
        "SELECT 1 AS _row, 'p' AS post_id, 'a' AS account_id, 'x' AS platform, "
        "TIMESTAMP '2021-03-01 10:00:00' AS ts"
    )
    assert "--timezone" in typed(con, "posts", raw)[0]["_error"]
    assert typed(con, "posts", raw, timezone="UTC")[0]["ts"] == datetime(2021, 3, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("garbage", "unparseable timestamp 'garbage'"),
        ("2021-02-31T10:00:00Z", "unparseable timestamp"),
        ("99999999999999", "unparseable timestamp"),
    ],
)
def test_bad_timestamps_are_named(con: duckdb.DuckDBPyConnection, value: str, reason: str) -> None:
    out = typed(con, "posts", POSTS.format(f"(7, 'p', 'a', 'x', '{value}')"), timezone="UTC")
    assert out[0]["_row"] == 7
    assert out[0]["_error_column"] == "ts"
    assert reason in out[0]["_error"]


def test_missing_required_value(con: duckdb.DuckDBPyConnection) -> None:
    out = typed(con, "posts", POSTS.format("(1, '  ', 'a', 'x', '2021-03-01T10:00:00Z')"))
    assert (out[0]["_error_column"], out[0]["_error"]) == ("post_id", "missing value")


def test_missing_required_column_names_the_column(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TEMP TABLE raw AS SELECT 1 AS _row, 'p' AS post_id, 'x' AS platform")
    with pytest.raises(SchemaError) as e:
        validate(con, "raw", CONTRACTS["posts"], file="in.csv", into="t")
    assert e.value.column == "account_id"
    assert e.value.row is None
    assert "in.csv" in str(e.value)


def test_mapping_renames_and_unknown_target_is_refused(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "CREATE TEMP TABLE raw AS SELECT 1 AS _row, 'p' AS id, 'a' AS author, 'x' AS platform, "
        "'2021-03-01T10:00:00Z' AS ts"
    )
    validate(
        con,
        "raw",
        CONTRACTS["posts"],
        file="f",
        into="t",
        mapping={"post_id": "id", "account_id": "author"},
    )
    assert con.sql("SELECT post_id, account_id FROM t").fetchall() == [("p", "a")]
    with pytest.raises(ConfigError):
        validate(con, "raw", CONTRACTS["posts"], file="f", into="t", mapping={"nope": "id"})


def test_lists_in_every_written_form(con: duckdb.DuckDBPyConnection) -> None:
    forms = [
        ("https://a.org/x https://b.org/y", "#a  b"),
        ("[a.org, b.org]", "[a, b]"),
        ("['a.org', 'b.org']", "['a', 'b']"),
        ('["a.org", "b.org"]', '["a", "b"]'),
        # links may hold commas, so written out they are separated by spaces only
        ("news.example/7,123,story.html", "a,b"),
        ("[]", "[]"),
        ("", ""),
    ]
    values = ", ".join(
        f"({i}, 'p{i}', 'a', 'x', '1614592800', {sql_literal(u)}, {sql_literal(h)})"
        for i, (u, h) in enumerate(forms)
    )
    raw = (
        f"SELECT * FROM (VALUES {values}) "
        "AS v(_row, post_id, account_id, platform, ts, urls, hashtags)"
    )
    out = typed(con, "posts", raw)
    assert [r["urls"] for r in out] == [
        ["https://a.org/x", "https://b.org/y"],
        ["a.org", "b.org"],
        ["a.org", "b.org"],
        ["a.org", "b.org"],
        ["news.example/7,123,story.html"],
        [],
        None,
    ]
    assert [r["hashtags"] for r in out] == [
        ["#a", "b"],
        ["a", "b"],
        ["a", "b"],
        ["a", "b"],
        ["a", "b"],
        [],
        None,
    ]


def test_native_lists_and_integers(con: duckdb.DuckDBPyConnection) -> None:
    raw = (
        "SELECT 1 AS _row, 12 AS account_id, 'X' AS platform, ['t1', 't2'] AS hashtags, "
        "'1,5' AS followers"
    )
    out = typed(con, "accounts", raw)
    assert out[0]["account_id"] == "12"
    assert out[0]["platform"] == "x"
    assert out[0]["kind"] == "user"
    assert (out[0]["_error_column"], out[0]["_error"]) == ("followers", "not an integer: '1,5'")
    raw = "SELECT 1 AS _row, 12.0 AS account_id, 'x' AS platform, '1500.0' AS followers"
    out = typed(con, "accounts", raw)
    assert (out[0]["account_id"], out[0]["followers"], out[0]["_error"]) == ("12", 1500, None)


def test_choices_are_enforced_case_insensitively(con: duckdb.DuckDBPyConnection) -> None:
    raw = (
        "SELECT * FROM (VALUES (1, 'r1', 'u', 't', 'Post', 'UPHELD'), (2, 'r2', 'u', 't', "
        "'account', 'maybe')) AS v(_row, report_id, reporter_id, target_id, target_kind, "
        "outcome)"
    )
    con.execute(f"CREATE TEMP TABLE raw0 AS {raw}")
    raw = "SELECT *, 'x' AS platform, '1614592800' AS ts FROM raw0"
    out = typed(con, "reports", raw)
    assert (out[0]["target_kind"], out[0]["outcome"], out[0]["_error"]) == ("post", "upheld", None)
    assert out[1]["_error_column"] == "outcome"
    assert "expected one of upheld, rejected" in out[1]["_error"]


def test_unknown_timezone_is_a_config_error(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TEMP TABLE raw AS SELECT 1 AS _row")
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        validate(con, "raw", CONTRACTS["roles"], file="f", into="t", timezone="Mars/Olympus")


def test_every_contract_has_documented_columns() -> None:
    for contract in CONTRACTS.values():
        assert contract.doc
        for column in contract.columns:
            assert column.doc, f"{contract.name}.{column.name} has no doc"
        assert set(contract.key) <= set(contract.names)
