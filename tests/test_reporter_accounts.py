"""S6, reporter inauthenticity: account age, share of reports, creation bursts."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.detectors.reporter_accounts import ReporterInauthenticity
from concerted.errors import ConfigError
from tests.test_report_content import at, by_id, make_case, signals

DAY = 86_400


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'; SET memory_limit = '1GB'")
    yield connection
    connection.close()


def _reports(reporter: str, n: int, start: float = 0) -> list[dict[str, Any]]:
    return [
        {"report_id": f"{reporter}-{i}", "reporter_id": reporter, "target_id": f"t{i}",
         "ts": at(start + 3600 * i)}
        for i in range(n)
    ]  # fmt: skip


def _posts(author: str, n: int) -> list[dict[str, Any]]:
    return [
        {"post_id": f"{author}-p{i}", "account_id": author, "ts": at(-DAY * i)} for i in range(n)
    ]


def test_age_at_report_halves_every_half_life(con: duckdb.DuckDBPyConnection) -> None:
    accounts = [
        {"account_id": "new", "created_at": at(-30 * DAY)},
        {"account_id": "old", "created_at": at(-3000 * DAY)},
        {"account_id": "later", "created_at": at(DAY)},  # created after it reported
    ]
    reports = _reports("new", 2) + _reports("old", 1) + _reports("later", 1)
    make_case(con, reports=reports, accounts=accounts)
    rows = signals(ReporterInauthenticity().detect(con, "actions"), "account_age")
    per_report = by_id(rows, "report")
    assert per_report["new-0"]["score"] == pytest.approx(0.5)
    assert per_report["new-0"]["value"] == pytest.approx(30.0)
    assert per_report["new-1"]["value"] == pytest.approx(30 + 1 / 24)
    assert per_report["new-0"]["related_id"] == "t0"
    assert per_report["later-0"]["score"] == 1.0
    assert "old-0" not in per_report  # a hundred half-lives: below the floor
    per_account = by_id(rows, "account")
    assert per_account["new"]["score"] == pytest.approx(0.5)
    assert set(per_account) == {"new", "later"}
    assert ReporterInauthenticity(age_half_life=15).age_half_life == 15.0


def test_accounts_that_mostly_report_score_high(con: duckdb.DuckDBPyConnection) -> None:
    reports = _reports("reporter", 20) + _reports("poster", 1)
    posts = _posts("poster", 19) + _posts("quiet", 4)
    make_case(con, reports=reports, posts=posts)
    rows = by_id(
        signals(ReporterInauthenticity().detect(con, "actions"), "report_share"), "account"
    )
    # Active accounts: reporter 20/20, poster 1/20, quiet 0/4; p0 is their mean share.
    p0 = (1 + 1 / 20 + 0) / 3
    smoothed = (20 + 5 * p0) / (20 + 5)
    assert rows["reporter"]["score"] == pytest.approx((smoothed - p0) / (1 - p0))
    assert rows["reporter"]["value"] == 1.0
    assert rows["poster"]["score"] == 0.0
    assert "20 reports and 0 posts" in rows["reporter"]["detail"]


def test_without_posts_there_is_no_share_and_without_accounts_no_age(
    con: duckdb.DuckDBPyConnection,
) -> None:
    make_case(con, reports=_reports("u", 3), tables=("reports",))
    assert signals(ReporterInauthenticity().detect(con, "actions")) == []
    make_case(con, reports=_reports("u", 3), accounts=[{"account_id": "u", "created_at": at(0)}])
    layers = {r["layer"] for r in signals(ReporterInauthenticity().detect(con, "actions"))}
    assert layers == {"account_age"}  # the posts table is empty


def test_reporters_created_together_are_a_burst(con: duckdb.DuckDBPyConnection) -> None:
    rnd = random.Random(3)
    accounts = [
        {"account_id": f"o{i}", "created_at": at(-rnd.uniform(60, 3000) * DAY)} for i in range(300)
    ]
    burst = at(-20 * DAY)
    accounts += [
        {"account_id": f"f{i}", "created_at": burst.replace(minute=3 * i)} for i in range(12)
    ]
    reports = [r for a in accounts for r in _reports(str(a["account_id"]), 1)]
    make_case(con, reports=reports, accounts=accounts)
    rows = by_id(
        signals(ReporterInauthenticity().detect(con, "actions"), "creation_burst"), "account"
    )
    fakes = {f"f{i}" for i in range(12)}
    assert fakes <= set(rows)
    assert min(rows[f]["score"] for f in fakes) > 0.99
    assert rows["f0"]["value"] == 11
    assert max((r["score"] for i, r in rows.items() if i not in fakes), default=0.0) < 0.5


@pytest.mark.parametrize(
    "settings_",
    [{"age_half_life": 0}, {"burst_window": -1}, {"baseline_days": 0.1}, {"prior_strength": 0}],
)
def test_bad_settings_are_refused(settings_: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        ReporterInauthenticity(**settings_)


@st.composite
def small_cases(draw: st.DrawFn) -> tuple[list[dict[str, Any]], ...]:
    people = draw(st.integers(1, 12))
    accounts = [
        {"account_id": f"u{i}", "created_at": at(-draw(st.integers(0, 400)) * 3600)}
        for i in range(people)
    ]
    reports = [
        {"report_id": f"r{i}", "reporter_id": f"u{draw(st.integers(0, people - 1))}",
         "target_id": f"t{draw(st.integers(0, 5))}", "ts": at(draw(st.integers(0, 100_000)))}
        for i in range(draw(st.integers(0, 30)))
    ]  # fmt: skip
    posts = [
        {"post_id": f"p{i}", "account_id": f"u{draw(st.integers(0, people - 1))}", "ts": at(i)}
        for i in range(draw(st.integers(0, 20)))
    ]
    return reports, accounts, posts


@settings(max_examples=25, deadline=None)
@given(case=small_cases(), seed=st.integers(0, 1000))
def test_row_order_does_not_matter_and_scores_stay_in_the_unit_interval(
    case: tuple[list[dict[str, Any]], ...], seed: int
) -> None:
    reports, accounts, posts = case
    rnd = random.Random(seed)
    with duckdb.connect() as con:
        make_case(con, reports=reports, accounts=accounts, posts=posts)
        first = signals(ReporterInauthenticity().detect(con, "actions"))
        make_case(
            con,
            reports=rnd.sample(reports, len(reports)),
            accounts=rnd.sample(accounts, len(accounts)),
            posts=rnd.sample(posts, len(posts)),
        )
        second = signals(ReporterInauthenticity().detect(con, "actions"))
    assert second == first
    assert all(0.0 <= r["score"] <= 1.0 for r in first)
