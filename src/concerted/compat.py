"""Peer-compatible outputs: the coordination-network-toolkit's and CooRTweet's networks.

Researchers compare against published results from two peer tools; these functions give
the peers' own numbers from a case's ``actions``, in SQL, so that they scale as the rest
of concerted does. Both build on :func:`concerted.detectors.pairing.window_pairs`:
every pair of actions by two accounts on the same (kind, object) at most ``window``
seconds apart, the bound included.

**coordination-network-toolkit 1.5.2** (QUT), :func:`qut_edges`. ``compute co_retweet``
joins messages on ``repost_id``, ``co_reply`` on ``reply_id`` and ``co_link`` on a URL,
keeping ``e2.timestamp BETWEEN e1.timestamp - W AND e1.timestamp + W``. The network is
directed: weight(user_1 → user_2) is the number of distinct ``message_id`` of user_1
with at least one such match by user_2, stored in both directions; edges under the
minimum weight are dropped. Here the kinds ``repost``, ``reply`` and ``share_url`` play
those three roles, and:

- self loops (user_1 = user_2), which the toolkit stores and leaves out of its exports,
  are not returned;
- accounts are keyed by ``actor_id`` alone, as the toolkit knows no platform;
- ``co_reply`` and ``co_link`` skip reposts (the toolkit never stores the URLs of a
  message with a ``repost_id`` and requires ``repost_id IS NULL`` for replies): for every
  kind but ``repost``, an action whose post is also a repost (a ``repost`` action with
  the same platform and ``source_id``) is left out;
- ``co_link`` matches the URL string exactly as the CSV gives it (split on single
  spaces, no normal form; ``--resolved`` matches the end of the URL's redirects
  instead). ``share_url`` actions hold the link in concerted's normal form
  (:mod:`concerted.urls`), so links that differ only in scheme, ``www.``, tracking
  parameters or a trailing slash pair here and not in the toolkit; on links already in
  normal form the two agree;
- the toolkit splits an empty ``urls`` field into one empty URL, so that it co-links
  every pair of URL-less messages within the window; no action has an empty object,
  so those edges do not appear here;
- a ``message_id`` seen twice is one message, the first row kept, in the toolkit and
  in the QUT adapter alike; CooRTweet data holding one ``content_id`` in rows on two
  objects keeps both rows as actions, and the weight still counts the id once.

**CooRTweet 2.1.3**, :func:`coortweet_pairs` (``detect_groups(x, time_window = W,
min_participation = P, remove_loops = TRUE)``) and :func:`coortweet_network`
(``generate_coordinated_network(result, edge_weight = Q, subgraph = S)``), step by step:

1. keep the accounts with at least P rows (actions, duplicates included);
2. pair the rows on each object at most W apart, each unordered pair once;
3. remove loops: a content id equal to the object id, two equal content ids, or two
   equal accounts;
4. refine by participation: among the rows whose content ids occur in the remaining
   pairs, keep the accounts with at least P of them; keep a pair when either of its
   content ids belongs to such an account's rows;
5. put the older share first (``content_id``, ``account_id``); ``time_delta`` = |Δt|;
6. per pair of accounts, in lexicographic order (``from`` < ``to``): ``weight`` (pairs),
   ``avg_time_delta``, ``n_content_id`` and ``n_content_id_y`` (distinct content ids on
   the older and the newer side) and ``edge_symmetry_score`` (their min / max);
7. the threshold is R's default quantile (type 7) of all edge weights at Q;
   ``weight_threshold`` is 1 where the weight is strictly above it; S = 1 keeps only
   those edges.

Steps 1 to 5 run per action kind, object ids kept apart; the pairs of all kinds then
make one network, as CooRTweet does when it is run once per kind and the results are
bound together. Where CooRTweet and these functions can differ:

- CooRTweet orders two shares made in the same second by their input rows, which the
  actions table does not keep; here the share of the lexicographically smaller account
  comes first. Only ``n_content_id``, ``n_content_id_y`` and the symmetry score of such
  pairs can change, never a pair, an edge or a weight;
- R orders account ids by the locale's collation, DuckDB by code point; the two agree on
  ids made of digits and lower-case letters, as hashed ids are;
- accounts are keyed by ``actor_id`` alone, as CooRTweet knows no platform.
"""

from __future__ import annotations

import itertools

import duckdb

from concerted.detectors.pairing import pair_keys, window_pairs
from concerted.errors import ConfigError
from concerted.schema import sql_literal

__all__ = ["coortweet_network", "coortweet_pairs", "qut_edges"]

_ids = itertools.count()

