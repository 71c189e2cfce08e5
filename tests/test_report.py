"""The HTML report, opened as an investigator opens it: headless Chromium, offline.

The result directories are a small one written here by hand in the result and evidence
contracts (a network and a brigade, with every file a full run writes), and the real
``concerted analyze`` of a simulated platform.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import shutil
import struct
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Route

import concerted
from concerted import outputs, simulate
from concerted.analysis import analyze
from concerted.errors import ConfigError
from concerted.ingest import IngestOptions, open_case
from concerted.outputs import RESULT_FORMAT, page
from concerted.outputs.base import TABLES
from concerted.schema import EVIDENCE_CONTRACTS, RESULT_CONTRACTS, arrow_schema
from tests.test_cli import run

# End to end: left out of `make test-fast`.
pytestmark = pytest.mark.e2e

T0 = datetime(2020, 6, 1, 8, 0, tzinfo=UTC)
SECRET = "Report them all <script>alert('x')</script> for the nation"
HOSTILE_NAME = "<img src=x onerror=alert(1)>"


# --------------------------------------------------------------------------- fixture data


def _table(contract: str, rows: list[dict[str, Any]]) -> pa.Table:
    schema = arrow_schema(
        RESULT_CONTRACTS[contract] if contract in RESULT_CONTRACTS else EVIDENCE_CONTRACTS[contract]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def _network_rows() -> dict[str, list[dict[str, Any]]]:
    """network-1: three pages, two groups, five users on Facebook and two on Instagram."""
    accounts = [("facebook", f"page{i}", "page") for i in range(3)]
    accounts += [("facebook", f"group{i}", "group") for i in range(2)]
    accounts += [("facebook", f"user{i}", "user") for i in range(5)]
    accounts += [("instagram", f"insta{i}", "user") for i in range(2)]
    acting = [a for a in accounts if a[2] != "group"]
    members = [
        {
            "campaign_id": "network-1",
            "account_id": a,
            "platform": p,
            "role": "organiser" if a == "user0" else "member",
            "score": 10.0 + i,
            "signals": ["venue"] if k == "group" else ["co_action:repost", "co_action:text"],
        }
        for i, (p, a, k) in enumerate(accounts)
    ]
    edges, events, clusters = [], [], []
    for i, (p1, a1, _) in enumerate(acting):
        for p2, a2, _ in acting[i + 1 :]:
            (p1_, a1_), (p2_, a2_) = sorted([(p1, a1), (p2, a2)])
            for layer, weight in (("repost", 6.0), ("text", 2.0)):
                first = T0 + timedelta(hours=i)
                edges.append(
                    {
                        "detector": "co_action",
                        "layer": layer,
                        "platform_1": p1_,
                        "account_1": a1_,
                        "platform_2": p2_,
                        "account_2": a2_,
                        "weight": weight,
                        "score": None,
                        "events": int(weight),
                        "lead_1": int(weight) // 2,
                        "lead_2": int(weight) // 2,
                        "median_dt": 12.0,
                        "first_ts": first,
                        "last_ts": first + timedelta(days=3),
                        "expected": 0.1,
                        "p_value": 0.0001,
                        "q_value": 0.001,
                        "significant": True,
                    }
                )
                for k in range(int(weight)):
                    ts = T0 + timedelta(hours=7 * k + i)
                    obj = f"post-{k}" if layer == "repost" else f"texthash{k}"
                    events.append(
                        {
                            "detector": "co_action",
                            "layer": layer,
                            "platform_1": p1_,
                            "account_1": a1_,
                            "platform_2": p2_,
                            "account_2": a2_,
                            "object_id": obj,
                            "ts_1": ts,
                            "ts_2": ts + timedelta(seconds=12),
                            "source_1": f"{a1_}-{layer}-{k}",
                            "source_2": f"{a2_}-{layer}-{k}",
                        }
                    )
    for i, (p, a, kind) in enumerate(acting):
        clusters.append(
            {
                "platform": p,
                "account_id": a,
                "kind": kind,
                "cluster": 0,
                "community": i % 2,
                "campaign_id": "network-1",
                "degree": len(acting) - 1,
                "strength": 8.0 * (len(acting) - 1),
            }
        )
    # One chance pair outside any campaign.
    clusters += [
        {
            "platform": "facebook",
            "account_id": x,
            "kind": "user",
            "cluster": -1,
            "community": -1,
            "campaign_id": None,
            "degree": 1,
            "strength": 2.0,
        }
        for x in ("loner0", "loner1")
    ]
    posts: list[dict[str, Any]] = [
        {
            "post_id": f"{a}-text-{k}",
            "platform": p,
            "account_id": a,
            "ts": T0 + timedelta(hours=7 * k),
            "venue_id": "group0",
            "text": f"{SECRET} #{k}",
            "urls": [],
            # The first account's post of each text stands for it (evidence.py).
            "campaign_id": "network-1" if a == acting[0][1] else None,
            "role": "copied_text" if a == acting[0][1] else None,
            "copies": len(acting) if a == acting[0][1] else None,
        }
        for p, a, _ in acting
        for k in range(2)
    ]
    return {
        "accounts": [
            {"platform": p, "account_id": a, "kind": k, "name": f"Name of {a}", "handle": a}
            for p, a, k in accounts
        ],
        "members": members,
        "edges": edges,
        "events": events,
        "clusters": clusters,
        "posts": posts,
    }


def _brigade_rows() -> dict[str, list[dict[str, Any]]]:
    """brigade-1: six human and three tool-driven reporters, one organiser, three
    targets; a mobilising post before each burst and a boast after one."""
    humans = [f"rep{i}" for i in range(6)]
    tools = [f"bot{i}" for i in range(3)]
    targets = ["critic0", "critic1", "minority0"]
    members = [
        {
            "campaign_id": "brigade-1",
            "account_id": a,
            "platform": "facebook",
            "role": "automated_reporter" if a in tools else "reporter",
            "score": 0.9,
            "signals": ["co_report", "report_automation"] if a in tools else ["co_report"],
        }
        for a in humans + tools
    ]
    members.append(
        {
            "campaign_id": "brigade-1",
            "account_id": "boss",
            "platform": "facebook",
            "role": "organiser",
            "score": 1.0,
            "signals": ["mobilisation"],
        }
    )
    scores, target_rows, signals, posts = [], [], [], []
    n = 0
    for t, target in enumerate(targets):
        burst = T0 + timedelta(days=2 + t, hours=3)
        for k, reporter in enumerate(humans + tools):
            n += 1
            scores.append(
                {
                    "report_id": f"r{n}",
                    "platform": "facebook",
                    "score": 0.8 + 0.02 * (k % 5),
                    "flagged": True,
                    "recommendation": "discount" if reporter in tools else "review",
                    "campaign_id": "brigade-1",
                    "signals": ["report_burst", "co_report"],
                    "reporter_id": reporter,
                    "target_id": target,
                    "ts": burst + timedelta(minutes=2 * k),
                }
            )
        for k in range(3):  # organic reports on the same target, days apart
            n += 1
            scores.append(
                {
                    "report_id": f"r{n}",
                    "platform": "facebook",
                    "score": 0.05 * k,
                    "flagged": False,
                    "recommendation": "count",
                    "campaign_id": None,
                    "signals": [],
                    "reporter_id": f"someone{k}",
                    "target_id": target,
                    "ts": burst - timedelta(days=1, hours=k),
                }
            )
        target_rows.append(
            {
                "campaign_id": "brigade-1",
                "target_id": target,
                "platform": "facebook",
                "target_kind": "account",
                "score": 0.9,
                "reports": 9,
                "first_ts": burst,
                "last_ts": burst + timedelta(minutes=16),
            }
        )
        call = f"call-{t}"
        posts.append(
            {
                "post_id": call,
                "platform": "facebook",
                "account_id": "boss",
                "ts": burst - timedelta(minutes=30),
                "venue_id": "group0",
                "text": SECRET,
                "urls": [f"https://facebook.example/report?target={target}"],
                "campaign_id": None,
                "role": "mobilisation",
                "copies": None,
            }
        )
        signals.append(
            {
                "detector": "mobilisation",
                "layer": "report_link",
                "entity": "post",
                "platform": "facebook",
                "id": call,
                "score": 0.95,
                "value": 1.0,
                "related_id": target,
                "first_ts": burst - timedelta(minutes=30),
                "last_ts": burst - timedelta(minutes=30),
                "detail": "links into the report flow for the target; 9 reports followed",
            }
        )
    posts.append(
        {
            "post_id": "boast-0",
            "platform": "facebook",
            "account_id": "boss",
            "ts": T0 + timedelta(days=2, hours=9),
            "venue_id": "group0",
            "text": "Done, account removed",
            "urls": [],
            "campaign_id": None,
            "role": "boast",
            "copies": None,
        }
    )
    signals.append(
        {
            "detector": "boasting",
            "layer": "takedown_claim",
            "entity": "post",
            "platform": "facebook",
            "id": "boast-0",
            "score": 0.8,
            "value": None,
            "related_id": "critic0",
            "first_ts": T0 + timedelta(days=2, hours=9),
            "last_ts": T0 + timedelta(days=2, hours=9),
            "detail": "claims the removal of a brigade target",
        }
    )
    for b in tools:
        signals.append(
            {
                "detector": "report_automation",
                "layer": "regular_gaps",
                "entity": "account",
                "platform": "facebook",
                "id": b,
                "score": 0.97,
                "value": 2.0,
                "related_id": None,
                "first_ts": T0 + timedelta(days=2),
                "last_ts": T0 + timedelta(days=4),
                "detail": "reports 2.0 s apart with a spread of 0.1 s, one reason",
            }
        )
    signals.append(
        {
            "detector": "co_action",
            "layer": "repost",
            "entity": "account",
            "platform": "facebook",
            "id": "user1",
            "score": 0.7,
            "value": 6.0,
            "related_id": None,
            "first_ts": T0,
            "last_ts": T0 + timedelta(days=3),
            "detail": "reposted the same posts as 9 accounts within 60 s",
        }
    )
    edges = []
    everyone = sorted(humans + tools)
    for i, a in enumerate(everyone):
        for b in everyone[i + 1 :]:
            edges.append(
                {
                    "detector": "co_report",
                    "layer": "report",
                    "platform_1": "facebook",
                    "account_1": a,
                    "platform_2": "facebook",
                    "account_2": b,
                    "weight": 3.0,
                    "score": 0.8,
                    "events": 3,
                    "lead_1": 1,
                    "lead_2": 2,
                    "median_dt": 90.0,
                    "first_ts": T0 + timedelta(days=2),
                    "last_ts": T0 + timedelta(days=4),
                    "expected": None,
                    "p_value": None,
                    "q_value": None,
                    "significant": None,
                }
            )
    return {
        "members": members,
        "report_scores": scores,
        "targets": target_rows,
        "signals": signals,
        "posts": posts,
        "edges": edges,
        "accounts": [
            {"platform": "facebook", "account_id": a, "kind": "user", "name": None, "handle": a}
            for a in humans + tools
        ]
        + [
            {
                "platform": "facebook",
                "account_id": "boss",
                "kind": "user",
                "name": HOSTILE_NAME,
                "handle": None,
            }
        ],
    }


def write_result(out: Path) -> Path:
    """A result directory with every file a full run writes: a network and a brigade."""
    out.mkdir(parents=True, exist_ok=True)
    net, brig = _network_rows(), _brigade_rows()
    campaigns = [
        {
            "campaign_id": "network-1",
            "kind": "network",
            "score": 40.0,
            "flagged": True,
            "signals": ["co_action:repost", "co_action:text"],
            "accounts": len(net["members"]),
            "targets": None,
            "reports": None,
            "first_ts": T0,
            "last_ts": T0 + timedelta(days=3),
            "summary": json.dumps(
                {
                    "acting_accounts": 10,
                    "venues_attributed": 2,
                    "organisers": 1,
                    "ties": 45,
                    "assets": {
                        "facebook": {"page": 3, "group": 2, "user": 5},
                        "instagram": {"user": 2},
                    },
                    "top_urls": [{"object": "patriot.example/a", "accounts": 9, "actions": 20}],
                    "top_domains": [{"object": "patriot.example", "accounts": 9, "actions": 30}],
                    "top_hashtags": [{"object": "nation", "accounts": 10, "actions": 50}],
                    "top_objects": [
                        {"object": "post-1", "kind": "repost", "accounts": 10, "actions": 10}
                    ],
                }
            ),
        },
        {
            "campaign_id": "network-2",
            "kind": "network",
            "score": 1.0,
            "flagged": False,
            "signals": ["co_action:hashtag"],
            "accounts": 2,
            "targets": None,
            "reports": None,
            "first_ts": T0,
            "last_ts": T0,
            "summary": "{}",
        },
        {
            "campaign_id": "brigade-1",
            "kind": "brigade",
            "score": 0.9,
            "flagged": True,
            "signals": ["co_report", "report_burst", "report_automation", "mobilisation"],
            "accounts": len(brig["members"]),
            "targets": 3,
            "reports": 27,
            "first_ts": T0 + timedelta(days=2),
            "last_ts": T0 + timedelta(days=4, hours=4),
            "summary": json.dumps(
                {
                    "reporters": 9,
                    "signals": {
                        "co_report": {"strength": 1.0, "fired_on": 9},
                        "report_automation": {"strength": 0.33, "fired_on": 3},
                        "list_order": {"strength": 0.05, "fired_on": 1},
                    },
                }
            ),
        },
    ]
    pq.write_table(_table("campaigns", campaigns), out / "campaigns.parquet")
    pq.write_table(_table("members", net["members"] + brig["members"]), out / "members.parquet")
    pq.write_table(_table("targets", brig["targets"]), out / "targets.parquet")
    protected = {  # critic0: most of its reports were the brigade's
        "platform": ["facebook"],
        "target_id": ["critic0"],
        "target_kind": ["account"],
        "reports": [12],
        "flagged": [9],
        "share": [0.75],
        "campaign_id": ["brigade-1"],
    }
    pq.write_table(pa.table(protected), out / "protected.parquet")
    pq.write_table(_table("report_scores", brig["report_scores"]), out / "report_scores.parquet")
    pq.write_table(_table("edges", net["edges"] + brig["edges"]), out / "edges.parquet")
    pq.write_table(_table("events", net["events"]), out / "events.parquet")
    pq.write_table(_table("signals", brig["signals"]), out / "signals.parquet")
    pq.write_table(pa.Table.from_pylist(net["clusters"]), out / "clusters.parquet")
    accounts = pa.Table.from_pylist(
        [
            {**a, "created_at": T0 - timedelta(days=30), "followers": 100}
            for a in net["accounts"] + brig["accounts"]
        ]
    )
    pq.write_table(accounts, out / "accounts.parquet")
    posts_fields: list[pa.Field[Any]] = [  # the evidence posts (posts.parquet)
        pa.field("post_id", pa.string()),
        pa.field("platform", pa.string()),
        pa.field("account_id", pa.string()),
        pa.field("ts", pa.timestamp("us", tz="UTC")),
        pa.field("venue_id", pa.string()),
        pa.field("text", pa.string()),
        pa.field("urls", pa.list_(pa.string())),
        pa.field("campaign_id", pa.string()),
        pa.field("role", pa.string()),
        pa.field("copies", pa.int64()),
    ]
    posts_schema = pa.schema(posts_fields)
    pq.write_table(
        pa.Table.from_pylist(net["posts"] + brig["posts"], schema=posts_schema),
        out / "posts.parquet",
    )
    timeline = [
        {
            "campaign_id": "network-1",
            "bucket": T0 + timedelta(hours=h),
            "kind": kind,
            "actions": (h * 7 + len(kind)) % 11,
        }
        for h in range(72)
        for kind in ("repost", "text", "hashtag")
    ] + [
        {
            "campaign_id": "brigade-1",
            "bucket": T0 + timedelta(days=2 + d, hours=3),
            "kind": "report",
            "actions": 9,
        }
        for d in range(3)
    ]
    timeline_fields: list[pa.Field[Any]] = [
        pa.field("campaign_id", pa.string()),
        pa.field("bucket", pa.timestamp("us", tz="UTC")),
        pa.field("kind", pa.string()),
        pa.field("actions", pa.int64()),
    ]
    timeline_schema = pa.schema(timeline_fields)
    pq.write_table(pa.Table.from_pylist(timeline, schema=timeline_schema), out / "timeline.parquet")
    run_record = {
        "concerted": "0.1.0",
        "result_format": RESULT_FORMAT,
        "command": "analyze",
        "started": "2020-07-01T00:00:00Z",
        "case": str(out / "case.duckdb"),
        "pseudonymised": True,
        "inputs": [
            {
                "path": "/data/posts.parquet",
                "sha256": "ab" * 32,
                "format": "generic",
                "rows_read": 1000,
                "rows_set_aside": 0,
            }
        ],
        "settings": {
            "coaction": {"window": 60.0, "kinds": ["repost", "text"]},
            "significance": {"null": "relabel", "replicates": 3, "fdr": 0.01, "seed": 0},
        },
        "seconds": {"detect": 1.5, "null": 3.0, "test": 0.5},
        "counts": {"actions": 5000, "pairs": 800, "significant_pairs": 90},
        "notes": {
            "co_action": {"viral_objects": ["x"]},
            "significance": {
                "pairs_tested": 800,
                "min_significant_weight": 4,
                "by_weight": [
                    {"weight": 1, "observed_at_least": 800, "expected_at_least": 790.0,
                     "q_value": 1.0},
                    {"weight": 4, "observed_at_least": 90, "expected_at_least": 0.3,
                     "q_value": 0.003},
                ],
            },
        },
    }  # fmt: skip
    (out / "run.json").write_text(json.dumps(run_record))
    return out


# --------------------------------------------------------------------------- the browser


class Opened:
    """A report open in a page, with every console message and request it made."""

    def __init__(self, browser: Browser, path: Path, width: int = 1366, height: int = 768):
        self.page: Page = browser.new_page(viewport={"width": width, "height": height})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.url = path.resolve().as_uri()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        self.page.route("**/*", self._route)
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready='1']", timeout=30_000)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type in ("error", "warning"):
            self.errors.append(f"{message.type}: {message.text}")

    def _route(self, route: Route, request: Request) -> None:
        if request.url == self.url or request.url.startswith("data:"):
            route.continue_()
        else:
            self.requests.append(request.url)
            route.abort()

    def close(self) -> None:
        self.page.close()


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = write_result(tmp_path_factory.mktemp("result") / "r")
    page.write(out)
    return out


@pytest.fixture(scope="module")
def opened(browser: Browser, result: Path) -> Iterator[Opened]:
    o = Opened(browser, result / outputs.REPORT_FILE)
    yield o
    o.close()


def _png_is_a_picture(path: Path) -> bool:
    """Decode a PNG's pixels (stdlib only) and check it is not one flat colour."""
    return _png_is_a_picture_bytes(path.read_bytes())


