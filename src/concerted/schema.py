"""The data contracts every adapter produces and everything downstream trusts.

Five tables cross the ingest boundary: ``accounts``, ``posts``, ``reports`` and
``roles`` come from adapters; ``actions`` is derived from them (see
:mod:`concerted.actions`). Times are UTC ``TIMESTAMPTZ``; identifiers are strings;
``platform`` is on every table so that Facebook and Instagram (or any mix) live side
by side.

:func:`validate` is the one place where raw input becomes contract rows. It types every
column in DuckDB, and marks each row that cannot be typed with the column and the
reason, so that the caller can raise :class:`~concerted.errors.SchemaError` naming
file, row and column, or set the row aside in quarantine. Detectors never check again.

>>> CONTRACTS["posts"].required
('post_id', 'account_id', 'platform', 'ts')
>>> CONTRACTS["reports"].column("outcome").choices
('upheld', 'rejected')
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from concerted.errors import ConfigError, SchemaError

__all__ = [
    "ACTION_KINDS",
    "CONTRACTS",
    "EVIDENCE_CONTRACTS",
    "RESULT_CONTRACTS",
    "RESULT_FILES",
    "TRUTH_CONTRACT",
    "arrow_schema",
    "IDENTIFIER_OBJECT_KINDS",
    "INPUT_TABLES",
    "ORDERED_ROWS",
    "Column",
    "Contract",
    "Validated",
    "sql_hash",
    "sql_literal",
    "quote_ident",
    "validate",
]

#: The kinds of action in the ``actions`` contract (:mod:`concerted.actions` derives
#: them from posts, reports and roles).
ACTION_KINDS: tuple[str, ...] = (
    "repost",
    "reply",
    "share_url",
    "share_domain",
    "hashtag",
    "text",
    "image",
    "report",
    "join",
)

TIMESTAMP = "TIMESTAMPTZ"
TEXT = "VARCHAR"
INTEGER = "BIGINT"
TEXT_LIST = "VARCHAR[]"
JSON = "JSON"
NUMBER = "DOUBLE"
BOOLEAN = "BOOLEAN"


@dataclass(frozen=True, kw_only=True)
class Column:
    """One column of a contract.

    ``identifier`` columns hold ids of accounts, posts, venues or reports: they are
    trimmed, and pseudonymised at ingest when the case asks for it.
    """

    name: str
    type: str
    doc: str
    required: bool = False
    identifier: bool = False
    choices: tuple[str, ...] | None = None
    default: str | None = None
    #: For lists written as plain text: the pattern between items.
    separator: str = r"[\s,]+"


@dataclass(frozen=True)
class Contract:
    """A table's columns, and the columns that identify one of its rows."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    doc: str
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(c.name for c in self.columns))

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise ConfigError(f"table {self.name!r} has no column {name!r}")

    def ddl(self, table: str | None = None) -> str:
        """The ``CREATE TABLE`` statement for this contract.

        >>> print(CONTRACTS["roles"].ddl())  # doctest: +NORMALIZE_WHITESPACE
        CREATE TABLE IF NOT EXISTS "roles" ("account_id" VARCHAR NOT NULL,
        "venue_id" VARCHAR NOT NULL, "role" VARCHAR NOT NULL, "since" TIMESTAMPTZ,
        "platform" VARCHAR NOT NULL)
        """
        cols = ", ".join(
            f"{quote_ident(c.name)} {c.type}{' NOT NULL' if c.required else ''}"
            for c in self.columns
        )
        return f"CREATE TABLE IF NOT EXISTS {quote_ident(table or self.name)} ({cols})"


_PLATFORM = Column(
    name="platform",
    type=TEXT,
    required=True,
    doc="Where the row lives, lower case: facebook, instagram, twitter, ...",
)
_EXTRA = Column(
    name="extra",
    type=JSON,
    doc="Columns of the source that no contract column holds, as one JSON object.",
)

