"""S5, reporter reputation: known answers, and no hindsight."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.detectors.reputation import ReporterReputation
from concerted.errors import ConfigError
from tests.test_report_content import at, by_id, make_case, signals

DAY = 86_400


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'; SET memory_limit = '1GB'")
    yield connection
    connection.close()


def _report(i: int, reporter: str, day: float, outcome: str | None) -> dict[str, Any]:
    return {
        "report_id": f"{reporter}-{i}",
        "reporter_id": reporter,
        "target_id": f"t{i}",
        "reason": "spam",
        "ts": at(day * DAY),
        "outcome": outcome,
    }


def test_a_reporter_whose_earlier_reports_were_rejected_scores_its_shortfall(
    con: duckdb.DuckDBPyConnection,
) -> None:
    rows = [_report(i, "bad", i * 2, "rejected") for i in range(3)]
    rows.append(_report(3, "bad", 10, None))
    rows += [_report(i, "good", i * 2, "upheld") for i in range(4)]
    make_case(con, reports=rows)
    found = by_id(signals(ReporterReputation(prior_rate=0.5).detect(con, "actions")), "report")
    # Three rejections known before bad-3: rate (0 + 2 * 0.5) / (3 + 2) = 0.2.
    assert found["bad-3"]["value"] == pytest.approx(0.2)
    assert found["bad-3"]["score"] == pytest.approx((0.5 - 0.2) / 0.5)
    assert found["bad-3"]["related_id"] == "t3"
    assert found["bad-3"]["first_ts"] == at(0)
    assert "0 of 3" in found["bad-3"]["detail"]
    # No earlier outcome: no row. A good record scores 0.
    assert "bad-0" not in found
    assert found["good-3"]["score"] == 0.0


def test_outcomes_count_only_after_the_decision_lag(con: duckdb.DuckDBPyConnection) -> None:
    rows = [_report(0, "u", 0, "rejected"), _report(1, "u", 0.5, None), _report(2, "u", 1.5, None)]
    make_case(con, reports=rows)
    found = by_id(signals(ReporterReputation(prior_rate=0.5).detect(con, "actions")), "report")
    assert set(found) == {"u-2"}
    instant = ReporterReputation(prior_rate=0.5, decision_lag=0)
    assert set(by_id(signals(instant.detect(con, "actions")), "report")) == {"u-1", "u-2"}


def test_the_learnt_prior_is_the_platforms_rate_so_far(con: duckdb.DuckDBPyConnection) -> None:
    rows = [_report(i, "x", i, "upheld") for i in range(3)]
    rows += [_report(i, "y", 0.1 + i, "rejected") for i in range(2)]
    rows.append(_report(9, "y", 5, None))
    make_case(con, reports=rows)
    found = by_id(signals(ReporterReputation().detect(con, "actions")), "report")
    # By day 5: 3 upheld of 5 known, p0 = (3 + 1) / (5 + 2); y has 0 of 2.
    p0 = 4 / 7
    rate = (0 + 2 * p0) / (2 + 2)
    assert found["y-9"]["score"] == pytest.approx((p0 - rate) / p0)


def test_accounts_are_scored_from_all_their_outcomes(con: duckdb.DuckDBPyConnection) -> None:
    rows = [_report(i, "bad", i, "rejected") for i in range(4)]
    rows += [_report(i, "good", i, "upheld") for i in range(4)]
    rows.append(_report(9, "pending", 1, None))
    make_case(con, reports=rows)
    accounts = by_id(signals(ReporterReputation().detect(con, "actions")), "account")
    assert set(accounts) == {"bad", "good"}
    p0 = (4 + 1) / (8 + 2)
    assert accounts["bad"]["score"] == pytest.approx((p0 - 2 * p0 / 6) / p0)
    assert accounts["good"]["score"] == 0.0


@pytest.mark.parametrize(
    "settings_", [{"decision_lag": -1}, {"prior_strength": 0}, {"prior_rate": 0}]
)
def test_bad_settings_are_refused(settings_: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        ReporterReputation(**settings_)


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    rows = []
    for i in range(draw(st.integers(1, 40))):
        rows.append(
            {
                "report_id": f"r{i}",
                "reporter_id": f"u{draw(st.integers(0, 4))}",
                "target_id": f"t{draw(st.integers(0, 9))}",
                "ts": at(draw(st.integers(0, 20)) * DAY / 2),
                "outcome": draw(st.sampled_from(("upheld", "rejected", None))),
            }
        )
    return rows


def _report_scores(con: duckdb.DuckDBPyConnection, detector: ReporterReputation) -> dict[str, Any]:
    return {
        r["id"]: (r["score"], r["value"])
        for r in signals(detector.detect(con, "actions"))
        if r["entity"] == "report"
    }


@settings(max_examples=40, deadline=None)
@given(
    rows=histories(),
    cutoff=st.integers(0, 20),
    later=st.lists(st.sampled_from(("upheld", "rejected", None)), max_size=40),
    learnt=st.booleans(),
)
def test_later_outcomes_never_change_an_earlier_score(
    rows: list[dict[str, Any]], cutoff: int, later: list[str | None], learnt: bool
) -> None:
    """Outcomes of reports filed at or after T (changed, or of new reports) change no
    score of a report filed by T + decision_lag."""
    detector = ReporterReputation(prior_rate=None if learnt else 0.4)
    t = at(cutoff * DAY / 2)
    lag = DAY
    with duckdb.connect() as con:
        make_case(con, reports=rows)
        before = _report_scores(con, detector)
        changed = [
            {**r, "outcome": later[i % len(later)] if later else "upheld"} if r["ts"] >= t else r
            for i, r in enumerate(rows)
        ]
        changed += [
            {"report_id": f"new{i}", "reporter_id": f"u{i % 5}", "target_id": "t0",
             "ts": t + timedelta(hours=i), "outcome": outcome}
            for i, outcome in enumerate(later)
        ]  # fmt: skip
        make_case(con, reports=changed)
        after = _report_scores(con, detector)
    cut = t + timedelta(seconds=lag)
    earlier = {r["report_id"] for r in rows if r["ts"] <= cut}
    assert {k: v for k, v in before.items() if k in earlier} == {
        k: v for k, v in after.items() if k in earlier
    }


@settings(max_examples=20, deadline=None)
@given(rows=histories(), seed=st.integers(0, 1000))
def test_row_order_does_not_matter_and_scores_stay_in_the_unit_interval(
    rows: list[dict[str, Any]], seed: int
) -> None:
    with duckdb.connect() as con:
        make_case(con, reports=rows)
        first = signals(ReporterReputation().detect(con, "actions"))
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        make_case(con, reports=shuffled)
        assert signals(ReporterReputation().detect(con, "actions")) == first
    assert all(0.0 <= r["score"] <= 1.0 for r in first)
