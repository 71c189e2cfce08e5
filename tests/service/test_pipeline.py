"""The writer's pipeline (a group scored while the one before it is committed), the
compact batch answer (``targets=once``) and the log's results without target views."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.service import intake
from concerted.service.app import encode_batch, encode_batch_once
from concerted.service.base import Entry, Outcome, Record
from concerted.service.bodies import ItemError, candidates
from concerted.service.intake import Accepted, Guard, NotReady, _Job
from concerted.service.sqlite import SqliteLog
from concerted.service.state import GuardState, Results
from tests.service.conftest import SMALL, brigade_stream, report


def _batches(seed: int) -> list[list[Any]]:
    """The brigade stream in batches of random sizes, with repeats (of reports in the
    same batch, in an earlier batch, or in a batch sent at the same time) and refused
    reports among them."""
    rng = random.Random(seed)
    rows = brigade_stream(150)
    batches: list[list[Any]] = []
    at = 0
    while at < len(rows):
        size = rng.randint(1, 12)
        batch: list[Any] = list(rows[at : at + size])
        at += size
        for _ in range(rng.randint(0, 2)):
            batch.insert(rng.randint(0, len(batch)), rng.choice(rows[: at + 3]))
        if rng.random() < 0.3:
            batch.insert(rng.randint(0, len(batch)), {"report_id": "bad"})
        batches.append(batch)
    return batches


async def _send(guard: Guard, batches: list[list[Any]], compact: Sequence[bool]) -> list[Any]:
    """Every batch submitted at once (the writer groups and pipelines them); each
    answer as the batch endpoint encodes it, decoded."""

    async def one(batch: list[Any], once: bool) -> Any:
        answers = await guard.submit(candidates(batch), compact=once)
        return msgspec.json.decode((encode_batch_once if once else encode_batch)(answers))

    return list(await asyncio.gather(*(one(b, c) for b, c in zip(batches, compact, strict=True))))


def _strip(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "target"}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_compact_answer_is_the_full_one_without_repeated_views(tmp_path: Path, seed: int) -> None:
    """The same batches sent at once to two guards, one asking for every answer in
    full, the other for a random half of the batches with ``targets=once``: the same
    results but for the views, and each target's view the last the full answer showed."""
    batches = _batches(seed)
    rng = random.Random(seed)
    compact = [rng.random() < 0.5 for _ in batches]

    async def run(name: str, once: Sequence[bool]) -> list[Any]:
        guard = Guard(SqliteLog(tmp_path / f"{name}.sqlite"), GuardState(SMALL), max_group=15)
        await guard.start()
        try:
            return await _send(guard, batches, once)
        finally:
            await guard.stop()
            guard.log.close()

    full = asyncio.run(run("full", [False] * len(batches)))
    mixed = asyncio.run(run("mixed", compact))
    shown = 0
    for whole, answer, once in zip(full, mixed, compact, strict=True):
        if not once:
            assert answer == whole
            continue
        assert "targets" not in whole
        assert [_strip(r) for r in whole["results"]] == answer["results"]
        assert all("target" not in r for r in answer["results"])
        assert (answer["accepted"], answer["refused"]) == (whole["accepted"], whole["refused"])
        last: dict[tuple[str, str], Any] = {}
        for r in whole["results"]:
            if r["ok"]:
                last[(r["platform"], r["target_id"])] = r["target"]
        views = {(v["platform"], v["target_id"]): v for v in answer["targets"]}
        assert len(views) == len(answer["targets"])  # each target once
        assert views == {k: v for k, v in last.items() if v is not None}
        shown += len(views)
    assert shown and any(compact) and not all(compact)


def test_a_batch_of_new_reports_is_answered_in_one_pass_with_the_same_bytes(
    tmp_path: Path,
) -> None:
    """A batch whose every report is new is answered from its group's columns
    (:class:`~concerted.service.intake.NewAnswers`); encoded, it gives the bytes the
    answers made one by one give, in both shapes; other batches are answered one by
    one as before, an empty one included."""
    batches = [*_batches(4), []]

    async def run() -> list[Sequence[Accepted | ItemError]]:
        guard = Guard(SqliteLog(tmp_path / "log.sqlite"), GuardState(SMALL), max_group=15)
        await guard.start()
        try:
            sent = [guard.submit(candidates(b), compact=i % 2 == 0) for i, b in enumerate(batches)]
            return list(await asyncio.gather(*sent))
        finally:
            await guard.stop()
            guard.log.close()

    answers = asyncio.run(run())
    assert list(answers[-1]) == []
    assert encode_batch(answers[-1]) == b'{"accepted":0,"refused":0,"results":[]}'
    fast = [a for a in answers if isinstance(a, intake.NewAnswers)]
    assert fast and len(fast) < len(answers)
    for a in fast:
        one_by_one = list(a)
        assert len(one_by_one) == len(a) and all(not x.repeat for x in one_by_one)
        assert encode_batch_once(a) == encode_batch_once(one_by_one)
        assert encode_batch(a) == encode_batch(one_by_one)
        assert [x.offset for x in a[1:]] == [x.offset for x in one_by_one[1:]]
        assert a[-1].offset == one_by_one[-1].offset


