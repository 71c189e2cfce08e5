"""The Spark engine (concerted.engines.spark) against the DuckDB engine: the same
derived actions, edges, events, notes and expectations, bit for bit, Parquet datasets
checked as they enter (concerted.engines.spark_tables), and the same analysis on
simulated worlds and on real data.

One local Spark session (two cores, on loopback, no UI) serves the whole module.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concerted import engines, simulate
from concerted.analysis import analyze
from concerted.detectors.coaction import CoAction
from concerted.engines import Engine
from concerted.engines.base import DERIVED_FROM
from concerted.engines.duck import DuckDBEngine
from concerted.engines.spark import SparkEngine
from concerted.errors import ConfigError
from concerted.ingest import IngestOptions, open_case
from concerted.schema import CONTRACTS, EVIDENCE_CONTRACTS
from concerted.testing.planted import actions_table
from tests import test_engines as engine_tests

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Spark starts in seconds but each query costs a second or more on two cores: the
# module takes minutes, so it runs with the slow tests (`make test-slow`), which need
# the `spark` extra and Java 17 (`.ci/run` installs both).
pytestmark = [pytest.mark.spark, pytest.mark.slow]

T0 = datetime(2021, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - the spark extra is missing
        raise RuntimeError(
            "the Spark tests need the spark extra: pip install -e '.[dev,spark]'"
        ) from exc

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers derive actions
    session = (
        SparkSession.builder.master("local[2]")
        .appName("concerted-tests")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.adaptive.enabled", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def _rows(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[Any, ...]]:
    return sorted(con.sql(f"SELECT * FROM {relation}").fetchall(), key=repr)


def _types(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    got = con.sql(f"SELECT * FROM {relation}")
    return [(n, str(t)) for n, t in zip(got.columns, got.types, strict=True)]


def _same(
    con: duckdb.DuckDBPyConnection,
    actions: str,
    layers: list[CoAction],
    spark_engine: SparkEngine,
    stratum: float = 86_400.0,
) -> int:
    """Pair and sum with both engines; assert that they agree. Returns the edges."""
    duck = DuckDBEngine(con)
    want, got = duck.pair(actions, layers), spark_engine.pair(actions, layers)
    for part in ("edges", "events"):
        assert _types(con, getattr(got, part)) == _types(con, getattr(want, part))
        assert _rows(con, getattr(got, part)) == _rows(con, getattr(want, part)), part
    assert got.notes == want.notes
    kinds = tuple(sorted({k for layer in layers for k in layer.kinds or ()})) or None
    want_sums = duck.expectations(want.events, actions, stratum=stratum, kinds=kinds)
    got_sums = spark_engine.expectations(got.events, actions, stratum=stratum, kinds=kinds)
    # The same doubles, not just close ones: both sum exact decimals.
    assert _types(con, got_sums) == _types(con, want_sums)
    assert _rows(con, got_sums) == _rows(con, want_sums)
    edges = len(_rows(con, got.edges))
    duck.release(want_sums, *want.temporary)
    spark_engine.release(got_sums, *got.temporary)
    return edges


def test_spark_is_an_engine_with_the_contracts(spark: SparkSession, tmp_path: Path) -> None:
    con = _con()
    assert engines.get("spark") is SparkEngine
    engine = SparkEngine(con, spark, work_dir=tmp_path)
    assert isinstance(engine, Engine) and engine.name == "spark"
    table = actions_table(
        con,
        "a",
        [
            ("u1", "x", "repost", "o", T0, "p1"),
            ("u2", "x", "repost", "o", T0 + timedelta(seconds=30), "p2"),
        ],
    )
    paired = engine.pair(table, [CoAction(window=60)])
    for part in ("edges", "events"):
        contract = [(c.name, str(duckdb.sqltype(c.type))) for c in EVIDENCE_CONTRACTS[part].columns]
        assert _types(con, getattr(paired, part)) == contract
    assert _rows(con, f"(SELECT account_1, account_2, median_dt FROM {paired.edges})") == [
        ("u1", "u2", 30.0)
    ]
    with pytest.raises(ConfigError):
        engine.pair(table, [])
    with pytest.raises(ConfigError):
        engine.expectations(paired.events, table, stratum=0)
    engine.release(*paired.temporary)
    views = {r[0] for r in con.sql("SELECT view_name FROM duckdb_views()").fetchall()}
    assert not views & set(paired.temporary)
    engine.close()
    assert not engine.work_dir.exists()


def test_without_pyspark_choosing_spark_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyspark" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"pip install 'concerted\[spark\]'"):
        engines.get("spark")


# The random actions the DuckDB engine is held to plain SQL on (tests/test_engines.py).
_actions = engine_tests.ACTIONS


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=_actions,
    windows=st.tuples(st.sampled_from([0, 1, 30, 60]), st.sampled_from([0, 10, 45.5])),
    min_weight=st.integers(1, 3),
    cap=st.sampled_from([None, 3, 2_000_000]),
    stratum=st.sampled_from([30.0, 86_400.0]),
)
def test_spark_pairs_and_sums_as_duckdb_does(
    spark: SparkSession,
    rows: list[tuple[str, str, float, str, str]],
    windows: tuple[float, float],
    min_weight: int,
    cap: int | None,
    stratum: float,
) -> None:
    """Two layers with windows of their own, a viral-object cap that bites (3) or not:
    the same edges, events, notes and stratified sums."""
    con = _con()
    table = actions_table(
        con,
        "a",
        [(a, p, k, o, T0 + timedelta(seconds=t), str(i)) for i, (a, o, t, k, p) in enumerate(rows)],
    )
    layers = [
        CoAction(window=windows[0], kinds=("repost", "reply"), min_weight=min_weight),
        CoAction(
            window=windows[1], kinds=("hashtag",), min_weight=min_weight, max_object_pairs=cap
        ),
    ]
    engine = SparkEngine(con, spark)
    _same(con, table, layers, engine, stratum)
    engine.close()
    con.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulator's ``cib`` scenario, small, ingested into a case."""
    tmp = tmp_path_factory.mktemp("cib")
    data = tmp / "data"
    simulate.simulate(simulate.scenario("cib").scaled(0.2), seed=0, out=data)
    store, _ = open_case([data], tmp / "case.duckdb", IngestOptions(format="generic"))
    store.close()
    return tmp


