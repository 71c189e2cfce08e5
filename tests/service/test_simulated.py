"""A simulated brigade sent through the service scores as the batch scorer does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from concerted import simulate
from concerted.schema import CONTRACTS
from concerted.scoring import ScoreSettings, score_reports
from tests.service.conftest import Start

# Each runs the service over a simulated world: left out of `make test-fast`.
pytestmark = pytest.mark.heavy


def test_a_simulated_brigade_scores_as_in_batch(serve: Start, tmp_path: Path) -> None:
    data = tmp_path / "brigade"
    simulate.simulate(simulate.scenario("brigade", scale=0.05), seed=1, out=data)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(CONTRACTS["reports"].ddl())
    con.execute(f"INSERT INTO reports BY NAME SELECT * FROM '{data / 'reports.parquet'}'")
    con.execute(CONTRACTS["accounts"].ddl())
    con.execute(f"INSERT INTO accounts BY NAME SELECT * FROM '{data / 'accounts.parquet'}'")
    batch = score_reports(con, ScoreSettings()).to_pylist()
    created = dict(
        con.sql(
            "SELECT platform || '/' || account_id, any_value(created_at) FROM accounts GROUP BY 1"
        ).fetchall()
    )
    rows = con.sql(
        "SELECT report_id, platform, reporter_id, target_id, target_kind, reason, ts, channel,"
        " client, outcome FROM reports ORDER BY ts, platform, report_id"
    ).fetchall()
    con.close()
    assert len(rows) > 500
    reports: list[dict[str, Any]] = []
    for report_id, platform, reporter, target, kind, reason, ts, channel, client, outcome in rows:
        at = created.get(f"{platform}/{reporter}")
        reports.append(
            {
                "report_id": report_id,
                "platform": platform,
                "reporter_id": reporter,
                "target_id": target,
                "target_kind": kind,
                "reason": reason,
                "ts": ts.isoformat(),
                "channel": channel,
                "client": client,
                "outcome": outcome,
                "reporter_created_at": None if at is None else at.isoformat(),
            }
        )

    s = serve(scoring=ScoreSettings())
    client = s.client("reports:write")
    online: list[dict[str, Any]] = []
    for i in range(0, len(reports), 250):
        response = client.post("/v1/reports/batch", json=reports[i : i + 250])
        assert response.status_code == 200 and response.json()["refused"] == 0
        online += response.json()["results"]

    assert [o["report_id"] for o in online] == [b["report_id"] for b in batch]
    for o, b in zip(online, batch, strict=True):
        assert o["score"] == pytest.approx(b["score"], abs=1e-12), o["report_id"]
        assert o["recommendation"] == b["recommendation"]
        assert o["signals"] == b["signals"]
    assert sum(o["recommendation"] != "count" for o in online) > 10
