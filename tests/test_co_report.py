"""S2 co-reporting: the window, the smoothed NPMI by hand, the evidence, significance."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from concerted.brigades import counting
from concerted.brigades import test as brigade_test
from concerted.brigades.test import analytic, poisson_tail
from concerted.detectors.co_report import CoReport, npmi
from concerted.detectors.pairing import pair_keys
from concerted.errors import ConfigError
from concerted.significance import Significance
from concerted.testing.planted import START, actions_table, planted_case
from concerted.testing.planted import report_actions as _actions
from tests.budget import examples

Report = tuple[str, str, float]  # reporter, target, seconds after concerted.testing.planted.START


def test_npmi_by_hand(con: duckdb.DuckDBPyConnection) -> None:
    """a and b share 3 targets within the window; a reported 4 targets, b 5; 8 targets
    in all. With κ = 2: p_ab = 3/10, p_a = 6/10, p_b = 7/10."""
    reports: list[Report] = [
        *[("a", f"t{i}", 100.0 * i) for i in range(3)],
        *[("b", f"t{i}", 100.0 * i + 30) for i in range(3)],
        ("a", "t3", 5000),
        ("b", "t4", 6000),
        ("b", "t5", 7000),
        ("c", "t6", 8000),
        ("c", "t7", 9000),
    ]
    evidence = CoReport(smoothing=2).detect(con, _actions(con, reports))
    ((a1, a2, weight, score, events),) = evidence.edges.project(
        "account_1, account_2, weight, score, events"
    ).fetchall()
    expected = math.log(0.3 / (0.6 * 0.7)) / -math.log(0.3)
    assert (a1, a2, weight, events) == ("a", "b", 3.0, 3)
    assert score == pytest.approx(max(expected, 0.0))
    assert npmi(3, 4, 5, 8, 2) == pytest.approx(expected)


def test_smoothing_discounts_thin_evidence() -> None:
    """The same exclusive sharing scores higher with more shared targets, and an
    unsmoothed pair sharing its only target scores 1."""
    assert npmi(1, 1, 1, 3000, 0) == pytest.approx(1.0)
    scores = [npmi(n, n, n, 3000, 10) for n in (1, 2, 5, 10, 40)]
    assert scores == sorted(scores)
    assert scores[0] < 0.45 < 0.75 < scores[-1]


def test_window_and_min_weight(con: duckdb.DuckDBPyConnection) -> None:
    hour = 3600.0
    reports: list[Report] = [
        ("a", "t1", 0),
        ("b", "t1", 3 * hour),  # exactly the window: pairs
        ("a", "t2", 10 * hour),
        ("b", "t2", 13 * hour + 1),  # a second beyond: does not
        ("a", "t3", 20 * hour),
        ("b", "t3", 20 * hour + 60),
    ]
    table = _actions(con, reports)
    weights = CoReport().detect(con, table).edges.project("weight").fetchall()
    assert weights == [(2.0,)]
    assert CoReport(min_weight=3).detect(con, table).edges.fetchall() == []
    wide = CoReport(window=4 * 3600).detect(con, table).edges.project("weight")
    assert wide.fetchall() == [(3.0,)]


def test_evidence_names_and_sources(con: duckdb.DuckDBPyConnection) -> None:
    reports: list[Report] = [(w, f"t{i}", 10.0 * i + (w == "b")) for i in range(4) for w in "ab"]
    evidence = CoReport().detect(con, _actions(con, reports))
    assert evidence.edges.project("detector, layer").distinct().fetchall() == [
        ("co_report", "report")
    ]
    events = evidence.events.project("detector, layer, object_id, source_1, source_2").fetchall()
    assert len(events) == 4
    ids = {f"r{i}" for i in range(8)}
    assert all(d == "co_report" and layer == "report" for d, layer, *_ in events)
    assert {s for *_, s1, s2 in events for s in (s1, s2)} == ids
    assert evidence.signals.fetchall() == []
    assert evidence.notes["targets"] == 4


def test_other_kinds_are_ignored(con: duckdb.DuckDBPyConnection) -> None:
    table = _actions(con, [(w, f"t{i}", 10.0 * i) for i in range(3) for w in "ab"])
    con.execute(f"UPDATE {table} SET kind = 'repost'")
    assert CoReport().detect(con, table).edges.fetchall() == []


def test_significance_separates_the_planted_brigade(con: duckdb.DuckDBPyConnection) -> None:
    """The engine's test runs on the detector as on co-action: the planted reporters'
    pairs are significant, no other pair is."""
    truth = planted_case(con, seed=0)
    detector = CoReport()
    evidence = detector.detect(con, "actions")
    con.execute(f"CREATE TABLE found AS {evidence.edges.sql_query()}")
    significance = Significance(replicates=3)
    null = significance.null_weights(con, "actions", detector, ("report",))
    result = significance.test(con, "found", null)
    tested, notes = result.edges, result.notes
    rows = tested.project("platform_1, account_1, platform_2, account_2, significant").fetchall()
    planted = {
        (p1, a1, p2, a2)
        for p1, a1, p2, a2, _ in rows
        if (p1, a1) in truth.reporters and (p2, a2) in truth.reporters
    }
    assert len(planted) == 12 * 11 // 2
    assert {r[:4] for r in rows if r[4]} == planted
    assert notes["pairs_significant"] == len(planted)


def test_the_analytic_test_separates_the_planted_brigade(con: duckdb.DuckDBPyConnection) -> None:
    """The brigade stage's default test, with no copies: the planted reporters' pairs
    are significant, no other pair is, and each pair expects far fewer shared targets
    than the planted ones share."""
    truth = planted_case(con, seed=0)
    detector = CoReport()
    keys = detector.pairing(con, "actions")
    evidence = detector.from_pairs(con, keys)
    con.execute(f"CREATE TABLE found AS {evidence.edges.sql_query()}")
    result = analytic(con, keys, "found", Significance(), min_weight=2)
    tested, notes = result.edges, result.notes
    rows = tested.project(
        "platform_1, account_1, platform_2, account_2, significant, weight, expected"
    ).fetchall()
    planted = {
        r[:4] for r in rows if (r[0], r[1]) in truth.reporters and (r[2], r[3]) in truth.reporters
    }
    assert len(planted) == 12 * 11 // 2
    assert {r[:4] for r in rows if r[4]} == planted
    assert notes["pairs_significant"] == len(planted) and notes["pairs_tested"] == len(rows)
    assert all(0 < r[6] < r[5] / 2 for r in rows if r[:4] in planted)
    result.release(con)


def test_the_analytic_expectation_matches_relabelled_reports(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """Reporters drawn at random in proportion to their volume over fixed reports (the
    null itself, simulated): the shared targets of every pair of reporters, met or not,
    add up to what the analytic null expects of them (within 10%, over 30 draws)."""
    rng = np.random.default_rng(1)
    volume = np.array([40, 30, 20, 10, 10, 5, 5, 5, 3, 2] * 3)
    bursts = [float(rng.uniform(0, 20 * 3600)) for _ in range(20)]
    slots = [
        # Half the reports in bursts of a few minutes, half spread over the day.
        (
            bursts[i % 20] + float(rng.uniform(0, 600)) if i % 2 else float(rng.uniform(0, 72_000)),
            f"t{rng.integers(60)}",
        )
        for i in range(int(volume.sum()))
    ]
    observed, expected = 0.0, 0.0
    for _ in range(30):
        owners = rng.permutation(np.repeat(np.arange(volume.size), volume))
        reports = [(f"u{o}", target, ts) for o, (ts, target) in zip(owners, slots, strict=True)]
        detector = CoReport(min_weight=1)
        keys = detector.pairing(con, _actions(con, reports))
        evidence = detector.from_pairs(con, keys)
        con.execute(
            f"""CREATE OR REPLACE TABLE found AS
                WITH e AS ({evidence.edges.sql_query()})
                SELECT x.platform AS platform_1, x.actor_id AS account_1,
                       y.platform AS platform_2, y.actor_id AS account_2,
                       coalesce(e.weight, 0.0) AS weight, NULL::DOUBLE AS expected,
                       NULL::DOUBLE AS p_value, NULL::DOUBLE AS q_value,
                       NULL::BOOLEAN AS significant
                FROM {keys.accounts} x JOIN {keys.accounts} y ON x.aid < y.aid
                LEFT JOIN e ON e.account_1 = x.actor_id AND e.account_2 = y.actor_id"""
        )
        tested = analytic(con, keys, "found", Significance(), min_weight=1)
        got = tested.edges.aggregate("sum(weight), sum(expected), count(*)").fetchone()
        assert got is not None and got[2] == volume.size * (volume.size - 1) // 2
        observed += float(got[0])
        expected += float(got[1])
        tested.release(con)
        evidence.release(con)
        for name in keys.tables:
            con.execute(f"DROP TABLE IF EXISTS {name}")
    assert expected == pytest.approx(observed, rel=0.1)


@given(
    w=st.integers(1, 80),
    lam=st.floats(1e-3, 50),
    k=st.integers(1, 5),
)
def test_the_poisson_tail_is_the_conditional_tail(w: int, lam: float, k: int) -> None:
    want = 1.0 if w <= k else stats.poisson.sf(w - 1, lam) / stats.poisson.sf(k - 1, lam)
    got = float(poisson_tail([w], [lam], k=k)[0])
    assert got == pytest.approx(min(want, 1.0), rel=1e-6, abs=1e-300)


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError):
        CoReport(window=-1)
    with pytest.raises(ConfigError):
        CoReport(min_weight=0)
    with pytest.raises(ConfigError):
        CoReport(smoothing=-0.5)
    with pytest.raises(ConfigError):
        CoReport(max_object_pairs=0)


reports_strategy = st.lists(
    st.tuples(
        st.sampled_from([f"u{i}" for i in range(6)]),
        st.sampled_from([f"t{i}" for i in range(5)]),
        st.floats(0, 12 * 3600, allow_nan=False),
    ),
    max_size=40,
)


@settings(max_examples=examples(40), deadline=None)
@given(reports=reports_strategy, seed=st.integers(0, 1000), smoothing=st.floats(0, 20))
def test_properties(reports: list[Report], seed: int, smoothing: float) -> None:
    """Scores lie in [0, 1]; weights never exceed what either reporter reported; the
    rows' order changes nothing."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        detector = CoReport(smoothing=smoothing, min_weight=1)
        first = detector.detect(con, _actions(con, reports, "a"))
        rows = sorted(first.edges.fetchall(), key=repr)
        con.execute(f"CREATE TABLE b AS SELECT * FROM a ORDER BY hash(source_id, {seed})")
        assert sorted(detector.detect(con, "b").edges.fetchall(), key=repr) == rows
        targets: dict[str, set[str]] = {}
        for who, target, _ in reports:
            targets.setdefault(who, set()).add(target)
        for _, _, _, a1, _, a2, weight, score, *_ in rows:
            assert a1 < a2
            assert 1 <= weight <= min(len(targets[a1]), len(targets[a2]))
            assert 0.0 <= score <= 1.0
    finally:
        con.close()