CONTRACTS: Mapping[str, Contract] = {
    "accounts": Contract(
        "accounts",
        (
            Column(
                name="account_id",
                type=TEXT,
                required=True,
                identifier=True,
                doc="The account's id on its platform.",
            ),
            _PLATFORM,
            Column(
                name="kind",
                type=TEXT,
                required=True,
                default="user",
                doc="user, page, group, channel, ... (lower case; default user).",
            ),
            Column(name="created_at", type=TIMESTAMP, doc="When the account was created."),
            Column(name="name", type=TEXT, identifier=True, doc="Display name."),
            Column(
                name="handle", type=TEXT, identifier=True, doc="Screen name or handle, without '@'."
            ),
            Column(name="followers", type=INTEGER, doc="Followers or members, when known."),
            _EXTRA,
        ),
        key=("platform", "account_id"),
        doc="Accounts, pages, groups and channels.",
    ),
    "posts": Contract(
        "posts",
        (
            Column(
                name="post_id",
                type=TEXT,
                required=True,
                identifier=True,
                doc="The post's id on its platform.",
            ),
            Column(
                name="account_id", type=TEXT, required=True, identifier=True, doc="Who posted it."
            ),
            _PLATFORM,
            Column(name="ts", type=TIMESTAMP, required=True, doc="When it was posted (UTC)."),
            Column(
                name="venue_id",
                type=TEXT,
                identifier=True,
                doc="The page or group it was posted in, if any.",
            ),
            Column(name="text", type=TEXT, doc="Message text."),
            Column(name="lang", type=TEXT, doc="Language code, when known."),
            Column(
                name="urls",
                type=TEXT_LIST,
                separator=r"\s+",
                doc="Links in the post, expanded where known (written out: separated by "
                "spaces, since links may hold commas).",
            ),
            Column(name="hashtags", type=TEXT_LIST, doc="Hashtags, without '#'."),
            Column(
                name="mentions",
                type=TEXT_LIST,
                identifier=True,
                doc="Accounts mentioned (ids or handles).",
            ),
            Column(
                name="reply_to", type=TEXT, identifier=True, doc="The post this one replies to."
            ),
            Column(
                name="repost_of",
                type=TEXT,
                identifier=True,
                doc="The post this one reposts (retweets, shares).",
            ),
            Column(
                name="image_hashes",
                type=TEXT_LIST,
                doc="Hashes of attached images (perceptual or exact).",
            ),
            _EXTRA,
        ),
        key=("platform", "post_id"),
        doc="Posts, reposts, replies and shares.",
    ),
    "reports": Contract(
        "reports",
        (
            Column(
                name="report_id", type=TEXT, required=True, identifier=True, doc="The report's id."
            ),
            Column(
                name="reporter_id",
                type=TEXT,
                required=True,
                identifier=True,
                doc="The account that filed it.",
            ),
            Column(
                name="target_id",
                type=TEXT,
                required=True,
                identifier=True,
                doc="The account, post, page or group reported.",
            ),
            Column(
                name="target_kind",
                type=TEXT,
                required=True,
                default="account",
                choices=("account", "post", "page", "group"),
                doc="What the target is (default account).",
            ),
            Column(name="reason", type=TEXT, doc="The reason code chosen."),
            Column(name="ts", type=TIMESTAMP, required=True, doc="When it was filed (UTC)."),
            Column(
                name="channel", type=TEXT, doc="How it arrived: web, app, direct link, api, ..."
            ),
            Column(name="client", type=TEXT, doc="User agent or tool fingerprint, when known."),
            Column(name="text", type=TEXT, doc="Free text the reporter wrote."),
            Column(
                name="outcome",
                type=TEXT,
                choices=("upheld", "rejected"),
                doc="upheld, rejected, or empty while pending.",
            ),
            _PLATFORM,
            _EXTRA,
        ),
        key=("platform", "report_id"),
        doc="Reports (flags) filed by accounts against accounts or content.",
    ),
    "roles": Contract(
        "roles",
        (
            Column(
                name="account_id",
                type=TEXT,
                required=True,
                identifier=True,
                doc="The account holding the role.",
            ),
            Column(
                name="venue_id", type=TEXT, required=True, identifier=True, doc="The page or group."
            ),
            Column(
                name="role",
                type=TEXT,
                required=True,
                choices=("admin", "moderator", "member"),
                doc="admin, moderator or member.",
            ),
            Column(name="since", type=TIMESTAMP, doc="When the role began."),
            _PLATFORM,
        ),
        key=("platform", "account_id", "venue_id", "role"),
        doc="Who administers, moderates or belongs to which page or group.",
    ),
    "actions": Contract(
        "actions",
        (
            Column(
                name="actor_id",
                type=TEXT,
                required=True,
                identifier=True,
                doc="The account that acted.",
            ),
            _PLATFORM,
            Column(
                name="kind",
                type=TEXT,
                required=True,
                doc="share_url, share_domain, repost, reply, hashtag, text, image, "
                "report, join, ...",
            ),
            Column(
                name="object_id",
                type=TEXT,
                required=True,
                doc="What it acted on, in that kind's normal form.",
            ),
            Column(name="ts", type=TIMESTAMP, required=True, doc="When (UTC)."),
            Column(
                name="source_id",
                type=TEXT,
                required=True,
                identifier=True,
                doc="The post, report or role row it came from (post_id, report_id, venue_id).",
            ),
        ),
        key=(),
        doc="One row per act on an object, the common currency of coordination. Derived "
        "from posts, reports and roles; formats that are already actions (CooRTweet's) "
        "fill it directly, one row per input row, duplicates included.",
    ),
}

#: The tables that adapters produce; ``actions`` is mostly derived from them.
INPUT_TABLES: tuple[str, ...] = ("accounts", "posts", "reports", "roles")

#: Action kinds whose ``object_id`` is an identifier (pseudonymised with the rest).
IDENTIFIER_OBJECT_KINDS: tuple[str, ...] = ("repost", "reply", "report", "join")


_CAMPAIGN_ID = Column(
    name="campaign_id", type=TEXT, required=True, doc="The campaign the row belongs to."
)
_SIGNALS = Column(
    name="signals",
    type=TEXT_LIST,
    doc="Names of the detectors that fired (e.g. co_action:repost, s7_automation).",
)

