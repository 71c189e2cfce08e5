"""Score: each brigade's signal strengths and its one score, then every report's.

**Signal strengths**, in [0, 1] per brigade: for pair detectors (``co_report``,
``list_order``), the share of members with a tie of that detector inside the brigade
(significant ties for ``co_report``); for account signals, the mean over members of
each one's highest score; for target signals, the mean over its targets; for report
signals, the mean over its reports; for post signals (M1, M3), the highest score among
the posts naming its targets from ``lead`` before its span to ``lead`` after. The
brigade's score is the noisy-or ``1 - prod(1 - weight * strength)`` with the weights
of ``signal_weights``.

**Reports**: the causal score of every report (:func:`concerted.scoring.score_reports`),
then what hindsight adds (see :mod:`concerted.brigades`, step 5).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from concerted.brigades.workspace import BATCH_ROWS, CO_REPORT, Workspace, mapped
from concerted.config import BrigadeSettings
from concerted.schema import RESULT_CONTRACTS, arrow_schema, sql_literal
from concerted.scoring import RECOMMENDATIONS, score_reports

__all__ = ["PROTECTED_SCHEMA", "noisy_or", "reports", "strengths", "with_brigade"]

_PROTECTED_FIELDS: list[pa.Field[Any]] = [
    pa.field("platform", pa.string(), nullable=False),
    pa.field("target_id", pa.string(), nullable=False),
    pa.field("target_kind", pa.string()),
    pa.field("reports", pa.int64(), nullable=False),
    pa.field("flagged", pa.int64(), nullable=False),
    pa.field("share", pa.float64(), nullable=False),
    pa.field("campaign_id", pa.string()),
]
#: The columns of the targets to protect (``protected.parquet``).
PROTECTED_SCHEMA = pa.schema(_PROTECTED_FIELDS)


def _entity_strengths(entity: str, table: str, key: str, fired: float) -> str:
    """SQL: ``detector, cluster, strength, count`` for the signals on ``entity``: each
    entity's strongest signal per detector, summed over the cluster's entities in
    ``table`` (id column ``key``) over their number, and the entities it fired on."""
    return f"""
        WITH s AS (SELECT detector, platform, id, max(score) AS score FROM _bg_signals
                   WHERE entity = {sql_literal(entity)} GROUP BY ALL),
        sizes AS (SELECT cluster, count(*) AS n FROM {table} GROUP BY cluster)
        SELECT s.detector, x.cluster, sum(s.score) / any_value(sizes.n),
               count(*) FILTER (WHERE s.score >= {fired})
        FROM s JOIN {table} x ON x.platform = s.platform AND x.{key} = s.id
        JOIN sizes USING (cluster) GROUP BY ALL"""


def strengths(ws: Workspace, settings: BrigadeSettings) -> dict[int, dict[str, dict[str, float]]]:
    """For each cluster, each detector's strength and how many entities it fired on."""
    fired = settings.fired
    lead = f"INTERVAL ({settings.lead}) SECOND"
    queries = {
        # Pair detectors: share of members with a tie inside the cluster.
        "pairs": f"""
            WITH t AS (
                SELECT e.detector, c1.cluster, e.platform_1 AS p, e.account_1 AS a,
                       e.platform_2 AS q, e.account_2 AS b
                FROM _bg_edges e
                JOIN _bg_clusters c1 ON c1.platform = e.platform_1
                 AND c1.account_id = e.account_1
                JOIN _bg_clusters c2 ON c2.platform = e.platform_2
                 AND c2.account_id = e.account_2 AND c2.cluster = c1.cluster
                WHERE (e.detector = '{CO_REPORT}' AND e.significant)
                   OR (e.detector <> '{CO_REPORT}' AND coalesce(e.score, 1.0) >= {fired})),
            ends AS (SELECT detector, cluster, p, a FROM t UNION SELECT detector, cluster, q, b
                     FROM t),
            sizes AS (SELECT cluster, count(*) AS n FROM _bg_clusters GROUP BY cluster)
            SELECT detector, cluster, count(*) / any_value(sizes.n), count(*)
            FROM ends JOIN sizes USING (cluster) GROUP BY ALL""",
        # Signals on one entity of the cluster's: mean score over its entities, and
        # how many it fired on.
        "account": _entity_strengths("account", "_bg_clusters", "account_id", fired),
        "target": _entity_strengths("target", "_bg_targets", "target_id", fired),
        "report": _entity_strengths("report", "_bg_reports", "report_id", fired),
        "post": f"""
            SELECT s.detector, t.cluster, max(s.score),
                   count(DISTINCT s.id) FILTER (WHERE s.score >= {fired})
            FROM _bg_signals s
            JOIN _bg_targets t ON t.platform = s.platform AND t.target_id = s.related_id
            JOIN _bg_spans sp ON sp.cluster = t.cluster
            LEFT JOIN posts p ON p.platform = s.platform AND p.post_id = s.id
            WHERE s.entity = 'post'
              AND coalesce(p.ts, s.first_ts, sp.first_ts)
                  BETWEEN sp.first_ts - {lead} AND sp.last_ts + {lead}
            GROUP BY ALL""",
    }
    out: dict[int, dict[str, dict[str, float]]] = {}
    for query in queries.values():
        for detector, cluster, strength, count in ws.con.sql(query).fetchall():
            held = out.setdefault(int(cluster), {}).setdefault(
                str(detector), {"strength": 0.0, "fired_on": 0}
            )
            # A detector with rows on several entities keeps its strongest.
            if float(strength) > held["strength"]:
                held["strength"] = min(1.0, float(strength))
            held["fired_on"] = max(int(held["fired_on"]), int(count))
    return out


