"""The readers adapters share: a file loaded into DuckDB as it is, every record with
its record number ``_row``, and every record that could not be read returned as a
:class:`~concerted.adapters.base.Reject` (never skipped, never failing the file where
the rest can be read).

- :class:`CsvScan`: delimited text with a header line, every field as text; broken
  lines go to DuckDB's rejects table, and a record holding a carriage return that
  ends no line is set aside whole (:class:`StrayReturns`).
- :class:`JsonScan`: JSON lines, read line by line, or an array of objects in a
  document; an array that does not parse is split into its elements
  (:func:`~concerted.adapters.filebytes.array_elements`) and read as lines, so a
  broken record is its own error.
- :class:`ParquetScan`: a Parquet file; its columns keep their types.

:func:`scan_by_extension` picks one from a file's name; :func:`read_failure` turns what
DuckDB raised while reading into the message that names the file. What they read of
a file's bytes themselves is :mod:`concerted.adapters.filebytes`.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import duckdb

from concerted.adapters.base import AdapterOptions, Reject, Scan
from concerted.adapters.filebytes import (
    MARK,
    MAX_DOCUMENT_BYTES,
    MAX_LINE_BYTES,
    array_elements,
    check_header,
    first_non_utf8,
    is_gzip,
    lone_carriage_return,
    lone_carriage_returns,
    marked_copy,
)
from concerted.errors import ConfigError, SchemaError
from concerted.paths import literal_path, remove
from concerted.schema import quote_ident, sql_literal

__all__ = [
    "CsvScan",
    "JsonScan",
    "ParquetScan",
    "StrayReturns",
    "drop_scan",
    "read_failure",
    "scan_by_extension",
    "scanned_columns",
]


#: What DuckDB's CSV reader says where a carriage return that ends no line stops it:
#: its sniffer cannot tell the dialect (a return in the lines it samples), or its parser
#: stops (one beyond them).
_STRAY_SIGNS = ("Error when sniffing file", "state machine reached an invalid state")


class StrayReturns(SchemaError):
    """A CSV file DuckDB could not read for carriage returns that end no line (the first
    at ``line`` and byte ``offset``). Raised from inside the file's transaction, which
    the failed read aborted; :func:`concerted.ingest.ingest_file` then reads the file
    again, with those returns marked (:attr:`CsvScan.mark_returns`), and sets aside
    only the records that hold one.

    >>> print(StrayReturns("r.csv", 3, 12, sniffing=True).reason)
    the CSV dialect cannot be told: line 3 holds a carriage return (byte 12) that ends \
