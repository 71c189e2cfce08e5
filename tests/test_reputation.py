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
from tests.budget import examples
from tests.test_report_content import (
    at,
    by_id,
    make_case,
    ranked_times,
    rows_as_signals,
    same_signals,
    signals,
)

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


@settings(max_examples=examples(40), deadline=None)
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


@settings(max_examples=examples(20), deadline=None)
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


def reference(detector: ReporterReputation, con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The layer as plain SQL defines it (windows and as-of joins over the reports), to
    hold the detector's numpy timeline to."""
    lag, a = round(detector.decision_lag * 1_000_000), detector.prior_strength

    def prior(upheld: str, decided: str) -> str:
        if detector.prior_rate is not None:
            return repr(detector.prior_rate)
        return f"({upheld} + 1.0) / ({decided} + 2.0)"

    rate = f"(u + {a} * p0) / (n + {a})"
    detail = (
        "format('{} of {} earlier decided reports upheld; platform rate {:.1f}%', u, n, 100 * p0)"
    )
    return rows_as_signals(
        con,
        f"""
        WITH r AS (SELECT *, epoch_us(ts) AS t FROM reports),
        decided AS (
            SELECT platform, reporter_id, t + {lag} AS known,
                   count(*) FILTER (outcome = 'upheld') AS u, count(*) AS n, min(t) AS filed
            FROM r WHERE outcome IS NOT NULL GROUP BY ALL),
        mine AS (
            SELECT platform, reporter_id, known, sum(u) OVER w AS u, sum(n) OVER w AS n,
                   min(filed) OVER w AS first_filed
            FROM decided
            WINDOW w AS (PARTITION BY platform, reporter_id ORDER BY known
                         ROWS UNBOUNDED PRECEDING)),
        everyone AS (
            SELECT platform, known, sum(u) OVER w AS pu, sum(n) OVER w AS pn
            FROM (SELECT platform, known, sum(u) AS u, sum(n) AS n FROM decided GROUP BY ALL)
            WINDOW w AS (PARTITION BY platform ORDER BY known ROWS UNBOUNDED PRECEDING)),
        m AS (
            SELECT r.*, m.u, m.n, m.first_filed FROM r ASOF JOIN mine m
              ON m.platform = r.platform AND m.reporter_id = r.reporter_id AND r.t > m.known),
        timeline AS (
            SELECT m.*, {prior("p.pu", "p.pn")} AS p0
            FROM m ASOF JOIN everyone p ON p.platform = m.platform AND m.t > p.known),
        a AS (
            SELECT platform, reporter_id, count(*) FILTER (outcome = 'upheld') AS u,
                   count(outcome) AS n, min(ts) FILTER (outcome IS NOT NULL) AS first_ts,
                   max(ts) FILTER (outcome IS NOT NULL) AS last_ts
            FROM reports GROUP BY ALL HAVING count(outcome) > 0),
        p AS (
            SELECT platform,
                   {prior("count(*) FILTER (outcome = 'upheld')", "count(outcome)")} AS p0
            FROM reports GROUP BY ALL)
        SELECT 'reporter_reputation' AS detector, 'reputation' AS layer, 'report' AS entity,
               platform, report_id AS id, greatest(0.0, (p0 - {rate}) / p0) AS score,
               {rate} AS value, target_id AS related_id,
               make_timestamptz(first_filed) AS first_ts, ts AS last_ts, {detail} AS detail
        FROM timeline
        UNION ALL
        SELECT 'reporter_reputation', 'reputation', 'account', platform, reporter_id,
               greatest(0.0, (p0 - {rate}) / p0), {rate}, NULL, first_ts, last_ts, {detail}
        FROM a JOIN p USING (platform)
        """,
    )


@st.composite
def crowded_histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Reports on two platforms, in half days or the same instants (ties, and outcomes
    known exactly when a report is filed)."""
    rows = []
    for i in range(draw(st.integers(0, 60))):
        rows.append(
            {
                "report_id": f"r{i}",
                "reporter_id": f"u{draw(st.integers(0, 5))}",
                "target_id": f"t{draw(st.integers(0, 9))}",
                "ts": at(draw(st.sampled_from((0, 1, 2, 3, 4, 6, 8))) * DAY / 2),
                "outcome": draw(st.sampled_from(("upheld", "rejected", None))),
                "platform": draw(st.sampled_from(("facebook", "facebook", "instagram"))),
            }
        )
    return rows


@settings(max_examples=examples(60), deadline=None)
@given(
    rows=crowded_histories(),
    lag=st.sampled_from((0.0, DAY / 2, DAY)),
    prior_rate=st.sampled_from((None, 0.3)),
    ranked=st.booleans(),
)
def test_the_timeline_is_what_the_sql_definition_gives(
    rows: list[dict[str, Any]], lag: float, prior_rate: float | None, ranked: bool
) -> None:
    """The numpy timeline gives, row for row, what windows and as-of joins over the
    reports give; with times packed as offsets or as ranks."""
    detector = ReporterReputation(decision_lag=lag, prior_rate=prior_rate)
    with duckdb.connect() as con, ranked_times(ranked):
        con.execute("SET TimeZone = 'UTC'")
        make_case(con, reports=rows)
        same_signals(signals(detector.detect(con, "actions")), reference(detector, con))