@settings(max_examples=examples(25), deadline=None)
@given(reports=reports_strategy, min_weight=st.integers(1, 3))
def test_a_shared_pairing_gives_the_same_evidence(reports: list[Report], min_weight: int) -> None:
    """from_pairs on a pairing made by the caller (and shared with list order, which
    needs fewer accounts paired) gives what detect gives; a pairing made with other
    settings is refused."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        table = _actions(con, reports)
        detector = CoReport(min_weight=min_weight, window=3600)
        own = detector.detect(con, table)
        keys = pair_keys(con, table, window=3600, kinds=("report",), max_object_pairs=2_000_000)
        shared = detector.from_pairs(con, keys)
        for part in ("edges", "events"):
            assert sorted(getattr(shared, part).fetchall(), key=repr) == sorted(
                getattr(own, part).fetchall(), key=repr
            )
        assert shared.notes == own.notes
        assert not set(shared.temporary) & set(keys.tables)
        with pytest.raises(ConfigError):
            CoReport(min_weight=min_weight).from_pairs(con, keys)  # another window
    finally:
        con.close()


@settings(max_examples=examples(40), deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 300),
    targets=st.integers(1, 15),
    cap=st.sampled_from([None, 5, 40]),
    spread=st.sampled_from([60.0, 3600.0, 86_400.0]),
)
def test_the_targets_counts_equal_the_sql_windows(
    seed: int, n: int, targets: int, cap: int | None, spread: float
) -> None:
    """The analytic test's per-target counts (reports, share of pairs within the window)
    from the sorted scan and the compiled pair count equal the SQL window functions'
    exactly, on random reports over two platforms with ties in time and viral targets
    left out."""
    rng = np.random.default_rng(seed)
    rows = [
        (
            f"u{rng.integers(0, 20)}",
            str(rng.choice(["facebook", "instagram"])),
            "report",
            f"t{rng.integers(0, targets)}",
            START + timedelta(seconds=float(rng.integers(0, 20)) * spread / 10),
            f"r{i}",
        )
        for i in range(n)
    ]
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        keys = CoReport(max_object_pairs=cap).pairing(con, actions_table(con, "a", rows))
        window = round(10_800 * 1_000_000)
        fast = brigade_test._targets(con, keys, window)
        plain = brigade_test._targets(con, keys, window, plain=True)
        assert fast[0].tolist() == plain[0].tolist()
        assert fast[1].tolist() == plain[1].tolist()
        assert fast[2].tolist() == plain[2].tolist()
    finally:
        con.close()


@settings(max_examples=examples(60), deadline=None)
@given(
    sizes=st.lists(st.integers(1, 30), min_size=0, max_size=12),
    seed=st.integers(0, 2**32 - 1),
    width=st.integers(0, 50),
)
def test_the_compiled_pair_count_equals_the_binary_searches(
    sizes: list[int], seed: int, width: int
) -> None:
    rng = np.random.default_rng(seed)
    parts = [np.sort(rng.integers(0, 100, s)).astype(np.int64) for s in sizes]
    t = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if sizes else t
    got = counting.pairs_within(starts, t, width)
    assert got.tolist() == counting.pairs_within_plain(starts, t, width).tolist()
    # And by brute force, pair by pair.
    for number, size in enumerate(sizes):
        times = t[starts[number] : starts[number] + size]
        close = np.abs(times[:, None] - times[None, :]) <= width
        assert got[number] == (int(close.sum()) - size) // 2


def _reports_and_aside(
    seed: int, n: int, reporters: int, targets: int, aside: float
) -> tuple[list[tuple[Any, ...]], list[tuple[str, str]]]:
    """``n`` random reports (actor, platform, kind, target, time, id) and the accounts,
    about ``aside`` of them, that a later round sets aside."""
    rng = np.random.default_rng(seed)
    rows = [
        (
            f"u{rng.integers(0, reporters)}",
            str(rng.choice(["facebook", "instagram"], p=[0.8, 0.2])),
            "report",
            f"t{rng.integers(0, targets)}",
            START + timedelta(seconds=float(rng.integers(0, 40)) * 600),
            f"r{i}",
        )
        for i in range(n)
    ]
    left_out = sorted({(p, a) for a, p, *_ in rows if rng.random() < aside})
    return rows, left_out


def _with_aside(
    con: duckdb.DuckDBPyConnection, rows: list[tuple[Any, ...]], left_out: list[tuple[str, str]]
) -> str:
    """The reports as an actions table on ``con``, and the accounts set aside as table
    ``aside``; returns the actions table's name."""
    con.execute("SET TimeZone = 'UTC'")
    actions = actions_table(con, "a", rows)
    con.execute("CREATE TABLE aside (platform VARCHAR, actor_id VARCHAR)")
    if left_out:
        con.executemany("INSERT INTO aside VALUES (?, ?)", left_out)
    return actions


