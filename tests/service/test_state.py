"""The live state: ready only after replay; target views evicted past the longest
window; snapshots taken under other settings are not trusted."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from concerted.service.base import Entry, Learnt
from concerted.service.intake import Guard, NotReady
from concerted.service.sqlite import SqliteLog
from concerted.service.state import GuardState
from tests.service.conftest import SMALL, brigade_stream, report


class _SlowLog(SqliteLog):
    gate = threading.Event()

    def read(self, after: int = 0, *, chunk: int = 10_000) -> Iterator[Entry]:
        self.gate.wait(10)
        yield from super().read(after, chunk=chunk)

    def read_learnt(self, after: int = 0, *, chunk: int = 50_000) -> Iterator[Learnt]:
        self.gate.wait(10)
        yield from super().read_learnt(after, chunk=chunk)


def test_intake_waits_until_the_log_is_replayed(tmp_path: Path) -> None:
    async def run() -> None:
        log = _SlowLog(tmp_path / "log.sqlite")
        guard = Guard(log, GuardState(SMALL))
        starting = asyncio.create_task(guard.start())
        await asyncio.sleep(0.05)
        assert not guard.ready
        with pytest.raises(NotReady):
            await guard.submit_reports([report(1, "a", "t", 0)])
        log.gate.set()
        await starting
        assert guard.ready
        (answer,) = await guard.submit_reports([report(1, "a", "t", 0)])
        assert isinstance(answer, dict) and answer["offset"] == 1
        await guard.stop()
        log.close()

    asyncio.run(run())


def test_target_views_older_than_the_longest_window_are_evicted() -> None:
    state = GuardState(SMALL)
    for r in brigade_stream(30):
        state.score_and_learn(r)
    assert state.evict() == 0
    assert state.target("mastodon", "t0") is not None
    # Much later (past baseline_window, the longest window of SMALL): only the new target.
    state.score_and_learn(report(999, "late", "fresh", SMALL.baseline_window + 1000))
    before = len(state.targets)
    assert state.evict() == before - 1
    assert set(state.targets) == {("mastodon", "fresh")}
    assert state.target("mastodon", "t0") is None


def test_a_snapshot_under_other_settings_is_set_aside(tmp_path: Path) -> None:
    state = GuardState(SMALL)
    for r in brigade_stream(10):
        state.score_and_learn(r)
    state.offset = 10
    path = tmp_path / "snapshot.pickle"
    GuardState.write_snapshot(path, state.dump())
    assert GuardState.load(path, SMALL).offset == 10
    assert GuardState.load(path, replace(SMALL, window=60.0)).offset == 0


def test_an_unreadable_snapshot_means_a_full_replay(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.pickle"
    path.write_bytes(b"not a pickle")
    assert GuardState.load(path, SMALL).offset == 0


def test_hindsight_marks_survive_a_restart_from_the_snapshot(tmp_path: Path) -> None:
    state = GuardState(SMALL)
    for r in brigade_stream(10):
        state.score_and_learn(r)
    mark = {"source": "hindsight", "campaign_id": "b1", "protected": True, "score": 0.9}
    state.hindsight = {("mastodon", "t0"): mark, ("mastodon", "gone"): mark}
    path = tmp_path / "snapshot.pickle"
    GuardState.write_snapshot(path, state.dump())
    loaded = GuardState.load(path, SMALL)
    assert loaded.hindsight == state.hindsight
    target = loaded.target("mastodon", "t0")
    assert target is not None and target["hindsight"] == mark
    assert "hindsight" in target["sources"] and target["state"] == "review"
    # A marked target with no live view is still listed, from its mark alone.
    listed = {t["target_id"]: t for t in loaded.under_review(10)}
    assert {"t0", "gone"} <= set(listed) and listed["gone"]["reports"] == 0
    assert listed["gone"]["sources"] == ["hindsight"]
