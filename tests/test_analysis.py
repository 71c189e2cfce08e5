"""``concerted analyze`` end to end on simulated platforms with ground truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import networkx as nx
import pyarrow.parquet as pq
import pytest

from concerted import evaluate, simulate
from concerted.analysis import OUTPUT_FILES, analyze
from concerted.config import Config, from_mapping
from concerted.ingest import IngestOptions, open_case
from concerted.schema import EVIDENCE_CONTRACTS, RESULT_CONTRACTS, arrow_schema

# End to end: left out of `make test-fast`.
pytestmark = pytest.mark.e2e


def _run(tmp: Path, scenario: str, seed: int, config: Config | None = None) -> dict[str, Any]:
    data = tmp / f"{scenario}-{seed}"
    simulate.simulate(simulate.scenario(scenario), seed=seed, out=data)
    out = tmp / f"result-{scenario}-{seed}"
    store, _ = open_case([data], out / "case.duckdb", IngestOptions(format="generic"))
    with store:
        run = analyze(store, out, config)
    return {"run": run, "out": out, "truth": data, "score": evaluate.evaluate(out, data)}


@pytest.fixture(scope="module")
def cib(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _run(tmp_path_factory.mktemp("cib"), "cib", 0)


@pytest.fixture(scope="module")
def organic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _run(tmp_path_factory.mktemp("organic"), "organic", 0)


def test_organic_data_flags_nothing(organic: dict[str, Any]) -> None:
    assert organic["score"]["campaigns_flagged_on_organic"] == 0
    counts = organic["run"]["counts"]
    # Organic accounts do co-act (cascades, shared links) but never beyond chance.
    assert counts["pairs"] > 100_000
    assert counts["significant_pairs"] == 0


def test_the_cib_network_is_recovered(cib: dict[str, Any]) -> None:
    accounts = cib["score"]["accounts"]
    assert accounts["precision"] >= 0.95 and accounts["recall"] >= 0.95
    (match,) = cib["score"]["campaigns"]["matches"]
    assert match["operation_id"] == "network-1" and match["jaccard"] >= 0.9


def test_pages_groups_and_admins_are_attributed(cib: dict[str, Any]) -> None:
    members = pq.read_table(cib["out"] / "members.parquet").to_pylist()
    venues = {m["account_id"] for m in members if "venue" in m["signals"]}
    organisers = {m["account_id"] for m in members if m["role"] == "organiser"}
    truth = duckdb.sql(
        f"SELECT role, detail, id FROM '{cib['truth'] / 'truth.parquet'}' WHERE entity = 'account'"
    ).fetchall()
    groups = {i for role, detail, i in truth if detail == "group"}
    admins = {i for role, detail, i in truth if role == "organiser"}
    assert groups <= venues
    assert admins <= organisers


def test_every_output_is_written(cib: dict[str, Any]) -> None:
    out: Path = cib["out"]
    for name in OUTPUT_FILES:
        assert (out / name).is_file(), name
    for name, contract in RESULT_CONTRACTS.items():
        assert pq.read_schema(out / f"{name}.parquet").names == list(contract.names)
    for name in ("edges", "events"):
        written = pq.read_schema(out / f"{name}.parquet")
        wanted = arrow_schema(EVIDENCE_CONTRACTS[name])
        assert written.names == wanted.names
        assert written.types == wanted.types


def test_every_significant_edge_is_explained_by_its_events(cib: dict[str, Any]) -> None:
    out: Path = cib["out"]
    unexplained = duckdb.sql(
        f"""
        SELECT e.layer, e.account_1, e.account_2, e.weight, e.events,
               count(DISTINCT v.object_id) AS objects, count(v.object_id) AS n
        FROM '{out / "edges.parquet"}' e
        LEFT JOIN '{out / "events.parquet"}' v USING (detector, layer, platform_1, account_1,
                                                     platform_2, account_2)
        WHERE e.significant AND e.detector = 'co_action' GROUP BY ALL
        HAVING objects <> e.weight OR n <> e.events
        """
    ).fetchall()
    assert unexplained == []
    gaps = dict(
        duckdb.sql(
            f"SELECT layer = 'near_text', max(abs(epoch(ts_1) - epoch(ts_2))) "
            f"FROM '{out / 'events.parquet'}' WHERE detector = 'co_action' GROUP BY 1"
        ).fetchall()
    )
    # Co-action pairs within a minute; near-duplicate texts within the hour.
    assert gaps[False] <= 60 and gaps.get(True, 0) <= 3600


def test_network_files_open_with_their_attributes(cib: dict[str, Any]) -> None:
    out: Path = cib["out"]
    graphml = nx.read_graphml(out / "network.graphml")
    gexf = nx.read_gexf(out / "network.gexf")
    clusters = pq.read_table(out / "clusters.parquet")
    assert graphml.number_of_nodes() == gexf.number_of_nodes() == clusters.num_rows
    for g in (graphml, gexf):
        some = next(iter(g.nodes(data=True)))[1]
        assert {"cluster", "platform", "kind", "campaign"} <= set(some)
    campaign_nodes = {n for n, d in graphml.nodes(data=True) if d.get("campaign") == "network-1"}
    assert len(campaign_nodes) == cib["run"]["counts"]["core_accounts"]


def test_run_json_says_how_to_rerun(cib: dict[str, Any]) -> None:
    run = json.loads((cib["out"] / "run.json").read_text())
    assert run["concerted"] and run["command"] == "analyze"
    assert run["settings"] == json.loads(json.dumps(Config().as_dict(), default=str))
    assert {Path(i["path"]).name for i in run["inputs"]} == {
        "accounts.parquet",
        "posts.parquet",
        "reports.parquet",
        "roles.parquet",
    }
    assert all(len(i["sha256"]) == 64 for i in run["inputs"])
    # The default null is analytic: no "null" stage of randomised copies.
    assert set(run["seconds"]) >= {"detect", "test", "network", "clusters", "campaigns"}
    assert "null" not in run["seconds"]
    assert run["notes"]["significance"]["min_significant_weight"] >= 2


def test_the_same_run_gives_the_same_result(cib: dict[str, Any], tmp_path: Path) -> None:
    store, _ = open_case([cib["out"] / "case.duckdb"], tmp_path, IngestOptions(format="generic"))
    with store:
        analyze(store, tmp_path / "again")
    for name in ("edges.parquet", "members.parquet", "campaigns.parquet", "clusters.parquet"):
        assert pq.read_table(tmp_path / "again" / name).equals(pq.read_table(cib["out"] / name))


def test_leiden_splits_where_components_do_not(cib: dict[str, Any], tmp_path: Path) -> None:
    store, _ = open_case([cib["out"] / "case.duckdb"], tmp_path, IngestOptions(format="generic"))
    config = from_mapping({"clusters": {"method": "leiden", "resolution": 2.0}})
    with store:
        run = analyze(store, tmp_path / "leiden", config)
    assert run["counts"]["campaigns"] > 1
    communities = pq.read_table(cib["out"] / "clusters.parquet").column("community")
    assert len(set(communities.to_pylist())) > 1


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_cib_recovered_over_seeds(tmp_path: Path, seed: int) -> None:
    """With seed 0 above: five seeds at the standard difficulty."""
    accounts = _run(tmp_path, "cib", seed)["score"]["accounts"]
    assert accounts["precision"] >= 0.95 and accounts["recall"] >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_organic_flags_nothing_over_seeds(tmp_path: Path, seed: int) -> None:
    assert _run(tmp_path, "organic", seed)["score"]["campaigns_flagged_on_organic"] == 0


def test_evidence_files_read_as_zstd_at_its_default_level(
    cib: dict[str, Any], tmp_path: Path
) -> None:
    """The evidence is written with zstd at level 1: written again at DuckDB's default
    level, each file reads back the same (rows, order, schema) through pyarrow, and
    DuckDB reads it too."""
    for name in ("edges", "events", "signals"):
        path = cib["out"] / f"{name}.parquet"
        plain = tmp_path / f"{name}.parquet"
        duckdb.execute(
            f"COPY (SELECT * FROM read_parquet('{path}')) TO '{plain}' "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
        written = pq.read_table(path)
        assert written.num_rows > 0
        assert written.equals(pq.read_table(plain)), name
        wanted = arrow_schema(EVIDENCE_CONTRACTS[name])
        assert (written.schema.names, written.schema.types) == (wanted.names, wanted.types)
        meta = pq.read_metadata(path)
        assert meta.row_group(0).column(0).compression == "ZSTD"
        count = duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchone()
        assert count == (written.num_rows,)


def test_evidence_beyond_the_ordered_rows_is_the_same_rows_unsorted(
    cib: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Up to ORDERED_ROWS rows the pairs and signals are written sorted; beyond, the
    same rows in whatever order DuckDB hands them over (sorting millions of rows cost a
    third of the writing at 10^7 actions)."""
    from concerted import analysis

    order = {
        "edges": ["platform_1", "account_1", "platform_2", "account_2", "detector", "layer"],
        "signals": ["detector", "layer", "entity", "platform", "id", "related_id"],
    }
    for name, keys in order.items():
        written = pq.read_table(cib["out"] / f"{name}.parquet")
        assert written.num_rows > 1
        assert written.equals(written.sort_by([(k, "ascending") for k in keys])), name
    monkeypatch.setattr(analysis, "ORDERED_ROWS", 0)
    queries: list[str] = []
    real = analysis._write

    def write(con: Any, query: str, path: Path) -> None:
        queries.append(query)
        real(con, query, path)

    monkeypatch.setattr(analysis, "_write", write)
    store, _ = open_case([cib["out"] / "case.duckdb"], tmp_path, IngestOptions(format="generic"))
    with store:
        analyze(store, tmp_path / "unsorted")
    assert not any("ORDER BY" in q for q in queries)
    for name in ("edges", "signals"):
        got = duckdb.sql(f"SELECT * FROM '{tmp_path / 'unsorted' / name}.parquet'")
        want = duckdb.sql(f"SELECT * FROM '{cib['out'] / name}.parquet'")
        assert sorted(got.fetchall(), key=repr) == sorted(want.fetchall(), key=repr), name


