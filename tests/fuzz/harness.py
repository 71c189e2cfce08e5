"""One fuzzing run: ingest a (mutated) file and judge what happened.

A run passes when ingest either succeeds with consistent counts, or fails with a
:class:`~concerted.errors.ConcertedError` (a message naming the file, and where it can
the row and the column). Anything else (a traceback of another exception) is a crash;
counts that do not add up are a mismatch.

Two ways to run, judged by the same :func:`_judge`:

- :func:`run`, the plain way: a new case file for every run, opened and closed around
  it (about 40 ms of a run's cost on this machine went to that alone);
- :class:`Runner`, for campaigns: one case kept open (in memory by default) and emptied
  after each run, so that every run is still a real ingest into a case holding nothing,
  with the same checks, and both modes of an input read the file written once.
  ``test_fuzz_harness.py`` holds the two to the same outcomes and counts.
"""

from __future__ import annotations

import shutil
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from concerted.adapters.base import AdapterOptions
from concerted.errors import ConcertedError
from concerted.ingest import IngestOptions, SourceReport, ingest
from concerted.schema import CONTRACTS
from concerted.store import Store

# Adapters whose every file row makes at most one row of the file's own table.
_ONE_ROW_EACH = {
    "generic",
    "reports",
    "qut",
    "twitter-io",
    "crowdtangle",
    "mastodon",
    "atproto",
    "synapse",
    "lemmy",
}

#: The modes every input is ingested in, in this order.
MODES = ("raise", "quarantine")

#: DuckDB's memory limit for a fuzzing case.
MEMORY_LIMIT = "1GB"


@dataclass(frozen=True)
class Outcome:
    """What one run did: ``ok``, ``refused`` (a ConcertedError), ``crash`` or
    ``mismatch``, with the detail and, where ingest ended, the file's counts."""

    kind: str
    detail: str = ""
    counts: dict[str, int] = field(default_factory=dict)


#: What a fixture is read with beyond its format, as a user would read it (``--map``,
#: ``--platform``): without it every mutation of the file would be refused for the
#: one thing the file does not say.
MAPPINGS: dict[str, dict[str, str]] = {"generic/posts.csv": {"account_id": "author"}}
PLATFORMS: dict[str, str] = {"reports/reports.jsonl": "facebook"}


def _table(fmt: str, fixture: str) -> str | None:
    if fmt != "generic":
        return None
    return Path(fixture).name.split(".")[0].removesuffix("_broken")


def options(fmt: str, fixture: str, on_error: str) -> IngestOptions:
    """How ``fixture`` (a path under ``tests/fixtures``) is read, as its own tests read it.

    >>> options("generic", "generic/posts.csv", "quarantine").adapter.mapping
    {'account_id': 'author'}
    """
    return IngestOptions(
        format=fmt,
        adapter=AdapterOptions(
            table=_table(fmt, fixture),
            mapping=MAPPINGS.get(fixture, {}),
            platform=PLATFORMS.get(fixture),
        ),
        on_error=on_error,  # type: ignore[arg-type]
    )


def _judge(store: Store, report: SourceReport, fmt: str) -> Outcome:
    row = store.con.execute(
        'SELECT count(DISTINCT "row") FROM quarantine '
        "WHERE source_id = (SELECT max(source_id) FROM sources)"
    ).fetchone()
    quarantined = int(row[0]) if row else 0
    counts = {
        "read": report.rows_read,
        "added": sum(report.rows_added.values()),
        "duplicate": report.rows_duplicate,
        "set_aside": report.rows_set_aside,
        "quarantined": quarantined,
        "actions": report.actions_added,
    }
    if quarantined != report.rows_set_aside:
        return Outcome(
            "mismatch",
            f"{quarantined} rows in quarantine, {report.rows_set_aside} set aside",
            counts,
        )
    if report.rows_duplicate + report.rows_set_aside > report.rows_read:
        return Outcome("mismatch", f"more rows duplicate or set aside than read: {report}", counts)
    if fmt in _ONE_ROW_EACH and report.rows_added:
        own = next(iter(report.rows_added.values()))
        if own + report.rows_duplicate + report.rows_set_aside != report.rows_read:
            return Outcome(
                "mismatch",
                f"{report.rows_read} read != {own} added + {report.rows_duplicate} duplicate "
                f"+ {report.rows_set_aside} set aside",
                counts,
            )
    return Outcome("ok", counts=counts)


def _ingest(store: Store, path: Path, fmt: str, fixture: str, on_error: str) -> Outcome:
    try:
        (report,) = ingest(store, [path], options(fmt, fixture, on_error))
        return _judge(store, report, fmt)
    except ConcertedError as exc:
        return _refused(exc)
    except Exception as exc:  # noqa: BLE001 - a crash is what the fuzzer looks for
        return Outcome("crash", "".join(traceback.format_exception(exc))[-2000:])


