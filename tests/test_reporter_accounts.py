"""S6, reporter inauthenticity: account age, share of reports, creation bursts."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import poisson

from concerted.detectors.columnar import as_signals
from concerted.detectors.reporter_accounts import ReporterInauthenticity
from concerted.errors import ConfigError
from tests.budget import examples
from tests.test_report_content import (
    at,
    by_id,
    make_case,
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


@settings(max_examples=examples(25), deadline=None)
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


def reference(
    detector: ReporterInauthenticity, con: duckdb.DuckDBPyConnection
) -> list[dict[str, Any]]:
    """The layers as plain SQL defines them (every report joined to its reporter, the
    prior over the union of reports and posts, creation bursts from RANGE windows), to
    hold the detector to. The Poisson tail is numpy's in both."""
    d = detector
    w, b = round(d.burst_window), round(d.baseline_days * DAY)
    data = con.sql(
        f"""
        WITH c AS (SELECT platform, account_id AS reporter_id, min(created_at) AS created_at,
                          epoch(min(created_at)) AS s
                   FROM accounts SEMI JOIN (SELECT platform, reporter_id AS account_id
                                            FROM reports) USING (platform, account_id)
                   WHERE created_at IS NOT NULL GROUP BY ALL),
        n AS (SELECT platform, count(*) AS m, greatest(max(s) - min(s), {2 * b}) AS span
              FROM c GROUP BY ALL)
        SELECT c.platform, c.reporter_id, c.created_at, count(*) OVER near - 1 AS k,
               count(*) OVER around - count(*) OVER near AS baseline, n.m, n.span
        FROM c JOIN n USING (platform)
        WINDOW near AS (PARTITION BY c.platform ORDER BY c.s
                        RANGE BETWEEN {w} PRECEDING AND {w} FOLLOWING),
               around AS (PARTITION BY c.platform ORDER BY c.s
                          RANGE BETWEEN {b} PRECEDING AND {b} FOLLOWING)
        """
    ).to_arrow_table()
    k = np.asarray(data["k"], dtype=np.float64)
    m = np.asarray(data["m"], dtype=np.float64)
    local = np.asarray(data["baseline"], dtype=np.float64) * (2 * w) / (2 * b - 2 * w)
    overall = (m - 1) * (2 * w) / np.asarray(data["span"], dtype=np.float64)
    expected = np.maximum(local, overall)
    tail = poisson.sf(k - 1, np.maximum(expected, 1e-12)) if len(k) else np.zeros(0)
    score = np.where(k > 0, 1.0 - np.minimum(1.0, tail * m), 0.0)
    bursts = pa.table(
        {"platform": data["platform"], "reporter_id": data["reporter_id"],
         "created_at": data["created_at"], "k": k, "expected": expected, "score": score}
    )  # fmt: skip
    con.register("ref_bursts", bursts)
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE ref_reporters AS
        SELECT r.platform, r.reporter_id, r.reports, r.first_ts, r.last_ts, c.created_at,
               coalesce(p.posts, 0) AS posts
        FROM (SELECT platform, reporter_id, count(*) AS reports, min(ts) AS first_ts,
                     max(ts) AS last_ts FROM reports GROUP BY ALL) r
        LEFT JOIN (SELECT platform, account_id AS reporter_id, min(created_at) AS created_at
                   FROM accounts GROUP BY ALL) c USING (platform, reporter_id)
        LEFT JOIN (SELECT platform, account_id AS reporter_id, count(*) AS posts FROM posts
                   GROUP BY ALL) p USING (platform, reporter_id)
        """
    )
    days = "greatest(0.0, (epoch({at}) - epoch(created_at)) / 86400.0)"
    score_at = f"pow(2.0, -{days} / {d.age_half_life})"
    a = d.prior_strength
    smoothed = f"(reports + {a} * p0) / (reports + posts + {a})"
    name = "'reporter_inauthenticity'"
    queries = [
        f"""SELECT {name} AS detector, 'account_age' AS layer, 'report' AS entity, r.platform,
                   r.report_id AS id, {score_at.format(at="r.ts")} AS score,
                   {days.format(at="r.ts")} AS value, r.target_id AS related_id,
                   created_at AS first_ts, r.ts AS last_ts,
                   format('account {{:.1f}} days old at this report', {days.format(at="r.ts")})
                       AS detail
            FROM reports r JOIN ref_reporters a USING (platform, reporter_id)
            WHERE created_at IS NOT NULL AND {score_at.format(at="r.ts")} >= 0.001""",
        f"""SELECT {name} AS detector, 'account_age' AS layer, 'account' AS entity, platform,
                   reporter_id AS id, {score_at.format(at="first_ts")} AS score,
                   {days.format(at="first_ts")} AS value, NULL AS related_id,
                   created_at AS first_ts, first_ts AS last_ts,
                   format('account {{:.1f}} days old at its first report',
                          {days.format(at="first_ts")}) AS detail
            FROM ref_reporters
            WHERE created_at IS NOT NULL AND {score_at.format(at="first_ts")} >= 0.001""",
        f"""SELECT {name} AS detector, 'creation_burst' AS layer, 'account' AS entity,
                   platform, reporter_id AS id, score, k AS value, NULL AS related_id,
                   created_at AS first_ts, created_at AS last_ts,
                   format('created within {{:.1f}} h of {{}} other reporters where about '
                          '{{:.2f}} were expected', {d.burst_window / 3600}, k, expected)
                       AS detail
            FROM ref_bursts WHERE score > 0""",
    ]
    if con.execute("SELECT 1 FROM posts LIMIT 1").fetchone() is not None:
        queries.append(
            f"""SELECT {name} AS detector, 'report_share' AS layer, 'account' AS entity,
                       platform, reporter_id AS id,
                       ({smoothed} - p0) / greatest(1.0 - p0, 1e-9) AS score,
                       reports / (reports + posts) AS value, NULL AS related_id, first_ts,
                       last_ts,
                       format('{{}} reports and {{}} posts; usual share of reports {{:.1f}}%',
                              reports, posts, 100 * p0) AS detail
                FROM ref_reporters JOIN (
                    SELECT platform,
                           sum(CAST(reports / (reports + posts) AS DECIMAL(38, 18)))::DOUBLE
                               / count(*) AS p0
                    FROM (SELECT platform, id, sum(reports)::DOUBLE AS reports,
                                 sum(posts)::DOUBLE AS posts
                          FROM (SELECT platform, reporter_id AS id, 1 AS reports, 0 AS posts
                                FROM reports
                                UNION ALL SELECT platform, account_id, 0, 1 FROM posts)
                          GROUP BY ALL)
                    GROUP BY ALL) USING (platform)"""
        )
    try:
        return rows_as_signals(con, as_signals(con, queries).sql_query())
    finally:
        con.unregister("ref_bursts")


@st.composite
def mixed_cases(draw: st.DrawFn) -> tuple[list[dict[str, Any]], ...]:
    """Accounts on two platforms created hours apart (some at one instant, some without
    a date), reporting for days; posts by some of them and by others."""
    people = draw(st.integers(1, 14))
    platforms = [draw(st.sampled_from(("facebook", "instagram"))) for _ in range(people)]
    accounts = [
        {"account_id": f"u{i}", "platform": platforms[i],
         "created_at": draw(st.sampled_from((None, at(-DAY), at(-3 * DAY),
                                             at(-draw(st.integers(0, 90)) * 3 * 3600))))}
        for i in range(people)
    ]  # fmt: skip
    reports = []
    for i in range(draw(st.integers(0, 30))):
        who = draw(st.integers(0, people - 1))
        reports.append(
            {"report_id": f"r{i}", "reporter_id": f"u{who}", "platform": platforms[who],
             "target_id": f"t{draw(st.integers(0, 5))}",
             "ts": at(draw(st.integers(0, 40)) * 6 * 3600)}
        )  # fmt: skip
    posts = [
        {"post_id": f"p{i}", "account_id": f"u{draw(st.integers(0, people + 3))}",
         "platform": draw(st.sampled_from(("facebook", "instagram"))), "ts": at(i)}
        for i in range(draw(st.integers(0, 20)))
    ]  # fmt: skip
    return reports, accounts, posts


@settings(max_examples=examples(60), deadline=None)
@given(
    case=mixed_cases(),
    half_life=st.sampled_from((1.0, 30.0)),
    window=st.sampled_from((3600.0, 3 * 3600.0)),
)
def test_the_layers_are_what_the_sql_definition_gives(
    case: tuple[list[dict[str, Any]], ...], half_life: float, window: float
) -> None:
    """The numpy bursts, the prior from the reporters and the joined young reporters
    give, row for row, what RANGE windows, the union of reports and posts and a join of
    every report give."""
    reports, accounts, posts = case
    detector = ReporterInauthenticity(age_half_life=half_life, burst_window=window)
    with duckdb.connect() as con:
        con.execute("SET TimeZone = 'UTC'")
        make_case(con, reports=reports, accounts=accounts, posts=posts)
        same_signals(signals(detector.detect(con, "actions")), reference(detector, con))
