"""Evidence: what the stage found, in the evidence contracts, for the result files.

Every detector's edges and signals, and the events behind the edges that count
(co-reporting's significant ones and every other detector's).
"""

from __future__ import annotations

import pyarrow as pa

from concerted.brigades.workspace import CO_REPORT, Workspace, columns, mapped
from concerted.schema import EVIDENCE_CONTRACTS, ORDERED_ROWS, arrow_schema

__all__ = ["collect"]

_ORDER = {
    "edges": "detector, layer, platform_1, account_1, platform_2, account_2",
    "events": "detector, layer, platform_1, account_1, platform_2, account_2, ts_1, ts_2, "
    "object_id",
    "signals": "detector, layer, entity, platform, id, related_id",
}


def _read(ws: Workspace, part: str, relation: str) -> pa.Table:
    rows = int(ws.scalar(f"SELECT count(*) FROM {relation}"))
    ordered = f" ORDER BY {_ORDER[part]}" if rows <= ORDERED_ROWS else ""
    # Streamed into a mapped file: the stage's evidence (millions of events and signals
    # at scale) is never held whole in Python.
    query = ws.con.sql(f"SELECT {columns(part)} FROM {relation}{ordered}")
    return mapped(query, arrow_schema(EVIDENCE_CONTRACTS[part]))


def collect(ws: Workspace) -> tuple[pa.Table, pa.Table, pa.Table]:
    """The stage's ``edges``, ``events`` and ``signals``."""
    edges = _read(ws, "edges", "_bg_edges")
    events = _read(
        ws,
        "events",
        f"""(SELECT v.* FROM _bg_events v SEMI JOIN (
                SELECT * FROM _bg_edges
                WHERE detector <> '{CO_REPORT}' OR significant) e
             ON e.detector = v.detector AND e.layer = v.layer
            AND e.platform_1 = v.platform_1 AND e.account_1 = v.account_1
            AND e.platform_2 = v.platform_2 AND e.account_2 = v.account_2)""",
    )
    signals = _read(ws, "signals", "_bg_signals")
    return edges, events, signals
