"""What the moderation-tool formats share: records of reports, JSON objects as their
tools export them, laid out as the ``reports`` contract.

The formats (``mastodon``, ``atproto``, ``synapse``, ``lemmy``) each map a tool's own
field names (SERVICE.md lists them, from the projects' schema files) onto the contract
in one SQL SELECT over the scanned records, and ``concerted serve`` maps the records it
receives through the very same SELECT (:func:`records_to_reports`), so a file and a
webhook of one format give the same reports.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

from concerted.adapters.base import Adapter, AdapterOptions, RawTable, Reject
from concerted.adapters.scans import JsonScan, scanned_columns
from concerted.schema import CONTRACTS, quote_ident, sql_literal

__all__ = ["Picked", "pick", "records_to_reports", "report_table"]


class Picked(str):
    """SQL that takes a value as the file has it, from one of the file's fields
    (``fields``): :func:`report_table` names the value after them, so that an error
    names the file's field (``account.id``), not the contract's column."""

    fields: tuple[str, ...] = ()


def pick(columns: Mapping[str, str], *names: str) -> str:
    """SQL for the first non-null of the scanned columns ``names`` the file has (NULL
    when it has none).

    >>> pick({"a": "VARCHAR", "b.c": "VARCHAR"}, "x", "b.c", "a")
    'coalesce("b.c", "a")'
    """
    present = [n for n in names if n in columns]
    if not present:
        return "NULL"
    quoted = [quote_ident(n) for n in present]
    picked = Picked(quoted[0] if len(quoted) == 1 else f"coalesce({', '.join(quoted)})")
    picked.fields = tuple(present)
    return picked


def report_table(exprs: Mapping[str, str], extra: Mapping[str, str] | None = None) -> RawTable:
    """The SELECT of contract columns ``exprs`` (SQL over ``scan``), and ``extra`` as one
    JSON object of the named SQL values. Only what is named is kept:
    these tools' records carry the accounts' e-mail addresses and IPs, which a case
    has no use for.
    """
    contract = CONTRACTS["reports"]
    assert set(exprs) <= set(contract.names)
    # A value taken as it is keeps the name of the field it came from (the mapping
    # gives it its contract name): an error then names the field of the file.
    mapping: dict[str, str] = {}
    taken = set(contract.names)
    for name, sql in exprs.items():
        if isinstance(sql, Picked):
            named = " or ".join(sql.fields)
            if named not in taken:
                mapping[name] = named
                taken.add(named)
    parts = ["_row"] + [
        f"{sql} AS {quote_ident(mapping.get(name, name))}" for name, sql in exprs.items()
    ]
    if extra:
        packed = ", ".join(f"{sql_literal(k)}, {v}" for k, v in extra.items())
        parts.append(f"CAST(json_object({packed}) AS VARCHAR) AS extra")
    return RawTable(table="reports", sql=f"SELECT {', '.join(parts)} FROM scan", mapping=mapping)


def records_to_reports(
    adapter: Adapter, records: Sequence[Any], options: AdapterOptions | None = None
) -> list[dict[str, Any] | Reject]:
    """Each record (a JSON value) as a report in the request form of ``concerted
    serve`` (contract columns as text; ``extra`` an object), or why it could not be
    read. Runs the adapter's own scan of JSON lines and its SELECT."""
    options = options or AdapterOptions()
    con = duckdb.connect(config={"threads": 1})
    with tempfile.TemporaryDirectory(prefix="concerted-intake-") as tmp:
        path = Path(tmp) / "records.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        scan = JsonScan(path)
        try:
            scan.materialize(con, "scan")
            rejects = {r.row: r for r in scan.rejects(con)}
            scan.release(con)
            columns = scanned_columns(con, path)
            (raw,) = [t for t in adapter.tables(columns, path, options) if t.table == "reports"]
            cur = con.execute(f"SELECT * FROM ({raw.sql}) ORDER BY _row")
            contract_name = {source: name for name, source in raw.mapping.items()}
            names = [contract_name.get(d[0], d[0]) for d in cur.description or ()]
            typed = {
                int(row[0]): dict(zip(names[1:], row[1:], strict=True)) for row in cur.fetchall()
            }
        finally:
            con.close()
    out: list[dict[str, Any] | Reject] = []
    for number in range(1, len(records) + 1):
        if number in rejects:
            out.append(rejects[number])
            continue
        row = typed.get(number)
        if row is None:
            # The adapter's SELECT made nothing of it (an empty object, say).
            out.append(
                Reject(
                    row=number,
                    line=None,
                    column=None,
                    reason=f"not a record of the {adapter.name} format: no field it reads",
                    raw=json.dumps(records[number - 1], ensure_ascii=False),
                )
            )
            continue
        report: dict[str, Any] = {}
        for name, value in row.items():
            if value is None:
                continue
            report[name] = json.loads(value) if name == "extra" else str(value)
        out.append(report)
    return out
