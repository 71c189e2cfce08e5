"""A restart loses nothing acknowledged and scores on as if it had never stopped."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.service.logs import open_log
from concerted.service.state import (
    MAX_CO_REPORTERS,
    TIMELINE,
    TargetView,
    pack_views,
    unpack_views,
)
from tests.service.conftest import Start, brigade_stream

_KEEP = ("score", "recommendation", "signals", "features", "target")


def _post(client: Any, rows: list[dict[str, Any]], size: int = 15) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(0, len(rows), size):
        r = client.post("/v1/reports/batch", json=rows[i : i + size])
        assert r.status_code == 200
        out += r.json()["results"]
    return out


def _named(log: str, name: str) -> str:
    """Log ``log`` under a name of its own (a JetStream server holds several)."""
    return log if log == "sqlite" else f"{log}/{name}"


@pytest.mark.parametrize("snapshot", ["older", "none", "old-format"])
def test_a_restart_replays_the_log_and_scores_on_unchanged(
    serve: Start, tmp_path: Path, snapshot: str, log_kind: str
) -> None:
    rows = brigade_stream(90)
    first, second = rows[:60], rows[60:]
    uninterrupted = serve(state=tmp_path / "uninterrupted", log=_named(log_kind, "reference"))
    reference = _post(uninterrupted.client("reports:write"), rows)

    state = tmp_path / "restarted"
    where = _named(log_kind, "restarted")
    s = serve(state=state, snapshot_every=10, log=where)
    _post(s.client("reports:write"), first[:25])
    older = tmp_path / "older.bin"
    shutil.copy(state / "snapshot.bin", older)
    acknowledged = _post(s.client("reports:write"), first[25:])
    s.stop()
    if snapshot == "older":
        shutil.copy(older, state / "snapshot.bin")
    elif snapshot == "none":
        (state / "snapshot.bin").unlink()
    elif snapshot == "old-format":
        # A pickled state, as earlier releases wrote: refused, the whole log replayed.
        (state / "snapshot.bin").write_bytes(pickle.dumps({"version": 5, "offset": 60}))

    again = serve(state=state, log=where)
    assert again.client().get("/readyz").json() == {"ready": True, "offset": 60}
    # Every acknowledged report is there once: sent again, each is a repeat.
    repeats = _post(again.client("reports:write"), first)
    assert all(r["repeat"] for r in repeats)
    assert [r["offset"] for r in repeats[25:]] == [r["offset"] for r in acknowledged]
    log = open_log(where, state)
    try:
        assert log.last_offset == 60 and len(list(log.read())) == 60
    finally:
        log.close()

    after = _post(again.client("reports:write"), second)
    expected = reference[60:]
    assert [{k: r[k] for k in _KEEP} for r in after] == [{k: r[k] for k in _KEEP} for r in expected]
    assert any(r["recommendation"] != "count" for r in after)
    targets = again.client("reports:read").get("/v1/targets").json()
    assert targets == uninterrupted.client("reports:read").get("/v1/targets").json()


# The target views a snapshot holds -------------------------------------------------

_RECOMMENDATIONS = ("count", "review", "discount")
_events = st.lists(
    st.tuples(
        st.integers(-(10**12), 10**15),
        st.sampled_from([f"u{i}" for i in range(6)] + [f"v{i}" for i in range(120)]),
        st.sampled_from(_RECOMMENDATIONS),
        st.lists(st.sampled_from(["coreport", "pace", "burst", "automation"]), max_size=3),
    ),
    max_size=450,
)


def _model(events: list[tuple[int, str, str, list[str]]]) -> dict[str, Any]:
    """What a target's view shows after ``events``, counted the plain way."""
    flagged = [e for e in events if e[2] != "count"]
    co: list[str] = []
    for _, reporter, _, _ in flagged:
        if reporter not in co and len(co) < MAX_CO_REPORTERS:
            co.append(reporter)
    signals: dict[str, int] = {}
    for *_, names in flagged:
        for name in names:
            signals[name] = signals.get(name, 0) + 1
    return {
        "reports": len(events),
        "first": min(e[0] for e in events),
        "latest": max(e[0] for e in events),
        "flagged": max((e[0] for e in flagged), default=None),
        "recommendations": {r: sum(e[2] == r for e in events) for r in _RECOMMENDATIONS},
        "co_reporters": sorted(co),
        "signals": dict(sorted(signals.items())),
        "timeline": [(t, r) for t, _, r, _ in events][-TIMELINE:],
    }