# The actions of the chosen kinds; for every kind but repost, less those of reposts.
_QUT_ROWS = "(SELECT a.* FROM {actions} a WHERE a.kind IN ({kinds}) {but_reposts})"
_BUT_REPOSTS = """
    AND (a.kind = 'repost' OR NOT EXISTS (
         SELECT 1 FROM {actions} r
         WHERE r.kind = 'repost' AND r.platform = a.platform AND r.source_id = a.source_id))
"""

# Each message of user_1 with a match by user_2, once; then messages per direction.
_QUT_EDGES = """
    WITH matched AS (
        SELECT account_1 AS user_1, account_2 AS user_2, source_1 AS message_id FROM {pairs}
        UNION
        SELECT account_2, account_1, source_2 FROM {pairs}
    )
    SELECT user_1, user_2, count(*) AS weight
    FROM matched
    WHERE user_1 <> user_2
    GROUP BY user_1, user_2
    HAVING count(*) >= {min_weight}
"""

# The same on integer keys: messages numbered once, users by their account number.
_QUT_KEYED = """
    WITH messages AS (
        SELECT source_id, (row_number() OVER ())::BIGINT AS mid
        FROM (SELECT DISTINCT source_id FROM {rows})),
    numbered AS (SELECT r.rid, m.mid FROM {rows} r JOIN messages m USING (source_id)),
    matched AS (
        SELECT p.a_1 AS u, p.a_2 AS v, n.mid FROM {pairs} p JOIN numbered n ON n.rid = p.r_1
        UNION ALL
        SELECT p.a_2, p.a_1, n.mid FROM {pairs} p JOIN numbered n ON n.rid = p.r_2),
    e AS (SELECT u, v, count(DISTINCT mid) AS weight FROM matched GROUP BY u, v
          HAVING count(DISTINCT mid) >= {min_weight})
    SELECT a.actor_id AS user_1, b.actor_id AS user_2, e.weight
    FROM e JOIN {accounts} a ON a.aid = e.u JOIN {accounts} b ON b.aid = e.v
"""

# Step 1: the actions of accounts with at least P of them, per kind.
_COORTWEET_ROWS = """
    (SELECT a.* FROM {actions} a
     SEMI JOIN (SELECT kind, actor_id FROM {actions} {where}
                GROUP BY kind, actor_id HAVING count(*) >= {p}) k
       ON k.kind = a.kind AND k.actor_id = a.actor_id)
"""

# Steps 3 to 5 on the pairs of step 2.
_COORTWEET_PAIRS = """
    WITH p AS (
        SELECT * FROM {pairs}
        WHERE account_1 <> account_2 AND source_1 <> source_2
          AND source_1 <> object_id AND source_2 <> object_id
    ),
    contents AS (
        SELECT kind, source_1 AS source_id FROM p UNION SELECT kind, source_2 FROM p
    ),
    candidates AS (
        SELECT r.kind, r.actor_id, r.source_id FROM {rows} r
        SEMI JOIN contents c ON c.kind = r.kind AND c.source_id = r.source_id
    ),
    kept AS (
        SELECT DISTINCT kind, source_id FROM candidates
        SEMI JOIN (SELECT kind, actor_id FROM candidates
                   GROUP BY kind, actor_id HAVING count(*) >= {p}) k
          USING (kind, actor_id)
    ),
    refined AS (
        SELECT p.*, (p.t_1 < p.t_2 OR (p.t_1 = p.t_2 AND p.account_1 < p.account_2)) AS first
        FROM p
        LEFT JOIN kept k1 ON k1.kind = p.kind AND k1.source_id = p.source_1
        LEFT JOIN kept k2 ON k2.kind = p.kind AND k2.source_id = p.source_2
        WHERE k1.source_id IS NOT NULL OR k2.source_id IS NOT NULL
    )
    SELECT object_id,
           CASE WHEN first THEN account_1 ELSE account_2 END AS account_id,
           CASE WHEN first THEN account_2 ELSE account_1 END AS account_id_y,
           CASE WHEN first THEN source_1 ELSE source_2 END AS content_id,
           CASE WHEN first THEN source_2 ELSE source_1 END AS content_id_y,
           abs(t_1 - t_2) / 1e6 AS time_delta
    FROM refined
"""

