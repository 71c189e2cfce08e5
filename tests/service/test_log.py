"""The intake logs (SQLite and NATS JetStream: the same tests on each) and the writer:
durable, idempotent, all or nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concerted.service import intake
from concerted.service import sqlite as sqlite_log
from concerted.service.base import Entry, IntakeLog, Outcome, Record
from concerted.service.bodies import ItemError
from concerted.service.intake import Guard, NotReady
from concerted.service.sqlite import SqliteLog
from concerted.service.state import Group, GuardState
from tests.service.conftest import SMALL, NatsServer, brigade_stream, report

Opener = Callable[[], IntakeLog]


_ENCODE = msgspec.json.Encoder().encode


def _record(i: int) -> Record:
    return Record("x", f"r{i}", "t", {"report_id": f"r{i}"}, {"score": i / 10})


def test_the_log_is_wal_with_full_sync(tmp_path: Path) -> None:
    log = SqliteLog(tmp_path / "log.sqlite")
    try:
        assert log._writer.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert log._writer.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    finally:
        log.close()


def test_append_is_idempotent_and_read_replays_in_order(open_intake_log: Opener) -> None:
    log = open_intake_log()
    try:
        first = log.append([_record(1), _record(2)])
        assert [e.offset for e in first] == [1, 2]
        changed = Record("x", "r1", "elsewhere", {"report_id": "r1"}, {"score": 0.9})
        again = log.append([changed, _record(3), _record(3)])
        assert again[0] == first[0] and again[1].offset == again[2].offset == 3
        assert again[0].record.target_id == "t" and again[0].record.result == {"score": 0.1}
        assert [e.record.report_id for e in log.read()] == ["r1", "r2", "r3"]
        assert [e.offset for e in log.read(1, chunk=1)] == [2, 3]
        assert [e.offset for e in log.read(3)] == []
        assert set(log.lookup([("x", "r2"), ("x", "nope")])) == {("x", "r2")}
        assert log.lookup([("x", "r2")])[("x", "r2")] == first[1]
    finally:
        log.close()
    reopened = open_intake_log()
    assert reopened.last_offset == 3
    assert reopened.append([_record(2)])[0] == first[1]
    assert [e.record.report_id for e in reopened.read()] == ["r1", "r2", "r3"]


def test_decisions_keep_their_place_among_the_reports(open_intake_log: Opener) -> None:
    log = open_intake_log()
    log.append([_record(1), _record(2)], [Outcome("x", "r1", "upheld")])
    log.append([_record(3)])
    log.append([], [Outcome("x", "r2", "rejected", "2026-03-02T00:00:00Z")])
    assert log.last_decision == 2
    assert list(log.decisions()) == [
        (1, 2, Outcome("x", "r1", "upheld")),
        (2, 3, Outcome("x", "r2", "rejected", "2026-03-02T00:00:00Z")),
    ]
    assert [n for n, _, _ in log.decisions(1)] == [2]


def test_append_new_stores_what_append_stores(open_intake_log: Opener) -> None:
    """The guard's path: new reports with their encoded results, decisions in the
    same commit; offsets in order, and a key stored meanwhile answered with its first
    offset and not stored again."""
    log = open_intake_log()
    first = log.append([_record(1)])
    reports = [{"report_id": f"r{i}", "platform": "x", "target_id": "t"} for i in (2, 3)]
    results = [_ENCODE({"score": i / 10}) for i in (2, 3)]
    assert list(log.append_new(reports, results, [Outcome("x", "r1", "upheld")])) == [2, 3]
    assert [(n, at, o.report_id) for n, at, o in log.decisions()] == [(1, 3, "r1")]
    again = [{"report_id": f"r{i}", "platform": "x", "target_id": "t"} for i in (1, 4)]
    offsets = log.append_new(again, [_ENCODE({"score": 9.0})] * 2)
    assert list(offsets) == [first[0].offset, 4]
    stored = list(log.read())
    assert [e.record.report_id for e in stored] == ["r1", "r2", "r3", "r4"]
    assert stored[0].record.result == {"score": 0.1}
    assert [e.record.result for e in stored[1:]] == [{"score": 0.2}, {"score": 0.3}, {"score": 9.0}]
    assert stored[2].record.report == reports[1]
    with pytest.raises(ValueError):
        log.append_new(reports, results[:1])
    assert log.last_offset == 4


_TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    _TEXT,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.tuples(
            _TEXT,
            st.dictionaries(_TEXT, _VALUE, max_size=5),
            st.dictionaries(_TEXT, st.one_of(_VALUE, st.lists(_VALUE, max_size=3)), max_size=4),
        ),
        max_size=8,
    )
)
def test_append_new_stores_the_bytes_append_stores(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, dict[str, Any], dict[str, Any]]]
) -> None:
    """The guard's path stores, byte for byte, what :meth:`SqliteLog.append` stores
    (msgspec's encoding), whatever text, escapes and numbers the reports and results
    hold, and at the same offsets."""
    reports = [
        {**fields, "report_id": f"r{i}", "platform": "x", "target_id": target}
        for i, (target, fields, _) in enumerate(rows)
    ]
    results = [_ENCODE(result) for _, _, result in rows]
    place = tmp_path_factory.mktemp("log")
    fast, plain = SqliteLog(place / "fast.sqlite"), SqliteLog(place / "plain.sqlite")
    try:
        assert list(fast.append_new(reports, results)) == list(range(1, len(rows) + 1))
        plain.append(
            [
                Record("x", r["report_id"], r["target_id"], r, {}, d)
                for r, d in zip(reports, results, strict=True)
            ]
        )
        query = "SELECT seq, platform, report_id, target_id, report, result FROM log ORDER BY seq"
        assert fast._writer.execute(query).fetchall() == plain._writer.execute(query).fetchall()
    finally:
        fast.close()
        plain.close()


def test_a_large_group_goes_in_as_few_statements(tmp_path: Path) -> None:
    """A group of any size is stored whole, at consecutive offsets, in few statements
    (the most rows a statement takes, then halves): CPython's sqlite3 hands the GIL
    back at every step, so one step a row made the append wait for it once a row."""
    log = SqliteLog(tmp_path / "log.sqlite")
    statements: list[str] = []
    log._writer.set_trace_callback(statements.append)
    try:
        for size in (2 * sqlite_log._ROWS_PER_INSERT + 3, 1, 0, 6):
            reports = [
                {"report_id": f"r{len(statements)}-{i}", "platform": "x", "target_id": "t"}
                for i in range(size)
            ]
            first = log.last_offset + 1
            assert list(log.append_new(reports, [b"{}"] * size)) == list(range(first, first + size))
        inserts = [s for s in statements if s.startswith("INSERT INTO log ")]
        # 4096 + 4096 + 2 + 1, then 1, then none, then 4 + 2: a statement each.
        assert len(inserts) == 7
        stored = list(log.read())
        assert [e.offset for e in stored] == list(range(1, len(stored) + 1))
        assert len(stored) == 2 * sqlite_log._ROWS_PER_INSERT + 3 + 1 + 6
        assert len({e.record.key for e in stored}) == len(stored)
    finally:
        log.close()


def test_a_failed_commit_stores_nothing_of_it(open_intake_log: Opener) -> None:
    log = open_intake_log()
    with pytest.raises((sqlite3.IntegrityError, ValueError)):
        log.append([_record(1)], [Outcome("x", "r1", "maybe")])
    assert log.last_offset == 0 and log.outcome("x", "r1") is None
    log.append([_record(1)], [Outcome("x", "r1", "upheld")])
    log.append([], [Outcome("x", "r1", "rejected", "2026-03-02T00:00:00Z")])
    assert log.outcome("x", "r1") == Outcome("x", "r1", "rejected", "2026-03-02T00:00:00Z")


def test_jetstream_keeps_a_target_on_one_subject_and_survives_a_server_kill(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    from concerted.service.jetstream import JetStreamLog, _hash

    log = JetStreamLog(nats_server.url)
    acked = log.append([Record("x", f"r{i}", f"t{i % 2}", {"i": i}, {"s": i}) for i in range(6)])
    log.close()
    nats_server.kill()  # SIGKILL: what it acknowledged is in its store
    nats_server.start()
    log = JetStreamLog(nats_server.url)
    try:
        assert [e.offset for e in log.read()] == [e.offset for e in acked]
        by_subject = log._call(log._js.stream_info(log._reports, subjects_filter=">"))
        subjects = {log.address.subject("r", _hash("x", t)): 3 for t in ("t0", "t1")}
        assert by_subject.state.subjects == subjects
    finally:
        log.close()


def test_jetstream_index_outlives_the_duplicate_window(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    """A repeat the server's duplicate window no longer knows, stored by a crash
    between a report and its index entry: reopening indexes the first and deletes the
    repeat, so every key is stored once and answered with its first result."""
    from concerted.service.jetstream import JetStreamLog, _hash

    log = JetStreamLog(nats_server.url)
    first = log.append([_record(1), _record(2)])
    # As if published again after the window, with its index entry lost in a crash:
    # no Nats-Msg-Id, and the high-water mark left behind.
    payload = b'["x","r1","t",{"report_id":"r1"},{"score":0.5}]'
    log._call(log._js.publish(log.address.subject("r", _hash("x", "t")), payload))
    log._call(log._js.publish(log.address.subject("r", _hash("x", "t")), b'["x","r9","t",{},{}]'))
    log.close()
    log = JetStreamLog(nats_server.url)
    try:
        assert [e.record.report_id for e in log.read()] == ["r1", "r2", "r9"]
        assert log.lookup([("x", "r1")])[("x", "r1")] == first[0]
        assert log.lookup([("x", "r9")])[("x", "r9")].offset == 4
        assert log.append([_record(1)])[0] == first[0]
    finally:
        log.close()


class _Failing(SqliteLog):
    def append(self, records: Sequence[Record], outcomes: Sequence[Outcome] = ()) -> list[Entry]:
        raise OSError("disk full")

    def append_new(
        self,
        reports: Sequence[Mapping[str, Any]],
        results: Sequence[bytes],
        outcomes: Sequence[Outcome] = (),
    ) -> Sequence[int]:
        raise OSError("disk full")


def test_no_report_is_acknowledged_unless_its_commit_succeeded(tmp_path: Path) -> None:
    async def run() -> None:
        log = _Failing(tmp_path / "log.sqlite")
        guard = Guard(log, GuardState(SMALL))
        await guard.start()
        with pytest.raises(NotReady):
            await guard.submit_reports([report(1, "a", "t", 0)])
        assert not guard.ready and isinstance(guard.failed, OSError)
        with pytest.raises(NotReady):
            await guard.submit_reports([report(2, "a", "t", 1)])
        await guard.stop()
        log.close()

    asyncio.run(run())


def test_a_group_answers_each_request_in_order(open_intake_log: Opener) -> None:
    async def run() -> None:
        log = open_intake_log()
        guard = Guard(log, GuardState(SMALL))
        await guard.start()
        answers = await asyncio.gather(
            *(
                guard.submit_reports([report(i, "a", "t", i), {"report_id": f"bad{i}"}])
                for i in range(20)
            )
        )
        await guard.stop()
        log.close()
        assert guard.stats.groups < 20  # the writer grouped what was pending
        for i, (good, bad) in enumerate(answers):
            assert isinstance(good, dict) and good["report_id"] == f"r{i:04d}"
            assert isinstance(bad, ItemError) and bad.field in ("reporter_id", "platform")
        offsets = [a[0]["offset"] for a in answers if isinstance(a[0], dict)]
        assert sorted(offsets) == list(range(1, 21))

    asyncio.run(run())


class _Many(GuardState):
    """A state whose groups (the guard's calls of ``begin_group``) are recorded."""

    calls: list[list[str]]

    def begin_group(self, reports: Sequence[Mapping[str, Any]]) -> Group:
        self.calls.append([r["report_id"] for r in reports])
        return super().begin_group(reports)


@pytest.mark.parametrize("off_loop", [intake.OFF_LOOP, 1])
def test_a_group_s_new_reports_are_scored_in_one_call_with_the_same_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, off_loop: int
) -> None:
    # off_loop 1: every group learnt in a thread, as the large groups of a busy server.
    monkeypatch.setattr(intake, "OFF_LOOP", off_loop)
    rows = brigade_stream(60)
    batches = [rows[i : i + 9] for i in range(0, len(rows), 9)]
    batches[2] = [*batches[2], rows[0], {"report_id": "bad"}, batches[2][0]]

    async def run(state: GuardState, name: str, one_by_one: bool) -> list[list[Any]]:
        log = SqliteLog(tmp_path / f"{name}.sqlite")
        guard = Guard(log, state)
        await guard.start()
        if one_by_one:  # each report a group of its own
            answers = [[(await guard.submit_reports([r]))[0] for r in b] for b in batches]
        else:
            answers = [await guard.submit_reports(b) for b in batches]
        await guard.stop()
        log.close()
        return answers

    many = _Many(SMALL)
    many.calls = []
    plain = asyncio.run(run(GuardState(SMALL), "plain", True))
    assert asyncio.run(run(many, "many", False)) == plain
    # One call a group, with its new reports only: the repeats and the refused left out.
    assert len(many.calls) == len(batches)
    assert [i for call in many.calls for i in call] == [r["report_id"] for r in rows]
    third = plain[2]
    assert third[9]["repeat"] and third[9]["offset"] == 1  # stored before
    assert isinstance(third[10], ItemError)
    assert third[11]["repeat"] and not third[0]["repeat"]  # twice in one group
    assert third[11]["offset"] == third[0]["offset"]


class _Broken(GuardState):
    def begin_group(self, reports: Sequence[Mapping[str, Any]]) -> Group:
        raise ZeroDivisionError


def test_a_failure_to_score_refuses_intake_instead_of_hanging(tmp_path: Path) -> None:
    async def run() -> None:
        log = SqliteLog(tmp_path / "log.sqlite")
        guard = Guard(log, _Broken(SMALL))
        await guard.start()
        with pytest.raises(NotReady):
            await asyncio.wait_for(guard.submit_reports([report(1, "a", "t", 0)]), 60)
        assert not guard.ready and isinstance(guard.failed, ZeroDivisionError)
        assert log.last_offset == 0
        await guard.stop()
        log.close()

    asyncio.run(run())


def test_a_new_log_has_large_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "old.sqlite")
    old.execute("PRAGMA page_size=4096")
    old.execute("CREATE TABLE t (x)")
    old.close()
    for name, size in (("new.sqlite", 16_384), ("old.sqlite", 4096)):
        log = SqliteLog(tmp_path / name)
        try:
            assert log._writer.execute("PRAGMA page_size").fetchone() == (size,)
            assert [e.offset for e in log.append([_record(1), _record(2)])] == [1, 2]
            assert log.lookup([("x", "r2")])[("x", "r2")].record.result == {"score": 0.2}
        finally:
            log.close()


