"""The per-report scorer: online and batch agree, and the score means what it says."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concerted import scoring
from concerted.errors import ConfigError
from concerted.schema import CONTRACTS
from concerted.scoring import FEATURES, OnlineScorer, ScoreSettings, score_reports
from tests.budget import examples

START = datetime(2020, 6, 1, tzinfo=UTC)
# Small windows and counts so that random streams reach every branch.
SMALL = ScoreSettings(
    window=120.0,
    recent=4,
    min_shared=2,
    gaps=2,
    fast_gap=5.0,
    pace_window=60.0,
    burst_window=60.0,
    baseline_window=600.0,
    young_days=1.0,
    hold=90.0,
    decision_lag=30.0,
)


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET memory_limit = '2GB'")
    return con


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = _connect()
    yield connection
    connection.close()


def _load(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    con.execute(CONTRACTS["reports"].ddl())
    con.execute(CONTRACTS["accounts"].ddl())
    fields: list[pa.Field[Any]] = [
        pa.field("report_id", pa.string()),
        pa.field("platform", pa.string()),
        pa.field("reporter_id", pa.string()),
        pa.field("target_id", pa.string()),
        pa.field("ts", pa.timestamp("us", tz="UTC")),
        pa.field("channel", pa.string()),
        pa.field("client", pa.string()),
        pa.field("outcome", pa.string()),
    ]
    schema = pa.schema(fields)
    table = pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in rows], schema=schema)
    con.register("_rows", table)
    con.execute(
        "INSERT INTO reports (report_id, platform, reporter_id, target_id, ts, channel, "
        "client, outcome, target_kind) SELECT *, 'account' FROM _rows"
    )
    created = {
        (r["platform"], r["reporter_id"]): r["reporter_created_at"]
        for r in rows
        if r.get("reporter_created_at") is not None
    }
    for (platform, account), at in created.items():
        con.execute(
            "INSERT INTO accounts (account_id, platform, kind, created_at) "
            "VALUES (?, ?, 'user', ?)",
            [account, platform, at],
        )


@st.composite
def streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Reports in (ts, platform, report_id) order: few reporters and targets, gaps of a
    few seconds to minutes, ties included, so that pairs, bursts and gaps all occur."""
    n = draw(st.integers(0, 60))
    reporters = draw(st.integers(1, 6))
    targets = draw(st.integers(1, 4))
    ages = {f"u{k}": draw(st.none() | st.integers(-3600, 5 * 86400)) for k in range(reporters)}
    t = START
    rows: list[dict[str, Any]] = []
    for i in range(n):
        t = t + timedelta(seconds=draw(st.sampled_from([0, 0.5, 1, 3, 7, 20, 45, 100, 700])))
        reporter = f"u{draw(st.integers(0, reporters - 1))}"
        age = ages[reporter]
        rows.append(
            {
                "report_id": f"r{i:03d}",
                "platform": draw(st.sampled_from(["facebook", "facebook", "instagram"])),
                "reporter_id": reporter,
                "target_id": f"t{draw(st.integers(0, targets - 1))}",
                "ts": t,
                "channel": draw(st.sampled_from([None, "app", "web", "direct_link"])),
                "client": draw(st.sampled_from([None, "A", "B", "C"])),
                "outcome": draw(st.sampled_from([None, "upheld", "rejected"])),
                "reporter_created_at": None if age is None else START - timedelta(seconds=age),
            }
        )
    rows.sort(key=lambda r: (r["ts"], r["platform"], r["report_id"]))
    # An account's creation time is one fact; it does not change from report to report.
    created: dict[tuple[str, str], Any] = {}
    for r in rows:
        key = (r["platform"], r["reporter_id"])
        r["reporter_created_at"] = created.setdefault(key, r["reporter_created_at"])
    return rows


