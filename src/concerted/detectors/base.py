"""What a detector is, and the evidence every detector returns.

A detector is a frozen, keyword-only dataclass whose parameters are its settings, with
one pure method, :meth:`Detector.detect`. It reads the case's ``actions`` (already
checked at ingest, so it trusts them) and returns :class:`Evidence` in one shape for
all detectors, the ``edges`` and ``events`` of :data:`~concerted.schema.EVIDENCE_CONTRACTS`:
the graph stage never needs to know which detector tied two accounts together, and
every edge can be traced back to the rows behind it.

Detectors emit scores (weights, counts) and never thresholds beyond the minimum they
need to keep their output finite: :mod:`concerted.significance` decides what counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import duckdb

from concerted.schema import EVIDENCE_CONTRACTS

__all__ = ["EDGE_COLUMNS", "EVENT_COLUMNS", "Detector", "Evidence"]

#: The columns of :attr:`Evidence.edges` and :attr:`Evidence.events`, in order.
EDGE_COLUMNS: tuple[str, ...] = EVIDENCE_CONTRACTS["edges"].names
EVENT_COLUMNS: tuple[str, ...] = EVIDENCE_CONTRACTS["events"].names


@dataclass(frozen=True)
class Evidence:
    """What a detector found: lazy relations in :data:`EDGE_COLUMNS` and
    :data:`EVENT_COLUMNS` order, and notes on what it did that a reader should know
    (objects left out as viral, caps applied), which the outputs carry to ``run.json``.
    """

    edges: duckdb.DuckDBPyRelation
    events: duckdb.DuckDBPyRelation
    notes: dict[str, Any] = field(default_factory=dict)
    #: Temporary tables the relations read; :meth:`release` drops them.
    temporary: tuple[str, ...] = ()

    def release(self, con: duckdb.DuckDBPyConnection) -> None:
        """Drop the temporary tables behind the relations (which then cannot be read)."""
        for table in self.temporary:
            con.execute(f"DROP TABLE IF EXISTS {table}")


@runtime_checkable
class Detector(Protocol):
    """A signal over the actions of a case."""

    name: ClassVar[str]

    def detect(self, con: duckdb.DuckDBPyConnection, actions: str) -> Evidence:
        """Evidence from the actions in relation ``actions`` (a table, view or
        parenthesised query with the ``actions`` contract's columns) on ``con``.

        It may create temporary tables on ``con`` to hold intermediate results; it
        changes nothing else.
        """
        ...
