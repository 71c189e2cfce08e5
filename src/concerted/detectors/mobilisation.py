"""M1 and M3: the posts that call a brigade out, and the posts that boast of its work.

A mass-reporting campaign is organised in the open more often than not: an admin posts
a list of targets in a group, each with a link to the profile and a link straight into
the platform's report form, a reason to pick and an appeal to duty, faith or nation;
members answer within the hour. Afterwards the admins count the accounts that fell.
Both kinds of post name their targets, so both can be tied to the reports on those
targets. These detectors read ``posts`` and ``reports``, ``accounts`` (to resolve
handles) and, for the organisers, ``roles``; the ``actions`` relation is not read.

**Named targets.** A post names a target when one of its links matches a ``profile``
pattern of the lexicon whose captured id or handle is a reported target's id, or an
account's handle (any case) that was reported; when its ``mentions`` hold such an id
or handle; or when its text has such an ``@handle``. Links are the post's ``urls``
and the ``http(s)://`` links in its text. Only targets that were reported at least
once in the case count (a post naming nobody reported can be tied to no burst), and
never the post's own author. Ids are matched on any platform: a group on Facebook may
list Instagram profiles.

**The lexicon** (:func:`load_lexicon`) is ``concerted/lexicons/mobilisation.toml``
(English, Urdu, Hindi, romanised Urdu), extended by the file named in the ``lexicon``
setting, whose lists are added to the built-in ones: the link patterns (into a report
flow; to a profile) and the phrases of a call to act (``act``, and appeals: ``duty``,
``religion``, ``nation``, or any category a user adds) and of a boast (``takedown``,
and support such as ``credit``). Phrases are matched where a word begins, in the
normal form of :mod:`concerted.textnorm`, applied to both the text and the phrase.

**M1, ``mobilisation``.** A post is a call when it asks to report (an ``act`` phrase)
or carries a report-flow link. Its content score is
:math:`1 - (1 - 0.6\\,L)(1 - 0.4\\,A)\\,0.85^{c}` for a report-flow link ``L``, an
act phrase ``A`` and ``c`` appeal categories. The response to it on each named target
is the number of distinct reporters of the target in the ``horizon`` after the post
(24 hours) less those in the same span before, ``x``, weighed as
:math:`x^2 / (x^2 + s^2)` with ``s`` = ``response_scale`` reporters (20): a handful of
friends answering is little, dozens are a mass response. Rows:

* ``named_target``: entity ``post``, ``related_id`` the target, ``value`` the reports
  on it within the horizon after the post, score content × response on that target;
* ``mobilising_post``: entity ``post``, no ``related_id``, ``value`` the reports on
  all named targets within the horizon after, score content × response over all named
  targets together (distinct reporters after less distinct reporters before);
* ``author``: entity ``account``, the author of mobilising posts, scored with their
  best post (``related_id``), ``value`` their posts that scored;
* ``organiser``: entity ``account``, every admin (``roles``) of the venue
  (``posts.venue_id``) a mobilising post was made in, ``related_id`` the venue,
  scored with the venue's best post, ``value`` the venue's posts that scored.

**M3, ``boasting``.** A post is a boast when it claims a takedown (a ``takedown``
phrase); its claim score is :math:`1 - 0.3 \\cdot 0.5^{c}` for ``c`` support
categories (0.7 for a bare claim). The evidence on each named target is the number of
distinct reporters who reported it in the ``lookback`` before the post (30 days),
weighed as for M1. Rows: ``claimed_target`` (entity ``post``, ``related_id`` the
target, ``value`` the reports before, score claim × evidence), ``boast`` (entity
``post``, score claim × the mean evidence over its named targets) and ``author``.

Settings: ``lexicon`` (a TOML path, None), ``response_scale`` (20 reporters);
M1 ``horizon`` (seconds, 86400) and ``baseline`` (604800); M3 ``lookback`` (2592000).
Edges and events are always empty.

On the simulator (``brigade`` seeds 0 to 2, ``pakistan-2020`` seed 0) every
mobilisation post scores 0.58 or more as ``mobilising_post`` and every boast 0.46 or
more as ``boast``, while the organic call-outs, written with the same templates and
links but answered by a handful of friends, score at most 0.3 (and are never boasts),
and no other post scores.

Computation. Only the reported targets that posts' tokens could name are looked up
among the reports (a semi join, not the distinct targets of every report), and only
posts that hold some phrase after a space (one pass of a few regular expressions) are
tried against each phrase.

Limitations. The same words and links serve ordinary people who ask friends to report
an abuser (the simulator's "call-outs"): only the size of the response tells them
apart, and a call answered by a few dozen people on their own scores like a small
brigade. Calls made in private channels, in images, or naming targets by their display
names only are not seen. Phrase lists match words, not meaning: irony and quotation
match too; they are meant to be extended for the platform and the campaign at hand.

>>> Mobilisation().horizon
86400.0
>>> sorted(load_lexicon().call)
['en', 'hi', 'ur', 'ur-Latn']
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import duckdb

from concerted.detectors.base import Evidence, empty
from concerted.detectors.columnar import (
    as_signals,
    exact_sum,
    has_table,
    normalised_table,
    temp_names,
)
from concerted.errors import ConfigError
from concerted.schema import sql_literal
from concerted.textnorm import normalize_array

__all__ = ["Boasting", "Lexicon", "Mobilisation", "load_lexicon"]

Phrases = Mapping[str, Mapping[str, tuple[str, ...]]]

#: Links written in a post's text.
_TEXT_LINK = r"https?://[^\s<>\"|]+"
_HANDLE = r"@([A-Za-z0-9_.]+)"


@dataclass(frozen=True)
class Lexicon:
    """Link patterns and phrases, by kind (``call``, ``boast``), language and category."""

    report_flow: tuple[str, ...]
    profile: tuple[str, ...]
    call: Phrases
    boast: Phrases

    def phrases(self) -> list[tuple[str, str, str, str]]:
        """Every phrase as (kind, language, category, phrase)."""
        out: list[tuple[str, str, str, str]] = []
        for kind, table in (("call", self.call), ("boast", self.boast)):
            for lang, categories in table.items():
                for category, items in categories.items():
                    out.extend((kind, lang, category, p) for p in items)
        return out

    def match(self, text: str) -> set[tuple[str, str]]:
        """The (kind, category) pairs whose phrases occur in ``text``, matched as the
        detectors match them: in the normal form, where a word begins.

        >>> sorted(load_lexicon().match("Hamara farz hai, in accounts ko report karein!"))
        [('call', 'act'), ('call', 'duty')]
        """
        phrases = self.phrases()
        forms = normalize_array([text, *(p for _, _, _, p in phrases)]).to_pylist()
        body = f" {forms[0]} "
        return {
            (kind, category)
            for (kind, _, category, _), form in zip(phrases, forms[1:], strict=True)
            if form and f" {form}" in body
        }


def _merge(base: dict[str, Any], extra: Mapping[str, Any], where: str) -> None:
    for key, value in extra.items():
        here = f"{where}.{key}" if where else key
        if isinstance(value, Mapping):
            into = base.setdefault(key, {})
            if not isinstance(into, dict):
                raise ConfigError(f"lexicon: {here} must be a list, not a table")
            _merge(into, value, here)
        elif isinstance(value, list):
            if not all(isinstance(v, str) and v.strip() for v in value):
                raise ConfigError(f"lexicon: {here} must list non-empty strings")
            into = base.setdefault(key, [])
            if not isinstance(into, list):
                raise ConfigError(f"lexicon: {here} must be a table, not a list")
            into.extend(v for v in value if v not in into)
        else:
            raise ConfigError(f"lexicon: {here} must be a list of strings or a table")


def _phrases(data: Mapping[str, Any], kind: str, required: str) -> Phrases:
    table = data.get(kind, {})
    if not isinstance(table, Mapping):
        raise ConfigError(f"lexicon: [{kind}] must be a table of languages")
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for lang, categories in table.items():
        if not isinstance(categories, Mapping):
            raise ConfigError(f"lexicon: [{kind}.{lang}] must be a table of phrase lists")
        out[lang] = {c: tuple(v) for c, v in categories.items()}
    if not any(required in c for c in out.values()):
        raise ConfigError(f"lexicon: no [{kind}.LANG] has the {required!r} list it needs")
    return out


def load_lexicon(extra: str | Path | None = None) -> Lexicon:
    """The built-in lexicon, extended by the TOML file ``extra`` (lists are added to).

    >>> lex = load_lexicon()
    >>> "رپورٹ کریں" in lex.call["ur"]["act"]
    True
    """
    text = resources.files("concerted").joinpath("lexicons/mobilisation.toml").read_text("utf-8")
    data: dict[str, Any] = {}
    _merge(data, tomllib.loads(text), "")
    if extra is not None:
        try:
            with open(extra, "rb") as f:
                more = tomllib.load(f)
        except OSError as exc:
            raise ConfigError(f"lexicon: cannot read {extra}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"lexicon: {extra} is not valid TOML: {exc}") from exc
        _merge(data, more, "")
    unknown = set(data) - {"links", "call", "boast"}
    if unknown:
        raise ConfigError(f"lexicon: unknown tables {', '.join(sorted(unknown))}")
    links = data.get("links", {})
    lexicon = Lexicon(
        report_flow=tuple(links.get("report_flow", ())),
        profile=tuple(links.get("profile", ())),
        call=_phrases(data, "call", "act"),
        boast=_phrases(data, "boast", "takedown"),
    )
    check = duckdb.connect()
    for pattern in (*lexicon.report_flow, *lexicon.profile):
        try:
            check.execute("SELECT regexp_matches('', ?)", [pattern])
        except duckdb.Error as exc:
            raise ConfigError(f"lexicon: bad link pattern {pattern!r}: {exc}") from exc
    check.close()
    return lexicon


def _literal(text: str) -> str:
    r"""``text`` as a regular expression (RE2) that matches it literally.

    >>> print(_literal("a.b (c)"))
    a\.b \(c\)
    """
    return "".join(f"\\{c}" if c.isascii() and not c.isalnum() and c != " " else c for c in text)


def _any_phrase(phrases: list[str], column: str) -> str:
    """SQL that is true where text ``column`` holds one of ``phrases`` after a space:
    regular expressions of alternatives (a hundred to each, to keep them small).

    >>> con = duckdb.connect()
    >>> con.sql(f"SELECT {_any_phrase(['c++', 'report them'], 'b')} "
    ...         "FROM (VALUES (' we c++ '), (' report the ')) t(b)").fetchall()
    [(True,), (False,)]
    """
    words = sorted(set(phrases))
    parts = [words[i : i + 100] for i in range(0, len(words), 100)]
    return (
        " OR ".join(
            f"regexp_matches({column}, {sql_literal(' (?:' + '|'.join(map(_literal, p)) + ')')})"
            for p in parts
        )
        or "false"
    )


def _weigh(x: str, scale: float) -> str:
    """SQL for :math:`x^2 / (x^2 + s^2)` of a non-negative count ``x``."""
    x = f"greatest(round({x}, 9), 0)"
    return f"(pow({x}, 2) / (pow({x}, 2) + {scale * scale}))"


@dataclass(frozen=True, kw_only=True)
class _PostDetector:
    """What M1 and M3 share: the lexicon, and the targets that posts name."""

    #: A TOML file whose lists are added to the built-in lexicon.
    lexicon: str | None = None
    #: Distinct reporters at which a response (or evidence) counts half.
    response_scale: float = 20.0

    def __post_init__(self) -> None:
        if self.lexicon is not None:
            object.__setattr__(self, "lexicon", str(self.lexicon))
        object.__setattr__(self, "response_scale", float(self.response_scale))
        if not self.response_scale > 0:
            raise ConfigError("response_scale must be positive")
        load_lexicon(self.lexicon)  # fail on a bad file now, not when detecting

    def _named(self, con: duckdb.DuckDBPyConnection, t: Mapping[str, str]) -> None:
        """Temporary tables ``named`` (post, target, how it was named) and ``posts``
        (the posts that name a reported target, with their normal-form text, whether
        they link into a report flow, and the lexicon's categories they match)."""
        lex = load_lexicon(self.lexicon)
        prefilter = (
            "len(coalesce(urls, [])) > 0 OR len(coalesce(mentions, [])) > 0 "
            "OR contains(coalesce(text, ''), '@') OR contains(coalesce(text, ''), '://')"
        )
        link_tokens = " UNION ALL ".join(
            f"SELECT platform, post_id, account_id, "
            f"regexp_extract(url, {sql_literal('(?i)' + p)}, 1) AS token, 'link' AS how FROM links"
            for p in lex.profile
        )
        handles = (
            "SELECT DISTINCT platform, account_id, lower(handle) AS handle FROM accounts "
            "WHERE handle IS NOT NULL"
            if has_table(con, "accounts")
            else "SELECT NULL::VARCHAR AS platform, NULL::VARCHAR AS account_id, "
            "NULL::VARCHAR AS handle WHERE false"
        )
        # The tokens first, then the reported targets among them only (a semi join on
        # the few tokens, where the distinct targets of all reports would cost more).
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {t["named"]}_tokens AS
            WITH p AS (
                SELECT platform, post_id, account_id, urls, mentions, text FROM posts
                WHERE {prefilter}),
            links AS (
                SELECT platform, post_id, account_id,
                       unnest(list_concat(coalesce(urls, []),
                              regexp_extract_all(coalesce(text, ''),
                                                 {sql_literal(_TEXT_LINK)}))) AS url
                FROM p)
            SELECT DISTINCT platform, post_id, account_id, token, how FROM (
                {link_tokens + " UNION ALL " if link_tokens else ""}
                SELECT platform, post_id, account_id,
                       ltrim(unnest(coalesce(mentions, [])), '@'), 'mention' FROM p
                UNION ALL
                SELECT platform, post_id, account_id,
                       rtrim(unnest(regexp_extract_all(coalesce(text, ''),
                                                       {sql_literal(_HANDLE)}, 1)), '.'),
                       'handle' FROM p)
            WHERE token IS NOT NULL AND token <> '';

            CREATE OR REPLACE TEMP TABLE {t["named"]}_handles AS
            SELECT * FROM ({handles})
            WHERE handle IN (SELECT lower(token) FROM {t["named"]}_tokens);

            CREATE OR REPLACE TEMP TABLE {t["named"]}_targets AS
            SELECT DISTINCT platform AS t_platform, target_id FROM reports
            WHERE target_id IN (SELECT token FROM {t["named"]}_tokens
                                UNION ALL
                                SELECT account_id FROM {t["named"]}_handles);

            CREATE OR REPLACE TEMP TABLE {t["named"]} AS
            WITH found AS (
                SELECT k.platform, k.post_id, k.account_id, x.t_platform, x.target_id, k.how
                FROM {t["named"]}_tokens k JOIN {t["named"]}_targets x ON x.target_id = k.token
                UNION ALL
                SELECT k.platform, k.post_id, k.account_id, x.t_platform, x.target_id, k.how
                FROM {t["named"]}_tokens k JOIN {t["named"]}_handles h
                  ON h.handle = lower(k.token)
                JOIN {t["named"]}_targets x
                  ON x.t_platform = h.platform AND x.target_id = h.account_id)
            SELECT f.platform, f.post_id, f.t_platform, f.target_id,
                   list_sort(list_distinct(list(f.how))) AS hows
            FROM found f
            WHERE NOT (f.t_platform = f.platform AND f.target_id = f.account_id)
            GROUP BY f.platform, f.post_id, f.t_platform, f.target_id;

            DROP TABLE {t["named"]}_tokens;
            DROP TABLE {t["named"]}_handles;
            DROP TABLE {t["named"]}_targets;
            """
        )
        flows = " OR ".join(
            f"regexp_matches(url, {sql_literal('(?i)' + p)})" for p in lex.report_flow
        )
        phrases = lex.phrases()
        values = ", ".join(
            f"({sql_literal(k)}, {sql_literal(c)}, {sql_literal(p)})" for k, _, c, p in phrases
        )
        normalised_table(
            con,
            f"SELECT DISTINCT kind, category, phrase AS text "
            f"FROM (VALUES {values}) v(kind, category, phrase)",
            t["phrases"],
        )
        normalised_table(
            con,
            f"""SELECT platform, post_id, account_id, ts, venue_id,
                       list_concat(coalesce(urls, []), regexp_extract_all(coalesce(text, ''),
                           {sql_literal(_TEXT_LINK)})) AS links,
                       coalesce(text, '') AS text
                FROM posts SEMI JOIN {t["named"]} USING (platform, post_id)""",
            t["texts"],
        )
        # One pass of a regular expression for any phrase where a word begins leaves
        # only the posts that hold one to be tried against each phrase.
        bodies = con.sql(f"SELECT DISTINCT body FROM {t['phrases']} WHERE body <> ''")
        any_phrase = _any_phrase([str(b) for (b,) in bodies.fetchall()], "body")
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {t["posts"]} AS
            WITH p AS (
                SELECT platform, post_id, account_id, ts, venue_id, links,
                       ' ' || body || ' ' AS body
                FROM {t["texts"]}),
            m AS (
                SELECT p.platform, p.post_id, x.kind, x.category
                FROM (SELECT * FROM p WHERE {any_phrase}) p
                JOIN {t["phrases"]} x ON x.body <> '' AND contains(p.body, ' ' || x.body)
                GROUP BY ALL)
            SELECT p.platform, p.post_id, p.account_id, p.ts, p.venue_id,
                   coalesce(list_bool_or(list_transform(p.links, url -> {flows or "false"})),
                            false) AS flow,
                   coalesce(bool_or(m.kind = 'call' AND m.category = 'act'), false) AS act,
                   count(DISTINCT m.category) FILTER (m.kind = 'call' AND m.category <> 'act')
                       AS appeals,
                   list_sort(list(DISTINCT m.category)
                       FILTER (m.kind = 'call' AND m.category <> 'act')) AS appeal_names,
                   coalesce(bool_or(m.kind = 'boast' AND m.category = 'takedown'), false)
                       AS takedown,
                   count(DISTINCT m.category)
                       FILTER (m.kind = 'boast' AND m.category <> 'takedown') AS support
            FROM p LEFT JOIN m USING (platform, post_id)
            GROUP BY p.platform, p.post_id, p.account_id, p.ts, p.venue_id, p.links
            """
        )

    @staticmethod
    def _author(name: str, layer: str, posts: str) -> str:
        """Authors of the posts in ``posts`` (platform, post_id, account_id, score)."""
        return f"""
            SELECT {name} AS detector, 'author' AS layer, 'account' AS entity, platform,
                   account_id AS id, score, count(*) OVER a AS value, post_id AS related_id,
                   min(ts) OVER a AS first_ts, max(ts) OVER a AS last_ts,
                   format('wrote {{}} {layer} posts; best scored {{:.2f}}', count(*) OVER a,
                          score) AS detail
            FROM {posts}
            WHERE score > 0
            WINDOW a AS (PARTITION BY platform, account_id)
            QUALIFY row_number() OVER (PARTITION BY platform, account_id
                                       ORDER BY score DESC, post_id) = 1"""


