"""The engine seam: what an engine gets and gives (concerted.engines.base), checked on
the DuckDB engine against the contracts and against plain SQL and Python."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted import engines
from concerted.adapters.base import AdapterOptions
from concerted.analysis import analyze
from concerted.detectors.coaction import CoAction
from concerted.engines import DERIVED_FROM, EXPECTATION_COLUMNS, Engine, Paired, duck
from concerted.engines.duck import DuckDBEngine
from concerted.errors import ConfigError
from concerted.ingest import IngestOptions, ingest
from concerted.schema import CONTRACTS, EVIDENCE_CONTRACTS, Contract
from concerted.store import Store
from concerted.testing.planted import actions_table, planted_case
from tests.budget import examples
from tests.conftest import FIXTURES

T0 = datetime(2021, 3, 1, tzinfo=UTC)


def _types(con: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    got = con.sql(f"SELECT * FROM {relation}")
    return [(name, str(kind)) for name, kind in zip(got.columns, got.types, strict=True)]


def _contract(contract: Contract) -> list[tuple[str, str]]:
    return [(c.name, str(duckdb.sqltype(c.type))) for c in contract.columns]


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.sql("SELECT table_name FROM duckdb_tables()").fetchall()}


def test_duckdb_is_the_default_and_an_engine() -> None:
    assert engines.DEFAULT == "duckdb" and {"duckdb", "spark"} <= set(engines.available())
    engine = engines.get()(duckdb.connect())
    assert isinstance(engine, Engine) and isinstance(engine, DuckDBEngine)
    assert engines.get("duckdb") is DuckDBEngine


def test_an_unknown_engine_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"no engine named 'flink'; known: duckdb, spark"):
        engines.get("flink")


def test_an_unknown_engine_changes_nothing(store: Store, tmp_path: Path) -> None:
    posts = FIXTURES / "generic" / "posts.csv"
    options = IngestOptions(
        format="generic", adapter=AdapterOptions(table="posts", mapping={"account_id": "author"})
    )
    with pytest.raises(ConfigError, match="known: duckdb"):
        ingest(store, [posts], options, engine="flink")
    assert set(store.counts().values()) == {0}
    (done,) = ingest(store, [posts], options)
    assert done.actions_added == store.counts()["actions"] > 0
    with pytest.raises(ConfigError, match="known: duckdb"):
        analyze(store, tmp_path / "out", engine="flink")
    assert not (tmp_path / "out").exists()


def test_derived_actions_are_the_actions_of_the_contract_tables(
    con: duckdb.DuckDBPyConnection,
) -> None:
    planted_case(con)  # posts, reports, roles and their actions, by concerted.actions
    con.execute(CONTRACTS["actions"].ddl("derived"))
    engine = DuckDBEngine(con)
    added = sum(engine.derive_actions(table, table, "derived") for table in DERIVED_FROM)
    assert _types(con, "derived") == _contract(CONTRACTS["actions"])
    expected = con.sql("SELECT * FROM actions ORDER BY ALL").fetchall()
    assert added == len(expected) > 0
    assert con.sql("SELECT * FROM derived ORDER BY ALL").fetchall() == expected
    with pytest.raises(ConfigError, match="not from 'accounts'"):
        engine.derive_actions("accounts", "accounts", "derived")


def test_pairing_and_expectations_meet_their_contracts(con: duckdb.DuckDBPyConnection) -> None:
    planted_case(con)
    engine = DuckDBEngine(con)
    layers = [CoAction(window=60, kinds=("repost",)), CoAction(window=600, kinds=("hashtag",))]
    paired = engine.pair("actions", layers)
    assert _types(con, paired.edges) == _contract(EVIDENCE_CONTRACTS["edges"])
    assert _types(con, paired.events) == _contract(EVIDENCE_CONTRACTS["events"])
    untested = con.sql(
        f"SELECT count(*) FILTER (WHERE expected IS NOT NULL OR p_value IS NOT NULL "
        f"OR q_value IS NOT NULL OR significant IS NOT NULL), count(*) FROM {paired.edges}"
    ).fetchone()
    assert untested is not None and untested[0] == 0 and untested[1] > 0
    assert [n["kinds"] for n in paired.notes["layers"]] == [["repost"], ["hashtag"]]

    sums = engine.expectations(paired.events, "actions", stratum=86_400)
    assert _types(con, sums) == [
        *((c, "VARCHAR") for c in EXPECTATION_COLUMNS[:4]),
        ("w", "DOUBLE"),
        ("lam", "DOUBLE"),
    ]
    pairs = "platform_1, account_1, platform_2, account_2"
    one_each = con.sql(f"SELECT count(*), count(DISTINCT ({pairs})) FROM {sums}").fetchone()
    met = con.sql(f"SELECT count(DISTINCT ({pairs})) FROM {paired.events}").fetchone()
    assert one_each is not None and met is not None and one_each[0] == one_each[1] == met[0]

    engine.release(sums, *paired.temporary)
    assert not _tables(con) & {sums, *paired.temporary}


def test_bad_requests_are_refused(con: duckdb.DuckDBPyConnection) -> None:
    engine = DuckDBEngine(con)
    with pytest.raises(ConfigError):
        engine.pair("actions", [])
    with pytest.raises(ConfigError):
        engine.expectations("events", "actions", stratum=0)


# -- the pairing against plain SQL -----------------------------------------------------

#: Random actions: four accounts, three objects, whole and half seconds, three kinds,
#: two platforms.
ACTION = st.tuples(
    st.sampled_from(["a", "b", "c", "d"]),
    st.sampled_from(["o1", "o2", "o3"]),
    # Whole and half seconds, so that gaps of exactly a window occur.
    st.integers(0, 300).map(lambda n: n / 2),
    st.sampled_from(["repost", "hashtag", "reply"]),
    st.sampled_from(["twitter", "facebook"]),
)
ACTIONS = st.lists(ACTION, max_size=40)


def two_layers(windows: tuple[float, float], min_weight: int) -> list[CoAction]:
    """Reposts and replies in one window, hashtags in another: two layers as analyze
    pairs near-duplicate texts beside the rest."""
    return [
        CoAction(window=windows[0], kinds=("repost", "reply"), min_weight=min_weight),
        CoAction(window=windows[1], kinds=("hashtag",), min_weight=min_weight),
    ]


def _load(con: duckdb.DuckDBPyConnection, rows: list[tuple[str, str, float, str, str]]) -> str:
    return actions_table(
        con,
        "a",
        [(a, p, k, o, T0 + timedelta(seconds=t), str(i)) for i, (a, o, t, k, p) in enumerate(rows)],
    )


# Every two actions of one kind on one object, by two accounts, within the kind's
# window: a plain self-join, oriented so that account 1 comes first.
_PLAIN_EVENTS = """
    SELECT 'co_action' AS detector, x.kind AS layer,
           x.platform AS platform_1, x.actor_id AS account_1,
           y.platform AS platform_2, y.actor_id AS account_2,
           x.object_id, x.ts AS ts_1, y.ts AS ts_2,
           x.source_id AS source_1, y.source_id AS source_2
    FROM a x JOIN a y ON x.kind = y.kind AND x.object_id = y.object_id
    JOIN (VALUES {windows}) w(kind, micros) ON w.kind = x.kind
    WHERE (x.platform < y.platform OR (x.platform = y.platform AND x.actor_id < y.actor_id))
      AND abs(epoch_us(x.ts) - epoch_us(y.ts)) <= w.micros