#: What only DuckDB's CSV reader says of a line it failed on: its own line number, not
#: the file's, and no column; or of its parser stopping, no line at all. A refusal
#: carrying either is the reader's error passed through whole (a JSON line that was not
#: UTF-8 failed its file so, under quarantine too; so did a stray carriage return past
#: the sniffer's sample): counted as a crash.
_READER_ERRORS = ("CSV Error on Line", "state machine reached an invalid state")


def _refused(exc: ConcertedError) -> Outcome:
    text = str(exc)
    if any(sign in text for sign in _READER_ERRORS):
        return Outcome("crash", f"the reader's own error passed through: {text[:1800]}")
    return Outcome("refused", text[:200])


def run(fmt: str, fixture: str, data: bytes, on_error: str) -> Outcome:
    """Ingest ``data`` (written under the fixture's name) with ``on_error`` into a new
    case file: the plain way, every run on its own."""
    name = Path(fixture).name
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            store = Store(Path(tmp) / "case.duckdb", memory_limit=MEMORY_LIMIT)
        except ConcertedError as exc:
            return Outcome("refused", str(exc)[:200])
        except Exception as exc:  # noqa: BLE001
            return Outcome("crash", "".join(traceback.format_exception(exc))[-2000:])
        with store:
            outcome = _ingest(store, path, fmt, fixture, on_error)
        return outcome


# What a case holds that no ingest writes to (case_meta) is kept; its other tables are
# emptied after a run.
_RESET = (
    "BEGIN TRANSACTION; "
    + " ".join(f'DELETE FROM "{t}";' for t in ("sources", "quarantine", *CONTRACTS))
    + " COMMIT; "
    # What a run left on the connection: temporary tables and views.
    + "SELECT 'TABLE', table_name FROM duckdb_tables() WHERE temporary "
    + "UNION ALL SELECT 'VIEW', view_name FROM duckdb_views() WHERE temporary AND NOT internal"
)


class Runner:
    """Runs one input after another, each a real ingest into an empty case.

    One case (``":memory:"`` by default, or a case file) stays open; after each run
    its tables are emptied and what the run left on the connection (temporary tables
    and views) is dropped, so the next run finds the case as a new one. After a crash,
    or when emptying fails, the case is opened anew. ``threads`` is DuckDB's (one: a
    campaign runs a worker per core).

    >>> from tests.fuzz.sources import FIXTURES
    >>> data = (FIXTURES / "qut/messages.csv").read_bytes()
    >>> with Runner() as runner:
    ...     [o.kind for o in runner.run_both("qut", "qut/messages.csv", data)]
    ['ok', 'ok']
    """

    def __init__(self, case: str | Path = ":memory:", *, threads: int | None = 1) -> None:
        self._case = str(case)
        self._threads = threads
        self._dir = Path(tempfile.mkdtemp(prefix="concerted-fuzz-"))
        #: How many times the case was opened anew after a crash or a failed emptying.
        self.reopened = 0
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        """The open case (opened on first use)."""
        if self._store is None:
            self._store = Store(
                self._case,
                memory_limit=MEMORY_LIMIT,
                temp_directory=self._dir / "spill",
                threads=self._threads,
            )
        return self._store

    def _reopen(self) -> None:
        self.reopened += 1
        if self._store is not None:
            try:
                self._store.close()
            except Exception:  # noqa: BLE001 - a broken connection is replaced anyway
                pass
            self._store = None
        if self._case != ":memory:":
            for leftover in (self._case, self._case + ".wal"):
                Path(leftover).unlink(missing_ok=True)

    def _empty(self) -> None:
        try:
            con = self.store.con
            for kind, name in con.execute(_RESET).fetchall():
                con.execute(f'DROP {kind} IF EXISTS "{name}"')
        except Exception:  # noqa: BLE001 - whatever the state, a new case replaces it
            self._reopen()

    def _write(self, fixture: str, data: bytes) -> Path:
        path = self._dir / Path(fixture).name
        path.write_bytes(data)
        return path

    def run(self, fmt: str, fixture: str, data: bytes, on_error: str) -> Outcome:
        """What :func:`run` gives for the same input, in the kept case."""
        return self._run(fmt, fixture, self._write(fixture, data), on_error)

    def run_both(self, fmt: str, fixture: str, data: bytes) -> tuple[Outcome, Outcome]:
        """The input under each of :data:`MODES`, from the one file written."""
        path = self._write(fixture, data)
        first, second = (self._run(fmt, fixture, path, on_error) for on_error in MODES)
        return first, second

    def _run(self, fmt: str, fixture: str, path: Path, on_error: str) -> Outcome:
        try:
            store = self.store
        except ConcertedError as exc:
            return Outcome("refused", str(exc)[:200])
        except Exception as exc:  # noqa: BLE001
            return Outcome("crash", "".join(traceback.format_exception(exc))[-2000:])
        outcome = _ingest(store, path, fmt, fixture, on_error)
        if outcome.kind == "crash":
            self._reopen()
        else:
            self._empty()
        return outcome

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Runner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
