"""Reporters: the network of significant, exclusive co-reporting pairs, cut into
brigades.

The network is cut to its ``min_degree``-core and falls into connected components
(:func:`concerted.cluster.core`, :func:`concerted.cluster.components`). Components
with members in one dense block (S3), or with two members who walked one list in the
same order (S8), join; neither creates a component. An account outside the core joins
the component to whose members it has ``attach_edges`` exclusive co-reporting pairs of
weight ``attach_weight`` or more, significant or not.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from concerted import cluster
from concerted.brigades.test import exclusive
from concerted.brigades.workspace import BLOCKS, CO_REPORT, ORDER, Workspace
from concerted.config import BrigadeSettings
from concerted.graph import Network

__all__ = ["reporters"]


def _network(n: int, source: Any, target: Any) -> Network:
    return Network(
        nodes=pa.table({"node": pa.array(np.arange(n), pa.int64())}),
        edges=pa.table(
            {
                "source": pa.array(source, pa.int64()),
                "target": pa.array(target, pa.int64()),
                "weight": pa.array(np.ones(len(source)), pa.float64()),
            }
        ),
    )


def reporters(ws: Workspace, settings: BrigadeSettings) -> tuple[int, dict[str, Any]]:
    """Cluster the reporters into ``_bg_clusters`` (``platform, account_id, cluster,
    core``). Returns the number of clusters and notes."""
    ws.table(
        "_bg_ties",
        f"""SELECT DISTINCT platform_1, account_1, platform_2, account_2
            FROM ({exclusive("_bg_edges", settings)}
                  AND e.detector = '{CO_REPORT}' AND e.significant)""",
    )
    ws.table(
        "_bg_nodes",
        """SELECT platform, account_id,
                  (row_number() OVER (ORDER BY platform, account_id) - 1)::BIGINT AS node
           FROM (SELECT platform_1 AS platform, account_1 AS account_id FROM _bg_ties
                 UNION SELECT platform_2, account_2 FROM _bg_ties)""",
    )
    pairs = ws.con.sql(
        """SELECT n1.node, n2.node FROM _bg_ties t
           JOIN _bg_nodes n1 ON n1.platform = t.platform_1 AND n1.account_id = t.account_1
           JOIN _bg_nodes n2 ON n2.platform = t.platform_2 AND n2.account_id = t.account_2"""
    ).fetchnumpy()
    n = int(ws.scalar("SELECT count(*) FROM _bg_nodes"))
    source = np.asarray(pairs["node"], dtype=np.int64)
    target = np.asarray(pairs["node_1"], dtype=np.int64)
    keep = cluster.core(_network(n, source, target), settings.min_degree)
    live = keep[source] & keep[target]
    labels = np.where(keep, cluster.components(_network(n, source[live], target[live])), -1)
    labelled = pa.table({"node": pa.array(np.arange(n), pa.int64()), "label": pa.array(labels)})
    with ws.arrow("_bg_labels", labelled):
        ws.table(
            "_bg_core",
            """SELECT n.platform, n.account_id, l.label AS cluster
               FROM _bg_nodes n JOIN _bg_labels l USING (node) WHERE l.label >= 0""",
        )
    merged = _merge(ws, settings)
    # Accounts outside the core tied to many of a component's members join it.
    ws.table(
        "_bg_attached",
        f"""WITH x AS ({exclusive("_bg_edges", settings)}
                       AND e.detector = '{CO_REPORT}' AND e.weight >= {settings.attach_weight}),
            e AS (
                SELECT platform_1 AS p, account_1 AS a, platform_2 AS q, account_2 AS b FROM x
                UNION ALL SELECT platform_2, account_2, platform_1, account_1 FROM x),
            tied AS (
                SELECT e.p AS platform, e.a AS account_id, c.cluster, count(*) AS ties
                FROM e JOIN _bg_core c ON c.platform = e.q AND c.account_id = e.b
                WHERE NOT EXISTS (SELECT 1 FROM _bg_core x
                                  WHERE x.platform = e.p AND x.account_id = e.a)
                GROUP BY ALL HAVING count(*) >= {settings.attach_edges})
            SELECT platform, account_id, cluster FROM tied
            QUALIFY row_number() OVER (PARTITION BY platform, account_id
                                       ORDER BY ties DESC, cluster) = 1""",
    )
    ws.table(
        "_bg_clusters",
        """SELECT platform, account_id, cluster, true AS core FROM _bg_core
           UNION ALL SELECT platform, account_id, cluster, false FROM _bg_attached""",
    )
    clusters = int(ws.scalar("SELECT count(DISTINCT cluster) FROM _bg_clusters"))
    notes = {
        "network_reporters": n,
        "core_reporters": int(keep.sum()),
        "attached_reporters": int(ws.scalar("SELECT count(*) FROM _bg_attached")),
        "components_joined": merged,
        "components": clusters,
    }
    return clusters, notes


def _merge(ws: Workspace, settings: BrigadeSettings) -> int:
    """Relabel ``_bg_core`` so that components whose members reported ``join_targets``
    targets of one dense block (S3), or whose members walked one list in the same order
    (S8), are one; returns how many components were joined into others. Neither creates
    a component: both only join what significant co-reporting found.

    A block alone does not join: peeling can keep a few heavy everyday reporters in a
    block (see :mod:`~concerted.detectors.dense_block`), and through them the blocks
    of brigades that share no target come out as one (on 3 million synthetic reports,
    four brigades were one campaign); and two brigades may both report one target by
    chance (two of those four did)."""
    fired = settings.fired
    links = ws.con.sql(
        f"""WITH m AS (
                SELECT s.related_id AS block, c.cluster, c.platform, c.account_id
                FROM _bg_signals s
                JOIN _bg_core c ON c.platform = s.platform AND c.account_id = s.id
                WHERE s.detector = '{BLOCKS}' AND s.entity = 'account'
                  AND s.related_id IS NOT NULL AND s.score >= {fired}),
            t AS (SELECT related_id AS block, platform, id AS target_id FROM _bg_signals
                  WHERE detector = '{BLOCKS}' AND entity = 'target'
                    AND related_id IS NOT NULL),
            b AS (
                SELECT DISTINCT m.block, m.cluster, t.platform, t.target_id
                FROM m JOIN reports r ON r.platform = m.platform
                 AND r.reporter_id = m.account_id
                JOIN t ON t.block = m.block AND t.platform = r.platform
                 AND t.target_id = r.target_id)
            SELECT x.cluster, y.cluster FROM b x JOIN b y
            ON x.block = y.block AND x.platform = y.platform AND x.target_id = y.target_id
             AND x.cluster < y.cluster
            GROUP BY x.cluster, y.cluster
            HAVING count(DISTINCT (x.platform, x.target_id)) >= {settings.join_targets}
            UNION
            SELECT DISTINCT least(c1.cluster, c2.cluster), greatest(c1.cluster, c2.cluster)
            FROM _bg_edges e
            JOIN _bg_core c1 ON c1.platform = e.platform_1 AND c1.account_id = e.account_1
            JOIN _bg_core c2 ON c2.platform = e.platform_2 AND c2.account_id = e.account_2
            WHERE e.detector = '{ORDER}' AND coalesce(e.score, 1.0) >= {fired}
              AND c1.cluster <> c2.cluster"""
    ).fetchall()
    if not links:
        return 0
    top = int(ws.scalar("SELECT coalesce(max(cluster), -1) + 1 FROM _bg_core"))
    joined = cluster.components(_network(top, [a for a, _ in links], [b for _, b in links]))
    merged = pa.table({"cluster": pa.array(np.arange(top)), "merged": pa.array(joined)})
    with ws.arrow("_bg_join", merged):
        ws.table(
            "_bg_core",
            """SELECT c.platform, c.account_id, j.merged AS cluster
               FROM _bg_core c JOIN _bg_join j USING (cluster)""",
        )
    return int(top - len(set(joined.tolist())))