#: What a finished analysis writes, one Parquet file per contract (``RESULT_FILES``),
#: and what :mod:`concerted.evaluate` reads back. Scores are continuous (higher is more
#: suspicious); ``flagged`` is the one place a threshold was applied.
RESULT_CONTRACTS: Mapping[str, Contract] = {
    "campaigns": Contract(
        "campaigns",
        (
            _CAMPAIGN_ID,
            Column(
                name="kind",
                type=TEXT,
                required=True,
                choices=("network", "brigade"),
                doc="network (coordinated accounts) or brigade (coordinated reporting).",
            ),
            Column(
                name="score",
                type=NUMBER,
                required=True,
                doc="How coordinated, in [0, 1]. A network: the density of significant ties "
                "among its acting accounts (1: every pair co-acted beyond chance). A brigade: "
                "the noisy-or of its signals' strengths.",
            ),
            Column(
                name="strength",
                type=NUMBER,
                doc="A network's mean tie strength: the summed weight of an acting "
                "account's significant ties inside it, averaged (unbounded; empty for "
                "brigades).",
            ),
            Column(
                name="flagged",
                type=BOOLEAN,
                required=True,
                doc="Whether the score passed the threshold; only flagged campaigns are findings.",
            ),
            _SIGNALS,
            Column(name="accounts", type=INTEGER, doc="Member accounts."),
            Column(name="targets", type=INTEGER, doc="Targets (brigades)."),
            Column(name="reports", type=INTEGER, doc="Reports attributed to it (brigades)."),
            Column(name="first_ts", type=TIMESTAMP, doc="First action in its evidence (UTC)."),
            Column(name="last_ts", type=TIMESTAMP, doc="Last action in its evidence (UTC)."),
            Column(name="summary", type=JSON, doc="Takedown-style counts and top objects."),
        ),
        key=("campaign_id",),
        doc="Coordinated networks and brigades found, one row each.",
    ),
    "members": Contract(
        "members",
        (
            _CAMPAIGN_ID,
            Column(name="account_id", type=TEXT, required=True, identifier=True, doc="The member."),
            _PLATFORM,
            Column(
                name="role",
                type=TEXT,
                required=True,
                default="member",
                choices=("organiser", "member", "reporter", "automated_reporter"),
                doc="organiser (admin of the venue, author of mobilising posts), member, "
                "reporter, or automated_reporter (files reports by tool).",
            ),
            Column(name="score", type=NUMBER, doc="How strongly it is tied to the campaign."),
            _SIGNALS,
        ),
        key=("campaign_id", "platform", "account_id"),
        doc="The accounts of each campaign.",
    ),
    "targets": Contract(
        "targets",
        (
            _CAMPAIGN_ID,
            Column(
                name="target_id",
                type=TEXT,
                required=True,
                identifier=True,
                doc="The account, post, page or group the brigade went after.",
            ),
            _PLATFORM,
            Column(
                name="target_kind",
                type=TEXT,
                required=True,
                default="account",
                choices=("account", "post", "page", "group"),
                doc="What the target is (default account).",
            ),
            Column(name="score", type=NUMBER, doc="How strongly it was brigaded."),
            Column(name="reports", type=INTEGER, doc="Coordinated reports against it."),
            Column(name="first_ts", type=TIMESTAMP, doc="First coordinated report (UTC)."),
            Column(name="last_ts", type=TIMESTAMP, doc="Last coordinated report (UTC)."),
        ),
        key=("campaign_id", "platform", "target_id"),
        doc="The targets of each brigade.",
    ),
    "report_scores": Contract(
        "report_scores",
        (
            Column(name="report_id", type=TEXT, required=True, identifier=True, doc="The report."),
            _PLATFORM,
            Column(
                name="score",
                type=NUMBER,
                required=True,
                doc="How likely the report is part of a coordinated operation, in [0, 1].",
            ),
            Column(
                name="flagged",
                type=BOOLEAN,
                required=True,
                doc="Whether the score passed the threshold.",
            ),
            Column(
                name="recommendation",
                type=TEXT,
                choices=("count", "review", "discount"),
                doc="count it, review (hold the target for a human before report-driven "
                "enforcement), or discount it.",
            ),
            Column(name="campaign_id", type=TEXT, doc="The brigade it belongs to, if any."),
            _SIGNALS,
            Column(
                name="reporter_id", type=TEXT, identifier=True, doc="Who filed it (as in reports)."
            ),
            Column(
                name="target_id",
                type=TEXT,
                identifier=True,
                doc="What it reported (as in reports).",
            ),
            Column(name="ts", type=TIMESTAMP, doc="When it was filed (UTC)."),
        ),
        key=("platform", "report_id"),
        doc="A coordination score for every report.",
    ),
}

_DETECTOR = Column(
    name="detector", type=TEXT, required=True, doc="The detector that found it (co_action, ...)."
)
_LAYER = Column(
    name="layer",
    type=TEXT,
    required=True,
    doc="What the accounts shared: the action kind (repost, share_url, hashtag, ...).",
)
_PAIR = (
    Column(name="platform_1", type=TEXT, required=True, doc="Platform of the first account."),
    Column(
        name="account_1",
        type=TEXT,
        required=True,
        identifier=True,
        doc="The first account; (platform_1, account_1) < (platform_2, account_2).",
    ),
    Column(name="platform_2", type=TEXT, required=True, doc="Platform of the second account."),
    Column(name="account_2", type=TEXT, required=True, identifier=True, doc="The second account."),
)