def noisy_or(strengths: Mapping[str, Mapping[str, float]], weights: Mapping[str, float]) -> float:
    keep = 1.0
    for name, part in strengths.items():
        keep *= 1.0 - weights.get(name, 0.0) * float(part["strength"])
    return round(1.0 - keep, 6)


def reports(
    ws: Workspace,
    settings: BrigadeSettings,
    campaigns: pa.Table,
    ids: Mapping[int, str],
) -> tuple[pa.Table, pa.Table]:
    """Every report's score, with what the brigades add; and the targets to protect
    (:data:`~concerted.brigades.PROTECTED_SCHEMA`).

    The causal scores come in scoring order and stay in it: DuckDB is asked only which
    of them a brigade holds and which targets to protect (narrow rows keyed by their
    position), and the result is written from the causal columns a batch at a time."""
    causal = score_reports(ws.con, settings.scoring)
    # Only what the result keeps: the feature columns (eight doubles a report) go now.
    causal = causal.select(
        ["report_id", "platform", "reporter_id", "target_id", "ts", "score"]
        + ["recommendation", "held", "signals"]
    )
    n = causal.num_rows
    position = pa.array(np.arange(n, dtype=np.int64))
    score = np.asarray(causal.column("score").to_numpy(), dtype=np.float64)
    brigade = pa.table(
        {
            "campaign_id": campaigns.column("campaign_id"),
            "brigade_score": campaigns.column("score"),
            "brigade_flagged": campaigns.column("flagged"),
        }
    )
    ids_table = pa.table(
        {
            "cluster": pa.array(list(ids), pa.int64()),
            "campaign_id": pa.array(list(ids.values()), pa.string()),
        }
    )
    keys = pa.table(
        {
            "i": position,
            "platform": causal.column("platform"),
            "report_id": causal.column("report_id"),
        }
    )
    with (
        ws.arrow("_bg_causal", keys),
        ws.arrow("_bg_campaigns", brigade),
        ws.arrow("_bg_ids", ids_table),
    ):
        # The reports a brigade holds: a few, whatever the case's size.
        held_by = ws.con.sql(
            """SELECT s.i, i.campaign_id, coalesce(b.brigade_flagged, false) AS flagged,
                      coalesce(b.brigade_score, 0.0) AS score
               FROM _bg_reports r
               JOIN _bg_causal s ON s.platform = r.platform AND s.report_id = r.report_id
               JOIN _bg_ids i ON i.cluster = r.cluster
               LEFT JOIN _bg_campaigns b ON b.campaign_id = i.campaign_id"""
        ).to_arrow_table()
    del keys
    rows = np.asarray(held_by.column("i").to_numpy(), dtype=np.int64)
    # Each report's row in held_by, -1 for none.
    member = np.full(n, -1, dtype=np.int64)
    member[rows] = np.arange(rows.size, dtype=np.int64)
    brigade_flagged = np.zeros(n, dtype=bool)
    brigade_flagged[rows] = held_by.column("flagged").to_numpy(zero_copy_only=False)
    brigade_score = np.zeros(n, dtype=np.float64)
    brigade_score[rows] = held_by.column("score").to_numpy()
    flagged = brigade_flagged | (score >= settings.scoring.discount)
    final = np.where(brigade_flagged, np.maximum(score, brigade_score), score)
    campaign = pa.array(member, mask=member < 0).cast(pa.int64())
    campaign_id = held_by.column("campaign_id").combine_chunks().take(campaign)
    narrow = pa.table(
        {
            "i": position,
            "platform": causal.column("platform"),
            "target_id": causal.column("target_id"),
            "flagged": pa.array(flagged),
            "campaign_id": campaign_id,
        }
    )
    with ws.arrow("_bg_scored", narrow):
        ws.table(
            "_bg_protected",
            f"""WITH p AS (
                    SELECT platform, target_id, count(*)::BIGINT AS reports,
                           count(*) FILTER (WHERE flagged)::BIGINT AS flagged,
                           (count(*) FILTER (WHERE flagged) / count(*))::DOUBLE AS share,
                           min(campaign_id) AS campaign_id
                    FROM _bg_scored GROUP BY platform, target_id
                    HAVING count(*) >= {settings.protect_min_reports}
                       AND count(*) FILTER (WHERE flagged) / count(*)
                           >= {settings.protect_share}),
                kinds AS (
                    SELECT r.platform, r.target_id, any_value(r.target_kind) AS target_kind
                    FROM reports r SEMI JOIN p USING (platform, target_id) GROUP BY ALL)
                SELECT p.platform, p.target_id, kinds.target_kind, p.reports, p.flagged,
                       p.share, p.campaign_id
                FROM p JOIN kinds USING (platform, target_id)""",
        )
        on_protected = ws.con.sql(
            """SELECT s.i FROM _bg_scored s
               SEMI JOIN _bg_protected p ON p.platform = s.platform
                AND p.target_id = s.target_id"""
        ).fetchnumpy()["i"]
    del narrow
    review = np.asarray(causal.column("held").to_numpy(zero_copy_only=False), dtype=bool)
    review[np.asarray(on_protected, dtype=np.int64)] = True
    causal_codes = pc.index_in(causal.column("recommendation"), pa.array(RECOMMENDATIONS))
    codes = np.where(
        flagged,
        RECOMMENDATIONS.index("discount"),
        np.where(
            review,
            RECOMMENDATIONS.index("review"),
            np.asarray(causal_codes.to_numpy(zero_copy_only=False), dtype=np.int64),
        ),
    )
    signals = with_brigade(causal.column("signals").combine_chunks(), member >= 0)
    out = {
        "report_id": causal.column("report_id"),
        "platform": causal.column("platform"),
        "score": pa.array(final, pa.float64()),
        "flagged": pa.array(flagged),
        "recommendation": pa.array(RECOMMENDATIONS, pa.string()).take(codes),
        "campaign_id": campaign_id,
        "signals": signals,
        "reporter_id": causal.column("reporter_id"),
        "target_id": causal.column("target_id"),
        "ts": causal.column("ts"),
    }
    # One row a report: written into a mapped file a batch at a time, so that the
    # result is not held whole in Python beside the causal scores it came from.
    report_scores = mapped(
        pa.table(out).to_batches(BATCH_ROWS), arrow_schema(RESULT_CONTRACTS["report_scores"])
    )
    del out, causal
    protected = ws.con.sql(
        "SELECT * FROM _bg_protected ORDER BY share DESC, reports DESC, platform, target_id"
    ).to_arrow_table()
    ws.drop("_bg_protected")
    return report_scores, protected.cast(PROTECTED_SCHEMA)