def _png_is_a_picture_bytes(data: bytes) -> bool:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    idat = b""
    i = 8
    while i < len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        kind = data[i + 4 : i + 8]
        if kind == b"IDAT":
            idat += data[i + 8 : i + 8 + length]
        i += 12 + length
    pixels = zlib.decompress(idat)
    return width > 0 and height > 0 and len(set(pixels[:: max(1, len(pixels) // 5000)])) > 20


# --------------------------------------------------------------------------- tests


def test_the_page_is_one_offline_file(result: Path) -> None:
    html = (result / outputs.REPORT_FILE).read_text()
    # Nothing refers outside the page.
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=\"(?!#|data:)", html)
    assert "@import" not in html and "url(http" not in html
    assert "Content-Security-Policy" in html
    # The vendored libraries and their licences are inlined and named.
    assert "uPlot" in html and "cytoscape" in html
    for name in ("LICENSE.uplot", "LICENSE.cytoscape", "uPlot.iife.min.js", "cytoscape.min.js"):
        assert (Path(concerted.__file__).parent / "assets" / name).is_file()
    # Identifiers and names are escaped, never markup.
    assert HOSTILE_NAME not in html
    assert "<script>alert(" not in html


def test_no_console_errors_and_no_requests(opened: Opened) -> None:
    assert opened.errors == []
    assert opened.requests == []


def test_every_section_and_chart_rendered(opened: Opened, tmp_path: Path) -> None:
    page = opened.page
    for section in ("#summary", "#networks", "#brigades", "#method", "#limitations"):
        assert page.locator(section).count() == 1, section
    assert page.locator("article.network").count() == 1
    assert page.locator("article.brigade").count() == 1
    charts = page.eval_on_selector_all(
        "[data-chart]",
        """els => els.map(e => {
             const c = e.querySelector('canvas');
             return {key: e.dataset.chart, rendered: e.dataset.rendered,
                     w: c ? c.width : 0, h: c ? c.height : 0};
           })""",
    )
    # Two activity timelines, three target timelines and one score histogram.
    assert len(charts) == 6
    for c in charts:
        assert c["rendered"] == "1" and c["w"] > 100 and c["h"] > 50, c
    graphs = page.eval_on_selector_all(
        "[data-graph]",
        """els => els.map(e => {
             const c = e.querySelector('canvas');
             return {nodes: +e.dataset.nodes, edges: +e.dataset.edges, w: c ? c.width : 0};
           })""",
    )
    # The network's ten acting accounts; the brigade's nine co-reporting accounts.
    assert [(g["nodes"], g["edges"]) for g in graphs] == [(10, 45), (9, 36)]
    assert all(g["w"] > 100 for g in graphs)
    text = page.inner_text("main")
    assert "3 Facebook Pages, 2 Groups and 5 accounts; 2 Instagram accounts" in text
    assert "mobilising post" in text and "boast" in text
    assert "reports 2.0 s apart" in text  # the automation evidence
    assert "pseudonymised" in text
    assert "Targets to protect" in text and "protect: hold for review" in text
    assert "below the bar" in text  # list_order: a signal that did not fire
    # The copied texts come from posts.parquet, counted over all the members' posts.
    copies = page.locator("article.network table").filter(has_text="example post")
    assert "Report them all <script>" in copies.inner_text()
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    assert _png_is_a_picture(shot)


def _settled_box(page: Page, locator: Any) -> dict[str, float]:
    """The element's box once smooth scrolling has stopped moving it."""
    last = None
    for _ in range(50):
        box = locator.bounding_box()
        assert box is not None
        if box == last:
            return dict(box)
        last = box
        page.wait_for_timeout(100)
    raise AssertionError("the page never stopped scrolling")


def test_hover_names_an_account_and_click_lists_its_evidence(opened: Opened) -> None:
    page = opened.page
    graph = page.locator("[data-graph]").first
    graph.scroll_into_view_if_needed()
    box = _settled_box(page, graph)
    position = page.evaluate(
        """() => {
             const el = document.querySelector('[data-graph]');
             const n = el._cy.nodes()[0];
             const p = n.renderedPosition();
             return {x: p.x, y: p.y, id: n.id()};
           }"""
    )
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.mouse.move(box["x"] + position["x"], box["y"] + position["y"], steps=5)
    tip = graph.locator(".tip")
    tip.wait_for(state="visible", timeout=5_000)
    assert "ties" in tip.inner_text()
    page.mouse.click(box["x"] + position["x"], box["y"] + position["y"])
    panel = page.locator("[data-evidence]").first
    evidence = panel.text_content() or ""
    assert "Strongest ties" in evidence and "First matched actions" in evidence
    assert opened.errors == []


def test_zoom_buttons_change_the_zoom(opened: Opened) -> None:
    page = opened.page
    before = page.evaluate("document.querySelector('[data-graph]')._cy.zoom()")
    page.locator("[data-graph] [data-zoom='in']").first.click()
    after = page.evaluate("document.querySelector('[data-graph]')._cy.zoom()")
    assert after > before


def _wait_until_at_top(page: Page, selector: str) -> None:
    """The page scrolls smoothly: wait (at most 5 s) for ``selector`` to reach the top,
    or for the page to reach its end."""
    where = f"""() => {{
        const top = document.querySelector("{selector}").getBoundingClientRect().top;
        const end = window.scrollY + window.innerHeight >= document.body.scrollHeight - 2;
        return Math.abs(top) < 5 || (end && top >= 0 && top < window.innerHeight);
    }}"""
    for _ in range(50):
        if page.evaluate(where):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"{selector} never came into view")


def test_usable_at_1366_by_768(browser: Browser, result: Path) -> None:
    o = Opened(browser, result / outputs.REPORT_FILE, 1366, 768)
    try:
        page = o.page
        overflow = page.evaluate(_OVERFLOW)  # as on a phone (test_usable_on_a_phone)
        assert overflow["page"] <= 0 and overflow["tables"] == 0
        # The contents stay in view, and each entry brings its section to the top.
        assert page.locator("nav.toc").is_visible()
        for href in ("#summary", "#networks", "#brigades", "#method"):
            page.click(f"nav.toc a[href='{href}']")
            _wait_until_at_top(page, href)
        # The summary's headline figures fit in the first screen.
        page.evaluate("window.scrollTo(0, 0)")
        figures = page.locator(".figures").bounding_box()
        assert figures is not None and figures["y"] + figures["height"] < 768
        # No chart is wider than its column.
        widths = page.eval_on_selector_all(
            "[data-chart] canvas, [data-graph] canvas",
            "els => els.map(c => c.getBoundingClientRect().right)",
        )
        assert max(widths) <= 1366
        assert o.errors == []
    finally:
        o.close()


def test_hide_text_leaves_every_message_text_out(result: Path, tmp_path: Path) -> None:
    shown = (result / outputs.REPORT_FILE).read_text()
    assert "Report them all &lt;script&gt;" in shown
    hidden_path = page.write(result, hide_text=True, out=tmp_path / "hidden.html")
    hidden = hidden_path.read_text()
    assert "Report them all" not in hidden and "account removed" not in hidden
    assert "texts hidden" in hidden
    assert (tmp_path / outputs.SUMMARY_FILE).is_file()


def test_summary_json_holds_the_findings(result: Path) -> None:
    summary = json.loads((result / outputs.SUMMARY_FILE).read_text())
    (network,) = summary["networks"]
    assert network["campaign_id"] == "network-1"
    assert {a["platform"]: a["total"] for a in network["assets"]} == {
        "facebook": 10,
        "instagram": 2,
    }
    (brigade,) = summary["brigades"]
    assert (brigade["reporters"], brigade["automated"], brigade["organisers"]) == (9, 3, 1)
    assert (brigade["targets"], brigade["reports"]) == (3, 27)
    assert summary["unflagged_campaigns"] == 1
    assert [t["target_id"] for t in summary["protected_targets"]["rows"]] == ["critic0"]
    assert summary["pseudonymised"] is True
    assert SECRET not in json.dumps(summary)


def test_caps_are_applied_and_said(browser: Browser, result: Path, tmp_path: Path) -> None:
    limits = outputs.Limits(graph_nodes=4, graph_edges=3, table_rows=2, target_charts=1)
    path = page.write(result, out=tmp_path / "capped.html", limits=limits)
    model = outputs.collect(result, limits=limits)
    caps = " | ".join(model["caps"])
    assert "4 most strongly tied of 10" in caps
    assert "3 strongest of" in caps
    assert "1 most reported of 3 targets" in caps
    assert "lists 2 of" in caps
    graph = model["data"]["graphs"]["net-0-graph"]
    assert len(graph["nodes"]) == 4 and len(graph["edges"]) == 3
    o = Opened(browser, path)
    try:
        assert o.errors == [] and o.requests == []
        assert "4 most strongly tied of 10" in o.page.inner_text("#caps")
    finally:
        o.close()


def test_a_result_of_another_format_is_refused(result: Path, tmp_path: Path) -> None:
    run_record = json.loads((result / "run.json").read_text())
    for found, said in ((None, "records no result_format"), (RESULT_FORMAT + 1, "format 2")):
        other = tmp_path / f"format-{found}"
        shutil.copytree(result, other)
        if found is None:
            del run_record["result_format"]
        else:
            run_record["result_format"] = found
        (other / "run.json").write_text(json.dumps(run_record))
        with pytest.raises(ConfigError, match=f"{said}; this concerted reads result format 1"):
            page.write(other)
        refused = run("report", other)
        assert refused.returncode == 1 and said in refused.stderr
    incomplete = tmp_path / "incomplete"
    shutil.copytree(result, incomplete)
    (incomplete / "timeline.parquet").unlink()
    with pytest.raises(ConfigError, match=r"incomplete result: timeline\.parquet missing"):
        page.write(incomplete)


def test_a_run_that_found_nothing(browser: Browser, result: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for name in TABLES:
        schema = pq.read_schema(result / f"{name}.parquet")
        pq.write_table(schema.empty_table(), empty / f"{name}.parquet")
    shutil.copy(result / "run.json", empty / "run.json")
    path = page.write(empty)
    o = Opened(browser, path)
    try:
        assert o.errors == [] and o.requests == []
        text = o.page.inner_text("main")
        assert "No coordinated network was found" in text
        assert "No brigade was found" in text
    finally:
        o.close()


def test_odd_summaries_do_not_break_the_page(
    browser: Browser, result: Path, tmp_path: Path
) -> None:
    odd = tmp_path / "odd"
    shutil.copytree(result, odd)
    campaigns = pq.read_table(odd / "campaigns.parquet").to_pylist()
    campaigns[0]["summary"] = json.dumps(
        {
            "assets": {"facebook": "many", "instagram": {"user": "two", "page": 1}},
            "top_urls": ["junk", {"object": "a.example"}],
            "top_hashtags": {"not": "a list"},
            "top_objects": [{"accounts": None}],
        }
    )
    campaigns[2]["summary"] = json.dumps({"signals": {"co_report": "strong", "x": {}}})
    campaigns[1]["summary"] = "not json"
    pq.write_table(_table("campaigns", campaigns), odd / "campaigns.parquet")
    path = page.write(odd)
    o = Opened(browser, path)
    try:
        assert o.errors == [] and o.requests == []
        assert "1 Instagram Page" in o.page.inner_text("#summary")
    finally:
        o.close()


def test_a_directory_without_a_result_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no analysis result"):
        page.write(tmp_path)


def test_report_command_rebuilds_the_page(result: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(result, copy)
    (copy / outputs.REPORT_FILE).unlink()
    done = run("report", copy, "--hide-text")
    assert done.returncode == 0, done.stderr
    assert str(copy / outputs.REPORT_FILE) in done.stdout
    assert "Report them all" not in (copy / outputs.REPORT_FILE).read_text()
    refused = run("report", tmp_path / "nowhere")
    assert refused.returncode == 2
    not_a_result = run("report", tmp_path)
    assert not_a_result.returncode == 1 and "no analysis result" in not_a_result.stderr


# --------------------------------------------------------------------------- fonts, phones

URDU = "پاکستان زندہ باد ہے"
HINDI = "भारत माता की जय क्षत्रिय"


@pytest.fixture(scope="module")
def phone(
    browser: Browser, result: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Opened]:
    """The page of a case named in Urdu and Hindi, open at a phone's 390x844."""
    out = tmp_path_factory.mktemp("scripts") / "r"
    shutil.copytree(result, out)
    accounts = pq.read_table(out / "accounts.parquet")
    rows = accounts.to_pylist()
    rows[0]["name"], rows[1]["name"] = URDU, HINDI
    pq.write_table(pa.Table.from_pylist(rows, schema=accounts.schema), out / "accounts.parquet")
    o = Opened(browser, page.write(out), 390, 844)
    yield o
    o.close()


# The width of a text drawn in a family, and what the page's embedded faces are.
_FONTS = """async ([text, family]) => {
    await document.fonts.ready;
    const span = document.createElement("span");
    span.style.cssText = "font-size: 40px; white-space: nowrap; font-family: " + family;
    span.textContent = text;
    document.body.appendChild(span);
    const width = span.getBoundingClientRect().width;
    span.remove();
    return {width, faces: [...document.fonts].map(f => [f.family, f.status])};
}"""


def test_the_scripts_in_the_page_have_their_fonts(phone: Opened, opened: Opened) -> None:
    html = Path(phone.url.removeprefix("file://")).read_text()
    assert html.count("@font-face") == 2 and "url(http" not in html
    for text, family in ((URDU, "Report Arabic"), (HINDI, "Report Devanagari")):
        embedded = phone.page.evaluate(_FONTS, [text, f'"{family}", serif'])
        # serif has no glyph for these scripts here: the text would be .notdef boxes.
        boxes = phone.page.evaluate(_FONTS, [text, "serif"])
        assert [family, "loaded"] in embedded["faces"]
        assert embedded["width"] != boxes["width"]
        assert phone.page.evaluate(f"document.fonts.check('16px \"{family}\"', '{text}')")
    assert URDU in phone.page.inner_text("main")
    # A page in Latin script embeds no font.
    assert opened.page.evaluate(_FONTS, ["x", "serif"])["faces"] == []
    assert "@font-face" not in Path(opened.url.removeprefix("file://")).read_text()
    assert phone.errors == [] and phone.requests == []


_OVERFLOW = """() => ({
    page: document.documentElement.scrollWidth - innerWidth,
    // A table wider than the screen must scroll inside a box that fits it.
    tables: [...document.querySelectorAll("table")].filter(t => {
        const box = t.closest(".table-wrap");
        const right = (box || t).getBoundingClientRect().right;
        return right > innerWidth + 0.5 || (box && box.scrollWidth > box.clientWidth + 1
            && getComputedStyle(box).overflowX !== "auto");
    }).length,
    wide: [...document.querySelectorAll(".table-wrap")].filter(
        b => b.scrollWidth > b.clientWidth + 1).length,
})"""


def test_usable_on_a_phone(phone: Opened) -> None:
    page = phone.page
    found = page.evaluate(_OVERFLOW)
    assert found["page"] <= 0 and found["tables"] == 0
    assert found["wide"] >= 1  # the wide tables scroll in their box
    # Help text says what works on a touch screen, and a tap names an account.
    assert "tap" in page.inner_text("[data-evidence]")
    graph = page.locator("[data-graph]").first
    graph.scroll_into_view_if_needed()
    box = _settled_box(page, graph)
    spot = page.evaluate(
        "(() => { const p = document.querySelector('[data-graph]')._cy.nodes()[0]"
        ".renderedPosition(); return {x: p.x, y: p.y}; })()"
    )
    page.mouse.click(box["x"] + spot["x"], box["y"] + spot["y"])
    assert graph.locator(".tip").is_visible()
    assert "Strongest ties" in (page.locator("[data-evidence]").first.text_content() or "")
    assert phone.errors == []


# --------------------------------------------------------------------------- dense networks


def _dense(result: Path, out: Path, accounts: int = 80) -> Path:
    """The result with network-1 grown by ``accounts`` accounts all tied to each other
    (every pair), in four communities whose ties inside are the strongest (and the
    fixture's two)."""
    shutil.copytree(result, out)
    users = [f"dense{i:03d}" for i in range(accounts)]
    tables = {n: pq.read_table(out / f"{n}.parquet") for n in ("members", "edges", "clusters")}
    members = tables["members"].to_pylist() + [
        {"campaign_id": "network-1", "account_id": a, "platform": "facebook",
         "role": "member", "score": 1.0, "signals": ["co_action:repost"]}
        for a in users
    ]  # fmt: skip
    clusters = tables["clusters"].to_pylist() + [
        {"platform": "facebook", "account_id": a, "kind": "user", "cluster": 0,
         "community": 10 + i % 4, "campaign_id": "network-1", "degree": accounts - 1,
         "strength": 1.0}
        for i, a in enumerate(users)
    ]  # fmt: skip
    edges = tables["edges"].to_pylist()
    template = dict(edges[0])
    for i, a in enumerate(users):
        for j in range(i + 1, accounts):
            same = i % 4 == j % 4
            weight = 20.0 + (i * 7 + j) % 5 if same else 1.0 + (i + j) % 3
            edges.append({**template, "account_1": a, "account_2": users[j], "weight": weight})
    pq.write_table(pa.Table.from_pylist(members, schema=tables["members"].schema),
                   out / "members.parquet")  # fmt: skip
    pq.write_table(pa.Table.from_pylist(clusters, schema=tables["clusters"].schema),
                   out / "clusters.parquet")  # fmt: skip
    pq.write_table(pa.Table.from_pylist(edges, schema=tables["edges"].schema),
                   out / "edges.parquet")  # fmt: skip
    return out


def test_a_dense_network_draws_its_backbone(result: Path, tmp_path: Path) -> None:
    dense = _dense(result, tmp_path / "dense")
    limits = outputs.Limits()
    model = outputs.collect(dense)
    graph = model["data"]["graphs"]["net-0-graph"]
    nodes, edges = len(graph["nodes"]), len(graph["edges"])
    assert nodes == 90 and edges <= (limits.node_ties + 1) * nodes
    # Every account keeps a tie, and the communities are drawn apart.
    assert {e[k] for e in graph["edges"] for k in ("s", "t")} == {n["id"] for n in graph["nodes"]}
    where = {n["account_id"]: (n["x"], n["y"]) for n in graph["nodes"]}

    def gap(a: str, b: str) -> float:
        return float(sum((p - q) ** 2 for p, q in zip(where[a], where[b], strict=True)) ** 0.5)

    inside = [gap(f"dense{i:03d}", f"dense{i + 4:03d}") for i in range(0, 70)]
    across = [gap(f"dense{i:03d}", f"dense{i + 1:03d}") for i in range(0, 70)]
    assert sum(inside) < sum(across) / 2
    # Deterministic: the same result draws the same way.
    assert outputs.collect(dense)["data"]["graphs"]["net-0-graph"] == graph
    html = page.write(dense).read_text()
    caption = re.search(r'<p class="caption" data-caption="net-0-graph">(.*?)</p>', html, re.S)
    assert caption is not None
    said = html_lib.unescape(caption.group(1))
    assert (
        f"a backbone of the strongest of their {80 * 79 // 2 + 45:,} ties" in said
        and f"{edges} ties drawn" in said
    )
    assert "each account's 3 strongest" in said and "6 communities" in said
    assert "drawn at the edge" in said


def test_a_dense_network_is_also_an_adjacency_matrix(
    result: Path, tmp_path: Path, browser: Browser
) -> None:
    dense = _dense(result, tmp_path / "dense")
    graph = outputs.collect(dense)["data"]["graphs"]["net-0-graph"]
    matrix, nodes = graph["matrix"], graph["nodes"]
    # Every tie among the drawn accounts, each once, not only the backbone.
    assert len(matrix["cells"]) == 80 * 79 // 2 + 45 > len(graph["edges"])
    assert sorted(matrix["order"]) == list(range(len(nodes)))
    assert all(a < b for a, b, _ in matrix["cells"])
    assert len({(a, b) for a, b, _ in matrix["cells"]}) == len(matrix["cells"])
    # A community's accounts are next to each other, and its ties inside are the dark
    # block on the diagonal: each dense community is one run of 20 between bounds.
    by_id = {n["account_id"]: n for n in nodes}
    where = {nodes[i]["account_id"]: p for p, i in enumerate(matrix["order"])}
    for k in range(4):
        spots = sorted(where[f"dense{i:03d}"] for i in range(k, 80, 4))
        assert spots == list(range(spots[0], spots[0] + 20))
        assert spots[0] in [0, *matrix["bounds"]]
    inside = [w for a, b, w in matrix["cells"] if a // 20 == b // 20 and max(a, b) < 80]
    assert min(inside) >= 20.0 and by_id
    # A sparse network has no matrix: its drawing shows every tie already.
    sparse = outputs.collect(result)["data"]["graphs"]["net-0-graph"]
    assert sparse["matrix"] is None
    html = page.write(dense)
    shown = Opened(browser, html)
    try:
        canvas = shown.page.locator("[data-matrix='net-0-graph']")
        canvas.scroll_into_view_if_needed()
        assert canvas.get_attribute("data-rendered") == "1"
        assert canvas.get_attribute("data-cells") == str(len(matrix["cells"]))
        box = canvas.bounding_box()
        assert box is not None and box["width"] > 100
        assert _png_is_a_picture_bytes(canvas.screenshot())
        # Hovering a cell inside the first community names its two accounts.
        shown.page.mouse.move(box["x"] + box["width"] * 3 / 90, box["y"] + box["width"] * 7 / 90)
        tip = shown.page.locator(".matrix-wrap .tip")
        assert tip.is_visible() and "tie weight" in (tip.text_content() or "")
        shown.page.mouse.click(box["x"] + box["width"] * 3 / 90, box["y"] + box["width"] * 7 / 90)
        assert "Strongest ties" in (
            shown.page.locator("[data-evidence]").first.text_content() or ""
        )
        caption = shown.page.locator("[data-matrix-caption='net-0-graph']").inner_text()
        assert f"every tie among them ({len(matrix['cells']):,})" in caption
        assert shown.errors == [] and shown.requests == []
    finally:
        shown.close()


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("cib")
    data = tmp / "sim"
    simulate.simulate(simulate.scenario("cib", scale=0.5), seed=3, out=data)
    out = tmp / "result"
    store, _ = open_case([data], out / "case.duckdb", IngestOptions(format="generic"))
    with store:
        record = analyze(store, out)
    return {"out": out, "run": record, "path": page.write(out)}


def test_the_report_of_a_real_analysis(browser: Browser, simulated: dict[str, Any]) -> None:
    o = Opened(browser, simulated["path"])
    try:
        assert o.errors == [] and o.requests == []
        counts = simulated["run"]["counts"]
        campaigns = pq.read_table(simulated["out"] / "campaigns.parquet").to_pylist()
        flagged = [c for c in campaigns if c["flagged"]]
        assert o.page.locator("article.network").count() == len(flagged) >= 1
        nodes = o.page.eval_on_selector_all(
            "article.network [data-graph]", "els => els.map(e => +e.dataset.nodes)"
        )
        # Every acting account has ties; accounts tied only by corroborating signals
        # may join them; none beyond the members, nor beyond the cap.
        members = sum(c["accounts"] for c in flagged)
        cap = outputs.Limits().graph_nodes
        assert min(counts["core_accounts"], cap) <= sum(nodes) <= min(members, cap)
        text = o.page.inner_text("main")
        for c in flagged:
            assert c["campaign_id"] in text
        # The method names every input file by its hash.
        for i in simulated["run"]["inputs"]:
            assert i["sha256"] in text
        assert o.page.locator("[data-chart][data-rendered='1']").count() >= 1
    finally:
        o.close()


def test_a_signals_example_is_the_same_whatever_the_row_order() -> None:
    """Signals tied on the top score give one example, the same for any row order
    (the page of one result is the same page every time)."""
    import duckdb

    from concerted.outputs.sections import signal_rows

    class _Res:
        def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
            self.con = con

        def rows(self, query: str) -> list[dict[str, Any]]:
            cursor = self.con.execute(query)
            names = [d[0] for d in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    details = ["c tied", "a tied", "b tied", "weaker"]
    scores = [0.9, 0.9, 0.9, 0.5]
    examples = set()
    for shift in range(len(details)):
        order = details[shift:] + details[:shift]
        con = duckdb.connect()
        con.execute(
            "CREATE TABLE signals AS SELECT 'd' AS detector, 'l' AS layer, 'account' AS entity,"
            " unnest(?) AS id, unnest(?) AS score, unnest(?) AS detail",
            [
                [str(i) for i in range(len(order))],
                [scores[details.index(d)] for d in order],
                order,
            ],
        )
        (row,) = signal_rows(_Res(con), "true")  # type: ignore[arg-type]
        examples.add(row["example"])
        con.close()
    assert examples == {"a tied"}
