"""What a detector is, and the evidence every detector returns.

A detector is a frozen, keyword-only dataclass whose parameters are its settings, with
one pure method, :meth:`Detector.detect`. It reads the case's ``actions`` (already
checked at ingest, so it trusts them), and where it needs them the case's other
contract tables, which are on the connection under their own names (``accounts``,
``posts``, ``reports``, ``roles``; :attr:`Detector.reads` lists those it reads). It
returns :class:`Evidence` in one shape for all detectors, the ``edges``, ``events``
and ``signals`` of :data:`~concerted.schema.EVIDENCE_CONTRACTS`: the graph stage never
needs to know which detector tied two accounts together, the brigade stage never
needs to know which detector scored a report, and every row can be traced back to the
rows behind it.

Detectors emit scores (weights, counts) and never thresholds beyond the minimum they
need to keep their output finite: :mod:`concerted.significance` decides what counts.

**What the pipeline needs of a detector** is said by two more class attributes, so
that the settings, the weights and the brigade stage are derived from the registry and
a third-party detector plugs in as a built-in one does:

``family`` (:data:`FAMILIES`)
    ``network``: pairs accounts by co-action, tested under the significance test;
    ``tested``: a pair statistic tested against randomised copies, whose significant
    pairs join the network as a layer (``[layers] tested``); ``corroborating``: pairs
    that no null can test, which only corroborate (``[layers] corroborating``);
    ``report``: a signal of the brigade stage (``[brigades] detectors``). Without the
    attribute a detector is ``corroborating``.
``weight``
    for ``report`` detectors, the default weight of its signal in a brigade's score
    (``[brigades.signal_weights]`` overrides it); 0 without the attribute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import duckdb

from concerted.schema import EVIDENCE_CONTRACTS

__all__ = [
    "EDGE_COLUMNS",
    "EVENT_COLUMNS",
    "FAMILIES",
    "SIGNAL_COLUMNS",
    "Detector",
    "Evidence",
    "empty",
    "family_of",
    "semi_joined",
    "weight_of",
]

#: What a detector is for in the pipeline (its ``family`` class attribute).
FAMILIES: tuple[str, ...] = ("network", "tested", "corroborating", "report")


def family_of(detector: object) -> str:
    """A detector's (or detector class's) ``family``: ``corroborating`` where it says
    none.

    >>> class Mine:
    ...     name = "mine"
    >>> family_of(Mine)
    'corroborating'
    """
    family = getattr(detector, "family", "corroborating")
    return family if isinstance(family, str) else "corroborating"


def weight_of(detector: object) -> float:
    """A report detector's default weight in a brigade's score (0 where it says none)."""
    weight = getattr(detector, "weight", 0.0)
    return float(weight) if isinstance(weight, int | float) else 0.0


#: The columns of :attr:`Evidence.edges`, :attr:`Evidence.events` and
#: :attr:`Evidence.signals`, in order.
EDGE_COLUMNS: tuple[str, ...] = EVIDENCE_CONTRACTS["edges"].names
EVENT_COLUMNS: tuple[str, ...] = EVIDENCE_CONTRACTS["events"].names
SIGNAL_COLUMNS: tuple[str, ...] = EVIDENCE_CONTRACTS["signals"].names


def empty(con: duckdb.DuckDBPyConnection, part: str) -> duckdb.DuckDBPyRelation:
    """An empty relation with the columns and types of evidence ``part`` (``edges``,
    ``events`` or ``signals``), for a detector that finds nothing of that part.

    >>> con = duckdb.connect()
    >>> rel = empty(con, "signals")
    >>> rel.columns[:4], rel.fetchall()
    (['detector', 'layer', 'entity', 'platform'], [])
    """
    contract = EVIDENCE_CONTRACTS[part]
    columns = ", ".join(f"CAST(NULL AS {c.type}) AS {c.name}" for c in contract.columns)
    return con.sql(f"SELECT {columns} WHERE false")


def semi_joined(events: str, edges: str) -> str:
    """SQL: the rows of relation ``events`` whose layer and pair are an edge of
    relation ``edges``."""
    return f"""SELECT ev.* FROM {events} ev SEMI JOIN {edges} e
        ON e.layer = ev.layer AND e.platform_1 = ev.platform_1
       AND e.account_1 = ev.account_1 AND e.platform_2 = ev.platform_2
       AND e.account_2 = ev.account_2"""


@dataclass(frozen=True)
class Evidence:
    """What a detector found: lazy relations in :data:`EDGE_COLUMNS`,
    :data:`EVENT_COLUMNS` and :data:`SIGNAL_COLUMNS` order, and notes on what it did
    that a reader should know (objects left out as viral, caps applied), which the
    outputs carry to ``run.json``. A detector that finds no pairs gives :func:`empty`
    edges and events; one that scores no single entity gives :func:`empty` signals.
    """

    edges: duckdb.DuckDBPyRelation
    events: duckdb.DuckDBPyRelation
    signals: duckdb.DuckDBPyRelation
    notes: dict[str, Any] = field(default_factory=dict)
    #: Temporary tables the relations read; :meth:`release` drops them.
    temporary: tuple[str, ...] = ()
    #: SQL for the events of the edges in a relation of them (its ``layer`` and pair
    #: columns are read), found on the detector's own keys: the same rows as
    #: :attr:`events` semi-joined to those edges on the layer and the pair, without
    #: making every event first. None: the caller semi-joins :attr:`events`.
    events_of: Callable[[str], str] | None = None

    def events_among(self, edges: str) -> str:
        """SQL: :attr:`events` of the edges in relation ``edges``, by :attr:`events_of`
        where the detector gives it, else by a semi-join on the layer and the pair."""
        if self.events_of is not None:
            return self.events_of(edges)
        return semi_joined(f"({self.events.sql_query()})", edges)

    def release(self, con: duckdb.DuckDBPyConnection) -> None:
        """Drop the temporary tables behind the relations (which then cannot be read)."""
        for table in self.temporary:
            con.execute(f"DROP TABLE IF EXISTS {table}")


@runtime_checkable
class Detector(Protocol):
    """A signal over the actions of a case."""

    name: ClassVar[str]
    #: The case tables it reads besides the ``actions`` relation it is given.
    reads: ClassVar[tuple[str, ...]]

    def detect(self, con: duckdb.DuckDBPyConnection, actions: str) -> Evidence:
        """Evidence from the actions in relation ``actions`` (a table, view or
        parenthesised query with the ``actions`` contract's columns) on ``con``, and
        from the case tables in :attr:`reads`, by their contract names.

        It may create temporary tables on ``con`` to hold intermediate results; it
        changes nothing else.
        """
        ...
