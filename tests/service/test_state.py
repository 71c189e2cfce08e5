"""The live state: ready only after replay; target views evicted past the longest
window; snapshots taken under other settings are not trusted."""

from __future__ import annotations

import asyncio
import pickle
import random
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgspec
import pytest

from concerted.config import FEATURES
from concerted.service import intake
from concerted.service import state as state_module
from concerted.service.base import Answered, Entry, Learnt, StoredReport
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


@pytest.mark.parametrize("share", [intake.SNAPSHOT_SHARE, None])
def test_snapshots_after_the_first_wait_until_their_cost_is_a_small_share(
    tmp_path: Path, share: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first snapshot comes after ``snapshot_every`` reports; the next, while a
    snapshot's cost is over ``share`` of the time since the last, only once the reports
    since would take :data:`~concerted.service.intake.REPLAY_BUDGET_S` to replay (or
    every ``snapshot_every`` reports when ``share`` is None)."""
    rows = brigade_stream(60)

    async def run() -> list[int]:
        log = SqliteLog(tmp_path / "log.sqlite")
        guard = Guard(
            log,
            GuardState(SMALL),
            snapshot=tmp_path / "snapshot.bin",
            snapshot_every=10,
            snapshot_share=share,
        )
        await guard.start()
        taken: list[int] = []
        write = guard._write_snapshot

        async def counted() -> None:
            await write()
            taken.append(guard.state.offset)
            guard._snapshot_cost = 3600.0  # as if each took an hour

        guard._write_snapshot = counted  # type: ignore[method-assign]
        for at in range(0, 40, 10):
            await guard.submit_reports(rows[at : at + 10])
        # 20 reports take a replay budget to replay: the next group takes one.
        monkeypatch.setattr(intake, "REPLAY_REPORT_S", intake.REPLAY_BUDGET_S / 20)
        for at in range(40, 60, 10):
            await guard.submit_reports(rows[at : at + 10])
        await guard.stop()  # the writer done, then a last snapshot at any rate
        log.close()
        return taken

    taken = asyncio.run(run())
    assert taken == ([10, 50, 60] if share is not None else [10, 20, 30, 40, 50, 60, 60])


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
    path = tmp_path / "snapshot.bin"
    GuardState.write_snapshot(path, state.dump())
    assert GuardState.load(path, SMALL).offset == 10
    assert GuardState.load(path, replace(SMALL, window=60.0)).offset == 0


def test_an_unreadable_snapshot_means_a_full_replay(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.bin"
    path.write_bytes(b"not a pickle")
    assert GuardState.load(path, SMALL).offset == 0


def test_hindsight_marks_survive_a_restart_from_the_snapshot(tmp_path: Path) -> None:
    state = GuardState(SMALL)
    for r in brigade_stream(10):
        state.score_and_learn(r)
    mark = {"source": "hindsight", "campaign_id": "b1", "protected": True, "score": 0.9}
    state.hindsight = {("mastodon", "t0"): mark, ("mastodon", "gone"): mark}
    path = tmp_path / "snapshot.bin"
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


def _stored(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reports as the log stores them (``ts`` as ISO text), some decided."""
    outcomes = [None, None, "upheld", None, "rejected"]
    return [{**r, "outcome": outcomes[i % 5]} for i, r in enumerate(rows)]


def _mixed(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = brigade_stream(n)
    rng.shuffle(rows)  # out of time order too
    return _stored(rows)


@pytest.mark.parametrize("memory", [None, 30.0])
def test_a_batch_is_answered_as_reports_one_by_one(memory: float | None) -> None:
    rows = _mixed(400, 1)
    one, many = GuardState(SMALL, memory), GuardState(SMALL, memory)
    expected = [one.score_and_learn(r) for r in rows]
    got: list[dict[str, Any]] = []
    rng = random.Random(2)
    at = 0
    while at < len(rows):
        size = rng.choice([1, 2, 7, 50, 200])
        got += many.score_and_learn_many(rows[at : at + size])
        at += size
    assert got == expected
    assert any(r["recommendation"] != "count" for r in got)
    assert many.targets.keys() == one.targets.keys()
    assert many.scorer.seen == one.scorer.seen == len(rows)


def _learnt(rows: list[dict[str, Any]], answers: list[dict[str, Any]]) -> list[Learnt]:
    return [
        (
            i + 1,
            msgspec.convert({k: r.get(k) for k in StoredReport.__struct_fields__}, StoredReport),
            Answered(a["recommendation"], a["signals"]),
        )
        for i, (r, a) in enumerate(zip(rows, answers, strict=True))
    ]


def test_replay_in_batches_learns_what_was_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replay queues reports and learns them a batch at a time: a state replayed so
    answers the next reports exactly as the state that answered the first ones."""
    monkeypatch.setattr(state_module, "REPLAY_BATCH", 64)
    rows = _mixed(500, 3)
    first, later = rows[:420], rows[420:]
    live = GuardState(SMALL)
    answers = live.score_and_learn_many(first)
    replayed, one_by_one = GuardState(SMALL), GuardState(SMALL)
    assert replayed.replay_many(_learnt(first, answers)) == len(first)
    for offset, report_, answered in _learnt(first, answers):
        one_by_one.replay_stored(report_, answered, offset)
    assert replayed.offset == one_by_one.offset == len(first)
    # The queue's tail is learnt before the scorer is read.
    assert one_by_one._queued and one_by_one.scorer.seen == len(first)
    expected = live.score_and_learn_many(later)
    for state in (replayed, one_by_one):
        assert state.score_and_learn_many(later) == expected
        assert state.under_review(50) == live.under_review(50)


@pytest.mark.parametrize("mapped", [True, False])
def test_a_snapshot_restores_the_state_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mapped: bool
) -> None:
    monkeypatch.setattr(state_module, "MAP_SNAPSHOT", mapped)
    rows = _mixed(600, 4)
    live = GuardState(SMALL, 60.0)
    live.score_and_learn_many(rows[:450])
    live.decide(rows[3], "rejected")
    live.offset = 450
    path = tmp_path / "snapshot.pickle"
    GuardState.write_snapshot(path, live.dump())
    assert not path.with_suffix(".tmp").exists()
    loaded = GuardState.load(path, SMALL, 60.0)
    assert loaded.offset == 450 and loaded.decided == live.decided
    assert loaded.scorer.seen == 450 and loaded.scorer.pairs == live.scorer.pairs
    assert loaded.score_and_learn_many(rows[450:]) == live.score_and_learn_many(rows[450:])
    # Written again over the file it was loaded from (mapped or not), it loads the same.
    GuardState.write_snapshot(path, loaded.dump())
    again = GuardState.load(path, SMALL, 60.0)
    assert again.scorer.seen == 600 and again.scorer.pairs == live.scorer.pairs
    assert again.score_and_learn_many(rows[:50]) == live.score_and_learn_many(rows[:50])
    # Another pair memory is another state: refused.
    assert GuardState.load(path, SMALL).offset == 0


def test_a_snapshot_of_the_old_format_or_cut_short_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.pickle"
    path.write_bytes(pickle.dumps({"version": 5, "offset": 10}))
    assert GuardState.load(path, SMALL).offset == 0
    state = GuardState(SMALL)
    state.score_and_learn_many(_mixed(50, 5))
    state.offset = 50
    GuardState.write_snapshot(path, state.dump())
    data = path.read_bytes()
    path.write_bytes(data[:-100])
    assert GuardState.load(path, SMALL).offset == 0
    path.write_bytes(data)
    assert GuardState.load(path, SMALL).offset == 50


def _reference_group(
    state: GuardState, reports: list[dict[str, Any]]
) -> tuple[list[bytes], list[dict[str, Any]]]:
    """The group scored one dict a result, as the guard did before its results were
    taken a column at a time: each result's JSON and each target's view."""
    xs = [state_module.scorer_report(r) for r in reports]
    scorer = state.scorer
    scored = scorer.learn_many(scorer.encode(xs))
    s = state.settings
    encoded: list[bytes] = []
    views: list[dict[str, Any]] = []
    for x, row, score, held in zip(
        xs, scored.features.tolist(), scored.scores.tolist(), scored.held.tolist(), strict=True
    ):
        if score >= s.discount:
            recommendation = "discount"
        elif score >= s.review or held:
            recommendation = "review"
        else:
            recommendation = "count"
        signals = [f for f, v in zip(FEATURES, row, strict=True) if v >= 0.5]
        views.append(state._update(x, recommendation, signals))
        encoded.append(
            msgspec.json.encode(
                {
                    "report_id": x["report_id"],
                    "platform": x["platform"],
                    "target_id": x["target_id"],
                    "score": score,
                    "recommendation": recommendation,
                    "signals": signals,
                    "features": dict(zip(FEATURES, row, strict=True)),
                }
            )
        )
    return encoded, views


_AWKWARD = ["plain", 'quo"te', "back\\slash", "ctrl\x01\x1f", "üñí", "😀", "a,b", "", "1e-05"]


@pytest.mark.parametrize("seed", range(6))
def test_a_group_s_results_are_the_json_of_the_dicts_byte_for_byte(seed: int) -> None:
    rng = random.Random(seed)
    rows = _mixed(300, seed)
    for r in rows:  # ids that JSON must escape, and the occasional client
        if rng.random() < 0.3:
            r["report_id"] += rng.choice(_AWKWARD)
        if rng.random() < 0.2:
            r["target_id"] += rng.choice(_AWKWARD)
        if rng.random() < 0.2:
            r["client"] = rng.choice(["Auto Reporter", "web", None])
    new, old = GuardState(SMALL), GuardState(SMALL)
    shown: set[str] = set()
    at = 0
    while at < len(rows):
        size = rng.choice([1, 3, 40, 120])
        group = rows[at : at + size]
        wanted = [rng.random() < 0.5 for _ in group]
        results, views = new.score_and_learn_group(group, wanted)
        encoded, expected_views = _reference_group(old, group)
        assert results.encoded == encoded
        assert list(results) == [msgspec.json.decode(e) for e in encoded]
        assert results.recommendations == [r["recommendation"] for r in results]
        assert views == [
            msgspec.json.encode(v) if w else None
            for v, w in zip(expected_views, wanted, strict=True)
        ]
        shown.update(r["recommendation"] for r in results)
        shown.update(f for r in results for f in r["signals"])
        at += size
    # The stream flags reports and names signals: the texts compared are not all alike.
    assert {"count", "review", "coreport"} <= shown


def test_a_view_s_json_is_the_json_of_its_dict() -> None:
    rng = random.Random(3)
    view = state_module.TargetView(first_us=10**15, latest_us=10**15)
    marks = [None, {"source": "hindsight", "brigade": 3, "first_report": "2026-01-01T00:00:00Z"}]
    seen = set()
    for i in range(400):
        t = 10**15 + rng.randrange(10**10)
        recommendation = rng.choice(["count", "count", "review", "discount"])
        signals = rng.sample(list(FEATURES), rng.randrange(3))
        view.add(t, rng.choice(_AWKWARD) + str(rng.randrange(150)), recommendation, signals)
        now, hold = t + rng.randrange(10**9), rng.choice([0, 10**8, 10**12])
        mark = rng.choice(marks)
        platform, target = rng.choice(_AWKWARD), rng.choice(_AWKWARD)
        encoded = view.as_json(platform, target, now, hold, mark)
        assert encoded == msgspec.json.encode(
            view.as_dict(platform, target, now, hold, hindsight=mark)
        )
        seen.add(msgspec.json.decode(encoded)["state"])
        if i == 200:  # views restored from a snapshot make their JSON again
            (view,) = state_module.unpack_views(
                state_module.pack_views({("x", "t"): view})
            ).values()
    assert seen == {"review", "normal"}