@given(rows=streams())
@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_online_and_batch_agree_on_any_stream(rows: list[dict[str, Any]]) -> None:
    scorer = OnlineScorer(SMALL)
    online: list[tuple[float, str, dict[str, float]]] = []
    for report in rows:
        values = scorer.features_one(report)
        score = scorer.score_one(report)
        online.append((score, scorer.recommend_one(report), values))
        scorer.learn_one(report)
    with _connect() as con:
        _load(con, rows)
        batch = score_reports(con, SMALL).to_pylist()
    assert [b["report_id"] for b in batch] == [r["report_id"] for r in rows]
    for (score, recommendation, values), b in zip(online, batch, strict=True):
        assert b["score"] == pytest.approx(score, abs=1e-12)
        assert b["recommendation"] == recommendation
        for name in FEATURES:
            assert b[name] == pytest.approx(values[name], abs=1e-12), name


@given(rows=streams(), wide=st.booleans())
@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_fast_batch_scorer_equals_the_plain_one(rows: list[dict[str, Any]], wide: bool) -> None:
    """The numpy path (three sorts, cumulative sums and binary searches) gives exactly
    the table of the plain path (one SQL window function per feature), with small
    windows and with the defaults."""
    chosen = ScoreSettings() if wide else SMALL
    with _connect() as con:
        _load(con, rows)
        fast = score_reports(con, chosen)
        plain = score_reports(con, chosen, plain=True)
    assert fast.schema == plain.schema
    assert fast.to_pylist() == plain.to_pylist()


def _report(i: int, reporter: str, target: str, seconds: float, **extra: Any) -> dict[str, Any]:
    return {
        "report_id": f"r{i:04d}",
        "platform": "facebook",
        "reporter_id": reporter,
        "target_id": target,
        "ts": START + timedelta(seconds=seconds),
        **extra,
    }


def test_the_same_reporters_again_and_again_score_high_a_crowd_does_not() -> None:
    """A crew of six walking ten targets together, and a crowd of sixty reporting one
    viral post each once: coordination, not volume, raises the score."""
    crew = [
        _report(i, f"crew{m}", f"target{k}", 600 * k + 30 * m)
        for i, (k, m) in enumerate((k, m) for k in range(10) for m in range(6))
    ]
    crowd = [
        _report(1000 + i, f"viewer{i}", "viral", 50_000 + 40 * i, channel="app") for i in range(60)
    ]
    scorer = OnlineScorer()
    scores: dict[str, float] = {}
    for report in sorted(crew + crowd, key=lambda r: r["ts"]):
        scores[report["report_id"]] = scorer.score_one(report)
        scorer.learn_one(report)
    # From the sixth target on, every crew member but the first two on each target has
    # co-reported three targets with the ones before.
    late_crew = [scores[r["report_id"]] for r in crew[30:] if r["reporter_id"] >= "crew2"]
    assert min(late_crew) >= ScoreSettings().discount
    assert max(scores[r["report_id"]] for r in crowd) < ScoreSettings().review


def test_clockwork_gaps_are_automation_human_gaps_are_not() -> None:
    scorer = OnlineScorer()
    bot = [_report(i, "bot", f"t{i}", 3.0 * i) for i in range(6)]
    person = [_report(100 + i, "person", f"t{i}", 1000 + 45.0 * i) for i in range(6)]
    for report in bot + person:
        scorer.learn_one(report)
    assert scorer.features_one(_report(9, "bot", "t9", 18.0))["automation"] > 0.9
    assert scorer.features_one(_report(99, "person", "t9", 1270.0))["automation"] < 0.01


