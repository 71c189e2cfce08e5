"""Co-action: accounts acting on the same object within a time window of each other.

Two actions pair when they are of the same kind, on the same object, by two different
accounts, and at most ``window`` seconds apart (inclusive, to the microsecond). The
window slides: there are no fixed bins, whose edges would part two actions one second
apart. The join that finds the pairs is an equi-join on (kind, object, time bucket)
with buckets one window wide, against the same bucket and the next one, then a filter
on the exact gap; it scales on any engine where a range join on time does not.

Per account pair and kind the detector keeps the distinct objects shared (the
``weight``), the matched action pairs (``events``), who acted first in each
(``lead_1``, ``lead_2``), the median gap, and every matched pair itself in ``events``
(object, both times, both source rows), so that any edge can be explained.

**Viral objects.** An object that thousands of accounts act on within minutes (a
trending hashtag, a viral repost) yields millions of pairs and says little about any
one of them. Before the join, each object's candidate pairs are counted from its
bucket sizes; objects with more than ``max_object_pairs`` are left out of the pairing,
and :attr:`Evidence.notes` lists them (kind, object, accounts, actions, candidate
pairs). Set ``max_object_pairs=None`` for the exact answer whatever it costs, as the
peer-compatible modes do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import duckdb

from concerted.detectors.base import Detector, Evidence, empty
from concerted.detectors.pairing import (
    PairedRows,
    pair_edges,
    pair_events,
    pair_keys,
    viral_objects,
)
from concerted.errors import ConfigError
from concerted.schema import sql_literal

__all__ = ["CoAction", "CoActionLayers"]


@dataclass(frozen=True, kw_only=True)
class CoAction:
    """Accounts acting on the same object within ``window`` seconds of each other.

    ``kinds`` limits the action kinds (all kinds when ``None``); an edge needs at least
    ``min_weight`` distinct shared objects. ``max_object_pairs`` is the viral-object
    cap (see the module's notes).

    >>> CoAction(window=60).name
    'co_action'
    """

    name: ClassVar[str] = "co_action"
    family: ClassVar[str] = "network"
    reads: ClassVar[tuple[str, ...]] = ()
    window: float = 60.0
    kinds: tuple[str, ...] | None = None
    min_weight: int = 1
    max_object_pairs: int | None = 2_000_000

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", float(self.window))
        if self.kinds is not None:
            object.__setattr__(self, "kinds", tuple(self.kinds))
        if self.window < 0:
            raise ConfigError(f"co_action: window must not be negative, got {self.window}")
        if self.min_weight < 1:
            raise ConfigError(f"co_action: min_weight must be at least 1, got {self.min_weight}")
        if self.max_object_pairs is not None and self.max_object_pairs < 1:
            raise ConfigError("co_action: max_object_pairs must be at least 1 (or None)")

    def detect(self, con: duckdb.DuckDBPyConnection, actions: str) -> Evidence:
        return self.pairing(con, actions)[0]

    def pairing(
        self, con: duckdb.DuckDBPyConnection, actions: str
    ) -> tuple[Evidence, tuple[PairedRows, ...]]:
        """:meth:`detect`'s evidence, with the integer tables its events are read from
        (which :meth:`Evidence.release` drops with the rest)."""
        keys = pair_keys(
            con,
            actions,
            window=self.window,
            kinds=self.kinds,
            max_object_pairs=self.max_object_pairs,
            min_objects=self.min_weight,
        )
        found = pair_edges(con, keys, min_weight=self.min_weight)
        name = sql_literal(self.name)
        edges = con.sql(
            f"""
            WITH k AS (SELECT DISTINCT kid, kind FROM {keys.objects})
            SELECT {name} AS detector, k.kind AS layer,
                   u1.platform AS platform_1, u1.actor_id AS account_1,
                   u2.platform AS platform_2, u2.actor_id AS account_2,
                   e.weight::DOUBLE AS weight, NULL::DOUBLE AS score, e.events, e.lead_1,
                   e.lead_2, e.median_dt,
                   make_timestamptz(e.first_t) AS first_ts,
                   make_timestamptz(e.last_t) AS last_ts,
                   NULL::DOUBLE AS expected, NULL::DOUBLE AS p_value,
                   NULL::DOUBLE AS q_value, NULL::BOOLEAN AS significant
            FROM {found} e JOIN k USING (kid)
            JOIN {keys.accounts} u1 ON u1.aid = e.a_1
            JOIN {keys.accounts} u2 ON u2.aid = e.a_2
            """
        )
        rows = PairedRows(keys, found if self.min_weight > 1 else None)
        events = con.sql(pair_events(keys, rows.kept, self.name))

        def events_of(edges: str) -> str:
            # The edges' layers and accounts as the pairing numbered them: the events
            # are then picked on integers, and only theirs joined to the actions.
            wanted = f"""(SELECT k.kid, u1.aid AS a_1, u2.aid AS a_2 FROM {edges} s
                JOIN (SELECT DISTINCT kid, kind FROM {keys.objects}) k ON k.kind = s.layer
                JOIN {keys.accounts} u1
                  ON u1.platform = s.platform_1 AND u1.actor_id = s.account_1
                JOIN {keys.accounts} u2
                  ON u2.platform = s.platform_2 AND u2.actor_id = s.account_2)"""
            return pair_events(keys, wanted, self.name)

        notes: dict[str, Any] = {
            "window_seconds": self.window,
            "kinds": list(self.kinds) if self.kinds is not None else "all",
            "min_weight": self.min_weight,
            "max_object_pairs": self.max_object_pairs,
            "viral_objects": viral_objects(con, keys),
        }
        evidence = Evidence(
            edges=edges,
            events=events,
            signals=empty(con, "signals"),
            notes=notes,
            temporary=(*keys.tables, found),
            events_of=events_of,
        )
        return evidence, (rows,)


@dataclass(frozen=True)
class CoActionLayers:
    """Co-action detectors run as one (each kind with its own window), so that the
    significance test sees each pair's weight over all of them: the edges, events and
    signals of every part together, the first part's notes with every part's under
    ``layers`` and all the viral objects.

    >>> CoActionLayers((CoAction(window=60),)).name
    'co_action'
    """

    parts: tuple[Detector, ...]
    name: ClassVar[str] = "co_action"
    reads: ClassVar[tuple[str, ...]] = ()

    def detect(self, con: duckdb.DuckDBPyConnection, actions: str) -> Evidence:
        return self.pairing(con, actions)[0]

    def pairing(
        self, con: duckdb.DuckDBPyConnection, actions: str
    ) -> tuple[Evidence, tuple[PairedRows, ...]]:
        """:meth:`detect`'s evidence, with every co-action part's integer tables
        (:meth:`CoAction.pairing`); none at all where a part is not a
        :class:`CoAction`, whose events no such tables hold."""
        found: list[Evidence] = []
        rows: list[PairedRows] = []
        for part in self.parts:
            if isinstance(part, CoAction):
                evidence, numbered = part.pairing(con, actions)
                found.append(evidence)
                rows.extend(numbered)
            else:
                found.append(part.detect(con, actions))
        if len(rows) != len(self.parts):
            rows = []
        if len(found) == 1:
            return found[0], tuple(rows)

        def union(part: str) -> duckdb.DuckDBPyRelation:
            return con.sql(" UNION ALL ".join(f"({getattr(f, part).sql_query()})" for f in found))

        notes = dict(found[0].notes)
        notes["layers"] = [f.notes for f in found]

        def events_of(edges: str) -> str:
            # Each part finds the edges of its own layers only.
            return " UNION ALL ".join(f"({f.events_among(edges)})" for f in found)

        notes["viral_objects"] = [v for f in found for v in f.notes.get("viral_objects", [])]
        evidence = Evidence(
            edges=union("edges"),
            events=union("events"),
            signals=union("signals"),
            notes=notes,
            temporary=tuple(t for f in found for t in f.temporary),
            events_of=events_of,
        )
        return evidence, tuple(rows)
