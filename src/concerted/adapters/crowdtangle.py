"""CrowdTangle posts from Facebook pages, groups and profiles and Instagram accounts.

CrowdTangle data comes in three shapes, told apart by their columns:

**The API's JSON** (``/posts``, ``/posts/search``, ``/links``): a document
``{"status": 200, "result": {"posts": [...]}}`` (a ``.json`` file; one that starts with
``[`` is read as a bare array of posts), or JSON lines with one post a line
(``.jsonl``/``.ndjson``). Nested objects become dotted columns (``account.name``).

**The API's posts flattened to CSV** by pandas, R or minet: the same fields, named
``account.name``, ``account_name`` or ``account_platformId`` alike (names are compared
lower-case without ``.``/``_``), with links as the ``expandedLinks`` list (JSON or
Python's ``[{'original': ..., 'expanded': ...}]``) or as list columns of expanded
(``expandedLinks.expanded``, ``expanded_links``) and original (``links``) links, one
link or several separated by ``|`` or spaces. minet names the platform's ids ``id``
and ``account_id``; where ``platformId``/``account_platformId`` exist they win, since
pandas' ``id`` and ``account.id`` are CrowdTangle's own ids.

=========================  ==============================================================
API field                  becomes
=========================  ==============================================================
``platformId`` (``id``)    ``posts.post_id`` (Facebook: ``PAGEID_POSTID``)
``account.platformId``     ``posts.account_id``, ``accounts.account_id``
``platform``               ``platform``, lower case (else ``account.platform``, else
                           ``--platform``)
``date``                   ``posts.ts``: "yyyy-mm-dd hh:mm:ss", UTC by the API's
                           documentation
``message``                ``posts.text`` (Instagram: ``description`` when no message)
``languageCode``           ``posts.lang``
``expandedLinks``          ``posts.urls``: each link's ``expanded`` form, else its
                           ``original``; without any, ``link``. The post's own
                           ``postUrl`` is never one of them.
``message`` ``#tags``      ``posts.hashtags`` (no API field holds them)
``account.accountType``    ``accounts.kind``: ``facebook_page`` → page,
                           ``facebook_group`` → group, ``facebook_profile`` and
                           ``instagram_profile`` → user; page and group posts get
                           ``venue_id`` = the account
``account.name``/``handle``  ``accounts.name``/``handle``
``account.subscriberCount``  ``accounts.followers``
``account.pageCreatedDate``  ``accounts.created_at`` (UTC)
everything else            ``extra`` (``account.*`` fields in the account's)
=========================  ==============================================================

**The dashboard's CSV export** ("Historical Data", saved searches, lists), one shape
per kind of account: Facebook pages (``Page Name``, ``User Name``, ``Facebook Id``,
``Page Category``, ``Page Admin Top Country``, ``Page Description``, ``Page Created``,
``Likes at Posting``, ``Followers at Posting``, ``Post Created``, ``Type``, ``URL``,
``Message``, ``Link``, ``Final Link``, ...), Facebook groups (the same with
``Group Name``) and Instagram (``Account``, ``User Name``, ``Followers at Posting``,
``Post Created``, ``URL``, ``Link``, ``Photo``, ``Title``, ``Description``, ...).
The export has no post id column: ``post_id`` comes from the post's ``URL``
(Facebook: ``FACEBOOKID_N`` for the last number in the URL, as the API's ids are
made; Instagram: the short code of ``/p/CODE``), else it is the URL itself. Instagram
exports name no account id either, so ``account_id`` is the ``User Name``.

Times in the export are in the zone the dashboard was set to, written as an
abbreviation after the clock time: ``2020-03-15 12:00:11 EDT``. The abbreviations in
:data:`ZONE_OFFSETS` become UTC offsets (ambiguous ones such as IST are not among them:
they are dropped, and ``--timezone`` says the zone); a ``Page Created`` without a zone
takes the zone of its row's ``Post Created``.

=======================================  ================================================
export column                            becomes
=======================================  ================================================
``URL``                                  ``posts.post_id`` (see above)
``Facebook Id`` (Instagram: ``User       ``posts.account_id``, ``accounts.account_id``;
Name``)                                  Facebook: also ``posts.venue_id``
``Post Created``                         ``posts.ts``
``Message`` (Instagram: ``Description``)  ``posts.text``, and its ``#tags`` ``hashtags``
``Final Link``, else ``Link``            ``posts.urls`` (unless it is the post's ``URL``)
``Page Name``/``Group Name``/``Account``  ``accounts.name``; kind page, group or user
``User Name``                            ``accounts.handle``
``Followers at Posting`` (else ``Likes   ``accounts.followers``, from the account's latest
at Posting``)                            post
``Page Created``                         ``accounts.created_at``
``Page Category``, ``Page Admin Top      the account's ``extra``
Country``, ``Page Description``
everything else                          the post's ``extra``
=======================================  ================================================

One ``accounts`` row is made per distinct account; where a field differs between its
posts, the value at its latest post is kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from concerted.adapters.base import AdapterOptions, RawTable, Scan
from concerted.adapters.filebytes import open_bytes
from concerted.adapters.scans import JsonScan, scan_by_extension
from concerted.errors import SchemaError
from concerted.schema import quote_ident, sql_let, sql_literal

__all__ = ["CrowdTangle", "ZONE_OFFSETS"]

#: Time zone abbreviations the dashboard writes after a time, and their UTC offsets.
#: CST and CDT are read as North American Central time, the dashboard's usual zone.
ZONE_OFFSETS: Mapping[str, str] = {
    "UTC": "+00:00",
    "GMT": "+00:00",
    "WET": "+00:00",
    "WEST": "+01:00",
    "BST": "+01:00",
    "CET": "+01:00",
    "CEST": "+02:00",
    "EET": "+02:00",
    "EEST": "+03:00",
    "MSK": "+03:00",
    "SAST": "+02:00",
    "WAT": "+01:00",
    "EAT": "+03:00",
    "PKT": "+05:00",
    "WIB": "+07:00",
    "HKT": "+08:00",
    "SGT": "+08:00",
    "AWST": "+08:00",
    "JST": "+09:00",
    "KST": "+09:00",
    "ACST": "+09:30",
    "ACDT": "+10:30",
    "AEST": "+10:00",
    "AEDT": "+11:00",
    "NZST": "+12:00",
    "NZDT": "+13:00",
    "NST": "-03:30",
    "NDT": "-02:30",
    "EST": "-05:00",
    "EDT": "-04:00",
    "CST": "-06:00",
    "CDT": "-05:00",
    "MST": "-07:00",
    "MDT": "-06:00",
    "PST": "-08:00",
    "PDT": "-07:00",
    "AKST": "-09:00",
    "AKDT": "-08:00",
    "HST": "-10:00",
}

# '#tag' not inside a word, a URL fragment or an HTML entity.
_HASHTAG = r"(?:^|[^\p{L}\p{N}_&/])#([\p{L}\p{N}_]+)"
# 'expanded': '...' in Python's repr of expandedLinks (pandas writes lists so).
_REPR_EXPANDED = r"""['"]expanded['"]\s*:\s*['"]([^'"]*)['"]"""
_REPR_ORIGINAL = r"""['"]original['"]\s*:\s*['"]([^'"]*)['"]"""
_TIME_ZONE = r"\d:\d\d(:\d\d(\.\d+)?)?\s+([A-Za-z]{2,5})$"
# The zone after a time, as an abbreviation or an offset; group 3.
_ZONE = r"\d:\d\d(:\d\d(\.\d+)?)?\s+([A-Za-z]{2,5}|[+-]\d\d(:?\d\d)?)$"
_INSTAGRAM_CODE = r"instagram\.com/(?:[^/?#]+/)?(?:p|reel|reels|tv)/([A-Za-z0-9_-]+)"
_TIME_OFFSET = r"\d:\d\d(:\d\d(\.\d+)?)?\s+[+-]\d\d(:?\d\d)?$"
_EXPORT_PAGE = "Page Name"
_EXPORT_GROUP = "Group Name"
_EXPORT_INSTAGRAM = "Account"
# Export columns about the account rather than the post, kept in the account's extra.
_EXPORT_ACCOUNT_EXTRA = ("Page Category", "Page Admin Top Country", "Page Description")


def _norm(name: str) -> str:
    """A column name compared loosely: ``account.platformId`` = ``account_platform_id``.

    >>> _norm("account.platformId"), _norm("account_platform_id")
    ('accountplatformid', 'accountplatformid')
    """
    return re.sub(r"[^a-z0-9]", "", name.lower())


class _Columns:
    """The scanned columns, found by loose name."""

    def __init__(self, columns: Mapping[str, str]) -> None:
        self.names = [c for c in columns if c != "_row"]
        # JSON objects are columns of their JSON text beside their dotted keys; extra
        # keeps the keys, not the objects, so that nothing is there twice.
        self.leaves = [c for c in self.names if not any(o.startswith(c + ".") for o in self.names)]
        self._by_norm: dict[str, str] = {}
        for name in self.names:
            self._by_norm.setdefault(_norm(name), name)

    def find(self, *candidates: str) -> str | None:
        """The first scanned column among ``candidates`` (loose names)."""
        for candidate in candidates:
            found = self._by_norm.get(_norm(candidate))
            if found is not None:
                return found
        return None

    def text(self, name: str | None) -> str:
        """SQL for column ``name`` as trimmed text, NULL where empty or absent."""
        if name is None:
            return "CAST(NULL AS VARCHAR)"
        return f"NULLIF(trim(CAST({quote_ident(name)} AS VARCHAR)), '')"


@dataclass
class _Select:
    """A SELECT list for one contract table, and the mapping from contract names.

    Columns taken as they are keep the file's name, so that an error names the
    column of the file; derived ones are named as in the contract unless told.
    """

    parts: dict[str, str] = field(default_factory=dict)
    mapping: dict[str, str] = field(default_factory=dict)

    def take(self, contract: str, source: str) -> None:
        self.parts[source] = quote_ident(source)
        if source != contract:
            self.mapping[contract] = source

    def derive(self, contract: str, expr: str, name: str | None = None) -> None:
        name = name or contract
        self.parts[name] = expr
        if name != contract:
            self.mapping[contract] = name

    def sql(self) -> str:
        return ", ".join(f"{expr} AS {quote_ident(name)}" for name, expr in self.parts.items())


def _extra(columns: Iterable[str]) -> str | None:
    """SQL for a JSON object of ``columns``, or None when there are none."""
    present = list(columns)
    if not present:
        return None
    packed = ", ".join(f"{quote_ident(c)} := {quote_ident(c)}" for c in present)
    return f"to_json(struct_pack({packed}))"


def _with_offset(text: str) -> str:
    """SQL turning ``'... 12:00:11 EDT'`` into ``'... 12:00:11-04:00'``.

    Known abbreviations become offsets; unknown ones are dropped, leaving a time
    without zone for ``--timezone`` to place; ``' -03'`` loses its space, which DuckDB
    does not read. Anything else is left as it is, for :func:`validate` to judge.
    ``text`` is written once (:func:`~concerted.schema.sql_let`), however often it is
    read.
    """
    cases = " ".join(
        f"WHEN {sql_literal(k)} THEN {sql_literal(v)}" for k, v in ZONE_OFFSETS.items()
    )
    t, zone = "_ct_time", "_ct_zone"
    return sql_let(
        text,
        t,
        sql_let(
            f"upper(regexp_extract({t}, {sql_literal(_TIME_ZONE)}, 3))",
            zone,
            f"CASE WHEN regexp_matches({t}, {sql_literal(_TIME_ZONE)}) "
            f"AND {zone} NOT IN ('AM', 'PM') THEN "
            f"regexp_replace({t}, '\\s+[A-Za-z]+$', '') "
            f"|| coalesce(CASE {zone} {cases} END, '') "
            f"WHEN regexp_matches({t}, {sql_literal(_TIME_OFFSET)}) "
            f"THEN regexp_replace({t}, '\\s+([+-][0-9:]+)$', '\\1') "
            f"ELSE {t} END",
        ),
    )


def _zone_of(text: str) -> str:
    """SQL for the zone written after a time (``'EDT'``, ``'-03'``), or ''."""
    return f"regexp_extract({text}, {sql_literal(_ZONE)}, 3)"


def _json_array(text: str) -> str:
    """SQL: is ``text`` a JSON array? (``json_type`` fails on malformed JSON, and
    DuckDB evaluates both sides of AND.)"""
    return f"CASE WHEN json_valid({text}) THEN json_type({text}) = 'ARRAY' ELSE false END"


def _link_objects(text: str) -> str:
    """SQL for the links of an ``expandedLinks`` value: each one's expanded form, else
    its original. Reads JSON and Python's repr of the list alike."""
    from_repr = (
        "list_transform(regexp_extract_all(_ct_objects, '\\{[^}]*\\}'), e -> coalesce("
        f"NULLIF(regexp_extract(e, {sql_literal(_REPR_EXPANDED)}, 1), ''), "
        f"NULLIF(regexp_extract(e, {sql_literal(_REPR_ORIGINAL)}, 1), '')))"
    )
    from_json = (
        "list_transform(json_extract(_ct_objects, '$[*]'), "
        "e -> coalesce(NULLIF(e->>'expanded', ''), NULLIF(e->>'original', '')))"
    )
    return sql_let(
        text,
        "_ct_objects",
        "CASE WHEN _ct_objects IS NULL THEN CAST([] AS VARCHAR[]) "
        f"WHEN {_json_array('_ct_objects')} THEN {from_json} "
        f"ELSE {from_repr} END",
    )


def _link_list(text: str) -> str:
    """SQL for a list of links written as a JSON or Python list, or separated by ``|``
    or white space (never commas, which URLs contain)."""
    t = "_ct_list"
    return sql_let(
        text,
        t,
        f"CASE WHEN {t} IS NULL THEN CAST([] AS VARCHAR[]) "
        f"WHEN {_json_array(t)} THEN json_extract_string({t}, '$[*]') "
        f"WHEN {t} LIKE '[%' THEN list_transform("
        f"regexp_extract_all({t}, '''[^'']*''|\"[^\"]*\"'), e -> trim(e, '''\"')) "
        f"ELSE string_split_regex({t}, '[|\\s]+') END",
    )


def _urls(candidates: list[str], own: str) -> str:
    """SQL for the first non-empty list of ``candidates``, without the post's own URL."""
    if not candidates:
        return "CAST([] AS VARCHAR[])"
    chosen = "CAST([] AS VARCHAR[])"
    for i, c in reversed(list(enumerate(candidates))):
        cleaned = f"list_filter({c}, u -> u IS NOT NULL AND trim(u) <> '')"
        chosen = sql_let(
            cleaned,
            f"_ct_urls{i}",
            f"CASE WHEN len(_ct_urls{i}) > 0 THEN _ct_urls{i} ELSE {chosen} END",
        )
    return sql_let(
        own,
        "_ct_own",
        f"list_filter({chosen}, u -> _ct_own IS NULL "
        "OR rtrim(trim(u), '/') <> rtrim(_ct_own, '/'))",
    )


def _hashtags(text: str) -> str:
    return f"regexp_extract_all(coalesce({text}, ''), {sql_literal(_HASHTAG)}, 1)"


def _starts_with_bracket(path: Path) -> bool:
    """Whether a JSON document starts with ``[`` (a bare array of posts)."""
    with open_bytes(path) as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"[")


class CrowdTangle:
    """CrowdTangle posts: API JSON or JSON lines, flattened API CSV, or dashboard export."""

    name: ClassVar[str] = "crowdtangle"
    summary: ClassVar[str] = (
        "CrowdTangle Facebook and Instagram posts: API JSON ({result: {posts}}) or JSON "
        "lines, the API's fields flattened to CSV, or the dashboard's CSV export"
    )

    def scan(self, path: Path, options: AdapterOptions) -> Scan:
        suffixes = [s.lower() for s in path.suffixes]
        if suffixes and suffixes[-1] == ".gz":
            suffixes = suffixes[:-1]
        if suffixes and suffixes[-1] == ".json":
            records = "$[*]" if _starts_with_bracket(path) else "$.result.posts[*]"
            return JsonScan(path, records=records)
        return scan_by_extension(path, options)

    def tables(
        self, columns: Mapping[str, str], path: Path, options: AdapterOptions
    ) -> list[RawTable]:
        cols = _Columns(columns)
        if "Post Created" in columns:
            return _export_tables(cols, path)
        if cols.find("datetime", "date") and cols.find("platformId", "id"):
            return _api_tables(cols, path, options)
        raise SchemaError(
            path,
            "not CrowdTangle posts: expected the API's fields (platformId, date, "
            "account.platformId, ...) or the dashboard export's (Post Created, URL, "
            "Page Name, Group Name or Account, ...); "
            + (
                "the file has: " + ", ".join(cols.names)
                if cols.names
                else "no posts were found (an API document holds them under result.posts)"
            ),
        )


def _api_tables(cols: _Columns, path: Path, options: AdapterOptions) -> list[RawTable]:
    """The API's posts, as JSON or flattened to CSV."""
    post_id = cols.find("platformId", "id")
    account_id = cols.find("account.platformId", "account.id")
    # minet writes the day as "date" and the time as "datetime".
    date = cols.find("datetime", "date")
    assert post_id is not None and date is not None  # checked by the caller
    if account_id is None:
        raise SchemaError(
            path,
            "missing the account's id: a column account.platformId (or account_id, "
            "account.id); the file has: " + ", ".join(cols.names),
            column="account.platformId",
        )
    post_url = cols.find("postUrl", "post_url")
    message = cols.find("message")
    description = cols.find("description")
    account_type = cols.find("account.accountType", "account_type")
    platform = (
        "lower(coalesce("
        + ", ".join(
            [
                cols.text(cols.find("platform")),
                cols.text(cols.find("account.platform")),
                sql_literal(options.platform) if options.platform else "NULL",
            ]
        )
        + "))"
    )
    kind = sql_let(
        cols.text(account_type),
        "_ct_type",
        "CASE WHEN lower(_ct_type) LIKE '%page%' THEN 'page' "
        "WHEN lower(_ct_type) LIKE '%group%' THEN 'group' "
        "WHEN _ct_type IS NOT NULL THEN 'user' END",
    )
    text = cols.text(message)
    if description is not None:
        caption = f"coalesce({text}, {cols.text(description)})"
        text = f"CASE WHEN {platform} = 'instagram' THEN {caption} ELSE {text} END"
    links = []
    objects = cols.find("expandedLinks")
    if objects is not None:
        links.append(_link_objects(cols.text(objects)))
    for name in (
        cols.find("expandedLinks.expanded", "expanded_links", "expanded"),
        cols.find("expandedLinks.original", "links", "original"),
        cols.find("link"),
    ):
        if name is not None:
            links.append(_link_list(cols.text(name)))

    posts = _Select()
    posts.take("post_id", post_id)
    posts.take("account_id", account_id)
    posts.derive("platform", platform)
    posts.take("ts", date)
    posts.derive(
        "venue_id", f"CASE WHEN {kind} IN ('page', 'group') THEN {quote_ident(account_id)} END"
    )
    if message is not None and description is None:
        posts.take("text", message)
    else:
        posts.derive("text", text)
    language = cols.find("languageCode", "language_code", "language")
    if language is not None:
        posts.take("lang", language)
    if links:
        posts.derive("urls", _urls(links, cols.text(post_url)))
    hashtags = cols.find("hashtags")
    if hashtags is not None:
        posts.take("hashtags", hashtags)
    else:
        posts.derive("hashtags", _hashtags(text))
    used = {post_id, date, message, description, language, hashtags, account_id}
    post_extra = _extra(
        c
        for c in cols.leaves
        if c not in used and c not in posts.parts and not _norm(c).startswith("account")
    )
    if post_extra:
        posts.derive("extra", post_extra)
    tables = [
        RawTable(
            table="posts",
            sql=f"SELECT _row, {posts.sql()} FROM scan",
            # The API's dates are "yyyy-mm-dd hh:mm:ss" in UTC (its documentation of the
            # post object); flattening to CSV copies them as they are.
            timezone="UTC",
            mapping=posts.mapping,
        )
    ]

    latest = f"(coalesce(CAST({quote_ident(date)} AS VARCHAR), ''), _row)"
    accounts = _Select()
    accounts.take("account_id", account_id)
    accounts.derive("platform", platform)
    accounts.derive("kind", f"arg_max({kind}, {latest})")
    fields = {
        "name": cols.find("account.name"),
        "handle": cols.find("account.handle"),
        "followers": cols.find("account.subscriberCount"),
        "created_at": cols.find("account.pageCreatedDate"),
    }
    for contract, source in fields.items():
        if source is not None:
            value = cols.text(source)
            if contract == "handle":
                value = f"NULLIF(ltrim({value}, '@'), '')"
            accounts.derive(contract, f"arg_max({value}, {latest})", name=source)
    taken = {account_id, account_type, *fields.values()}
    account_extra = [c for c in cols.leaves if _norm(c).startswith("account") and c not in taken]
    if account_type is not None:
        account_extra.insert(0, account_type)
    packed = _extra(account_extra)
    if packed:
        accounts.derive("extra", f"arg_max({packed}, {latest})")
    tables.append(
        RawTable(
            table="accounts",
            sql=(
                f"SELECT min(_row) AS _row, {accounts.sql()} FROM scan "
                f"WHERE {cols.text(account_id)} IS NOT NULL "
                f"GROUP BY {quote_ident(account_id)}, {platform}"
            ),
            timezone="UTC",  # pageCreatedDate is written as the post's date is.
            mapping=accounts.mapping,
        )
    )
    return tables


def _export_tables(cols: _Columns, path: Path) -> list[RawTable]:
    """The dashboard's CSV export of Facebook page, Facebook group or Instagram posts."""
    names = set(cols.names)
    if _EXPORT_PAGE in names or _EXPORT_GROUP in names:
        platform, kind = "facebook", "page" if _EXPORT_PAGE in names else "group"
        account_name = _EXPORT_PAGE if kind == "page" else _EXPORT_GROUP
        account_id = "Facebook Id"
        text_column = "Message"
    elif _EXPORT_INSTAGRAM in names:
        platform, kind, account_name = "instagram", "user", _EXPORT_INSTAGRAM
        account_id = "User Name"
        text_column = "Description"
    else:
        raise SchemaError(
            path,
            "a CrowdTangle export (it has 'Post Created') without 'Page Name', "
            "'Group Name' or 'Account' to say whose posts these are; the file has: "
            + ", ".join(cols.names),
        )
    for needed in (account_id, "URL"):
        if needed not in names:
            raise SchemaError(
                path, f"missing column {needed!r} of CrowdTangle's {platform} export", column=needed
            )

    url = cols.text("URL")
    if platform == "facebook":
        number = "regexp_extract(_ct_url, '/([0-9]+)/?(\\?.*)?$', 1)"
        post_id = sql_let(
            url,
            "_ct_url",
            sql_let(
                number,
                "_ct_number",
                f"CASE WHEN _ct_number <> '' AND {cols.text(account_id)} IS NOT NULL "
                f"THEN {cols.text(account_id)} || '_' || _ct_number ELSE _ct_url END",
            ),
        )
    else:
        code = f"regexp_extract(_ct_url, {sql_literal(_INSTAGRAM_CODE)}, 1)"
        post_id = sql_let(
            url,
            "_ct_url",
            sql_let(code, "_ct_code", "CASE WHEN _ct_code <> '' THEN _ct_code ELSE _ct_url END"),
        )
    created = cols.text("Post Created")
    message = cols.find(text_column)
    links = [
        _link_list(cols.text(name))
        for name in (cols.find("Final Link"), cols.find("Link"))
        if name is not None
    ]

    posts = _Select()
    posts.derive("post_id", post_id)
    posts.take("account_id", account_id)
    posts.derive("platform", sql_literal(platform))
    posts.derive("ts", _with_offset(created), name="Post Created")
    if platform == "facebook":
        posts.take("venue_id", account_id)
    if message is not None:
        posts.take("text", message)
    posts.derive("urls", _urls(links, url))
    posts.derive("hashtags", _hashtags(cols.text(message)))
    account_columns = {account_name, "User Name", "Facebook Id", "Page Created"}
    account_columns.update(_EXPORT_ACCOUNT_EXTRA)
    post_extra = _extra(
        c
        for c in cols.names
        if c not in account_columns and c not in posts.parts and c != "Post Created"
    )
    if post_extra:
        posts.derive("extra", post_extra)
    tables = [
        RawTable(table="posts", sql=f"SELECT _row, {posts.sql()} FROM scan", mapping=posts.mapping)
    ]

    latest = f"(coalesce({created}, ''), _row)"
    accounts = _Select()
    accounts.take("account_id", account_id)
    accounts.derive("platform", sql_literal(platform))
    accounts.derive("kind", sql_literal(kind))
    accounts.derive("name", f"arg_max({cols.text(account_name)}, {latest})", name=account_name)
    if "User Name" in names:
        handle = f"NULLIF(ltrim({cols.text('User Name')}, '@'), '')"
        if account_id == "User Name":
            accounts.derive("handle", handle)
        else:
            accounts.derive("handle", f"arg_max({handle}, {latest})", name="User Name")
    followers = cols.find("Followers at Posting", "Likes at Posting")
    if followers is not None:
        accounts.derive("followers", f"arg_max({cols.text(followers)}, {latest})", name=followers)
    if "Page Created" in names:
        page_created = cols.text("Page Created")
        borrowed = sql_let(
            page_created,
            "_ct_page",
            sql_let(
                _zone_of(created),
                "_ct_posted",
                f"CASE WHEN {_zone_of('_ct_page')} = '' AND _ct_posted <> '' "
                "AND regexp_matches(_ct_page, '\\d:\\d\\d(:\\d\\d)?$') "
                "THEN _ct_page || ' ' || _ct_posted ELSE _ct_page END",
            ),
        )
        accounts.derive(
            "created_at", f"arg_max({_with_offset(borrowed)}, {latest})", name="Page Created"
        )
    packed = _extra(c for c in _EXPORT_ACCOUNT_EXTRA if c in names)
    if packed:
        accounts.derive("extra", f"arg_max({packed}, {latest})")
    group_by = quote_ident(account_id)
    tables.append(
        RawTable(
            table="accounts",
            sql=(
                f"SELECT min(_row) AS _row, {accounts.sql()} FROM scan "
                f"WHERE {cols.text(account_id)} IS NOT NULL GROUP BY {group_by}"
            ),
            mapping=accounts.mapping,
        )
    )
    return tables
