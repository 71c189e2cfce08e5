"""The embedded intake log: one SQLite file in WAL mode, ``synchronous=FULL``.

FULL makes every commit survive a power loss, not only a crash of the process (WAL
with NORMAL can lose the last commits then). One commit costs an fsync (about 4 ms on
the machine measured in SERVICE.md), so the service commits groups: its one writer
drains every pending report, appends them all here in one transaction, and only then
answers each waiter (:class:`concerted.service.intake.Guard`).

``(platform, report_id)`` is unique in the table, so a repeat can never be stored
twice even if a caller skipped :meth:`SqliteLog.lookup`. Outcomes are kept twice: the
latest per report (``outcomes``) and every one in arrival order (``outcome_log``, its
own sequence) with the offset of the last report appended before it, which replay
interleaves with the reports.
"""

from __future__ import annotations

import functools
import itertools
import logging
import operator
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from concerted.errors import StoreError
from concerted.service.base import (
    Answered,
    Entry,
    Learnt,
    Outcome,
    Record,
    StoredReport,
    records_of,
)

__all__ = ["SqliteLog"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY,
    platform TEXT NOT NULL,
    report_id TEXT NOT NULL,
    target_id TEXT NOT NULL,
    report TEXT NOT NULL,
    result TEXT NOT NULL,
    UNIQUE (platform, report_id)
);
CREATE TABLE IF NOT EXISTS outcomes (
    platform TEXT NOT NULL,
    report_id TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('upheld', 'rejected')),
    decided_at TEXT,
    PRIMARY KEY (platform, report_id)
);
CREATE TABLE IF NOT EXISTS outcome_log (
    seq INTEGER PRIMARY KEY,
    after INTEGER NOT NULL,
    platform TEXT NOT NULL,
    report_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    decided_at TEXT
);
"""

log = logging.getLogger(__name__)
#: A WAL of more pages than this is checkpointed again at once.
_CHECKPOINT_PAGES = 10_000
#: The page size of a new log.
_PAGE_SIZE = 16_384
#: Keys looked up in one query.
_LOOKUP_CHUNK = 10_000
#: The most rows one INSERT of the log takes (a power of two). CPython's sqlite3
#: releases the GIL around every ``sqlite3_step`` and takes it back after, so an
#: ``executemany`` of one row a step waited for the GIL once a row whenever another
#: thread ran Python: beside a busy thread, 10,000 rows took 30 to 43 s (0.05 s
#: alone); in statements of up to this many rows, 0.19 to 0.33 s (BENCHMARKS.md,
#: "50,000 batched reports a second").
_ROWS_PER_INSERT = 4096
_encode = msgspec.json.Encoder().encode
_PLATFORM, _REPORT_ID, _TARGET = map(operator.itemgetter, ("platform", "report_id", "target_id"))
_decode = msgspec.json.Decoder(dict[str, Any]).decode
_decode_report = msgspec.json.Decoder(StoredReport).decode
_decode_answered = msgspec.json.Decoder(Answered).decode


class SqliteLog:
    """The intake log in SQLite file ``path`` (see the module's notes).

    >>> import tempfile
    >>> log = SqliteLog(Path(tempfile.mkdtemp()) / "log.sqlite")
    >>> r = Record("x", "r1", "t", {"report_id": "r1"}, {"score": 0.0})
    >>> [e.offset for e in log.append([r, r])], log.last_offset
    ([1, 1], 1)
    >>> log.close()
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._writer = self._connect()
            self._writer.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the intake log {self.path}: {exc}") from exc
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        # Checkpoints (copying the WAL back into the database, with its own fsyncs)
        # run in a thread of their own, not inside a commit that clients wait for.
        self._writer.execute("PRAGMA wal_autocheckpoint=0")
        self._appended = threading.Event()
        self._closing = False
        self._checkpointer = threading.Thread(
            target=self._checkpoints, name="concerted-checkpoint", daemon=True
        )
        self._checkpointer.start()

    def _checkpoints(self) -> None:
        con = self._connect()
        try:
            while not self._closing:
                self._appended.wait(timeout=1.0)
                if self._closing:
                    return
                self._appended.clear()
                pages = con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                # (busy, WAL pages, pages copied); a large WAL is checkpointed again soon.
                if pages is None or pages[1] < _CHECKPOINT_PAGES:
                    for _ in range(10):
                        if self._closing:
                            return
                        time.sleep(0.1)
        except sqlite3.Error as exc:
            log.warning("checkpointing the intake log failed: %s", type(exc).__name__)
        finally:
            con.close()

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # Pages of 16 KiB for a new log (a log made before keeps its own size): a
        # stored report is ~1 KB, and per page the commit, the WAL's checksums and the
        # checkpoint cost less with fewer, larger pages (the append's SQLite CPU fell
        # by a third: BENCHMARKS.md, "The batch path outside the scorer").
        con.execute(f"PRAGMA page_size={_PAGE_SIZE}")
        mode = con.execute("PRAGMA journal_mode=WAL").fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            raise StoreError(f"{self.path}: SQLite would not use WAL mode")
        con.execute("PRAGMA synchronous=FULL")
        con.execute("PRAGMA busy_timeout=5000")
        return con

    def _reader(self) -> sqlite3.Connection:
        """A connection of this thread's own, for reads beside the writer."""
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            con = self._connect()
            self._local.con = con
            with self._lock:
                self._readers.append(con)
        return con

    def append(self, records: Sequence[Record], outcomes: Sequence[Outcome] = ()) -> list[Entry]:
        con = self._writer
        rows = [
            (
                r.platform,
                r.report_id,
                r.target_id,
                _encode(r.report),
                _encode(r.result) if r.result_json is None else r.result_json,
            )
            for r in records
        ]
        con.execute("BEGIN IMMEDIATE")
        try:
            first = self._next(con)
            # The whole group in few statements, at consecutive offsets. A key already
            # stored (which the guard's lookup rules out, but a caller may skip it) makes
            # the group take the row-by-row path instead, which answers with the entry
            # already stored.
            con.execute("SAVEPOINT bulk")
            changes = con.total_changes
            _insert_rows(con, [v for row in rows for v in row])
            if con.total_changes - changes == len(rows):
                con.execute("RELEASE bulk")
                entries = [Entry(first + i, r) for i, r in enumerate(records)]
            else:
                con.execute("ROLLBACK TO bulk")
                con.execute("RELEASE bulk")
                entries = [
                    self._insert_one(con, r, row) for r, row in zip(records, rows, strict=True)
                ]
            self._commit(con, outcomes)
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        return entries

    def append_new(
        self,
        reports: Sequence[Mapping[str, Any]],
        results: Sequence[bytes],
        outcomes: Sequence[Outcome] = (),
    ) -> Sequence[int]:
        """:meth:`append` without a Python object a row: its rows' values are drawn
        from the group's columns zipped in C (each report encoded by msgspec as
        :meth:`append` encodes it), so the same bytes are stored. A key stored already
        sends the group through :meth:`append`."""
        if len(reports) != len(results):
            raise ValueError(f"{len(reports)} reports but {len(results)} results")
        con = self._writer
        con.execute("BEGIN IMMEDIATE")
        try:
            first = self._next(con)
            changes = con.total_changes
            values = zip(
                map(_PLATFORM, reports),
                map(_REPORT_ID, reports),
                map(_TARGET, reports),
                map(_encode, reports),
                results,
                strict=True,
            )
            _insert_rows(con, list(itertools.chain.from_iterable(values)))
            if con.total_changes - changes != len(reports):
                con.execute("ROLLBACK")
                return [e.offset for e in self.append(records_of(reports, results), outcomes)]
            self._commit(con, outcomes)
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        return range(first, first + len(reports))

    @staticmethod
    def _next(con: sqlite3.Connection) -> int:
        return int(con.execute("SELECT coalesce(max(seq), 0) FROM log").fetchone()[0]) + 1

    def _commit(self, con: sqlite3.Connection, outcomes: Sequence[Outcome]) -> None:
        """The decisions after the reports appended in this transaction; then commit."""
        after = self._next(con) - 1
        con.executemany(
            "INSERT INTO outcome_log (after, platform, report_id, outcome, decided_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [(after, o.platform, o.report_id, o.outcome, o.decided_at) for o in outcomes],
        )
        con.executemany(
            "INSERT INTO outcomes (platform, report_id, outcome, decided_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (platform, report_id) DO UPDATE SET "
            "outcome = excluded.outcome, decided_at = excluded.decided_at",
            [(o.platform, o.report_id, o.outcome, o.decided_at) for o in outcomes],
        )
        con.execute("COMMIT")
        self._appended.set()

    @staticmethod
    def _insert_one(con: sqlite3.Connection, r: Record, row: tuple[str | bytes, ...]) -> Entry:
        cur = con.execute(
            "INSERT INTO log (platform, report_id, target_id, report, result) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (platform, report_id) DO NOTHING",
            row,
        )
        if cur.rowcount == 1 and cur.lastrowid is not None:
            return Entry(cur.lastrowid, r)
        stored = con.execute(
            "SELECT seq, platform, report_id, target_id, report, result FROM log "
            "WHERE platform = ? AND report_id = ?",
            r.key,
        ).fetchone()
        return _entry(stored)

    def lookup(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Entry]:
        con = self._reader()
        found: dict[tuple[str, str], Entry] = {}
        ids: dict[str, list[str]] = {}
        for platform, report_id in dict.fromkeys(keys):
            ids.setdefault(platform, []).append(report_id)
        # One query for many keys: a platform's ids as one JSON array of text, each
        # probed on the unique index (far cheaper than one query per key for a batch
        # of thousands, and half the cost of pairs extracted from one JSON array).
        for platform, wanted in ids.items():
            for at in range(0, len(wanted), _LOOKUP_CHUNK):
                for row in con.execute(
                    "SELECT seq, platform, report_id, target_id, report, result FROM log "
                    "WHERE platform = ? AND report_id IN (SELECT value FROM json_each(?))",
                    (platform, _encode(wanted[at : at + _LOOKUP_CHUNK])),
                ):
                    entry = _entry(row)
                    found[entry.record.key] = entry
        return found

    def read(self, after: int = 0, *, chunk: int = 10_000) -> Iterator[Entry]:
        con = self._reader()
        while True:
            rows = con.execute(
                "SELECT seq, platform, report_id, target_id, report, result FROM log "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, chunk),
            ).fetchall()
            if not rows:
                return
            for row in rows:
                yield _entry(row)
            after = int(rows[-1][0])

    def read_learnt(self, after: int = 0, *, chunk: int = 50_000) -> Iterator[Learnt]:
        """What :meth:`read` gives, reduced to what replay reads, decoded straight
        into structs (the stored result's target view, most of its bytes, unread)."""
        con = self._reader()
        report, answered = _decode_report, _decode_answered
        while True:
            rows = con.execute(
                "SELECT seq, report, result FROM log WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, chunk),
            ).fetchall()
            if not rows:
                return
            for seq, stored, result in rows:
                yield seq, report(stored), answered(result)
            after = int(rows[-1][0])

    def outcome(self, platform: str, report_id: str) -> Outcome | None:
        row = (
            self._reader()
            .execute(
                "SELECT platform, report_id, outcome, decided_at FROM outcomes "
                "WHERE platform = ? AND report_id = ?",
                (platform, report_id),
            )
            .fetchone()
        )
        return None if row is None else Outcome(*row)

    def decisions(self, after: int = 0) -> Iterator[tuple[int, int, Outcome]]:
        rows = (
            self._reader()
            .execute(
                "SELECT seq, after, platform, report_id, outcome, decided_at FROM outcome_log "
                "WHERE seq > ? ORDER BY seq",
                (after,),
            )
            .fetchall()
        )
        for seq, at, *rest in rows:
            yield int(seq), int(at), Outcome(*rest)

    @property
    def last_decision(self) -> int:
        row = self._reader().execute("SELECT coalesce(max(seq), 0) FROM outcome_log").fetchone()
        return int(row[0]) if row else 0

    @property
    def last_offset(self) -> int:
        row = self._reader().execute("SELECT coalesce(max(seq), 0) FROM log").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        self._closing = True
        self._appended.set()
        self._checkpointer.join()
        with self._lock:
            for con in self._readers:
                con.close()
            self._readers.clear()
        self._writer.close()