@pytest.mark.parametrize("off_loop", [intake.OFF_LOOP, 1])
def test_pipelined_groups_answer_as_one_by_one_and_replay_to_the_same_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, off_loop: int
) -> None:
    """Batches sent at once, so that groups are learnt while the ones before them are
    answered and committed: each report stored once, in the order learnt, every repeat
    answered with its first result and offset; a replay of the log learns the same
    state. With ``off_loop`` 1 every group's compiled loops run in a thread, as a busy
    server's do, while the group before is answered."""
    monkeypatch.setattr(intake, "OFF_LOOP", off_loop)
    batches = _batches(7)
    rows = [r for b in batches for r in b]

    async def at_once() -> tuple[list[Any], GuardState]:
        state = GuardState(SMALL)
        guard = Guard(SqliteLog(tmp_path / "once.sqlite"), state, max_group=15)
        await guard.start()
        answers = await _send(guard, batches, [False] * len(batches))
        assert guard.stats.groups > 1
        await guard.stop()
        guard.log.close()
        return answers, state

    answers, live = asyncio.run(at_once())
    results = [r for a in answers for r in a["results"]]
    first: dict[str, dict[str, Any]] = {}
    for row, result in zip(rows, results, strict=True):
        if not result["ok"]:
            assert row == {"report_id": "bad"}
            continue
        if result["repeat"]:
            same = {"repeat": False, "index": first[row["report_id"]]["index"]}
            assert _strip(result) | same == _strip(first[row["report_id"]])
        else:
            assert row["report_id"] not in first
            first[row["report_id"]] = result
    log = SqliteLog(tmp_path / "once.sqlite")
    try:
        stored = list(log.read())
        assert [e.offset for e in stored] == list(range(1, len(first) + 1))
        assert {e.record.report_id: e.offset for e in stored} == {
            k: v["offset"] for k, v in first.items()
        }
        replayed = GuardState(SMALL)
        for e in stored:
            replayed.replay(e.record.report, e.record.result, e.offset)
        # The same scores learnt live, and the same state after.
        again = GuardState(SMALL)
        ordered = sorted(first.values(), key=lambda r: r["offset"])
        by_id = {r["report_id"]: r for r in rows if isinstance(r, dict) and "ts" in r}
        expected = again.score_and_learn_many([_stored(by_id[r["report_id"]]) for r in ordered])
        assert [_strip(x) for x in expected] == [
            {k: v for k, v in r.items() if k not in ("ok", "index", "repeat", "offset", "target")}
            for r in ordered
        ]
        probe = _stored(report(999, "b1", "t0", 4.0 * 151))
        assert replayed.score_and_learn(probe) == live.score_and_learn(probe)
    finally:
        log.close()


def _stored(row: dict[str, Any]) -> dict[str, Any]:
    """A request's report in the stored form (what the guard learns)."""
    typed = candidates([row])[0]
    assert isinstance(typed, dict)
    return typed


class _SlowThenFailing(SqliteLog):
    """A log whose first append is slow and whose second fails."""

    calls = 0
    gate = threading.Event()

    def append_new(
        self,
        reports: Sequence[Mapping[str, Any]],
        results: Sequence[bytes],
        outcomes: Sequence[Outcome] = (),
    ) -> Sequence[int]:
        type(self).calls += 1
        if type(self).calls == 1:
            type(self).gate.wait(30)
            time.sleep(0.05)
            return super().append_new(reports, results, outcomes)
        raise OSError("disk full")