# Steps 6 and 7. The threshold follows R's quantile(type = 7) operation for operation
# (index = 1 + (n - 1) q; (1 - h) x[lo] + h x[hi] unless x[lo] = x[hi]), so that a
# weight equal to it compares as it does in R; x[i] is read off the weights' histogram.
_COORTWEET_NETWORK = """
    WITH edges AS (
        SELECT least(account_id, account_id_y) AS "from",
               greatest(account_id, account_id_y) AS "to",
               count(*) AS weight,
               avg(time_delta)::DOUBLE AS avg_time_delta,
               count(DISTINCT content_id) AS n_content_id,
               count(DISTINCT content_id_y) AS n_content_id_y
        FROM {pairs}
        GROUP BY 1, 2
    ),
    histogram AS (
        SELECT weight, sum(count(*)) OVER (ORDER BY weight) AS upto,
               sum(count(*)) OVER () AS n
        FROM edges GROUP BY weight
    ),
    position AS (
        SELECT 1 + (any_value(n) - 1)::DOUBLE * {q} AS idx FROM histogram
    ),
    bounds AS (
        SELECT idx, idx - floor(idx) AS h,
               (SELECT min(weight) FROM histogram WHERE upto >= floor(idx))::DOUBLE AS lo,
               (SELECT min(weight) FROM histogram WHERE upto >= ceil(idx))::DOUBLE AS hi
        FROM position
    ),
    threshold AS (
        SELECT CASE WHEN h > 0 AND hi <> lo THEN (1 - h) * lo + h * hi ELSE lo END AS value
        FROM bounds
    )
    SELECT e."from", e."to", e.weight, e.avg_time_delta, e.n_content_id, e.n_content_id_y,
           least(n_content_id, n_content_id_y)::DOUBLE
               / greatest(n_content_id, n_content_id_y) AS edge_symmetry_score,
           (e.weight > t.value)::INTEGER AS weight_threshold
    FROM edges e CROSS JOIN threshold t
"""


def _kinds_list(kinds: tuple[str, ...]) -> str:
    return ", ".join(sql_literal(k) for k in kinds)


