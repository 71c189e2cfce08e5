"""qut_edges against the coordination-network-toolkit itself, run end to end.

The toolkit runs in a subprocess, as its command line does (it starts its own worker
processes). Its edges are read from the network table of its SQLite file, without
self loops, exactly as its ``export_network`` selects them: the CSV export of 1.5.2
fails (``output_gephi_csv() got an unexpected keyword argument 'n_messages'``).
"""

from __future__ import annotations

import importlib.util
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import duckdb
import pytest

from concerted.compat import qut_edges
from concerted.store import Store
from tests.conftest import SHARED_DATA, load

# Each test starts the toolkit in subprocesses; together they take several seconds.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("coordination_network_toolkit") is None,
        reason="coordination-network-toolkit (a dev dependency) is not installed",
    ),
]

RUSSIAN = SHARED_DATA / "coortweet" / "russian_coord_tweets.parquet"
TOOLKIT = "from coordination_network_toolkit.__main__ import main; main()"
TABLES = {
    "co_retweet": "co_retweet_network",
    "co_link": "co_link_network",
    "co_reply": "co_reply_network",
}

Edges = set[tuple[str, str, int]]


def toolkit(database: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-c", TOOLKIT, str(database), *args],
        check=True,
        capture_output=True,
        cwd=database.parent,
    )


def toolkit_edges(database: Path, network: str, *, window: int, min_weight: int) -> Edges:
    """Compute one network with the toolkit and read its edges back, self loops left out."""
    toolkit(
        database,
        "compute",
        network,
        "--time_window",
        str(window),
        "--min_edge_weight",
        str(min_weight),
        "--n_cpus",
        "2",
    )
    with closing(sqlite3.connect(database)) as db:
        rows = db.execute(
            f"SELECT user_1, user_2, weight FROM {TABLES[network]} WHERE user_1 != user_2"
        )
        return {(str(u1), str(u2), int(w)) for u1, u2, w in rows}


def edges(rel: duckdb.DuckDBPyRelation) -> Edges:
    return {(u1, u2, w) for u1, u2, w in rel.fetchall()}


@pytest.fixture(scope="module")
def russian_toolkit(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Edges]:
    """The toolkit's co_retweet networks on russian_coord_tweets, W = 60, by min weight."""
    if not RUSSIAN.exists():
        pytest.skip("the shared real data sets (../shared/data) are not on this machine")
    folder = tmp_path_factory.mktemp("toolkit")
    csv = folder / "russian.csv"
    duckdb.execute(
        f"""COPY (SELECT content_id AS message_id, account_id AS user_id,
                         account_id AS username, object_id AS repost_id, '' AS reply_id,
                         '' AS message, CAST(timestamp_share AS BIGINT) AS timestamp,
                         '' AS urls
                  FROM read_parquet('{RUSSIAN}'))
            TO '{csv}' (HEADER)"""
    )
    database = folder / "russian.db"
    toolkit(database, "preprocess", str(csv))
    return {m: toolkit_edges(database, "co_retweet", window=60, min_weight=m) for m in (1, 2)}


@pytest.mark.parametrize(("min_weight", "rows"), [(1, 12_412), (2, 95)])
def test_co_retweet_on_russian_coord_tweets(
    store: Store, russian_toolkit: dict[int, Edges], min_weight: int, rows: int
) -> None:
    load(store, RUSSIAN, "coortweet")
    ours = edges(qut_edges(store.con, "actions", window=60, min_weight=min_weight))
    assert len(russian_toolkit[min_weight]) == rows
    assert ours == russian_toolkit[min_weight]


# Links already in normal form, so that the toolkit's raw strings and share_url agree.
# m3 is exactly 60 s after m1; m5 and m11 are reposts, whose links the toolkit skips;
# m11 also replies, and the toolkit leaves reposts out of co_reply.
MESSAGES = """\
message_id,user_id,username,repost_id,reply_id,message,timestamp,urls
m1,u1,alice,,,one,1000,news.example/a
m2,u2,bob,,,two,1030,news.example/a blog.example/x
m3,u3,carol,,,three,1060,news.example/a
m4,u1,alice,,,four,1061,news.example/b
m5,u2,bob,m1,,RT one,1062,news.example/b
m6,u3,carol,,m1,reply,1070,news.example/b blog.example/x
m7,u4,dan,,,five,1030,blog.example/x
m8,u4,dan,,,six,5000,other.example/z
m9,u1,alice,,,seven,1090,blog.example/x
m10,u2,bob,,m1,reply two,1100,news.example/q
m11,u4,dan,m1,m1,reply and repost,1101,news.example/q
m12,u3,carol,m1,,RT one,1105,news.example/q
"""


@pytest.mark.parametrize(
    ("network", "kind"), [("co_link", "share_url"), ("co_reply", "reply"), ("co_retweet", "repost")]
)
@pytest.mark.parametrize("min_weight", [1, 2])
def test_small_networks_match_the_toolkit(
    store: Store, tmp_path: Path, network: str, kind: str, min_weight: int
) -> None:
    csv = tmp_path / "messages.csv"
    csv.write_text(MESSAGES, encoding="utf-8")
    database = tmp_path / "toolkit.db"
    toolkit(database, "preprocess", str(csv))
    expected = toolkit_edges(database, network, window=60, min_weight=min_weight)
    load(store, csv, "qut")
    ours = edges(qut_edges(store.con, "actions", window=60, kinds=(kind,), min_weight=min_weight))
    assert ours == expected
    if min_weight == 1:
        assert expected


def test_toolkit_co_links_messages_without_links_and_qut_edges_does_not(
    store: Store, tmp_path: Path
) -> None:
    csv = tmp_path / "messages.csv"
    csv.write_text(
        "message_id,user_id,username,repost_id,reply_id,message,timestamp,urls\n"
        "m1,u1,alice,,,no link,1000,\n"
        "m2,u2,bob,,,no link either,1010,\n",
        encoding="utf-8",
    )
    database = tmp_path / "toolkit.db"
    toolkit(database, "preprocess", str(csv))
    # an empty urls field splits into one empty URL, which both messages then share
    assert toolkit_edges(database, "co_link", window=60, min_weight=1) == {
        ("u1", "u2", 1),
        ("u2", "u1", 1),
    }
    load(store, csv, "qut")
    assert edges(qut_edges(store.con, "actions", window=60, kinds=("share_url",))) == set()


def test_toolkit_matches_raw_link_strings_and_share_url_normal_forms(
    store: Store, tmp_path: Path
) -> None:
    csv = tmp_path / "messages.csv"
    csv.write_text(
        "message_id,user_id,username,repost_id,reply_id,message,timestamp,urls\n"
        "m1,u1,alice,,,one,1000,https://www.news.example/a/?utm_source=x\n"
        "m2,u2,bob,,,two,1010,news.example/a\n",
        encoding="utf-8",
    )
    database = tmp_path / "toolkit.db"
    toolkit(database, "preprocess", str(csv))
    assert toolkit_edges(database, "co_link", window=60, min_weight=1) == set()
    load(store, csv, "qut")
    assert edges(qut_edges(store.con, "actions", window=60, kinds=("share_url",))) == {
        ("u1", "u2", 1),
        ("u2", "u1", 1),
    }
