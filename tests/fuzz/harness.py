"""One fuzzing run: ingest a (mutated) file and judge what happened.

A run passes when ingest either succeeds with consistent counts, or fails with a
:class:`~concerted.errors.ConcertedError` (a message naming the file, and where it can
the row and the column). Anything else (a traceback of another exception) is a crash;
counts that do not add up are a mismatch.
"""

from __future__ import annotations

import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

from concerted.errors import ConcertedError
from concerted.ingest import IngestOptions, SourceReport, ingest
from concerted.store import Store

# Adapters whose every file row makes at most one row of the file's own table.
_ONE_ROW_EACH = {"generic", "reports", "qut", "twitter-io", "crowdtangle"}


@dataclass(frozen=True)
class Outcome:
    """What one run did: ``ok``, ``refused`` (a ConcertedError), ``crash`` or
    ``mismatch``, with the detail."""

    kind: str
    detail: str = ""


#: What a fixture is read with beyond its format, as a user would read it (``--map``,
#: ``--platform``): without it every mutation of the file would be refused for the
#: one thing the file does not say.
MAPPINGS: dict[str, dict[str, str]] = {"generic/posts.csv": {"account_id": "author"}}
PLATFORMS: dict[str, str] = {"reports/reports.jsonl": "facebook"}


def _table(fmt: str, fixture: str) -> str | None:
    if fmt != "generic":
        return None
    return Path(fixture).name.split(".")[0].removesuffix("_broken")


def _judge(store: Store, report: SourceReport, fmt: str) -> Outcome:
    row = store.con.execute(
        'SELECT count(DISTINCT "row") FROM quarantine WHERE source_id = ?', [report_id(store)]
    ).fetchone()
    quarantined = int(row[0]) if row else 0
    if quarantined != report.rows_set_aside:
        return Outcome(
            "mismatch", f"{quarantined} rows in quarantine, {report.rows_set_aside} set aside"
        )
    if report.rows_duplicate + report.rows_set_aside > report.rows_read:
        return Outcome("mismatch", f"more rows duplicate or set aside than read: {report}")
    if fmt in _ONE_ROW_EACH and report.rows_added:
        own = next(iter(report.rows_added.values()))
        if own + report.rows_duplicate + report.rows_set_aside != report.rows_read:
            return Outcome(
                "mismatch",
                f"{report.rows_read} read != {own} added + {report.rows_duplicate} duplicate "
                f"+ {report.rows_set_aside} set aside",
            )
    return Outcome("ok")


def report_id(store: Store) -> int:
    row = store.con.execute("SELECT max(source_id) FROM sources").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def run(fmt: str, fixture: str, data: bytes, on_error: str) -> Outcome:
    """Ingest ``data`` (written under the fixture's name) with ``on_error``."""
    from concerted.adapters.base import AdapterOptions

    name = Path(fixture).name
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        options = IngestOptions(
            format=fmt,
            adapter=AdapterOptions(
                table=_table(fmt, fixture),
                mapping=MAPPINGS.get(fixture, {}),
                platform=PLATFORMS.get(fixture),
            ),
            on_error=on_error,  # type: ignore[arg-type]
        )
        try:
            with Store(Path(tmp) / "case.duckdb", memory_limit="1GB") as store:
                (report,) = ingest(store, [path], options)
                return _judge(store, report, fmt)
        except ConcertedError as exc:
            return Outcome("refused", str(exc)[:200])
        except Exception as exc:  # noqa: BLE001 - a crash is what the fuzzer looks for
            return Outcome("crash", "".join(traceback.format_exception(exc))[-2000:])
