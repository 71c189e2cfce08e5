"""S1 report bursts: the tail, the baseline, exposure, burst extents and evidence."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from concerted.detectors import report_burst
from concerted.detectors.base import Evidence
from concerted.detectors.report_burst import ReportBurst, burst_tail, exposure_rate
from concerted.errors import ConfigError
from concerted.schema import CONTRACTS
from tests.budget import examples

T0 = datetime(2020, 6, 1, tzinfo=UTC)
HOUR = 3600.0
DAY = 86400.0
Report = tuple[str, str, float]  # reporter, target, seconds after T0


def _case(
    con: duckdb.DuckDBPyConnection,
    reports: list[Report],
    followers: dict[str, int] | None = None,
    name: str = "a",
) -> str:
    """Report actions in ``name``, the reports table, and accounts with followers."""
    con.execute(
        f"CREATE OR REPLACE TABLE {name} (actor_id VARCHAR, platform VARCHAR, kind VARCHAR, "
        "object_id VARCHAR, ts TIMESTAMPTZ, source_id VARCHAR)"
    )
    rows = [
        (who, "facebook", "report", target, T0 + timedelta(seconds=at), f"r{i}")
        for i, (who, target, at) in enumerate(reports)
    ]
    if rows:
        con.executemany(f"INSERT INTO {name} VALUES (?, ?, ?, ?, ?, ?)", rows)
    con.execute("DROP TABLE IF EXISTS reports")
    con.execute(CONTRACTS["reports"].ddl())
    con.execute(
        f"""INSERT INTO reports (report_id, reporter_id, target_id, target_kind, reason, ts,
                                 platform)
            SELECT source_id, actor_id, object_id, 'account',
                   CASE WHEN object_id LIKE 'hit%' THEN 'terrorism' ELSE 'spam' END, ts, platform
            FROM {name}"""
    )
    con.execute("DROP TABLE IF EXISTS accounts")
    con.execute(CONTRACTS["accounts"].ddl())
    if followers:
        con.executemany(
            "INSERT INTO accounts (account_id, platform, kind, followers) "
            "VALUES (?, 'facebook', 'user', ?)",
            sorted(followers.items()),
        )
    return name


def _quiet(n: int = 40, days: int = 14, seed: int = 0) -> list[Report]:
    """Background: ``n`` targets reported now and then over ``days`` days."""
    rnd = random.Random(seed)
    return [
        (f"o{rnd.randrange(500)}", f"q{i % n}", rnd.uniform(0, days * DAY)) for i in range(3 * n)
    ]


def _burst(target: str, at: float, size: int, gap: float = 60.0) -> list[Report]:
    return [(f"b{i}", target, at + gap * i) for i in range(size)]


def _targets(evidence: Evidence) -> list[tuple[Any, ...]]:
    rows = evidence.signals.filter("entity = 'target'").project(
        "id, value, first_ts, last_ts, related_id"
    )
    return sorted(rows.fetchall(), key=repr)


def test_burst_tail_is_the_negative_binomial_tail() -> None:
    k = np.array([1, 2, 5, 20])
    alpha, beta, window = 3.5, 12.0, 0.5
    expected = stats.nbinom.sf(k - 1, alpha, beta / (beta + window))
    assert burst_tail(k, np.full(4, alpha), np.full(4, beta), window) == pytest.approx(expected)
    assert burst_tail([0], [1.0], [1.0], 1.0).tolist() == [1.0]


def test_a_burst_on_a_quiet_target_is_found_with_its_extent(
    con: duckdb.DuckDBPyConnection,
) -> None:
    reports = _quiet() + _burst("hit", 5 * DAY, 25, gap=90)
    evidence = ReportBurst().detect(con, _case(con, reports))
    found = _targets(evidence)
    assert [(t, v) for t, v, *_ in found] == [("hit", 25.0)]
    _, _, first, last, burst = found[0]
    assert first == T0 + timedelta(seconds=5 * DAY)
    assert last == T0 + timedelta(seconds=5 * DAY + 24 * 90)
    members = evidence.signals.filter("entity = 'report'").project("id, related_id, value")
    rows = members.fetchall()
    assert len(rows) == 25 and {r[1] for r in rows} == {burst} and {r[2] for r in rows} == {25.0}
    ((score, detail),) = (
        evidence.signals.filter("entity = 'target'").project("score, detail").fetchall()
    )
    assert score > 0.99
    assert "25 reports from 25 reporters" in detail and "top reason terrorism (100%)" in detail


def test_two_bursts_on_one_target_are_two(con: duckdb.DuckDBPyConnection) -> None:
    reports = _quiet() + _burst("hit", 2 * DAY, 10) + _burst("hit", 9 * DAY, 12)
    found = _targets(ReportBurst().detect(con, _case(con, reports)))
    assert sorted(v for _, v, *_ in found) == [10.0, 12.0]
    assert len({b for *_, b in found}) == 2


def test_the_targets_own_baseline(con: duckdb.DuckDBPyConnection) -> None:
    """A target reported every 20 minutes for two weeks does not burst at 4 an hour;
    the same 4 in an hour on a quiet target do."""
    steady = [(f"s{i}", "busy", i * 1200.0) for i in range(14 * 72)]
    extra = [(f"x{i}", "busy", 7 * DAY + 100 + i) for i in range(2)]
    quiet = [(f"y{i}", "hit", 7 * DAY + 600 * i) for i in range(4)]
    found = _targets(ReportBurst().detect(con, _case(con, _quiet() + steady + extra + quiet)))
    assert [t for t, *_ in found] == ["hit"]


def test_exposure_lowers_the_surprise(con: duckdb.DuckDBPyConnection) -> None:
    """The same six reports in an hour on a small account and on a very big one: the
    big account's score is lower (more are expected), and with exposure ignored the
    two are scored alike."""
    followers = {f"q{i}": 50 + i for i in range(40)} | {"small": 50, "big": 5_000_000}
    reports = _quiet() + _burst("small", 3 * DAY, 6, gap=500) + _burst("big", 3 * DAY, 6, gap=500)
    table = _case(con, reports, followers)
    scored = dict(
        ReportBurst()
        .detect(con, table)
        .signals.filter("entity = 'target'")
        .project("id, score")
        .fetchall()
    )
    assert "small" in scored
    assert scored.get("big", 0.0) < scored["small"]
    flat = dict(
        ReportBurst(exposure_power=0)
        .detect(con, table)
        .signals.filter("entity = 'target'")
        .project("id, score")
        .fetchall()
    )
    assert flat["big"] == pytest.approx(flat["small"])


def test_exposure_rate_is_robust_to_a_few_brigaded_accounts() -> None:
    rng = np.random.default_rng(0)
    exposure = rng.lognormal(0, 1, 5000)
    counts = rng.poisson(0.01 * exposure * 14)
    clean = exposure_rate(counts, exposure, 14)
    brigaded = counts.copy()
    brigaded[:50] += 200  # 50 targets with 200 reports each: 10,000 reports
    assert clean == pytest.approx(0.01, rel=0.1)
    assert exposure_rate(brigaded, exposure, 14) == pytest.approx(clean, rel=0.2)
    assert counts.sum() + 10_000 > 8 * counts.sum()  # the plain mean would be 9x off


def test_without_case_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Without ``reports`` and ``accounts``, bursts are still found from the actions."""
    table = _case(con, _quiet() + _burst("hit", 4 * DAY, 15))
    con.execute("DROP TABLE reports")
    con.execute("DROP TABLE accounts")
    evidence = ReportBurst().detect(con, table)
    assert [(t, v) for t, v, *_ in _targets(evidence)] == [("hit", 15.0)]


