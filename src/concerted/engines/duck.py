"""The DuckDB engine: the heavy stages on the case's own connection.

It delegates to the code that defines each stage: the actions' SQL of
:mod:`concerted.actions`, the co-action join of :mod:`concerted.detectors.coaction`,
and here the stratified null's per-day sums (:data:`_EXPECTATIONS`), whose formula
:meth:`~concerted.significance.Significance.test_stratified` gives. Nothing is copied
in or out: the relations it is given and gives back are the connection's.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

import duckdb

from concerted.actions import SQL_MACROS, from_posts, from_reports, from_roles
from concerted.detectors.coaction import CoAction, CoActionLayers
from concerted.engines.base import Paired, stratum_filter
from concerted.errors import ConfigError

__all__ = ["DuckDBEngine"]

_ids = itertools.count()

_DERIVE: Mapping[str, Callable[[str], str]] = {
    "posts": from_posts,
    "reports": from_reports,
    "roles": from_roles,
}

# Expected counts are summed as decimals: exact, so a pair's expectation does not
# depend on the order a parallel sum happens to take.
_EXACT = "DECIMAL(38, 22)"

# Per stratum ``s``: each account's posts ``n`` (act), each pair's meetings ``w`` and
# whether all of them straddle two strata (met), the stratum's rate of meetings per
# possible pair (rate); then per pair its meetings and its expectation ``lam``. The
# accounts are numbered (ids) so that the largest join, every pair against both its
# accounts' strata, runs on integers; the names come back in the last step. (A pair
# whose account made no action of these kinds keeps no id and expects only its
# straddling meetings, as the join on names gave.)
_EXPECTATIONS = """
    CREATE OR REPLACE TEMP TABLE {act} AS
    SELECT platform, actor_id, epoch_us(ts) // {micros} AS s,
           count(DISTINCT source_id)::DOUBLE AS n
    FROM {actions}
    WHERE object_id IS NOT NULL AND actor_id IS NOT NULL {where}
    GROUP BY ALL;
    CREATE OR REPLACE TEMP TABLE {ids} AS
    SELECT platform, actor_id, (row_number() OVER ())::INTEGER AS aid
    FROM (SELECT DISTINCT platform, actor_id FROM {act});
    CREATE OR REPLACE TEMP TABLE {act_ids} AS
    SELECT i.aid, a.s, a.n FROM {act} a JOIN {ids} i USING (platform, actor_id);
    CREATE OR REPLACE TEMP TABLE {met} AS
    SELECT platform_1, account_1, platform_2, account_2,
           epoch_us(least(ts_1, ts_2)) // {micros} AS s,
           least(count(DISTINCT source_1), count(DISTINCT source_2)) AS w,
           bool_and(epoch_us(ts_1) // {micros} <> epoch_us(ts_2) // {micros})
               AS straddles
    FROM {events} GROUP BY ALL;
    CREATE OR REPLACE TEMP TABLE {rate} AS
    WITH strata AS (
        SELECT s, (sum(n) * sum(n) - sum(n * n)) / 2 AS possible
        FROM {act} GROUP BY ALL)
    SELECT s, sum(w) / greatest(any_value(possible), 1) AS r
    FROM {met} JOIN strata USING (s) GROUP BY ALL;
    CREATE OR REPLACE TEMP TABLE {pairs} AS
    WITH pairs AS (
        SELECT platform_1, account_1, platform_2, account_2, sum(w) AS w,
               sum(CASE WHEN straddles THEN (r.r * w)::{exact} ELSE 0 END)
                   AS straddling
        FROM {met} m JOIN {rate} r USING (s) GROUP BY ALL)
    SELECT i1.aid AS aid_1, i2.aid AS aid_2, p.*
    FROM pairs p
    LEFT JOIN {ids} i1 ON i1.platform = p.platform_1 AND i1.actor_id = p.account_1
    LEFT JOIN {ids} i2 ON i2.platform = p.platform_2 AND i2.actor_id = p.account_2;
    CREATE OR REPLACE TEMP TABLE {shared} AS
    SELECT p.aid_1, p.aid_2, sum((a.n * b.n * r.r)::{exact}) AS lam
    FROM (SELECT aid_1, aid_2 FROM {pairs}) p
    JOIN {act_ids} a ON a.aid = p.aid_1
    JOIN {act_ids} b ON b.aid = p.aid_2 AND b.s = a.s
    JOIN {rate} r ON r.s = a.s
    GROUP BY ALL;
    CREATE OR REPLACE TEMP TABLE {table} AS
    SELECT p.platform_1, p.account_1, p.platform_2, p.account_2, p.w::DOUBLE AS w,
           (coalesce(s.lam, 0) + p.straddling)::DOUBLE AS lam
    FROM {pairs} p
    LEFT JOIN {shared} s USING (aid_1, aid_2);
    DROP TABLE {act}; DROP TABLE {ids}; DROP TABLE {act_ids}; DROP TABLE {met};
    DROP TABLE {rate}; DROP TABLE {pairs}; DROP TABLE {shared};
"""


class DuckDBEngine:
    """The heavy stages in DuckDB, on connection ``con``.

    >>> con = duckdb.connect()
    >>> DuckDBEngine(con).name
    'duckdb'
    """

    name: ClassVar[str] = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def derive_actions(self, table: str, rows: str, into: str = "actions") -> int:
        if table not in _DERIVE:
            raise ConfigError(f"actions are derived from {', '.join(_DERIVE)}, not from {table!r}")
        # The normal forms of links and texts are SQL macros; a case's connection has
        # them already (Store), and making them again costs nothing.
        self.con.execute(SQL_MACROS)
        inserted = self.con.execute(f"INSERT INTO {into} {_DERIVE[table](rows)}").fetchone()
        return int(inserted[0]) if inserted else 0

    def pair(self, actions: str, layers: Sequence[CoAction]) -> Paired:
        if not layers:
            raise ConfigError("a pairing needs at least one co-action layer")
        found = CoActionLayers(tuple(layers)).detect(self.con, actions)
        return Paired(
            edges=f"({found.edges.sql_query()})",
            events=f"({found.events.sql_query()})",
            notes=found.notes,
            temporary=found.temporary,
        )

    def expectations(
        self,
        events: str,
        actions: str,
        *,
        stratum: float,
        kinds: tuple[str, ...] | None = None,
    ) -> str:
        where = stratum_filter(stratum, kinds)
        table = f"_engine_expectations_{next(_ids)}"
        self.con.execute(
            _EXPECTATIONS.format(
                micros=round(stratum * 1_000_000),
                where=where,
                actions=actions,
                events=events,
                exact=_EXACT,
                table=table,
                act=f"{table}_act",
                ids=f"{table}_ids",
                act_ids=f"{table}_act_ids",
                met=f"{table}_met",
                rate=f"{table}_rate",
                pairs=f"{table}_pairs",
                shared=f"{table}_shared",
            )
        )
        return table

    def release(self, *relations: str) -> None:
        for name in relations:
            self.con.execute(f"DROP TABLE IF EXISTS {name}")
