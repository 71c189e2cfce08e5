"""The parts of the page drawn from one campaign's accounts: who they are, the network
of their ties with each account's evidence, and their activity over time.

A :class:`Builder` works campaign by campaign: :meth:`Builder.select_members` puts the
campaign's members in ``_m``, their ties by layer in ``_e`` and by pair in ``_p``
(temporary tables of the result's connection), and the views read those.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from concerted.outputs.base import Result
from concerted.outputs.figures import (
    FRAMED_FROM,
    Limits,
    backbone,
    bucket,
    bucket_name,
    epoch,
    layout,
    number,
    when,
)

__all__ = ["Builder"]

# A network view draws every tie among its accounts while they are this few (or no more
# than Limits.node_ties per account); beyond, it draws the backbone (figures.backbone).
_ALL_TIES = 150
# Beyond the backbone, a dense network is also shown as an adjacency matrix of every tie
# among its drawn accounts, up to this many (the strongest).
_MATRIX_CELLS = 45_000


@dataclass
class Builder:
    """Collects the page's model: sections, chart and graph data, and caps."""

    res: Result
    limits: Limits
    hide_text: bool
    charts: dict[str, Any] = field(default_factory=dict)
    graphs: dict[str, Any] = field(default_factory=dict)
    caps: list[str] = field(default_factory=list)
    names: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def text(self, value: Any) -> str | None:
        if value is None:
            return None
        return None if self.hide_text else str(value)

    # ---- the members of one campaign and the evidence among them

    def select_members(self, campaign_id: str) -> int:
        res = self.res
        res.con.execute(
            """CREATE OR REPLACE TEMP TABLE _m AS
               SELECT platform, account_id, role, CAST(score AS DOUBLE) AS score, signals
               FROM members WHERE campaign_id = ?""",
            [campaign_id],
        )
        # Untested ties (the report detectors') have no significance: they count.
        res.con.execute(
            """CREATE OR REPLACE TEMP TABLE _e AS
               SELECT e.platform_1, e.account_1, e.platform_2, e.account_2, e.detector,
                      e.layer, e.weight, e.events, e.median_dt, e.q_value, e.first_ts,
                      e.last_ts
               FROM (SELECT * FROM edges WHERE coalesce(significant, true)) e
               SEMI JOIN _m a ON a.platform = e.platform_1 AND a.account_id = e.account_1
               SEMI JOIN _m b ON b.platform = e.platform_2 AND b.account_id = e.account_2"""
        )
        res.con.execute(
            """CREATE OR REPLACE TEMP TABLE _p AS
               SELECT platform_1, account_1, platform_2, account_2, sum(weight) AS weight,
                      sum(events) AS events, min(q_value) AS q_value
               FROM _e GROUP BY ALL"""
        )
        return int(res.value("SELECT count(*) FROM _m") or 0)

    def account_names(self) -> None:
        """Name and handle of every account of ``_m`` (accounts.parquet), cached."""
        for r in self.res.rows(
            """SELECT platform, account_id, kind, name, handle, created_at, followers
               FROM accounts SEMI JOIN _m USING (platform, account_id)"""
        ):
            self.names[(r["platform"], r["account_id"])] = r

    def label(self, platform: str, account_id: str) -> str:
        known = self.names.get((platform, account_id), {})
        handle = known.get("handle")
        return f"@{handle}" if handle else str(known.get("name") or account_id)

    def kind_of(self, platform: str, account_id: str, fallback: Any = None) -> str:
        known = self.names.get((platform, account_id), {})
        return str(known.get("kind") or fallback or "unknown")

    # ---- graph

    def graph(self, key: str, what: str, color_by: str) -> dict[str, Any]:
        """The network view of ``_m`` over the pairs in ``_p``: the most strongly tied
        accounts, their strongest ties, and each one's evidence."""
        res, limits = self.res, self.limits
        strength = res.rows(
            """WITH ends AS (
                   SELECT platform_1 AS platform, account_1 AS account_id, weight FROM _p
                   UNION ALL SELECT platform_2, account_2, weight FROM _p)
               SELECT platform, account_id, count(*) AS degree, sum(weight) AS strength
               FROM ends GROUP BY ALL ORDER BY strength DESC, platform, account_id"""
        )
        members = {
            (r["platform"], r["account_id"]): r
            for r in res.rows("SELECT platform, account_id, role FROM _m")
        }
        clustered = {
            (r["platform"], r["account_id"]): r
            for r in res.rows(
                "SELECT platform, account_id, kind, community FROM clusters "
                "SEMI JOIN _m USING (platform, account_id) "
                "ORDER BY platform, account_id, campaign_id DESC NULLS FIRST, community"
            )
        }
        kinds = {k: r["kind"] for k, r in clustered.items()}
        shown = strength[: limits.graph_nodes]
        if len(strength) > len(shown):
            self.caps.append(
                f"{what}: the network view shows the {len(shown):,} most strongly tied of "
                f"{len(strength):,} accounts with ties"
            )
        index = {(r["platform"], r["account_id"]): i for i, r in enumerate(shown)}
        self._table("_n", ("platform", "account_id"), list(index))
        ties_total = int(res.value("SELECT count(*) FROM _p") or 0)
        among = res.rows(
            """SELECT p.platform_1, p.account_1, p.platform_2, p.account_2, p.weight FROM _p p
               SEMI JOIN _n a ON a.platform = p.platform_1 AND a.account_id = p.account_1
               SEMI JOIN _n b ON b.platform = p.platform_2 AND b.account_id = p.account_2
               ORDER BY weight DESC, platform_1, account_1, platform_2, account_2"""
        )
        # A dense network drawn whole is a blob: draw its backbone, each account's
        # strongest ties and those that keep it connected, O(accounts) ties.
        dense = len(among) > max(limits.node_ties * len(shown), _ALL_TIES)
        if dense:
            keep = backbone(
                len(shown),
                np.array([index[(e["platform_1"], e["account_1"])] for e in among], dtype=int),
                np.array([index[(e["platform_2"], e["account_2"])] for e in among], dtype=int),
                np.array([float(e["weight"]) for e in among], dtype=float),
                limits.node_ties,
            )
            drawn = [e for e, k in zip(among, keep.tolist(), strict=True) if k]
        else:
            drawn = among
        if len(drawn) > limits.graph_edges:
            drawn = drawn[: limits.graph_edges]
            self.caps.append(
                f"{what}: the network view draws the {limits.graph_edges:,} strongest of "
                f"{ties_total:,} ties"
            )
        tie_rows = self._ties()
        pairs = {r["pair"] for r in tie_rows}
        self._table("_w", ("platform_1", "account_1", "platform_2", "account_2"), sorted(pairs))
        layers = self._layers()
        source = np.array([index[(e["platform_1"], e["account_1"])] for e in drawn], dtype=int)
        target = np.array([index[(e["platform_2"], e["account_2"])] for e in drawn], dtype=int)
        weight = np.array([float(e["weight"]) for e in drawn], dtype=float)
        community = np.array(
            [
                -1 if (c := clustered.get(key_, {}).get("community")) is None else int(c)
                for key_ in index
            ],
            dtype=int,
        )
        pos = layout(len(shown), source, target, weight, community)
        communities = len({int(c) for c in community if c >= 0})

        ties: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in tie_rows:
            ties.setdefault(r["node"], []).append(
                {
                    "with": self.label(*r["other"]),
                    "layers": layers.get(r["pair"], ""),
                    "weight": number(r["weight"]),
                    "events": r["events"],
                    "q": None if r["q_value"] is None else f"{r['q_value']:.2g}",
                }
            )
        signals = self._node_signals()
        events = self._node_events()
        platforms = sorted({p for p, _ in index})
        groups: list[str] = []
        nodes = []
        for i, r in enumerate(shown):
            key_ = (r["platform"], r["account_id"])
            role = members.get(key_, {}).get("role") or "member"
            kind = self.kind_of(*key_, kinds.get(key_))
            group = kind if color_by == "kind" else role
            if group not in groups:
                groups.append(group)
            known = self.names.get(key_, {})
            nodes.append(
                {
                    "id": f"n{i}",
                    "label": self.label(*key_),
                    "account_id": key_[1],
                    "platform": key_[0],
                    "kind": kind,
                    "role": role,
                    "name": known.get("name"),
                    "handle": known.get("handle"),
                    "group": group,
                    "shape": platforms.index(key_[0]),
                    "degree": int(r["degree"]),
                    "strength": number(float(r["strength"])),
                    "x": round(float(pos[i, 0]), 1),
                    "y": round(float(pos[i, 1]), 1),
                    "ties": ties.get(key_, []),
                    "signals": signals.get(key_, []),
                    "events": events.get(key_, []),
                }
            )
        edges = [
            {"s": f"n{int(source[j])}", "t": f"n{int(target[j])}", "w": number(float(weight[j]))}
            for j in range(len(drawn))
        ]
        matrix = self._matrix(among, index, community, shown) if dense else None
        self.graphs[key] = {
            "nodes": nodes,
            "edges": edges,
            "groups": groups,
            "platforms": platforms,
            "matrix": matrix,
        }
        return {
            "key": key,
            "nodes": len(nodes),
            "edges": len(edges),
            "accounts_with_ties": len(strength),
            "isolated": max(len(members) - len(strength), 0),
            "ties": ties_total,
            "backbone": limits.node_ties if dense else None,
            "matrix": len(matrix["cells"]) if matrix else 0,
            "matrix_ties": len(among) if matrix else 0,
            "communities": communities,
            "framed": len(shown) >= FRAMED_FROM,
            "groups": groups,
            "platforms": platforms,
        }

    def _matrix(
        self,
        among: Sequence[Mapping[str, Any]],
        index: Mapping[tuple[str, str], int],
        community: np.ndarray[Any, Any],
        shown: Sequence[Mapping[str, Any]],
    ) -> dict[str, Any]:
        """The adjacency matrix of a dense network: every tie among its shown accounts
        (up to :data:`_MATRIX_CELLS`, the strongest), not only the backbone.

        ``order`` lists the node numbers along both axes: community by community (the
        largest first; accounts in no community last), strongest accounts first within
        one, so that a group acting together is a dark block on the diagonal.
        ``cells`` holds ``[row, column, weight]`` by position in ``order``, each tie
        once (row < column); ``bounds`` the positions where a community starts.
        """
        n = len(shown)
        strength = np.array([float(r["strength"]) for r in shown], dtype=float)
        sizes = np.bincount(community[community >= 0]) if (community >= 0).any() else None
        size = np.array(
            [0 if c < 0 or sizes is None else int(sizes[c]) for c in community.tolist()]
        )
        group = np.where(community >= 0, community, np.iinfo(np.int64).max)
        order = np.lexsort((np.arange(n), -strength, group, -size))
        position = np.empty(n, dtype=int)
        position[order] = np.arange(n)
        cells = []
        for e in among[:_MATRIX_CELLS]:
            a = int(position[index[(e["platform_1"], e["account_1"])]])
            b = int(position[index[(e["platform_2"], e["account_2"])]])
            cells.append([min(a, b), max(a, b), number(float(e["weight"]))])
        if len(among) > _MATRIX_CELLS:
            self.caps.append(
                f"the adjacency matrix shows the {_MATRIX_CELLS:,} strongest of "
                f"{len(among):,} ties among the accounts drawn"
            )
        ordered = community[order]
        bounds = [i for i in range(1, n) if ordered[i] != ordered[i - 1]]
        return {"order": [int(i) for i in order], "cells": cells, "bounds": bounds}

    def _table(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """A temporary table of text columns holding ``rows``."""
        data = {c: pa.array([r[i] for r in rows], type=pa.string()) for i, c in enumerate(columns)}
        view = f"{name}_arrow"
        self.res.con.register(view, pa.table(data))
        try:
            self.res.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {view}")
        finally:
            self.res.con.unregister(view)

    def _ties(self) -> list[dict[str, Any]]:
        """Each shown account's strongest ties (pairs of ``_p``), strongest first."""
        rows = self.res.rows(
            f"""WITH ends AS (
                    SELECT platform_1 AS platform, account_1 AS account_id,
                           platform_2 AS other_platform, account_2 AS other, weight, events,
                           q_value, platform_1, account_1, platform_2, account_2 FROM _p
                    UNION ALL
                    SELECT platform_2, account_2, platform_1, account_1, weight, events,
                           q_value, platform_1, account_1, platform_2, account_2 FROM _p)
                SELECT * FROM ends SEMI JOIN _n USING (platform, account_id)
                QUALIFY row_number() OVER (PARTITION BY platform, account_id
                                           ORDER BY weight DESC, other_platform, other)
                        <= {self.limits.node_evidence}
                ORDER BY platform, account_id, weight DESC, other_platform, other"""
        )
        return [
            {
                "node": (r["platform"], r["account_id"]),
                "other": (r["other_platform"], r["other"]),
                "pair": (r["platform_1"], r["account_1"], r["platform_2"], r["account_2"]),
                "weight": r["weight"],
                "events": r["events"],
                "q_value": r["q_value"],
            }
            for r in rows
        ]

    def _layers(self) -> dict[tuple[str, str, str, str], str]:
        """What each pair of ``_w`` shared, strongest layer first: 'repost 12 · text 3'."""
        rows = self.res.rows(
            """SELECT platform_1, account_1, platform_2, account_2,
                      string_agg(layer || ' ' || CAST(round(weight) AS BIGINT), ' · '
                                 ORDER BY weight DESC, layer) AS layers
               FROM _e SEMI JOIN _w USING (platform_1, account_1, platform_2, account_2)
               GROUP BY ALL"""
        )
        return {
            (r["platform_1"], r["account_1"], r["platform_2"], r["account_2"]): r["layers"]
            for r in rows
        }

    def _node_signals(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        rows = self.res.rows(
            f"""SELECT s.platform, s.id AS account_id, s.detector, s.layer, s.score, s.value,
                       s.detail
                FROM signals s JOIN _n n ON n.platform = s.platform AND n.account_id = s.id
                WHERE s.entity = 'account'
                QUALIFY row_number() OVER (PARTITION BY s.platform, s.id
                                           ORDER BY s.score DESC, s.detector, layer)
                        <= {self.limits.node_evidence}
                ORDER BY s.platform, s.id, s.score DESC, s.detector, layer"""
        )
        out: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in rows:
            out.setdefault((r["platform"], r["account_id"]), []).append(
                {
                    "detector": r["detector"],
                    "layer": r["layer"],
                    "score": number(r["score"]),
                    "value": number(r["value"]),
                    "detail": r["detail"],
                }
            )
        return out

    def _node_events(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """The first matched actions of each shown account with its strongest ties (the
        pairs of ``_w``: reading every event of a big network would take long)."""
        rows = self.res.rows(
            f"""WITH ev AS (
                    SELECT * FROM events
                    SEMI JOIN _w USING (platform_1, account_1, platform_2, account_2)),
                ends AS (
                    SELECT platform_1 AS platform, account_1 AS account_id, platform_2 AS op,
                           account_2 AS other, layer, object_id, ts_1 AS ts, ts_2 AS other_ts,
                           source_1 AS source FROM ev
                    UNION ALL
                    SELECT platform_2, account_2, platform_1, account_1, layer, object_id,
                           ts_2, ts_1, source_2 FROM ev)
                SELECT * FROM ends SEMI JOIN _n USING (platform, account_id)
                QUALIFY row_number() OVER (PARTITION BY platform, account_id
                                           ORDER BY ts, layer, object_id, op, other)
                        <= {self.limits.node_evidence}
                ORDER BY platform, account_id, ts, layer, object_id, op, other"""
        )
        out: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in rows:
            gap = None
            if r["ts"] is not None and r["other_ts"] is not None:
                gap = round(abs((r["other_ts"] - r["ts"]).total_seconds()))
            out.setdefault((r["platform"], r["account_id"]), []).append(
                {
                    "layer": r["layer"],
                    "object": r["object_id"],
                    "when": when(r["ts"]),
                    "with": self.label(r["op"], r["other"]),
                    "gap": gap,
                    "source": r["source"],
                }
            )
        return out

    # ---- timelines

    def activity(self, key: str, campaign: Mapping[str, Any]) -> dict[str, Any]:
        """The campaign's actions over time, by kind."""
        res = self.res
        first, last = epoch(campaign.get("first_ts")), epoch(campaign.get("last_ts"))
        rows = res.rows(
            """SELECT epoch(bucket) AS t, kind, sum(actions) AS n FROM timeline
               WHERE campaign_id = ? GROUP BY ALL""",
            [campaign["campaign_id"]],
        )
        source = "all actions of the campaign's accounts (timeline.parquet)"
        if not rows:
            return {"key": None, "source": None, "outside": 0}
        if first is None or last is None:
            first = min(float(r["t"]) for r in rows)
            last = max(float(r["t"]) for r in rows)
        width = bucket(max(last - first, 1.0), self.limits.timeline_points, 3600)
        start = math.floor(first / width) * width
        count = int((last - start) // width) + 1
        kinds = sorted({str(r["kind"]) for r in rows})
        series = {k: [0.0] * count for k in kinds}
        outside = 0
        for r in rows:
            i = int((float(r["t"]) - start) // width)
            if 0 <= i < count:
                series[str(r["kind"])][i] += float(r["n"])
            else:
                outside += int(r["n"])
        totals = {k: sum(v) for k, v in series.items()}
        if not any(totals.values()):
            return {"key": None, "source": source, "outside": outside}
        ordered = sorted(kinds, key=lambda k: (-totals[k], k))
        self.charts[key] = {
            "type": "lines",
            "x": [start + i * width for i in range(count)],
            "series": [{"label": k, "values": series[k]} for k in ordered if totals[k] > 0],
            "y": f"actions per {bucket_name(width)}",
        }
        return {"key": key, "source": source, "outside": outside, "bucket": bucket_name(width)}
