"""S4, report content: reason homogeneity, reason mismatch, templated text.

Also holds :func:`make_case`, the small-case builder the report detectors' tests share.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.detectors.base import Evidence
from concerted.detectors.report_content import ReportContent
from concerted.errors import ConfigError
from concerted.schema import CONTRACTS, INPUT_TABLES

START = datetime(2020, 6, 1, tzinfo=UTC)
Row = Mapping[str, Any]


def at(seconds: float) -> datetime:
    """``seconds`` after the start of the small cases."""
    return START + timedelta(seconds=seconds)


def make_case(
    con: duckdb.DuckDBPyConnection,
    *,
    reports: Sequence[Row] = (),
    accounts: Sequence[Row] = (),
    posts: Sequence[Row] = (),
    roles: Sequence[Row] = (),
    tables: Sequence[str] = INPUT_TABLES,
) -> None:
    """Contract tables ``tables`` on ``con`` holding the given rows (a missing column is
    NULL; ``platform`` defaults to facebook, ``target_kind`` to account, ``kind`` to
    user), and an empty ``actions`` table."""
    given_rows = {"reports": reports, "accounts": accounts, "posts": posts, "roles": roles}
    defaults = {"platform": "facebook", "target_kind": "account", "kind": "user"}
    for table in tables:
        contract = CONTRACTS[table]
        con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute(contract.ddl())
        rows = given_rows[table]
        if rows:
            names = [c for c in contract.names if c != "extra"]
            values = [
                tuple(row.get(n, defaults.get(n) if n in contract.names else None) for n in names)
                for row in rows
            ]
            marks = ", ".join("?" for _ in names)
            con.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})", values)
    con.execute("DROP TABLE IF EXISTS actions")
    con.execute(CONTRACTS["actions"].ddl())


def signals(evidence: Evidence, layer: str | None = None) -> list[dict[str, Any]]:
    """The signal rows as dicts, sorted, optionally of one layer."""
    names = evidence.signals.columns
    rows = [dict(zip(names, r, strict=True)) for r in evidence.signals.fetchall()]
    rows = [r for r in rows if layer is None or r["layer"] == layer]
    return sorted(rows, key=repr)


def by_id(rows: list[dict[str, Any]], entity: str) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in rows if r["entity"] == entity}


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'; SET memory_limit = '1GB'")
    yield connection
    connection.close()


def _background(n: int = 9, reason: str = "spam") -> list[dict[str, Any]]:
    """One report with ``reason`` on each of ``n`` other targets."""
    return [
        {"report_id": f"b{reason}{i}", "reporter_id": f"o{i}", "target_id": f"{reason}{i}",
         "reason": reason, "ts": at(50_000 * i)}
        for i in range(n)
    ]  # fmt: skip


def test_one_reason_across_a_burst_scores_its_excess_over_the_mix(
    con: duckdb.DuckDBPyConnection,
) -> None:
    burst = [
        {"report_id": f"r{i}", "reporter_id": f"u{i}", "target_id": "t", "reason": "terrorism",
         "ts": at(60 * i)}
        for i in range(10)
    ]  # fmt: skip
    make_case(con, reports=burst + _background())
    rows = signals(ReportContent().detect(con, "actions"), "reason_homogeneity")
    target = by_id(rows, "target")["t"]
    # Ten targets weigh the same: terrorism is 1/10 of the mix. s = (10 + 5 * 0.1) / 15.
    p, s = 0.1, (10 + 5 * 0.1) / 15
    assert target["score"] == pytest.approx((s - p) / (1 - p))
    assert target["value"] == 1.0
    assert target["related_id"] == "r0"
    assert (target["first_ts"], target["last_ts"]) == (at(0), at(540))
    assert "10 of 10 reports" in target["detail"] and "terrorism" in target["detail"]
    reports = by_id(rows, "report")
    assert set(reports) == {f"r{i}" for i in range(10)}
    assert {r["related_id"] for r in reports.values()} == {"t"}
    # The background targets have one report each: below min_reports, not scored.
    assert set(by_id(rows, "target")) == {"t"}


def test_a_mixed_episode_scores_low_and_only_its_dominant_reports_are_marked(
    con: duckdb.DuckDBPyConnection,
) -> None:
    reasons = ["spam", "spam", "harassment", "nudity", "violence", "other", "fake_account"]
    mixed = [
        {"report_id": f"r{i}", "reporter_id": f"u{i}", "target_id": "t", "reason": r,
         "ts": at(600 * i)}
        for i, r in enumerate(reasons)
    ]  # fmt: skip
    make_case(con, reports=mixed + _background())
    rows = signals(ReportContent().detect(con, "actions"), "reason_homogeneity")
    assert by_id(rows, "target")["t"]["score"] < 0.1
    assert set(by_id(rows, "report")) == {"r0", "r1"}


def test_waves_apart_are_separate_episodes(con: duckdb.DuckDBPyConnection) -> None:
    waves = [
        {"report_id": f"w{w}-{i}", "reporter_id": f"u{i}", "target_id": "t",
         "reason": "blasphemy", "ts": at(w * 3 * 86_400 + 30 * i)}
        for w in range(2) for i in range(6)
    ]  # fmt: skip
    make_case(con, reports=waves + _background())
    targets = [
        r for r in signals(ReportContent().detect(con, "actions"), "reason_homogeneity")
        if r["entity"] == "target"
    ]  # fmt: skip
    assert sorted(r["related_id"] for r in targets) == ["w0-0", "w1-0"]
    # One long episode when the gap allows it.
    merged = ReportContent(episode_gap=4 * 86_400).detect(con, "actions")
    assert len(by_id(signals(merged, "reason_homogeneity"), "target")) == 1


def test_a_rare_new_reason_is_a_mismatch_and_a_familiar_one_is_not(
    con: duckdb.DuckDBPyConnection,
) -> None:
    rows: list[dict[str, Any]] = _background(18, "spam")
    rows += _background(2, "harassment")
    # "fresh" is reported for terrorism out of the blue; "known" drew terrorism before.
    for target in ("fresh", "known"):
        rows += [
            {"report_id": f"{target}{i}", "reporter_id": f"u{i}", "target_id": target,
             "reason": "terrorism", "ts": at(10 * 86_400 + 60 * i)}
            for i in range(8)
        ]  # fmt: skip
    rows += [
        {"report_id": f"old{i}", "reporter_id": f"v{i}", "target_id": "known",
         "reason": "terrorism", "ts": at(86_400 * i)}
        for i in range(1, 4)
    ]  # fmt: skip
    make_case(con, reports=rows)
    found = signals(ReportContent().detect(con, "actions"), "reason_mismatch")
    targets = {(r["id"], r["related_id"]): r for r in found if r["entity"] == "target"}
    fresh = targets[("fresh", "fresh0")]
    known = targets[("known", "known0")]
    # 22 targets of kind account: terrorism is 2/22 of the mix, among 3 reasons.
    p = 2 / 22
    rarity = 1 - p * 3
    assert fresh["value"] == pytest.approx(rarity)
    assert fresh["score"] == pytest.approx(rarity * (1 - (0 + 5 * p) / (0 + 5)))
    assert known["score"] == pytest.approx(rarity * (1 - (3 + 5 * p) / (3 + 5)))
    assert fresh["score"] > known["score"]
    reports = by_id(found, "report")
    assert {f"fresh{i}" for i in range(8)} <= set(reports)
    # The common reason of the kind is no mismatch.
    assert not any(r["id"].startswith("spam") for r in found)


def test_the_same_words_from_many_reporters_are_a_template(
    con: duckdb.DuckDBPyConnection,
) -> None:
    texts = [
        "This account spreads lies against our army, remove it now!",
        "this account spreads LIES against our army — remove it now",
        "This account spreads lies against our army, remove it now https://t.co/x",
        "یہ اکاؤنٹ فوج کے خلاف جھوٹ پھیلاتا ہے، اسے ہٹائیں",
        "يہ اکاؤنٹ فوج کے خلاف جھوٹ پھیلاتا ہے اسے ہٹائیں",  # Arabic yeh
        "fake account",
        "fake account",
        "I saw this post and it upsets me a great deal",
    ]
    rows = [
        {"report_id": f"r{i}", "reporter_id": f"u{i}", "target_id": f"t{i % 2}",
         "reason": "spam", "ts": at(60 * i), "text": text}
        for i, text in enumerate(texts)
    ]  # fmt: skip
    # The same reporter writing the same words twice is not a template.
    rows.append({**rows[7], "report_id": "again", "ts": at(9_999)})
    make_case(con, reports=rows)
    found = signals(ReportContent().detect(con, "actions"), "templated_text")
    reports = by_id(found, "report")
    assert set(reports) == {"r0", "r1", "r2", "r3", "r4"}
    assert reports["r0"]["score"] == pytest.approx(1 - 1 / 3)
    assert reports["r3"]["score"] == pytest.approx(1 - 1 / 2)
    assert reports["r0"]["related_id"] == "t0"
    targets = by_id(found, "target")
    # t0 holds r0, r2, r4, r6 (r4 templated at 1/2, r0 and r2 at 2/3): 3 of 4 templated.
    assert targets["t0"]["value"] == 3
    assert targets["t0"]["score"] == pytest.approx((1 - 1 / 3) * 3 / 4)


def test_no_reports_table_means_no_evidence(con: duckdb.DuckDBPyConnection) -> None:
    evidence = ReportContent().detect(con, "actions")
    assert evidence.signals.fetchall() == []
    make_case(con)
    assert ReportContent().detect(con, "actions").signals.fetchall() == []


@pytest.mark.parametrize(
    "settings_",
    [{"episode_gap": 0}, {"min_reports": 1}, {"prior_strength": -1}, {"min_text_chars": 0}],
)
def test_bad_settings_are_refused(settings_: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        ReportContent(**settings_)


_REASONS = ("spam", "terrorism", "blasphemy", "hate_speech", "nudity")


@st.composite
def report_rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(0, 60))
    rows = []
    for i in range(n):
        rows.append(
            {
                "report_id": f"r{i}",
                "reporter_id": f"u{draw(st.integers(0, 8))}",
                "target_id": f"t{draw(st.integers(0, 3))}",
                "target_kind": draw(st.sampled_from(("account", "post"))),
                "reason": draw(st.sampled_from((*_REASONS, None))),
                "ts": at(draw(st.integers(0, 5 * 86_400))),
                "text": draw(st.sampled_from((None, "please remove this account at once", "x"))),
            }
        )
    return rows


@settings(max_examples=25, deadline=None)
@given(rows=report_rows(), seed=st.integers(0, 1000))
def test_row_order_does_not_matter_and_scores_stay_in_the_unit_interval(
    rows: list[dict[str, Any]], seed: int
) -> None:
    detector = ReportContent(min_reports=3)
    with duckdb.connect() as con:
        make_case(con, reports=rows)
        first = signals(detector.detect(con, "actions"))
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        make_case(con, reports=shuffled)
        assert signals(detector.detect(con, "actions")) == first
    assert all(0.0 <= r["score"] <= 1.0 for r in first)
