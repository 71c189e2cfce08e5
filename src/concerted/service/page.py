"""The moderator's page at ``/``: the targets under review now, refreshing itself.

One static HTML file with its script and style inline; it holds no data. In the
browser it asks ``/v1/targets?state=review`` every few seconds with the moderator's
token (a ``reports:read`` token, given once in the page's form or as ``#token=...`` in
the address, which browsers never send to a server; kept in the tab's
``sessionStorage``) and draws each target: its reports over time (the latest 200,
coloured by recommendation), its co-reporters, its online signals and, apart, what
hindsight found (the brigade, its signals and reporters). Every value is put in
the page as text, never as markup. The page makes no request but to its own origin,
and says so to the browser (``Content-Security-Policy``).
"""

from __future__ import annotations

__all__ = ["CSP", "PAGE"]

#: The browser may load nothing but the page itself and ask only its own origin.
CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>concerted: targets under review</title>
<style>
:root { --count: #6b7280; --review: #d97706; --discount: #b91c1c; --ink: #111827;
        --muted: #4b5563; --line: #e5e7eb; font-family: system-ui, sans-serif; }
body { margin: 0; color: var(--ink); background: #f9fafb; }
header { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; align-items: baseline;
         padding: .8rem 1.2rem; background: #fff; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.15rem; margin: 0; }
#status { color: var(--muted); font-size: .9rem; }
main { padding: 1rem 1.2rem; display: grid; gap: 1rem;
       grid-template-columns: repeat(auto-fill, minmax(22rem, 1fr)); }
.target { background: #fff; border: 1px solid var(--line); border-radius: .5rem;
          padding: .8rem 1rem; min-width: 0; }
.target h2 { font-size: 1rem; margin: 0 0 .3rem; overflow-wrap: anywhere; }
.facts { color: var(--muted); font-size: .85rem; margin: 0 0 .5rem; }
.chips { display: flex; flex-wrap: wrap; gap: .25rem; margin: .3rem 0; padding: 0;
         list-style: none; }
.chips li { background: #f3f4f6; border-radius: 999px; padding: .05rem .55rem;
            font-size: .8rem; overflow-wrap: anywhere; }
.label { font-size: .75rem; text-transform: uppercase; letter-spacing: .04em;
         color: var(--muted); margin-top: .5rem; }
svg { width: 100%; height: 64px; display: block; }
.legend span { font-size: .8rem; margin-right: .8rem; }
.legend i { display: inline-block; width: .7rem; height: .7rem; margin-right: .25rem;
            border-radius: 2px; vertical-align: -1px; }
form { display: flex; gap: .5rem; }
input { font: inherit; padding: .2rem .4rem; min-width: 16rem; }
#empty { color: var(--muted); }
</style>
</head>
<body data-ready="0">
<header>
  <h1>Targets under review now</h1>
  <span class="legend"><span><i style="background:var(--count)"></i>count</span>
    <span><i style="background:var(--review)"></i>review</span>
    <span><i style="background:var(--discount)"></i>discount</span></span>
  <span id="status" role="status">loading</span>
  <form id="login" hidden>
    <input id="token" type="password" autocomplete="off" placeholder="reports:read token"
           aria-label="token">
    <button type="submit">Open</button>
  </form>
</header>
<main id="targets" aria-live="polite"></main>
<script>
"use strict";
(function () {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.get("token")) {
    sessionStorage.setItem("concerted-token", params.get("token"));
    params.delete("token");
    history.replaceState(null, "", location.pathname + location.search +
                         (params.toString() ? "#" + params.toString() : ""));
  }
  const every = Math.max(250, Number(params.get("every")) || 5000);
  const status = document.getElementById("status");
  const list = document.getElementById("targets");
  const login = document.getElementById("login");
  const colours = { count: "var(--count)", review: "var(--review)",
                    discount: "var(--discount)" };
  const NS = "http://www.w3.org/2000/svg";

  login.addEventListener("submit", function (event) {
    event.preventDefault();
    sessionStorage.setItem("concerted-token", document.getElementById("token").value);
    login.hidden = true;
    refresh();
  });

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function chips(items) {
    const ul = el("ul", "chips");
    for (const item of items) ul.appendChild(el("li", "", item));
    return ul;
  }

  // The latest reports over time: one bar per time bucket, stacked by recommendation.
  function timeline(points) {
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 300 60");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("role", "img");
    const times = points.map(function (p) { return Date.parse(p[0]); });
    const lo = Math.min.apply(null, times), hi = Math.max.apply(null, times);
    const buckets = 30, width = 300 / buckets;
    const stacks = [];
    for (let b = 0; b < buckets; b++) stacks.push({ count: 0, review: 0, discount: 0 });
    points.forEach(function (p, i) {
      const b = hi > lo ? Math.min(buckets - 1,
        Math.floor((times[i] - lo) / (hi - lo) * buckets)) : buckets - 1;
      if (p[1] in stacks[b]) stacks[b][p[1]] += 1;
    });
    const top = Math.max(1, ...stacks.map(function (s) {
      return s.count + s.review + s.discount; }));
    stacks.forEach(function (s, b) {
      let y = 60;
      for (const kind of ["count", "review", "discount"]) {
        if (!s[kind]) continue;
        const h = s[kind] / top * 58;
        const rect = document.createElementNS(NS, "rect");
        rect.setAttribute("x", String(b * width + 0.5));
        rect.setAttribute("width", String(width - 1));
        rect.setAttribute("y", String(y - h));
        rect.setAttribute("height", String(h));
        rect.setAttribute("fill", colours[kind]);
        rect.setAttribute("data-kind", kind);
        y -= h;
        svg.appendChild(rect);
      }
    });
    const title = document.createElementNS(NS, "title");
    title.textContent = points.length + " latest reports, " +
      (points.length ? points[0][0] + " to " + points[points.length - 1][0] : "");
    svg.appendChild(title);
    return svg;
  }

  function card(t) {
    const box = el("article", "target");
    box.dataset.target = t.platform + "/" + t.target_id;
    box.appendChild(el("h2", "", t.platform + " / " + t.target_id));
    const r = t.recommendations || {};
    box.dataset.sources = (t.sources || []).join(" ");
    box.appendChild(el("p", "facts",
      t.reports + " reports (" + (r.review || 0) + " review, " + (r.discount || 0) +
      " discount) from " + t.first_report + " to " + t.latest_report +
      "; last flagged " + t.last_flagged));
    box.appendChild(el("div", "label", "Reports over time"));
    box.appendChild(timeline(t.timeline || []));
    box.appendChild(el("div", "label", "Co-reporters (" + t.co_reporters.length + ")"));
    const co = chips(t.co_reporters);
    co.classList.add("co-reporters");
    box.appendChild(co);
    box.appendChild(el("div", "label", "Signals (online)"));
    const online = chips(Object.keys(t.signals).map(function (k) {
      return k + " \\u00d7" + t.signals[k]; }));
    online.dataset.source = "online";
    box.appendChild(online);
    const h = t.hindsight;
    if (h) {
      box.appendChild(el("div", "label", "Hindsight: brigade " + (h.campaign_id || "?") +
        ", score " + Number(h.score).toFixed(2) + (h.protected ? ", protect" : "") +
        ", found " + h.found_at));
      const found = chips(h.signals.concat(h.reporters.map(function (r) {
        return "reporter " + r; })));
      found.dataset.source = "hindsight";
      box.appendChild(found);
    }
    return box;
  }

  async function refresh() {
    const token = sessionStorage.getItem("concerted-token");
    if (!token) {
      login.hidden = false;
      status.textContent = "give a reports:read token";
      document.body.dataset.ready = "1";
      return;
    }
    try {
      const response = await fetch("/v1/targets?state=review&limit=100", {
        headers: { Authorization: "Bearer " + token }, cache: "no-store" });
      if (response.status === 401 || response.status === 403) {
        sessionStorage.removeItem("concerted-token");
        login.hidden = false;
        status.textContent = "the token was refused";
        document.body.dataset.ready = "1";
        return;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      const body = await response.json();
      const cards = body.targets.map(card);
      list.replaceChildren.apply(list, cards.length ? cards :
        [el("p", "", "No target is under review now.")]);
      if (!cards.length) list.firstChild.id = "empty";
      status.textContent = body.targets.length + " under review; updated " +
        new Date().toLocaleTimeString();
    } catch (err) {
      status.textContent = "could not refresh (" + err.message + "); retrying";
    }
    document.body.dataset.ready = "1";
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  }

  refresh();
  setInterval(refresh, every);
})();
</script>
</body>
</html>
"""
