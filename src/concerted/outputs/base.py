"""What an output reads and what it writes.

An output is built from a finished result directory alone, so that it can be rebuilt
from the result without the case: it reads ``run.json`` and the Parquet tables that
``concerted analyze`` wrote (:data:`TABLES`) and writes its files (its ``FILES``)
beside them. It says so by being a module that meets :class:`Output`, as
:mod:`concerted.outputs.page` and :mod:`concerted.outputs.summary` do.

The exports (:mod:`concerted.outputs.exports`) are the one part written from the case
instead: they copy the accounts, posts and activity that the findings point at, so that
the other outputs need not open the case.

A result directory records the layout it was written in as ``result_format`` in
``run.json``. Outputs read :data:`RESULT_FORMAT` only, and refuse any other with a
message that names both: a result of another version is rebuilt by running
``concerted analyze`` again, not read by guesswork.

>>> RESULT_FORMAT
1
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import duckdb

from concerted import paths
from concerted.errors import ConfigError
from concerted.schema import sql_literal
from concerted.store import default_memory_limit

__all__ = [
    "REPORT_FILE",
    "RESULT_FORMAT",
    "RUN_FILE",
    "SUMMARY_FILE",
    "TABLES",
    "Output",
    "Result",
    "read_run",
]

#: The layout of a result directory, written to ``run.json`` as ``result_format``.
#: Raise it whenever a file or column of the result changes meaning or goes away.
RESULT_FORMAT = 1

RUN_FILE = "run.json"

#: What the page and summary outputs write (:mod:`concerted.outputs.page`,
#: :mod:`concerted.outputs.summary`).
REPORT_FILE = "report.html"
SUMMARY_FILE = "summary.json"

#: The tables every result directory holds, each ``NAME.parquet``.
TABLES: tuple[str, ...] = (
    "campaigns",
    "members",
    "clusters",
    "edges",
    "events",
    "signals",
    "targets",
    "report_scores",
    "accounts",
    "posts",
    "timeline",
    "protected",
)


class Output(Protocol):
    """A module that builds files from a finished result directory.

    ``FILES`` names what it writes; ``write`` reads ``result_dir`` (through
    :class:`Result`) and writes them, to ``out`` when given, else beside the result,
    and returns the path of its main file.
    """

    FILES: tuple[str, ...]

    def write(self, result_dir: str | Path, /, *, out: str | Path | None = None) -> Path: ...


def read_run(directory: Path) -> dict[str, Any]:
    """The run record of a result directory, refused unless it is of
    :data:`RESULT_FORMAT`.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     _ = (Path(d) / RUN_FILE).write_text('{"command": "analyze"}')
    ...     read_run(Path(d))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    concerted.errors.ConfigError: ...run.json records no result_format; this concerted reads...
    """
    path = directory / RUN_FILE
    if not path.is_file():
        raise ConfigError(
            f"{directory} holds no analysis result (no {RUN_FILE}); "
            "run concerted analyze CASE --out DIR first"
        )
    try:
        run = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} cannot be read: {exc}") from exc
    if not isinstance(run, dict):
        raise ConfigError(f"{path} is not a run record (a JSON object)")
    found = run.get("result_format")
    if found != RESULT_FORMAT:
        has = "records no result_format" if found is None else f"is result format {found!r}"
        raise ConfigError(
            f"{path} {has}; this concerted reads result format {RESULT_FORMAT}: "
            "run concerted analyze again"
        )
    return run


class Result:
    """A finished result directory: its run record and its tables as DuckDB views.

    Opening it checks the format (:func:`read_run`) and that every table of
    :data:`TABLES` is there. Its DuckDB database holds ``memory_limit`` at most
    (default: :func:`~concerted.store.default_memory_limit`).
    """

    def __init__(self, directory: str | Path, *, memory_limit: str | None = None) -> None:
        self.directory = Path(directory)
        self.run = read_run(self.directory)
        missing = [t for t in TABLES if not (self.directory / f"{t}.parquet").is_file()]
        if missing:
            raise ConfigError(
                f"{self.directory} is an incomplete result: "
                f"{', '.join(f'{t}.parquet' for t in missing)} missing"
            )
        limit = memory_limit or default_memory_limit()
        self.con = duckdb.connect(config={"memory_limit": limit})
        self.con.execute("SET TimeZone = 'UTC'")
        try:
            for name in TABLES:
                path = sql_literal(paths.readable(self.directory / f"{name}.parquet"))
                self.con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({path})")
        except duckdb.Error as exc:
            self.con.close()
            raise ConfigError(f"{self.directory}: {name}.parquet cannot be read: {exc}") from exc

    def rows(self, query: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """The rows of ``query`` over the result's views, as dicts."""
        cursor = self.con.execute(query, list(params))
        names = [d[0] for d in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def value(self, query: str, params: Sequence[Any] = ()) -> Any:
        """The first value of ``query``'s first row, or None."""
        row = self.con.execute(query, list(params)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Result:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