def _insert_rows(con: sqlite3.Connection, values: list[Any]) -> None:
    """Rows into the log from ``values`` (``platform, report_id, target_id, report,
    result`` a row, one after another) in few statements: the most rows a statement
    takes first, then halves, so that a group of any size compiles and caches at most
    one statement a power of two. Each row takes the next offset (``seq`` is the
    rowid: the largest plus one, one writer at a time).

    >>> con = sqlite3.connect(":memory:")
    >>> _ = con.executescript(_SCHEMA)
    >>> _insert_rows(con, [v for i in range(1, 6) for v in ("x", f"r{i}", "t", b"{}", b"{}")])
    >>> con.execute("SELECT count(*), min(seq), max(seq) FROM log").fetchone()
    (5, 1, 5)
    """
    width = 5
    most = min(_ROWS_PER_INSERT, con.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
    size = 1 << (most.bit_length() - 1)
    count, at = len(values) // width, 0
    while at < count:
        while size > count - at:
            size //= 2
        con.execute(_insert_sql(size), values[at * width : (at + size) * width])
        at += size


@functools.cache
def _insert_sql(rows: int) -> str:
    return (
        "INSERT INTO log (platform, report_id, target_id, report, result) VALUES "
        + ",".join(["(?, ?, ?, ?, ?)"] * rows)
        + " ON CONFLICT (platform, report_id) DO NOTHING"
    )


def _entry(row: tuple[Any, ...]) -> Entry:
    seq, platform, report_id, target_id, report, result = row
    return Entry(int(seq), Record(platform, report_id, target_id, _decode(report), _decode(result)))