def test_other_kinds_and_empty_input(con: duckdb.DuckDBPyConnection) -> None:
    table = _case(con, _burst("hit", DAY, 20))
    con.execute(f"UPDATE {table} SET kind = 'repost'")
    evidence = ReportBurst().detect(con, table)
    assert evidence.signals.fetchall() == []
    assert evidence.edges.fetchall() == [] and evidence.events.fetchall() == []


def test_settings_are_checked() -> None:
    for bad in (
        {"window": 0},
        {"min_reports": 1},
        {"max_p_value": 0},
        {"max_p_value": 1.5},
        {"prior_days": 0},
        {"exposure_power": -1},
    ):
        with pytest.raises(ConfigError):
            ReportBurst(**bad)


@settings(max_examples=examples(25), deadline=None)
@given(
    size=st.integers(3, 30),
    gap=st.floats(1, 600),
    seed=st.integers(0, 10_000),
)
def test_properties(size: int, gap: float, seed: int) -> None:
    """Scores lie in [0, 1], every report of a burst lies within its extent, and the
    rows' order changes nothing."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        reports = _quiet(seed=seed) + _burst("hit", 6 * DAY, size, gap=gap)
        table = _case(con, reports)
        first = ReportBurst().detect(con, table)
        rows = sorted(first.signals.fetchall(), key=repr)
        assert all(0.0 <= r[5] <= 1.0 for r in rows)
        con.execute(f"CREATE TABLE b AS SELECT * FROM {table} ORDER BY hash(source_id, {seed})")
        assert sorted(ReportBurst().detect(con, "b").signals.fetchall(), key=repr) == rows
        bursts = {r[7]: (r[8], r[9]) for r in rows if r[2] == "target"}
        for r in rows:
            if r[2] == "report":
                lo, hi = bursts[r[7]]
                assert lo <= r[8] <= hi
    finally:
        con.close()


def test_hash_clashes_change_nothing(
    con: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Targets are keyed by a hash of platform and id; when two clash, numbers replace
    them and every signal stays the same."""
    reports = (
        _quiet()
        + _burst("hit", 2 * DAY, 10)
        + _burst("hit", 9 * DAY, 12)
        + _burst("other", 4 * DAY, 15, gap=30)
    )
    table = _case(con, reports, followers={"hit": 100, "q1": 5000, "other": 10})
    expected = ReportBurst().detect(con, table)
    monkeypatch.setattr(report_burst, "sql_hash", lambda columns: f"(hash({columns}) % 3)::BIGINT")
    clashing = ReportBurst().detect(con, table)
    assert sorted(clashing.signals.fetchall(), key=repr) == sorted(
        expected.signals.fetchall(), key=repr
    )
    assert clashing.notes == expected.notes
    assert sorted(v for _, v, *_ in _targets(expected)) == [10.0, 12.0, 15.0]
