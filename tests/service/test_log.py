"""The SQLite intake log and the writer: durable, idempotent, all or nothing."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from concerted.service.base import Entry, Outcome, Record
from concerted.service.intake import Guard, ItemError, NotReady
from concerted.service.sqlite import SqliteLog
from concerted.service.state import GuardState
from tests.service.conftest import SMALL, report


def _record(i: int) -> Record:
    return Record("x", f"r{i}", "t", {"report_id": f"r{i}"}, {"score": i / 10})


def test_the_log_is_wal_with_full_sync(tmp_path: Path) -> None:
    log = SqliteLog(tmp_path / "log.sqlite")
    try:
        assert log._writer.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert log._writer.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    finally:
        log.close()


def test_append_is_idempotent_and_read_replays_in_order(tmp_path: Path) -> None:
    log = SqliteLog(tmp_path / "log.sqlite")
    try:
        first = log.append([_record(1), _record(2)])
        assert [e.offset for e in first] == [1, 2]
        changed = Record("x", "r1", "elsewhere", {"report_id": "r1"}, {"score": 0.9})
        again = log.append([changed, _record(3)])
        assert again[0] == first[0] and again[1].offset == 3
        assert [e.record.report_id for e in log.read()] == ["r1", "r2", "r3"]
        assert [e.offset for e in log.read(1, chunk=1)] == [2, 3]
        assert set(log.lookup([("x", "r2"), ("x", "nope")])) == {("x", "r2")}
    finally:
        log.close()
    reopened = SqliteLog(tmp_path / "log.sqlite")
    try:
        assert reopened.last_offset == 3
    finally:
        reopened.close()


def test_a_failed_commit_stores_nothing_of_it(tmp_path: Path) -> None:
    log = SqliteLog(tmp_path / "log.sqlite")
    try:
        with pytest.raises(sqlite3.IntegrityError):
            log.append([_record(1)], [Outcome("x", "r1", "maybe")])
        assert log.last_offset == 0 and log.outcome("x", "r1") is None
        log.append([_record(1)], [Outcome("x", "r1", "upheld")])
        log.append([], [Outcome("x", "r1", "rejected", "2026-03-02T00:00:00Z")])
        assert log.outcome("x", "r1") == Outcome("x", "r1", "rejected", "2026-03-02T00:00:00Z")
    finally:
        log.close()


class _Failing(SqliteLog):
    def append(self, records: Sequence[Record], outcomes: Sequence[Outcome] = ()) -> list[Entry]:
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


def test_a_group_answers_each_request_in_order(tmp_path: Path) -> None:
    async def run() -> None:
        log = SqliteLog(tmp_path / "log.sqlite")
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