#: Evidence with more rows than this is written in no particular order: sorting millions
#: of rows costs more than finding them (the analysis's 7.3 million tested pairs at
#: 10^7 actions took 26 of its 78 s of writing, BENCHMARKS.md).
ORDERED_ROWS = 1_000_000

#: What every detector returns (:mod:`concerted.detectors.base`): one row per account
#: pair and layer (``edges``), the matched events behind each (``events``), and scores
#: of single accounts, reports, targets or posts (``signals``). Significance fills
#: ``expected``, ``p_value``, ``q_value`` and ``significant``.
EVIDENCE_CONTRACTS: Mapping[str, Contract] = {
    "edges": Contract(
        "edges",
        (
            _DETECTOR,
            _LAYER,
            *_PAIR,
            Column(
                name="weight",
                type=NUMBER,
                required=True,
                doc="The pair's statistic, the one significance tests: for co-action the "
                "distinct objects both acted on within the window; each detector says its own.",
            ),
            Column(
                name="score",
                type=NUMBER,
                doc="A normalised strength in [0, 1] where the detector has one (NPMI, "
                "Jaccard, cosine); empty for plain counts.",
            ),
            Column(name="events", type=INTEGER, required=True, doc="Matched pairs of actions."),
            Column(
                name="lead_1",
                type=INTEGER,
                required=True,
                doc="Matched pairs in which account_1 acted first.",
            ),
            Column(
                name="lead_2",
                type=INTEGER,
                required=True,
                doc="Matched pairs in which account_2 acted first (ties count to neither).",
            ),
            Column(
                name="median_dt",
                type=NUMBER,
                required=True,
                doc="Median seconds between the two actions of a matched pair.",
            ),
            Column(name="first_ts", type=TIMESTAMP, required=True, doc="First matched action."),
            Column(name="last_ts", type=TIMESTAMP, required=True, doc="Last matched action."),
            Column(
                name="expected",
                type=NUMBER,
                doc="The weight the null model expects for this pair (significance).",
            ),
            Column(name="p_value", type=NUMBER, doc="P(weight at least this) under the null."),
            Column(name="q_value", type=NUMBER, doc="Benjamini-Hochberg adjusted p-value."),
            Column(
                name="significant",
                type=BOOLEAN,
                doc="q_value at or below the false-discovery rate asked for.",
            ),
        ),
        key=("detector", "layer", "platform_1", "account_1", "platform_2", "account_2"),
        doc="Account pairs a detector tied together, one row per layer.",
    ),
    "signals": Contract(
        "signals",
        (
            _DETECTOR,
            _LAYER,
            Column(
                name="entity",
                type=TEXT,
                required=True,
                choices=("account", "report", "target", "post"),
                doc="What the row scores: an account, a report, a reported target or a post.",
            ),
            _PLATFORM,
            Column(name="id", type=TEXT, required=True, identifier=True, doc="Its id."),
            Column(
                name="score",
                type=NUMBER,
                required=True,
                doc="How strongly the signal fired on it, in [0, 1]; higher is more suspicious.",
            ),
            Column(
                name="value",
                type=NUMBER,
                doc="The raw statistic behind the score (a count, a gap in seconds, a rate).",
            ),
            Column(
                name="related_id",
                type=TEXT,
                identifier=True,
                doc="What it is tied to: the target of a burst, the post that called for "
                "it, the block it belongs to.",
            ),
            Column(name="first_ts", type=TIMESTAMP, doc="First event behind it (UTC)."),
            Column(name="last_ts", type=TIMESTAMP, doc="Last event behind it (UTC)."),
            Column(
                name="detail",
                type=TEXT,
                doc="What fired, in words an analyst can check (never message text).",
            ),
        ),
        key=("detector", "layer", "entity", "platform", "id", "related_id"),
        doc="Signals on single accounts, reports, targets or posts (the signals that are "
        "not a pair of accounts).",
    ),
    "events": Contract(
        "events",
        (
            _DETECTOR,
            _LAYER,
            *_PAIR,
            Column(name="object_id", type=TEXT, required=True, doc="What both acted on."),
            Column(name="ts_1", type=TIMESTAMP, required=True, doc="When account_1 acted."),
            Column(name="ts_2", type=TIMESTAMP, required=True, doc="When account_2 acted."),
            Column(
                name="source_1",
                type=TEXT,
                required=True,
                identifier=True,
                doc="The row behind account_1's action (post_id, report_id, ...).",
            ),
            Column(
                name="source_2",
                type=TEXT,
                required=True,
                identifier=True,
                doc="The row behind account_2's action.",
            ),
        ),
        key=(),
        doc="Each matched pair of actions behind an edge: the evidence an analyst reads.",
    ),
}

#: The ground truth of a simulation (``truth.parquet``), written by
#: :mod:`concerted.simulate` and read by :mod:`concerted.evaluate`.
TRUTH_CONTRACT = Contract(
    "truth",
    (
        Column(
            name="operation_id",
            type=TEXT,
            required=True,
            doc="The operation, as truth.json lists it (network-1, brigade-2, ...).",
        ),
        Column(
            name="entity",
            type=TEXT,
            required=True,
            choices=("account", "post", "report", "target"),
            doc="What the id names.",
        ),
        Column(name="id", type=TEXT, required=True, identifier=True, doc="Its id."),
        _PLATFORM,
        Column(
            name="role",
            type=TEXT,
            required=True,
            doc="organiser, member, reporter, fake_reporter, automated_reporter (accounts); "
            "target; coordinated, mobilisation, boast (posts); human, automated (reports).",
        ),
        Column(
            name="detail",
            type=TEXT,
            doc="page, group, user or instagram (members); critic or minority (targets); "
            "the reason asked for (mobilisation posts, reports).",
        ),
    ),
    key=("operation_id", "entity", "platform", "id", "role"),
    doc="One row per operation, entity and role.",
)

