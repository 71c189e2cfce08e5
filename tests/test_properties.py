"""Property tests of the generic adapter: valid tables survive ingest unchanged in every
file type; corrupted ones raise SchemaError naming the row, never another exception."""

from __future__ import annotations

import csv
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concerted.errors import SchemaError
from concerted.store import Store
from tests.budget import examples
from tests.conftest import load, rows

COLUMNS = ["post_id", "account_id", "platform", "ts", "text", "urls", "hashtags", "repost_of"]
_token = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-:/.", min_size=1, max_size=12)
_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip() == s)
_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))


@st.composite
def post_tables(draw: st.DrawFn) -> list[dict[str, Any]]:
    ids = draw(st.lists(_token, min_size=1, max_size=15, unique=True))
    return [
        {
            "post_id": post_id,
            "account_id": draw(_token),
            "platform": draw(st.sampled_from(["facebook", "instagram", "twitter"])),
            "ts": draw(_times),
            "text": draw(st.none() | _text),
            "urls": draw(st.none() | st.lists(_token, min_size=1, max_size=3)),
            "hashtags": draw(st.none() | st.lists(_token, min_size=1, max_size=3)),
            "repost_of": draw(st.none() | st.sampled_from(ids)),
        }
        for post_id in ids
    ]


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def write(table: list[dict[str, Any]], kind: str, directory: Path) -> Path:
    path = directory / f"posts.{kind}"
    if kind == "csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(COLUMNS)
            for r in table:
                w.writerow(
                    [
                        json.dumps(r[c])
                        if c in ("urls", "hashtags") and r[c] is not None
                        else _iso(r[c])
                        if c == "ts"
                        else ""
                        if r[c] is None
                        else r[c]
                        for c in COLUMNS
                    ]
                )
    elif kind == "jsonl":
        with path.open("w", encoding="utf-8") as fh:
            for r in table:
                fh.write(json.dumps({**r, "ts": _iso(r["ts"])}, ensure_ascii=False) + "\n")
    else:
        pq.write_table(pa.Table.from_pylist(table), path)
    return path


def stored(store: Store) -> list[dict[str, Any]]:
    got = rows(store, f"SELECT {', '.join(COLUMNS)} FROM posts ORDER BY post_id")
    return [dict(zip(COLUMNS, r, strict=True)) for r in got]


@pytest.mark.slow
@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(table=post_tables(), kind=st.sampled_from(["csv", "jsonl", "parquet"]))
def test_valid_tables_survive_ingest_unchanged(table: list[dict[str, Any]], kind: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write(table, kind, Path(tmp))
        with Store(Path(tmp) / "case.duckdb", memory_limit="512MB") as store:
            report = load(store, path, table="posts")
            assert report.rows_read == len(table)
            assert report.rows_added == {"posts": len(table)}
            assert stored(store) == sorted(table, key=lambda r: r["post_id"])


def _corrupt(lines: list[str], row: int, how: str) -> list[str]:
    fields = next(csv.reader([lines[row]]))
    if how == "time":
        fields[3] = "not-a-time"
    elif how == "id":
        fields[0] = ""
    elif how == "extra field":
        fields.append("surplus")
    elif how == "missing field":
        fields = fields[:3]
    elif how == "epoch overflow":
        fields[3] = "1" + "0" * 15
    out = list(lines)
    buf = _Line()
    csv.writer(buf).writerow(fields)
    out[row] = buf.value.rstrip("\r\n")
    return out


class _Line:
    value = ""

    def write(self, s: str) -> int:
        self.value += s
        return len(s)


@pytest.mark.slow
@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    table=post_tables(),
    how=st.sampled_from(["time", "id", "extra field", "missing field", "epoch overflow"]),
    data=st.data(),
)
def test_corruption_raises_schema_error_naming_the_row(
    table: list[dict[str, Any]], how: str, data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clean = write(table, "csv", Path(tmp))
        # records are re-quoted one per line, so that record N is line N + 1
        with clean.open(newline="", encoding="utf-8") as fh:
            records = [_quote_row(r) for r in csv.reader(fh)]
        row = data.draw(st.integers(min_value=1, max_value=len(records) - 1))
        bad = Path(tmp) / "bad.csv"
        bad.write_text("\n".join(_corrupt(records, row, how)) + "\n", encoding="utf-8")
        with Store(Path(tmp) / "case.duckdb", memory_limit="512MB") as store:
            with pytest.raises(SchemaError) as e:
                load(store, bad, table="posts")
            assert e.value.row == row
            assert store.counts()["posts"] == 0


def _quote_row(fields: list[str]) -> str:
    return ",".join('"' + f.replace('"', '""') + '"' for f in fields)
