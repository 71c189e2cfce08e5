"""A path is a path: a file is read as named, never expanded as a pattern; and a
file is read whole, however long its lines."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from concerted.adapters.base import AdapterOptions
from concerted.ingest import IngestOptions, open_case

_OPTIONS = IngestOptions(format="generic", adapter=AdapterOptions(table="posts"))
_HEADER = "post_id,account_id,platform,ts,text\n"


def _posts(path: Path, *ids: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"{i},a-{i},x,2020-01-01T00:00:0{n}Z,text {i}\n" for n, i in enumerate(ids))
    path.write_text(_HEADER + rows, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["exp[12]/posts.csv", "*.csv", "exp?/posts.csv", "{a,b}.csv"])
def test_a_name_with_pattern_characters_reads_that_file_only(tmp_path: Path, name: str) -> None:
    # Files the name would match as a pattern, beside the named one.
    for other in ("exp1/posts.csv", "exp2/posts.csv", "a.csv", "b.csv", "other.csv"):
        _posts(tmp_path / other, f"decoy-{other.replace('/', '-')}")
    named = _posts(tmp_path / name, "wanted-1", "wanted-2")
    store, reports = open_case([named], None, _OPTIONS)
    with store:
        ids = {r[0] for r in store.con.execute("SELECT post_id FROM posts").fetchall()}
    assert ids == {"wanted-1", "wanted-2"}
    assert reports[0].rows_read == 2


def test_a_parquet_file_with_pattern_characters_reads_that_file_only(tmp_path: Path) -> None:
    table = pa.table(
        {
            "post_id": ["p"],
            "account_id": ["a"],
            "platform": ["x"],
            "ts": ["2020-01-01T00:00:00Z"],
        }
    )
    pq.write_table(table, tmp_path / "posts[1].parquet")
    pq.write_table(table.set_column(0, "post_id", pa.array(["decoy"])), tmp_path / "posts1.parquet")
    store, _ = open_case([tmp_path / "posts[1].parquet"], None, _OPTIONS)
    with store:
        assert store.con.execute("SELECT post_id FROM posts").fetchall() == [("p",)]


_JSON_ROW = '{"post_id": "%s", "account_id": "a", "platform": "x", "ts": "%s", "text": "%s"}\n'


@pytest.mark.parametrize(
    ("name", "text"),
    [
        # DuckDB's default line limit (2 MiB) failed the whole file on line 1.
        (
            "posts.csv",
            _HEADER + "p1,a1,x,2020-01-01T00:00:00Z,{long}\np2,a2,x,2020-01-01T00:00:01Z,hi\n",
        ),
        # JSON lines kept that limit after CSV lines lost it: a 3 MB line failed the
        # whole file, said to be longer than the 32 MiB that CSV lines may be.
        (
            "posts.jsonl",
            _JSON_ROW % ("p1", "2020-01-01T00:00:00Z", "{long}")
            + _JSON_ROW % ("p2", "2020-01-01T00:00:01Z", "hi"),
        ),
    ],
)
def test_a_line_over_two_megabytes_is_read(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text.replace("{long}", "a" * 3_000_000), encoding="utf-8")
    store, reports = open_case([path], None, _OPTIONS)
    with store:
        lengths = store.con.execute("SELECT length(text) FROM posts ORDER BY post_id").fetchall()
    assert lengths == [(3_000_000,), (2,)]
    assert reports[0].rows_read == 2


def test_an_output_that_is_a_link_to_nothing_is_one_clear_error(tmp_path: Path) -> None:
    from tests.test_cli import run

    posts = _posts(tmp_path / "posts.csv", "p1")
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "gone" / "away")
    result = run("analyze", str(posts), "-f", "generic", "--out", str(link))
    assert result.returncode == 1
    assert "is a link to" in result.stderr and "which does not exist" in result.stderr
    assert "Traceback" not in result.stderr