"""

_PLAIN_EDGES = """
    SELECT detector, layer, platform_1, account_1, platform_2, account_2,
           count(DISTINCT object_id)::DOUBLE AS weight, NULL::DOUBLE AS score,
           count(*) AS events,
           count(*) FILTER (WHERE ts_1 < ts_2) AS lead_1,
           count(*) FILTER (WHERE ts_2 < ts_1) AS lead_2,
           median(abs(epoch_us(ts_1) - epoch_us(ts_2))) / 1e6 AS median_dt,
           min(least(ts_1, ts_2)) AS first_ts, max(greatest(ts_1, ts_2)) AS last_ts,
           NULL::DOUBLE AS expected, NULL::DOUBLE AS p_value, NULL::DOUBLE AS q_value,
           NULL::BOOLEAN AS significant
    FROM ({events}) GROUP BY ALL HAVING count(DISTINCT object_id) >= {min_weight}
"""


@settings(max_examples=examples(50), deadline=None)
@given(
    rows=ACTIONS,
    windows=st.tuples(st.sampled_from([0, 1, 30, 60]), st.sampled_from([0, 10, 45.5])),
    min_weight=st.integers(1, 3),
)
def test_the_engine_pairs_as_plain_sql_does(
    rows: list[tuple[str, str, float, str, str]], windows: tuple[float, float], min_weight: int
) -> None:
    """Two layers with windows of their own (as analyze pairs near-duplicate texts
    beside the rest): the engine's edges and events are those of a plain self-join."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    table = _load(con, rows)
    layers = two_layers(windows, min_weight)
    micros = [("repost", windows[0]), ("reply", windows[0]), ("hashtag", windows[1])]
    events = _PLAIN_EVENTS.format(
        windows=", ".join(f"('{k}', {round(w * 1_000_000)})" for k, w in micros)
    )
    edges = _PLAIN_EDGES.format(events=events, min_weight=min_weight)
    kept = f"""SELECT e.* FROM ({events}) e SEMI JOIN ({edges}) g
               USING (layer, platform_1, account_1, platform_2, account_2)"""

    paired = DuckDBEngine(con).pair(table, layers)
    got_edges = sorted(con.sql(f"SELECT * FROM {paired.edges}").fetchall(), key=repr)
    got_events = sorted(con.sql(f"SELECT * FROM {paired.events}").fetchall(), key=repr)
    assert got_edges == sorted(con.sql(edges).fetchall(), key=repr)
    assert got_events == sorted(con.sql(kept).fetchall(), key=repr)
    con.close()