def _pairing_rows(
    con: duckdb.DuckDBPyConnection, detector: CoReport, keys: Any
) -> tuple[list[Any], list[Any], list[Any], int]:
    """What a pairing gives the brigade stage, in ids: its evidence's edges and events,
    the viral targets and the targets counted."""
    evidence = detector.from_pairs(con, keys)
    edges = sorted(evidence.edges.fetchall(), key=repr)
    events = sorted(evidence.events.fetchall(), key=repr)
    notes = evidence.notes
    evidence.release(con)
    return edges, events, notes["viral_objects"], notes["targets"]


#: A later round's inputs: random reports (:func:`_reports_and_aside`), a cap on a
#: target's pairs (small caps make targets stop being viral), ``min_weight`` and the
#: share of accounts set aside.
_later_round = given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 250),
    reporters=st.integers(2, 25),
    targets=st.integers(1, 20),
    cap=st.sampled_from([None, 3, 10, 30]),
    min_weight=st.integers(1, 4),
    aside=st.floats(0.0, 0.7),
)


@settings(max_examples=examples(40), deadline=None)
@_later_round
def test_a_pairing_without_some_accounts_is_the_pairing_of_the_rest(
    seed: int,
    n: int,
    reporters: int,
    targets: int,
    cap: int | None,
    min_weight: int,
    aside: float,
) -> None:
    """Deriving a later round's pairing from the first (accounts set aside) gives what
    pairing the remaining reports afresh gives: the same edges, events, viral targets
    and target count, with viral targets that stop being viral and accounts that reach
    ``min_weight`` targets only then (small caps make both happen)."""
    rows, left_out = _reports_and_aside(seed, n, reporters, targets, aside)
    detector = CoReport(max_object_pairs=cap, min_weight=min_weight)
    con = duckdb.connect()
    try:
        actions = _with_aside(con, rows, left_out)
        first = detector.pairing(con, actions)
        derived = detector.pairing_without(con, first, "aside")
        fresh = detector.pairing(
            con, f"(SELECT * FROM {actions} ANTI JOIN aside USING (platform, actor_id))"
        )
        assert _pairing_rows(con, detector, derived) == _pairing_rows(con, detector, fresh)
    finally:
        con.close()


