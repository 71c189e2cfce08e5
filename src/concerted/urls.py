"""URL normal form for ``share_url`` and ``share_domain`` actions.

Two links to the same page should be the same object: the scheme, ``www.``, a default
port, tracking parameters, the fragment and a trailing slash do not make a different
page. The host is lower-cased; the path and the remaining query keep their case.

The same rules exist twice, as :func:`normalize_url` (Python, for single values such
as the service's) and as the DuckDB macros in :data:`SQL_MACROS` (for whole tables);
a property test holds the two together.

>>> normalize_url("HTTPS://www.Example.com:443/News/Story/?utm_source=fb&id=7#top")
'example.com/News/Story?id=7'
>>> normalize_url("0.AA@//0")  # no host: one leading slash, not a host '0'
'/0'
>>> url_domain("http://m.Example.co.uk/x")
'm.example.co.uk'
"""

from __future__ import annotations

import re

__all__ = ["SQL_MACROS", "TRACKING_PARAMETERS", "normalize_url", "url_domain"]

#: Query parameters that carry tracking, not content (matched case-insensitively).
TRACKING_PARAMETERS = (
    r"utm_[a-z0-9_]*|fbclid|gclid|dclid|gbraid|wbraid|msclkid|yclid|twclid|igshid|igsh"
    r"|mc_cid|mc_eid|_ga|_gl|ref_src|ref_url|si|__tn__|__cft__\[0\]|mibextid"
)
# A scheme counts only before '//', so that 'host:8080/x' keeps its host.
_PARTS = r"^(?:[A-Za-z][A-Za-z0-9+.\-]*://|//)?([^/?#]*)([^?#]*)(?:\?([^#]*))?"
_SPACE = r"^[ \t\n\r\f\v]+|[ \t\n\r\f\v]+$"
# user info (up to the last @) and a default port
_HOST_NOISE = r"^.*@|:(80|443)$"
_WWW = r"^www\."
_LEADING = r"^/+"
_PARTS_RE = re.compile(_PARTS)
_SPACE_RE = re.compile(_SPACE)
_TRACKING_RE = re.compile(f"^({TRACKING_PARAMETERS})$")


def _host(netloc: str) -> str:
    host = re.sub(_HOST_NOISE, "", netloc.lower())
    return re.sub(_WWW, "", host)


def url_domain(url: str) -> str:
    """The host of ``url`` in normal form."""
    match = _PARTS_RE.match(_SPACE_RE.sub("", url))
    return _host(match.group(1)) if match else ""


def normalize_url(url: str) -> str:
    """``url`` in normal form (see the module's docstring)."""
    match = _PARTS_RE.match(_SPACE_RE.sub("", url))
    if match is None:  # pragma: no cover - the pattern matches every string
        return url
    netloc, path, query = match.group(1), match.group(2), match.group(3) or ""
    kept = [p for p in query.split("&") if p and not _TRACKING_RE.match(p.split("=")[0].lower())]
    host, path = _host(netloc), path.rstrip("/")
    if not host:
        # '//x' would read back as the host x: with no host, one leading slash.
        path = re.sub(_LEADING, "/", path)
    return host + path + ("?" + "&".join(kept) if kept else "")


def _sql(pattern: str) -> str:
    return "'" + pattern.replace("'", "''") + "'"


#: Temporary DuckDB macros ``concerted_url(u)`` and ``concerted_domain(u)``.
SQL_MACROS = f"""
CREATE OR REPLACE TEMP MACRO concerted_url_parts(u) AS
    regexp_extract(regexp_replace(u, {_sql(_SPACE)}, '', 'g'), {_sql(_PARTS)},
                   ['netloc', 'path', 'query']);
CREATE OR REPLACE TEMP MACRO concerted_host(netloc) AS
    regexp_replace(regexp_replace(lower(netloc), {_sql(_HOST_NOISE)}, '', 'g'), {_sql(_WWW)}, '');
CREATE OR REPLACE TEMP MACRO concerted_query(q) AS
    array_to_string(list_filter(string_split(coalesce(q, ''), '&'),
        p -> p <> '' AND NOT regexp_full_match(lower(split_part(p, '=', 1)),
                                               {_sql(TRACKING_PARAMETERS)})), '&');
CREATE OR REPLACE TEMP MACRO concerted_url_from_parts(p) AS
    concerted_host(p.netloc)
    || CASE WHEN concerted_host(p.netloc) = ''
            THEN regexp_replace(rtrim(p.path, '/'), {_sql(_LEADING)}, '/')
            ELSE rtrim(p.path, '/') END
    || CASE WHEN concerted_query(p.query) <> '' THEN '?' || concerted_query(p.query) ELSE '' END;
CREATE OR REPLACE TEMP MACRO concerted_url(u) AS concerted_url_from_parts(concerted_url_parts(u));
CREATE OR REPLACE TEMP MACRO concerted_domain(u) AS
    concerted_host(concerted_url_parts(u).netloc);
"""
