"""URL normal form: the Python and SQL forms agree, and the rules hold."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.urls import SQL_MACROS, normalize_url, url_domain
from tests.budget import examples


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute(SQL_MACROS)
    return c


@pytest.mark.parametrize(
    ("url", "normal", "domain"),
    [
        ("https://www.example.com/a/b/", "example.com/a/b", "example.com"),
        (
            "http://EXAMPLE.com:80/Path?b=2&utm_medium=x&a=1",
            "example.com/Path?b=2&a=1",
            "example.com",
        ),
        ("example.com/x?fbclid=abc", "example.com/x", "example.com"),
        ("https://user:pw@www.example.com:443/#frag", "example.com", "example.com"),
        (
            "https://m.facebook.com/story.php?story_fbid=1&id=2&__tn__=R",
            "m.facebook.com/story.php?story_fbid=1&id=2",
            "m.facebook.com",
        ),
        ("https://youtu.be/abc?si=XYZ", "youtu.be/abc", "youtu.be"),
        ("https://example.com/?", "example.com", "example.com"),
    ],
)
def test_rules(con: duckdb.DuckDBPyConnection, url: str, normal: str, domain: str) -> None:
    assert normalize_url(url) == normal
    assert url_domain(url) == domain
    assert con.execute("SELECT concerted_url(?), concerted_domain(?)", [url, url]).fetchone() == (
        normal,
        domain,
    )


# a path as links carry it: no raw space, and no "?" or "#" (they start the query, fragment)
_part = st.text(alphabet="abcXYZ019-_.~%/:@&=+", max_size=12)
urls = st.builds(
    lambda scheme, www, host, port, path, query, frag: (
        f"{scheme}{www}{host}{port}{path}{query}{frag}"
    ),
    st.sampled_from(["", "http://", "https://", "HTTPS://", "ftp://", "//"]),
    st.sampled_from(["", "www.", "WWW."]),
    st.from_regex(r"[a-zA-Z0-9-]{1,8}(\.[a-zA-Z]{2,3}){1,2}", fullmatch=True),
    st.sampled_from(["", ":80", ":443", ":8080"]),
    _part,
    st.one_of(
        st.just(""),
        st.lists(
            st.sampled_from(
                [
                    "utm_source=x",
                    "UTM_Campaign=y",
                    "id=1",
                    "fbclid=z",
                    "q=a+b",
                    "",
                    "si=1",
                    "page=2",
                ]
            ),
            max_size=4,
        ).map(lambda ps: "?" + "&".join(ps)),
    ),
    st.sampled_from(["", "#top", "#"]),
)


@settings(max_examples=examples(300), deadline=None)
@given(st.one_of(urls, st.text(max_size=40)))
def test_python_and_sql_agree(url: str) -> None:
    con = duckdb.connect()
    con.execute(SQL_MACROS)
    assert con.execute("SELECT concerted_url(?), concerted_domain(?)", [url, url]).fetchone() == (
        normalize_url(url),
        url_domain(url),
    )


@settings(max_examples=examples(200), deadline=None)
@given(urls)
def test_normal_form_is_idempotent_and_drops_tracking(url: str) -> None:
    once = normalize_url(url)
    assert normalize_url(once) == once
    assert "utm_" not in once.lower()
    assert "fbclid" not in once
    assert not once.lower().startswith(("http://", "https://", "www."))