def _shown(view: TargetView) -> dict[str, Any]:
    return {
        "reports": view.reports,
        "first": view.first_us,
        "latest": view.latest_us,
        "flagged": view.flagged_us,
        "recommendations": view.recommendations,
        "co_reporters": view._co(),
        "signals": view._shown_signals(),
        "timeline": list(view.timeline),
    }


@settings(max_examples=60, deadline=None)
@given(st.lists(_events.filter(bool), min_size=1, max_size=4))
def test_target_views_count_as_the_plain_way_and_survive_a_snapshot(
    targets: list[list[tuple[int, str, str, list[str]]]],
) -> None:
    views: dict[tuple[str, str], TargetView] = {}
    for n, events in enumerate(targets):
        view = views[("x", f"t{n}")] = TargetView(events[0][0], events[0][0])
        for t, reporter, recommendation, names in events:
            view.add(t, reporter, recommendation, names)
        assert _shown(view) == _model(events)
    back = unpack_views(pickle.loads(pickle.dumps(pack_views(views))))
    assert list(back) == list(views)
    for key, view in views.items():
        assert _shown(back[key]) == _shown(view)
        # and they go on alike
        back[key].add(7, "u1", "review", ["pace"])
        view.add(7, "u1", "review", ["pace"])
        assert _shown(back[key]) == _shown(view)


def test_a_snapshot_whose_header_does_not_unpack_is_set_aside(tmp_path: Path) -> None:
    from dataclasses import replace

    from concerted.scoring import ScoreSettings
    from concerted.service.state import GuardState

    state = GuardState(ScoreSettings())
    state.score_and_learn_many(
        [
            {
                "report_id": f"r{i}",
                "platform": "x",
                "reporter_id": f"u{i % 3}",
                "target_id": "t",
                "ts": f"2026-05-28T00:00:{i:02d}Z",
            }
            for i in range(9)
        ]
    )
    state.offset = 9
    good, bad = tmp_path / "good.bin", tmp_path / "bad.bin"
    data = state.dump()
    GuardState.write_snapshot(good, data)
    assert GuardState.load(good, ScoreSettings()).offset == 9
    header = pickle.loads(data.header)
    # The scorer's ids as an earlier layout held them: one list of pairs.
    header["scorer"]["reporters"] = [("x", f"u{i}") for i in range(3)]
    GuardState.write_snapshot(bad, replace(data, header=pickle.dumps(header)))
    again = GuardState.load(bad, ScoreSettings())
    assert (again.offset, len(again.targets)) == (0, 0)


def test_a_long_replay_is_followed_by_a_snapshot(tmp_path: Path) -> None:
    """With no snapshot, a restart replays the whole log; the first group after it
    takes a snapshot, so that the next restart does not replay it all again."""
    import asyncio
    import time

    from concerted.scoring import ScoreSettings
    from concerted.service.intake import Guard
    from concerted.service.sqlite import SqliteLog
    from concerted.service.state import GuardState

    rows = [
        {
            "report_id": f"r{i}",
            "platform": "x",
            "reporter_id": f"u{i % 4}",
            "target_id": f"t{i % 3}",
            "ts": f"2026-05-28T00:00:{i:02d}Z",
        }
        for i in range(14)
    ]
    snapshot = tmp_path / "snapshot.bin"

    async def run(reports: list[dict[str, Any]], every: int) -> int:
        guard = Guard(
            SqliteLog(tmp_path / "log.sqlite"),
            GuardState(ScoreSettings()),
            snapshot=snapshot,
            snapshot_every=every,
        )
        await guard.start()
        answers = await guard.submit_reports(reports)
        assert len(answers) == len(reports)
        # No guard.stop(): it takes a snapshot of its own. Wait for the writer's.
        for _ in range(200):
            if snapshot.exists():
                break
            await asyncio.sleep(0.01)
        replayed = guard.stats.replayed
        guard.log.close()
        return replayed

    assert asyncio.run(run(rows[:12], 1_000)) == 0
    assert not snapshot.exists()  # 12 reports, a snapshot every 1,000
    assert asyncio.run(run(rows[12:13], 10)) == 12
    time.sleep(0.1)
    assert snapshot.exists()
    assert GuardState.load(snapshot, ScoreSettings()).offset == 13