@settings(max_examples=examples(40), deadline=None)
@_later_round
def test_a_derived_round_is_the_pairing_of_the_rest(
    seed: int,
    n: int,
    reporters: int,
    targets: int,
    cap: int | None,
    min_weight: int,
    aside: float,
) -> None:
    """A later round derived from the first's figures (:meth:`CoReport.derive`): its
    edges are those of pairing the remaining reports afresh, and its events, with the
    first round's events of the account pairs kept that it did not change, are theirs;
    the changed pairs are those whose pairs the derivation added (small caps make
    targets stop being viral)."""
    rows, left_out = _reports_and_aside(seed, n, reporters, targets, aside)
    detector = CoReport(max_object_pairs=cap, min_weight=min_weight)
    con = duckdb.connect()
    try:
        actions = _with_aside(con, rows, left_out)
        first = detector.pairing(con, actions)
        found = detector.edges_of(con, first)
        before = detector.from_pairs(con, first, found)
        first_events = before.events.fetchall()
        before.release(con)
        made = detector.derive(con, first, found, "aside")
        changed = set(con.sql(f"SELECT * FROM {made.changed}").fetchall())
        derived = detector.from_pairs(con, made.keys, made.found)
        edges = sorted(derived.edges.fetchall(), key=repr)
        gone = {(p, a) for p, a in left_out}
        # An event row: detector, layer, platform_1, account_1, platform_2, account_2, ...
        events = [
            e
            for e in first_events
            if (e[2], e[3]) not in gone and (e[4], e[5]) not in gone and e[1:6] not in changed
        ]
        events = sorted(events + derived.events.fetchall(), key=repr)
        notes = derived.notes
        fresh = detector.pairing(
            con, f"(SELECT * FROM {actions} ANTI JOIN aside USING (platform, actor_id))"
        )
        want = _pairing_rows(con, detector, fresh)
        assert (edges, events, notes["viral_objects"], notes["targets"]) == want
        # Only a target that stops being viral changes a pair: with no cap, none does.
        assert all(c[0] == "report" for c in changed)
        assert not changed or cap is not None
    finally:
        con.close()