def qut_edges(
    con: duckdb.DuckDBPyConnection,
    actions: str,
    *,
    window: float,
    kinds: tuple[str, ...] = ("repost",),
    min_weight: int = 1,
) -> duckdb.DuckDBPyRelation:
    """The coordination-network-toolkit's directed network, self loops left out.

    ``kinds=("repost",)`` is ``compute co_retweet``, ``("reply",)`` ``co_reply`` and
    ``("share_url",)`` ``co_link`` (see the module's notes). With several kinds, a
    message counts once whichever kind matched it. Columns ``user_1, user_2, weight``.

    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE a AS SELECT * FROM (VALUES "
    ...     "('u1', 'x', 'repost', 'o', TIMESTAMPTZ '2020-01-01 00:00:00+00', 'm1'),"
    ...     "('u2', 'x', 'repost', 'o', TIMESTAMPTZ '2020-01-01 00:01:00+00', 'm2'),"
    ...     "('u2', 'x', 'repost', 'o', TIMESTAMPTZ '2020-01-01 00:01:00+00', 'm3')"
    ...     ") t(actor_id, platform, kind, object_id, ts, source_id)")
    >>> qut_edges(con, "a", window=60).order("user_1").fetchall()
    [('u1', 'u2', 1), ('u2', 'u1', 2)]
    """
    if not kinds:
        raise ConfigError("qut_edges: name at least one action kind")
    if min_weight < 1:
        raise ConfigError(f"qut_edges: min_weight must be at least 1, got {min_weight}")
    but_reposts = "" if set(kinds) == {"repost"} else _BUT_REPOSTS.format(actions=actions)
    rows = _QUT_ROWS.format(actions=actions, kinds=_kinds_list(kinds), but_reposts=but_reposts)
    out = f"_compat_qut_edges_{next(_ids)}"
    keys = pair_keys(con, rows, window=window)
    platforms = con.sql(f"SELECT count(DISTINCT platform) FROM {keys.accounts}").fetchone()
    if platforms is not None and platforms[0] <= 1:
        # One platform: an account number is a user id, and the whole count runs on
        # integers (messages numbered too), strings joined back only at the end.
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {out} AS "
            + _QUT_KEYED.format(
                pairs=keys.pairs,
                rows=keys.rows,
                accounts=keys.accounts,
                min_weight=int(min_weight),
            )
        )
    else:
        # The toolkit knows no platforms: the same user id on two is one user.
        pairs = f"_compat_qut_pairs_{next(_ids)}"
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE {pairs} AS
                SELECT x.actor_id AS account_1, x.source_id AS source_1,
                       y.actor_id AS account_2, y.source_id AS source_2
                FROM {keys.pairs} p
                JOIN {keys.rows} x ON x.rid = p.r_1 JOIN {keys.rows} y ON y.rid = p.r_2"""
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {out} AS "
            + _QUT_EDGES.format(pairs=pairs, min_weight=int(min_weight))
        )
        con.execute(f"DROP TABLE {pairs}")
    for table in keys.tables:
        con.execute(f"DROP TABLE IF EXISTS {table}")
    return con.table(out)


def coortweet_pairs(
    con: duckdb.DuckDBPyConnection,
    actions: str,
    *,
    window: float,
    min_participation: int,
    kinds: tuple[str, ...] | None = None,
) -> duckdb.DuckDBPyRelation:
    """CooRTweet's ``detect_groups``: the coordinated share pairs, older share first.

    Each kind (all kinds when ``kinds`` is ``None``) runs on its own, its objects kept
    apart from the other kinds'. Columns ``object_id, account_id, account_id_y,
    content_id, content_id_y, time_delta`` (seconds).

    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE a AS SELECT * FROM (VALUES "
    ...     "('u1', 'x', 'repost', 'o', TIMESTAMPTZ '2020-01-01 00:00:10+00', 'c1'),"
    ...     "('u2', 'x', 'repost', 'o', TIMESTAMPTZ '2020-01-01 00:00:00+00', 'c2')"
    ...     ") t(actor_id, platform, kind, object_id, ts, source_id)")
    >>> coortweet_pairs(con, "a", window=10, min_participation=1).fetchall()
    [('o', 'u2', 'u1', 'c2', 'c1', 10.0)]
    """
    if min_participation < 0:
        raise ConfigError(
            f"coortweet_pairs: min_participation must not be negative, got {min_participation}"
        )
    if kinds is not None and not kinds:
        raise ConfigError("coortweet_pairs: name at least one action kind, or None for all")
    where = f"WHERE kind IN ({_kinds_list(kinds)})" if kinds is not None else ""
    rows = _COORTWEET_ROWS.format(actions=actions, where=where, p=int(min_participation))
    pairs, _ = window_pairs(con, rows, window=window)
    out = f"_compat_coortweet_pairs_{next(_ids)}"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {out} AS "
        + _COORTWEET_PAIRS.format(pairs=pairs, rows=rows, p=int(min_participation))
    )
    con.execute(f"DROP TABLE {pairs}")
    return con.table(out)


def coortweet_network(
    con: duckdb.DuckDBPyConnection,
    pairs: duckdb.DuckDBPyRelation,
    *,
    edge_weight: float = 0.5,
    subgraph: int = 0,
) -> duckdb.DuckDBPyRelation:
    """CooRTweet's ``generate_coordinated_network`` on the pairs, as an edge list.

    ``pairs`` is a relation on ``con`` with :func:`coortweet_pairs`'s columns (its
    result, or CooRTweet's own output read from a file). The vertices are the accounts
    the edges touch, as in the igraph graph CooRTweet returns. Columns ``from, to,
    weight, avg_time_delta, n_content_id, n_content_id_y, edge_symmetry_score,
    weight_threshold``; ``subgraph=1`` keeps the edges whose ``weight_threshold`` is 1.

    >>> con = duckdb.connect()
    >>> pairs = con.sql("SELECT * FROM (VALUES ('o', 'u2', 'u1', 'c2', 'c1', 10.0)) "
    ...     "t(object_id, account_id, account_id_y, content_id, content_id_y, time_delta)")
    >>> coortweet_network(con, pairs).fetchall()
    [('u1', 'u2', 1, 10.0, 1, 1, 1.0, 0)]
    """
    if not 0 <= edge_weight <= 1:
        raise ConfigError(
            f"coortweet_network: edge_weight must be within [0, 1], got {edge_weight}"
        )
    if subgraph not in (0, 1):
        # CooRTweet's subgraphs 2 and 3 need its flag_speed_share columns.
        raise ConfigError(f"coortweet_network: subgraph must be 0 or 1, got {subgraph}")
    n = next(_ids)
    view, out = f"_compat_coortweet_input_{n}", f"_compat_coortweet_network_{n}"
    # A string parsed as DOUBLE is the float itself; a numeric literal would be a DECIMAL.
    q = f"CAST({sql_literal(repr(float(edge_weight)))} AS DOUBLE)"
    pairs.query(
        view,
        f"CREATE OR REPLACE TEMP TABLE {out} AS " + _COORTWEET_NETWORK.format(pairs=view, q=q),
    )
    con.execute(f"DROP VIEW IF EXISTS {view}")
    if subgraph == 1:
        return con.sql(f"SELECT * FROM {out} WHERE weight_threshold = 1")
    return con.table(out)
