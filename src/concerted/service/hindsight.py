"""Hindsight: the batch brigade stage over the log's recent reports, on a schedule.

The online scorer sees each report once, when it arrives; the brigade stage
(:func:`concerted.brigades.find`) looks at all of them together, tests co-reporting
against its null, assembles brigades from the significant pairs and names their
targets. ``concerted serve --config`` with ``reanalyse_every = "10m"`` runs it every
ten minutes (``POST /v1/admin/reanalyse`` runs it at once) over the reports of the
last ``reanalyse_span`` of the stream's own clock (at most ``MAX_REPORTS`` of them),
loaded into an in-memory DuckDB.

Each run replaces the marks of the one before: the targets of every flagged brigade,
and every target the stage would protect, are marked ``hindsight`` in the live state
(:attr:`concerted.service.state.GuardState.hindsight`); such a target is in review
until a run no longer finds it. ``/v1/targets`` and the page show a mark's evidence
apart from the online signals, under ``hindsight`` with ``source: "hindsight"``.

The run reads the log and computes in a thread of its own; intake goes on meanwhile
(only the swap of the marks happens on the event loop). The reports it keeps between
runs, the ``reanalyse_span`` before the latest, are held as tuples of their columns,
about 370 bytes a report (so ``MAX_REPORTS`` of them, about 0.75 GB).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa

from concerted import brigades
from concerted.actions import SQL_MACROS, from_posts, from_reports, from_roles
from concerted.config import BrigadeSettings
from concerted.schema import CONTRACTS, INPUT_TABLES
from concerted.service.base import IntakeLog
from concerted.service.state import GuardState

__all__ = ["MAX_REPORTS", "Hindsight", "Mark", "Run"]

log = logging.getLogger(__name__)

#: At most this many of the latest reports go into one run.
MAX_REPORTS = 2_000_000
#: At most this many of a brigade's reporters are named on a target's mark.
MAX_REPORTERS = 100
_COLUMNS = (
    "report_id",
    "platform",
    "reporter_id",
    "target_id",
    "target_kind",
    "reason",
    "ts",
    "channel",
    "client",
    "outcome",
    "reporter_created_at",
)
#: Times are held as microseconds; the other columns as text.
_TIMES = frozenset({"ts", "reporter_created_at"})
_SCHEMA = pa.schema([pa.field(c, pa.int64() if c in _TIMES else pa.string()) for c in _COLUMNS])
#: Columns of few distinct values, held once each (``sys.intern``).
_SHARED = frozenset({"platform", "target_kind", "reason", "channel", "client", "outcome"})


@dataclass(frozen=True, slots=True)
class Mark:
    """Why hindsight holds a target in review: the brigade that targeted it."""

    campaign_id: str | None
    score: float
    reporters: tuple[str, ...]
    signals: tuple[str, ...]
    first_report: str | None
    latest_report: str | None
    protected: bool
    found_at: str

    def as_dict(self) -> dict[str, Any]:
        """The mark as ``/v1/targets`` shows it.

        >>> Mark("b1", 0.9, ("u1",), ("s2_co_report",), None, None, True, "now").as_dict()[
        ...     "source"
        ... ]
        'hindsight'
        """
        return {
            "source": "hindsight",
            "campaign_id": self.campaign_id,
            "score": self.score,
            "reporters": list(self.reporters),
            "signals": list(self.signals),
            "first_report": self.first_report,
            "latest_report": self.latest_report,
            "protected": self.protected,
            "found_at": self.found_at,
        }


@dataclass(slots=True)
class Run:
    """What one run did."""

    reports: int = 0
    offset: int = 0
    brigades: int = 0
    flagged: int = 0
    targets: int = 0
    seconds: float = 0.0
    finished_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "reports": self.reports,
            "offset": self.offset,
            "brigades": self.brigades,
            "flagged_brigades": self.flagged,
            "targets_marked": self.targets,
            "seconds": round(self.seconds, 3),
            "finished_at": self.finished_at,
        }


@dataclass
class Hindsight:
    """Runs the brigade stage over the recent reports of ``log`` for ``state``."""

    log: IntakeLog
    state: GuardState
    span_s: float = 86_400.0
    settings: BrigadeSettings = field(default_factory=BrigadeSettings)
    max_reports: int = MAX_REPORTS
    runs: int = 0
    last: Run | None = None
    _recent: deque[tuple[str | int | None, ...]] = field(default_factory=deque)
    _read_to: int = 0
    _latest_us: int = 0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _reading: threading.Lock = field(default_factory=threading.Lock)

    async def run_once(self) -> Run:
        """One run: read, find, then swap the marks in (one run at a time). With
        nothing learnt since the last run, its result stands and nothing is run."""
        async with self._lock:
            upto = self.state.offset
            if self.last is not None and self.last.offset == upto:
                return self.last
            run, marks = await asyncio.to_thread(self._compute, upto)
            self.state.hindsight = {k: m.as_dict() for k, m in marks.items()}
            self.runs += 1
            self.last = run
            log.info(
                "hindsight: %d reports, %d flagged brigades, %d targets marked in %.1f s",
                run.reports,
                run.flagged,
                run.targets,
                run.seconds,
            )
            return run

    async def run_every(self, seconds: float) -> None:
        """Run now, then every ``seconds`` (each run after the last one finished)."""
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next run tries again
                log.error("hindsight: the run failed: %s", type(exc).__name__)
            await asyncio.sleep(seconds)

    # In a thread -------------------------------------------------------------------

    def _read(self, upto: int) -> None:
        """Take the log's reports up to offset ``upto`` into the recent ones, then drop
        those older than the span before the latest (and beyond ``max_reports``)."""
        entries = self.log.read(self._read_to)
        for entry in entries:
            if entry.offset > upto:
                close = getattr(entries, "close", None)
                if close is not None:
                    close()
                break
            row = _row(entry.record.report)
            self._recent.append(row)
            self._read_to = entry.offset
            self._latest_us = max(self._latest_us, int(row[_TS] or 0))
        # The log is in arrival order, which is nearly time order: trim from the left
        # (a late report left behind is filtered out at the run).
        cutoff = self._latest_us - round(self.span_s * 1_000_000)
        while self._recent and (
            int(self._recent[0][_TS] or 0) < cutoff or len(self._recent) > self.max_reports
        ):
            self._recent.popleft()

    def _compute(self, upto: int) -> tuple[Run, dict[tuple[str, str], Mark]]:
        began = time.perf_counter()
        with self._reading:
            self._read(upto)
            cutoff = self._latest_us - round(self.span_s * 1_000_000)
            rows = [row for row in self._recent if int(row[_TS] or 0) >= cutoff]
        run = Run(reports=len(rows), offset=upto)
        marks: dict[tuple[str, str], Mark] = {}
        if rows:
            found = _find(rows, self.settings)
            marks = _marks(found, _now())
            run.brigades = found.campaigns.num_rows
            run.flagged = found.flagged
            run.targets = len(marks)
        run.seconds = time.perf_counter() - began
        run.finished_at = _now()
        return run, marks


_TS = _COLUMNS.index("ts")


def _row(report: Mapping[str, Any]) -> tuple[str | int | None, ...]:
    """A stored report as the run keeps it: times in microseconds, the columns of few
    values shared, the rest as text."""
    out: list[str | int | None] = []
    for c in _COLUMNS:
        value = report.get(c)
        if value is None:
            out.append(None)
        elif c in _TIMES:
            out.append(_micros(str(value)))
        elif c in _SHARED:
            out.append(sys.intern(str(value)))
        else:
            out.append(str(value))
    return tuple(out)


def _micros(iso: str) -> int:
    return round(datetime.fromisoformat(iso).timestamp() * 1_000_000)


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _find(rows: list[tuple[str | int | None, ...]], settings: BrigadeSettings) -> brigades.Brigades:
    """The brigade stage on a case of these reports (and their reporters' creation
    times), in an in-memory DuckDB."""
    con = duckdb.connect(config={"threads": 1})
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(SQL_MACROS)
        for name in INPUT_TABLES:
            con.execute(CONTRACTS[name].ddl())
        table = pa.Table.from_arrays(
            [pa.array([r[i] for r in rows], _SCHEMA.field(i).type) for i in range(len(_COLUMNS))],
            schema=_SCHEMA,
        )
        con.register("_recent", table)
        con.execute(
            "INSERT INTO reports BY NAME SELECT report_id, platform, reporter_id, target_id, "
            "coalesce(target_kind, 'account') AS target_kind, reason, "
            "make_timestamp(ts)::TIMESTAMPTZ AS ts, channel, client, outcome FROM _recent"
        )
        con.execute(
            "INSERT INTO accounts BY NAME SELECT reporter_id AS account_id, platform, "
            "'user' AS kind, make_timestamp(min(reporter_created_at))::TIMESTAMPTZ AS created_at "
            "FROM _recent GROUP BY platform, reporter_id"
        )
        con.unregister("_recent")
        con.execute(CONTRACTS["actions"].ddl())
        for query in (from_posts("posts"), from_reports("reports"), from_roles("roles")):
            con.execute(f"INSERT INTO actions {query}")
        return brigades.find(con, settings)
    finally:
        con.close()


def _marks(found: brigades.Brigades, found_at: str) -> dict[tuple[str, str], Mark]:
    """A mark for every target of a flagged brigade and every target to protect."""
    campaigns = {str(c["campaign_id"]): c for c in found.campaigns.to_pylist() if c["flagged"]}
    reporters: dict[str, list[str]] = {}
    for m in found.members.to_pylist():
        if m["campaign_id"] in campaigns and m["role"] != "organiser":
            reporters.setdefault(str(m["campaign_id"]), []).append(str(m["account_id"]))
    spans: dict[tuple[str, str], tuple[Any, Any]] = {}
    marks: dict[tuple[str, str], Mark] = {}

    def mark(key: tuple[str, str], campaign: Mapping[str, Any] | None, protected: bool) -> None:
        cid = None if campaign is None else str(campaign["campaign_id"])
        first, latest = spans.get(key, (None, None))
        marks[key] = Mark(
            campaign_id=cid,
            score=float(campaign["score"]) if campaign is not None else 0.0,
            reporters=tuple(sorted(reporters.get(cid or "", []))[:MAX_REPORTERS]),
            signals=tuple(campaign.get("signals") or ()) if campaign is not None else (),
            first_report=first,
            latest_report=latest,
            protected=protected,
            found_at=found_at,
        )

    for t in found.targets.to_pylist():
        if t["campaign_id"] in campaigns:
            key = (str(t["platform"]), str(t["target_id"]))
            spans[key] = (_iso(t.get("first_ts")), _iso(t.get("last_ts")))
            mark(key, campaigns[str(t["campaign_id"])], False)
    for p in found.protected.to_pylist():
        key = (str(p["platform"]), str(p["target_id"]))
        campaign = campaigns.get(str(p["campaign_id"])) if p["campaign_id"] else None
        if key in marks:
            marks[key] = replace(marks[key], protected=True)
        else:
            mark(key, campaign, True)
    return marks


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return None if value is None else str(value)
