"""S4, report content: reason homogeneity, reason mismatch, templated text.

Also holds :func:`make_case`, the small-case builder the report detectors' tests share.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.detectors import columnar
from concerted.detectors.base import Evidence
from concerted.detectors.report_content import ReportContent
from concerted.errors import ConfigError
from concerted.schema import CONTRACTS, INPUT_TABLES
from concerted.testing.planted import insert_rows
from tests.budget import examples

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
            insert_rows(con, table, names, values)
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


@settings(max_examples=examples(25), deadline=None)
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


def same_signals(found: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """Assert two signal lists hold the same rows: every column equal, score and value to
    1e-12 (a sum taken in another order may differ in its last bits)."""

    def key(row: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(repr(v) for k, v in row.items() if k not in ("score", "value"))

    assert len(found) == len(expected)
    for got, want in zip(sorted(found, key=key), sorted(expected, key=key), strict=True):
        assert key(got) == key(want)
        for column in ("score", "value"):
            assert got[column] == pytest.approx(want[column], rel=1e-12, abs=1e-15, nan_ok=True)


@contextmanager
def ranked_times(ranked: bool) -> Iterator[None]:
    """Within it, times are packed beside codes as ranks where ``ranked`` (the path taken
    when offsets do not fit one int64, forced by a small key), else as offsets."""
    with mock.patch.object(columnar, "KEY_BITS", 6 if ranked else columnar.KEY_BITS):
        yield


def rows_as_signals(con: duckdb.DuckDBPyConnection, query: str) -> list[dict[str, Any]]:
    """The rows of a signals query (in the contract's columns) as dicts."""
    rel = con.sql(query)
    return [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]


def reference(detector: ReportContent, con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Reason homogeneity and mismatch as plain SQL defines them (windows over the
    reports by target), to hold the detector's numpy episodes to. Templated text is
    left out: it is SQL in the detector too."""
    a, gap = detector.prior_strength, round(detector.episode_gap * 1_000_000)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE ref_episodes AS
        WITH r AS (
            SELECT platform, report_id, target_id, target_kind, reason, ts, epoch_us(ts) AS t
            FROM reports SEMI JOIN (SELECT platform, target_id FROM reports GROUP BY ALL
                                    HAVING count(reason) >= {detector.min_reports})
                 USING (platform, target_id)),
        g AS (
            SELECT *, CASE WHEN t - lag(t) OVER w > {gap} THEN 1 ELSE 0 END AS new
            FROM r WINDOW w AS (PARTITION BY platform, target_id ORDER BY t, report_id))
        SELECT *, sum(new) OVER (PARTITION BY platform, target_id ORDER BY t, report_id
                                 ROWS UNBOUNDED PRECEDING) AS episode
        FROM g;

        CREATE OR REPLACE TEMP TABLE ref_mix AS
        WITH c AS (
            SELECT platform, target_kind, target_id, reason, count(*)::DOUBLE AS c
            FROM reports WHERE reason IS NOT NULL GROUP BY ALL),
        s AS (
            SELECT *, c / sum(c) OVER (PARTITION BY platform, target_kind, target_id) AS share
            FROM c),
        n AS (
            SELECT platform, target_kind, count(DISTINCT target_id)::DOUBLE AS targets,
                   count(DISTINCT reason)::DOUBLE AS reasons
            FROM c GROUP BY ALL)
        SELECT s.platform, s.target_kind, s.reason,
               sum(CAST(s.share AS DECIMAL(38, 18)))::DOUBLE / any_value(n.targets) AS p,
               any_value(n.reasons) AS reasons
        FROM s JOIN n USING (platform, target_kind) GROUP BY ALL;

        CREATE OR REPLACE TEMP TABLE ref_scored AS
        WITH ek AS (
            SELECT platform, target_id, episode, reason, count(*) AS k
            FROM ref_episodes WHERE reason IS NOT NULL GROUP BY ALL),
        en AS (
            SELECT platform, target_id, episode, min(target_kind) AS kind, count(reason) AS n,
                   min(ts) AS first_ts, max(ts) AS last_ts,
                   arg_min(report_id, struct_pack(t := t, r := report_id)) AS first_report
            FROM ref_episodes GROUP BY ALL),
        hist AS (
            SELECT *, coalesce(sum(n) OVER (PARTITION BY platform, target_id ORDER BY episode
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS n_before
            FROM en),
        ranked AS (
            SELECT *, coalesce(sum(k) OVER (PARTITION BY platform, target_id, reason
                       ORDER BY episode ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                       AS k_before,
                   row_number() OVER (PARTITION BY platform, target_id, episode
                                      ORDER BY k DESC, reason) AS rank
            FROM ek)
        SELECT h.platform, h.target_id, h.episode, h.kind, h.n, h.first_ts, h.last_ts,
               h.first_report, d.reason, d.k, d.k_before, h.n_before,
               coalesce(m.p, 0.0) AS p, coalesce(m.reasons, 1.0) AS reasons,
               (d.k + {a} * coalesce(m.p, 0.0)) / (h.n + {a}) AS smoothed
        FROM hist h JOIN ranked d ON d.platform = h.platform AND d.target_id = h.target_id
                     AND d.episode = h.episode AND d.rank = 1
        LEFT JOIN ref_mix m ON m.platform = h.platform AND m.target_kind = h.kind
                           AND m.reason = d.reason
        WHERE h.n >= {detector.min_reports}
        """
    )
    homogeneity = "greatest(0.0, (smoothed - p) / greatest(1.0 - p, 1e-9))"
    rarity = "greatest(0.0, 1.0 - p * reasons)"
    mismatch = f"({rarity}) * (1.0 - (k_before + {a} * p) / (n_before + {a}))"
    spans = "round(epoch(last_ts) - epoch(first_ts)) / 3600.0"
    details = {
        "reason_homogeneity": f"format('{{}} of {{}} reports in {{:.1f}} h gave reason {{}} "
        f"(usual share {{:.1f}}%)', k, n, {spans}, reason, 100 * p)",
        "reason_mismatch": "format('reason {} is {:.1f}% of reports on targets of kind {} and "
        "{} of {} earlier reports on this target', reason, 100 * p, kind, k_before, n_before)",
    }
    parts = []
    for layer, score, value in (
        ("reason_homogeneity", homogeneity, "k / n"),
        ("reason_mismatch", mismatch, rarity),
    ):
        where = "" if layer == "reason_homogeneity" else f"WHERE {score} > 0"
        parts.append(
            f"""SELECT 'report_content' AS detector, '{layer}' AS layer, 'target' AS entity,
                       platform, target_id AS id, {score} AS score, {value} AS value,
                       first_report AS related_id, first_ts, last_ts,
                       {details[layer]} AS detail
                FROM ref_scored {where}
                UNION ALL
                SELECT 'report_content', '{layer}', 'report', e.platform, e.report_id,
                       {score}, {value}, e.target_id, e.ts, e.ts, {details[layer]}
                FROM ref_scored s JOIN ref_episodes e USING (platform, target_id, episode, reason)
                {where}"""
        )
    return rows_as_signals(con, " UNION ALL ".join(parts))


@st.composite
def crowded_reports(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Reports on two platforms' targets of two kinds, in hours or the same instants
    (ties broken by report id), some without a reason."""
    rows = []
    for i in range(draw(st.integers(0, 80))):
        rows.append(
            {
                "report_id": f"r{draw(st.integers(0, 10**6))}-{i}",
                "reporter_id": f"u{draw(st.integers(0, 8))}",
                "target_id": f"t{draw(st.integers(0, 4))}",
                "target_kind": draw(st.sampled_from(("account", "post"))),
                "reason": draw(st.sampled_from((*_REASONS, None))),
                "ts": at(draw(st.sampled_from((0, 1, 2, 3, 30, 31, 60, 62))) * 3600),
                "platform": draw(st.sampled_from(("facebook", "facebook", "instagram"))),
            }
        )
    return rows


@settings(max_examples=examples(60), deadline=None)
@given(
    rows=crowded_reports(),
    gap=st.sampled_from((3600.0, 86_400.0)),
    min_reports=st.sampled_from((2, 3, 5)),
    ranked=st.booleans(),
)
def test_episodes_and_mix_are_what_the_sql_definition_gives(
    rows: list[dict[str, Any]], gap: float, min_reports: int, ranked: bool
) -> None:
    """The numpy episodes, counts and mix give, row for row, what windows over the
    reports give; with times packed as offsets or as ranks."""
    detector = ReportContent(episode_gap=gap, min_reports=min_reports)
    with duckdb.connect() as con, ranked_times(ranked):
        con.execute("SET TimeZone = 'UTC'")
        make_case(con, reports=rows)
        found = [
            r for r in signals(detector.detect(con, "actions")) if r["layer"] != "templated_text"
        ]
        same_signals(found, reference(detector, con))


@settings(max_examples=examples(40), deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(("a", "b", None)), st.sampled_from(("x", "y", "zz", None))),
        max_size=30,
    ),
    limit=st.sampled_from((2, columnar.CODE_LIMIT)),
)
def test_group_codes_are_equal_exactly_where_the_rows_are(
    rows: list[tuple[str | None, str | None]], limit: int
) -> None:
    """Codes of several columns (renumbered densely past the limit, forced small here)
    are equal exactly for equal rows, NULL equal to NULL."""
    first = pa.array([r[0] for r in rows], type=pa.string())
    second = pa.chunked_array([[r[1] for r in rows[:3]], [r[1] for r in rows[3:]]], pa.string())
    with mock.patch.object(columnar, "CODE_LIMIT", limit):
        codes = columnar.group_codes(first, second).tolist()
    for i, a in enumerate(rows):
        for j, b in enumerate(rows):
            assert (codes[i] == codes[j]) == (a == b)