def test_spark_pairs_the_cib_world_as_duckdb_does(spark: SparkSession, world: Path) -> None:
    con = duckdb.connect(str(world / "case.duckdb"), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    layers = [
        CoAction(window=60, kinds=("repost", "link", "hashtag")),
        CoAction(window=600, kinds=("reply",), min_weight=2, max_object_pairs=50),
    ]
    engine = SparkEngine(con, spark)
    assert _same(con, "actions", layers, engine) > 0
    engine.close()
    con.close()


def _table(path: Path) -> list[str]:
    return sorted(repr(sorted(r.items())) for r in pq.read_table(path).to_pylist())


def test_analyze_on_spark_finds_what_duckdb_finds(spark: SparkSession, world: Path) -> None:
    from concerted.store import Store

    found = {}
    for engine in ("duckdb", "spark"):
        out = world / f"out-{engine}"
        with Store(world / "case.duckdb") as store:
            analyze(store, out, engine=engine)
        found[engine] = out
    for name in ("edges", "campaigns", "members"):
        want, got = found["duckdb"] / f"{name}.parquet", found["spark"] / f"{name}.parquet"
        assert want.exists() == got.exists()
        if want.exists():
            assert _table(got) == _table(want), name
    significant = pq.read_table(found["spark"] / "edges.parquet").to_pylist()
    assert any(e["significant"] for e in significant)


def test_coaction_command_runs_on_spark(spark: SparkSession, world: Path) -> None:
    from click.testing import CliRunner

    from concerted.cli import cli

    written = {}
    for engine in ("duckdb", "spark"):
        out = world / f"coaction-{engine}"
        args = ["coaction", str(world / "case.duckdb"), "--out", str(out), "--window", "60"]
        result = CliRunner().invoke(cli, [*args, "--engine", engine])
        assert result.exit_code == 0, result.output
        written[engine] = out
    for name in ("edges", "events"):
        want = _table(written["duckdb"] / f"{name}.parquet")
        assert _table(written["spark"] / f"{name}.parquet") == want and want, name


def test_spark_rounds_doubles_to_decimals_as_duckdb_does(spark: SparkSession) -> None:
    """The terms of the expectations: Spark's integers of 10^-22 are DuckDB's
    ``DECIMAL(38, 22)`` casts, halves (3.8397666450631463e-07 * 1e22 ends in .5) and
    doubles whose shortest decimal string is not their value among them."""
    import random

    from pyspark.sql import functions as F

    from concerted.engines.spark import _units

    rng = random.Random(1)
    xs = [rng.random() * 10 ** rng.randint(-9, 4) for _ in range(2_000)]
    xs += [3.8397666450631463e-07, 9.333806207298506e-08, 0.009364405867994597, 1 / 3, 0.0]
    frame = spark.createDataFrame([(i, x) for i, x in enumerate(xs)], "i INT, x DOUBLE")
    got = {r["i"]: r["u"] for r in frame.select("i", _units(F.col("x")).alias("u")).collect()}
    con = _con()
    con.execute("CREATE TABLE t (i INTEGER, x DOUBLE)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(xs)))
    want = dict(con.sql("SELECT i, x::DECIMAL(38, 22) FROM t").fetchall())
    assert {i: u.scaleb(-22) for i, u in got.items()} == want


# -- deriving the actions ------------------------------------------------------------------

# Texts, links and hashtags where normal forms differ between libraries: Unicode case
# and composition, vertical tabs (whitespace to Java, not to RE2), tracking parameters,
# '#' prefixes, empty and missing items.
_WORDS = st.sampled_from(
    [
        "Vote",
        "vote",
        "İstanbul",
        "ΣΟΦΙΑ",
        "Cafe\u0301",
        "Café",
        "a\vb",
        "x\u00a0y",
        "@who",
        "ǅ",
        "ß",
        "",
        " ",
    ]
)
_LINKS = st.sampled_from(
    [
        "https://www.Example.com/News/?utm_source=fb&id=7#top",
        "http://example.com/News?id=7",
        "HTTPS://m.Example.co.uk:443/x/",
        "example.org/a b",
        "",
    ]
)
_TAGS = st.sampled_from(["#Vote", "vote", "##VOTE", "İ", "#", "", "ǅx"])
_ITEMS = st.one_of(st.none(), st.lists(st.one_of(st.none(), _TAGS), max_size=4))
POSTS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),  # account
        st.integers(0, 500),  # seconds after T0
        st.one_of(st.none(), st.lists(_WORDS, max_size=5).map(" ".join)),  # text
        st.one_of(st.none(), st.sampled_from(["p1", "p2"])),  # repost_of
        st.one_of(st.none(), st.sampled_from(["p3"])),  # reply_to
        st.one_of(st.none(), st.lists(st.one_of(st.none(), _LINKS), max_size=3)),
        _ITEMS,  # hashtags
        _ITEMS,  # image hashes
    ),
    min_size=1,
    max_size=25,
)


