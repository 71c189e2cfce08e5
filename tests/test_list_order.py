"""S8 shared list order: the longest common order, Kendall's counts, walks and waves."""

from __future__ import annotations

import bisect
import itertools
import random

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.detectors.list_order import ListOrder, longest_increasing
from concerted.detectors.pairing import pair_keys
from concerted.errors import ConfigError
from concerted.testing.planted import report_actions as _actions
from tests.budget import examples

DAY = 86400.0
Report = tuple[str, str, float]  # reporter, target, seconds after concerted.testing.planted.START


def _walk(who: str, targets: list[str], start: float, gap: float = 30.0) -> list[Report]:
    return [(who, t, start + gap * i) for i, t in enumerate(targets)]


def _edges(
    con: duckdb.DuckDBPyConnection, table: str, **settings: float
) -> dict[tuple[str, str], tuple[float, float]]:
    evidence = ListOrder(**settings).detect(con, table)  # type: ignore[arg-type]
    rows = evidence.edges.project("account_1, account_2, weight, score").fetchall()
    return {(a, b): (w, s) for a, b, w, s in rows}


def _lis(values: list[int]) -> int:
    tails: list[int] = []
    for v in values:
        i = bisect.bisect_left(tails, v)
        tails[i : i + 1] = [v]
    return len(tails)


@settings(max_examples=examples(100), deadline=None)
@given(st.lists(st.lists(st.integers(0, 9), max_size=12), min_size=1, max_size=6))
def test_longest_increasing_matches_the_textbook(sequences: list[list[int]]) -> None:
    kept = [s for s in sequences if s]
    groups = [g for g, s in enumerate(kept) for _ in s]
    values = [v for s in kept for v in s]
    assert longest_increasing(groups, values).tolist() == [_lis(s) for s in kept]


def test_same_order_reversed_and_shuffled(con: duckdb.DuckDBPyConnection) -> None:
    listed = [f"t{i}" for i in range(20)]
    shuffled = listed[:]
    random.Random(1).shuffle(shuffled)
    reports = (
        _walk("a", listed, 0)
        + _walk("b", listed, 600)
        + _walk("c", listed[::-1], 1200)
        + _walk("d", shuffled, 1800)
    )
    found = _edges(con, _actions(con, reports))
    assert found[("a", "b")][0] == 20.0
    assert found[("a", "b")][1] == pytest.approx(190 / 200)
    assert found[("a", "c")] == (1.0, 0.0)
    assert found[("a", "d")][1] < 0.3
    assert found[("a", "d")][0] == _lis([shuffled.index(t) for t in listed])


def test_kendall_counts_by_hand(con: duckdb.DuckDBPyConnection) -> None:
    """Orders a b c d e and a c b d e: one discordant pair of ten."""
    reports = _walk("x", list("abcde"), 0) + _walk("y", list("acbde"), 100)
    ((weight, score),) = _edges(con, _actions(con, reports), smoothing=0).values()
    assert weight == 4.0
    assert score == pytest.approx((9 - 1) / 10)
    ((_, smoothed),) = _edges(con, _actions(con, reports), smoothing=10).values()
    assert smoothed == pytest.approx((9 - 1) / 20)


def test_waves_days_apart_are_not_compared(con: duckdb.DuckDBPyConnection) -> None:
    """Within each wave the two walk opposite orders; that both did wave 1 before
    wave 2 is no agreement."""
    one, two = [f"p{i}" for i in range(6)], [f"q{i}" for i in range(6)]
    reports = (
        _walk("a", one, 0)
        + _walk("b", one[::-1], 60)
        + _walk("a", two, 5 * DAY)
        + _walk("b", two[::-1], 5 * DAY + 60)
    )
    ((weight, score),) = _edges(con, _actions(con, reports)).values()
    assert score == 0.0
    assert weight == 2.0  # one target of each wave


def test_candidates_need_common_targets_and_are_capped(con: duckdb.DuckDBPyConnection) -> None:
    listed = [f"t{i}" for i in range(6)]
    reports = [r for k, who in enumerate("abcde") for r in _walk(who, listed, 100 * k)]
    reports += _walk("few", listed[:3], 50)
    table = _actions(con, reports)
    found = _edges(con, table)
    assert len(found) == 10 and not any("few" in pair for pair in found)
    assert len(_edges(con, table, min_common=3)) == 15
    capped = ListOrder(max_pairs=4).detect(con, table)
    few = ListOrder(max_partners=1).detect(con, table)
    assert len(few.edges.fetchall()) < 10
    assert len(capped.edges.fetchall()) == 4
    assert capped.notes["candidate_pairs"] == 10 and capped.notes["pairs_kept"] == 4


def test_each_report_matched_once(con: duckdb.DuckDBPyConnection) -> None:
    """b reported t0 twice within the window: one item, with the nearer report."""
    reports = _walk("a", ["t0", "t1", "t2", "t3"], 1000) + [
        ("b", "t0", 0),
        *_walk("b", ["t0", "t1", "t2", "t3"], 1010),
    ]
    evidence = ListOrder().detect(con, _actions(con, reports))
    items = evidence.events.project("object_id, source_1, source_2").fetchall()
    assert sorted(items) == [
        ("t0", "r0", "r5"),
        ("t1", "r1", "r6"),
        ("t2", "r2", "r7"),
        ("t3", "r3", "r8"),
    ]
    assert evidence.edges.project("events").fetchall() == [(4,)]


