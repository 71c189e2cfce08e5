"""Request bodies: from bytes to typed reports, or to one error per report.

A body is parsed into candidate reports (:func:`parse_one`, :func:`parse_batch`) and
shaped into one text value per column (:func:`prepare`); a report of the common shape
is typed at once by :func:`concerted.service.fastcheck.check`, the others wait for
:func:`concerted.schema.validate` (:func:`candidates`). A batch body takes a shorter
way to the same candidates: :func:`read_batch` decodes it straight into structs and
types them there. :func:`type_all` types what waits, in one DuckDB pass: the one place
a row is checked. A report that breaks the contract gets its own error naming the
column (:class:`ItemError`); the others are kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb
import msgspec
import pyarrow as pa

from concerted.schema import CONTRACTS, TIMESTAMP, Column, Contract, validate
from concerted.service import fastcheck

__all__ = [
    "CONTRACT",
    "FIELDS",
    "BadRequest",
    "Candidate",
    "ItemError",
    "Unchecked",
    "candidates",
    "check_all",
    "parse_batch",
    "parse_one",
    "prepare",
    "read_batch",
    "type_all",
]

#: The reports contract, plus the reporter's account creation time, which the scorer
#: uses (``young_account``) and which a platform knows when the report arrives.
CONTRACT = Contract(
    "reports",
    (
        *CONTRACTS["reports"].columns,
        Column(
            name="reporter_created_at",
            type=TIMESTAMP,
            doc="When the reporter's account was created, when known.",
        ),
    ),
    key=CONTRACTS["reports"].key,
    doc=CONTRACTS["reports"].doc,
)
FIELDS: tuple[str, ...] = CONTRACT.names
_TIMES = frozenset(c.name for c in CONTRACT.columns if c.type == TIMESTAMP)
_RAW_SCHEMA = pa.schema([pa.field("_row", pa.int64())] + [pa.field(f, pa.string()) for f in FIELDS])
_decode_object = msgspec.json.Decoder(dict[str, Any]).decode
_encode = msgspec.json.Encoder().encode
_decode_wires = msgspec.json.Decoder(list[fastcheck.Wire]).decode
_decode_wire = msgspec.json.Decoder(fastcheck.Wire).decode
assert fastcheck.Wire.__struct_fields__ == FIELDS


class BadRequest(ValueError):
    """A body that is not JSON (or NDJSON) at all: HTTP 400."""


@dataclass(frozen=True, slots=True)
class ItemError:
    """Why one report was refused: the field (None for the whole report) and why."""

    field: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Unchecked:
    """A report the fast check could not type: its row, for :func:`validate`."""

    row: Mapping[str, str | None]


#: A report on its way to the writer: typed already (the fast check's dict), waiting
#: for :func:`validate`, or refused.
Candidate = dict[str, Any] | Unchecked | ItemError


def parse_one(body: bytes) -> Any:
    """The JSON value of a body; :class:`BadRequest` when it is not JSON."""
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None


def parse_batch(body: bytes) -> list[Any]:
    """A JSON array, or NDJSON: one JSON value per line (an unparseable line becomes
    an :class:`ItemError` of its own, so that the other lines are kept)."""
    text = body.lstrip()
    if text.startswith(b"["):
        value = parse_one(body)
        if not isinstance(value, list):
            raise BadRequest("the body is neither a JSON array nor NDJSON")
        return value
    items: list[Any] = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(msgspec.json.decode(line))
        except msgspec.DecodeError as exc:
            items.append(ItemError(None, f"line {number} is not JSON: {exc}"))
    return items


def prepare(value: Any) -> dict[str, str | None] | ItemError:
    """One report's fields as text, ready for :func:`validate` (which types them)."""
    if isinstance(value, ItemError):
        return value
    if not isinstance(value, dict):
        return ItemError(None, "a report is a JSON object")
    row: dict[str, str | None] = {}
    for key, v in value.items():
        if key not in FIELDS:
            return ItemError(key, f"unknown field; a report has: {', '.join(FIELDS)}")
        if v is None:
            row[key] = None
        elif key == "extra":
            if not isinstance(v, dict):
                return ItemError(key, "extra must be a JSON object")
            row[key] = msgspec.json.encode(v).decode()
        elif isinstance(v, str):
            row[key] = v
        elif isinstance(v, int | float) and not isinstance(v, bool):
            # Numbers are ids, or epoch seconds for times.
            row[key] = repr(v) if isinstance(v, float) else str(v)
        else:
            return ItemError(key, f"expected text{' or epoch seconds' if key in _TIMES else ''}")
    return row