def test_a_failed_commit_fails_every_group_learnt_after_it(tmp_path: Path) -> None:
    """Three groups in the pipeline: the first commits, the second's commit fails, and
    the third (learnt meanwhile) is refused too; nothing after the first is stored."""

    async def run() -> None:
        log = _SlowThenFailing(tmp_path / "log.sqlite")
        guard = Guard(log, GuardState(SMALL))
        await guard.start()
        first = asyncio.ensure_future(guard.submit_reports([report(1, "a", "t", 0)]))
        await asyncio.sleep(0.2)  # the first group is in the append thread
        second = asyncio.ensure_future(guard.submit_reports([report(2, "a", "t", 1)]))
        await asyncio.sleep(0.2)
        third = asyncio.ensure_future(guard.submit_reports([report(3, "a", "t", 2)]))
        await asyncio.sleep(0.2)
        assert guard.stats.groups == 0 and not first.done()
        _SlowThenFailing.gate.set()
        (answer,) = await first
        assert isinstance(answer, dict) and answer["offset"] == 1
        for later in (second, third):
            with pytest.raises(NotReady):
                await later
        assert not guard.ready and isinstance(guard.failed, OSError)
        with pytest.raises(NotReady):
            await guard.submit_reports([report(4, "a", "t", 3)])
        await guard.stop()
        assert log.last_offset == 1
        log.close()

    asyncio.run(run())


def test_a_log_written_with_views_is_still_read(tmp_path: Path) -> None:
    """A log whose results hold their target's view (as earlier releases stored them):
    replayed to the same state, and a repeat answered with the stored result and its
    target's view as it is now."""
    rows = [_stored(r) for r in brigade_stream(40)]
    old = GuardState(SMALL)
    log = SqliteLog(tmp_path / "log.sqlite")
    full = old.score_and_learn_many(rows)
    assert all("target" in r for r in full)
    log.append(
        [
            Record(r["platform"], r["report_id"], r["target_id"], r, result)
            for r, result in zip(rows, full, strict=True)
        ]
    )
    old.offset = 40
    log.close()

    async def run() -> None:
        state = GuardState(SMALL)
        guard = Guard(SqliteLog(tmp_path / "log.sqlite"), state)
        await guard.start()
        assert guard.stats.replayed == 40
        (again,) = await guard.submit_reports([brigade_stream(40)[5]])
        assert isinstance(again, dict)
        assert again["repeat"] and again["offset"] == 6
        assert _strip(again) == _strip(full[5]) | {"repeat": True, "offset": 6}
        assert again["target"] == state.view("mastodon", full[5]["target_id"])
        assert again["target"] != full[5]["target"]  # more reports on it since
        probe = _stored(report(999, "b1", "t0", 4.0 * 41))
        (fresh,) = await guard.submit_reports([report(999, "b1", "t0", 4.0 * 41)])
        assert isinstance(fresh, dict)
        expected = old.score_and_learn(probe)
        assert {k: fresh[k] for k in expected} == expected
        await guard.stop()
        guard.log.close()

    asyncio.run(run())


def test_a_new_result_is_stored_without_its_view_and_answered_with_it(
    tmp_path: Path,
) -> None:
    async def run() -> Sequence[Accepted | ItemError]:
        guard = Guard(SqliteLog(tmp_path / "log.sqlite"), GuardState(SMALL))
        await guard.start()
        answers = await guard.submit(candidates(brigade_stream(20)))
        await guard.stop()
        guard.log.close()
        return answers

    answers = asyncio.run(run())
    log = SqliteLog(tmp_path / "log.sqlite")
    try:
        for answer, entry in zip(answers, log.read(), strict=True):
            assert isinstance(answer, Accepted)
            assert entry.record.result == _strip(dict(answer.result))
            assert answer.encoded == msgspec.json.encode(dict(answer.result))
            assert "target" in answer.result
    finally:
        log.close()


class _SlowLookup(SqliteLog):
    """A log whose lookups take a while: the group before commits meanwhile."""

    def lookup(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Entry]:
        found = super().lookup(keys)  # before the sleep: the commit lands after it
        time.sleep(0.2)
        return found


def test_a_repeat_of_a_group_committed_during_the_lookup_is_still_a_repeat(
    tmp_path: Path,
) -> None:
    """The group before commits while this group's lookup runs (so the lookup missed
    it): its keys are still held aside, and the repeat is learnt once, not twice."""

    async def run() -> None:
        log = _SlowLookup(tmp_path / "log.sqlite")
        guard = Guard(log, GuardState(SMALL), max_group=1)
        await guard.start()
        one, two = await asyncio.gather(
            guard.submit_reports([report(1, "a", "t", 0)]),
            guard.submit_reports([report(1, "a", "t", 0)]),
        )
        await guard.stop()
        first, again = one[0], two[0]
        assert isinstance(first, dict) and isinstance(again, dict)
        assert not first["repeat"] and again["repeat"]
        assert first["offset"] == again["offset"] == 1
        assert guard.stats.groups == 2 and guard.stats.repeats == 1
        assert sum(guard.stats.reports.values()) == 1
        assert log.last_offset == 1 and guard.state.targets[("mastodon", "t")].reports == 1
        log.close()

    asyncio.run(run())


