"""Any CSV, TSV, JSON lines, JSON or Parquet file, with a column mapping.

A file named after a table (``posts.parquet``, ``accounts.csv``) fills that table;
any other needs ``--table``. Columns named as in the contract are taken as they are;
``--map account_id=user`` takes ``account_id`` from the file's ``user`` column; errors
name the file's column.
Columns that no contract column takes are kept in ``extra`` (a JSON object) for
accounts, posts and reports; ``--platform`` fills ``platform`` where the file has none.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from concerted.adapters.base import AdapterOptions, RawTable, Scan, check_table, contract_layout
from concerted.adapters.scans import scan_by_extension
from concerted.schema import INPUT_TABLES

__all__ = ["Generic", "stem"]


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
        table = options.table
        if table is None and stem(path) in INPUT_TABLES:
            # accounts.parquet, posts.csv.gz, ...: named after the table they fill, as
            # `concerted simulate` writes them.
            table = stem(path)
        return [contract_layout(columns, path, options, check_table(table, self.name))]


def stem(path: Path) -> str:
    """The file name without its extensions.

    >>> stem(Path("data/posts.csv.gz"))
    'posts'
    """
    return path.name.split(".", 1)[0]
