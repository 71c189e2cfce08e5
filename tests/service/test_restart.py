"""A restart loses nothing acknowledged and scores on as if it had never stopped."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path
from typing import Any

import pytest

from concerted.service.logs import open_log
from tests.service.conftest import Start, brigade_stream

_KEEP = ("score", "recommendation", "signals", "features", "target")


def _post(client: Any, rows: list[dict[str, Any]], size: int = 15) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(0, len(rows), size):
        r = client.post("/v1/reports/batch", json=rows[i : i + size])
        assert r.status_code == 200
        out += r.json()["results"]
    return out


def _named(log: str, name: str) -> str:
    """Log ``log`` under a name of its own (a JetStream server holds several)."""
    return log if log == "sqlite" else f"{log}/{name}"


@pytest.mark.parametrize("snapshot", ["older", "none", "old-format"])
def test_a_restart_replays_the_log_and_scores_on_unchanged(
    serve: Start, tmp_path: Path, snapshot: str, log_kind: str
) -> None:
    rows = brigade_stream(90)
    first, second = rows[:60], rows[60:]
    uninterrupted = serve(state=tmp_path / "uninterrupted", log=_named(log_kind, "reference"))
    reference = _post(uninterrupted.client("reports:write"), rows)

    state = tmp_path / "restarted"
    where = _named(log_kind, "restarted")
    s = serve(state=state, snapshot_every=10, log=where)
    _post(s.client("reports:write"), first[:25])
    older = tmp_path / "older.bin"
    shutil.copy(state / "snapshot.bin", older)
    acknowledged = _post(s.client("reports:write"), first[25:])
    s.stop()
    if snapshot == "older":
        shutil.copy(older, state / "snapshot.bin")
    elif snapshot == "none":
        (state / "snapshot.bin").unlink()
    elif snapshot == "old-format":
        # A pickled state, as earlier releases wrote: refused, the whole log replayed.
        (state / "snapshot.bin").write_bytes(pickle.dumps({"version": 5, "offset": 60}))

    again = serve(state=state, log=where)
    assert again.client().get("/readyz").json() == {"ready": True, "offset": 60}
    # Every acknowledged report is there once: sent again, each is a repeat.
    repeats = _post(again.client("reports:write"), first)
    assert all(r["repeat"] for r in repeats)
    assert [r["offset"] for r in repeats[25:]] == [r["offset"] for r in acknowledged]
    log = open_log(where, state)
    try:
        assert log.last_offset == 60 and len(list(log.read())) == 60
    finally:
        log.close()

    after = _post(again.client("reports:write"), second)
    expected = reference[60:]
    assert [{k: r[k] for k in _KEEP} for r in after] == [{k: r[k] for k in _KEEP} for r in expected]
    assert any(r["recommendation"] != "count" for r in after)
    targets = again.client("reports:read").get("/v1/targets").json()
    assert targets == uninterrupted.client("reports:read").get("/v1/targets").json()
