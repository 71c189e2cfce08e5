"""`concerted demo`, the README's main command: simulate, analyse, report, evaluate."""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from concerted import demo as demo_module
from concerted import outputs
from concerted.demo import demo
from tests.test_cli import run

# End to end: left out of `make test-fast`.
pytestmark = pytest.mark.e2e


def test_demo_command_at_a_tenth_of_the_scale(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    # The demo's worlds go to the cache directory named here, not the user's.
    env = {**os.environ, "CONCERTED_CACHE": str(tmp_path / "cache")}
    done = run("demo", "--out", out, "--scale", "0.1", "--seed", "2", env=env)
    assert done.returncode == 0, done.stderr
    page = out / "result" / outputs.REPORT_FILE
    assert page.is_file() and (out / "result" / outputs.SUMMARY_FILE).is_file()
    assert str(page.resolve()) in done.stdout
    assert "against the simulation's truth" in done.stdout
    assert "simulated pakistan-2020, seed 2" in page.read_text()
    # A rerun with another seed replaces the former run instead of adding to its case.
    again = run("demo", "--out", out, "--scale", "0.1", "--seed", "3", "--json", env=env)
    assert again.returncode == 0, again.stderr
    evaluation = json.loads(again.stdout)
    assert (evaluation["scenario"], evaluation["seed"]) == ("pakistan-2020", 3)
    case = str(out / "result" / "case.duckdb")
    with duckdb.connect(case, read_only=True, config={"memory_limit": "512MB"}) as con:
        row = con.execute("SELECT count(*) FROM posts").fetchone()
    assert row is not None and row[0] == pq.read_metadata(out / "data" / "posts.parquet").num_rows
    campaigns = pq.read_table(out / "result" / "campaigns.parquet").to_pylist()
    assert "network-1" in {c["campaign_id"] for c in campaigns if c["flagged"]}


@pytest.mark.slow
def test_the_full_demo(tmp_path: Path) -> None:
    """The demo as the README runs it, held to the simulator-based targets of the
    engine and mass-reporting issues; prints its evaluation figures."""
    done = demo(tmp_path / "demo", seed=0)
    evaluation = done.evaluation
    figures = ("accounts", "targets", "reports", "automated_reporters", "campaigns")
    print(json.dumps({k: evaluation[k] for k in figures}, indent=1))
    # Mass reporting: targets and coordinated reports found, few false ones.
    for name in ("targets", "reports"):
        assert evaluation[name]["precision"] >= 0.95, name
        assert evaluation[name]["recall"] >= 0.95, name
    # The planted network and the brigades' accounts, with few organic accounts.
    assert evaluation["accounts"]["precision"] >= 0.95
    assert evaluation["accounts"]["recall"] >= 0.9
    matched = {m["operation_id"] for m in evaluation["campaigns"]["matches"]}
    assert "network-1" in matched and matched & {"brigade-1", "brigade-2"}
    html = done.report.read_text()
    assert 'id="net-0"' in html and 'id="brig-0"' in html
    # Capped: the run's thousands of accounts and ties stay a page, not a dump.
    size = done.report.stat().st_size
    assert size < 5_000_000, size


def _findings(evaluation: dict[str, object]) -> dict[str, object]:
    """An evaluation less the paths it names."""
    return {k: v for k, v in evaluation.items() if k not in ("result", "truth")}


def test_a_cached_world_gives_the_same_findings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second demo of a scenario, seed and scale copies the world the first one
    made (and ingested) and runs the analysis again: the same results, the same
    evaluation; another seed or scale is another world."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("CONCERTED_CACHE", str(cache))
    made: list[str] = []
    first = demo(tmp_path / "one", seed=4, scale=0.05, progress=made.append)
    worlds = [p.name for p in cache.iterdir()]
    assert worlds == [demo_module.world_key("pakistan-2020", 4, 0.05)]
    assert "counting actions" in made
    again: list[str] = []
    second = demo(tmp_path / "two", seed=4, scale=0.05, progress=again.append)
    assert "counting actions" not in again and any(m.startswith("world: cached") for m in again)
    assert "detect" in again  # the analysis ran
    assert _findings(first.evaluation) == _findings(second.evaluation)
    for name in ("campaigns", "members", "targets", "report_scores", "edges"):
        a = pq.read_table(first.result / f"{name}.parquet")
        b = pq.read_table(second.result / f"{name}.parquet")
        assert a.equals(b), name
    # A cache that cannot be made costs the cache, not the demo: it runs as with
    # cache=False, simulating and ingesting into its own directory.
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    monkeypatch.setenv("CONCERTED_CACHE", str(blocked))
    said: list[str] = []
    plain = demo(tmp_path / "three", seed=4, scale=0.05, progress=said.append)
    assert any(m.startswith("world: not cached") for m in said) and "counting actions" in said
    assert _findings(plain.evaluation) == _findings(first.evaluation)
    keys = {
        demo_module.world_key("pakistan-2020", 4, 0.05),
        demo_module.world_key("pakistan-2020", 5, 0.05),
        demo_module.world_key("pakistan-2020", 4, 0.1),
        demo_module.world_key("brigade", 4, 0.05),
    }
    assert len(keys) == 4