def test_no_events_are_left_staged(
    cib: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The events are staged as Parquet parts beside the outputs while the stages find
    them; none is left there after a run, nor after a run that fails once some are
    written."""
    from concerted import analysis

    assert not list(cib["out"].glob(".concerted-events-*"))

    def broken(run: Any) -> Any:
        assert run.events.parts, "the co-action events are written by now"
        raise RuntimeError("the network stage failed")

    monkeypatch.setattr(analysis, "_network", broken)
    store, _ = open_case([cib["out"] / "case.duckdb"], tmp_path, IngestOptions(format="generic"))
    with store, pytest.raises(RuntimeError, match="network stage"):
        analyze(store, tmp_path / "failed")
    assert list((tmp_path / "failed").iterdir()) == []


def test_the_tests_tables_go_once_their_edges_are_stored(
    cib: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the tests of the pairs read (their tails, the edges found) is dropped once
    ``_edges`` holds the tested edges: the later stages do not carry it, and the run
    leaves no temporary table on the case's connection."""
    from concerted import analysis

    network = analysis._network
    held: list[str] = []

    def watched(run: Any) -> Any:
        held.extend(
            name
            for (name,) in run.con.sql(
                "SELECT table_name FROM duckdb_tables() WHERE temporary"
            ).fetchall()
        )
        return network(run)

    monkeypatch.setattr(analysis, "_network", watched)
    store, _ = open_case([cib["out"] / "case.duckdb"], tmp_path, IngestOptions(format="generic"))
    with store:
        run = analyze(store, tmp_path / "again")
        left = store.con.sql("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    assert run["counts"] == cib["run"]["counts"]
    assert "_edges" in held
    assert [t for t in held if t.startswith(("_significance", "_edges_found", "_tested"))] == []
    assert left == []