#: The file each result contract is written to, in a result directory.
RESULT_FILES: Mapping[str, str] = {name: f"{name}.parquet" for name in RESULT_CONTRACTS}

_ARROW_TYPES: Mapping[str, pa.DataType] = {
    TEXT: pa.string(),
    TIMESTAMP: pa.timestamp("us", tz="UTC"),
    INTEGER: pa.int64(),
    TEXT_LIST: pa.list_(pa.string()),
    JSON: pa.string(),
    NUMBER: pa.float64(),
    BOOLEAN: pa.bool_(),
}


def arrow_schema(contract: Contract) -> pa.Schema:
    """The Arrow schema of a contract, for writing it to Parquet (JSON as text).

    >>> arrow_schema(CONTRACTS["roles"]).field("since").type
    TimestampType(timestamp[us, tz=UTC])
    """
    return pa.schema(
        [pa.field(c.name, _ARROW_TYPES[c.type], nullable=not c.required) for c in contract.columns]
    )


# A UTC offset or zone after a clock time: '...12:00:00Z', '...12:00+05:00', '... UTC'.
_AWARE = r"\d:\d\d(:\d\d(\.\d+)?)?\s*([zZ]|[+-]\d\d(:?\d\d)?|UTC|GMT)$"
_EPOCH = r"\s*-?\d+(\.\d+)?\s*"
# Epoch seconds beyond this are not times concerted expects (and overflow DuckDB).
_EPOCH_LIMIT = 1e11
_NUMERIC = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "FLOAT",
    "DOUBLE",
    "REAL",
)


def quote_ident(name: str) -> str:
    """Quote a name for SQL.

    >>> quote_ident('account.name')
    '"account.name"'
    """
    return '"' + name.replace('"', '""') + '"'


def sql_hash(columns: str) -> str:
    """SQL: a 63-bit hash of ``columns``, as a (non-negative) BIGINT.

    >>> import duckdb
    >>> duckdb.sql(f"SELECT {sql_hash('42')} >= 0").fetchone()
    (True,)
    """
    return f"(hash({columns}) >> 1)::BIGINT"


def sql_literal(value: str) -> str:
    """Quote a string for SQL.

    >>> sql_literal("it's")
    "'it''s'"
    """
    return "'" + value.replace("'", "''") + "'"


def sql_let(value: str, name: str, body: str) -> str:
    """SQL: ``body`` with ``name`` standing for ``value``, which is written once however
    often ``body`` uses it (a one-item list mapped by a lambda). DuckDB binds and plans
    an expression in time that grows with its size, so an expression pasted into
    another at each use costs milliseconds a statement before any row is read.

    ``name`` must not be a column that ``body`` reads.

    >>> import duckdb
    >>> twice = sql_let("upper(x)", "_u", "_u || _u")
    >>> duckdb.sql(f"SELECT {twice} FROM (SELECT 'a' AS x)").fetchone()
    ('AA',)
    >>> lone = sql_let("CAST(NULL AS VARCHAR)", "_u", "coalesce(_u, 'none')")
    >>> duckdb.sql(f"SELECT {lone}").fetchone()
    ('none',)
    """
    return f"list_transform([{value}], {name} -> {body})[1]"


@dataclass(frozen=True)
class Validated:
    """Where :func:`validate` left the typed rows of one input table.

    ``relation`` is a temporary table with the contract's columns plus ``_row``, and
    ``_error_column``/``_error`` (NULL where the row is good); where rows are bad,
    ``{relation}_raw`` holds their input (``_row``, ``_raw`` JSON).
    """

    contract: Contract
    relation: str
    rows: int
    bad_rows: int


# A contract type, as a message names it.
_WORDS = {TEXT: "text value", TIMESTAMP: "time", INTEGER: "whole number", NUMBER: "number"}

# Types that hold several values (a struct, a map, a list, a union): never one id.
_NESTED = re.compile(r"^(STRUCT|MAP|UNION)\(|.*\[\d*\]$")


def _text(expr: str, column: Column, source_type: str) -> str:
    if source_type in ("VARCHAR", "JSON"):
        value = f"CAST({expr} AS VARCHAR)"
    elif source_type in ("FLOAT", "DOUBLE", "REAL"):
        # 12.0 read as a float id means 12; NaN and infinity mean nothing.
        value = (
            f"CASE WHEN NOT isfinite({expr}) THEN NULL "
            f"WHEN {expr} = trunc({expr}) THEN CAST(CAST({expr} AS HUGEINT) AS VARCHAR)"
            f" ELSE CAST({expr} AS VARCHAR) END"
        )
    elif source_type.startswith("DECIMAL"):
        value = (
            f"CASE WHEN {expr} = trunc({expr}) THEN CAST(CAST({expr} AS HUGEINT) AS VARCHAR)"
            f" ELSE CAST({expr} AS VARCHAR) END"
        )
    elif source_type == "BLOB":
        # Bytes a writer did not mark as text: text where they are UTF-8.
        value = f"TRY(decode({expr}))"
    else:
        value = f"CAST({expr} AS VARCHAR)"
    if column.identifier or column.choices or column.name in ("platform", "kind", "lang"):
        value = f"trim({value})"
    if column.choices or column.name in ("platform", "kind"):
        value = f"lower({value})"
    return f"NULLIF({value}, '')"


