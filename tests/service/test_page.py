"""The moderator's page at ``/``, opened in Debian's chromium (driven by Playwright's
Python package, as tests/test_report.py does; no browser is downloaded)."""

from __future__ import annotations

import time
from typing import Any

import httpx
from playwright.sync_api import Browser, ConsoleMessage, Request, Route

from tests.service.conftest import Start, brigade_stream, report


def test_the_page_is_static_and_locked_to_its_origin(serve: Start) -> None:
    s = serve()
    r = httpx.get(f"{s.url}/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert "connect-src 'self'" in r.headers["content-security-policy"]
    # No address but SVG's namespace name (an identifier, never fetched).
    text = r.text.replace('"http://www.w3.org/2000/svg"', "")
    assert "http://" not in text and "https://" not in text and "//" + "cdn" not in text
    assert "innerHTML" not in r.text  # every value goes in as text


def test_the_page_lists_the_targets_under_review_and_refreshes(
    serve: Start, browser: Browser
) -> None:
    s = serve()
    s.client("reports:write").post("/v1/reports/batch", json=brigade_stream(90))
    listed = s.client("reports:read").get("/v1/targets").json()["targets"]
    assert listed
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    errors: list[str] = []
    elsewhere: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            errors.append(message.text)

    def on_route(route: Route, request: Request) -> None:
        if request.url.startswith(s.url + "/"):
            route.continue_()
        else:
            elsewhere.append(request.url)
            route.abort()

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.route("**/*", on_route)
    try:
        page.goto(f"{s.url}/#token={s.tokens['reports:read']}&every=300")
        page.wait_for_selector("body[data-ready='1']", timeout=30_000)
        # The token left the address bar for the tab's storage.
        assert "token" not in page.url
        cards = page.locator("article.target")
        assert cards.count() == len(listed)
        first = listed[0]
        card = page.locator(f"article[data-target='{first['platform']}/{first['target_id']}']")
        assert card.locator("h2").inner_text() == f"{first['platform']} / {first['target_id']}"
        assert card.locator("svg rect").count() > 0
        assert card.locator("svg rect[data-kind='review'], svg rect[data-kind='discount']").count()
        co = card.locator("ul.co-reporters li").all_inner_texts()
        assert co == first["co_reporters"] and co
        # More reports arrive; the page shows them without a reload.
        before = int(page.get_attribute("body", "data-refreshed") or 0)
        more = [report(500 + i, f"b{i % 5}", first["target_id"], 400.0 + i) for i in range(5)]
        s.client("reports:write").post("/v1/reports/batch", json=more)
        now = s.client("reports:read").get(f"/v1/targets/{first['platform']}/{first['target_id']}")
        reports = now.json()["reports"]
        # (Polled from here: the page's CSP forbids the eval wait_for_function uses.)
        deadline = time.monotonic() + 30
        while int(page.get_attribute("body", "data-refreshed") or 0) <= before + 1:
            assert time.monotonic() < deadline, "the page did not refresh"
            page.wait_for_timeout(100)
        assert f"{reports} reports" in card.locator("p.facts").inner_text()
        assert not errors and not elsewhere
        # A wrong token is dropped and the form asks for another.
        page.goto(f"{s.url}/?again#token=cst_wrong")  # a new load, not a hash change
        page.wait_for_selector("body[data-ready='1']")
        page.wait_for_selector("#login:not([hidden])", timeout=10_000)
        assert "refused" in page.locator("#status").inner_text()
        page.fill("#token", s.tokens["reports:read"])
        page.click("button[type=submit]")
        page.wait_for_selector("article.target", timeout=10_000)
    finally:
        page.close()


def test_the_page_shows_what_hindsight_found_apart(serve: Start, browser: Browser) -> None:
    s = serve()
    s.client("reports:write").post("/v1/reports/batch", json=brigade_stream(90))
    first = s.client("reports:read").get("/v1/targets").json()["targets"][0]
    key = (first["platform"], first["target_id"])
    # As a hindsight run leaves it (tests/service/test_hindsight.py runs real ones).
    app: Any = s.server.config.app
    state = app.state.service.guard.state
    state.hindsight = {
        key: {
            "source": "hindsight",
            "campaign_id": "brigade-7",
            "score": 0.81,
            "reporters": ["b1", "b2"],
            "signals": ["s2_co_report"],
            "first_report": None,
            "latest_report": None,
            "protected": True,
            "found_at": "2026-03-01T00:00:00+00:00",
        }
    }
    page = browser.new_page()
    try:
        page.goto(f"{s.url}/#token={s.tokens['reports:read']}")
        card = page.locator(f"article[data-target='{key[0]}/{key[1]}']")
        card.wait_for(timeout=30_000)
        assert card.get_attribute("data-sources") == "online hindsight"
        found = card.locator("ul[data-source='hindsight'] li").all_inner_texts()
        assert found == ["s2_co_report", "reporter b1", "reporter b2"]
        online = card.locator("ul[data-source='online'] li").all_inner_texts()
        assert online and not set(online) & set(found)
        assert "brigade brigade-7, score 0.81, protect" in card.inner_text().lower()
    finally:
        page.close()
