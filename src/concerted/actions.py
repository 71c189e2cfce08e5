"""Actions: one row per act on an object, derived from posts, reports and roles.

Every coordination signal downstream works on this one table, so each kind of act
becomes the same shape (actor, platform, kind, object, time, source row):

========================  ==========================================  ===============
kind                      object_id                                   from
========================  ==========================================  ===============
``repost``                the reposted post's id                      posts.repost_of
``reply``                 the replied-to post's id                    posts.reply_to
``share_url``             the link in normal form (:mod:`~concerted.urls`)  posts.urls
``share_domain``          the link's host in normal form              posts.urls
``hashtag``               the hashtag, case-folded, without ``#``     posts.hashtags
``text``                  hash of the normalised text (not reposts)   posts.text
``image``                 the image hash as given                     posts.image_hashes
``report``                the reported target's id                    reports
``join``                  the page or group (when ``since`` is known) roles
========================  ==========================================  ===============

A post with the same link twice acts on it once. ``source_id`` points back at the
post, report or venue, so every edge built on actions can be explained from raw rows.
"""

from __future__ import annotations

import weakref

import duckdb

from concerted.schema import ACTION_KINDS
from concerted.urls import SQL_MACROS as URL_MACROS

__all__ = [
    "ACTION_KINDS",
    "SQL_MACROS",
    "ensure_macros",
    "from_posts",
    "from_reports",
    "from_roles",
    "install_macros",
]


# Exact-text normal form: Unicode NFC, lower case, no links or @mentions, one space.
SQL_MACROS = (
    URL_MACROS
    + r"""
CREATE OR REPLACE TEMP MACRO concerted_text(t) AS
    trim(regexp_replace(regexp_replace(lower(nfc_normalize(t)),
        '(https?://|www\.)\S+|@\w+', ' ', 'g'), '\s+', ' ', 'g'));
"""
)

# Connections given the macros outside any transaction: they keep them.
_INSTALLED: weakref.WeakSet[duckdb.DuckDBPyConnection] = weakref.WeakSet()


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Make :data:`SQL_MACROS` on ``con``, outside any transaction (as a case is
    opened), so that :func:`ensure_macros` need not make them again.

    >>> con = duckdb.connect()
    >>> install_macros(con)
    >>> con.execute("SELECT concerted_domain('https://www.Example.com/a')").fetchone()
    ('example.com',)
    """
    con.execute(SQL_MACROS)
    _INSTALLED.add(con)


def ensure_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Make :data:`SQL_MACROS` on ``con`` unless :func:`install_macros` did. Making them
    costs about 2.6 ms (once per ingested file, before); a connection that was not
    given them outside a transaction gets them again each time, since a rollback would
    take back macros made inside one.

    >>> con = duckdb.connect()
    >>> ensure_macros(con)
    >>> con.execute("SELECT concerted_text('Hi  @you')").fetchone()
    ('hi',)
    """
    if con not in _INSTALLED:
        con.execute(SQL_MACROS)


def from_posts(posts: str) -> str:
    """SELECT the actions of the posts in relation ``posts``.

    Two links of one post with the same normal form (or host) act once, and so does a
    post's link given twice by a repeated row (the Spark engine derives the same).
    """
    one = (
        "SELECT account_id AS actor_id, platform, '{kind}' AS kind, {obj} AS object_id, ts, "
        "post_id AS source_id FROM {src}"
    )

    def each(kind: str, items: str) -> str:
        # One action per distinct item of the post.
        unique = f"list_filter(list_distinct({items}), x -> x IS NOT NULL AND x <> '')"
        return one.format(kind=kind, obj=f"unnest({unique})", src=posts)

    # A post's links, each joined to its normal forms, once each.
    links = f"""
        SELECT DISTINCT actor_id, platform, kind, object_id, ts, source_id FROM (
            SELECT x.account_id AS actor_id, x.platform, x.ts, x.post_id AS source_id,
                   n.share_url, n.share_domain
            FROM (SELECT account_id, platform, ts, post_id, unnest(urls) AS u FROM {posts}) x
            JOIN _concerted_links n USING (u)
        ) UNPIVOT (object_id FOR kind IN (share_url, share_domain))
        WHERE object_id <> ''"""

    # The text's normal form is computed in a one-item list: as a column filtered on
    # (WHERE t <> ''), the optimizer would compute it twice, once in the scan's filter.
    texts = (
        f"(SELECT account_id, platform, ts, post_id, "
        f"unnest(list_filter([concerted_text(text)], x -> x <> '')) AS t "
        f"FROM {posts} WHERE repost_of IS NULL AND text IS NOT NULL)"
    )
    parts = [
        one.format(kind="repost", obj="repost_of", src=f"{posts} WHERE repost_of IS NOT NULL"),
        one.format(kind="reply", obj="reply_to", src=f"{posts} WHERE reply_to IS NOT NULL"),
        links,
        each("hashtag", "list_transform(hashtags, h -> lower(ltrim(h, '#')))"),
        each("image", "image_hashes"),
        one.format(kind="text", obj="md5(t)", src=texts),
    ]
    # Each distinct link is normalised once, and joined back to every post that gives
    # it: links repeat across posts, and the normal form is the costly part.
    normal = f"""
        SELECT u, concerted_url(u) AS share_url, concerted_domain(u) AS share_domain
        FROM (SELECT DISTINCT unnest(urls) AS u FROM {posts})"""
    return (
        f"SELECT * FROM (WITH _concerted_links AS MATERIALIZED ({normal}) "
        f"SELECT * FROM ({' UNION ALL '.join(parts)}))"
    )


def from_reports(reports: str) -> str:
    """SELECT the actions of the reports in relation ``reports``."""
    return (
        f"SELECT reporter_id AS actor_id, platform, 'report' AS kind, target_id AS object_id, "
        f"ts, report_id AS source_id FROM {reports}"
    )


def from_roles(roles: str) -> str:
    """SELECT the ``join`` actions of the roles in relation ``roles`` whose start is known."""
    return (
        f"SELECT account_id AS actor_id, platform, 'join' AS kind, venue_id AS object_id, "
        f"since AS ts, venue_id AS source_id FROM {roles} WHERE since IS NOT NULL"
    )
