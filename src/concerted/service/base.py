"""The intake log: what every log behind ``concerted serve`` promises.

A log holds every report the service acknowledged, in the order the service learnt
them, each with the result it was first answered with. Three promises:

* **durable before acknowledged**: :meth:`IntakeLog.append` returns only once what it
  was given would survive a crash of the process or of the machine;
* **idempotent** on ``(platform, report_id)``: a report already in the log is never
  stored again (the service answers a repeat with the first result);
* **replayable**: :meth:`IntakeLog.read` gives the entries after an offset in the order
  they were appended, which is the order the online state learnt them, and
  :meth:`IntakeLog.decisions` the decisions with their place among them, so that
  a snapshot plus what came after it rebuild the state exactly.

Offsets are positive integers that grow with every append; 0 is "before the first".
Calls are blocking: the service makes them from one writer (see
:class:`concerted.service.intake.Guard`), off the event loop.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

__all__ = [
    "Answered",
    "Decoded",
    "Entry",
    "IntakeLog",
    "Learnt",
    "Outcome",
    "Record",
    "StoredReport",
    "records_of",
]

_decode_object = msgspec.json.Decoder(dict[str, Any]).decode


class Decoded(Mapping[str, Any]):
    """A JSON object held as its bytes, decoded the first time it is read: a result
    the guard made is stored and answered as JSON, and mostly never read as a dict.

    >>> d = Decoded(b'{"score":0.5,"signals":[]}')
    >>> d.data, d["score"], dict(d)
    (b'{"score":0.5,"signals":[]}', 0.5, {'score': 0.5, 'signals': []})
    """

    __slots__ = ("_value", "data")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._value: dict[str, Any] | None = None

    def _decoded(self) -> dict[str, Any]:
        if self._value is None:
            self._value = _decode_object(self.data)
        return self._value

    def __getitem__(self, key: str) -> Any:
        return self._decoded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._decoded())

    def __len__(self) -> int:
        return len(self._decoded())

    def __repr__(self) -> str:
        return f"Decoded({self.data!r})"


# Record and Entry are made once a report on the intake path: not frozen, since a
# frozen dataclass takes five times as long to make (object.__setattr__ a field).
@dataclass(slots=True)
class Record:
    """A report to append: its key, the typed report and the result it was answered
    with (both JSON-ready mappings). ``result_json``, when given, is the result
    encoded as JSON already (the guard encodes each result once, for its answer and
    for the log); a log stores it as it is."""

    platform: str
    report_id: str
    target_id: str
    report: Mapping[str, Any]
    result: Mapping[str, Any]
    result_json: bytes | None = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.platform, self.report_id)


def records_of(reports: Sequence[Mapping[str, Any]], results: Sequence[bytes]) -> list[Record]:
    """The records of typed reports and their results encoded as JSON (what
    :meth:`IntakeLog.append_new` takes), for a log that appends records."""
    return [
        Record(r["platform"], r["report_id"], r["target_id"], r, Decoded(d), d)
        for r, d in zip(reports, results, strict=True)
    ]


@dataclass(slots=True)
class Entry:
    """A report in the log, at ``offset``."""

    offset: int
    record: Record


@dataclass(frozen=True, slots=True)
class Outcome:
    """A moderator's decision on a report: ``upheld`` or ``rejected``."""

    platform: str
    report_id: str
    outcome: str
    decided_at: str | None = None


class StoredReport(msgspec.Struct, frozen=True):
    """The fields of a stored report that the live state reads, decoded at once from
    the log's JSON (the others are skipped unread): what replay needs and no more."""

    report_id: str
    platform: str
    reporter_id: str
    target_id: str
    ts: str
    channel: str | None = None
    client: str | None = None
    outcome: str | None = None
    reporter_created_at: str | None = None


class Answered(msgspec.Struct, frozen=True):
    """The fields of a stored result that replay reads."""

    recommendation: str
    signals: list[str] = msgspec.field(default_factory=list)


#: One report as replay learns it again: its offset, the report and its first result.
Learnt = tuple[int, StoredReport, Answered]


class IntakeLog(Protocol):
    """An append-only, idempotent, durable log of reports (see the module's notes)."""

    def append(self, records: Sequence[Record], outcomes: Sequence[Outcome] = ()) -> list[Entry]:
        """Store ``records`` (and ``outcomes``) durably in one commit; return, for each
        record in order, its entry: the new one, or the one already stored under its
        key. Returns only once all of it is durable."""
        ...

    def append_new(
        self,
        reports: Sequence[Mapping[str, Any]],
        results: Sequence[bytes],
        outcomes: Sequence[Outcome] = (),
    ) -> Sequence[int]:
        """:meth:`append` of reports that the caller's lookup found new (the guard's
        groups), each with its result already encoded as JSON; returns their offsets,
        in order. What the log holds afterwards is what :meth:`append` of the same
        records would leave, a key stored meanwhile included (its first entry's
        offset is returned); only the way there may be faster."""
        ...

    def lookup(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Entry]:
        """The entries already stored under any of ``keys``."""
        ...

    def read(self, after: int = 0, *, chunk: int = 10_000) -> Iterator[Entry]:
        """Every entry after offset ``after``, in append order."""
        ...

    def outcome(self, platform: str, report_id: str) -> Outcome | None:
        """The decision stored for a report, if any."""
        ...

    def decisions(self, after: int = 0) -> Iterator[tuple[int, int, Outcome]]:
        """Every decision after decision number ``after``, in arrival order, as
        ``(number, offset, outcome)``: ``offset`` is that of the last report appended
        before it (its place among the reports: replay applies it after that report,
        before the next)."""
        ...

    @property
    def last_decision(self) -> int:
        """The number of the last decision (0 when none)."""
        ...

    @property
    def last_offset(self) -> int:
        """The offset of the last entry (0 when empty)."""
        ...

    def close(self) -> None: ...
