/* concerted report: draws the charts (uPlot) and network views (Cytoscape.js) from the
   JSON in #report-data. Every text from the data is set with textContent, never as HTML. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var PALETTE = ["#0b5cad", "#d9631e", "#2a9d5b", "#8a4fbf", "#c7304a", "#1b9aaa", "#8c6d1f",
    "#5b6472", "#e377c2", "#17becf"];
  var GREY = "#b7bec8";
  var MARK = { mobilisation: "#b23a1c", boast: "#7a3ea8" };
  // Whole-number ticks for counts of reports.
  var COUNT_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000,
    100000];
  var SHAPES = ["ellipse", "diamond", "triangle", "rectangle", "hexagon"];
  var utc = function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); };
  // Tick labels on a 24-hour clock: tick step, label, then what changes add below it.
  var TIME_TICKS = [
    [3600 * 24 * 365, "{YYYY}", null, null, null, null, null, null, 1],
    [3600 * 24 * 28, "{MMM}", "\n{YYYY}", null, null, null, null, null, 1],
    [3600 * 24, "{D} {MMM}", "\n{YYYY}", null, null, null, null, null, 1],
    [3600, "{HH}:{mm}", "\n{D} {MMM} {YYYY}", null, "\n{D} {MMM}", null, null, null, 1],
    [60, "{HH}:{mm}", "\n{D} {MMM} {YYYY}", null, "\n{D} {MMM}", null, null, null, 1],
    [1, ":{ss}", "\n{D} {MMM} {YYYY} {HH}:{mm}", null, "\n{D} {MMM} {HH}:{mm}", null,
      "\n{HH}:{mm}", null, 1]
  ];

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function widthOf(node) {
    return Math.max(240, Math.floor(node.getBoundingClientRect().width));
  }

  /* ---------------------------------------------------------------- charts */

  function markerPlugin(markers) {
    return {
      hooks: {
        draw: [function (u) {
          var ctx = u.ctx;
          ctx.save();
          markers.forEach(function (m) {
            var x = Math.round(u.valToPos(m.t, "x", true));
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
            ctx.strokeStyle = MARK[m.kind] || "#333";
            ctx.fillStyle = ctx.strokeStyle;
            ctx.lineWidth = 2 * devicePixelRatio;
            ctx.setLineDash(m.kind === "boast" ? [4 * devicePixelRatio, 3 * devicePixelRatio] : []);
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
            var s = 5 * devicePixelRatio;
            ctx.beginPath();
            ctx.moveTo(x - s, u.bbox.top);
            ctx.lineTo(x + s, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + s * 1.6);
            ctx.fill();
          });
          ctx.restore();
        }]
      }
    };
  }

  function chart(node, spec) {
    var bars = spec.type === "bars" || spec.type === "reports";
    var small = node.classList.contains("small");
    var height = small ? 170 : 240;
    var series = [{}];
    spec.series.forEach(function (s, i) {
      var colour = spec.type === "reports" && i > 0 ? GREY : PALETTE[i % PALETTE.length];
      var opts = { label: s.label, stroke: colour, width: bars ? 0 : 1.5, points: { show: false } };
      if (bars) {
        opts.fill = colour;
        opts.paths = uPlot.paths.bars({ size: [0.9, 40], align: 0 });
      }
      series.push(opts);
    });
    var opts = {
      width: widthOf(node),
      height: height,
      series: series,
      legend: { show: spec.series.length > 1 || !small, live: spec.type === "lines" },
      cursor: { drag: { x: true, y: false } },
      scales: { x: { time: spec.type !== "bars" } },
      axes: [
        spec.type === "bars"
          ? { label: spec.xlabel || null, size: 40 }
          : { values: TIME_TICKS, size: 44 },
        bars
          ? { label: spec.y, size: 60, incrs: COUNT_STEPS }
          : { label: spec.y, size: 60 }
      ],
      plugins: spec.markers && spec.markers.length ? [markerPlugin(spec.markers)] : []
    };
    if (spec.type !== "bars") opts.tzDate = utc;
    if (bars) {
      opts.bands = [];
      // Stacked bars: each series is drawn on top of the ones after it.
      var stacked = spec.series.map(function (s) { return s.values.slice(); });
      for (var i = stacked.length - 2; i >= 0; i--) {
        for (var j = 0; j < stacked[i].length; j++) stacked[i][j] += stacked[i + 1][j];
      }
      var columns = [spec.x].concat(stacked);
    } else {
      columns = [spec.x].concat(spec.series.map(function (s) { return s.values; }));
    }
    if (spec.type === "reports" || spec.type === "bars") {
      opts.scales.y = { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } };
      if (spec.type === "reports" && spec.markers && spec.markers.length) {
        var lo = spec.x[0], hi = spec.x[spec.x.length - 1];
        spec.markers.forEach(function (m) { lo = Math.min(lo, m.t); hi = Math.max(hi, m.t); });
        var step = spec.x.length > 1 ? spec.x[1] - spec.x[0] : 60;
        opts.scales.x.range = function () { return [lo - step, hi + step]; };
      }
    }
    if (spec.type === "bars") opts.scales.x.range = function () { return [0, 1]; };
    var plot = new uPlot(opts, columns, node);
    node.dataset.rendered = "1";
    return plot;
  }

  var plots = [];
  document.querySelectorAll("[data-chart]").forEach(function (node) {
    var spec = data.charts[node.dataset.chart];
    if (!spec) return;
    plots.push({ node: node, plot: chart(node, spec) });
  });

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      plots.forEach(function (p) {
        p.plot.setSize({ width: widthOf(p.node), height: p.plot.height });
      });
    }, 150);
  });

  /* ---------------------------------------------------------------- network views */

  function list(parent, title, items, line) {
    if (!items || !items.length) return;
    parent.appendChild(el("h5", title));
    var ul = el("ul");
    items.forEach(function (item) { ul.appendChild(el("li", line(item))); });
    parent.appendChild(ul);
  }

  function showEvidence(panel, n) {
    panel.textContent = "";
    panel.appendChild(el("b", n.label));
    var who = [n.platform, n.kind, n.role].filter(Boolean).join(" · ");
    panel.appendChild(el("div", who, "muted"));
    panel.appendChild(el("div", "id " + n.account_id, "id"));
    if (n.name && n.handle) panel.appendChild(el("div", n.name, "muted"));
    panel.appendChild(el("div", n.degree + " ties, strength " + n.strength, "muted"));
    list(panel, "Strongest ties", n.ties, function (t) {
      return t.with + ": " + t.layers + (t.q ? " (q " + t.q + ")" : "");
    });
    list(panel, "Signals", n.signals, function (s) {
      return s.detector + (s.layer ? " " + s.layer : "") + " " + s.score +
        (s.detail ? ": " + s.detail : "");
    });
    list(panel, "First matched actions", n.events, function (e) {
      return (e.when || "") + " " + e.layer + " " + e.object + " with " + e.with +
        (e.gap !== null ? " (" + e.gap + " s apart)" : "") + (e.source ? ", from " + e.source : "");
    });
    if (!(n.ties && n.ties.length) && !(n.signals && n.signals.length)) {
      panel.appendChild(el("p", "No evidence of its own in this result.", "muted"));
    }
  }

  function legend(node, g, colours) {
    if (!node) return;
    g.groups.forEach(function (name) {
      var swatch = el("i");
      swatch.style.background = colours[name];
      node.appendChild(swatch);
      node.appendChild(document.createTextNode(name));
    });
  }

  function network(node, g) {
    var colours = {};
    g.groups.forEach(function (name, i) { colours[name] = PALETTE[i % PALETTE.length]; });
    var most = 1;
    g.nodes.forEach(function (n) { most = Math.max(most, n.strength || 0); });
    var heaviest = 1;
    g.edges.forEach(function (e) { heaviest = Math.max(heaviest, e.w || 0); });
    var byId = {};
    var elements = [];
    g.nodes.forEach(function (n) {
      byId[n.id] = n;
      elements.push({
        group: "nodes",
        data: {
          id: n.id,
          colour: colours[n.group],
          size: 8 + 22 * Math.sqrt((n.strength || 0) / most),
          shape: SHAPES[n.shape % SHAPES.length],
          border: n.role === "organiser" ? 3 : 0.5
        },
        position: { x: n.x, y: n.y }
      });
    });
    g.edges.forEach(function (e, i) {
      elements.push({
        group: "edges",
        data: { id: "e" + i, source: e.s, target: e.t, width: 0.4 + 3 * (e.w || 0) / heaviest }
      });
    });
    var cy = cytoscape({
      container: node,
      elements: elements,
      layout: { name: "preset", fit: true, padding: 24 },
      minZoom: 0.05,
      maxZoom: 10,
      boxSelectionEnabled: false,
      textureOnViewport: true,
      hideEdgesOnViewport: g.edges.length > 1500,
      style: [
        {
          selector: "node",
          style: {
            "background-color": "data(colour)",
            width: "data(size)",
            height: "data(size)",
            shape: "data(shape)",
            "border-width": "data(border)",
            "border-color": "#1d2430"
          }
        },
        {
          selector: "edge",
          style: {
            width: "data(width)",
            "line-color": "#9aa3ae",
            opacity: 0.35,
            "curve-style": "haystack"
          }
        },
        {
          selector: "node:selected",
          style: { "border-width": 4, "border-color": "#f0a500", "z-index": 10 }
        },
        { selector: ".near", style: { opacity: 0.9, "line-color": "#f0a500", "z-index": 9 } },
        { selector: ".faded", style: { opacity: 0.12 } }
      ]
    });
    var tip = node.querySelector(".tip");
    var panel = document.querySelector('[data-evidence="' + node.dataset.graph + '"]');
    // Touch screens have no hover: a tap names the account too (showTip in "tap").
    function showTip(evt) {
      var n = byId[evt.target.id()];
      tip.textContent = "";
      tip.appendChild(el("b", n.label));
      tip.appendChild(el("div", [n.platform, n.kind, n.role].join(" · ")));
      tip.appendChild(el("div", n.degree + " ties"));
      var p = evt.target.renderedPosition();
      tip.style.left = Math.max(0, Math.min(p.x + 12, node.clientWidth - 200)) + "px";
      tip.style.top = Math.max(p.y - 10, 0) + "px";
      tip.style.display = "block";
    }
    cy.on("mouseover", "node", showTip);
    cy.on("mouseout", "node", function () { tip.style.display = "none"; });
    cy.on("tap", "node", function (evt) {
      var target = evt.target;
      showTip(evt);
      cy.elements().removeClass("near faded");
      var hood = target.closedNeighborhood();
      cy.elements().not(hood).addClass("faded");
      target.connectedEdges().addClass("near");
      if (panel) showEvidence(panel, byId[target.id()]);
    });
    cy.on("tap", function (evt) {
      if (evt.target === cy) {
        cy.elements().removeClass("near faded");
        tip.style.display = "none";
      }
    });
    node.querySelectorAll("[data-zoom]").forEach(function (button) {
      button.addEventListener("click", function () {
        var how = button.dataset.zoom;
        if (how === "fit") { cy.fit(undefined, 24); return; }
        var centre = { x: node.clientWidth / 2, y: node.clientHeight / 2 };
        cy.zoom({ level: cy.zoom() * (how === "in" ? 1.4 : 1 / 1.4), renderedPosition: centre });
      });
    });
    legend(document.querySelector('[data-legend="' + node.dataset.graph + '"]'), g, colours);
    node.dataset.rendered = "1";
    node.dataset.nodes = String(cy.nodes().length);
    node.dataset.edges = String(cy.edges().length);
    node._cy = cy;
    return cy;
  }

  /* The adjacency matrix of a dense network: every tie, on a canvas. */
  function matrix(canvas, g) {
    var m = g.matrix, n = m.order.length;
    var nodes = m.order.map(function (i) { return g.nodes[i]; });
    var heaviest = 0, byCell = {};
    m.cells.forEach(function (c) {
      heaviest = Math.max(heaviest, c[2] || 0);
      byCell[c[0] * n + c[1]] = c[2];
    });
    var tip = canvas.parentNode.querySelector(".tip");
    var panel = document.querySelector('[data-evidence="' + canvas.dataset.matrix + '"]');
    function draw() {
      var side = canvas.clientWidth || 400, ratio = window.devicePixelRatio || 1;
      canvas.width = Math.round(side * ratio);
      canvas.height = Math.round(side * ratio);
      var ctx = canvas.getContext("2d"), cell = canvas.width / n;
      ctx.fillStyle = "#fcfdfe";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      m.cells.forEach(function (c) {
        var shade = Math.sqrt((c[2] || 0) / (heaviest || 1));
        ctx.fillStyle = "rgba(31, 78, 140, " + (0.15 + 0.85 * shade).toFixed(3) + ")";
        var size = Math.max(cell, 1);
        ctx.fillRect(c[1] * cell, c[0] * cell, size, size);
        ctx.fillRect(c[0] * cell, c[1] * cell, size, size);
      });
      ctx.strokeStyle = "rgba(240, 165, 0, 0.9)";
      ctx.lineWidth = Math.max(ratio, 1);
      m.bounds.forEach(function (b) {
        ctx.beginPath();
        ctx.moveTo(b * cell, 0); ctx.lineTo(b * cell, canvas.height);
        ctx.moveTo(0, b * cell); ctx.lineTo(canvas.width, b * cell);
        ctx.stroke();
      });
    }
    function at(evt) {
      var box = canvas.getBoundingClientRect();
      var col = Math.floor((evt.clientX - box.left) / box.width * n);
      var row = Math.floor((evt.clientY - box.top) / box.height * n);
      if (row < 0 || col < 0 || row >= n || col >= n) return null;
      var low = Math.min(row, col), high = Math.max(row, col);
      return { row: row, col: col, w: byCell[low * n + high], x: evt.clientX - box.left,
               y: evt.clientY - box.top };
    }
    canvas.addEventListener("mousemove", function (evt) {
      var hit = at(evt);
      if (!hit || hit.row === hit.col) { tip.style.display = "none"; return; }
      tip.textContent = "";
      tip.appendChild(el("b", nodes[hit.row].label + " · " + nodes[hit.col].label));
      tip.appendChild(el("div", hit.w === undefined ? "no tie" : "tie weight " + hit.w));
      tip.style.left = Math.min(hit.x + 12, canvas.clientWidth - 200) + "px";
      tip.style.top = Math.max(hit.y - 10, 0) + "px";
      tip.style.display = "block";
    });
    canvas.addEventListener("mouseleave", function () { tip.style.display = "none"; });
    canvas.addEventListener("click", function (evt) {
      var hit = at(evt);
      if (hit && panel) showEvidence(panel, nodes[hit.row]);
    });
    draw();
    window.addEventListener("resize", draw);
    window.addEventListener("beforeprint", draw);
    canvas.dataset.rendered = "1";
    canvas.dataset.cells = String(m.cells.length);
  }

  document.querySelectorAll("[data-matrix]").forEach(function (canvas) {
    var g = data.graphs[canvas.dataset.matrix];
    if (g && g.matrix) matrix(canvas, g);
  });

  var graphs = [];
  document.querySelectorAll("[data-graph]").forEach(function (node) {
    var g = data.graphs[node.dataset.graph];
    if (g) graphs.push(network(node, g));
  });
  window.addEventListener("beforeprint", function () {
    graphs.forEach(function (cy) { cy.resize(); cy.fit(undefined, 24); });
  });
  window.addEventListener("afterprint", function () {
    graphs.forEach(function (cy) { cy.resize(); cy.fit(undefined, 24); });
  });

  /* ---------------------------------------------------------------- sortable tables */

  function cellValue(row, i) {
    var text = row.cells[i] ? row.cells[i].textContent.trim() : "";
    var number = Number(text.replace(/,/g, ""));
    return text !== "" && !isNaN(number) ? number : text.toLowerCase();
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("th[data-sort]").forEach(function (th) {
      th.addEventListener("click", function () {
        var i = th.cellIndex;
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var down = th.dataset.dir !== "desc";
        th.dataset.dir = down ? "desc" : "asc";
        rows.sort(function (a, b) {
          var x = cellValue(a, i), y = cellValue(b, i);
          if (x === y) return 0;
          var less = typeof x === typeof y ? x < y : typeof x === "number";
          return (less ? -1 : 1) * (down ? -1 : 1);
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  document.body.dataset.ready = "1";
})();
