"""Intake: from candidate reports to acknowledged, scored reports.

Request bodies become candidate reports in :mod:`concerted.service.bodies`. The rest
happens in the :class:`Guard`'s one writer, a group at a time: the reports the fast
check left (from every request pending) are typed by
:func:`~concerted.service.bodies.type_all` (the one place a row is checked, in one
DuckDB pass per group), all are looked up in the log, the new ones scored and learnt
by the live state in arrival order, appended to the log in one durable commit, and
only then answered. A group passes two stages: learnt (checked, looked up, its new
reports learnt by the scorer, whose compiled loops run in a thread for a large group),
then answered (results, target views, the log's records); the next group is learnt
while the one before it is answered, and the commit runs in a thread of its own
(groups are learnt, answered and appended in one order). A report that breaks
the contract gets its own error naming the column; nothing of it is stored or learnt.
Each result is encoded as JSON once without its target's view, as the log stores it;
the view, where the answer shows it, is encoded apart and spliced in
(:class:`Accepted`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import operator
import time
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

import duckdb
import msgspec
import numpy as np
from numpy.typing import NDArray

from concerted.service.arrayscore import Scored
from concerted.service.base import Entry, IntakeLog, Outcome
from concerted.service.bodies import Candidate, ItemError, candidates, type_all
from concerted.service.state import Group, GuardState, Results

__all__ = ["Accepted", "Guard", "NotReady", "snapshot_due"]

log = logging.getLogger(__name__)
_encode = msgspec.json.Encoder().encode
_decode_object = msgspec.json.Decoder(dict[str, Any]).decode
_PLATFORM, _REPORT_ID = operator.itemgetter("platform"), operator.itemgetter("report_id")

#: Groups learnt that may wait for the log behind the one being committed: the writer
#: scores one group while the one before it is committed, no more (a group is answered
#: only once durable, so more would only hold more answers back).
_PIPELINE = 1
#: The most of the intake's time snapshots may take (see :func:`snapshot_due`).
SNAPSHOT_SHARE = 0.05
#: Seconds of replay a restart may face after the last snapshot (see
#: :func:`snapshot_due`): a start with 10^7 reports in the log was ready in 22.6 s,
#: 4.6 s of it replaying 90,000 reports after the snapshot (BENCHMARKS.md), so
#: 7.5 s of replay keeps it within 30 s.
REPLAY_BUDGET_S = 7.5
#: What a report costs to replay, as :func:`snapshot_due` estimates it (seconds): the
#: ``platform`` stream's whole log replayed at 52 µs a report (BENCHMARKS.md), most of
#: its reports on new targets; the dense ``batch`` stream replays at 9–15 µs.
REPLAY_REPORT_S = 50e-6
#: A group of at least this many new reports is learnt in a thread (``Guard._score``);
#: a smaller one in the event loop, where handing it over would cost more than it frees.
OFF_LOOP = 512


class NotReady(RuntimeError):
    """The service is replaying its log, stopping, or its log failed: HTTP 503."""


class Accepted:
    """A report's answer: its result (``encoded``: the same as JSON), its offset in the
    log, and whether this was a repeat. ``bare`` is the result without its target view
    as JSON (what the log stores), ``view`` the view alone (``null`` when nothing is
    known of the target); either is None when not made yet. A new report's view is
    its target's right after it was learnt; a repeat's, its target's once the repeat's
    group was learnt, i.e. now (the score, recommendation, signals and features are
    always the first result's). The result of a report whose batch asked for
    ``targets=once`` may lack its view. ``target`` is the result's ``(platform,
    target_id)`` where the guard made the result now (a new report's): its keys are
    then a result's own, and the answer is encoded without reading it as a dict.
    ``result`` given as None is decoded from ``encoded`` when first read.

    >>> a = Accepted(None, b'{"score":0.5}', 7, False)
    >>> a.result, a.as_dict()
    ({'score': 0.5}, {'score': 0.5, 'repeat': False, 'offset': 7})
    """

    __slots__ = ("_result", "bare", "encoded", "offset", "repeat", "target", "view")

    def __init__(
        self,
        result: Mapping[str, Any] | None,
        encoded: bytes,
        offset: int,
        repeat: bool,
        bare: bytes | None = None,
        view: bytes | None = None,
        target: tuple[str, str] | None = None,
    ) -> None:
        self._result = result
        self.encoded = encoded
        self.offset = offset
        self.repeat = repeat
        self.bare = bare
        self.view = view
        self.target = target

    @property
    def result(self) -> Mapping[str, Any]:
        if self._result is None:
            self._result = _decode_object(self.encoded)
        return self._result

    def __repr__(self) -> str:
        return f"Accepted(offset={self.offset}, repeat={self.repeat}, encoded={self.encoded!r})"

    def as_dict(self) -> dict[str, Any]:
        return {**self.result, "repeat": self.repeat, "offset": self.offset}


@dataclass(slots=True)
class _Job:
    kind: Literal["reports", "outcome"]
    items: list[Any]
    future: asyncio.Future[Sequence[Any]]
    #: A batch that asked for ``targets=once``: its new reports' results need no view
    #: but the last one of each target.
    compact: bool = False


@dataclass(slots=True)
class _Written:
    """A group's new reports, scored and on their way to the log: the reports, the
    number of each one's key among them, their results without the view, and their
    offsets once durable."""

    reports: list[dict[str, Any]]
    index: dict[tuple[str, str], int]
    results: Results
    offsets: Sequence[int] = field(default_factory=list)
    #: Each report's platform and target id (the scorer's columns of the group).
    platform: Sequence[str] = ()
    target: Sequence[str] = ()
    #: Each report's target view where its result shows one (None where it does not).
    shown: Sequence[bytes | None] = ()


class NewAnswers(Sequence[Accepted]):
    """The answers of a request whose every report was new: reports ``start`` to
    ``stop`` of one group, each :class:`Accepted` made only when read.
    :meth:`columns` gives what an answer is encoded from without making them (the
    batch endpoint's answer)."""

    __slots__ = ("_written", "start", "stop")

    def __init__(self, written: _Written, start: int, stop: int) -> None:
        self._written = written
        self.start = start
        self.stop = stop

    def __len__(self) -> int:
        return self.stop - self.start

    @overload
    def __getitem__(self, index: int) -> Accepted: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Accepted]: ...

    def __getitem__(self, index: int | slice) -> Accepted | Sequence[Accepted]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        number = range(self.start, self.stop)[index]
        return _accepted(self._written, number)

    def columns(
        self,
    ) -> tuple[list[bytes], Sequence[int], list[tuple[str, str]], Sequence[bytes | None]]:
        """Each answer's result without its view (JSON), offset, ``(platform,
        target_id)`` and view (None where it shows none), in order."""
        w, start, stop = self._written, self.start, self.stop
        return (
            w.results.encoded[start:stop],
            w.offsets[start:stop],
            list(zip(w.platform[start:stop], w.target[start:stop], strict=True)),
            w.shown[start:stop],
        )


#: A report's answer until its group is durable: its error, the entry stored before,
#: or (the group that holds its result, its number there, repeat?).
_Slot = ItemError | Entry | tuple[_Written, int, bool]


class _NewSlots(Sequence[_Slot]):
    """The slots of a group whose every report is new, each made when read: report
    ``number`` is ``(written, number, False)``. A tuple a report held the group would
    be thousands of objects that the garbage collector tracks until the group is
    answered: most of what its full collections scanned.

    >>> w = _Written([], {}, Results([]))
    >>> slots = _NewSlots(w, 3)
    >>> len(slots), slots[2][1:], [n for _, n, _ in slots[1:]]
    (3, (2, False), [1, 2])
    """

    __slots__ = ("_count", "_written")

    def __init__(self, written: _Written, count: int) -> None:
        self._written, self._count = written, count

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> _Slot: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[_Slot]: ...

    def __getitem__(self, index: int | slice) -> _Slot | Sequence[_Slot]:
        if isinstance(index, slice):
            return [(self._written, n, False) for n in range(self._count)[index]]
        return (self._written, range(self._count)[index], False)


@dataclass(slots=True)
class _Group:
    """A group learnt by the scorer, on its way to be answered: its jobs, each of its
    reports' slots, its new reports, what the scorer made of them (None when there
    were none), and the decisions it applied."""

    jobs: list[_Job]
    slots: Sequence[_Slot]
    written: _Written
    scoring: tuple[Group, Scored] | None
    known: list[Outcome]
    #: Whether every report of the group was new (no repeat, no error): its slots
    #: are its new reports in order.
    new_only: bool = False
    #: Whether :meth:`Guard._answer` took it (it is answered once).
    answered: bool = False

    @property
    def new(self) -> list[dict[str, Any]]:
        return self.written.reports


@dataclass(slots=True)
class GuardStats:
    """Counts the metrics read."""

    reports: dict[str, int] = field(
        default_factory=lambda: {"count": 0, "review": 0, "discount": 0}
    )
    repeats: int = 0
    refused: int = 0
    groups: int = 0
    replayed: int = 0


def snapshot_due(
    learnt: int,
    every: int,
    last_cost: float | None,
    since: float,
    share: float | None = SNAPSHOT_SHARE,
) -> bool:
    """Whether the writer takes a snapshot now, ``learnt`` reports after the last one.

    Never before ``every`` reports (``snapshot_every``); then at once when ``share`` is
    None or no snapshot was timed yet in this process (``last_cost`` None). Otherwise a
    snapshot's cost grows with the state (1.5 GB at 10^7 reports) while the intake
    between two of them does not, so the next is taken only once either its own cost
    (estimated as the last one's, ``last_cost`` seconds of the writer held) is at most
    ``share`` of the ``since`` seconds since that one ended, or the reports since would
    take :data:`REPLAY_BUDGET_S` to replay (:data:`REPLAY_REPORT_S` each), which
    bounds a restart.

    >>> snapshot_due(99, 100, None, 1.0), snapshot_due(100, 100, None, 1.0)
    (False, True)
    >>> snapshot_due(100, 100, 1.0, 10.0), snapshot_due(100, 100, 1.0, 20.0)
    (False, True)
    >>> snapshot_due(300_000, 100, 1.0, 10.0), snapshot_due(100, 100, 1.0, 10.0, None)
    (True, True)
    """
    if learnt < every:
        return False
    if share is None or last_cost is None:
        return True
    if learnt * REPLAY_REPORT_S >= REPLAY_BUDGET_S:
        return True
    return last_cost <= share * since


class Guard:
    """The one writer: validates, deduplicates, scores, commits, then answers.

    ``start`` restores the last snapshot and replays the log after it (in a thread);
    only then is the guard ``ready`` and its writer running.
    """

    def __init__(
        self,
        log: IntakeLog,
        state: GuardState,
        *,
        snapshot: Path | None = None,
        snapshot_every: int = 100_000,
        snapshot_share: float | None = SNAPSHOT_SHARE,
        max_group: int = 10_000,
        freeze_gc: bool = False,
    ) -> None:
        self.log = log
        self.state = state
        self.snapshot = snapshot
        self.snapshot_every = snapshot_every
        self.snapshot_share = snapshot_share
        self.max_group = max_group
        self.freeze_gc = freeze_gc
        self.ready = False
        self.failed: BaseException | None = None
        self.stats = GuardStats()
        self._con = duckdb.connect(config={"threads": 1})
        self._con.execute("SET TimeZone = 'UTC'")
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        #: Reports learnt since the last snapshot.
        self._learnt = 0
        #: The last snapshot's cost (seconds the writer was held; None before the
        #: first) and when it ended (``time.monotonic``): :func:`snapshot_due`.
        self._snapshot_cost: float | None = None
        self._snapshot_ended = time.monotonic()
        # The pipeline: one thread appends the groups to the log, in the order they
        # were learnt, while the writer checks and scores the next group; a group is
        # answered once its append returned. ``_flight`` holds the groups learnt but
        # not known durable to the last lookup (the log may not find their keys),
        # ``_settled`` the groups durable since, ``_finishing`` the tasks that answer
        # each group not answered yet.
        self._appender = ThreadPoolExecutor(1, thread_name_prefix="concerted-append")
        self._broken = False
        self._flight: list[_Written] = []
        self._settled: list[_Written] = []
        self._finishing: deque[asyncio.Task[None]] = deque()

    def pending(self) -> int:
        """Requests waiting for the writer."""
        return self._queue.qsize()

    # Lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        await asyncio.to_thread(self._replay)
        # What replay learnt counts towards the next snapshot, so that a long replay
        # (the whole log, with no snapshot or one refused) is followed by a snapshot
        # after the first group, not after ``snapshot_every`` new reports.
        self._learnt = self.stats.replayed
        self._settle()
        self._snapshot_ended = time.monotonic()
        self._writer = asyncio.create_task(self._run(), name="concerted-writer")
        self.ready = True

    def _settle(self) -> None:
        """With ``freeze_gc``: collect, then move every object alive now out of the
        cyclic garbage collector's reach (``gc.freeze``). The live state is millions of
        long-lived objects; left in the oldest generation, each full collection walks
        them all and stops every request for tens to hundreds of milliseconds. Done
        after replay and after each snapshot, so what the state learnt since is frozen
        in turn; garbage is collected first, so nothing unreachable is kept. The
        automatic full collections are switched off: these, between two groups, are
        the only ones (the young generations are still collected as usual)."""
        if self.freeze_gc:
            gc.collect()
            gc.freeze()
            young, middle, _ = gc.get_threshold()
            gc.set_threshold(young, middle, 1_000_000_000)

    def _replay(self) -> None:
        # Replay allocates millions of long-lived objects and no cycles: with the
        # cyclic collector on, each of its full passes walks the whole state built so
        # far (a fifth of replay's time, measured). Off while replaying: nothing else
        # runs then, and the collector runs again after.
        enabled = gc.isenabled()
        gc.disable()
        try:
            self._replay_log()
        finally:
            if enabled:
                gc.enable()

    def _replay_log(self) -> None:
        # Decisions go in at their place among the reports: after the report at their
        # ``after`` offset, before the next one, as they were applied live.
        decisions = list(self.log.decisions(self.state.decision))
        at = 0
        lean = getattr(self.log, "read_learnt", None)
        if lean is not None:
            # The log decodes only what the state reads (the SQLite log does).
            for offset, report, answered in lean(self.state.offset):
                while at < len(decisions) and decisions[at][1] < offset:
                    self._decide(*decisions[at])
                    at += 1
                self.state.replay_stored(report, answered, offset)
                self.stats.replayed += 1
        else:
            for entry in self.log.read(self.state.offset):
                while at < len(decisions) and decisions[at][1] < entry.offset:
                    self._decide(*decisions[at])
                    at += 1
                self.state.replay(entry.record.report, entry.record.result, entry.offset)
                self.stats.replayed += 1
        for decision in decisions[at:]:
            self._decide(*decision)
        self.state.learn_replayed()
        log.info("replayed %d reports; at offset %d", self.stats.replayed, self.state.offset)

    def _decide(self, number: int, _: int, outcome: Outcome) -> None:
        key = (outcome.platform, outcome.report_id)
        entry = self.log.lookup([key]).get(key)
        if entry is not None:
            self.state.decide(entry.record.report, outcome.outcome)
        self.state.decision = number

    async def stop(self) -> None:
        self.ready = False
        if self._writer is not None:
            await self._queue.put(None)
            await self._writer
            self._writer = None
        await self._drain()
        if self.failed is None and self.snapshot is not None:
            await self._write_snapshot()
        self._appender.shutdown()
        self._con.close()

    # Submitting ---------------------------------------------------------------------

    async def submit_reports(self, items: list[Any]) -> list[dict[str, Any] | ItemError]:
        """Each item's answer, in order: its result, or its error."""
        answers = await self.submit(candidates(items))
        return [a if isinstance(a, ItemError) else a.as_dict() for a in answers]

    async def submit(
        self, items: list[Candidate], *, compact: bool = False
    ) -> Sequence[Accepted | ItemError]:
        """Each candidate's answer, in order (:func:`candidates`, :func:`read_batch`).
        With ``compact``, a new report's answer carries its target's view only when it
        is the batch's last answer on that target (what ``targets=once`` shows)."""
        return await self._submit("reports", items, compact)

    async def submit_outcome(self, outcome: Outcome) -> bool:
        """Store a decision on a report; False when the log has no such report."""
        answer = await self._submit("outcome", [outcome])
        return bool(answer[0])

    async def _submit(
        self, kind: Literal["reports", "outcome"], items: list[Any], compact: bool = False
    ) -> Sequence[Any]:
        if not self.ready or self.failed is not None:
            raise NotReady("not ready: replaying the log, stopping, or the log failed")
        future: asyncio.Future[Sequence[Any]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(kind, items, future, compact))
        # A client that goes away does not cancel its reports: they are stored anyway.
        return await asyncio.shield(future)

    # The writer ----------------------------------------------------------------------

    async def _run(self) -> None:
        # Two stages a group: learning it (:meth:`_learn`: checked, looked up, its new
        # reports learnt by the scorer, its decisions applied) and answering it
        # (:meth:`_answer`: results, target views, the log's records, the append).
        # A large group's answer waits for the next group, when one is queued: its
        # results and views are made on the event loop while that group's compiled
        # loops run in a thread (the two touch different state), rather than before
        # them, which would put both on the path of every group. The scorer learns the
        # groups in order, the views and the log take them in order.
        held: _Group | None = None
        try:
            while True:
                if held is not None and self._queue.empty():
                    await self._answer(held)  # no group to overlap with
                    held = None
                job = await self._queue.get()
                if job is None:
                    return
                group, size, stop = [job], len(job.items), False
                while size < self.max_group and not self._queue.empty():
                    more = self._queue.get_nowait()
                    if more is None:
                        stop = True
                        break
                    group.append(more)
                    size += len(more.items)
                learnt, held = await self._learn(group, held), None
                if learnt is not None:
                    snapshot = self._snapshot_now(len(learnt.new))
                    if len(learnt.new) >= OFF_LOOP and not snapshot and not stop:
                        held = learnt
                    else:
                        # A small group is answered at once: holding it for the next
                        # would delay its answer (single reports waited twice as long).
                        await self._answer(learnt)
                    if snapshot:
                        await self._drain()
                        if self.failed is None:
                            await self._write_snapshot()
                if stop:
                    return
        finally:
            if held is not None:
                await self._answer(held)

    def _snapshot_now(self, learnt: int) -> bool:
        # Counted as learnt (the offset moves only once a group is durable): the
        # snapshot follows the group that reaches the interval, once it is durable.
        self._learnt += learnt
        return self.snapshot is not None and snapshot_due(
            self._learnt,
            self.snapshot_every,
            self._snapshot_cost,
            time.monotonic() - self._snapshot_ended,
            self.snapshot_share,
        )

    async def _learn(self, group: list[_Job], before: _Group | None = None) -> _Group | None:
        """The first stage of a group: its reports typed and looked up, the new ones
        learnt by the scorer in arrival order, then its decisions; None when the group
        was refused (each waiter answered). ``before``, the group learnt before it and
        not answered yet, is answered while this one's compiled loops run, or before
        this one is refused."""
        try:
            return await self._learn_group(group, before)
        finally:
            if before is not None and not before.answered:
                await self._answer(before)

    async def _learn_group(self, group: list[_Job], before: _Group | None) -> _Group | None:
        if self.failed is not None:
            for job in group:
                _fail(job.future, NotReady("the intake log failed; restart the service"))
            return None
        items = [i for job in group if job.kind == "reports" for i in job.items]
        outcomes: list[Outcome] = [i for job in group if job.kind == "outcome" for i in job.items]
        # The groups durable before this lookup starts are found by it: they leave
        # ``_flight`` once it returned (not before: a key must never be in neither).
        settled, self._settled = self._settled, []
        try:
            typed, keys, existing = await asyncio.to_thread(self._check, items, outcomes)
        except Exception as exc:  # the state is untouched: refuse this group only
            log.exception("validating a group failed")
            # The groups durable before it are still durable: the next lookup finds
            # them, and only then do they leave ``_flight``.
            self._settled = settled + self._settled
            for job in group:
                _fail(job.future, exc)
            return None
        if settled:
            self._flight = [w for w in self._flight if all(w is not s for s in settled)]
        flight = self._flight
        new_only = _new_only(typed, keys, existing, flight)
        if new_only is not None:
            # The common batch: every report new, found in C, not a report at a time.
            written = _Written(typed, new_only, Results([]))  # type: ignore[arg-type]
            slots: Sequence[_Slot] = _NewSlots(written, len(typed))
        else:
            slots, written = self._slots(typed, keys, existing, flight)
        new = written.reports
        # Repeats are never learnt, so the new reports are scored and learnt as one
        # sequence, in arrival order: what scoring them one by one gives.
        try:
            scoring = await self._score(new, before)
        except Exception as exc:
            self._refuse(group, exc)
            return None
        # The next group's repeats of these are found here until they are durable.
        flight.append(written)
        known: list[Outcome] = []
        # Decisions after the group's reports (the log gives them that place too).
        for o in outcomes:
            key = (o.platform, o.report_id)
            decided: Mapping[str, Any] | None = None
            if key in existing:
                decided = existing[key].record.report
            elif (held := _in_flight(flight, key)) is not None:
                decided = held[0].reports[held[1]]
            if decided is not None:
                self.state.decide(decided, o.outcome)
                known.append(o)
        return _Group(group, slots, written, scoring, known, new_only is not None)

    def _slots(
        self,
        typed: list[dict[str, Any] | ItemError],
        keys: list[tuple[str, str]],
        existing: dict[tuple[str, str], Entry],
        flight: list[_Written],
    ) -> tuple[list[_Slot], _Written]:
        """Each report's slot (an error, a repeat of a stored report or of one in
        flight, or new) and the group's new reports, a report at a time (``keys``:
        each report's key, the errors having none)."""
        stats = self.stats
        next_key = iter(keys).__next__
        slots: list[_Slot] = []
        new: list[dict[str, Any]] = []
        fresh: dict[tuple[str, str], int] = {}
        written = _Written(new, fresh, Results([]))
        for report in typed:
            if isinstance(report, ItemError):
                stats.refused += 1
                slots.append(report)
                continue
            key = next_key()
            if key in existing:
                slots.append(existing[key])
                stats.repeats += 1
            elif key in fresh:
                slots.append((written, fresh[key], True))
                stats.repeats += 1
            elif (held := _in_flight(flight, key)) is not None:  # not durable yet
                slots.append((*held, True))
                stats.repeats += 1
            else:
                slots.append((written, len(new), False))
                fresh[key] = len(new)
                new.append(report)
        return slots, written

    def _refuse(self, group: list[_Job], exc: BaseException) -> None:
        # The state may have learnt part of the group: refuse intake from now on (a
        # restart replays the log), as when the log fails, and answer every waiter
        # rather than leave it waiting on a writer that stopped.
        if self.failed is None:
            self.failed = exc
        self.ready = False
        log.error("scoring a group failed; refusing intake", exc_info=exc)
        for job in group:
            _fail(job.future, NotReady("scoring failed; restart the service"))

    async def _answer(self, learnt: _Group) -> None:
        """The second stage of a group: its results and target views, then its
        records appended to the log after every group before it, and its waiters
        answered once that append is durable (:meth:`_finish`)."""
        learnt.answered = True
        group, slots, written = learnt.jobs, learnt.slots, learnt.written
        if self.failed is not None:
            for job in group:
                _fail(job.future, NotReady("scoring failed; restart the service"))
            return
        new = written.reports
        if learnt.new_only and learnt.scoring is not None:
            views = self._wanted_new(group, learnt.scoring[0].batch.target)
        else:
            views = self._wanted(group, slots, len(new))
        results, shown = Results([]), list[bytes | None]()
        try:
            if learnt.scoring is not None:
                results, shown = self.state.end_group(*learnt.scoring, views)
        except Exception as exc:
            self._refuse(group, exc)
            return
        written.results = results
        written.shown = shown
        if learnt.scoring is not None:
            written.platform, written.target = learnt.scoring[0].platform, learnt.scoring[0].target
        # A repeat shows its target's view as it stands once this group is learnt.
        views_now: dict[tuple[str, str], dict[str, Any] | None] = {}
        now: dict[int, dict[str, Any] | None] = {}
        for at, slot in enumerate(() if learnt.new_only else slots):
            if isinstance(slot, Entry):
                target = (slot.record.platform, slot.record.target_id)
            elif isinstance(slot, tuple) and slot[2]:
                held = slot[0].reports[slot[1]]
                target = (str(held["platform"]), str(held["target_id"]))
            else:
                continue
            if target not in views_now:
                views_now[target] = self.state.view(*target)
            now[at] = views_now[target]
        counts = self.stats.reports
        for recommendation in results.recommendations:
            counts[recommendation] += 1
        known = learnt.known
        await self._drain(keep=_PIPELINE)
        appended = asyncio.get_running_loop().run_in_executor(
            self._appender, self._append, new, results.encoded, known
        )
        task = asyncio.create_task(
            self._finish(
                group,
                slots,
                written,
                now,
                {(o.platform, o.report_id) for o in known},
                appended,
            )
        )
        self._finishing.append(task)

    async def _score(
        self, new: list[dict[str, Any]], before: _Group | None = None
    ) -> tuple[Group, Scored] | None:
        """The new reports learnt by the scorer: :meth:`GuardState.begin_group`, then
        its compiled loops, for a large group in a thread (they release the GIL and
        touch only the scorer's arrays, so the event loop answers ``before``
        meanwhile; nothing else changes the scorer: this is its one writer)."""
        if not new:
            return None
        state = self.state
        group = state.begin_group(new)
        if len(new) < OFF_LOOP:
            return group, state.scorer.learn_many(group.batch)
        scoring = asyncio.get_running_loop().run_in_executor(
            None, state.scorer.learn_many, group.batch
        )
        try:
            if before is not None:
                await self._answer(before)
        finally:
            scored = await scoring
        return group, scored

    @staticmethod
    def _wanted_new(group: list[_Job], targets: NDArray[np.int64]) -> list[bool]:
        """:meth:`_wanted` of a group whose every report is new (its slots are its
        reports in order), from the scorer's number of each report's target: in a
        compact batch, the last report on each target is the first in reverse that
        ``np.unique`` finds.

        >>> job = _Job("reports", [{}] * 3, None, compact=True)  # type: ignore[arg-type]
        >>> Guard._wanted_new([job], np.array([4, 7, 4]))
        [False, True, True]
        """
        wanted = np.zeros(len(targets), np.bool_)
        at = 0
        for job in group:
            if job.kind != "reports":
                continue
            size = len(job.items)
            if not job.compact:
                wanted[at : at + size] = True
            elif size:
                _, first = np.unique(targets[at : at + size][::-1], return_index=True)
                wanted[at + size - 1 - first] = True
            at += size
        return wanted.tolist()

    @staticmethod
    def _wanted(group: list[_Job], slots: Sequence[_Slot], count: int) -> list[bool]:
        """Which new reports' results need their target's view: every one answered in
        full, and in a compact batch the last answer on each target."""
        wanted = [False] * count
        at = 0
        for job in group:
            if job.kind != "reports":
                continue
            mine = slots[at : at + len(job.items)]
            at += len(job.items)
            if not job.compact:
                for slot in mine:
                    if isinstance(slot, tuple) and not slot[2]:
                        wanted[slot[1]] = True
                continue
            seen: set[tuple[str, str]] = set()
            for slot in reversed(mine):
                if isinstance(slot, ItemError):
                    continue
                if isinstance(slot, Entry):
                    target = (slot.record.platform, slot.record.target_id)
                else:
                    held, number, _ = slot
                    report = held.reports[number]
                    target = (str(report["platform"]), str(report["target_id"]))
                if target not in seen:
                    seen.add(target)
                    if isinstance(slot, tuple) and not slot[2]:
                        wanted[slot[1]] = True
        return wanted

    def _append(
        self, reports: list[dict[str, Any]], results: list[bytes], outcomes: list[Outcome]
    ) -> tuple[Sequence[int], int]:
        """In the append thread: a group into the log, after every group before it; none
        once one failed (the state learnt reports that are not durable)."""
        if self._broken:
            raise NotReady("the intake log failed; restart the service")
        if not reports and not outcomes:
            return [], 0  # only repeats and errors: nothing to store
        try:
            offsets = self.log.append_new(reports, results, outcomes)
            return offsets, (self.log.last_decision if outcomes else 0)
        except BaseException:
            self._broken = True
            raise

    async def _finish(
        self,
        group: list[_Job],
        slots: Sequence[_Slot],
        written: _Written,
        now: dict[int, dict[str, Any] | None],
        decided: set[tuple[str, str]],
        appended: asyncio.Future[tuple[Sequence[int], int]],
    ) -> None:
        """Once the group's append returned: answer each waiter (or fail them all)."""
        try:
            offsets, decision = await appended
        except BaseException as exc:
            # The state learnt reports that are not durable: stop taking any more.
            if self.failed is None:
                self.failed = exc
                log.error("the intake log failed (%s); refusing intake", type(exc).__name__)
            self.ready = False
            for job in group:
                _fail(job.future, NotReady("the intake log failed; restart the service"))
            return
        self._settled.append(written)
        if decision:
            self.state.decision = decision
        # The log answers each report with its offset, in order.
        written.offsets = offsets
        if offsets:
            self.state.offset = max(self.state.offset, max(offsets))
        self.stats.groups += 1
        at = 0
        for job in group:
            if job.future.done():
                at += len(job.items) if job.kind == "reports" else 0
                continue
            if job.kind == "outcome":
                job.future.set_result([(o.platform, o.report_id) in decided for o in job.items])
                continue
            size = len(job.items)
            first = slots[at] if size else None
            last = slots[at + size - 1] if size else None
            if (
                isinstance(first, tuple)
                and isinstance(last, tuple)
                and not first[2]
                and not last[2]
                and first[0] is written
                and last[0] is written
                and last[1] - first[1] == size - 1
            ):
                # New reports are numbered one after another: every report between
                # the first and the last is new too.
                at += size
                job.future.set_result(NewAnswers(written, first[1], last[1] + 1))
                continue
            answer: list[Accepted | ItemError] = []
            for place, slot in enumerate(slots[at : at + size], start=at):
                if isinstance(slot, ItemError):
                    answer.append(slot)
                elif isinstance(slot, Entry):
                    answer.append(_repeat(slot.record.result, slot.offset, now[place]))
                else:
                    held, number, repeat = slot
                    if repeat:
                        answer.append(
                            _repeat(held.results[number], held.offsets[number], now[place])
                        )
                    else:
                        answer.append(_accepted(held, number))
            at += size
            job.future.set_result(answer)

    async def _drain(self, keep: int = 0) -> None:
        """Wait until at most ``keep`` groups learnt are not durable and answered yet."""
        while len(self._finishing) > keep:
            task = self._finishing.popleft()
            try:
                await asyncio.shield(task)
            except Exception:  # _finish answers every failure itself
                log.exception("answering a group failed")

    def _check(
        self, items: list[Candidate], outcomes: list[Outcome]
    ) -> tuple[
        list[dict[str, Any] | ItemError], list[tuple[str, str]], dict[tuple[str, str], Entry]
    ]:
        """The group typed, its reports' keys in order (an error has none), and what the
        log holds of those keys and of the decisions' keys."""
        typed = type_all(self._con, items)
        reports: list[dict[str, Any]] = (
            typed  # type: ignore[assignment]
            if set(map(type, typed)) <= {dict}
            else [r for r in typed if isinstance(r, dict)]
        )
        keys = list(zip(map(_PLATFORM, reports), map(_REPORT_ID, reports), strict=True))
        return typed, keys, self.log.lookup(keys + [(o.platform, o.report_id) for o in outcomes])

    async def _write_snapshot(self) -> None:
        assert self.snapshot is not None
        began = time.monotonic()
        # Taken and written off the event loop (reads go on answering meanwhile); the
        # arrays are written as they stand, so the writer, the only one that changes
        # the state, waits here until the file is durable.
        data = await asyncio.to_thread(self.state.dump)
        self._learnt = 0
        await asyncio.to_thread(GuardState.write_snapshot, self.snapshot, data)
        self._settle()
        self._snapshot_ended = time.monotonic()
        self._snapshot_cost = self._snapshot_ended - began


def _new_only(
    typed: list[dict[str, Any] | ItemError],
    keys: list[tuple[str, str]],
    existing: dict[tuple[str, str], Entry],
    flight: list[_Written],
) -> dict[tuple[str, str], int] | None:
    """The number of each key in a group whose every report is new (none refused, none
    stored, none in flight, none twice), found in C; None for any other group.

    >>> _new_only([{}, {}], [("x", "1"), ("x", "2")], {}, [])
    {('x', '1'): 0, ('x', '2'): 1}
    >>> _new_only([{}, {}], [("x", "1"), ("x", "1")], {}, []) is None
    True
    """
    if len(keys) != len(typed) or not existing.keys().isdisjoint(keys):
        return None
    if any(not w.index.keys().isdisjoint(keys) for w in flight):
        return None
    index = dict(zip(keys, range(len(keys)), strict=True))
    return index if len(index) == len(keys) else None


def _repeat(stored: Mapping[str, Any], offset: int, view: dict[str, Any] | None) -> Accepted:
    """A repeat's answer: the first result (without the view the log may hold), with
    its target's view once the repeat's group was learnt."""
    result = {**{k: v for k, v in stored.items() if k != "target"}, "target": view}
    return Accepted(result, _encode(result), offset, True)


def _in_flight(flight: list[_Written], key: tuple[str, str]) -> tuple[_Written, int] | None:
    """The group in flight that holds the report of ``key``, and its number there."""
    for written in flight:
        number = written.index.get(key)
        if number is not None:
            return written, number
    return None


def _accepted(held: _Written, number: int) -> Accepted:
    """A new report's answer: its result with its view (where one was made) spliced in
    after the rest (the same bytes as encoding the whole)."""
    view = held.shown[number]
    encoded = held.results.encoded[number]
    report = held.reports[number]
    target = (report["platform"], report["target_id"])
    offset = held.offsets[number]
    if view is None:
        return Accepted(None, encoded, offset, False, encoded, target=target)
    whole = b'%b,"target":%b}' % (encoded[:-1], view)
    return Accepted(None, whole, offset, False, encoded, view, target)


def _fail(future: asyncio.Future[Sequence[Any]], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
