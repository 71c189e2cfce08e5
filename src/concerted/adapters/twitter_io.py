"""X/Twitter's information-operations archive: the hashed data releases.

Each release of accounts that Twitter tied to a state-backed information operation
comes as ``*_tweets_csv_hashed.csv`` and ``*_users_csv_hashed.csv``. The two are told
apart by their columns: a file with ``tweetid`` holds tweets, one with ``userid`` and
no ``tweetid`` holds accounts.

**Tweets** (31 columns): each row becomes a post, and each distinct ``userid`` an
account, from its first row (the account columns repeat on every tweet).

=========================  ==============================================================
``tweetid``                ``posts.post_id``
``userid``                 ``posts.account_id``, ``accounts.account_id``
``tweet_time``             ``posts.ts``: ``YYYY-MM-DD HH:MM``, UTC
``tweet_text``             ``posts.text``
``tweet_language``         ``posts.lang``
``retweet_tweetid``        ``posts.repost_of`` (a ``repost`` action)
``in_reply_to_tweetid``    ``posts.reply_to`` (a ``reply`` action)
``hashtags``               ``posts.hashtags``: ``[tag1, tag2]``, without ``#``
``urls``                   ``posts.urls``: ``['https://…', 'https://…']``
``user_mentions``          ``posts.mentions``: ``[userid, userid]`` (ids, not handles)
``user_display_name``      ``accounts.name``
``user_screen_name``       ``accounts.handle``
``follower_count``         ``accounts.followers``
``account_creation_date``  ``accounts.created_at``: ``YYYY-MM-DD``, UTC midnight
=========================  ==============================================================

The tweet's other columns (``tweet_client_name``, ``in_reply_to_userid``,
``quoted_tweet_tweetid``, ``is_retweet``, ``retweet_userid``, ``latitude``,
``longitude``, ``quote_count``, ``reply_count``, ``like_count``, ``retweet_count``,
``poll_choices``) go to ``posts.extra``; the account's others
(``user_reported_location``, ``user_profile_description``, ``user_profile_url``,
``following_count``, ``account_language``) to ``accounts.extra``. A column a release
adds beyond these goes to the ``extra`` of the file's own table (posts for a tweets
file, accounts for a users file), so that nothing the archive says is dropped.

**Users** (10 columns: the account columns above): each row becomes an account.

Accounts with fewer than 5,000 followers are hashed in these releases: ``userid``,
``user_display_name`` and ``user_screen_name`` all hold the same hash. Such a name or
handle is left empty rather than repeating the id. The archive's times carry no zone
because they are all UTC, so that is the zone taken (``--timezone`` still wins). The
platform is ``twitter``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import ClassVar

from concerted.adapters.base import AdapterOptions, RawTable, Scan, select_columns
from concerted.adapters.scans import scan_by_extension
from concerted.errors import SchemaError
from concerted.schema import quote_ident

__all__ = ["TWEET_COLUMNS", "TwitterIO", "USER_COLUMNS"]

#: The users file's columns; the tweets file repeats them on every tweet.
USER_COLUMNS = (
    "userid",
    "user_display_name",
    "user_screen_name",
    "user_reported_location",
    "user_profile_description",
    "user_profile_url",
    "follower_count",
    "following_count",
    "account_creation_date",
    "account_language",
)
#: The tweets file's columns.
TWEET_COLUMNS = (
    "tweetid",
    *USER_COLUMNS,
    "tweet_language",
    "tweet_text",
    "tweet_time",
    "tweet_client_name",
    "in_reply_to_userid",
    "in_reply_to_tweetid",
    "quoted_tweet_tweetid",
    "is_retweet",
    "retweet_userid",
    "retweet_tweetid",
    "latitude",
    "longitude",
    "quote_count",
    "reply_count",
    "like_count",
    "retweet_count",
    "hashtags",
    "urls",
    "user_mentions",
    "poll_choices",
)
#: Contract column for each archive column, per table.
_POSTS = {
    "post_id": "tweetid",
    "account_id": "userid",
    "ts": "tweet_time",
    "text": "tweet_text",
    "lang": "tweet_language",
    "repost_of": "retweet_tweetid",
    "reply_to": "in_reply_to_tweetid",
    "hashtags": "hashtags",
    "urls": "urls",
    "mentions": "user_mentions",
}
_ACCOUNTS = {
    "account_id": "userid",
    "name": "user_display_name",
    "handle": "user_screen_name",
    "followers": "follower_count",
    "created_at": "account_creation_date",
}
#: The zone the archive's times are written in.
TIMEZONE = "UTC"
PLATFORM = "twitter"


def _extra(columns: Mapping[str, str], taken: Iterable[str]) -> list[str]:
    """The file's columns that no contract column takes, in the file's order."""
    skip = {"_row", *taken}
    return [c for c in columns if c not in skip]


def _accounts(columns: Mapping[str, str], *, first_per_user: bool) -> RawTable:
    """Accounts from the account columns (one row per user from a tweets file); a
    hashed name or handle (equal to the hashed ``userid``) becomes empty."""
    hashed = [c for c in ("user_display_name", "user_screen_name") if c in columns]
    unhashed = ", ".join(
        f"NULLIF({quote_ident(c)}, CAST(userid AS VARCHAR)) AS {quote_ident(c)}" for c in hashed
    )
    rows = f"SELECT * REPLACE ({unhashed}) FROM scan" if hashed else "SELECT * FROM scan"
    if first_per_user:
        # A tweet without a userid is the post's error, not a second one.
        rows += (
            " WHERE NULLIF(trim(CAST(userid AS VARCHAR)), '') IS NOT NULL"
            " QUALIFY row_number() OVER (PARTITION BY userid ORDER BY _row) = 1"
        )
    # From a tweets file only the account columns are the account's.
    own = [c for c in columns if c in USER_COLUMNS] if first_per_user else list(columns)
    select = select_columns(
        columns,
        {c: c for c in _ACCOUNTS.values()},
        constants={"platform": PLATFORM},
        extra=_extra({c: columns[c] for c in own}, _ACCOUNTS.values()),
    )
    return RawTable(
        table="accounts",
        sql=f"SELECT {select} FROM ({rows})",
        timezone=TIMEZONE,
        mapping=_ACCOUNTS,
    )


class TwitterIO:
    """The information-operations archive's tweets and users files."""

    name: ClassVar[str] = "twitter-io"
    summary: ClassVar[str] = (
        "X/Twitter information-operations archive (hashed releases): "
        "*_tweets_csv_hashed.csv and *_users_csv_hashed.csv"
    )

    def scan(self, path: Path, options: AdapterOptions) -> Scan:
        return scan_by_extension(path, options)

    def tables(
        self, columns: Mapping[str, str], path: Path, options: AdapterOptions
    ) -> list[RawTable]:
        # Contract columns are read from the archive's own columns (mapping), so that
        # an error names the column as the archive spells it.
        if "tweetid" in columns and "userid" in columns:
            select = select_columns(
                columns,
                {c: c for c in _POSTS.values()},
                constants={"platform": PLATFORM},
                extra=_extra(columns, [*_POSTS.values(), *USER_COLUMNS]),
            )
            posts = RawTable(
                table="posts",
                sql=f"SELECT {select} FROM scan",
                timezone=TIMEZONE,
                mapping=_POSTS,
            )
            return [posts, _accounts(columns, first_per_user=True)]
        if "userid" in columns and "tweetid" not in columns:
            return [_accounts(columns, first_per_user=False)]
        raise SchemaError(
            path,
            "not an information-operations archive file: expected a tweets file "
            "(tweetid, userid, tweet_time, ...) or a users file (userid, "
            "user_screen_name, ...); the file has: " + ", ".join(c for c in columns if c != "_row"),
        )