def test_the_lean_replay_learns_what_the_full_replay_learns(tmp_path: Path) -> None:
    """``SqliteLog.read_learnt`` (structs, the target views unread) rebuilds the same
    state as ``read`` (whole entries), which the other logs replay from."""

    async def fill() -> None:
        guard = Guard(SqliteLog(tmp_path / "log.sqlite"), GuardState(SMALL))
        await guard.start()
        rows = brigade_stream(90)
        for i in range(0, len(rows), 7):
            await guard.submit_reports(rows[i : i + 7])
        await guard.stop()
        guard.log.close()

    asyncio.run(fill())
    log = SqliteLog(tmp_path / "log.sqlite")
    try:
        lean, full = GuardState(SMALL), GuardState(SMALL)
        learnt = list(log.read_learnt(0, chunk=10))
        entries = list(log.read())
        assert [o for o, _, _ in learnt] == [e.offset for e in entries] == list(range(1, 91))
        for (offset, stored, answered), entry in zip(learnt, entries, strict=True):
            assert stored.report_id == entry.record.report["report_id"]
            assert answered.recommendation == entry.record.result["recommendation"]
            assert answered.signals == entry.record.result["signals"]
            lean.replay_stored(stored, answered, offset)
            full.replay(entry.record.report, entry.record.result, entry.offset)
        assert lean.offset == full.offset == 90
        assert lean.target("mastodon", "t0") == full.target("mastodon", "t0")
        probe = report(999, "b1", "t0", 4.0 * 91)
        assert lean.score_and_learn(probe) == full.score_and_learn(probe)
    finally:
        log.close()


def test_lookup_finds_every_stored_key_in_one_query_per_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import concerted.service.sqlite as sqlite_log

    monkeypatch.setattr(sqlite_log, "_LOOKUP_CHUNK", 3)
    log = SqliteLog(tmp_path / "log.sqlite")
    try:
        odd = ["12", '"quoted"', "ü-1", "a,b", "[x]", "\\", "0"]
        records = [Record("x", r, "t", {"report_id": r}, {"n": i}) for i, r in enumerate(odd)]
        stored = log.append(records)
        keys = [("x", r) for r in odd] + [("y", "12"), ("x", "missing"), ("x", "12")]
        found = log.lookup(keys)
        assert set(found) == {("x", r) for r in odd}
        assert {k: e.offset for k, e in found.items()} == {e.record.key: e.offset for e in stored}
        assert found[("x", "a,b")].record.result == {"n": 3}
    finally:
        log.close()
