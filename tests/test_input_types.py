"""A Parquet column of an unexpected type is checked before it is cast: NaN ids are
set aside with their reason, bytes are text where they are UTF-8, and a column holding
several values a row is refused by name."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from concerted.adapters.base import AdapterOptions
from concerted.errors import SchemaError
from concerted.ingest import IngestOptions, open_case


def _options(on_error: str = "quarantine") -> IngestOptions:
    return IngestOptions(
        format="generic",
        adapter=AdapterOptions(table="posts"),
        on_error=on_error,  # type: ignore[arg-type]
    )


def _posts(path: Path, **columns: pa.Array[Any]) -> Path:
    n = len(next(iter(columns.values())))
    base = {
        "post_id": pa.array([f"p{i}" for i in range(n)]),
        "account_id": pa.array([f"a{i}" for i in range(n)]),
        "platform": pa.array(["x"] * n),
        "ts": pa.array(["2020-01-01T00:00:00Z"] * n),
    }
    pq.write_table(pa.table({**base, **columns}), path)
    return path


def _reasons(path: Path) -> tuple[list[str], list[str]]:
    store, _ = open_case([path], None, _options())
    with store:
        kept = [r[0] for r in store.con.execute("SELECT post_id FROM posts ORDER BY 1").fetchall()]
        why = [
            r[0] for r in store.con.execute("SELECT reason FROM quarantine ORDER BY row").fetchall()
        ]
    return kept, why


def test_nan_and_infinite_ids_are_set_aside_not_a_crash(tmp_path: Path) -> None:
    path = _posts(tmp_path / "posts.parquet", post_id=pa.array([1.0, float("nan"), float("inf")]))
    kept, why = _reasons(path)
    assert kept == ["1"]
    assert why == ["not a finite number", "not a finite number"]


def test_bytes_are_text_where_they_are_utf8(tmp_path: Path) -> None:
    path = _posts(tmp_path / "posts.parquet", post_id=pa.array([b"p1", b"\xff\xfe"]))
    kept, why = _reasons(path)
    assert kept == ["p1"]
    assert why == ["bytes that are not UTF-8 text"]


@pytest.mark.parametrize(
    "column",
    [
        pa.array([{"a": 1}, {"a": 2}]),
        pa.array([[1, 2], [3]]),
        pa.array([dt.time(1, 2), dt.time(3, 4)]),
    ],
    ids=["struct", "list", "time"],
)
def test_a_column_of_several_values_or_no_date_is_named(
    tmp_path: Path, column: pa.Array[Any]
) -> None:
    name = "account_id" if not pa.types.is_time(column.type) else "ts"
    path = _posts(tmp_path / "posts.parquet", **{name: column})
    if pa.types.is_time(column.type):
        kept, why = _reasons(path)
        assert kept == [] and all(w.startswith("unparseable timestamp") for w in why)
        return
    with pytest.raises(SchemaError, match=f"column '{name}' holds") as error:
        open_case([path], None, _options("raise"))
    assert error.value.column == name


def test_no_column_name_can_change_the_sql_that_runs(tmp_path: Path) -> None:
    """Names with quotes, brackets and SQL in them are columns like any other: kept in
    ``extra`` by name, never run."""
    names = ['we"ird', "it's", "a]b[c", "x); DROP TABLE posts; --", "ہ name"]
    header = "post_id,account_id,platform,ts," + ",".join(
        '"' + n.replace('"', '""') + '"' for n in names
    )
    path = tmp_path / "posts.csv"
    path.write_text(
        header + "\np1,a1,x,2020-01-01T00:00:00Z," + ",".join(f"v{i}" for i in range(5)) + "\n",
        encoding="utf-8",
    )
    store, reports = open_case([path], None, _options("raise"))
    with store:
        (extra,) = store.con.execute("SELECT extra FROM posts").fetchone() or ("",)
        assert store.con.execute("SELECT count(*) FROM posts").fetchone() == (1,)
    assert json.loads(extra) == {n: f"v{i}" for i, n in enumerate(names)}
    assert reports[0].rows_read == 1


@pytest.mark.parametrize("on_error", ["raise", "quarantine"])
@pytest.mark.parametrize("fmt", ["mastodon", "synapse", "lemmy"])
def test_a_json_document_that_is_not_utf8_is_refused_with_where(
    tmp_path: Path, fmt: str, on_error: str
) -> None:
    """DuckDB's JSON reader quotes the file's first bytes in its error, and bytes that
    are not UTF-8 there made the error itself unreadable: a UnicodeDecodeError
    traceback (the fuzzer's first campaign over the moderation tools' exports). Now the
    file is refused, the first such byte named."""
    path = tmp_path / f"{fmt}.json"
    path.write_bytes(b"\xe9[\n" + b'{"id": "17"}]\n')
    options = IngestOptions(format=fmt, on_error=on_error)  # type: ignore[arg-type]
    with pytest.raises(SchemaError) as e:
        open_case([path], None, options)
    assert "not UTF-8 text (the first at byte 0)" in str(e.value)
    assert str(path) in str(e.value)


@pytest.mark.parametrize("on_error", ["raise", "quarantine"])
@pytest.mark.parametrize("name", ["posts.csv", "posts.csv.gz"])
def test_a_header_that_is_not_utf8_is_refused_on_line_one(
    tmp_path: Path, name: str, on_error: str
) -> None:
    """DuckDB's CSV reader passed over such a header line without a word and took the
    first record for the header: the file was then refused for a "missing column
    'post_id'; the input has: extra" (its columns named p1, a1, ..., all of them
    unknown), its real fault unsaid (the fuzzer's inputs with a byte flipped in the
    header). A spreadsheet saved in Latin-1 with an accent in a column's name is such a
    file."""
    text = "post_id,account_id,platform,ts,catégorie\np1,a1,x,2020-01-01T00:00:00Z,n\n"
    data = text.encode("latin-1")
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    with pytest.raises(SchemaError) as e:
        open_case([path], None, _options(on_error))
    assert (e.value.line, e.value.row) == (1, None)
    assert e.value.reason.startswith("the header line holds bytes that are not UTF-8 (the first")
    assert f"at byte {text.index('é')})" in e.value.reason


@pytest.mark.parametrize("on_error", ["raise", "quarantine"])
@pytest.mark.parametrize(
    ("text", "missing", "has"),
    [
        ("acco\n", "account_id", "'acco'"),
        ("account_id\tplatfrom\na1\tx\n", "platform", "'account_id', 'platfrom'"),
        ("post_id,author,platform,ts{\np1,a1,x,0\n", "account_id", "'author', 'platform', 'ts{'"),
    ],
)
def test_a_missing_column_is_named_beside_the_file_s_own(
    tmp_path: Path, text: str, missing: str, has: str, on_error: str
) -> None:
    """A required column the file lacks is named beside the columns the file has, as
    its header spells them: the fuzzer's header cut to "acco" was refused with "the
    input has: extra", the name of the column its unknown columns are folded into."""
    table = "accounts" if text.startswith("acc") else "posts"
    path = tmp_path / f"{table}.{'tsv' if table == 'accounts' else 'csv'}"
    path.write_text(text)
    options = IngestOptions(
        format="generic",
        adapter=AdapterOptions(table=table),
        on_error=on_error,  # type: ignore[arg-type]
    )
    with pytest.raises(SchemaError) as e:
        open_case([path], None, options)
    assert e.value.column == missing
    assert e.value.reason.startswith(f"missing column {missing!r}, required for ")
    assert has in e.value.reason and "extra" not in e.value.reason
