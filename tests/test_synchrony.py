"""Synchrony (SynchroTrap-style matched actions) and rhythm (time-bin co-activity)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import hypergeom

from concerted.detectors.coaction import CoAction
from concerted.detectors.pairing import viral_of_arrays, viral_of_rows
from concerted.detectors.synchrony import (
    Rhythm,
    Synchrony,
    candidate_probability,
    minhash,
    surprise,
)
from concerted.errors import ConfigError
from concerted.significance import Significance, null_actions, relabelled_accounts
from concerted.testing.planted import ACTION_COLUMNS, insert_rows, planted_case
from tests.budget import examples

START = datetime(2020, 6, 1, tzinfo=UTC)
Row = tuple[str, str, str, str, datetime, str]


def _table(con: duckdb.DuckDBPyConnection, rows: list[Row], name: str = "a") -> str:
    con.execute(
        f"CREATE OR REPLACE TABLE {name} (actor_id VARCHAR, platform VARCHAR, kind VARCHAR, "
        "object_id VARCHAR, ts TIMESTAMPTZ, source_id VARCHAR)"
    )
    insert_rows(con, name, ACTION_COLUMNS, rows)
    return name


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'; SET memory_limit = '1GB'")
    yield connection
    connection.close()


def _at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def _echo_rows() -> list[Row]:
    """a: ten acts, an hour apart; b echoes four of them 10 s later (two reposts, two
    hashtags) and acts six times on its own; c acts ten times on its own."""
    rows: list[Row] = []
    for i in range(10):
        kind = "repost" if i % 2 else "hashtag"
        rows.append(("a", "x", kind, f"o{i}", _at(3600 * i), f"a{i}"))
        rows.append(("c", "x", "repost", f"c{i}", _at(3600 * i + 5), f"c{i}"))
    for i in range(4):
        kind = "repost" if i % 2 else "hashtag"
        rows.append(("b", "x", kind, f"o{i}", _at(3600 * i + 10), f"b{i}"))
    for i in range(6):
        rows.append(("b", "x", "hashtag", f"own{i}", _at(3600 * i + 1800), f"b-own{i}"))
    return rows


def test_synchrony_is_the_share_of_matched_actions(con: duckdb.DuckDBPyConnection) -> None:
    evidence = Synchrony(window=60, min_actions=10).detect(con, _table(con, _echo_rows()))
    edges = evidence.edges.project("account_1, account_2, weight, score, events, layer").fetchall()
    # a and b: 4 + 4 matched actions of 10 + 10.
    assert edges == [("a", "b", 8.0, 0.4, 4, "synchrony")]
    objects = sorted(r[0] for r in evidence.events.project("object_id").fetchall())
    assert objects == ["o0", "o1", "o2", "o3"]


def test_synchrony_needs_the_window_and_enough_actions(con: duckdb.DuckDBPyConnection) -> None:
    table = _table(con, _echo_rows())
    assert Synchrony(window=5, min_actions=10).detect(con, table).edges.fetchall() == []
    # b has ten actions: with eleven required it is not paired at all.
    assert Synchrony(window=60, min_actions=11).detect(con, table).edges.fetchall() == []


def test_synchrony_counts_an_action_matched_twice_once(con: duckdb.DuckDBPyConnection) -> None:
    rows = _echo_rows() + [("b", "x", "hashtag", "o0", _at(20), "b-again")]
    edges = Synchrony(min_actions=10).detect(con, _table(con, rows)).edges
    weight, score, events = edges.project("weight, score, events").fetchall()[0]
    # a's act on o0 matches two of b's; it counts once: (4 + 5) / (10 + 11).
    assert (weight, events) == (9.0, 5)
    assert score == pytest.approx(9 / 21)


@settings(max_examples=examples(25), deadline=None)
@given(
    seed=st.integers(0, 10_000),
    accounts=st.integers(2, 6),
    acts=st.integers(1, 30),
)
def test_synchrony_scores_are_symmetric_bounded_and_order_free(
    seed: int, accounts: int, acts: int
) -> None:
    rnd = random.Random(seed)
    rows: list[Row] = [
        (
            f"u{rnd.randrange(accounts)}",
            "x",
            rnd.choice(("repost", "hashtag")),
            f"o{rnd.randrange(8)}",
            _at(rnd.uniform(0, 600)),
            f"s{i}",
        )
        for i in range(acts * accounts)
    ]
    con = duckdb.connect()
    detector = Synchrony(window=60, min_actions=1)
    first = detector.detect(con, _table(con, rows)).edges.project(
        "account_1, account_2, weight, score"
    )
    found = sorted(first.fetchall())
    for a, b, weight, score in found:
        assert a < b and 0 <= score <= 1 and weight >= 2
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    again = detector.detect(con, _table(con, shuffled, "b")).edges
    assert sorted(again.project("account_1, account_2, weight, score").fetchall()) == found
    # Renaming accounts so that their order flips leaves every score as it was.
    flipped = [(f"v{9 - int(r[0][1:])}", *r[1:]) for r in rows]
    renamed = detector.detect(con, _table(con, flipped, "c")).edges
    back = {
        tuple(sorted((f"u{9 - int(a[1:])}", f"u{9 - int(b[1:])}"))): (w, s)
        for a, b, w, s in renamed.project("account_1, account_2, weight, score").fetchall()
    }
    assert back == {(a, b): (w, s) for a, b, w, s in found}
    con.close()


def test_synchrony_settings_are_checked() -> None:
    for bad in ({"window": -1}, {"min_actions": 0}, {"min_weight": 1}, {"kinds": ()}):
        with pytest.raises(ConfigError):
            Synchrony(**bad)


def _bin_rows(account: str, bins: list[int], start: int = 0) -> list[Row]:
    return [
        (account, "x", "hashtag", f"{account}-{b}", _at(1800 * b + 60), f"{account}-{start + i}")
        for i, b in enumerate(bins)
    ]


def test_rhythm_scores_shared_bins(con: duckdb.DuckDBPyConnection) -> None:
    rows = (
        _bin_rows("a", list(range(0, 20)))
        + _bin_rows("b", list(range(0, 10)) + list(range(190, 200)))
        + _bin_rows("c", list(range(300, 320)))
    )
    evidence = Rhythm(min_bins=8).detect(con, _table(con, rows))
    edges = evidence.edges.project("account_1, account_2, weight, score, events").fetchall()
    assert len(edges) == 1
    a, b, weight, score, shared = edges[0]
    assert (a, b, shared) == ("a", "b", 10)
    assert score == pytest.approx(10 / 20)
    # The pair's span runs from bin 0 to bin 199.
    expected = -hypergeom.logsf(9, 200, 20, 20) / np.log(10)
    assert weight == pytest.approx(expected)
    stamps = evidence.events.project("object_id").order("object_id").fetchall()
    assert stamps[0] == ("2020-06-01T00:00:00Z",)


def test_rhythm_leaves_out_quiet_accounts_and_chance(con: duckdb.DuckDBPyConnection) -> None:
    rows = _bin_rows("a", list(range(10)) + list(range(100, 110))) + _bin_rows("b", list(range(10)))
    table = _table(con, rows)
    assert Rhythm(min_bins=11).detect(con, table).edges.fetchall() == []
    assert len(Rhythm(min_bins=10).detect(con, table).edges.fetchall()) == 1
    # An account active in every bin shares all of b's bins by necessity: no surprise.
    busy = _bin_rows("a", list(range(40))) + _bin_rows("b", list(range(0, 40, 2)))
    rhythm = Rhythm(min_bins=5, min_surprise=0)
    assert rhythm.detect(con, _table(con, busy, "busy")).edges.fetchall() == []


def test_rhythm_finds_a_planted_group_among_many(con: duckdb.DuckDBPyConnection) -> None:
    rnd = random.Random(3)
    rows: list[Row] = []
    for i in range(300):
        rows += _bin_rows(f"o{i}", rnd.sample(range(672), rnd.randint(8, 40)), start=0)
    shared = rnd.sample(range(672), 30)
    for i in range(6):
        rows += _bin_rows(f"t{i}", shared + rnd.sample(range(672), 10))
    evidence = Rhythm().detect(con, _table(con, rows))
    edges = evidence.edges.project("account_1, account_2, weight").fetchall()
    team = {(a, b) for a, b, _ in edges if a.startswith("t") and b.startswith("t")}
    assert len(team) == 15
    heaviest = sorted(edges, key=lambda e: -e[2])[:15]
    assert {(a, b) for a, b, _ in heaviest} == team
    assert evidence.notes["candidate_pairs"] < 300 * 299 // 2


@settings(max_examples=examples(40), deadline=None)
@given(
    total=st.integers(2, 400),
    data=st.data(),
)
def test_surprise_is_the_hypergeometric_tail(total: int, data: st.DataObject) -> None:
    n1 = data.draw(st.integers(1, total))
    n2 = data.draw(st.integers(1, total))
    low = max(0, n1 + n2 - total)
    k = data.draw(st.integers(max(low, 1), min(n1, n2)))
    got = surprise([k], [n1], [n2], total)[0]
    assert got == surprise([k], [n2], [n1], total)[0]
    exact = -hypergeom.logsf(k - 1, total, n1, n2) / np.log(10)
    mode = np.floor((n1 + 1) * (n2 + 1) / (total + 2))
    if k > mode:
        assert got == pytest.approx(max(exact, 0.0), abs=1e-6, rel=1e-6)
    else:
        assert got == 0.0 and exact < 0.5


def test_minhash_estimates_jaccard_and_ignores_row_order() -> None:
    rng = np.random.default_rng(1)
    a = rng.choice(10_000, 300, replace=False)
    b = np.concatenate([a[:150], rng.choice(np.arange(10_000, 20_000), 150, replace=False)])
    owner = np.repeat(np.array([0, 1], dtype=np.int64), 300)
    sig = minhash(owner, np.concatenate([a, b]).astype(np.int64), hashes=512, seed=7)
    estimate = float((sig[0] == sig[1]).mean())
    assert estimate == pytest.approx(150 / 450, abs=0.07)
    again = minhash(
        owner,
        np.concatenate([rng.permutation(a), rng.permutation(b)]).astype(np.int64),
        hashes=512,
        seed=7,
    )
    assert (again == sig).all()


def test_candidate_probability_rises_with_similarity() -> None:
    values = [candidate_probability(j, bands=256, rows=3) for j in (0.0, 0.1, 0.2, 0.5, 1.0)]
    assert values == sorted(values) and values[0] == 0.0 and values[-1] == 1.0


def test_rhythm_settings_are_checked() -> None:
    for bad in (
        {"bin_seconds": 0},
        {"min_bins": 0},
        {"min_shared": 0},
        {"min_surprise": -1},
        {"bands": 0},
        {"max_bucket": 1},
    ):
        with pytest.raises(ConfigError):
            Rhythm(**bad)  # type: ignore[arg-type]


def test_the_float_test_agrees_with_the_whole_number_test(
    con: duckdb.DuckDBPyConnection,
) -> None:
    planted_case(con, seed=11)
    detector = CoAction(window=60)
    test = Significance(replicates=2, fdr=0.05)
    con.execute(f"CREATE TABLE e AS {detector.detect(con, 'actions').edges.sql_query()}")
    result = test.test(con, "e", test.null_weights(con, "actions", detector))
    whole, whole_notes = result.edges, result.notes
    values = test.null_statistics(con, "actions", detector)
    result = test.test_statistic(con, "e", values)
    float_, notes = result.edges, result.notes
    key = "platform_1, account_1, platform_2, account_2, layer"
    one = whole.project(f"{key}, expected, p_value, q_value, significant").order(key).fetchall()
    two = float_.project(f"{key}, expected, p_value, q_value, significant").order(key).fetchall()
    assert len(one) == len(two) > 0
    for x, y in zip(one, two, strict=True):
        assert x[:5] == y[:5] and x[8] == y[8]
        assert x[5:8] == pytest.approx(y[5:8])
    assert notes["pairs_significant"] == whole_notes["pairs_significant"]


def test_synchrony_and_rhythm_find_the_planted_network_significant(
    con: duckdb.DuckDBPyConnection,
) -> None:
    truth = planted_case(con, seed=12)
    network = {a for _, a in truth.network}
    test = Significance(replicates=3, fdr=0.01)
    for detector in (Synchrony(), Rhythm()):
        con.execute(
            f"CREATE OR REPLACE TABLE e AS {detector.detect(con, 'actions').edges.sql_query()}"
        )
        values = test.null_statistics(con, "actions", detector)
        result = test.test_statistic(con, "e", values)
        tested, notes = result.edges, result.notes
        flagged = tested.filter("significant").project("account_1, account_2").fetchall()
        accounts = {a for pair in flagged for a in pair}
        assert flagged, detector.name
        assert accounts <= network | {a for _, a in truth.reporters}, detector.name
        assert notes["statistic"] == "sum(weight)"


@pytest.mark.parametrize("seed", [12, 13])
def test_synchrony_weights_alone_are_its_edges_weights(
    con: duckdb.DuckDBPyConnection, seed: int
) -> None:
    """The randomised copies of the test read `null_statistic`, the pairs' weights
    without the rest of the evidence: the same values as `detect`'s edges give, on the
    case and on a relabelled copy, and no table left behind."""
    planted_case(con, seed=seed)
    detector = Synchrony(min_actions=3)
    before = con.sql("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()
    for actions in ("actions", null_actions("actions", null="relabel", seed=seed)):
        evidence = detector.detect(con, actions)
        full = con.sql(
            f"""SELECT sum(weight)::DOUBLE AS s FROM ({evidence.edges.sql_query()})
                GROUP BY platform_1, account_1, platform_2, account_2"""
        ).fetchnumpy()["s"]
        evidence.release(con)
        alone = detector.null_statistic(con, actions)
        assert full.size > 0
        assert np.array_equal(np.sort(full), np.sort(alone))
    after = con.sql("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()
    assert after == before


@pytest.mark.parametrize(
    ("settings", "kinds"),
    [
        ({"min_actions": 3}, None),
        ({"min_actions": 2, "max_object_pairs": 3}, None),
        ({"min_actions": 3, "kinds": ("repost", "share_url")}, None),
        ({"min_actions": 3, "kinds": ("repost",)}, ("repost", "hashtag")),
    ],
)
def test_synchrony_copies_from_draws_are_the_copies_of_the_actions(
    con: duckdb.DuckDBPyConnection, settings: dict[str, object], kinds: tuple[str, ...] | None
) -> None:
    """The copies made from the relabel null's draws (the actions numbered once, each
    copy moving the slots to their new accounts) give exactly the weights that the
    detector gives on the relabelled actions themselves, viral objects left out
    alike, and leave no table behind."""
    planted_case(con, seed=21)
    detector = Synchrony(**settings)  # type: ignore[arg-type]
    seeds = [0, 1, 2]
    before = con.sql("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()
    copies = [
        detector.null_statistic(con, null_actions("actions", null="relabel", seed=s, kinds=kinds))
        for s in seeds
    ]
    where = "" if kinds is None else f"WHERE kind IN {tuple(kinds)!r}".replace(",)", ")")
    drawn = detector.null_statistics_of_draws(
        con,
        f"(SELECT * FROM actions {where})",
        [relabelled_accounts("actions", seed=s, kinds=kinds) for s in seeds],
    )
    assert len(drawn) == len(copies)
    assert sum(c.size for c in copies) > 0
    for copy, fast in zip(copies, drawn, strict=True):
        assert np.array_equal(np.sort(copy), np.sort(fast))
    after = con.sql("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()
    assert after == before


def test_the_test_reads_synchronys_draws_and_gives_what_the_copies_give(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """`Significance.null_statistics` takes synchrony's copies from the draws under
    `relabel`; a detector without that method (the same synchrony, wrapped) gets the
    copies of the actions: the same null values."""
    planted_case(con, seed=22)
    detector = Synchrony(min_actions=3)

    class Plain:
        name = detector.name

        def detect(self, con: duckdb.DuckDBPyConnection, actions: str) -> object:
            return detector.detect(con, actions)

        def null_statistic(self, con: duckdb.DuckDBPyConnection, actions: str) -> object:
            return detector.null_statistic(con, actions)

    test = Significance(replicates=2, null="relabel")
    fast = test.null_statistics(con, "actions", detector)
    plain = test.null_statistics(con, "actions", Plain())  # type: ignore[arg-type]
    assert fast.size > 0
    assert np.array_equal(fast, plain)


def messy_actions(rnd: random.Random, n: int, objects: int = 6) -> list[tuple[object, ...]]:
    """Actions of a few accounts on two platforms over ``objects`` objects within
    minutes: ties in time, an account on both platforms, repeated sources, and a
    missing platform, source, account, object or time now and then (also read by
    ``test_pairing_partitions.py``)."""

    def some(value: str) -> str | None:
        return None if rnd.random() < 0.03 else value

    return [
        (
            some(f"u{rnd.randrange(9)}"),
            some(rnd.choice(("x", "x", "y"))),
            rnd.choice(("repost", "hashtag", "reply")),
            some(f"o{rnd.randrange(objects)}"),
            None if rnd.random() < 0.02 else _at(rnd.randrange(0, 400, 5)),
            some(f"s{rnd.randrange(n)}"),
        )
        for _ in range(n)
    ]


@settings(max_examples=examples(30), deadline=None)
@given(
    seed=st.integers(0, 10_000),
    acts=st.integers(5, 120),
    window=st.sampled_from([0, 7, 30, 60]),
    min_actions=st.integers(1, 6),
    min_weight=st.integers(2, 5),
    cap=st.sampled_from([None, 1, 4, 40]),
    kinds=st.sampled_from([None, ("repost", "hashtag")]),
)
def test_synchronys_copies_from_seeds_and_draws_are_the_copies_of_the_actions(
    seed: int,
    acts: int,
    window: int,
    min_actions: int,
    min_weight: int,
    cap: int | None,
    kinds: tuple[str, ...] | None,
) -> None:
    """The copies made in numpy (the draws made from their seeds, or given as SQL)
    give exactly the weights that the detector's SQL gives on the relabelled actions
    themselves, on actions with missing values, ties, viral objects and settings
    drawn at random."""
    rnd = random.Random(seed)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    _table(con, messy_actions(rnd, acts))  # type: ignore[arg-type]
    detector = Synchrony(
        window=window,
        min_actions=min_actions,
        min_weight=min_weight,
        max_object_pairs=cap,
        kinds=kinds,
    )
    seeds = [seed, seed + 1]
    plain = [detector.null_statistic(con, null_actions("a", null="relabel", seed=s)) for s in seeds]
    drawn = detector.null_statistics_of_draws(
        con, "a", [relabelled_accounts("a", seed=s) for s in seeds]
    )
    seeded = detector.null_statistics_of_seeds(con, "a", seeds)
    for copy, one, two in zip(plain, drawn, seeded, strict=True):
        assert np.array_equal(np.sort(copy), np.sort(one))
        assert np.array_equal(np.sort(copy), np.sort(two))
    assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone() == (0,)
    con.close()


def _sql_figures(
    con: duckdb.DuckDBPyConnection, actions: str, detector: Synchrony
) -> list[tuple[object, ...]]:
    """The detector's edges as its SQL counted them before the matched actions were
    counted in numpy: distinct rows of each side per pair, from the pairing."""
    active, keys = detector._pair(con, actions, 10**9)  # apart from the detector's own
    try:
        return con.sql(
            f"""WITH m AS (
                    SELECT a_1, a_2, count(DISTINCT r_1) AS m_1, count(DISTINCT r_2) AS m_2,
                           count(*) AS events,
                           count(*) FILTER (WHERE t_1 < t_2) AS lead_1,
                           count(*) FILTER (WHERE t_2 < t_1) AS lead_2,
                           median(abs(t_1 - t_2)) / 1e6 AS median_dt,
                           min(least(t_1, t_2)) AS first_t, max(greatest(t_1, t_2)) AS last_t
                    FROM {keys.pairs} GROUP BY a_1, a_2
                    HAVING count(DISTINCT r_1) + count(DISTINCT r_2)
                           >= {detector.min_weight}),
                t AS (SELECT aid, count(*) AS n FROM {keys.rows} GROUP BY aid)
                SELECT u1.platform, u1.actor_id, u2.platform, u2.actor_id,
                       (m.m_1 + m.m_2)::DOUBLE, ((m.m_1 + m.m_2) / (t1.n + t2.n))::DOUBLE,
                       m.events, m.lead_1, m.lead_2, m.median_dt::DOUBLE,
                       make_timestamptz(m.first_t), make_timestamptz(m.last_t)
                FROM m JOIN t t1 ON t1.aid = m.a_1 JOIN t t2 ON t2.aid = m.a_2
                JOIN {keys.accounts} u1 ON u1.aid = m.a_1
                JOIN {keys.accounts} u2 ON u2.aid = m.a_2 ORDER BY ALL"""
        ).fetchall()
    finally:
        for table in (*keys.tables, active):
            con.execute(f"DROP TABLE IF EXISTS {table}")


_EDGE = (
    "platform_1, account_1, platform_2, account_2, weight, score, events, lead_1, lead_2, "
    "median_dt, first_ts, last_ts"
)


@settings(max_examples=examples(30), deadline=None)
@given(
    seed=st.integers(0, 10_000),
    acts=st.integers(5, 150),
    window=st.sampled_from([0, 7, 30, 60]),
    min_weight=st.integers(2, 5),
    cap=st.sampled_from([None, 2, 40]),
)
def test_synchronys_weights_in_numpy_are_its_sql_counts(
    seed: int, acts: int, window: int, min_weight: int, cap: int | None
) -> None:
    """`detect` counts each pair's matched actions on integers in numpy: the same
    edges, to the bit, as counting each side's distinct matched rows in SQL, and the
    same events."""
    rnd = random.Random(seed)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    _table(con, messy_actions(rnd, acts))  # type: ignore[arg-type]
    detector = Synchrony(window=window, min_actions=2, min_weight=min_weight, max_object_pairs=cap)
    evidence = detector.detect(con, "a")
    assert evidence.edges.project(_EDGE).order(_EDGE).fetchall() == _sql_figures(con, "a", detector)
    pairs = set(evidence.edges.project("account_1, account_2").fetchall())
    events = evidence.events.project("account_1, account_2").fetchall()
    assert set(events) == pairs
    evidence.release(con)
    con.close()


def test_synchronys_edges_on_the_planted_case_are_its_sql_counts(
    con: duckdb.DuckDBPyConnection,
) -> None:
    planted_case(con, seed=12)
    detector = Synchrony(min_actions=3)
    evidence = detector.detect(con, "actions")
    edges = evidence.edges.project(_EDGE).order(_EDGE).fetchall()
    assert len(edges) > 100
    assert edges == _sql_figures(con, "actions", detector)
    evidence.release(con)


@settings(max_examples=examples(50), deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(1, 6), st.integers(-3, 3)), min_size=0, max_size=60),
    cap=st.integers(0, 30),
)
def test_the_copies_viral_objects_are_pairings(rows: list[tuple[int, int]], cap: int) -> None:
    """The copies find the objects over the cap as the pairing does
    (`viral_of_rows`), buckets before the epoch included."""
    obj = np.array([o for o, _ in rows], dtype=np.int64)
    bucket = np.array([b for _, b in rows], dtype=np.int64)
    con = duckdb.connect()
    con.execute("CREATE TABLE r (oid BIGINT, b BIGINT)")
    insert_rows(con, "r", ["oid", "b"], rows)
    viral = viral_of_rows(con, "r", cap=cap)
    expected = sorted(o for (o,) in con.sql(f"SELECT oid FROM {viral}").fetchall())
    assert viral_of_arrays(obj, bucket, cap).tolist() == expected
    con.close()
