"""From clusters of accounts to campaigns, counted the way takedown reports count them.

A cluster of the significant network holds the accounts that acted together. Some
assets of an operation never act themselves: a group's posts are its members', and
the people who run the pages and groups may post little. So a campaign is its cluster
plus

* the pages and groups (``venue_id`` of posts) where at least ``venue_share`` of the
  posts, and at least ``venue_min_posts`` of them, come from the cluster's accounts
  (signal ``venue``);
* the admins (``roles``) of every page and group of the campaign, as organisers
  (signal ``admin``).

Only clusters of at least ``min_accounts`` accounts are flagged; smaller ones are kept,
unflagged, so that nothing found is hidden.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from concerted.cluster import core, renumber
from concerted.config import CampaignSettings
from concerted.graph import Network
from concerted.schema import RESULT_CONTRACTS, arrow_schema

__all__ = ["Campaigns", "build", "core", "join_shared_organisers"]


@dataclass(frozen=True)
class Campaigns:
    """The result tables of a network analysis, in :data:`RESULT_CONTRACTS` shape."""

    campaigns: pa.Table
    members: pa.Table

    def with_summaries(self, summaries: Sequence[dict[str, Any]]) -> Campaigns:
        """The campaigns with each one's summary (keyed by ``cluster`` = campaign id)
        merged into its ``summary`` column."""
        by_id = {str(s["cluster"]): s for s in summaries}
        merged = []
        for cid, text in zip(
            self.campaigns.column("campaign_id").to_pylist(),
            self.campaigns.column("summary").to_pylist(),
            strict=True,
        ):
            summary = {**json.loads(text or "{}"), **by_id.get(str(cid), {})}
            summary.pop("cluster", None)
            merged.append(json.dumps(summary, sort_keys=True, default=str))
        index = self.campaigns.schema.get_field_index("summary")
        field = self.campaigns.schema.field("summary")
        table = self.campaigns.set_column(index, field, pa.array(merged, type=pa.string()))
        return Campaigns(campaigns=table, members=self.members)

    def with_members(self, rows: Sequence[dict[str, Any]]) -> Campaigns:
        """The campaigns with these member rows, each campaign's ``accounts`` and
        ``signals`` brought up to date (signals: the union of its members')."""
        members = pa.Table.from_pylist(list(rows), schema=arrow_schema(RESULT_CONTRACTS["members"]))
        count: dict[str, int] = {}
        fired: dict[str, set[str]] = {}
        for r in rows:
            count[r["campaign_id"]] = count.get(r["campaign_id"], 0) + 1
            fired.setdefault(r["campaign_id"], set()).update(r["signals"] or [])
        ids = [str(c) for c in self.campaigns.column("campaign_id").to_pylist()]
        table = self.campaigns
        for column, values, kind in (
            ("accounts", [count.get(c, 0) for c in ids], pa.int64()),
            ("signals", [sorted(fired.get(c, set())) for c in ids], pa.list_(pa.string())),
        ):
            index = table.schema.get_field_index(column)
            table = table.set_column(index, table.schema.field(column), pa.array(values, type=kind))
        return Campaigns(campaigns=table, members=members)

    @property
    def flagged(self) -> int:
        return sum(bool(f) for f in self.campaigns.column("flagged").to_pylist())


_ATTRIBUTE = """
WITH m AS (SELECT * FROM _campaign_members),
venues AS (
    SELECT m.campaign_id, p.platform, p.venue_id, count(*) AS by_members
    FROM posts p JOIN m ON m.platform = p.platform AND m.account_id = p.account_id
    WHERE p.venue_id IS NOT NULL GROUP BY ALL),
totals AS (
    SELECT platform, venue_id, count(*) AS posts FROM posts
    WHERE venue_id IS NOT NULL GROUP BY ALL)
SELECT v.campaign_id, v.platform, v.venue_id AS account_id,
       v.by_members / t.posts AS share
FROM venues v JOIN totals t USING (platform, venue_id)
WHERE v.by_members >= {min_posts} AND v.by_members / t.posts >= {share}
  AND NOT EXISTS (SELECT 1 FROM m WHERE m.campaign_id = v.campaign_id
                  AND m.platform = v.platform AND m.account_id = v.venue_id)
"""

_ORGANISERS = """
WITH venues AS (
    SELECT campaign_id, platform, account_id AS venue_id FROM _campaign_venues
    UNION
    SELECT m.campaign_id, m.platform, m.account_id FROM _campaign_members m
    JOIN accounts a USING (platform, account_id) WHERE a.kind IN ('page', 'group'))
SELECT v.campaign_id, r.platform, r.account_id, count(DISTINCT r.venue_id) AS venues
FROM roles r JOIN venues v ON v.platform = r.platform AND v.venue_id = r.venue_id
WHERE r.role = 'admin' GROUP BY ALL
"""


def _density(ties: int, accounts: int) -> float:
    """The share of the pairs of ``accounts`` that are tied: a network's score.

    >>> _density(3, 3), _density(2, 4), _density(0, 1)
    (1.0, 0.333333, 0.0)
    """
    pairs = accounts * (accounts - 1) // 2
    return round(min(1.0, ties / pairs), 6) if pairs else 0.0


def build(
    con: duckdb.DuckDBPyConnection,
    network: Network,
    labels: npt.NDArray[np.int64],
    in_core: npt.NDArray[np.bool_],
    *,
    min_accounts: int,
    settings: CampaignSettings,
    spans: Mapping[int, tuple[datetime, datetime]] | None = None,
    names: Mapping[str, str] | None = None,
) -> Campaigns:
    """Campaigns and their members from cluster ``labels`` over the core nodes.

    ``con`` must hold the case's ``posts``, ``roles`` and ``accounts``. ``spans`` gives
    each cluster's first and last matched action; ``names`` the signal name of a
    layer, where it is not a co-action kind (``co_action:<kind>``). Campaigns are
    numbered ``network-1``, ``network-2``, ... from the largest cluster down.
    """
    nodes = network.nodes
    source = network.edges.column("source").to_numpy()
    target = network.edges.column("target").to_numpy()
    weight = network.edges.column("weight").to_numpy()
    inside = in_core[source] & in_core[target] & (labels[source] == labels[target])
    strength = np.bincount(
        source[inside], weights=weight[inside], minlength=network.num_nodes
    ) + np.bincount(target[inside], weights=weight[inside], minlength=network.num_nodes)
    layers = network.layers
    named = dict(names or {})

    def signal(layer: str) -> str:
        return named.get(layer, f"co_action:{layer}")

    layer_of = {layer: network.edges.column(f"weight_{layer}").to_numpy() > 0 for layer in layers}
    clusters = sorted({int(c) for c in labels[in_core]})
    number = {c: i + 1 for i, c in enumerate(clusters)}
    platform = nodes.column("platform").to_pylist()
    account = nodes.column("account_id").to_pylist()

    n = network.num_nodes
    node_layers = {
        x: (
            np.bincount(source[inside & m], minlength=n)
            + np.bincount(target[inside & m], minlength=n)
        )
        > 0
        for x, m in layer_of.items()
    }
    member_rows: list[dict[str, Any]] = []
    for node in np.flatnonzero(in_core):
        c = int(labels[node])
        member_rows.append(
            {
                "campaign_id": f"network-{number[c]}",
                "account_id": account[node],
                "platform": platform[node],
                "role": "member",
                "score": float(strength[node]),
                "signals": [signal(x) for x in layers if node_layers[x][node]],
            }
        )
    members = pa.Table.from_pylist(member_rows, schema=arrow_schema(RESULT_CONTRACTS["members"]))

    con.register("_campaign_members", members)
    try:
        venues = con.sql(
            _ATTRIBUTE.format(min_posts=settings.venue_min_posts, share=settings.venue_share)
        ).to_arrow_table()
        con.register("_campaign_venues", venues)
        organisers = con.sql(_ORGANISERS).to_arrow_table()
    finally:
        con.unregister("_campaign_members")
    con.unregister("_campaign_venues")

    by_key = {(r["campaign_id"], r["platform"], r["account_id"]): r for r in member_rows}
    for v in venues.to_pylist():
        by_key[(v["campaign_id"], v["platform"], v["account_id"])] = {
            "campaign_id": v["campaign_id"],
            "account_id": v["account_id"],
            "platform": v["platform"],
            "role": "member",
            "score": float(v["share"]),
            "signals": ["venue"],
        }
    for o in organisers.to_pylist():
        key = (o["campaign_id"], o["platform"], o["account_id"])
        row = by_key.setdefault(
            key,
            {
                "campaign_id": o["campaign_id"],
                "account_id": o["account_id"],
                "platform": o["platform"],
                "score": float(o["venues"]),
                "signals": [],
            },
        )
        row["role"] = "organiser"
        row["signals"] = [*row["signals"], "admin"]
    ordered = sorted(
        by_key.values(), key=lambda r: (r["campaign_id"], r["platform"], r["account_id"])
    )
    members = pa.Table.from_pylist(ordered, schema=arrow_schema(RESULT_CONTRACTS["members"]))

    spans = spans or {}
    # Per-cluster figures in one pass each, not one pass per cluster.
    k = (max(clusters) + 1) if clusters else 0
    size = np.bincount(labels[in_core], minlength=k)
    strength_sum = np.bincount(labels[in_core], weights=strength[in_core], minlength=k)
    edge_cluster = labels[source][inside]
    ties = np.bincount(edge_cluster, minlength=k)
    cluster_layers = {
        x: np.bincount(labels[source][inside & m], minlength=k) > 0 for x, m in layer_of.items()
    }
    by_campaign: dict[str, list[dict[str, Any]]] = {}
    for r in ordered:
        by_campaign.setdefault(r["campaign_id"], []).append(r)
    campaign_rows: list[dict[str, Any]] = []
    for c in clusters:
        cid = f"network-{number[c]}"
        rows = by_campaign.get(cid, [])
        summary: dict[str, Any] = {
            "acting_accounts": int(size[c]),
            "venues_attributed": sum("venue" in r["signals"] for r in rows),
            "organisers": sum(r["role"] == "organiser" for r in rows),
            "ties": int(ties[c]),
        }
        campaign_rows.append(
            {
                "campaign_id": cid,
                "kind": "network",
                "score": _density(int(ties[c]), int(size[c])),
                "strength": float(strength_sum[c] / size[c]) if size[c] else 0.0,
                "flagged": bool(size[c] >= min_accounts),
                "signals": [signal(x) for x in layers if cluster_layers[x][c]],
                "accounts": len(rows),
                "targets": None,
                "reports": None,
                "first_ts": spans.get(c, (None, None))[0],
                "last_ts": spans.get(c, (None, None))[1],
                "summary": json.dumps(summary, sort_keys=True, default=str),
            }
        )
    campaigns = pa.Table.from_pylist(
        campaign_rows, schema=arrow_schema(RESULT_CONTRACTS["campaigns"])
    )
    return Campaigns(campaigns=campaigns, members=members)


def join_shared_organisers(
    found: Campaigns, labels: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Cluster ``labels`` with the clusters whose campaigns share an organiser (an
    admin of their pages or groups) joined: the same people run them, so they are one
    operation however their accounts' ties fell into communities. Numbered again from
    the largest down, -1 kept outside the core; unchanged where nothing is shared.

    >>> import pyarrow as pa
    >>> from concerted.schema import RESULT_CONTRACTS, arrow_schema
    >>> members = pa.Table.from_pylist([
    ...     {"campaign_id": "network-1", "account_id": "boss", "platform": "x",
    ...      "role": "organiser", "score": 1.0, "signals": ["admin"]},
    ...     {"campaign_id": "network-2", "account_id": "boss", "platform": "x",
    ...      "role": "organiser", "score": 1.0, "signals": ["admin"]}],
    ...     schema=arrow_schema(RESULT_CONTRACTS["members"]))
    >>> found = Campaigns(campaigns=arrow_schema(RESULT_CONTRACTS["campaigns"]).empty_table(),
    ...                   members=members)
    >>> join_shared_organisers(found, np.array([0, 0, 1, -1, 2])).tolist()
    [0, 0, 0, -1, 1]
    """
    clusters = sorted({int(c) for c in labels if c >= 0})
    of_campaign = {f"network-{i + 1}": c for i, c in enumerate(clusters)}
    parent = {c: c for c in clusters}

    def root(c: int) -> int:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    first: dict[tuple[str, str], int] = {}
    for row in found.members.to_pylist():
        if row["role"] != "organiser" or row["campaign_id"] not in of_campaign:
            continue
        c = of_campaign[row["campaign_id"]]
        key = (row["platform"], row["account_id"])
        if key in first:
            a, b = root(first[key]), root(c)
            parent[max(a, b)] = min(a, b)
        else:
            first[key] = c
    if all(root(c) == c for c in clusters):
        return labels
    joined = np.array([root(int(c)) if c >= 0 else -1 for c in labels], dtype=np.int64)
    inside = joined >= 0
    # Largest first, as clusters are numbered everywhere.
    joined[inside] = renumber(joined[inside])
    return joined
