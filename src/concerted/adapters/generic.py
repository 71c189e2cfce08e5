"""Any CSV, TSV, JSON lines, JSON or Parquet file, with a column mapping.

Columns named as in the contract are taken as they are; ``--map account_id=user``
takes ``account_id`` from the file's ``user`` column. Columns that no contract column
takes are kept in ``extra`` (a JSON object) for accounts, posts and reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from concerted.adapters.base import (
    AdapterOptions,
    RawTable,
    Scan,
    check_table,
    scan_by_extension,
    select_columns,
)
from concerted.errors import ConfigError
from concerted.schema import CONTRACTS

__all__ = ["Generic"]


class Generic:
    """Generic tables: one file fills the contract table named by ``--table``."""

    name: ClassVar[str] = "generic"
    summary: ClassVar[str] = (
        "CSV, TSV, JSONL, JSON or Parquet in any layout; --table says which table it "
        "fills, --map contract=column renames"
    )

    def scan(self, path: Path, options: AdapterOptions) -> Scan:
        return scan_by_extension(path, options)

    def tables(
        self, columns: Mapping[str, str], path: Path, options: AdapterOptions
    ) -> list[RawTable]:
        table = check_table(options.table, self.name)
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
        taken = set(wanted.values())
        extra = (
            []
            if "extra" in columns or "extra" not in contract.names
            else [c for c in columns if c != "_row" and c not in taken]
        )
        constants = {"platform": options.platform} if options.platform else {}
        select = select_columns(columns, wanted, constants=constants, extra=extra)
        return [RawTable(table=table, sql=f"SELECT {select} FROM scan")]