def _derived_alike(
    con: duckdb.DuckDBPyConnection, table: str, rows: str, engine: SparkEngine
) -> int:
    """Derive the actions of ``rows`` with both engines; assert that they agree."""
    counts = {}
    for name, derive in (("want", DuckDBEngine(con)), ("got", engine)):
        con.execute(CONTRACTS["actions"].ddl(name).replace("CREATE TABLE", "CREATE TEMP TABLE"))
        counts[name] = derive.derive_actions(table, rows, name)
    assert counts["got"] == counts["want"]
    assert _rows(con, "got") == _rows(con, "want")
    con.execute("DROP TABLE want; DROP TABLE got")
    return counts["want"]


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(posts=POSTS)
def test_spark_derives_the_actions_of_posts_as_duckdb_does(
    spark: SparkSession, posts: list[tuple[Any, ...]]
) -> None:
    con = _con()
    con.execute(CONTRACTS["posts"].ddl("p"))
    # A post twice (the same row) derives its link actions once, as on DuckDB.
    rows = [*posts, *posts[:2]]
    con.executemany(
        "INSERT INTO p (post_id, account_id, platform, ts, text, repost_of, reply_to, urls, "
        "hashtags, image_hashes) VALUES (?, ?, 'x', ?, ?, ?, ?, ?, ?, ?)",
        [
            (f"q{i % len(posts)}", a, T0 + timedelta(seconds=t), text, rp, rt, urls, tags, images)
            for i, (a, t, text, rp, rt, urls, tags, images) in enumerate(rows)
        ],
    )
    engine = SparkEngine(con, spark)
    _derived_alike(con, "posts", "p", engine)
    engine.close()
    con.close()


