"""Moderators' decisions feed reporter reputation as the batch scorer learns it."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concerted.scoring import FEATURES, OnlineScorer, score_reports
from tests.budget import examples
from tests.service.conftest import SMALL, Start, report
from tests.test_scoring import _load, streams

_OUTCOMES = st.sampled_from([None, "upheld", "rejected"])


def _batch(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        _load(con, rows)
        return score_reports(con, SMALL).to_pylist()
    finally:
        con.close()


@given(rows=streams(), data=st.data())
@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_decisions_after_the_fact_score_as_outcomes_in_batch(
    rows: list[dict[str, Any]], data: st.DataObject
) -> None:
    """Learn a stream up to a point, then decide (and re-decide) some earlier reports:
    every later report scores as the batch scorer scores it when those reports carry
    the final decisions as their ``outcome``."""
    split = data.draw(st.integers(0, len(rows)))
    scorer = OnlineScorer(SMALL)
    for r in rows[:split]:
        scorer.learn_one(r)
    final = {i: r["outcome"] for i, r in enumerate(rows)}
    if split:
        decisions = data.draw(st.lists(st.tuples(st.integers(0, split - 1), _OUTCOMES)))
        for i, outcome in decisions:
            scorer.learn_outcome(rows[i], outcome, final[i])
            final[i] = outcome
    online = []
    for r in rows[split:]:
        online.append((scorer.score_one(r), scorer.features_one(r)))
        scorer.learn_one(r)
    batch = _batch([{**r, "outcome": final[i]} for i, r in enumerate(rows)])
    for (score, values), b in zip(online, batch[split:], strict=True):
        assert b["score"] == pytest.approx(score, abs=1e-12)
        for name in FEATURES:
            assert b[name] == pytest.approx(values[name], abs=1e-12), name


def _decided_stream() -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Reporter ``a`` reports often; later most of it is rejected (one decision
    changed), and ``a`` reports again well after ``decision_lag``."""
    rows = [report(i, "a" if i % 2 else f"p{i}", f"t{i % 3}", 10.0 * i) for i in range(12)]
    rows[3]["outcome"] = "upheld"  # known when it arrived, overruled below
    decisions = [("r0001", "upheld"), ("r0003", "rejected"), ("r0005", "rejected")]
    decisions += [("r0007", "rejected"), ("r0001", "rejected"), ("r0009", "upheld")]
    return rows, decisions


def _typed(rows: list[dict[str, Any]], final: Mapping[str, str | None]) -> list[dict[str, Any]]:
    return [
        {
            **r,
            "ts": datetime.fromisoformat(r["ts"]),
            "outcome": final.get(r["report_id"], r.get("outcome")),
        }
        for r in rows
    ]


@pytest.mark.parametrize("restart", [None, "snapshot", "replay"])
def test_posted_outcomes_change_the_reporters_next_score_as_in_batch(
    serve: Start, tmp_path: Path, restart: str | None
) -> None:
    rows, decisions = _decided_stream()
    state = tmp_path / "state"
    s = serve(state=state)
    write, admin = s.client("reports:write"), s.client("admin")
    assert write.post("/v1/reports/batch", json=rows).json()["accepted"] == len(rows)
    for report_id, outcome in decisions:
        r = admin.post(
            "/v1/outcomes",
            json={"platform": "mastodon", "report_id": report_id, "outcome": outcome},
        )
        assert r.json() == {"stored": True, "feeds_reputation": True}
    if restart is not None:
        s.stop()
        if restart == "replay":
            (state / "snapshot.bin").unlink()
        s = serve(state=state)
        write = s.client("reports:write")
    after = report(99, "a", "t9", 400.0)
    answer = write.post("/v1/reports", json=after).json()

    final = dict(decisions)
    batch = _batch(_typed([*rows, after], final))
    assert batch[-1]["report_id"] == "r0099"
    assert answer["score"] == pytest.approx(batch[-1]["score"], abs=1e-12)
    # Five decided reports: four rejected (r0001 overruled, r0003 over its body's
    # upheld), one upheld: 4 / (1 + 4 + 2).
    assert answer["features"]["reputation"] == pytest.approx(4 / 7)
    assert answer["features"]["reputation"] == pytest.approx(batch[-1]["reputation"])


def test_decisions_replay_in_their_place_among_the_reports(serve: Start, tmp_path: Path) -> None:
    """A decision posted between two reports is replayed between them: a restart from
    no snapshot, or an older one, scores on as the uninterrupted server does."""
    rows, decisions = _decided_stream()
    more = [report(20 + i, "a", f"t{i % 2}", 300.0 + 5 * i) for i in range(6)]

    def run(state: Path, snapshot_every: int) -> Any:
        s = serve(state=state, snapshot_every=snapshot_every)
        write, admin = s.client("reports:write"), s.client("admin")
        for i, row in enumerate(rows):
            write.post("/v1/reports", json=row)
            for report_id, outcome in decisions[i // 2 : i // 2 + 1] if i % 2 else []:
                admin.post(
                    "/v1/outcomes",
                    json={"platform": "mastodon", "report_id": report_id, "outcome": outcome},
                )
        return s

    reference = run(tmp_path / "uninterrupted", 100_000)
    expected = [reference.client("reports:write").post("/v1/reports", json=m).json() for m in more]
    for snapshot in ("older", "none"):
        state = tmp_path / snapshot
        s = run(state, 5)
        older = tmp_path / f"{snapshot}.bin"
        shutil.copy(state / "snapshot.bin", older)
        s.stop()
        if snapshot == "older":
            shutil.copy(older, state / "snapshot.bin")
        else:
            (state / "snapshot.bin").unlink()
        again = serve(state=state)
        got = [again.client("reports:write").post("/v1/reports", json=m).json() for m in more]
        keep = ("score", "recommendation", "signals", "features", "target")
        assert [{k: g[k] for k in keep} for g in got] == [{k: e[k] for k in keep} for e in expected]
        assert any(g["features"]["reputation"] > 0 for g in got)
        again.stop()
