"""The errors concerted raises on purpose.

Every error that concerted means to show a user derives from one base, so that the
command line and the service can turn them into messages in one place each::

    ConcertedError
    ├── ConfigError(ValueError)            a setting, option or mapping makes no sense
    ├── SchemaError(ValueError)            input does not meet a data contract
    ├── UnknownComponentError(KeyError)    no adapter or detector by that name
    └── StoreError                         the case file cannot be used as asked

Each also derives from the built-in exception that callers would catch without
knowing concerted, as scikit-learn's ``NotFittedError`` does.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "ConcertedError",
    "ConfigError",
    "SchemaError",
    "StoreError",
    "UnknownComponentError",
]


class ConcertedError(Exception):
    """Base of every error concerted raises on purpose."""


class ConfigError(ConcertedError, ValueError):
    """A setting, command-line option or column mapping that cannot be used."""


class StoreError(ConcertedError):
    """The case store cannot be opened or used as asked."""


class UnknownComponentError(ConcertedError, KeyError):
    """No registered component (adapter, detector, writer) has that name.

    >>> str(UnknownComponentError("adapter", "tiktok", ["generic", "qut"]))
    "no adapter named 'tiktok'; known: generic, qut"
    """

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = sorted(known)
        super().__init__(f"no {kind} named {name!r}; known: {', '.join(self.known)}")

    def __str__(self) -> str:
        # KeyError quotes its argument; a message reads better without.
        return str(self.args[0])


class SchemaError(ConcertedError, ValueError):
    """Input that does not meet a data contract, located as precisely as it can be.

    ``row`` counts records from 1 in the order the file holds them (a CSV's header is
    not a record; a JSONL file's records are its lines). ``line`` is the physical line
    where the reader knows it.

    >>> str(SchemaError("posts.csv", "unparseable timestamp '31/02/2020'", row=7, column="ts"))
    "posts.csv, row 7, column 'ts': unparseable timestamp '31/02/2020'"
    """

    def __init__(
        self,
        file: str | Path | None,
        reason: str,
        *,
        row: int | None = None,
        column: str | None = None,
        line: int | None = None,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.reason = reason
        self.row = row
        self.column = column
        self.line = line
        super().__init__(self._message())

    def _message(self) -> str:
        where = [self.file] if self.file else []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.reason}" if where else self.reason