# -- the stratified sums against their formula, in Python ---------------------------------


def _expectations(
    rows: list[tuple[str, str, float, str, str]],
    events: list[tuple[object, ...]],
    stratum: float,
    kinds: tuple[str, ...] | None = None,
) -> dict[tuple[str, str, str, str], tuple[float, float]]:
    """Significance.test_stratified's meetings and expectations, computed directly (the
    posts counted from the actions of ``kinds``, all if None)."""

    def s_of(at: datetime) -> int:
        micros = (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        return int(micros // round(stratum * 1_000_000))

    posts: dict[tuple[str, str, int], set[str]] = defaultdict(set)
    for i, (actor, _, at, kind, platform) in enumerate(rows):
        if kinds is not None and kind not in kinds:
            continue
        posts[(platform, actor, s_of(T0 + timedelta(seconds=at)))].add(str(i))
    n = {k: float(len(v)) for k, v in posts.items()}
    met: dict[tuple[tuple[str, str, str, str], int], list[tuple[object, ...]]] = defaultdict(list)
    for ev in events:
        p1, a1, p2, a2, ts_1, ts_2, s_1, s_2 = ev
        assert isinstance(ts_1, datetime) and isinstance(ts_2, datetime)
        met[((str(p1), str(a1), str(p2), str(a2)), s_of(min(ts_1, ts_2)))].append(
            (s_of(ts_1) != s_of(ts_2), s_1, s_2)
        )
    meetings = {
        key: (
            float(min(len({e[1] for e in evs}), len({e[2] for e in evs}))),
            all(e[0] for e in evs),
        )
        for key, evs in met.items()
    }
    possible: dict[int, float] = defaultdict(float)
    squares: dict[int, float] = defaultdict(float)
    for (_, _, s), count in n.items():
        possible[s] += count
        squares[s] += count * count
    total: dict[int, float] = defaultdict(float)
    for (_, s), (w, _) in meetings.items():
        total[s] += w
    # A stratum without posts has no rate, and its meetings count for nothing (only
    # events beyond the actions of the kinds counted meet there).
    rate = {
        s: total[s] / max((possible[s] ** 2 - squares[s]) / 2, 1) for s in total if s in possible
    }
    out: dict[tuple[str, str, str, str], tuple[float, float]] = {}
    for (pair, s), (w, straddles) in meetings.items():
        if s not in rate:
            continue
        got_w, got_lam = out.get(pair, (0.0, 0.0))
        out[pair] = (got_w + w, got_lam + (rate[s] * w if straddles else 0.0))
    for pair, (w, lam) in out.items():
        p1, a1, p2, a2 = pair
        shared = sum(
            n[(p1, a1, s)] * n[(p2, a2, s)] * r
            for s, r in rate.items()
            if (p1, a1, s) in n and (p2, a2, s) in n
        )
        out[pair] = (w, lam + shared)
    return out


@settings(max_examples=examples(50), deadline=None)
@given(rows=ACTIONS, stratum=st.sampled_from([30.0, 60.0, 86_400.0]))
def test_the_expectations_follow_their_formula(
    rows: list[tuple[str, str, float, str, str]], stratum: float
) -> None:
    _assert_the_formula(rows, stratum, None)


@settings(max_examples=examples(50), deadline=None)
@given(
    rows=ACTIONS,
    stratum=st.sampled_from([30.0, 60.0, 86_400.0]),
    kinds=st.sampled_from([("repost",), ("repost", "reply"), ("hashtag",)]),
)
def test_events_beyond_the_actions_of_the_kinds_follow_the_formula(
    rows: list[tuple[str, str, float, str, str]], stratum: float, kinds: tuple[str, ...]
) -> None:
    """Events of every kind against the posts of some: sources and accounts that no
    action of those kinds numbered are numbered too, and meet as the formula says."""
    _assert_the_formula(rows, stratum, kinds)


# -- the sums read from the pairing's integers against those read from its events --------

#: Random actions whose posts (sources) hold several actions: a post's hashtag and its
#: repost are one post, counted once.
SOURCED_ACTIONS = st.lists(
    st.tuples(ACTION, st.sampled_from(["s1", "s2", "s3", "s4"])).map(lambda a: (*a[0], a[1])),
    max_size=40,
)


@settings(max_examples=examples(60), deadline=None)
@given(
    rows=SOURCED_ACTIONS,
    layered=st.booleans(),
    windows=st.tuples(st.sampled_from([0, 1, 30, 60]), st.sampled_from([0, 10, 45.5])),
    min_weight=st.integers(1, 3),
    stratum=st.sampled_from([30.0, 60.0, 86_400.0]),
)
def test_the_sums_on_the_pairings_integers_are_those_of_its_events(
    rows: list[tuple[str, str, float, str, str, str]],
    layered: bool,
    windows: tuple[float, float],
    min_weight: int,
    stratum: float,
) -> None:
    """A :class:`Paired` the engine made is read from its integer tables: the same rows,
    to the last bit, as from its events' text columns (two layers with their kinds, or
    one of every kind). Asked for other kinds, the engine reads the events instead."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    table = actions_table(
        con,
        "a",
        [(a, p, k, o, T0 + timedelta(seconds=t), s) for a, o, t, k, p, s in rows],
    )
    engine = DuckDBEngine(con)
    if layered:
        layers, kinds = two_layers(windows, min_weight), ("repost", "reply", "hashtag")
    else:
        layers, kinds = [CoAction(window=windows[0], min_weight=min_weight)], None
    paired = engine.pair(table, layers)
    assert duck._numbered(paired, table, kinds) == paired.numbered
    assert len(paired.numbered) == len(layers)

    def sums(events: str | Paired, kinds: tuple[str, ...] | None) -> list[tuple[object, ...]]:
        got = engine.expectations(events, table, stratum=stratum, kinds=kinds)
        return sorted(con.sql(f"SELECT * FROM {got}").fetchall(), key=repr)

    assert sums(paired, kinds) == sums(paired.events, kinds)
    assert not duck._numbered(paired, table, ("repost",))
    assert not duck._numbered(paired, "other", kinds)
    assert sums(paired, ("repost",)) == sums(paired.events, ("repost",))
    con.close()


# -- the meetings grouped from sorted keys against DuckDB's grouping -----------------------

#: Numbered events: two accounts, a source of each, a stratum (days since 1970, some
#: before it) and whether the event straddles two strata.
NUMBERED = st.lists(
    st.tuples(
        st.integers(1, 5),
        st.integers(1, 9),
        st.integers(1, 5),
        st.integers(1, 9),
        st.sampled_from([-40_000, -1, 0, 3, 4, 18_414, 40_000]),
        st.booleans(),
    ),
    max_size=60,
)


def _numbered(
    con: duckdb.DuckDBPyConnection, rows: list[tuple[int, int, int, int, int, bool]]
) -> None:
    con.execute(
        "CREATE OR REPLACE TABLE ev (aid_1 INTEGER, sid_1 INTEGER, aid_2 INTEGER, "
        "sid_2 INTEGER, s BIGINT, straddles BOOLEAN)"
    )
    if rows:
        con.executemany("INSERT INTO ev VALUES (?, ?, ?, ?, ?, ?)", rows)


@settings(max_examples=examples(100), deadline=None)
@given(rows=NUMBERED, wide=st.booleans())
def test_the_sorted_meetings_are_duckdbs_grouping(
    rows: list[tuple[int, int, int, int, int, bool]], wide: bool
) -> None:
    """The expectations' meetings from packed keys sorted in numpy: the rows of the
    plain grouping, and the plain grouping itself where the keys would need more than
    63 bits (``wide``: numbers of accounts and sources near 2^31)."""
    if wide:
        rows = [(a << 26, x << 26, b << 26, y << 26, s, t) for a, x, b, y, s, t in rows]
    con = duckdb.connect()
    _numbered(con, rows)
    sorted_keys: list[str] = []
    real = duck._keys

    def keys(c: duckdb.DuckDBPyConnection, query: str) -> npt.NDArray[np.int64]:
        sorted_keys.append(query)
        return real(c, query)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(duck, "_keys", keys)
        duck._meetings(con, "ev", "packed")
    con.execute(duck._MEETINGS.format(ev="ev", met="plain"))
    assert bool(sorted_keys) == (bool(rows) and not wide)
    assert _types(con, "packed") == _types(con, "plain")
    got = sorted(con.sql("SELECT * FROM packed").fetchall())
    assert got == sorted(con.sql("SELECT * FROM plain").fetchall())
    con.close()


def test_more_events_than_the_limit_are_grouped_by_duckdb() -> None:
    con = duckdb.connect()
    _numbered(con, [(1, 1, 2, 3, 0, False), (1, 2, 2, 3, 0, True), (1, 1, 2, 4, 1, True)])
    duck._meetings(con, "ev", "capped", limit=2)
    duck._meetings(con, "ev", "packed")
    want = [(1, 2, 0, 1, False), (1, 2, 1, 1, True)]
    assert sorted(con.sql("SELECT * FROM capped").fetchall()) == want
    assert sorted(con.sql("SELECT * FROM packed").fetchall()) == want
    con.close()


def _assert_the_formula(
    rows: list[tuple[str, str, float, str, str]],
    stratum: float,
    kinds: tuple[str, ...] | None,
) -> None:
    """The engine's sums over ``rows`` paired in a 45 s window are those of
    :func:`_expectations`, pair by pair."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    table = _load(con, rows)
    engine = DuckDBEngine(con)
    paired = engine.pair(table, [CoAction(window=45)])
    sums = engine.expectations(paired.events, table, stratum=stratum, kinds=kinds)
    got = {
        (p1, a1, p2, a2): (w, lam)
        for p1, a1, p2, a2, w, lam in con.sql(f"SELECT * FROM {sums}").fetchall()
    }
    events = con.sql(
        "SELECT platform_1, account_1, platform_2, account_2, ts_1, ts_2, source_1, source_2 "
        f"FROM {paired.events}"
    ).fetchall()
    expected = _expectations(rows, events, stratum, kinds)
    assert got.keys() == expected.keys()
    for pair, (w, lam) in expected.items():
        assert got[pair][0] == w
        assert got[pair][1] == pytest.approx(lam, rel=1e-9, abs=1e-12)
    con.close()
