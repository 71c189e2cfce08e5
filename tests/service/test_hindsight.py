"""Hindsight: the batch brigade stage over the log's recent reports marks the targets
of the brigades it finds, apart from the online signals."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from concerted import simulate
from concerted.schema import CONTRACTS
from concerted.scoring import ScoreSettings
from tests.service.conftest import Running, Start

# Each runs the service over a simulated world: left out of `make test-fast`.
pytestmark = pytest.mark.heavy


def _simulated(
    out: Path, scale: float
) -> tuple[list[dict[str, Any]], set[tuple[str, str]], set[tuple[str, str]]]:
    """The reports of a simulated brigade, in the request format and time order, the
    targets the simulation planted and its brigades' accounts."""
    simulate.simulate(simulate.scenario("brigade", scale=scale), seed=1, out=out)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(CONTRACTS["reports"].ddl())
    con.execute(f"INSERT INTO reports BY NAME SELECT * FROM '{out / 'reports.parquet'}'")
    con.execute(CONTRACTS["accounts"].ddl())
    con.execute(f"INSERT INTO accounts BY NAME SELECT * FROM '{out / 'accounts.parquet'}'")
    rows = con.sql(
        "SELECT r.report_id, r.platform, r.reporter_id, r.target_id, r.target_kind, r.reason,"
        " r.ts, r.channel, r.client, r.outcome, a.created_at FROM reports r LEFT JOIN"
        " (SELECT platform, account_id, any_value(created_at) AS created_at FROM accounts"
        " GROUP BY ALL) a ON a.platform = r.platform AND a.account_id = r.reporter_id"
        " ORDER BY r.ts, r.platform, r.report_id"
    ).fetchall()
    truth = con.sql(f"SELECT entity, platform, id FROM '{out / 'truth.parquet'}'").fetchall()
    planted = {(str(p), str(i)) for e, p, i in truth if e == "target"}
    accounts = {(str(p), str(i)) for e, p, i in truth if e == "account"}
    con.close()
    names = ("report_id", "platform", "reporter_id", "target_id", "target_kind", "reason")
    reports = []
    for *head, ts, channel, client, outcome, created in rows:
        reports.append(
            {
                **dict(zip(names, head, strict=True)),
                "ts": ts.isoformat(),
                "channel": channel,
                "client": client,
                "outcome": outcome,
                "reporter_created_at": None if created is None else created.isoformat(),
            }
        )
    return reports, planted, accounts


def _marked(s: Running, reports: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[Any, Any]]:
    """Send ``reports``, run hindsight through the admin endpoint; what the run said
    and the targets it marked."""
    write, read = s.client("reports:write"), s.client("reports:read")
    for i in range(0, len(reports), 1000):
        r = write.post("/v1/reports/batch", json=reports[i : i + 1000])
        assert r.status_code == 200 and r.json()["refused"] == 0
    before = read.get("/v1/targets", params={"limit": 1000}).json()["targets"]
    assert all(t["hindsight"] is None for t in before)
    assert all(t["sources"] == ["online"] for t in before)

    assert read.post("/v1/admin/reanalyse").status_code == 403  # admin only
    run = s.client("admin").post("/v1/admin/reanalyse")
    assert run.status_code == 200
    done = run.json()
    assert done["reports"] == len(reports)
    # Nothing new since: the run's result stands, nothing is run again.
    assert s.client("admin").post("/v1/admin/reanalyse").json() == done
    targets = read.get("/v1/targets", params={"limit": 1000}).json()["targets"]
    marked = {(t["platform"], t["target_id"]): t for t in targets if t["hindsight"]}
    assert done["targets_marked"] == len(marked)
    for t in marked.values():
        assert "hindsight" in t["sources"] and t["state"] == "review"
        assert t["hindsight"]["source"] == "hindsight"
        one = read.get(f"/v1/targets/{t['platform']}/{t['target_id']}").json()
        assert one["hindsight"] == t["hindsight"] and one["sources"] == t["sources"]
    return done, marked


def test_hindsight_marks_the_targets_it_would_protect(
    serve: Start, tmp_path: Path, log_kind: str
) -> None:
    """A small simulated brigade: too small for the stage to assemble, but its targets'
    reports are flagged enough that the stage would protect them. On either log."""
    reports, planted, _ = _simulated(tmp_path / "brigade", 0.2)
    s = serve(scoring=ScoreSettings(), reanalyse_span=30 * 86_400.0, log=log_kind)
    done, marked = _marked(s, reports)
    assert marked and set(marked) <= planted  # the decoy report spike is not marked
    assert all(t["hindsight"]["protected"] for t in marked.values())


@pytest.mark.slow
def test_hindsight_marks_the_targets_of_a_simulated_brigade(serve: Start, tmp_path: Path) -> None:
    reports, planted, accounts = _simulated(tmp_path / "brigade", 0.6)
    s = serve(scoring=ScoreSettings(), reanalyse_span=30 * 86_400.0)
    done, marked = _marked(s, reports)
    assert done["flagged_brigades"] >= 1
    assert marked and set(marked) <= planted
    found = [t["hindsight"] for t in marked.values() if t["hindsight"]["campaign_id"]]
    assert found
    for h in found:
        assert h["signals"] and h["reporters"] and h["score"] > 0
        assert {(p, r) for p, _ in marked for r in h["reporters"]} & accounts


def test_reanalyse_every_runs_by_itself(serve: Start, tmp_path: Path) -> None:
    reports, _, _ = _simulated(tmp_path / "brigade", 0.2)
    s = serve(scoring=ScoreSettings(), reanalyse_span=30 * 86_400.0, reanalyse_every=0.2)
    write = s.client("reports:write")
    for i in range(0, len(reports), 1000):
        assert write.post("/v1/reports/batch", json=reports[i : i + 1000]).status_code == 200
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        targets = s.client("reports:read").get("/v1/targets").json()["targets"]
        if any(t["hindsight"] for t in targets):
            break
        time.sleep(0.2)
    else:
        raise AssertionError("no scheduled run marked a target")