#: Times outside these bounds are refused: no social-media record is older than the
#: Unix epoch, and none is dated a century ahead (``inf``, year 0 and year 10000 are
#: typos or placeholders, not times).
TIME_BOUNDS = ("1970-01-01 00:00:00+00", "2100-01-01 00:00:00+00")


def _timestamp(expr: str, source_type: str, timezone: str | None) -> tuple[str, str]:
    """SQL for the UTC time, and SQL for the reason when it is NULL but the input is not:
    :func:`_parse_timestamp` kept within :data:`TIME_BOUNDS`, and a written UTC offset
    within 14 hours, as every real zone's is.

    Text is trimmed once and the parsed time named once (:func:`sql_let`): written out
    at each use, the expression was bound and planned anew for every use, several
    milliseconds a file however few its rows.
    """
    lo, hi = (f"TIMESTAMPTZ '{b}'" for b in TIME_BOUNDS)
    span = f"{TIME_BOUNDS[0][:10]} to {TIME_BOUNDS[1][:10]}"

    def checked(value: str, reason: str) -> tuple[str, str]:
        bounded = f"list_filter([{value}], x -> x >= {lo} AND x < {hi})[1]"
        outside = sql_let(
            value,
            "_ts_parsed",
            "CASE WHEN _ts_parsed IS NOT NULL THEN 'time ' || CAST(_ts_parsed AS VARCHAR) "
            f"|| ' is outside {span}' ELSE {reason} END",
        )
        return bounded, outside

    typed = (
        source_type.startswith("TIMESTAMP")
        or source_type == "DATE"
        or source_type in _NUMERIC
        or source_type.startswith("DECIMAL")
    )
    if typed:
        return checked(*_parse_timestamp(expr, source_type, timezone))
    s = "_ts_text"
    bounded, outside = checked(*_parse_text(s, timezone))
    offset = f"regexp_matches({s}, '[+-](1[5-9]|[2-9][0-9]):?[0-9][0-9]$')"
    text = f"trim(CAST({expr} AS VARCHAR))"
    return (
        sql_let(text, s, f"CASE WHEN {offset} THEN NULL ELSE {bounded} END"),
        sql_let(
            text,
            s,
            f"CASE WHEN {offset} THEN 'a UTC offset beyond 14 hours: ' || left({s}, 40) "
            f"ELSE {outside} END",
        ),
    )


_NAIVE_REASON = sql_literal(
    "timestamp without a UTC offset; pass --timezone to say which zone it is in (UTC if it is UTC)"
)


def _parse_timestamp(expr: str, source_type: str, timezone: str | None) -> tuple[str, str]:
    """SQL for the UTC time of a typed column (a time, a date or a number), and SQL for
    the reason when it is NULL but the input is not."""
    tz = sql_literal(timezone) if timezone else None
    if source_type == "TIMESTAMP WITH TIME ZONE":
        return expr, "NULL"
    if source_type.startswith("TIMESTAMP") or source_type == "DATE":
        if tz is None:
            return "CAST(NULL AS TIMESTAMPTZ)", _NAIVE_REASON
        return f"timezone({tz}, CAST({expr} AS TIMESTAMP))", "NULL"
    value = (
        f"CASE WHEN abs(CAST({expr} AS DOUBLE)) < {_EPOCH_LIMIT} "
        f"THEN to_timestamp(CAST({expr} AS DOUBLE)) END"
    )
    return value, sql_literal("epoch seconds out of range (milliseconds?)")


def _parse_text(s: str, timezone: str | None) -> tuple[str, str]:
    """SQL for the UTC time written in the trimmed text named ``s`` (a name, as it is
    used many times), and SQL for the reason when it is NULL but the text is not empty."""
    tz = sql_literal(timezone) if timezone else None
    naive = f"timezone({tz}, TRY_CAST({s} AS TIMESTAMP))" if tz else "CAST(NULL AS TIMESTAMPTZ)"
    value = (
        f"CASE WHEN {s} = '' THEN NULL "
        f"WHEN regexp_full_match({s}, '{_EPOCH}') THEN "
        f"CASE WHEN abs(TRY_CAST({s} AS DOUBLE)) < {_EPOCH_LIMIT} "
        f"THEN to_timestamp(TRY_CAST({s} AS DOUBLE)) END "
        # DuckDB reads '12:00 -03' only without the space.
        f"WHEN regexp_matches({s}, '{_AWARE}') THEN "
        f"TRY_CAST(regexp_replace({s}, '\\s+([+-]\\d)', '\\1') AS TIMESTAMPTZ) "
        f"ELSE {naive} END"
    )
    shown = f"left({s}, 40)"
    unparseable = f"'unparseable timestamp ''' || {shown} || '''; {_ACCEPTED}'"
    if tz is None:
        reason = (
            f"CASE WHEN isfinite(TRY_CAST({s} AS TIMESTAMP)) "
            f"AND NOT regexp_full_match({s}, '{_EPOCH}') THEN {_NAIVE_REASON} "
            f"ELSE {unparseable} END"
        )
    else:
        reason = unparseable
    return value, reason


