"""The Spark engine (concerted.engines.spark) against the DuckDB engine: the same
edges, events, notes and expectations, bit for bit, and the same analysis.

One local Spark session (two cores, on loopback, no UI) serves the whole module.
"""

from __future__ import annotations

import os
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
from concerted.engines.duck import DuckDBEngine
from concerted.engines.spark import SparkEngine
from concerted.errors import ConfigError
from concerted.ingest import IngestOptions, open_case
from concerted.schema import EVIDENCE_CONTRACTS
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