def candidates(values: Sequence[Any]) -> list[Candidate]:
    """Each parsed value shaped by :func:`prepare` and, where the fast check can, typed."""
    out: list[Candidate] = []
    for value in values:
        row = prepare(value)
        if isinstance(row, ItemError):
            out.append(row)
        else:
            typed = fastcheck.check(row)
            out.append(Unchecked(row) if typed is None else typed)
    return out


def read_batch(body: bytes) -> list[Candidate]:
    """``candidates(parse_batch(body))``, without the intermediate objects: a JSON
    array is decoded into :class:`~concerted.service.fastcheck.Wire` structs in one
    call (NDJSON one call a line) and typed by
    :func:`~concerted.service.fastcheck.check_wire`. What that decoding refuses (an
    item not a report object, an unknown field, a value of another JSON type: all of
    them errors) is read the general way, the whole array or that line, so every
    answer and error is the one :func:`candidates` gives (a test holds the two
    equal).

    >>> [type(c).__name__ for c in read_batch(b'{"report_id": 1}\\n[]\\n')]
    ['Unchecked', 'ItemError']
    """
    if body.lstrip().startswith(b"["):
        try:
            wires = _decode_wires(body)
        except msgspec.DecodeError:
            return candidates(parse_batch(body))
        return [_typed_wire(w) for w in wires]
    out: list[Candidate] = []
    for number, line in enumerate(body.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            wire = _decode_wire(line)
        except msgspec.DecodeError:
            try:
                value = msgspec.json.decode(line)
            except msgspec.DecodeError as exc:
                out.append(ItemError(None, f"line {number} is not JSON: {exc}"))
                continue
            out.extend(candidates([value]))
            continue
        out.append(_typed_wire(wire))
    return out


def _typed_wire(wire: fastcheck.Wire) -> Candidate:
    typed = fastcheck.check_wire(wire)
    if typed is not None:
        return typed
    row: dict[str, str | None] = {}
    for name in FIELDS:
        value = getattr(wire, name)
        if value is not None:
            row[name] = _encode(value).decode() if name == "extra" else fastcheck.as_text(value)
    return Unchecked(row)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _validate(
    con: duckdb.DuckDBPyConnection, rows: Sequence[Mapping[str, str | None]]
) -> list[dict[str, Any] | ItemError]:
    """Type ``rows`` into the reports contract: each a stored report or its error."""
    if not rows:
        return []
    table = pa.Table.from_pylist(
        [{"_row": i, **{f: r.get(f) for f in FIELDS}} for i, r in enumerate(rows)],
        schema=_RAW_SCHEMA,
    )
    con.register("_intake_raw", table)
    try:
        validate(con, "_intake_raw", CONTRACT, file="request", into="_intake_typed")
        cur = con.execute(
            f"SELECT {', '.join(FIELDS)}, _error_column, _error FROM _intake_typed ORDER BY _row"
        )
        typed = cur.fetchall()
    finally:
        con.unregister("_intake_raw")
        con.execute("DROP TABLE IF EXISTS _intake_typed")
        con.execute("DROP TABLE IF EXISTS _intake_typed_raw")
    out: list[dict[str, Any] | ItemError] = []
    for row in typed:
        *values, error_column, error = row
        if error is not None:
            out.append(ItemError(error_column, str(error)))
            continue
        report: dict[str, Any] = {}
        for name, v in zip(FIELDS, values, strict=True):
            if isinstance(v, datetime):
                v = _iso(v)
            elif name == "extra" and v is not None:
                v = _decode_object(v)
            report[name] = v
        out.append(report)
    return out


def check_all(
    con: duckdb.DuckDBPyConnection, rows: Sequence[Mapping[str, str | None]]
) -> list[dict[str, Any] | ItemError]:
    """Type ``rows``: those of the common shape by :func:`fastcheck.check`, the others
    (errors included) by :func:`_validate` in one DuckDB pass; the same answers."""
    return type_all(con, [Unchecked(r) if (t := fastcheck.check(r)) is None else t for r in rows])


def type_all(
    con: duckdb.DuckDBPyConnection, items: Sequence[Candidate]
) -> list[dict[str, Any] | ItemError]:
    """Every candidate typed: those waiting for :func:`_validate` in one DuckDB pass."""
    slow = iter(_validate(con, [c.row for c in items if isinstance(c, Unchecked)]))
    return [next(slow) if isinstance(c, Unchecked) else c for c in items]
