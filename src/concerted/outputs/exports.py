"""The exports: what a finished run keeps beside its findings, so that a reader can
check them.

The findings (campaigns, members, targets, report scores) name accounts, posts and
times by id. A reader, and the HTML report, needs the accounts' names and kinds, the
texts that were copied, the posts that called for reports or boasted of takedowns, and
each campaign's activity over time, without opening the case. :func:`write` writes
them from the case, keeping only what the findings point at. Unlike the other outputs
they are read from the case, not the result directory: ``concerted analyze`` writes them
with the result, and the page reads them from it.

=====================  ================================================================
``accounts.parquet``   every account a campaign, a target list or the network names:
                       platform, account_id, kind, name, handle, created_at, followers
``posts.parquet``      the evidence posts: each campaign's most copied texts (one post
                       per text, ``role`` ``copied_text``, ``copies`` = member accounts
                       that posted it), and the posts the ``mobilisation`` and
                       ``boasting`` detectors scored (``role`` ``mobilisation``,
                       ``boast``); post_id, platform, account_id, ts, venue_id, text,
                       urls, campaign_id, role, copies
``timeline.parquet``   actions of each campaign's members per hour and kind:
                       campaign_id, bucket (hour, UTC), kind, actions
=====================  ================================================================

Identifiers are as stored: pseudonymised when the case was ingested that way.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from concerted.schema import sql_literal

__all__ = ["FILES", "write"]

FILES: tuple[str, ...] = ("accounts.parquet", "posts.parquet", "timeline.parquet")

#: Copied texts kept per campaign.
TOP_TEXTS = 10

_ACCOUNTS = """
SELECT a.platform, a.account_id, a.kind, a.name, a.handle, a.created_at, a.followers
FROM accounts a
SEMI JOIN (SELECT platform, account_id FROM _ctx_members
           UNION SELECT platform, target_id FROM _ctx_targets
           UNION SELECT platform, account_id FROM _ctx_nodes) n USING (platform, account_id)
ORDER BY a.platform, a.account_id
"""

# One row per copied text of a campaign: the first post of it by a member, and how many
# member accounts posted it (exact text or one near-duplicate cluster).
_COPIED = """
WITH x AS (
    SELECT m.campaign_id, a.kind, a.object_id, a.platform, a.actor_id, a.source_id, a.ts
    FROM {actions} a JOIN _ctx_members m
      ON m.platform = a.platform AND m.account_id = a.actor_id
    WHERE a.kind IN ('text', 'near_text')),
texts AS (
    SELECT campaign_id, kind, object_id, count(DISTINCT (platform, actor_id)) AS copies,
           arg_min(source_id, (ts, source_id)) AS post_id,
           arg_min(platform, (ts, source_id)) AS platform
    FROM x GROUP BY ALL HAVING count(DISTINCT (platform, actor_id)) >= 2),
ranked AS (
    SELECT * FROM texts
    QUALIFY row_number() OVER (PARTITION BY campaign_id
                               ORDER BY copies DESC, kind DESC, object_id) <= {top})
SELECT DISTINCT ON (r.campaign_id, p.platform, p.post_id)
       p.post_id, p.platform, p.account_id, p.ts, p.venue_id, p.text, p.urls,
       r.campaign_id, 'copied_text' AS role, r.copies
FROM ranked r JOIN posts p ON p.platform = r.platform AND p.post_id = r.post_id
ORDER BY r.campaign_id, p.platform, p.post_id, r.copies DESC
"""

_SCORED = """
SELECT DISTINCT ON (p.platform, p.post_id, s.role)
       p.post_id, p.platform, p.account_id, p.ts, p.venue_id, p.text, p.urls,
       CAST(NULL AS VARCHAR) AS campaign_id, s.role, CAST(NULL AS BIGINT) AS copies
FROM (SELECT platform, id,
             CASE detector WHEN 'boasting' THEN 'boast' ELSE 'mobilisation' END AS role
      FROM {signals} WHERE entity = 'post' AND detector IN ('mobilisation', 'boasting')) s
JOIN posts p ON p.platform = s.platform AND p.post_id = s.id
ORDER BY p.platform, p.post_id, s.role
"""

_TIMELINE = """
SELECT m.campaign_id, date_trunc('hour', a.ts) AS bucket, a.kind, count(*) AS actions
FROM {actions} a JOIN (SELECT DISTINCT campaign_id, platform, account_id
                       FROM _ctx_members) m
  ON m.platform = a.platform AND m.account_id = a.actor_id
GROUP BY ALL ORDER BY 1, 2, 3
"""


def _copy(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> int:
    con.execute(f"COPY ({query}) TO {sql_literal(str(path))} (FORMAT parquet, COMPRESSION zstd)")
    return int(pq.read_metadata(path).num_rows)


def write(
    con: duckdb.DuckDBPyConnection,
    out: Path,
    *,
    members: pa.Table,
    targets: pa.Table,
    nodes: pa.Table,
    actions: str = "actions",
    signals: str | None = None,
) -> dict[str, int]:
    """Write :data:`FILES` to ``out``; rows written per file.

    ``members`` and ``targets`` are the result tables, ``nodes`` the network's accounts
    (``platform``, ``account_id``), ``actions`` the relation the run paired (with any
    derived kinds), ``signals`` a table in the signals contract (or ``None``). ``con``
    must hold the case's ``accounts`` and ``posts``.
    """
    con.register("_ctx_members", members.select(["campaign_id", "platform", "account_id"]))
    con.register("_ctx_targets", targets.select(["campaign_id", "platform", "target_id"]))
    con.register("_ctx_nodes", nodes.select(["platform", "account_id"]))
    try:
        written = {"accounts.parquet": _copy(con, _ACCOUNTS, out / "accounts.parquet")}
        posts = _COPIED.format(actions=actions, top=TOP_TEXTS)
        if signals is not None:
            posts = f"({posts}) UNION ALL ({_SCORED.format(signals=signals)})"
        written["posts.parquet"] = _copy(
            con,
            f"SELECT * FROM ({posts}) ORDER BY campaign_id NULLS LAST, role, platform, post_id",
            out / "posts.parquet",
        )
        written["timeline.parquet"] = _copy(
            con, _TIMELINE.format(actions=actions), out / "timeline.parquet"
        )
    finally:
        for name in ("_ctx_members", "_ctx_targets", "_ctx_nodes"):
            con.unregister(name)
    return written
