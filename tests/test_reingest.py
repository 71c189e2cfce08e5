"""Ingest is idempotent: the same rows never make the same action twice, whatever the
options they were read with, and overlapping files make the case their union makes."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.adapters.base import AdapterOptions
from concerted.ingest import IngestOptions, ingest
from concerted.store import Store
from tests.budget import examples
from tests.conftest import FIXTURES

_POSTS = "post_id,account_id,platform,ts,text,urls\n"
_SHARES = "object_id,account_id,content_id,timestamp_share\n"


def _case(store: Store) -> dict[str, list[tuple[object, ...]]]:
    return {
        table: sorted(store.con.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
        for table in ("accounts", "posts", "actions")
    }


def _write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def test_reading_a_file_again_with_other_options_adds_no_action(tmp_path: Path) -> None:
    source = FIXTURES / "coortweet" / "long.csv"
    with Store(tmp_path / "case.duckdb", memory_limit="1GB") as store:
        ingest(store, [source], IngestOptions(format="coortweet"))
        once = _case(store)
        (again,) = ingest(store, [source], IngestOptions(format="coortweet", timezone="UTC"))
        assert again.actions_added == 0 and again.rows_duplicate == again.rows_read == 6
        assert _case(store) == once


_post = st.tuples(
    st.integers(0, 12), st.integers(0, 3), st.integers(0, 50), st.sampled_from(["", "a", "b"])
).map(
    lambda t: (
        f"p{t[0]},u{t[1]},x,2020-01-01T00:{t[2]:02d}:00Z,text {t[0]},"
        + (f"https://e.org/{t[3]}" if t[3] else "")
    )
)
_share = st.tuples(st.integers(0, 4), st.integers(0, 3), st.integers(0, 9)).map(
    lambda t: f"o{t[0]},u{t[1]},c{t[2]},{1623880000 + 10 * t[2]}"
)


@settings(max_examples=examples(25), deadline=None)
@given(
    kind=st.sampled_from(["posts", "shares"]),
    first=st.lists(st.integers(0, 11), max_size=8),
    second=st.lists(st.integers(0, 11), max_size=8),
    timezones=st.tuples(st.sampled_from([None, "UTC"]), st.sampled_from([None, "UTC"])),
    data=st.data(),
)
def test_overlapping_files_make_the_case_their_union_makes(
    kind: str,
    first: list[int],
    second: list[int],
    timezones: tuple[str | None, str | None],
    data: st.DataObject,
) -> None:
    """Files A and B drawn from one pool of distinct rows (each row once per file):
    ingesting A then B, each with its own options, gives the case that one file of
    the rows of A and B gives."""
    pool = data.draw(st.lists(_post if kind == "posts" else _share, min_size=12, max_size=12))
    # One row per key, as one platform's export holds it.
    pool = list(dict.fromkeys(pool))
    if kind == "posts":
        pool = list({r.split(",")[0]: r for r in pool}.values())
    a = [pool[i] for i in dict.fromkeys(i % len(pool) for i in first)]
    b = [pool[i] for i in dict.fromkeys(i % len(pool) for i in second)]
    union = list(dict.fromkeys(a + b))
    header = _POSTS if kind == "posts" else _SHARES

    def options(timezone: str | None) -> IngestOptions:
        if kind == "posts":
            return IngestOptions(
                format="generic", adapter=AdapterOptions(table="posts"), timezone=timezone
            )
        return IngestOptions(format="coortweet", timezone=timezone)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = [_write(folder / n, header, rows) for n, rows in (("a.csv", a), ("b.csv", b))]
        together = _write(folder / "union.csv", header, union)
        with Store(folder / "one.duckdb", memory_limit="1GB") as one:
            for path, timezone in zip(files, timezones, strict=True):
                if path.stat().st_size > len(header):
                    ingest(one, [path], options(timezone))
            apart = _case(one)
        with Store(folder / "two.duckdb", memory_limit="1GB") as two:
            if union:
                ingest(two, [together], options(None))
            whole = _case(two)
    assert apart == whole
