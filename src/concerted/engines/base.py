"""The engine seam: the stages whose cost grows faster than the input, behind one
interface.

Three operations cost more than a scan of the case: deriving the actions, the windowed
co-action join, and the per-day sums of the stratified null. An :class:`Engine` runs
them; :mod:`concerted.ingest`, :mod:`concerted.analysis` and
:meth:`concerted.significance.Significance.test_stratified` call nothing else for
them (but for the nulls made of randomised copies, which run the co-action detector
again on DuckDB). DuckDB is the default engine (:mod:`concerted.engines.duck`); Apache
Spark the second (:mod:`concerted.engines.spark`: the pairing and the expectations).

**What crosses.** Relations named on the case's DuckDB connection: a table, a view or
a parenthesised query, laid out as a contract of :mod:`concerted.schema`. An engine is
opened on that connection (:data:`EngineFactory`); what it is given are names there,
and what it gives back are names there. The DuckDB engine works on the connection
itself, so nothing is copied. An engine that keeps its data elsewhere moves its inputs
out of the case and its outputs back in (Spark: Parquet files, read back as views),
so that the stages around it, which stay on DuckDB, read the same names either way.

The operations, and the contract of what each gets and gives:

:meth:`Engine.derive_actions`
    gets rows laid out as ``CONTRACTS[table]`` (``posts``, ``reports`` or ``roles``);
    appends their actions to a relation in ``CONTRACTS["actions"]``, and counts them.
:meth:`Engine.pair`
    gets actions in ``CONTRACTS["actions"]`` and the settings of each co-action layer
    (:class:`~concerted.detectors.coaction.CoAction`: kinds, window, ``min_weight``,
    ``max_object_pairs``); gives a :class:`Paired`: ``edges`` in
    ``EVIDENCE_CONTRACTS["edges"]``, untested (``expected`` to ``significant`` NULL),
    and ``events`` in ``EVIDENCE_CONTRACTS["events"]``.
    ``numbered`` holds the integer tables behind the events where the engine has
    them (DuckDB).
:meth:`Engine.expectations`
    gets a pairing (its :class:`Paired`, or its ``events`` alone) and the actions they
    came from; gives one row per account pair that met, in
    :data:`EXPECTATION_COLUMNS`. From the events alone, or from the integer tables
    of the pairing that made them, the rows are the same.
:meth:`Engine.release`
    drops the temporary relations it made.

Co-reporting's pairing of reports (each round of the brigade stage's test, under its
analytic null) goes through :meth:`Engine.pair` too, with one co-action layer of kind
``report``. Everything after the test (the p- and q-values, the network, clusters,
campaigns, the rest of the brigade stage and outputs) works on the small set of tested
pairs and stays on DuckDB and numpy; so do the other detectors and the nulls made of
randomised copies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import duckdb

from concerted.detectors.base import semi_joined
from concerted.detectors.coaction import CoAction
from concerted.detectors.pairing import PairedRows
from concerted.errors import ConfigError
from concerted.schema import sql_literal

__all__ = [
    "DERIVED_FROM",
    "EXPECTATION_COLUMNS",
    "Engine",
    "EngineFactory",
    "Paired",
    "stratum_filter",
]

#: The contract tables actions are derived from (:mod:`concerted.actions`).
DERIVED_FROM: tuple[str, ...] = ("posts", "reports", "roles")

#: The columns of :meth:`Engine.expectations`, in order: the account pair (oriented as
#: in the evidence contract's ``edges``), its meetings ``w`` and its expected meetings
#: ``lam`` under the stratified null (both ``DOUBLE``).
EXPECTATION_COLUMNS: tuple[str, ...] = (
    "platform_1",
    "account_1",
    "platform_2",
    "account_2",
    "w",
    "lam",
)


@dataclass(frozen=True)
class Paired:
    """The co-action pairing of some actions: relations named on the case's connection.

    ``edges`` holds one row per layer (action kind) and account pair sharing at least a
    layer's ``min_weight`` objects, ``events`` every matched pair of actions behind
    them. ``notes`` say what the pairing did that a reader should know (its settings,
    the objects left out as viral); ``temporary`` lists what
    :meth:`Engine.release` drops once the relations are read. ``events_of``, where the
    engine gives it, is SQL for the events of the edges in a relation of them, found on
    the pairing's own keys (:attr:`concerted.detectors.base.Evidence.events_of`);
    :meth:`events_among` falls back to a semi-join of ``events``.

    ``numbered``, where the engine keeps the pairing on the case's connection (DuckDB),
    holds the integer tables behind ``events``, one :class:`PairedRows` per layer, and
    ``actions`` names the relation they paired: :meth:`Engine.expectations` may read
    the events from them on integers rather than as ``events`` lays them out.
    """

    edges: str
    events: str
    notes: dict[str, Any] = field(default_factory=dict)
    temporary: tuple[str, ...] = ()
    events_of: Callable[[str], str] | None = None
    numbered: tuple[PairedRows, ...] = ()
    actions: str | None = None

    def events_among(self, edges: str) -> str:
        """SQL: the :attr:`events` whose layer and pair are an edge of relation
        ``edges``."""
        if self.events_of is not None:
            return self.events_of(edges)
        return semi_joined(self.events, edges)


@runtime_checkable
class Engine(Protocol):
    """Runs the heavy stages over relations named on the case's connection."""

    #: The name it is registered under (:func:`concerted.engines.get`).
    name: ClassVar[str]

    def derive_actions(self, table: str, rows: str, into: str = "actions") -> int:
        """Append to relation ``into`` (``CONTRACTS["actions"]``) the actions of the rows
        of relation ``rows``, laid out as contract table ``table`` (one of
        :data:`DERIVED_FROM`, checked at ingest); return how many were appended."""
        ...

    def pair(self, actions: str, layers: Sequence[CoAction]) -> Paired:
        """Pair the actions of relation ``actions`` under each layer's settings (its
        kinds, window, ``min_weight`` and ``max_object_pairs``), all layers in one
        :class:`Paired`, as :meth:`CoAction.detect
        <concerted.detectors.coaction.CoAction.detect>` defines the pairs."""
        ...

    def expectations(
        self,
        events: str | Paired,
        actions: str,
        *,
        stratum: float,
        kinds: tuple[str, ...] | None = None,
    ) -> str:
        """The stratified null's sums: for every account pair of ``events`` (a
        :class:`Paired`, or a relation laid out as its events; an engine may read a
        :class:`Paired` of its own from what it kept of the pairing, which gives the
        same rows), its meetings and its expected meetings, given the
        posts of every account in every stratum of ``stratum`` seconds among the
        ``actions`` of ``kinds`` (all when ``None``). The formula is
        :meth:`~concerted.significance.Significance.test_stratified`'s. Returns a
        relation in :data:`EXPECTATION_COLUMNS`, one row per pair; the caller releases
        it."""
        ...

    def release(self, *relations: str) -> None:
        """Drop temporary relations this engine made (unknown names are ignored)."""
        ...


#: How an engine is opened: on the connection of the case whose relations it is given.
EngineFactory = Callable[[duckdb.DuckDBPyConnection], Engine]


def stratum_filter(stratum: float, kinds: tuple[str, ...] | None) -> str:
    """SQL: ``AND kind IN (...)`` for :meth:`Engine.expectations`'s ``kinds`` (empty
    for every kind), after checking ``stratum``; both engines read their inputs so.

    >>> stratum_filter(86400.0, ("repost",))
    "AND kind IN ('repost')"
    """
    if not stratum > 0:
        raise ConfigError(f"the stratum must be positive, got {stratum}")
    if kinds is None:
        return ""
    return f"AND kind IN ({', '.join(sql_literal(k) for k in kinds)})"