no line; remove it, or quote the field it is in
    """

    def __init__(self, file: str | Path, line: int, offset: int, *, sniffing: bool) -> None:
        cause = "the CSV dialect cannot be told" if sniffing else "the file cannot be read"
        super().__init__(
            file,
            f"{cause}: line {line:,} holds a carriage return (byte {offset:,}) that ends "
            "no line; remove it, or quote the field it is in",
            line=line,
        )


def read_failure(path: Path, exc: duckdb.Error) -> Exception:
    """The error to raise for ``exc``, raised while reading ``path``: a
    :class:`SchemaError` naming the file, or ``exc`` itself when memory ran out."""
    return _duckdb_failure(path, exc)


def _duckdb_failure(path: Path, exc: duckdb.Error) -> Exception:
    if isinstance(exc, duckdb.OutOfMemoryException):
        return exc  # not the file's fault: the caller says what to do about memory
    text = str(exc)
    message = text.split("\n")[0]
    longest = re.search(r"Actual Size:\s*(\d+)", text)
    if "Maximum line size" in text and longest:
        # DuckDB's line number for it is not the file's: none is given.
        return SchemaError(
            path,
            f"a line of {int(longest.group(1)):,} bytes is longer than the "
            f"{MAX_LINE_BYTES // 2**20} MiB read in one line",
        )
    if any(sign in text for sign in _STRAY_SIGNS):
        stray = lone_carriage_return(path)
        if stray is not None:
            return StrayReturns(path, *stray, sniffing=_STRAY_SIGNS[0] in text)
    if _STRAY_SIGNS[0] in text:
        return SchemaError(
            path, "cannot be read: its CSV dialect (delimiter, quotes) cannot be told"
        )
    return SchemaError(path, f"cannot be read: {message}")


_SCAN_IDS = iter(range(1, 1 << 62))
# DuckDB evaluates both sides of AND, and json_type() fails on malformed JSON.
_IS_OBJECT = "CASE WHEN json_valid(line) THEN json_type(line) = 'OBJECT' ELSE false END"


def _renumber(
    con: duckdb.DuckDBPyConnection, table: str, rejects: str, *, header_lines: int
) -> None:
    """Put the rows of ``table`` that came after lines the CSV reader rejected (into
    ``rejects``) back at their record number: the reader numbered them as if those
    lines were not there."""
    if con.execute(f"SELECT 1 FROM {rejects} LIMIT 1").fetchone() is None:
        return
    con.execute(
        f"""
        UPDATE {table} SET _row = _row + (
            SELECT count(*) FROM (
                SELECT line - {header_lines} - row_number() OVER (ORDER BY line) AS before
                FROM (SELECT DISTINCT line FROM {rejects})
            ) WHERE before < {table}._row
        )
        """
    )


def _broken_lines(
    con: duckdb.DuckDBPyConnection,
    rejects: str,
    *,
    header_lines: int,
    columns: bool,
    lines: bool,
) -> list[Reject]:
    """The lines the CSV reader rejected (into ``rejects``), one :class:`Reject` each,
    named by record number; with ``columns`` by the first column it failed on, with
    ``lines`` by the line too."""
    rows = con.execute(
        f"""
        SELECT line, arg_min(column_name, column_idx), arg_min(error_type, column_idx),
               arg_min(error_message, column_idx), arg_min(csv_line, column_idx)
        FROM {rejects} GROUP BY line ORDER BY line
        """
    ).fetchall()
    return [
        Reject(
            row=int(line) - header_lines,
            line=int(line) if lines else None,
            column=name if columns else None,
            reason=f"broken line ({str(kind).lower()}: {message})",
            raw=raw,
        )
        for line, name, kind, message, raw in rows
    ]


@dataclass
class CsvScan:
    """A delimited text file with a header line; every field read as text.

    Lines that do not split into the header's columns go to DuckDB's rejects table and
    come back as :class:`Reject`; the record numbers of the other rows are corrected
    for them, so that row N is the file's N-th record. A carriage return that ends no
    line is read as DuckDB cannot: where such returns kept it from telling the dialect
    or from parsing (:class:`StrayReturns`, read again), or where it took one for a
    line's end (broken lines in a file that holds one), the file is read with each
    such return marked (:data:`MARK`), and every record holding one is a
    :class:`Reject`: set aside whole, not as the two halves the return would cut it
    into, and the records after it keep their numbers.
    """

    path: Path
    delimiter: str | None = None
    #: Read the copy with the stray carriage returns marked (after :class:`StrayReturns`).
    mark_returns: bool = False
    _rejects: str = field(default="", init=False)
    _rejects_scan: str = field(default="", init=False)
    _made: str = field(default="", init=False)
    #: The records set aside for a stray carriage return.
    _stray: list[Reject] = field(default_factory=list, init=False)

    def materialize(self, con: duckdb.DuckDBPyConnection, into: str) -> None:
        if self.path.stat().st_size == 0:
            raise SchemaError(self.path, "empty file: not even a header line")
        check_header(self.path)
        n = next(_SCAN_IDS)
        self._rejects = f"concerted_rejects_{n}"
        self._rejects_scan = f"concerted_rejects_scan_{n}"
        if self.mark_returns:
            returns = list(lone_carriage_returns(self.path))
            if not returns:
                raise SchemaError(self.path, "no carriage return that ends no line was found")
            self._read_marked(con, into, returns)
            return
        name, self._made = literal_path(self.path)
        try:
            self._read(con, name, into)
        except duckdb.Error as exc:
            remove(self._made)
            raise _duckdb_failure(self.path, exc) from exc
        broken = con.execute(f"SELECT 1 FROM {self._rejects} LIMIT 1").fetchone()
        returns = list(lone_carriage_returns(self.path)) if broken else []
        if returns:
            # The reader took a stray return for a line's end: the record it cut in two
            # came back as two broken lines, and every record after it one too far on.
            for table in (into, self._rejects, self._rejects_scan):
                con.execute(f"DROP TABLE IF EXISTS {table}")
            self.mark_returns = True
            self._read_marked(con, into, returns)
            return
        _renumber(con, into, self._rejects, header_lines=1)

    def _read(self, con: duckdb.DuckDBPyConnection, name: str, into: str) -> None:
        options = [
            "header = true",
            "all_varchar = true",
            f"max_line_size = {MAX_LINE_BYTES}",
            f"buffer_size = {MAX_LINE_BYTES}",
            "store_rejects = true",
            f"rejects_table = '{self._rejects}'",
            f"rejects_scan = '{self._rejects_scan}'",
        ]
        if self.delimiter is not None:
            options.append(f"delim = {sql_literal(self.delimiter)}")
        reader = f"read_csv({sql_literal(name)}, {', '.join(options)})"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {into} AS "
            f"SELECT row_number() OVER () AS _row, * FROM {reader}"
        )

    def _read_marked(
        self, con: duckdb.DuckDBPyConnection, into: str, returns: Sequence[tuple[int, int]]
    ) -> None:
        """Read the file with its stray carriage ``returns`` (line, byte) marked, and set
        aside each record that holds one. The file is refused as before
        (:class:`StrayReturns`) where the marked copy cannot be read either, or its marks
        are not the returns one for one (a return in the header, say)."""
        refusal = StrayReturns(self.path, *returns[0], sniffing=False)
        made = tempfile.mkdtemp(prefix="concerted-read-")
        try:
            self._read(con, str(marked_copy(self.path, returns, made)), into)
        except duckdb.Error as exc:
            raise refusal from exc
        finally:
            remove(made)
        _renumber(con, into, self._rejects, header_lines=1)
        columns = [c for c in scanned_columns(con, self.path, into) if c != "_row"]
        mark = sql_literal(MARK)
        counted = " + ".join(
            f"coalesce(length({quote_ident(c)}) - length(replace({quote_ident(c)}, {mark}, '')), 0)"
            for c in columns
        )
        first = " ".join(
            f"WHEN contains({quote_ident(c)}, {mark}) THEN {sql_literal(c)}" for c in columns
        )
        fields = ", ".join(f"{quote_ident(c)} := {quote_ident(c)}" for c in columns)
        rows = con.execute(
            f"""SELECT _row, {counted or "0"} AS marks, CASE {first or "WHEN false THEN ''"} END,
                       to_json(struct_pack({fields or "_row := _row"}))::VARCHAR
                FROM {into} WHERE {counted or "0"} > 0 ORDER BY _row"""
        ).fetchall()
        broken = con.execute(
            f"""SELECT line, length(any_value(csv_line))
                       - length(replace(any_value(csv_line), {mark}, ''))
                FROM {self._rejects} GROUP BY line ORDER BY line"""
        ).fetchall()
        # The marks in file order: a broken line's record is its line less the header.
        found = sorted(
            [(int(r), int(m), col, raw) for r, m, col, raw in rows]
            + [(int(line) - 1, int(m), None, None) for line, m in broken if m],
            key=lambda f: f[0],
        )
        if sum(m for _, m, _, _ in found) != len(returns):
            raise refusal
        at = 0
        for row, marks, column, raw in found:
            line, offset = returns[at]
            at += marks
            if raw is None:
                continue  # DuckDB's reject of the line says it (rejects)
            self._stray.append(
                Reject(
                    row=row,
                    line=line,
                    column=column,
                    reason=_stray_reason(offset),
                    raw=raw.replace(MARK, "\\r"),
                )
            )
        if self._stray:
            con.execute(
                f"DELETE FROM {into} WHERE _row IN ({', '.join(str(r.row) for r in self._stray)})"
            )

    def rejects(self, con: duckdb.DuckDBPyConnection) -> list[Reject]:
        broken = _broken_lines(con, self._rejects, header_lines=1, columns=True, lines=True)
        if self.mark_returns:
            # A broken line that holds a marked return: the return is the file's.
            broken = [
                r
                if r.raw is None or MARK not in r.raw
                else replace(
                    r,
                    reason=r.reason + "; it holds a carriage return that ends no line",
                    raw=r.raw.replace(MARK, "\r"),
                )
                for r in broken
            ]
        return sorted([*broken, *self._stray], key=lambda r: (r.row or 0, r.line or 0))

    def release(self, con: duckdb.DuckDBPyConnection) -> None:
        remove(self._made)
        for table in (self._rejects, self._rejects_scan):
            if table:
                con.execute(f"DROP TABLE IF EXISTS {table}")


def _stray_reason(offset: int) -> str:
    """Why a record holding a stray carriage return (at byte ``offset``) is set aside.

    >>> _stray_reason(1234)
    'a carriage return (byte 1,234) that ends no line: remove it, or quote the field it is in'
    """
    return (
        f"a carriage return (byte {offset:,}) that ends no line: "
        "remove it, or quote the field it is in"
    )


@dataclass
class JsonScan:
    """JSON records: one object a line (JSONL), or an array of objects in one document.

    ``records`` is a JSON path to the array in a document (``$[*]`` for a top-level
    array, ``$.result.posts[*]`` for CrowdTangle's API); None reads JSON lines. Nested
    objects become dotted columns (``account.name``), up to three levels; arrays stay
    JSON text, which the contract's list type parses. A line that is not a JSON object
    is a :class:`Reject`, never skipped; blank lines are no records.
    """

    path: Path
    records: str | None = None
    depth: int = 3
    _lines: str = field(default="", init=False)
    _rejects: str = field(default="", init=False)
    _rejects_scan: str = field(default="", init=False)
    _made: str = field(default="", init=False)
    #: The JSON lines file a broken array was split into (see :func:`array_elements`).
    _split: str = field(default="", init=False)

    def _load_lines(self, con: duckdb.DuckDBPyConnection) -> None:
        n = next(_SCAN_IDS)
        self._lines = f"concerted_lines_{n}"
        name, self._made = literal_path(self.path)
        if self.records is None:
            self._read_lines(con, name, n)
            return
        path = sql_literal(name)
        if self.records == "$[*]":
            # A top-level array streams element by element.
            source = (
                f"SELECT row_number() OVER () AS _row, CAST(json AS VARCHAR) AS line "
                f"FROM read_json_objects({path}, format = 'array')"
            )
        else:
            # An array inside a document: the document must fit in memory.
            source = (
                f"SELECT row_number() OVER () AS _row, CAST(record AS VARCHAR) AS line FROM ("
                f"SELECT unnest(json_extract(json, {sql_literal(self.records)})) AS record "
                f"FROM read_json_objects({path}, format = 'unstructured', "
                f"maximum_object_size = {MAX_DOCUMENT_BYTES}))"
            )
        if self.records == "$[*]" and not _array_reads(con, name, self.path):
            # A broken array (a value cut off, a stray byte or comma): each element read
            # as a line of its own, so that one broken element is that record's error,
            # not the whole file's. (Tried on a cursor: a failed read on ``con`` would
            # abort the case's transaction.)
            elements = array_elements(self.path)
            if elements is not None:
                handle, split = tempfile.mkstemp(prefix="concerted-elements-", suffix=".jsonl")
                self._split = split
                with os.fdopen(handle, "wb") as f:
                    f.writelines(element + b"\n" for element in elements)
                self._read_lines(con, split, n)
                return
        con.execute(f"CREATE OR REPLACE TEMP TABLE {self._lines} AS {source}")

    def _read_lines(self, con: duckdb.DuckDBPyConnection, name: str, n: int) -> None:
        # JSON lines are read as lines of text, as long as a CSV's may be; a line the
        # reader cannot take (bytes that are not UTF-8) goes to its rejects table, to
        # be set aside as that line, not to fail the whole file.
        self._rejects = f"concerted_line_rejects_{n}"
        self._rejects_scan = f"concerted_line_rejects_scan_{n}"
        source = (
            f"SELECT row_number() OVER () AS _row, line FROM read_csv({sql_literal(name)}, "
            "columns = {'line': 'VARCHAR'}, header = false, delim = chr(0), quote = '', "
            "escape = '', auto_detect = false, strict_mode = false, "
            f"max_line_size = {MAX_LINE_BYTES}, buffer_size = {MAX_LINE_BYTES}, "
            f"store_rejects = true, rejects_table = '{self._rejects}', "
            f"rejects_scan = '{self._rejects_scan}')"
        )
        con.execute(f"CREATE OR REPLACE TEMP TABLE {self._lines} AS {source}")
        _renumber(con, self._lines, self._rejects, header_lines=0)

    def _paths(self, con: duckdb.DuckDBPyConnection) -> list[list[str]]:
        """The key paths present, nested objects expanded."""
        found: list[list[str]] = []
        frontier: list[list[str]] = [[]]
        for _ in range(self.depth):
            next_frontier: list[list[str]] = []
            for prefix in frontier:
                pointer = _json_path(prefix)
                rows = con.execute(
                    f"""
                    WITH o AS (
                        SELECT _row, json_extract(line, {sql_literal(pointer)}) AS j
                        FROM {self._lines}
                        WHERE {_IS_OBJECT}
                    )
                    SELECT k, bool_or(json_type(json_extract(j, '$."' || k || '"')) = 'OBJECT')
                    FROM (
                        SELECT _row, j, unnest(json_keys(j)) AS k FROM o
                        WHERE json_type(j) = 'OBJECT'
                    )
                    GROUP BY k ORDER BY min(_row), k
                    """
                ).fetchall()
                for key, nested in rows:
                    path = [*prefix, str(key)]
                    # An object is a column (its JSON text) and so is each of its keys.
                    found.append(path)
                    if nested and len(path) < self.depth:
                        next_frontier.append(path)
            frontier = next_frontier
            if not frontier:
                break
        return found

    def materialize(self, con: duckdb.DuckDBPyConnection, into: str) -> None:
        try:
            self._load_lines(con)
            paths = self._paths(con)
        except duckdb.Error as exc:
            raise _duckdb_failure(self.path, exc) from exc
        except UnicodeDecodeError as exc:
            # The JSON reader quoted the file's bytes in its message, which then could
            # not be read as text: the bytes are not UTF-8. A JSON document is read
            # whole (JSON lines set such a line aside instead).
            at = first_non_utf8(self.path)
            where = "" if at is None else f" (the first at byte {at:,})"
            raise SchemaError(
                self.path, f"cannot be read: it holds bytes that are not UTF-8 text{where}"
            ) from exc
        if not paths:
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {into} AS SELECT _row FROM {self._lines} WHERE false"
            )
            return
        pointers = ", ".join(sql_literal(_json_path(p)) for p in paths)
        columns = ", ".join(
            f"v[{i}] AS {quote_ident('.'.join(p))}" for i, p in enumerate(paths, start=1)
        )
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {into} AS
            SELECT _row, {columns} FROM (
                SELECT _row, json_extract_string(line, [{pointers}]) AS v FROM {self._lines}
                WHERE {_IS_OBJECT}
            )
            """
        )

    def rejects(self, con: duckdb.DuckDBPyConnection) -> list[Reject]:
        rows = con.execute(
            f"""
            SELECT _row, line, json_valid(line) FROM {self._lines}
            WHERE trim(line) <> ''
              AND NOT ({_IS_OBJECT})
            ORDER BY _row
            """
        ).fetchall()
        found = [
            Reject(
                row=int(row),
                line=int(row) if self.records is None else None,
                column=None,
                reason="not a JSON object" if valid else "broken JSON",
                raw=line,
            )
            for row, line, valid in rows
        ]
        if self._rejects:
            # A split array's lines are its elements, not the file's lines.
            found += _broken_lines(
                con, self._rejects, header_lines=0, columns=False, lines=self.records is None
            )
            found.sort(key=lambda r: r.row or 0)
        return found

    def release(self, con: duckdb.DuckDBPyConnection) -> None:
        remove(self._made)
        if self._split:
            Path(self._split).unlink(missing_ok=True)
        for table in (self._lines, self._rejects, self._rejects_scan):
            if table:
                con.execute(f"DROP TABLE IF EXISTS {table}")


