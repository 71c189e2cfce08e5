"""Report logs: who flagged whom or what, when, and what came of it.

A platform's trust-and-safety export, a moderation tool's log or a hand-kept list of
reports, as CSV, TSV, JSON lines, a JSON array or Parquet (told by the file's
extension, as for the generic format). Each record is one report and fills one row of
the ``reports`` contract:

===============  ===========================================================
column           meaning
===============  ===========================================================
``report_id``    the report's id (required; a report seen twice is stored once)
``reporter_id``  the account that filed it (required)
``target_id``    the account, post, page or group reported (required)
``target_kind``  ``account``, ``post``, ``page`` or ``group`` (default account)
``reason``       the reason code chosen
``ts``           when it was filed (required; an offset or ``Z``, epoch seconds,
                 or ``--timezone`` for times without a zone)
``channel``      how it arrived: web, app, direct link, api, ...
``client``       user agent or tool fingerprint
``text``         free text the reporter wrote
``outcome``      ``upheld``, ``rejected``, or empty while pending
``platform``     where it was filed; ``--platform`` fills it when the file has
                 no such column
===============  ===========================================================

Columns named otherwise are renamed with ``--map`` (``--map reporter_id=flagger``);
the file's other columns are kept in ``extra`` (nested JSON objects as dotted keys).
Each report becomes a ``report`` action of its reporter on its target.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from concerted.adapters.base import AdapterOptions, RawTable, Scan, contract_layout
from concerted.adapters.scans import scan_by_extension
from concerted.errors import ConfigError

__all__ = ["Reports"]


class Reports:
    """Report logs in the ``reports`` contract: the generic format with its table fixed."""

    name: ClassVar[str] = "reports"
    summary: ClassVar[str] = (
        "report logs (report_id, reporter_id, target_id, target_kind, reason, ts, channel, "
        "client, text, outcome, platform) as CSV, TSV, JSONL, JSON or Parquet; --map renames"
    )

    def scan(self, path: Path, options: AdapterOptions) -> Scan:
        return scan_by_extension(path, options)

    def tables(
        self, columns: Mapping[str, str], path: Path, options: AdapterOptions
    ) -> list[RawTable]:
        if options.table not in (None, "reports"):
            raise ConfigError(
                f"the {self.name} format fills the reports table only, not {options.table!r}; "
                "use --format generic for other tables"
            )
        return [contract_layout(columns, path, options, "reports")]