class _FailingLookup(SqliteLog):
    """A log whose lookups fail while ``failing`` is set."""

    failing = False

    def lookup(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Entry]:
        if self.failing:
            raise OSError("the disk went away")
        return super().lookup(keys)


def test_a_failed_lookup_refuses_its_group_and_keeps_no_key_in_flight(tmp_path: Path) -> None:
    """A group whose lookup fails is refused, and nothing else is lost with it: the keys
    of the groups made durable before it leave the writer's in-flight set at the next
    lookup that succeeds (they stayed there for good, growing with every failure), and
    a repeat of one of them is still answered with its first result."""

    async def run() -> None:
        log = _FailingLookup(tmp_path / "log.sqlite")
        guard = Guard(log, GuardState(SMALL), max_group=1)
        await guard.start()
        try:
            first = await guard.submit_reports([report(1, "a", "t", 0)])
            await guard._drain()  # durable and answered: its keys are settled
            log.failing = True
            with pytest.raises(OSError):
                await guard.submit_reports([report(2, "b", "t", 1)])
            log.failing = False
            second = await guard.submit_reports([report(3, "c", "t", 2)])
            again = await guard.submit_reports([report(1, "a", "t", 0)])
            await guard._drain()
            await guard.submit_reports([report(4, "d", "t", 3)])
            in_flight = {key for written in guard._flight for key in written.index}
            assert ("mastodon", "r0001") not in in_flight
            assert in_flight <= {("mastodon", "r0004")}
        finally:
            await guard.stop()
            log.close()
        assert isinstance(first[0], dict) and isinstance(again[0], dict)
        assert isinstance(second[0], dict) and not second[0]["repeat"]
        assert again[0]["repeat"] and again[0]["offset"] == first[0]["offset"] == 1
        assert log.last_offset == 3 and guard.stats.repeats == 1

    asyncio.run(run())


def test_a_large_group_is_answered_while_the_next_is_learnt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two large groups queued at once: the first's results and views are made while
    the second's compiled loops run (not before them, which put both on the path of
    every group); the answers are those of groups learnt one by one."""
    monkeypatch.setattr(intake, "OFF_LOOP", 1)
    state = GuardState(SMALL)
    learn, end = state.scorer.learn_many, state.end_group
    learning = threading.Event()
    overlapped: list[bool] = []

    def learn_many(batch: Any) -> Any:
        learning.set()
        time.sleep(0.2)
        scored = learn(batch)
        learning.clear()
        return scored

    def end_group(*args: Any) -> Any:
        # The first group's results wait (a little) for the second's loops to start.
        overlapped.append(learning.wait(1) if not overlapped else learning.is_set())
        return end(*args)

    monkeypatch.setattr(state.scorer, "learn_many", learn_many)
    monkeypatch.setattr(state, "end_group", end_group)
    rows = brigade_stream(40)

    async def run() -> list[Any]:
        guard = Guard(SqliteLog(tmp_path / "log.sqlite"), state, max_group=20)
        await guard.start()
        try:
            return await _send(guard, [rows[:20], rows[20:]], [False, False])
        finally:
            await guard.stop()
            guard.log.close()

    answers = asyncio.run(run())
    assert overlapped == [True, False]
    again = GuardState(SMALL).score_and_learn_many([_stored(r) for r in rows])
    assert [_strip(r) for a in answers for r in a["results"]] == [
        {"ok": True, "index": i % 20, "repeat": False, "offset": i + 1, **_strip(x)}
        for i, x in enumerate(again)
    ]


_FUTURE: Any = None  # a job's future, which finding its views never touches


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(st.sampled_from("abcd"), min_size=0, max_size=6), st.booleans()),
        min_size=1,
        max_size=5,
    )
)
def test_the_views_a_group_of_new_reports_wants_are_found_as_for_any_group(
    jobs: list[tuple[list[str], bool]],
) -> None:
    """A group whose every report is new: the views its answers show (every report's in
    a full answer, the last on each target in a compact one) found from the numbers of
    its reports' targets are those found slot by slot."""
    group = [_Job("reports", list(targets), _FUTURE, compact) for targets, compact in jobs]
    new = [{"platform": "x", "target_id": t} for targets, _ in jobs for t in targets]
    numbers: dict[str, int] = {}
    targets = np.array([numbers.setdefault(r["target_id"], len(numbers)) for r in new], np.int64)
    written = intake._Written(new, {}, Results([]))
    slots: list[Any] = [(written, i, False) for i in range(len(new))]
    assert Guard._wanted_new(group, targets) == Guard._wanted(group, slots, len(new))
