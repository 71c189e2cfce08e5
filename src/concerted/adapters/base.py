"""What an adapter is, and the helpers that lay a scanned file out as contract rows.

An adapter turns one file of some format into rows of the data contracts
(:mod:`concerted.schema`). It does so in two steps, both SQL that DuckDB runs, so
that files of any size stream through the database rather than through Python:

1. :meth:`Adapter.scan` says how to read the file: a :class:`Scan` (CSV, JSON lines,
   JSON document or Parquet: the readers are :mod:`concerted.adapters.scans`) that
   loads every record with its record number ``_row`` and reports the records it
   could not read (a broken line) as :class:`Reject`\\ s;
2. :meth:`Adapter.tables` maps the scanned columns onto contract tables: one
   :class:`RawTable` per table, a ``SELECT`` over the relation ``scan`` with
   contract-named columns. Typing and checking them is :func:`concerted.schema.validate`'s
   job, not the adapter's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

import duckdb

from concerted.errors import ConfigError
from concerted.schema import CONTRACTS, missing_column, quote_ident, sql_literal

__all__ = [
    "Adapter",
    "AdapterOptions",
    "RawTable",
    "Reject",
    "Scan",
    "check_table",
    "contract_layout",
    "select_columns",
    "unmapped_columns",
]


@dataclass(frozen=True, kw_only=True)
class AdapterOptions:
    """What the user said about a file, beyond its path.

    ``mapping`` maps contract column names to the file's column names
    (``--map account_id=user``); ``table`` picks the contract table for adapters that
    can fill any of them; ``platform`` fills ``platform`` where the file does not say;
    ``settings`` holds options of one adapter (``--set key=value``), documented by it.
    """

    table: str | None = None
    mapping: Mapping[str, str] = field(default_factory=dict)
    platform: str | None = None
    delimiter: str | None = None
    settings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Reject:
    """A record the reader could not read at all (the row is set aside whole)."""

    row: int | None
    line: int | None
    column: str | None
    reason: str
    raw: str | None


@dataclass(frozen=True, kw_only=True)
class RawTable:
    """Rows for one contract table: a SELECT over ``scan`` with ``_row``.

    ``timezone`` is the zone the format itself defines for times written without an
    offset (the Twitter archive's are UTC); the user's ``--timezone`` wins over it.
    """

    table: str
    sql: str
    timezone: str | None = None
    mapping: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    #: The column whose account's platform fills ``platform`` (the file has none).
    platform_from: str | None = None


class Scan(Protocol):
    """How to read a file into a table with ``_row`` and one column per field."""

    path: Path

    def materialize(self, con: duckdb.DuckDBPyConnection, into: str) -> None:
        """Make ``into``: a temporary table, or a temporary view where the file can be
        read again until ``into`` is dropped (:func:`drop_scan`)."""

    def rejects(self, con: duckdb.DuckDBPyConnection) -> list[Reject]: ...

    def release(self, con: duckdb.DuckDBPyConnection) -> None:
        """Drop what the scan keeps beside ``into`` (rejects, raw lines)."""


@runtime_checkable
class Adapter(Protocol):
    """Turns files of one format into the data contracts.

    ``name`` is what ``--format`` takes; ``summary`` is shown by ``concerted formats``.
    """

    name: ClassVar[str]
    summary: ClassVar[str]

    def scan(self, path: Path, options: AdapterOptions) -> Scan: ...

    def tables(
        self, columns: Mapping[str, str], path: Path, options: AdapterOptions
    ) -> list[RawTable]: ...


def select_columns(
    columns: Mapping[str, str],
    wanted: Mapping[str, str],
    *,
    constants: Mapping[str, str] | None = None,
    extra: Sequence[str] = (),
) -> str:
    """A SELECT list: ``_row``, each contract column from its scanned column where the
    file has it, constants, and an ``extra`` JSON object of the ``extra`` columns.

    >>> select_columns({"_row": "BIGINT", "user": "VARCHAR"}, {"account_id": "user"},
    ...                constants={"platform": "twitter"})
    '_row, "user" AS "account_id", \\'twitter\\' AS "platform"'
    """
    parts = ["_row"]
    for target, source in wanted.items():
        if source in columns:
            parts.append(f"{quote_ident(source)} AS {quote_ident(target)}")
    for target, value in (constants or {}).items():
        if target not in wanted or wanted[target] not in columns:
            parts.append(f"{sql_literal(value)} AS {quote_ident(target)}")
    present = [c for c in extra if c in columns]
    if present:
        packed = ", ".join(f"{quote_ident(c)} := {quote_ident(c)}" for c in present)
        parts.append(f"to_json(struct_pack({packed})) AS extra")
    return ", ".join(parts)


def unmapped_columns(columns: Mapping[str, str], taken: set[str]) -> list[str]:
    """The columns no contract column takes, for ``extra``. A JSON object is scanned as
    a column beside its dotted keys (``client``, ``client.ua``): the keys are kept."""
    names = [c for c in columns if c != "_row"]
    return [c for c in names if c not in taken and not any(o.startswith(c + ".") for o in names)]


# The account whose platform a row takes where its file has no platform column.
_PLATFORM_FROM = {"reports": "reporter_id", "roles": "account_id"}


def contract_layout(
    columns: Mapping[str, str], path: Path, options: AdapterOptions, table: str
) -> RawTable:
    """A file laid out as the contract ``table`` is, with ``--map`` renames.

    The renamed columns keep the file's names up to :func:`~concerted.schema.validate`
    (through :attr:`RawTable.mapping`), so that a bad value is reported in the column
    the user can find in the file. ``--platform`` fills ``platform`` where the file has
    no such column; the other columns go to ``extra``, where the contract has it.
    """
    contract = CONTRACTS[table]
    unknown = set(options.mapping) - set(contract.names)
    if unknown:
        raise ConfigError(
            f"--map names {', '.join(sorted(unknown))}, not a column of {table} "
            f"({', '.join(contract.names)})"
        )
    missing = {k: v for k, v in options.mapping.items() if v not in columns}
    if missing:
        raise ConfigError(
            f"{path}: --map "
            + ", ".join(f"{k}={v}" for k, v in missing.items())
            + " names a column the file does not have; it has: "
            + ", ".join(c for c in columns if c != "_row")
        )
    wanted = {name: options.mapping.get(name, name) for name in contract.names}
    parts = ["_row"]
    mapping: dict[str, str] = {}
    for target, source in wanted.items():
        if source not in columns:
            continue
        if quote_ident(source) not in parts:
            parts.append(quote_ident(source))
        if source != target:
            mapping[target] = source
    notes: tuple[str, ...] = ()
    platform_from: str | None = None
    if "platform" in contract.names and wanted["platform"] not in columns:
        owner = _PLATFORM_FROM.get(table)
        if options.platform:
            parts.append(f"{sql_literal(options.platform)} AS platform")
            notes = (f"no platform column: --platform {options.platform} for every row",)
        elif owner is not None and wanted[owner] in columns:
            # The platform of the account that filed the report (or holds the role),
            # where the case knows that account on exactly one platform.
            parts.append(
                "(SELECT CASE WHEN count(DISTINCT a.platform) = 1 THEN min(a.platform) END "
                f"FROM accounts a WHERE a.account_id = scan.{quote_ident(wanted[owner])}::VARCHAR)"
                " AS platform"
            )
            notes = (
                f"no platform column: each row takes the platform of its {owner}'s account "
                "in the case (give --platform where the case does not know the account)",
            )
            platform_from = wanted[owner]
    filled = {"platform"} if platform_from is not None or options.platform else set()
    # A file of no column (JSON with no record read) has unknown fields: none missing.
    for column in contract.columns if set(columns) - {"_row"} else ():
        source = wanted[column.name]
        if (
            column.required
            and column.default is None
            and source not in columns
            and column.name not in filled
        ):
            # Named here, with the file's own columns: past this point the columns no
            # contract column takes are folded into ``extra`` (a file whose header
            # was "acco" had "the input has: extra").
            has = ", ".join(repr(c) for c in columns if c != "_row")
            raise missing_column(path, table, column.name, source, f"the file has: {has}")
    if "extra" in contract.names and "extra" not in columns:
        extra = unmapped_columns(columns, set(wanted.values()))
        if extra:
            packed = ", ".join(f"{quote_ident(c)} := {quote_ident(c)}" for c in extra)
            parts.append(f"to_json(struct_pack({packed})) AS extra")
    return RawTable(
        table=table,
        sql=f"SELECT {', '.join(parts)} FROM scan",
        mapping=mapping,
        notes=notes,
        platform_from=platform_from,
    )


def check_table(table: str | None, adapter: str) -> str:
    """The contract table a format-neutral adapter was asked to fill."""
    if table is None:
        raise ConfigError(
            f"the {adapter} format can fill any table: say which with `concerted ingest "
            f"--table` ({', '.join(CONTRACTS)}), or name the file after its table "
            "(posts.parquet, reports.csv, ...) for `concerted analyze`, or give its --format"
        )
    if table not in CONTRACTS:
        raise ConfigError(f"unknown table {table!r}; choose one of {', '.join(CONTRACTS)}")
    return table
