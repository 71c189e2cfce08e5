"""``concerted analyze``: from a case to coordinated networks, with the evidence.

The stages, each timed in ``run.json``:

1. **detect**: co-action over the configured kinds (:mod:`concerted.detectors.coaction`);
2. **null**: the same detector on randomised copies of the actions
   (:mod:`concerted.significance`);
3. **test**: each account pair gets an expected count, a p-value and a q-value; only
   significant pairs go on;
4. **network**: the multiplex network of significant pairs (:mod:`concerted.graph`),
   pruned to its ``min_degree``-core;
5. **clusters**: Leiden or connected components (:mod:`concerted.cluster`);
6. **campaigns**: clusters with the pages, groups and admins they run
   (:mod:`concerted.campaigns`).

What it writes to the output directory:

==========================  ==========================================================
``edges.parquet``           every co-action pair and layer, tested (evidence contract)
``events.parquet``          the matched actions behind every significant edge
``clusters.parquet``        each account of the significant network: its cluster
                            (-1 outside the core), degree and strength
``campaigns.parquet``       result contract: one row per campaign
``members.parquet``         result contract: the accounts of each campaign
``targets.parquet``         result contract (empty: networks have no targets)
``report_scores.parquet``   result contract (empty: reports are scored elsewhere)
``network.graphml``         the significant network, for Gephi, yEd, networkx
``network.gexf``            the same, GEXF 1.3 (node attributes cluster, campaign,
                            platform, kind)
``run.json``                version, settings, inputs with their SHA-256, timings,
                            counts and the detectors' and the null model's notes
==========================  ==========================================================
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from concerted import (
    __version__,
    brigades,
    campaigns,
    cluster,
    compat,
    engines,
    graph,
    heap,
    paths,
)
from concerted.clock import Clock
from concerted.config import DEFAULT_KINDS, Config
from concerted.detectors.base import Detector
from concerted.detectors.coaction import CoAction, CoActionLayers
from concerted.detectors.near_text import NearText
from concerted.errors import ConfigError
from concerted.outputs import RESULT_FORMAT, exports, page
from concerted.schema import (
    EVIDENCE_CONTRACTS,
    ORDERED_ROWS,
    RESULT_CONTRACTS,
    arrow_schema,
    sql_literal,
)
from concerted.significance import Significance
from concerted.store import Store

__all__ = ["OUTPUT_FILES", "analyze", "coaction"]

log = logging.getLogger(__name__)

OUTPUT_FILES: tuple[str, ...] = (
    "edges.parquet",
    "events.parquet",
    "clusters.parquet",
    "campaigns.parquet",
    "members.parquet",
    "targets.parquet",
    "report_scores.parquet",
    "protected.parquet",
    "signals.parquet",
    *exports.FILES,
    "network.graphml",
    "network.gexf",
    "run.json",
    *page.FILES,
)

_ISO = "%Y-%m-%dT%H:%M:%SZ"


#: Zstandard at level 1, not DuckDB's default 3: the demo's 3.4 million sorted edges
#: take about a tenth less CPU to write, for a file 6% larger (BENCHMARKS.md, "Demo").
_PARQUET = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1"


def _ordered(con: duckdb.DuckDBPyConnection, table: str, order: str) -> str:
    """SELECT every row of ``table``, in ``order`` up to :data:`ORDERED_ROWS` rows."""
    if _scalar(con, f"SELECT count(*) FROM {table}") > ORDERED_ROWS:
        return f"SELECT * FROM {table}"
    return f"SELECT * FROM {table} ORDER BY {order}"


def _write(con: Any, query: str, path: Path) -> None:
    con.execute(f"COPY ({query}) TO {sql_literal(str(path))} ({_PARQUET})")


@dataclass
class _Events:
    """The run's events (the matched actions behind its edges), written to Parquet as
    each stage finds them, in ``directory``, never held in the case's database: at 10^7
    actions they are 66.5 million rows, about 9.6 GB of DuckDB's temporary tables, most
    of its spill (BENCHMARKS.md, "10^7 again, with each stage's spill").
    :meth:`write` makes ``events.parquet`` of the parts, in the order they came."""

    directory: Path
    parts: list[Path] = dataclasses.field(default_factory=list)

    def add(self, con: duckdb.DuckDBPyConnection, query: str) -> None:
        """Write the events ``query`` selects, as the evidence contract types them."""
        columns = ", ".join(
            f"CAST({c.name} AS {c.type}) AS {c.name}" for c in EVIDENCE_CONTRACTS["events"].columns
        )
        path = self.directory / f"part-{len(self.parts)}.parquet"
        _write(con, f"SELECT {columns} FROM ({query})", path)
        self.parts.append(path)

    def write(self, con: duckdb.DuckDBPyConnection, path: Path) -> None:
        """``events.parquet`` at ``path``: the one part as it is, or the parts in turn."""
        if not self.parts:
            _write(con, _empty("events"), path)
        elif len(self.parts) == 1:
            self.parts[0].replace(path)
        else:
            files = ", ".join(sql_literal(str(p)) for p in self.parts)
            _write(con, f"SELECT * FROM read_parquet([{files}])", path)
            for part in self.parts:
                part.unlink()
        self.parts = []


@dataclass
class _Run:
    """What the stages of one analysis pass to one another: the case's connection, the
    settings, the engine for the heavy stages, the clock, the notes for ``run.json``,
    the events found so far, the actions relation the detectors read (``actions``, or
    with near-duplicate texts ``_actions``) and the temporary tables to drop at the
    end."""

    con: duckdb.DuckDBPyConnection
    config: Config
    heavy: engines.Engine
    clock: Clock
    events: _Events
    notes: dict[str, Any] = dataclasses.field(default_factory=dict)
    actions: str = "actions"
    temporary: list[str] = dataclasses.field(default_factory=list)


def analyze(
    store: Store,
    out: str | Path,
    config: Config | None = None,
    *,
    overwrite: bool = False,
    hide_text: bool = False,
    progress: Callable[[str], None] = lambda _: None,
    engine: str = engines.DEFAULT,
    title: str | None = None,
) -> dict[str, Any]:
    """Run the analysis on the case in ``store``: coordinated networks always, brigades
    when the case holds reports; write the outputs to ``out``.

    ``engine`` runs the co-action pairing and the stratified test's sums
    (:mod:`concerted.engines`); the other stages run on the case's DuckDB connection.
    Returns the run record that ``run.json`` holds. ``report.html`` is written last
    (message texts left out with ``hide_text``; ``title`` replaces the page's title).
    """
    # Large arrays come and go in every stage: their pages are kept for the next
    # one instead of being zeroed afresh (heap.py).
    with heap.kept():
        config = config or Config()
        heavy = engines.get(engine)(store.con)
        out = paths.output_directory(out, OUTPUT_FILES, overwrite)
        staging = Path(tempfile.mkdtemp(prefix=".concerted-events-", dir=out))
        try:
            return _analyze(store, out, staging, config, heavy, hide_text, progress, title)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _analyze(
    store: Store,
    out: Path,
    staging: Path,
    config: Config,
    heavy: engines.Engine,
    hide_text: bool,
    progress: Callable[[str], None],
    title: str | None,
) -> dict[str, Any]:
    """:func:`analyze` once its result directory is made, the events staged in
    ``staging``."""
    run = _Run(
        con=store.con, config=config, heavy=heavy, clock=Clock(progress), events=_Events(staging)
    )
    started = datetime.now(UTC)
    run.con.execute(f"CREATE OR REPLACE TEMP TABLE _signals AS {_empty('signals')}")

    pairing = [config.coaction, *_near_text(run)]
    co_notes, significance_notes = _pairs(run, pairing)
    kinds = _paired_kinds(config, pairing)
    for name in config.layers.tested:
        with run.clock.stage(name):
            run.notes[name] = _tested_layer(run, _with_kinds(config, name, kinds), run.actions)
    network, in_core, core_network = _network(run)
    labels, communities = _clusters(run, core_network, in_core)
    found, labels = _campaigns(run, network, core_network, labels, in_core)
    brigade = _brigades(run, progress)
    with run.clock.stage("write"):
        results = _results(found, brigade)
        _write_outputs(run, out, results, network, labels, communities)
    counts = _counts(run, significance_notes, network, in_core, found, brigade)
    for table in (*run.temporary, "_edges", "_signals"):
        run.con.execute(f"DROP TABLE IF EXISTS {table}")
    run.con.execute("DROP VIEW IF EXISTS _actions")
    record = {
        "concerted": __version__,
        "result_format": RESULT_FORMAT,
        "command": "analyze",
        "started": started.strftime(_ISO),
        "case": store.path,
        "pseudonymised": store.meta("pseudonymisation_key") is not None,
        "inputs": _inputs(store),
        "settings": config.as_dict(),
        "seconds": run.clock.seconds,
        "counts": counts,
        "notes": {"co_action": co_notes, "significance": significance_notes, **run.notes},
        "outputs": list(OUTPUT_FILES),
    }
    (out / "run.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    # The page's own database gets the case's memory limit, not half the machine.
    limit = _scalar_text(run.con, "SELECT current_setting('memory_limit')")
    page.write(out, hide_text=hide_text, title=title, memory_limit=limit)
    return record


def _near_text(run: _Run) -> list[CoAction]:
    """Near-duplicate texts as one more co-action layer (``[layers] near_text``): their
    actions join the actions the detectors read (``_actions``), their signals
    ``_signals``; returns the layer's pairing (none when off)."""
    if not run.config.layers.near_text:
        return []
    with run.clock.stage("near_text"):
        near = run.config.make("near_text")
        if not isinstance(near, NearText):
            raise ConfigError("[detector.near_text] must be the near_text detector")
        layer = near.layer(run.con, "actions")
        run.con.execute(f"INSERT INTO _signals {layer.signals.sql_query()}")
        run.con.execute(
            "CREATE OR REPLACE TEMP VIEW _actions AS "
            f"SELECT * FROM actions UNION ALL SELECT * FROM {layer.actions}"
        )
        run.temporary += layer.temporary
        run.actions = "_actions"
        run.notes["near_text"] = layer.notes
        coaction = run.config.coaction
        return [
            CoAction(
                window=layer.window,
                kinds=("near_text",),
                min_weight=coaction.min_weight,
                max_object_pairs=coaction.max_object_pairs,
            )
        ]


def _paired_kinds(config: Config, pairing: list[CoAction]) -> tuple[str, ...] | None:
    """The kinds the co-action pass pairs on, near-duplicate texts included."""
    if config.coaction.kinds is None:
        return None
    return (*config.coaction.kinds, *(("near_text",) if len(pairing) > 1 else ()))


def _with_kinds(config: Config, name: str, kinds: tuple[str, ...] | None) -> Detector:
    """Tested detector ``name``; where its settings leave its kinds open, those of the
    co-action pass."""
    made = config.make(name)
    if getattr(made, "kinds", ()) is None and kinds is not None:
        made = config.make(name, kinds=kinds)
    return made


def _pairs(run: _Run, pairing: list[CoAction]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Co-action on every layer, tested: ``_edges`` (every pair, tested) and
    the run's events (those of significant pairs). Returns the pairing's notes and the
    test's."""
    con, clock = run.con, run.clock
    with clock.stage("detect"):
        found = run.heavy.pair(run.actions, pairing)
    kinds = _paired_kinds(run.config, pairing)
    significance = Significance.of(run.config.significance)
    null_counts = None
    if not significance.analytic:
        # The copies' test reads the edges twice: they are copied into a table first.
        # The stratified test reads them once, where it joins their tails, so the
        # pairing's edges are not copied (600 MB of DuckDB's memory at 10^7 actions).
        con.execute(f"CREATE OR REPLACE TEMP TABLE _edges_found AS SELECT * FROM {found.edges}")
        with clock.stage("null"):
            # Randomised copies run the detector again: DuckDB only, for now.
            layered = CoActionLayers(tuple(pairing))
            null_counts = significance.null_weights(con, run.actions, layered, kinds)
    with clock.stage("test"):
        if null_counts is None:
            tested = significance.test_stratified(
                con, found.edges, found, run.actions, kinds, engine=run.heavy
            )
        else:
            tested = significance.test(con, "_edges_found", null_counts)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _edges AS {tested.edges.sql_query()}")
        tested.release(con)
        con.execute("DROP TABLE IF EXISTS _edges_found")
        significant = "(SELECT * FROM _edges WHERE significant)"
        run.events.add(con, found.events_among(significant))
        run.heavy.release(*found.temporary)
    return found.notes, tested.notes


def _network(run: _Run) -> tuple[graph.Network, Any, graph.Network]:
    """The multiplex network of significant ties, which of its nodes lie in the
    ``min_degree``-core, and the core's own network."""
    con = run.con
    with run.clock.stage("network"):
        significant = con.sql(
            "SELECT platform_1, account_1, platform_2, account_2, layer, weight "
            "FROM _edges WHERE significant"
        ).to_arrow_table()
        accounts = con.sql(
            """SELECT account_id, platform, kind, name, handle FROM accounts
               SEMI JOIN (SELECT platform_1 AS platform, account_1 AS account_id
                          FROM _edges WHERE significant
                          UNION SELECT platform_2, account_2 FROM _edges WHERE significant) s
               USING (platform, account_id)"""
        ).to_arrow_table()
        network = graph.build(significant, accounts, con=con)
        in_core = cluster.core(network, run.config.clusters.min_degree)
        core_edges = network.edges.filter(
            pa.array(
                in_core[network.edges.column("source").to_numpy()]
                & in_core[network.edges.column("target").to_numpy()]
            )
        )
    return network, in_core, graph.Network(nodes=network.nodes, edges=core_edges)


def _clusters(run: _Run, core: graph.Network, in_core: Any) -> tuple[Any, Any]:
    """The cluster of each node (-1 outside the core) by the configured method, and its
    Leiden community (joined where the ties between do not tell them apart)."""
    s = run.config.clusters
    with run.clock.stage("clusters"):
        leiden = cluster.leiden(core, resolution=s.resolution, seed=s.seed, weighted=s.weighted)
        communities = _over_core(cluster.merge_dense(core, leiden, ratio=s.merge_density), in_core)
        components = _over_core(cluster.components(core), in_core)
    return (communities if s.method == "leiden" else components), communities


def _campaigns(
    run: _Run, network: graph.Network, core: graph.Network, labels: Any, in_core: Any
) -> tuple[campaigns.Campaigns, Any]:
    """The campaigns of the clusters, joined where the same people run them, with what
    corroborates them and their summaries; and the clusters' labels, joined."""
    con, config = run.con, run.config

    def build(labels: Any) -> campaigns.Campaigns:
        spans = _spans(con, cluster.members(network, labels).filter(pa.array(labels >= 0)))
        return campaigns.build(
            con,
            core,
            labels,
            in_core,
            min_accounts=config.clusters.min_accounts,
            settings=config.campaigns,
            spans=spans,
            names={name: name for name in config.layers.tested},
        )

    with run.clock.stage("campaigns"):
        found = build(labels)
        # Clusters run by the same people (an admin of their pages or groups) are one
        # operation.
        joined = campaigns.join_shared_organisers(found, labels)
        if not np.array_equal(joined, labels):
            labels = joined
            found = build(labels)
    if config.layers.corroborating:
        with run.clock.stage("corroborate"):
            found, run.notes["corroboration"] = _corroborate(run, found)
    with run.clock.stage("summaries"):
        found = found.with_summaries(_summaries(con, found, run.actions))
    return found, labels


def _brigades(run: _Run, progress: Callable[[str], None]) -> brigades.Brigades | None:
    """The brigade stage, where the case holds reports; its evidence joins the run's."""
    con = run.con
    if not _scalar(con, "SELECT count(*) FROM reports"):
        return None
    brigade = brigades.find(
        con, run.config.brigades, run.config.significance, progress=progress, engine=run.heavy
    )
    run.clock.seconds.update(
        {f"brigades.{k}": v for k, v in brigade.notes.get("seconds", {}).items()}
    )
    run.notes["brigades"] = brigade.notes
    for part, rows in (
        ("edges", brigade.edges),
        ("events", brigade.events),
        ("signals", brigade.signals),
    ):
        con.register("_brigade_part", rows)
        try:
            chosen = f"SELECT {', '.join(EVIDENCE_CONTRACTS[part].names)} FROM _brigade_part"
            if part == "events":
                run.events.add(con, chosen)
            else:
                con.execute(f"INSERT INTO _{part} {chosen}")
        finally:
            con.unregister("_brigade_part")
    return brigade


def _write_outputs(
    run: _Run,
    out: Path,
    results: dict[str, pa.Table],
    network: graph.Network,
    labels: Any,
    communities: Any,
) -> None:
    """Every output file but ``run.json`` and the page."""
    con = run.con
    _write_results(out, results, network, labels, communities)
    # The matched actions, millions of rows on a large case, go out in no particular
    # order: sorting them cost more than the rest of the writing (docs/analysis.md);
    # so do the pairs and signals beyond ORDERED_ROWS.
    order = "platform_1, account_1, platform_2, account_2, detector, layer"
    _write(con, _ordered(con, "_edges", order), out / "edges.parquet")
    run.events.write(con, out / "events.parquet")
    order = "detector, layer, entity, platform, id, related_id"
    _write(con, _ordered(con, "_signals", order), out / "signals.parquet")
    exports.write(
        con,
        out,
        members=results["members"],
        targets=results["targets"],
        nodes=network.nodes,
        actions=run.actions,
        signals="_signals",
    )
    attributes = pa.table(
        {
            "node": network.nodes.column("node"),
            "cluster": pa.array(labels),
            "community": pa.array(communities),
            "campaign": pa.array(_campaign_names(labels), type=pa.string()),
        }
    )
    graph.write_graphml(network, out / "network.graphml", attributes)
    graph.write_gexf(network, out / "network.gexf", attributes)


def _counts(
    run: _Run,
    significance_notes: dict[str, Any],
    network: graph.Network,
    in_core: Any,
    found: campaigns.Campaigns,
    brigade: brigades.Brigades | None,
) -> dict[str, int]:
    """The counts of a run, as the command line, ``run.json``, ``summary.json`` and the
    page give them."""
    con = run.con
    actions = _scalar(con, "SELECT count(*) FROM actions")
    flagged_reports = 0
    if brigade is not None:
        # Counted in Arrow: a Python list of every report's flag would grow with the case.
        flagged_reports = int(pc.sum(brigade.report_scores.column("flagged")).as_py() or 0)
    return {
        "actions": actions,
        "derived_actions": _scalar(con, f"SELECT count(*) FROM {run.actions}") - actions,
        "pairs": significance_notes["pairs_tested"],
        "significant_pairs": significance_notes["pairs_significant"],
        "network_accounts": network.num_nodes,
        "core_accounts": int(in_core.sum()),
        "campaigns": found.campaigns.num_rows,
        "flagged_campaigns": found.flagged,
        "campaign_accounts": found.members.num_rows,
        "reports": _scalar(con, "SELECT count(*) FROM reports"),
        "brigades": brigade.campaigns.num_rows if brigade else 0,
        "flagged_brigades": brigade.flagged if brigade else 0,
        "reports_flagged": flagged_reports,
        "protected_targets": brigade.protected.num_rows if brigade else 0,
        "signals": _scalar(con, "SELECT count(*) FROM _signals"),
    }


def coaction(
    store: Store,
    out: str | Path,
    *,
    window: float,
    kinds: tuple[str, ...] | None = None,
    compat_mode: str | None = None,
    min_weight: int = 1,
    min_participation: int = 2,
    edge_weight: float = 0.5,
    subgraph: int = 0,
    max_object_pairs: int | None = 2_000_000,
    overwrite: bool = False,
    engine: str = engines.DEFAULT,
) -> dict[str, int]:
    """The co-action detector alone (``concerted coaction``): rows written per file.

    ``compat_mode`` ``"qut"`` writes the coordination-network-toolkit's ``edges.parquet``
    (``user_1, user_2, weight``); ``"coortweet"`` writes CooRTweet's ``pairs.parquet``
    and ``edges.parquet``; ``None`` writes concerted's ``edges.parquet`` and
    ``events.parquet`` (evidence contract, untested), paired by ``engine``
    (:mod:`concerted.engines`; the compatibility modes run on DuckDB). Each writes
    ``run.json``.
    """
    heavy = engines.get(engine)(store.con)
    names = {
        "qut": ("edges.parquet",),
        "coortweet": ("pairs.parquet", "edges.parquet"),
        None: ("edges.parquet", "events.parquet"),
    }
    if compat_mode not in names:
        raise ConfigError(f"no compatibility mode {compat_mode!r}; use qut or coortweet")
    out = paths.output_directory(out, (*names[compat_mode], "run.json"), overwrite)
    con = store.con
    start = time.perf_counter()
    notes: dict[str, Any] = {}
    written: dict[str, int] = {}

    def write(relation: str, name: str, order: str | None = None) -> None:
        # Large outputs go out in no particular order: sorting millions of id pairs
        # costs more than the pairing.
        ordered = f" ORDER BY {order}" if order else ""
        _write(con, f"SELECT * FROM {relation}{ordered}", out / name)
        written[name] = pq.read_metadata(out / name).num_rows

    used: tuple[str, ...] | None
    if compat_mode == "qut":
        used = kinds or ("repost",)
        edges = compat.qut_edges(con, "actions", window=window, kinds=used, min_weight=min_weight)
        write(f"({edges.sql_query()})", "edges.parquet")
    elif compat_mode == "coortweet":
        used = kinds
        pairs = compat.coortweet_pairs(
            con, "actions", window=window, min_participation=min_participation, kinds=kinds
        )
        network = compat.coortweet_network(con, pairs, edge_weight=edge_weight, subgraph=subgraph)
        write(f"({pairs.sql_query()})", "pairs.parquet", "object_id, content_id, content_id_y")
        write(f"({network.sql_query()})", "edges.parquet", '"from", "to"')
    else:
        used = kinds or DEFAULT_KINDS
        detector = CoAction(
            window=window, kinds=used, min_weight=min_weight, max_object_pairs=max_object_pairs
        )
        found = heavy.pair("actions", [detector])
        notes = found.notes
        write(found.edges, "edges.parquet", "platform_1, account_1, platform_2, account_2, layer")
        write(
            found.events,
            "events.parquet",
            "platform_1, account_1, platform_2, account_2, layer, ts_1, ts_2, object_id",
        )
        heavy.release(*found.temporary)
    run = {
        "concerted": __version__,
        "command": "coaction",
        "case": store.path,
        "inputs": _inputs(store),
        "settings": {
            "window": window,
            "kinds": list(used) if used else "all",
            "compat": compat_mode,
            "min_weight": min_weight,
            "min_participation": min_participation,
            "edge_weight": edge_weight,
            "subgraph": subgraph,
            "max_object_pairs": None if compat_mode else max_object_pairs,
        },
        "seconds": round(time.perf_counter() - start, 3),
        "rows": written,
        "notes": notes,
    }
    (out / "run.json").write_text(json.dumps(run, indent=2, default=str) + "\n")
    return written


def _empty(part: str) -> str:
    columns = ", ".join(
        f"CAST(NULL AS {c.type}) AS {c.name}" for c in EVIDENCE_CONTRACTS[part].columns
    )
    return f"SELECT {columns} WHERE false"


def _tested_layer(run: _Run, detector: Detector, actions: str) -> dict[str, Any]:
    """Run a pair detector whose score the null model tests (synchrony, rhythm); its
    edges join ``_edges`` (significant ones make network layers), the events of the
    significant ones the run's events, its signals ``_signals``."""
    con, config = run.con, run.config
    statistic = "sum(weight)"
    kinds = getattr(detector, "kinds", None)
    found = detector.detect(con, actions)
    table = f"_tested_{detector.name}"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {found.edges.sql_query()}")
    significance = Significance.of(config.significance).monte_carlo()
    null = significance.null_statistics(con, actions, detector, kinds, statistic)
    tested = significance.test_statistic(con, table, null, statistic)
    con.execute(f"INSERT INTO _edges {tested.edges.sql_query()}")
    tested.release(con)
    significant = f"(SELECT * FROM _edges WHERE significant AND detector = '{detector.name}')"
    run.events.add(con, found.events_among(significant))
    con.execute(f"INSERT INTO _signals {found.signals.sql_query()}")
    found.release(con)
    con.execute(f"DROP TABLE {table}")
    return {**found.notes, "significance": tested.notes}


_TIES = """
WITH m AS (SELECT campaign_id, platform, account_id FROM _corroborated_members),
c AS (SELECT DISTINCT e.detector, e.platform_1, e.account_1, e.platform_2, e.account_2
      FROM _edges e JOIN (VALUES {cuts}) t(detector, least, lightest)
        ON t.detector = e.detector AND coalesce(e.score, 1.0) >= t.least
       AND e.weight >= t.lightest),
ties AS (
    SELECT m.campaign_id, c.platform_2 AS platform, c.account_2 AS account_id, c.detector
    FROM c JOIN m ON m.platform = c.platform_1 AND m.account_id = c.account_1
    UNION ALL
    SELECT m.campaign_id, c.platform_1, c.account_1, c.detector
    FROM c JOIN m ON m.platform = c.platform_2 AND m.account_id = c.account_2)
SELECT campaign_id, platform, account_id, count(*) AS ties,
       list(DISTINCT detector ORDER BY detector) AS signals
FROM ties GROUP BY ALL ORDER BY campaign_id, platform, account_id
"""


def _corroborate(
    run: _Run, found: campaigns.Campaigns
) -> tuple[campaigns.Campaigns, dict[str, Any]]:
    """Run the corroborating detectors; say which fired on each member, and attach an
    account outside every campaign to the flagged campaign it has most ties to, with
    at least ``layers.min_ties`` ties to its members."""
    con, config = run.con, run.config
    names = config.layers.corroborating
    notes: dict[str, Any] = {}
    for name in names:
        detected = config.make(name).detect(con, "actions")
        con.execute(f"INSERT INTO _edges {detected.edges.sql_query()}")
        run.events.add(con, detected.events.sql_query())
        con.execute(f"INSERT INTO _signals {detected.signals.sql_query()}")
        notes[name] = detected.notes
        detected.release(con)
    con.register("_corroborated_members", found.members)
    try:
        cuts = ", ".join(
            f"('{n}', {config.layers.min_score(n)!r}, {config.layers.min_weight(n)!r})"
            for n in names
        )
        ties = con.sql(_TIES.format(cuts=cuts)).fetchall()
    finally:
        con.unregister("_corroborated_members")
    members = {
        (r["campaign_id"], r["platform"], r["account_id"]): r for r in found.members.to_pylist()
    }
    anywhere = {(p, a) for _, p, a in members}
    flagged = {
        c
        for c, f in zip(
            found.campaigns.column("campaign_id").to_pylist(),
            found.campaigns.column("flagged").to_pylist(),
            strict=True,
        )
        if f
    }
    best: dict[tuple[str, str], tuple[int, str, list[str]]] = {}
    for campaign_id, platform, account_id, n, fired in ties:
        key = (campaign_id, platform, account_id)
        if key in members:
            row = members[key]
            row["signals"] = [*row["signals"], *(x for x in fired if x not in row["signals"])]
        elif (platform, account_id) not in anywhere and campaign_id in flagged:
            held = best.get((platform, account_id))
            if n >= config.layers.min_ties and (
                held is None or (-n, campaign_id) < (-held[0], held[1])
            ):
                best[(platform, account_id)] = (int(n), campaign_id, list(fired))
    for (platform, account_id), (n, campaign_id, fired) in best.items():
        members[(campaign_id, platform, account_id)] = {
            "campaign_id": campaign_id,
            "account_id": account_id,
            "platform": platform,
            "role": "member",
            "score": float(n),
            "signals": fired,
        }
    attached = {c: 0 for c in flagged}
    for _, campaign_id, _ in best.values():
        attached[campaign_id] += 1
    notes["attached"] = {c: n for c, n in sorted(attached.items()) if n}
    return found.with_members(
        sorted(members.values(), key=lambda r: (r["campaign_id"], r["platform"], r["account_id"]))
    ), notes


def _over_core(labels: np.ndarray[Any, Any], in_core: np.ndarray[Any, Any]) -> Any:
    """Labels numbered 0, 1, ... over the core only (largest first); -1 outside it."""
    out = np.full(labels.shape, -1, dtype=np.int64)
    if in_core.any():
        out[in_core] = cluster.renumber(labels[in_core])
    return out


def _summaries(con: Any, found: campaigns.Campaigns, actions: str) -> list[dict[str, Any]]:
    """Takedown-style counts of every campaign's accounts, venues and organisers
    included."""
    members = found.members
    if members.num_rows == 0:
        return []
    ids = members.column("campaign_id").to_pylist()
    table = pa.table(
        {
            "cluster": pa.array(ids, type=pa.string()),
            "platform": members.column("platform"),
            "account_id": members.column("account_id"),
        }
    )
    return cluster.summarise(con, table, actions_table=actions)


def _scalar(con: Any, query: str) -> int:
    row = con.execute(query).fetchone()
    return int(row[0]) if row else 0


def _scalar_text(con: Any, query: str) -> str | None:
    row = con.execute(query).fetchone()
    return str(row[0]) if row and row[0] is not None else None


def _campaign_names(labels: np.ndarray[Any, Any]) -> list[str | None]:
    return [f"network-{c + 1}" if c >= 0 else None for c in labels.tolist()]


def _spans(con: Any, members: pa.Table) -> dict[int, tuple[datetime, datetime]]:
    """Each cluster's first and last matched action, from its significant edges."""
    con.register("_span_members", members)
    try:
        rows = con.sql(
            """SELECT m1.cluster, min(e.first_ts), max(e.last_ts)
               FROM _edges e
               JOIN _span_members m1 ON m1.platform = e.platform_1
                AND m1.account_id = e.account_1
               JOIN _span_members m2 ON m2.platform = e.platform_2
                AND m2.account_id = e.account_2 AND m2.cluster = m1.cluster
               WHERE e.significant GROUP BY 1"""
        ).fetchall()
    finally:
        con.unregister("_span_members")
    return {int(c): (first, last) for c, first, last in rows}


def _results(found: campaigns.Campaigns, brigade: brigades.Brigades | None) -> dict[str, pa.Table]:
    """The result tables: the networks' and, when reports were analysed, the brigades'."""
    out: dict[str, pa.Table] = {
        name: arrow_schema(RESULT_CONTRACTS[name]).empty_table() for name in RESULT_CONTRACTS
    }
    out["campaigns"] = found.campaigns
    out["members"] = found.members
    out["protected"] = brigades.PROTECTED_SCHEMA.empty_table()
    if brigade is not None:
        for name in RESULT_CONTRACTS:
            schema = arrow_schema(RESULT_CONTRACTS[name])
            out[name] = pa.concat_tables(
                [out[name].cast(schema), getattr(brigade, name).cast(schema)]
            )
        out["protected"] = brigade.protected
    return out


def _write_results(
    out: Path,
    results: dict[str, pa.Table],
    network: graph.Network,
    labels: np.ndarray[Any, Any],
    communities: np.ndarray[Any, Any],
) -> None:
    for name, table in results.items():
        pq.write_table(table, out / f"{name}.parquet")
    n = network.num_nodes
    source = network.edges.column("source").to_numpy()
    target = network.edges.column("target").to_numpy()
    weight = network.edges.column("weight").to_numpy()
    degree = np.bincount(source, minlength=n) + np.bincount(target, minlength=n)
    strength = np.bincount(source, weights=weight, minlength=n) + np.bincount(
        target, weights=weight, minlength=n
    )
    table = pa.table(
        {
            "platform": network.nodes.column("platform"),
            "account_id": network.nodes.column("account_id"),
            "kind": network.nodes.column("kind"),
            "cluster": pa.array(labels, type=pa.int64()),
            "community": pa.array(communities, type=pa.int64()),
            "campaign_id": pa.array(_campaign_names(labels), type=pa.string()),
            "degree": pa.array(degree, type=pa.int64()),
            "strength": pa.array(strength, type=pa.float64()),
        }
    )
    pq.write_table(table, out / "clusters.parquet")


def _inputs(store: Store) -> list[dict[str, Any]]:
    rows = store.con.execute(
        "SELECT path, sha256, format, rows_read, rows_set_aside FROM sources ORDER BY source_id"
    ).fetchall()
    return [
        {"path": p, "sha256": sha, "format": f, "rows_read": n, "rows_set_aside": aside}
        for p, sha, f, n, aside in rows
    ]
