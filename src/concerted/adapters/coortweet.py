"""CooRTweet's input: shares as actions, in its long form or the wide form.

The long form (``object_id, account_id, content_id, timestamp_share``, unix seconds)
is one share a row: account ``account_id`` shared object ``object_id`` in its own
content ``content_id``. Each row becomes one action of the kind ``--set object=KIND``
names (``repost`` by default, as in CooRTweet's retweet data; also ``share_url``,
``share_domain``, ``hashtag``, ``image``, ``reply``), with ``source_id`` = ``content_id``.
Rows are kept as they are, duplicates included, as CooRTweet keeps them.

The wide form (``account_id, post_id, timestamp`` and one id column per kind, as in
CooRTweet's ``german_elections`` data) gives ``url_id`` → ``share_url``,
``domain_id`` → ``share_domain``, ``hashtag_id`` → ``hashtag`` and ``phash_id`` →
``image``: per kind, rows with an object, distinct on (object, account, post, time).

Account ids prefixed ``fb_``, ``ig_`` or ``tw_`` (as in ``german_elections``) name their
platform; others are ``twitter`` unless ``--platform`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from concerted.actions import ACTION_KINDS
from concerted.adapters.base import AdapterOptions, RawTable, Scan
from concerted.adapters.scans import scan_by_extension
from concerted.errors import ConfigError, SchemaError
from concerted.schema import quote_ident, sql_literal

__all__ = ["CooRTweet"]

LONG_COLUMNS = ("object_id", "account_id", "content_id", "timestamp_share")
#: Wide-form id columns and the action kind each holds.
WIDE_KINDS = {
    "url_id": "share_url",
    "domain_id": "share_domain",
    "hashtag_id": "hashtag",
    "phash_id": "image",
}
_PREFIXES = {"fb_": "facebook", "ig_": "instagram", "tw_": "twitter"}


def _platform(options: AdapterOptions) -> str:
    if options.platform:
        return sql_literal(options.platform)
    cases = " ".join(
        f"WHEN starts_with(CAST(account_id AS VARCHAR), '{p}') THEN '{name}'"
        for p, name in _PREFIXES.items()
    )
    return f"CASE {cases} ELSE 'twitter' END"


class CooRTweet:
    """The CooRTweet long and wide formats (``--set object=KIND`` for the long form)."""

    name: ClassVar[str] = "coortweet"
    #: The ``--set`` keys it reads.
    settings: ClassVar[tuple[str, ...]] = ("object",)
    summary: ClassVar[str] = (
        "CooRTweet shares: long form (object_id, account_id, content_id, timestamp_share) "
        "or wide form (account_id, post_id, url_id, hashtag_id, domain_id, phash_id, "
        "timestamp)"
    )

    def scan(self, path: Path, options: AdapterOptions) -> Scan:
        return scan_by_extension(path, options)

    def tables(
        self, columns: Mapping[str, str], path: Path, options: AdapterOptions
    ) -> list[RawTable]:
        platform = _platform(options)
        if all(c in columns for c in LONG_COLUMNS):
            kind = options.settings.get("object", "repost")
            if kind not in ACTION_KINDS:
                raise ConfigError(
                    f"--set object={kind}: not an action kind; use one of {', '.join(ACTION_KINDS)}"
                )
            actions = (
                f"SELECT _row, account_id, {platform} AS platform, "
                f"{sql_literal(kind)} AS kind, object_id, timestamp_share, content_id FROM scan"
            )
            named = {"ts": "timestamp_share", "source_id": "content_id"}
        elif "account_id" in columns and any(c in columns for c in WIDE_KINDS):
            for needed in ("post_id", "timestamp"):
                if needed not in columns:
                    raise SchemaError(
                        path, f"missing column {needed!r} of CooRTweet's wide form", column=needed
                    )
            actions = " UNION ALL ".join(
                f"SELECT min(_row) AS _row, account_id, {platform} AS platform, "
                f"'{kind}' AS kind, {quote_ident(col)} AS object_id, timestamp, "
                f"post_id FROM scan WHERE {quote_ident(col)} IS NOT NULL "
                f"GROUP BY account_id, {quote_ident(col)}, timestamp, post_id"
                for col, kind in WIDE_KINDS.items()
                if col in columns
            )
            # An action's object comes from one of several columns: none is named.
            named = {"ts": "timestamp", "source_id": "post_id"}
        else:
            raise SchemaError(
                path,
                "not a CooRTweet file: expected the long form's columns "
                f"({', '.join(LONG_COLUMNS)}) or the wide form's (account_id, post_id, "
                f"timestamp and one of {', '.join(WIDE_KINDS)}); the file has: "
                + ", ".join(c for c in columns if c != "_row"),
            )
        accounts = (
            f"SELECT min(_row) AS _row, account_id, {platform} AS platform FROM scan "
            "WHERE account_id IS NOT NULL GROUP BY account_id"
        )
        # The file's columns, renamed by the mapping: a message names the file's.
        mapping = {"actor_id": "account_id", **named}
        return [
            RawTable(table="actions", sql=actions, mapping=mapping),
            RawTable(table="accounts", sql=accounts),
        ]
