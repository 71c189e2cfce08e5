"""The run's events written to Parquet as each stage finds them (``analysis._Events``)
give the file the events table the stages filled before gave: the same rows, in the
same order, typed by the evidence contract. At 10^7 actions that table was 66.5
million rows, most of the analysis's spill."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.analysis import _empty, _Events
from concerted.schema import EVIDENCE_CONTRACTS, arrow_schema
from tests.budget import examples

_NAMES = EVIDENCE_CONTRACTS["events"].names

_row = st.tuples(
    st.sampled_from(["co_action", "synchrony", "creation_burst"]),
    st.sampled_from(["repost", "hashtag", "synchrony"]),
    st.sampled_from(["x", "facebook"]),
    st.text(max_size=4),
    st.sampled_from(["x", "facebook"]),
    st.text(max_size=4),
    st.none() | st.text(max_size=6),
    st.integers(0, 2**40),
    st.integers(0, 2**40),
    st.none() | st.text(max_size=4),
    st.none() | st.text(max_size=4),
)


def _query(con: duckdb.DuckDBPyConnection, rows: list[tuple[object, ...]], zoned: bool) -> str:
    """A relation of ``rows`` as a stage might give it: its times with or without a
    zone, its columns in another order than the contract's."""
    name = f"rows_{len(con.sql('SELECT * FROM duckdb_tables()').fetchall())}"
    time = "TIMESTAMPTZ" if zoned else "TIMESTAMP"
    con.execute(
        f"CREATE TEMP TABLE {name} (detector VARCHAR, layer VARCHAR, platform_1 VARCHAR, "
        "account_1 VARCHAR, platform_2 VARCHAR, account_2 VARCHAR, object_id VARCHAR, "
        f"us_1 BIGINT, us_2 BIGINT, source_1 VARCHAR, source_2 VARCHAR)"
    )
    if rows:
        con.executemany(f"INSERT INTO {name} VALUES ({', '.join('?' * 11)})", rows)
    return (
        f"SELECT source_2, source_1, make_timestamp(us_2)::{time} AS ts_2, "
        f"make_timestamp(us_1)::{time} AS ts_1, object_id, account_2, platform_2, "
        f"account_1, platform_1, layer, detector FROM {name}"
    )


@settings(max_examples=examples(40), deadline=None)
@given(parts=st.lists(st.tuples(st.lists(_row, max_size=6), st.booleans()), min_size=0, max_size=4))
def test_the_parts_make_the_table_the_stages_filled(
    parts: list[tuple[list[tuple[object, ...]], bool]],
) -> None:
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"CREATE TEMP TABLE before AS {_empty('events')}")
        queries = [_query(con, rows, zoned) for rows, zoned in parts]
        for query in queries:
            con.execute(f"INSERT INTO before SELECT {', '.join(_NAMES)} FROM ({query})")
        with tempfile.TemporaryDirectory() as tmp:
            events = _Events(Path(tmp))
            for query in queries:
                events.add(con, query)
            path = Path(tmp) / "events.parquet"
            events.write(con, path)
            written = pq.read_table(path)
            wanted = arrow_schema(EVIDENCE_CONTRACTS["events"])
            assert (written.schema.names, written.schema.types) == (wanted.names, wanted.types)
            assert (
                written.to_pylist()
                == con.sql("SELECT * FROM before").fetch_arrow_table().to_pylist()
            )
            assert sorted(p.name for p in Path(tmp).iterdir()) == ["events.parquet"]


def test_a_single_part_is_the_file_as_written(tmp_path: Path) -> None:
    """One part is moved into place, not read and written again."""
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        events = _Events(tmp_path)
        events.add(con, _query(con, [("d", "l", "x", "a", "x", "b", "o", 1, 2, "s", "t")], True))
        (part,) = events.parts
        inode = part.stat().st_ino
        events.write(con, tmp_path / "events.parquet")
        assert not part.exists()
        assert (tmp_path / "events.parquet").stat().st_ino == inode