def test_account_signals(con: duckdb.DuckDBPyConnection) -> None:
    """Six extension-like walkers agree with five others each; a shuffler with none."""
    listed = [f"t{i}" for i in range(15)]
    shuffled = listed[:]
    random.Random(3).shuffle(shuffled)
    reports = [r for k in range(6) for r in _walk(f"e{k}", listed, 60 * k)]
    reports += _walk("h", shuffled, 500)
    signals = ListOrder().detect(con, _actions(con, reports)).signals
    scored = dict(signals.project("id, score").fetchall())
    partners = dict(signals.project("id, value").fetchall())
    assert all(scored[f"e{k}"] > 0.9 for k in range(6))
    assert scored["h"] < 0.5
    assert partners["h"] == 6.0 and partners["e0"] == 6.0


def test_settings_are_checked() -> None:
    for bad in (
        {"window": -1},
        {"min_common": 1},
        {"max_pairs": 0},
        {"smoothing": -1},
        {"min_partners": 0},
        {"max_object_pairs": 0},
    ):
        with pytest.raises(ConfigError):
            ListOrder(**bad)


@settings(max_examples=examples(30), deadline=None)
@given(
    orders=st.lists(st.permutations(list(range(6))), min_size=2, max_size=5),
    seed=st.integers(0, 1000),
)
def test_properties(orders: list[list[int]], seed: int) -> None:
    """The score is the shrunk Kendall tau of the two walks, the weight their longest
    common order; both lie in range; the rows' order changes nothing."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        reports = [
            r
            for k, order in enumerate(orders)
            for r in _walk(f"u{k}", [f"t{i}" for i in order], 10.0 * k)
        ]
        table = _actions(con, reports)
        evidence = ListOrder(smoothing=5).detect(con, table)
        rows = sorted(evidence.edges.fetchall(), key=repr)
        for _, _, _, a1, _, a2, weight, score, *_ in rows:
            x, y = orders[int(a1[1:])], orders[int(a2[1:])]
            rank = {t: i for i, t in enumerate(y)}
            pairs = list(itertools.combinations(x, 2))
            c = sum(rank[s] < rank[t] for s, t in pairs)
            assert score == pytest.approx(max(0.0, (c - (15 - c)) / (15 + 5)))
            assert weight == _lis([rank[t] for t in x])
            assert 0.0 <= score <= 1.0
        signals = evidence.signals.fetchall()
        assert all(0.0 <= s[5] <= 1.0 for s in signals)
        con.execute(f"CREATE TABLE b AS SELECT * FROM a ORDER BY hash(source_id, {seed})")
        again = ListOrder(smoothing=5).detect(con, "b")
        assert sorted(again.edges.fetchall(), key=repr) == rows
        assert sorted(again.signals.fetchall(), key=repr) == sorted(signals, key=repr)
    finally:
        con.close()


@settings(max_examples=examples(20), deadline=None)
@given(
    orders=st.lists(st.permutations(list(range(6))), min_size=2, max_size=5),
    extra=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 7)), max_size=10),
)
def test_a_shared_pairing_gives_the_same_evidence(
    orders: list[list[int]], extra: list[tuple[int, int]]
) -> None:
    """from_pairs on one pairing of the reports (as co-reporting makes it, pairing
    accounts with two targets or more) gives what detect gives; a pairing that left out
    accounts list order needs is refused."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        reports = [
            r
            for k, order in enumerate(orders)
            for r in _walk(f"u{k}", [f"t{i}" for i in order], 10.0 * k)
        ] + [(f"u{k}", f"t{t}", 500.0 + 7 * i) for i, (k, t) in enumerate(extra)]
        table = _actions(con, reports)
        detector = ListOrder(min_common=3, min_partners=2)
        own = detector.detect(con, table)
        keys = pair_keys(
            con, table, window=10_800, kinds=("report",), max_object_pairs=2_000_000, min_objects=2
        )
        shared = detector.from_pairs(con, keys)
        for part in ("edges", "events", "signals"):
            assert sorted(getattr(shared, part).fetchall(), key=repr) == sorted(
                getattr(own, part).fetchall(), key=repr
            )
        assert shared.notes == own.notes
        narrow = pair_keys(
            con, table, window=10_800, kinds=("report",), max_object_pairs=2_000_000, min_objects=4
        )
        with pytest.raises(ConfigError):
            detector.from_pairs(con, narrow)
    finally:
        con.close()


@settings(max_examples=examples(40), deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 300),
    reporters=st.integers(2, 20),
    targets=st.integers(1, 15),
    min_common=st.integers(2, 5),
)
def test_candidates_are_the_pairs_sharing_enough_targets(
    seed: int, n: int, reporters: int, targets: int, min_common: int
) -> None:
    """The candidates, counted after thinning the pairs by their matched reports, are
    the pairs of the plain count of distinct common targets, on random reports that
    meet on the same targets again and again (so that many pairs have several matched
    reports on one target)."""
    rng = random.Random(seed)
    reports = [
        (f"u{rng.randrange(reporters)}", f"t{rng.randrange(targets)}", 60.0 * rng.randrange(30))
        for _ in range(n)
    ]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        table = _actions(con, reports)
        detector = ListOrder(min_common=min_common, max_partners=10**6, max_pairs=10**6)
        keys = pair_keys(
            con, table, window=10_800, kinds=("report",), max_object_pairs=detector.max_object_pairs
        )
        evidence = detector.from_pairs(con, keys)
        got = con.sql(
            f"""SELECT count(*) FROM (SELECT a_1, a_2 FROM {keys.pairs} GROUP BY a_1, a_2
                HAVING count(DISTINCT oid) >= {min_common})"""
        ).fetchone()
        assert got is not None
        assert evidence.notes["candidate_pairs"] == got[0] == evidence.notes["pairs_kept"]
        evidence.release(con)
    finally:
        con.close()