def _tables_present(con: duckdb.DuckDBPyConnection) -> bool:
    return has_table(con, "posts") and has_table(con, "reports")


@dataclass(frozen=True, kw_only=True)
class Mobilisation(_PostDetector):
    """M1: calls to report, tied to the reports that follow on their targets.

    >>> Mobilisation(horizon=3600).horizon
    3600.0
    """

    name: ClassVar[str] = "mobilisation"
    family: ClassVar[str] = "report"
    weight: ClassVar[float] = 0.4
    reads: ClassVar[tuple[str, ...]] = ("posts", "reports", "accounts", "roles")
    #: Seconds after a post in which reports on its targets count as the response.
    horizon: float = 86_400.0
    #: Seconds before a post whose reports on its targets set the expected response.
    baseline: float = 7 * 86_400.0

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "horizon", float(self.horizon))
        object.__setattr__(self, "baseline", float(self.baseline))
        if not self.horizon > 0:
            raise ConfigError("mobilisation: horizon must be positive")
        if not self.baseline > 0:
            raise ConfigError("mobilisation: baseline must be positive")

    def detect(self, con: duckdb.DuckDBPyConnection, actions: str) -> Evidence:
        none = Evidence(empty(con, "edges"), empty(con, "events"), empty(con, "signals"))
        if not _tables_present(con):
            return none
        t = temp_names("m1", "named", "phrases", "texts", "posts", "calls", "hits", "scored")
        self._named(con, t)
        h = round(self.horizon * 1_000_000)
        b = round(self.baseline * 1_000_000)
        ratio = self.horizon / self.baseline
        roles = has_table(con, "roles")
        member = (
            "EXISTS (SELECT 1 FROM roles o WHERE o.platform = r.platform "
            "AND o.account_id = r.reporter_id AND o.venue_id = c.venue_id)"
            if roles
            else "false"
        )
        content = (
            "1.0 - (1.0 - 0.6 * flow::INTEGER) * (1.0 - 0.4 * act::INTEGER) * pow(0.85, appeals)"
        )
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {t["calls"]} AS
            SELECT *, {content} AS content FROM {t["posts"]} WHERE flow OR act;

            CREATE OR REPLACE TEMP TABLE {t["hits"]} AS
            SELECT n.platform, n.post_id, n.target_id, r.reporter_id, r.ts > c.ts AS after,
                   r.ts, {member} AS member
            FROM {t["named"]} n JOIN {t["calls"]} c USING (platform, post_id)
            JOIN reports r ON r.platform = n.t_platform AND r.target_id = n.target_id
             AND epoch_us(r.ts) BETWEEN epoch_us(c.ts) - {b} AND epoch_us(c.ts) + {h}
             AND r.ts <> c.ts;

            CREATE OR REPLACE TEMP TABLE {t["scored"]} AS
            WITH per AS (
                SELECT n.platform, n.post_id, n.target_id, any_value(n.hows) AS hows,
                       count(h.reporter_id) FILTER (h.after) AS reports_after,
                       count(DISTINCT h.reporter_id) FILTER (h.after) AS after,
                       count(DISTINCT h.reporter_id) FILTER (NOT h.after) AS before,
                       count(DISTINCT h.reporter_id) FILTER (h.after AND h.member) AS members,
                       min(h.ts) FILTER (h.after) AS first_ts,
                       max(h.ts) FILTER (h.after) AS last_ts
                FROM {t["named"]} n SEMI JOIN {t["calls"]} c USING (platform, post_id)
                LEFT JOIN {t["hits"]} h USING (platform, post_id, target_id)
                GROUP BY n.platform, n.post_id, n.target_id)
            SELECT per.*, c.content, c.flow, c.act, c.appeals, c.appeal_names, c.ts AS posted,
                   c.content * {_weigh(f"per.after - per.before * {ratio}", self.response_scale)}
                       AS score
            FROM per JOIN {t["calls"]} c USING (platform, post_id)
            """
        )
        name = sql_literal(self.name)
        hours = self.horizon / 3600
        days = self.baseline / 86_400
        what = (
            "concat_ws(', ', CASE WHEN flow THEN 'a report-flow link' END, "
            "CASE WHEN act THEN 'a call to report' END, "
            "CASE WHEN appeals > 0 THEN 'appeals to ' || array_to_string(appeal_names, ', ') "
            "END)"
        )
        target = f"""
            SELECT {name} AS detector, 'named_target' AS layer, 'post' AS entity, platform,
                   post_id AS id, score, reports_after AS value, target_id AS related_id,
                   posted AS first_ts, coalesce(last_ts, posted) AS last_ts,
                   format('{{}}; target named by {{}}; {{}} reporters within {hours:g} h after '
                          '({{}} in the {days:g} days before), {{}} of them members of the '
                          'venue', {what}, array_to_string(hows, ', '), after, before, members)
                       AS detail
            FROM {t["scored"]}"""
        post = f"""
            WITH per AS (
                SELECT platform, post_id, count(*) AS targets, sum(reports_after) AS reports,
                       any_value(content) AS content, max(last_ts) AS last_ts,
                       any_value(posted) AS posted,
                       any_value({what}) AS what
                FROM {t["scored"]} GROUP BY ALL),
            who AS (
                SELECT platform, post_id,
                       count(DISTINCT reporter_id) FILTER (after) AS after,
                       count(DISTINCT reporter_id) FILTER (NOT after) AS before,
                       count(DISTINCT reporter_id) FILTER (after AND member) AS members
                FROM {t["hits"]} GROUP BY ALL)
            SELECT {name} AS detector, 'mobilising_post' AS layer, 'post' AS entity, platform,
                   post_id AS id,
                   content * {
            _weigh(f"coalesce(after, 0) - coalesce(before, 0) * {ratio}", self.response_scale)
        } AS score,
                   reports AS value, NULL AS related_id, posted AS first_ts,
                   coalesce(last_ts, posted) AS last_ts,
                   format('{{}}; {{}} targets named; {{}} reporters on them within {hours:g} h '
                          'after ({{}} in the {
            days:g} days before), {{}} of them members of the venue', what,
                          targets, coalesce(after, 0), coalesce(before, 0),
                          coalesce(members, 0)) AS detail
            FROM per LEFT JOIN who USING (platform, post_id)"""
        best = f"""
            SELECT s.platform, s.id AS post_id, c.account_id, c.venue_id, c.ts, s.score
            FROM ({post}) s JOIN {t["calls"]} c ON c.platform = s.platform AND c.post_id = s.id"""
        queries = [target, post, self._author(name, "mobilising", f"({best})")]
        if roles:
            queries.append(
                f"""
                SELECT {name} AS detector, 'organiser' AS layer, 'account' AS entity,
                       o.platform, o.account_id AS id, max(b.score) AS score,
                       count(*) AS value, b.venue_id AS related_id, min(b.ts) AS first_ts,
                       max(b.ts) AS last_ts,
                       format('admin of the venue of {{}} mobilising posts; best scored '
                              '{{:.2f}}', count(*), max(b.score)) AS detail
                FROM ({best}) b
                JOIN roles o ON o.platform = b.platform AND o.venue_id = b.venue_id
                 AND o.role = 'admin'
                WHERE b.score > 0
                GROUP BY o.platform, o.account_id, b.venue_id"""
            )
        notes: dict[str, Any] = {
            "horizon_seconds": self.horizon,
            "response_scale": self.response_scale,
            "lexicon": self.lexicon or "built-in",
        }
        return Evidence(
            edges=none.edges,
            events=none.events,
            signals=as_signals(con, queries),
            notes=notes,
            temporary=tuple(t.values()),
        )


@dataclass(frozen=True, kw_only=True)
class Boasting(_PostDetector):
    """M3: posts claiming takedowns, tied to the reports their targets drew.

    >>> Boasting().lookback / 86400
    30.0
    """

    name: ClassVar[str] = "boasting"
    family: ClassVar[str] = "report"
    weight: ClassVar[float] = 0.2
    reads: ClassVar[tuple[str, ...]] = ("posts", "reports", "accounts")
    #: Seconds before a boast in which reports on its targets count as evidence.
    lookback: float = 30 * 86_400.0

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "lookback", float(self.lookback))
        if not self.lookback > 0:
            raise ConfigError("boasting: lookback must be positive")

    def detect(self, con: duckdb.DuckDBPyConnection, actions: str) -> Evidence:
        none = Evidence(empty(con, "edges"), empty(con, "events"), empty(con, "signals"))
        if not _tables_present(con):
            return none
        t = temp_names("m3", "named", "phrases", "texts", "posts", "scored")
        self._named(con, t)
        back = round(self.lookback * 1_000_000)
        claim = "1.0 - 0.3 * pow(0.5, support)"
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {t["scored"]} AS
            WITH b AS (SELECT *, {claim} AS claim FROM {t["posts"]} WHERE takedown)
            SELECT n.platform, n.post_id, n.target_id, any_value(n.hows) AS hows,
                   any_value(b.claim) AS claim, any_value(b.ts) AS posted,
                   any_value(b.account_id) AS account_id, any_value(b.support) AS support,
                   count(r.reporter_id) AS reports, count(DISTINCT r.reporter_id) AS reporters,
                   count(r.reporter_id) FILTER (r.outcome = 'upheld') AS upheld,
                   min(r.ts) AS first_ts
            FROM {t["named"]} n JOIN b USING (platform, post_id)
            LEFT JOIN reports r ON r.platform = n.t_platform AND r.target_id = n.target_id
             AND r.ts < b.ts AND epoch_us(r.ts) >= epoch_us(b.ts) - {back}
            GROUP BY n.platform, n.post_id, n.target_id
            """
        )
        name = sql_literal(self.name)
        days = self.lookback / 86_400
        evidence = _weigh("reporters", self.response_scale)
        target = f"""
            SELECT {name} AS detector, 'claimed_target' AS layer, 'post' AS entity, platform,
                   post_id AS id, claim * {evidence} AS score, reports AS value,
                   target_id AS related_id, coalesce(first_ts, posted) AS first_ts,
                   posted AS last_ts,
                   format('claims a takedown ({{}} supporting phrases); target named by {{}}; '
                          '{{}} reports from {{}} reporters in the {days:g} days before, {{}} '
                          'upheld', support, array_to_string(hows, ', '), reports, reporters,
                          upheld) AS detail
            FROM {t["scored"]}"""
        post = f"""
            SELECT {name} AS detector, 'boast' AS layer, 'post' AS entity, platform,
                   post_id AS id, any_value(claim) * {exact_sum(evidence)} / count(*) AS score,
                   sum(reports) AS value, NULL AS related_id,
                   coalesce(min(first_ts), any_value(posted)) AS first_ts,
                   any_value(posted) AS last_ts,
                   format('claims a takedown of {{}} named targets, {{}} of them reported in '
                          'the {days:g} days before ({{}} reports)', count(*),
                          count(*) FILTER (reports > 0), sum(reports)) AS detail
            FROM {t["scored"]} GROUP BY platform, post_id"""
        best = f"""
            SELECT s.platform, s.id AS post_id, any_value(x.account_id) AS account_id,
                   any_value(x.posted) AS ts, any_value(s.score) AS score
            FROM ({post}) s JOIN {t["scored"]} x ON x.platform = s.platform AND x.post_id = s.id
            GROUP BY s.platform, s.id"""
        notes: dict[str, Any] = {
            "lookback_seconds": self.lookback,
            "response_scale": self.response_scale,
            "lexicon": self.lexicon or "built-in",
        }
        return Evidence(
            edges=none.edges,
            events=none.events,
            signals=as_signals(con, [target, post, self._author(name, "boasting", f"({best})")]),
            notes=notes,
            temporary=tuple(t.values()),
        )
