"""The coordination-network-toolkit's CSV (QUT Digital Media Research Centre).

The toolkit (``pip install coordination-network-toolkit``) reads one CSV with a header
and eight columns, in this order::

    message_id, user_id, username, repost_id, reply_id, message, timestamp, urls

The toolkit reads the columns by position and ignores their names, and so does this
adapter when the names are not these eight (its errors then name the toolkit's column,
``timestamp`` say); when they are, they are read by name, in any order, and further
columns go to ``posts.extra``. What each column becomes:

==============  =========================================================================
``message_id``  ``posts.post_id`` (a message id seen twice is one post, the first kept,
                as the toolkit keeps it)
``user_id``     ``posts.account_id`` and ``accounts.account_id``
``username``    ``accounts.handle`` (the first non-empty one per user)
``repost_id``   ``posts.repost_of``, a ``repost`` action; empty means not a repost
``reply_id``    ``posts.reply_to``, a ``reply`` action; empty means not a reply
``message``     ``posts.text``
``timestamp``   ``posts.ts``: Unix epoch seconds, integer or fractional (the toolkit
                takes ``float(timestamp)``), so the time is UTC by definition
``urls``        ``posts.urls``: URLs separated by spaces (``a.example/1 b.example/2``);
                an empty field is no URL. Split on whitespace only, because commas
                belong to URLs (``news.example/7,123,story.html``).
==============  =========================================================================

The format does not say the platform: ``--platform`` does, ``twitter`` otherwise (the
toolkit's home ground). The toolkit skips the URLs of reposts when it builds co-link
networks; they are kept here as the file gives them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from concerted.adapters.base import AdapterOptions, RawTable, Scan, select_columns
from concerted.adapters.scans import CsvScan, scan_by_extension
from concerted.errors import SchemaError
from concerted.schema import quote_ident, sql_literal

__all__ = ["COLUMNS", "Qut"]

#: The toolkit's columns, in the order it reads them.
COLUMNS = (
    "message_id",
    "user_id",
    "username",
    "repost_id",
    "reply_id",
    "message",
    "timestamp",
    "urls",
)
#: Contract column (posts) for each toolkit column.
_POSTS = {
    "post_id": "message_id",
    "account_id": "user_id",
    "repost_of": "repost_id",
    "reply_to": "reply_id",
    "text": "message",
    "ts": "timestamp",
    "urls": "urls",
}


def _file_columns(columns: Mapping[str, str], path: Path) -> dict[str, str]:
    """The file's column for each toolkit column: by name when the header uses the
    toolkit's names, else by position, as the toolkit itself reads the file."""
    names = [c for c in columns if c != "_row"]
    if all(c in columns for c in COLUMNS):
        return {c: c for c in COLUMNS}
    if len(names) == len(COLUMNS):
        return dict(zip(COLUMNS, names, strict=True))
    raise SchemaError(
        path,
        f"not a coordination-network-toolkit CSV: expected {len(COLUMNS)} columns "
        f"({', '.join(COLUMNS)}), the file has {len(names)}: {', '.join(names)}",
    )


class Qut:
    """The coordination-network-toolkit's CSV: posts, and the accounts that posted them."""

    name: ClassVar[str] = "qut"
    summary: ClassVar[str] = (
        "coordination-network-toolkit CSV (message_id, user_id, username, repost_id, "
        "reply_id, message, timestamp, urls); --platform, twitter by default"
    )

    def scan(self, path: Path, options: AdapterOptions) -> Scan:
        scan = scan_by_extension(path, options)
        if not isinstance(scan, CsvScan):
            raise SchemaError(path, "the coordination-network-toolkit format is CSV")
        return scan

    def tables(
        self, columns: Mapping[str, str], path: Path, options: AdapterOptions
    ) -> list[RawTable]:
        source = _file_columns(columns, path)
        platform = options.platform or "twitter"
        # The columns keep (or, read by position, take) the toolkit's names, and
        # validate maps them onto the contract, so that errors name those columns.
        # None of them is a contract column's name but urls, so none is taken twice.
        wanted = {c: source[c] for c in COLUMNS if c != "urls"}
        taken = set(source.values())
        extra = [c for c in columns if c != "_row" and c not in taken]
        select = select_columns(columns, wanted, constants={"platform": platform}, extra=extra)
        # Space-separated: split here, where the separator is known (validate would
        # also split on commas, which URLs contain).
        urls = f"string_split_regex(trim({quote_ident(source['urls'])}), '\\s+') AS urls"
        posts = RawTable(table="posts", sql=f"SELECT {select}, {urls} FROM scan", mapping=_POSTS)
        user, handle = quote_ident(source["user_id"]), quote_ident(source["username"])
        accounts = RawTable(
            table="accounts",
            sql=(
                f"SELECT min(_row) AS _row, {user} AS user_id, "
                f"arg_min({handle}, _row) FILTER (WHERE trim({handle}) <> '') AS username, "
                f"{sql_literal(platform)} AS platform "
                f"FROM scan WHERE trim({user}) <> '' GROUP BY {user}"
            ),
            mapping={"account_id": "user_id", "handle": "username"},
        )
        return [posts, accounts]