def with_brigade(signals: Any, marked: npt.NDArray[np.bool_]) -> pa.Array[Any]:
    """``signals`` with ``'brigade'`` appended to the lists of the ``marked`` rows (as
    DuckDB's ``list_append``).

    >>> lists = pa.array([["burst"], [], ["pace", "coreport"]], pa.list_(pa.string()))
    >>> with_brigade(lists, np.array([True, False, True])).to_pylist()
    [['burst', 'brigade'], [], ['pace', 'coreport', 'brigade']]
    """
    offsets = np.asarray(signals.offsets.to_numpy(), dtype=np.int64)
    values = signals.values
    start = offsets[0]
    lengths = np.diff(offsets)
    grown = lengths + marked
    new_offsets = np.zeros(len(signals) + 1, dtype=np.int64)
    np.cumsum(grown, out=new_offsets[1:])
    picks = np.empty(int(new_offsets[-1]), dtype=np.int64)
    row = np.repeat(np.arange(len(signals), dtype=np.int64), lengths)
    old = np.arange(offsets[0], offsets[-1], dtype=np.int64)
    picks[new_offsets[row] + old - offsets[row]] = old - start
    picks[(new_offsets[1:] - 1)[marked]] = len(values) - start
    pool = pa.concat_arrays([values.slice(start), pa.array(["brigade"], values.type)])
    lists: pa.Array[Any] = pa.ListArray.from_arrays(
        pa.array(new_offsets, pa.int32()), pool.take(pa.array(picks))
    )
    return lists