# What a timestamp may be written as, for the message of one that is none of these.
_ACCEPTED = (
    "accepted: ISO 8601 with a UTC offset (2020-06-01T12:00:00Z, 2020-06-01 12:00:00+05:00), "
    "without one under --timezone, or epoch seconds"
)


def _integer(expr: str, source_type: str) -> tuple[str, str]:
    if source_type == "VARCHAR":
        s = f"NULLIF(replace(trim({expr}), '_', ''), '')"
        value = (
            f"COALESCE(TRY_CAST({s} AS BIGINT), CASE WHEN TRY_CAST({s} AS DOUBLE) "
            f"= trunc(TRY_CAST({s} AS DOUBLE)) THEN TRY_CAST(TRY_CAST({s} AS DOUBLE) "
            f"AS BIGINT) END)"
        )
        return value, f"'not an integer: ''' || left(trim({expr}), 40) || ''''"
    return f"TRY_CAST({expr} AS BIGINT)", "'not an integer'"


def _text_list(expr: str, source_type: str, separator: str) -> tuple[str, str]:
    if source_type.endswith("[]"):
        items = f"list_transform({expr}, e -> trim(CAST(e AS VARCHAR)))"
    else:
        s = f"NULLIF(trim(CAST({expr} AS VARCHAR)), '')"
        items = (
            f"CASE WHEN {s} LIKE '[%' THEN "
            # ['a', 'b'] or ["a", "b"]: the quoted items; [a, b]: split on commas.
            f"CASE WHEN regexp_matches({s}, '[''\"]') "
            f"THEN list_transform(regexp_extract_all({s}, '''[^'']*''|\"[^\"]*\"'), "
            f"e -> trim(e, '''\"')) "
            f"ELSE list_transform(string_split(trim({s}, '[] '), ','), e -> trim(e)) END "
            f"ELSE string_split_regex({s}, {sql_literal(separator)}) END"
        )
    value = f"list_filter({items}, e -> e IS NOT NULL AND e <> '')"
    return value, "'not a list'"


def _column_sql(
    column: Column, expr: str | None, source_type: str | None, timezone: str | None
) -> tuple[str, str | None]:
    """SQL for a contract column from input expression ``expr``, and SQL for why a
    non-null input became NULL."""
    if expr is None or source_type is None:
        if column.default is not None:
            return sql_literal(column.default), None
        return f"CAST(NULL AS {column.type})", None
    if column.type == TEXT:
        value = _text(expr, column, source_type)
        if column.default is not None:
            value = f"COALESCE({value}, {sql_literal(column.default)})"
        if source_type in ("FLOAT", "DOUBLE", "REAL"):
            return value, f"CASE WHEN isfinite({expr}) THEN NULL ELSE 'not a finite number' END"
        if source_type == "BLOB":
            return value, "'bytes that are not UTF-8 text'"
        return value, None
    if column.type == TIMESTAMP:
        return _timestamp(expr, source_type, timezone)
    if column.type == INTEGER:
        return _integer(expr, source_type)
    if column.type == TEXT_LIST:
        return _text_list(expr, source_type, column.separator)
    if column.type == JSON:
        return f"CAST({expr} AS JSON)", None
    if column.type == NUMBER:
        return f"TRY_CAST({expr} AS DOUBLE)", "'not a number'"
    if column.type == BOOLEAN:
        return f"TRY_CAST({expr} AS BOOLEAN)", "'not true or false'"
    raise AssertionError(f"no SQL for contract type {column.type}")


def missing_column(
    file: str | Path, table: str, name: str, source: str, present: str
) -> SchemaError:
    """The error of a required column ``name`` of ``table`` that the input lacks
    (``source`` is what it was looked for as), ``present`` saying what the input has.

    >>> str(missing_column("a.csv", "posts", "account_id", "user", "the file has: 'id'"))
    "a.csv, column 'user': missing column 'user', required for posts (mapped from \
'account_id'); the file has: 'id'"
    """
    return SchemaError(
        file,
        f"missing column {source!r}, required for {table}"
        + (f" (mapped from {name!r})" if source != name else "")
        + (" (or pass --platform)" if name == "platform" else "")
        + f"; {present}",
        column=source,
    )