def _array_reads(con: duckdb.DuckDBPyConnection, name: str, path: Path) -> bool:
    """Whether DuckDB reads file ``name`` (``path``) as a JSON array, tried on a cursor
    of ``con`` (a connection of its own to the same database, whose failed read leaves
    ``con``'s transaction as it was); True for a file too long to be split (it is read
    as before, and fails as before)."""
    if path.stat().st_size > MAX_DOCUMENT_BYTES:
        return True
    probe = con.cursor()
    try:
        probe.execute(
            f"SELECT count(*) FROM read_json_objects({sql_literal(name)}, format = 'array')"
        ).fetchone()
        return True
    except duckdb.OutOfMemoryException:
        return True
    except (duckdb.Error, UnicodeDecodeError):
        return False
    finally:
        probe.close()


def _json_path(keys: Sequence[str]) -> str:
    return "$" + "".join('."' + k.replace('"', '\\"') + '"' for k in keys)


@dataclass
class ParquetScan:
    """A Parquet file; its columns keep their types.

    A file whose name reads as itself is scanned through a view: Parquet is typed and
    columnar already, and the rows that typing reads once need no copy beside the file
    (a copy cost a tenth of an ingest's memory and time). A name holding pattern
    characters is read through a link that :meth:`release` removes, so its rows are
    copied into a table first.
    """

    path: Path
    #: Whether the scan is a view, read again by every query over it (a broken page
    #: then fails those queries: :func:`read_failure` names the file).
    lazy: bool = field(default=False, init=False)
    _made: str = field(default="", init=False)

    def materialize(self, con: duckdb.DuckDBPyConnection, into: str) -> None:
        name, self._made = literal_path(self.path)
        self.lazy = not self._made
        kind = "VIEW" if self.lazy else "TABLE"
        try:
            con.execute(
                f"CREATE OR REPLACE TEMP {kind} {into} AS "
                f"SELECT file_row_number + 1 AS _row, * EXCLUDE (file_row_number) "
                f"FROM read_parquet({sql_literal(name)}, file_row_number = true)"
            )
            if kind == "VIEW":
                # A view binds lazily: a file that cannot be read fails here, as a table did.
                con.execute(f"SELECT count(*) FROM {into}").fetchone()
        except duckdb.Error as exc:
            raise _duckdb_failure(self.path, exc) from exc

    def rejects(self, con: duckdb.DuckDBPyConnection) -> list[Reject]:
        return []

    def release(self, con: duckdb.DuckDBPyConnection) -> None:
        remove(self._made)