def test_spark_derives_the_cib_world_as_duckdb_does(spark: SparkSession, world: Path) -> None:
    """Every table the simulator's ``cib`` world derives actions from, reports and
    roles with a missing start among them."""
    con = duckdb.connect(str(world / "case.duckdb"), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    engine = SparkEngine(con, spark)
    con.execute("CREATE TEMP TABLE r AS SELECT * FROM roles")
    con.execute("UPDATE r SET since = NULL WHERE hash(account_id) % 5 = 0")
    derived = {t: _derived_alike(con, t, t if t != "roles" else "r", engine) for t in DERIVED_FROM}
    assert all(derived.values()), derived
    engine.close()
    con.close()


def test_spark_pairs_the_actions_it_derived_from_its_own_files(
    spark: SparkSession, world: Path
) -> None:
    """Actions Spark derived into a relation are paired and summed from the Parquet
    Spark wrote, not copied out of the case again, with DuckDB's results; once the
    relation holds rows Spark did not derive, it is read from the case."""
    con = duckdb.connect(str(world / "case.duckdb"), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    con.execute(CONTRACTS["actions"].ddl("a").replace("CREATE TABLE", "CREATE TEMP TABLE"))
    engine = SparkEngine(con, spark)
    for table in DERIVED_FROM:
        engine.derive_actions(table, table, "a")
    layers = [CoAction(window=60)]
    assert _same(con, "a", layers, engine) > 0
    assert not [*engine.work_dir.glob("actions_*"), *engine.work_dir.glob("acted_*")]
    con.execute(
        "INSERT INTO a SELECT actor_id || '-again', platform, kind, object_id, ts, source_id "
        "FROM a WHERE kind = 'repost' ORDER BY ALL LIMIT 50"
    )
    assert _same(con, "a", layers, engine) > 0
    assert [*engine.work_dir.glob("actions_*")] and [*engine.work_dir.glob("acted_*")]
    engine.close()
    con.close()


# -- Parquet datasets ------------------------------------------------------------------------


def _write(path: Path, rows: list[dict[str, Any]], schema: Any = None) -> None:
    import pyarrow as pa

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def test_a_dataset_is_checked_as_it_enters(spark: SparkSession, tmp_path: Path) -> None:
    """Every file against its contract, naming the file and the column; rows without a
    required value set aside and counted; a repeated key refused."""
    import pyarrow as pa

    from concerted.engines.spark_tables import open_dataset, read_tables
    from concerted.schema import CONTRACTS, arrow_schema

    posts = arrow_schema(CONTRACTS["posts"])
    post = {"post_id": "p1", "account_id": "a", "platform": "x", "ts": T0, "hashtags": ["#A"]}
    lake = tmp_path / "lake"
    _write(lake / "posts" / "part-0.parquet", [post], posts)
    # A second file with only the required columns, one row lacking its account.
    slim = pa.schema([pa.field(n, posts.field(n).type) for n in CONTRACTS["posts"].required])
    late = {"post_id": "p2", "account_id": None, "platform": "x", "ts": T0}
    _write(lake / "posts" / "part-1.parquet", [{**post, "post_id": "p3"}, late], slim)
    tables = read_tables(spark, str(lake))
    assert set(tables) == {"posts"} and tables["posts"].set_aside == {"account_id": 1}
    assert "part-1.parquet" in tables["posts"].notes[0]
    store, loaded = open_dataset(str(lake), tmp_path / "case.duckdb", spark=spark)
    with store:
        assert loaded.rows == {"posts": 2} and loaded.actions == 1  # p1's hashtag
        assert store.con.sql("SELECT rows_set_aside FROM sources").fetchall() == [(1,)]
    store, again = open_dataset(str(lake), tmp_path / "case.duckdb", spark=spark)
    store.close()
    assert again.skipped == ("posts",) and not again.rows  # the same files add nothing

    bad = pa.schema([f if f.name != "ts" else pa.field("ts", pa.string()) for f in posts])
    _write(lake / "posts" / "part-2.parquet", [{**post, "ts": "2021-03-01"}], bad)
    with pytest.raises(ConfigError, match=r"part-2\.parquet: column 'ts' of posts is string"):
        read_tables(spark, str(lake))
    (lake / "posts" / "part-2.parquet").unlink()
    _write(lake / "reports" / "r.parquet", [{"report_id": "r1"}])
    with pytest.raises(ConfigError, match=r"r\.parquet: the required column 'reporter_id'"):
        read_tables(spark, str(lake))
    (lake / "reports" / "r.parquet").unlink()
    _write(lake / "posts" / "part-2.parquet", [post], posts)
    with pytest.raises(ConfigError, match=r"1 rows repeat a key \(platform, post_id\)"):
        read_tables(spark, str(lake))
    (tmp_path / "empty" / "other").mkdir(parents=True)
    with pytest.raises(ConfigError, match="holds none of the tables"):
        read_tables(spark, str(tmp_path / "empty"))


# -- the same analysis on both engines ---------------------------------------------------------


def _findings(out: Path) -> dict[str, Any]:
    """What an analysis found: its edges (pairs, layers, weights and their tests), the
    significant pairs, and its campaigns with their members."""
    found: dict[str, Any] = {
        name: _table(out / f"{name}.parquet") if (out / f"{name}.parquet").exists() else None
        for name in ("edges", "campaigns", "members")
    }
    edges = pq.read_table(out / "edges.parquet").to_pylist()
    found["significant"] = sorted(
        (
            e["detector"],
            e["layer"],
            e["platform_1"],
            e["account_1"],
            e["platform_2"],
            e["account_2"],
        )
        for e in edges
        if e["significant"]
    )
    return found


def _alike(duck: Path, spark_out: Path) -> dict[str, Any]:
    want, got = _findings(duck), _findings(spark_out)
    for part in ("edges", "significant", "campaigns", "members"):
        assert got[part] == want[part], part
    return want


@pytest.mark.parametrize(("name", "scale"), [("cib", 0.2), ("brigade", 0.3)])
def test_a_simulated_dataset_on_spark_gives_the_duckdb_findings(
    spark: SparkSession, tmp_path: Path, name: str, scale: float
) -> None:
    """The simulator's world as files, ingested and analysed on DuckDB, and as a
    Parquet dataset of many files, read, derived and analysed on Spark (the brigade at
    the smallest scale where it is found)."""
    from concerted.engines.spark_tables import open_dataset

    world = simulate.scenario(name).scaled(scale)
    simulate.simulate(world, seed=0, out=tmp_path / "files")
    simulate.simulate(
        world, seed=0, out=tmp_path / "lake", format="parquet-dataset", rows_per_file=20_000
    )
    assert len(list((tmp_path / "lake" / "posts").glob("*.parquet"))) > 1
    store, _ = open_case(
        [tmp_path / "files"], tmp_path / "duck.duckdb", IngestOptions(format="generic")
    )
    with store:
        analyze(store, tmp_path / "duck")
    if name == "cib":  # through the command line, on the session that is active
        from click.testing import CliRunner

        from concerted.cli import cli

        lake = str(tmp_path / "lake")
        args = ["analyze", lake, "--out", str(tmp_path / "spark"), "--json"]
        refused = CliRunner().invoke(cli, args)
        assert refused.exit_code == 2 and "analyze it with --engine spark" in refused.output
        done = CliRunner().invoke(cli, [*args, "--engine", "spark"])
        assert done.exit_code == 0, done.output
    else:
        from concerted.engines import spark as spark_engine

        store, loaded = open_dataset(str(tmp_path / "lake"), tmp_path / "spark.duckdb", spark=spark)
        with store:
            assert loaded.actions == store.counts()["actions"] > 0
            # The actions Spark derived are left, with their Parquet, to the analysis's
            # engine, which takes them (and finds what DuckDB finds, below).
            (files, rows) = spark_engine._LEFT[store.con]["actions"]
            assert rows == loaded.actions and all(f.exists() for f in files)
            record = analyze(store, tmp_path / "spark", engine="spark")
            assert store.con not in spark_engine._LEFT
        # Co-reporting's reports were paired on Spark, in every round.
        rounds = record["notes"]["brigades"]["significance"]
        assert rounds and all(r["paired_on"] == "spark" for r in rounds)
    found = _alike(tmp_path / "duck", tmp_path / "spark")
    # Not an empty comparison: cib's network is significant co-action, the brigade a
    # campaign of reporters.
    assert found["significant"] if name == "cib" else found["campaigns"]


def test_russian_coord_tweets_on_spark_gives_the_duckdb_findings(
    spark: SparkSession, tmp_path: Path
) -> None:
    """A real data set (CooRTweet's russian_coord_tweets), ingested with each engine
    deriving the actions and analysed with it."""
    from concerted.ingest import ingest
    from concerted.store import Store
    from tests.conftest import SHARED_DATA

    source = SHARED_DATA / "coortweet" / "russian_coord_tweets.parquet"
    if not source.exists():  # selected explicitly (the slow tests): say so, loudly
        pytest.fail(f"{source} is missing: the shared real data sets (../shared/data) are needed")
    for engine in ("duckdb", "spark"):
        with Store(tmp_path / f"{engine}.duckdb") as store:
            ingest(store, [source], IngestOptions(format="coortweet"), engine=engine)
            analyze(store, tmp_path / engine, engine=engine)
    assert _alike(tmp_path / "duckdb", tmp_path / "spark")["significant"]