def test_every_report_is_scored_in_batch(con: duckdb.DuckDBPyConnection) -> None:
    rows = [_report(i, f"u{i % 5}", f"t{i % 3}", 10.0 * (i // 2)) for i in range(40)]
    _load(con, rows)
    table = score_reports(con)
    assert table.num_rows == 40
    ids = [str(i) for i in table.column("report_id").to_pylist()]
    assert sorted(ids) == sorted(r["report_id"] for r in rows)
    score = table.column("score").to_numpy()
    assert np.all((score >= 0) & (score <= 1))
    assert set(table.column("recommendation").to_pylist()) <= {"count", "review", "discount"}


def test_empty_reports_give_an_empty_table(con: duckdb.DuckDBPyConnection) -> None:
    _load(con, [])
    assert score_reports(con).num_rows == 0


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError):
        ScoreSettings(recent=0)
    with pytest.raises(ConfigError):
        ScoreSettings(w_coreport=1.5)
    with pytest.raises(ConfigError):
        ScoreSettings(burst_window=10.0, baseline_window=5.0)


@given(
    seed=st.integers(0, 2**32 - 1),
    reporters=st.integers(1, 30),
    targets=st.integers(1, 12),
    n=st.integers(0, 400),
    wide=st.booleans(),
    block=st.integers(1, 64),
)
@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_fast_scorer_equals_the_plain_one_on_crews_in_any_row_order(
    seed: int, reporters: int, targets: int, n: int, wide: bool, block: int
) -> None:
    """Reports stored in a random order, under ids that do not sort as their times, by
    reporters who meet on the same targets again and again (so that co-reporters count),
    with ties in time, the co-reporters counted in small blocks and many parts: the
    numpy path gives the plain path's table."""
    rng = np.random.default_rng(seed)

    def pick(options: list[str | None]) -> str | None:
        return options[int(rng.integers(len(options)))]

    seconds = np.sort(rng.choice([0, 1, 5, 30, 90], size=n).cumsum())
    rows = [
        {
            "report_id": f"x{rng.integers(0, 10**9)}-{i}",
            "platform": str(rng.choice(["facebook", "instagram"], p=[0.8, 0.2])),
            "reporter_id": f"u{rng.integers(0, reporters)}",
            "target_id": f"t{rng.integers(0, targets)}",
            "ts": START + timedelta(seconds=int(s)),
            "channel": pick([None, "app", "direct_link"]),
            "client": pick([None, "A", "B"]),
            "outcome": pick([None, "upheld", "rejected"]),
        }
        for i, s in enumerate(seconds)
    ]
    rows = [rows[k] for k in rng.permutation(len(rows))]
    chosen = ScoreSettings() if wide else SMALL
    with _connect() as con, pytest.MonkeyPatch.context() as patch:
        _load(con, rows)
        patch.setattr(scoring, "_BLOCK_ROWS", block)
        fast = score_reports(con, chosen)
        plain = score_reports(con, chosen, plain=True)
    assert fast.schema == plain.schema
    assert fast.to_pylist() == plain.to_pylist()


def test_crews_co_report_alike_on_both_paths(con: duckdb.DuckDBPyConnection) -> None:
    """A crew walking targets together: many reports count co-reporters, and both paths
    count them alike, in one block or in blocks of a few rows."""
    crew = [
        _report(i, f"crew{m}", f"target{k}", 600 * k + 30 * m)
        for i, (k, m) in enumerate((k, m) for k in range(10) for m in range(6))
    ]
    _load(con, crew)
    fast = score_reports(con)
    plain = score_reports(con, plain=True)
    assert fast.to_pylist() == plain.to_pylist()
    assert (fast.column("coreport").to_numpy() > 0.5).sum() >= 20
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scoring, "_BLOCK_ROWS", 3)
        assert score_reports(con).to_pylist() == fast.to_pylist()


@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 300),
    block=st.integers(1, 50),
)
@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_co_reporters_in_blocks_equal_the_sql(seed: int, n: int, block: int) -> None:
    """The co-reporters counted from sorts in numpy, in blocks of any size, are those of
    the SQL window functions, on random integer reports."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.choice([0, 1, 2, 10, 40], size=n).cumsum()).astype(np.int64) * 1_000_000
    r = rng.integers(0, 8, size=n).astype(np.int64)
    g = rng.integers(0, 5, size=n).astype(np.int64)
    chosen = ScoreSettings(window=60.0, recent=3, min_shared=2)
    got = scoring._co_reporters(scoring._Partitions(g, t), r, g, chosen, block)
    keys = pa.table({"i": np.arange(1, n + 1, dtype=np.int64), "t": t, "r": r, "g": g})
    with _connect() as con:
        con.register("k", keys)
        rows = con.sql(scoring._co_reporters_sql("k", chosen)).fetchall()
    want = np.zeros(n, dtype=np.int64)
    for i, count in rows:
        want[i - 1] = count
    assert got.tolist() == want.tolist()