def scanned_columns(
    con: duckdb.DuckDBPyConnection, path: Path, name: str = "scan"
) -> dict[str, str]:
    """The columns of what :meth:`Scan.materialize` made as ``name``, each with its
    DuckDB type; a :class:`SchemaError` for a column name that no SQL can hold (a NUL
    character), whatever the file's header says.

    >>> con = duckdb.connect()
    >>> _ = con.execute('CREATE TABLE scan ("a b" INTEGER, "c""d" VARCHAR)')
    >>> scanned_columns(con, Path("f.csv"))
    {'a b': 'INTEGER', 'c"d': 'VARCHAR'}
    """
    columns = {str(c): str(kind) for c, kind, *_ in con.sql(f"DESCRIBE {name}").fetchall()}
    # The file's own columns, numbered as its header has them (``_row`` is the scan's).
    for number, column in enumerate((c for c in columns if c != "_row"), start=1):
        if "\x00" in column:
            shown = column.replace("\x00", "\\0")
            raise SchemaError(
                path,
                f"column {number}'s name '{shown}' holds a NUL character; rename it in the "
                "file's header",
                column=shown,
            )
    return columns


def drop_scan(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop what :meth:`Scan.materialize` made as ``name``, a table or a view."""
    found = con.execute(
        "SELECT table_type FROM information_schema.tables "
        "WHERE table_name = ? AND table_schema = 'main' AND table_catalog = 'temp'",
        [name],
    ).fetchone()
    if found is not None:
        kind = "VIEW" if found[0] == "VIEW" else "TABLE"
        con.execute(f"DROP {kind} {quote_ident(name)}")


def scan_by_extension(path: Path, options: AdapterOptions) -> Scan:
    """The scan a file's name asks for: ``.csv``, ``.tsv``, ``.jsonl``/``.ndjson``,
    ``.json`` (an array of objects) or ``.parquet``; ``.gz`` after any text format."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
        if not is_gzip(path):
            raise SchemaError(path, "named .gz but not gzip-compressed")
    ext = suffixes[-1] if suffixes else ""
    if ext == ".parquet" or ext == ".pq":
        return ParquetScan(path)
    if ext in (".jsonl", ".ndjson"):
        return JsonScan(path)
    if ext == ".json":
        return JsonScan(path, records="$[*]")
    if ext == ".tsv" or ext == ".tab":
        return CsvScan(path, delimiter=options.delimiter or "\t")
    if ext in (".csv", ".txt", ""):
        return CsvScan(path, delimiter=options.delimiter)
    raise ConfigError(
        f"{path}: cannot tell the file type from {ext!r}; use .csv, .tsv, .jsonl, .json or .parquet"
    )