def validate(
    con: duckdb.DuckDBPyConnection,
    raw: str,
    contract: Contract,
    *,
    file: str | Path,
    mapping: Mapping[str, str] | None = None,
    timezone: str | None = None,
    into: str,
) -> Validated:
    """Type the rows of relation ``raw`` into the contract, as temporary table ``into``.

    ``raw`` is a table or view with a ``_row`` column (the record number in ``file``)
    and one column per contract column it provides, named as in the contract unless
    ``mapping`` says otherwise (contract name to raw name). A missing required column
    raises :class:`SchemaError` at once; rows that cannot be typed are marked, not
    dropped: ``_error_column`` and ``_error`` say where and why.
    """
    mapping = dict(mapping or {})
    described = con.sql(f"DESCRIBE {raw}").fetchall()
    types = {str(name): str(kind) for name, kind, *_ in described}
    unknown = set(mapping) - set(contract.names)
    if unknown:
        raise ConfigError(
            f"{contract.name} has no column {', '.join(sorted(unknown))}; "
            f"its columns: {', '.join(contract.names)}"
        )
    if timezone is not None:
        _check_timezone(con, timezone)

    selects = ["_row"]
    inputs: list[str] = []
    # (condition on the typed row, input column it is about, SQL for the reason)
    checks: list[tuple[str, str, str]] = []
    for column in contract.columns:
        source: str | None = mapping.get(column.name, column.name)
        if source not in types:
            if column.required and column.default is None:
                raise missing_column(
                    file,
                    contract.name,
                    column.name,
                    mapping.get(column.name, column.name),
                    "the input has: " + ", ".join(sorted(t for t in types if t != "_row")),
                )
            source = None
        if source is None:
            selects.append(
                f"{_column_sql(column, None, None, timezone)[0]} AS {quote_ident(column.name)}"
            )
            continue
        if _NESTED.match(types[source]) and column.type in (TEXT, TIMESTAMP, INTEGER, NUMBER):
            raise SchemaError(
                file,
                f"column {source!r} holds {types[source]} values; {contract.name}."
                f"{column.name} needs one {_WORDS[column.type]} a row",
                column=source,
            )
        # Checks run on the typed row, beside a copy of the input value (_in_*).
        src, name = quote_ident(f"_in_{column.name}"), quote_ident(column.name)
        value = _column_sql(column, quote_ident(source), types[source], timezone)[0]
        reason = _column_sql(column, src, types[source], timezone)[1]
        selects.append(f"{value} AS {name}")
        selects.append(f"{quote_ident(source)} AS {src}")
        inputs.append(src)
        present = (
            f"NULLIF(trim({src}), '') IS NOT NULL"
            if types[source] == "VARCHAR"
            else f"{src} IS NOT NULL"
        )
        if column.required and column.default is None:
            checks.append((f"{name} IS NULL AND NOT ({present})", source, "'missing value'"))
        if reason is not None:
            checks.append((f"{name} IS NULL AND {present}", source, reason))
        if column.choices:
            allowed = ", ".join(sql_literal(c) for c in column.choices)
            expected = sql_literal(f"', expected one of {', '.join(column.choices)}")
            checks.append(
                (
                    f"{name} IS NOT NULL AND {name} NOT IN ({allowed})",
                    source,
                    f"'unknown value ''' || left({name}, 40) || {expected}",
                )
            )
    # The first failing check names the row's error: its number is found once, and
    # the column and the reason are read from it (each condition written once).
    numbered = list(enumerate(checks, 1))
    first = " ".join(f"WHEN {c} THEN {i}" for i, (c, _, _) in numbered)
    column_case = " ".join(f"WHEN {i} THEN {sql_literal(col)}" for i, (_, col, _) in numbered)
    reason_case = " ".join(f"WHEN {i} THEN {why}" for i, (_, _, why) in numbered)
    nothing = "CASE WHEN FALSE THEN NULL END"
    con.execute(f"DROP TABLE IF EXISTS {into}")
    con.execute(
        f"CREATE TEMP TABLE {into} AS "
        f"WITH typed AS (SELECT {', '.join(selects)} FROM {raw}), "
        f"checked AS (SELECT *, {f'CASE {first} END' if checks else 'NULL'} AS _check "
        f"FROM typed) "
        f"SELECT * EXCLUDE ({', '.join(inputs or ['_row'])}, _check), "
        + ("" if inputs else "_row, ")
        + f"{f'CASE _check {column_case} END' if checks else nothing} AS _error_column, "
        f"{f'CASE _check {reason_case} END' if checks else nothing} AS _error "
        f"FROM checked"
    )
    rows, bad = con.sql(f"SELECT count(*), count(_error) FROM {into}").fetchone() or (0, 0)
    if bad:
        # The input of the bad rows only, as JSON, for quarantine.
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {into}_raw AS SELECT _row, {_raw_columns(types)} "
            f"FROM {raw} WHERE _row IN (SELECT _row FROM {into} WHERE _error IS NOT NULL)"
        )
    return Validated(contract, into, int(rows), int(bad))


def _raw_columns(types: Mapping[str, str]) -> str:
    """The input row as JSON, kept for quarantine."""
    fields = [t for t in types if t != "_row"]
    if not fields:
        return "CAST('{}' AS JSON) AS _raw"
    packed = ", ".join(f"{quote_ident(f)} := {quote_ident(f)}" for f in fields)
    return f"to_json(struct_pack({packed})) AS _raw"


def _check_timezone(con: duckdb.DuckDBPyConnection, timezone: str) -> None:
    try:
        con.execute("SELECT timezone(?, TIMESTAMP '2020-01-01')", [timezone]).fetchone()
    except duckdb.Error as exc:
        raise ConfigError(
            f"unknown time zone {timezone!r} (use an IANA name such as 'UTC' or 'Asia/Karachi')"
        ) from exc
