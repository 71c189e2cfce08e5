"""Write-back for Ozone: emitEvent bodies checked against the lexicon files, paged by
log offset, and POSTed to a (local) Ozone that fails, refuses repeats and comes back."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.service.conftest import Start, brigade_stream

#: The lexicon files (bluesky-social/atproto, MIT or Apache-2.0; lexicons/README.md).
LEXICONS = Path(__file__).resolve().parent / "lexicons"
DID = "did:plc:concertedguard"


def _defs(path: Path) -> dict[str, Any]:
    defs: dict[str, Any] = json.loads(path.read_text())["defs"]
    return defs


def _check_object(value: Any, schema: dict[str, Any], where: str) -> None:
    """The parts of the lexicon schema language these bodies use."""
    assert isinstance(value, dict), where
    for name in schema.get("required", []):
        assert name in value, f"{where}: {name} is required"
    for name, v in value.items():
        if name == "$type":
            continue
        prop = schema["properties"].get(name)
        assert prop is not None, f"{where}: no field {name}"
        kind = prop["type"]
        if kind == "string":
            assert isinstance(v, str), f"{where}.{name}"
            if prop.get("format") == "did":
                assert v.startswith("did:"), f"{where}.{name}"
        elif kind == "integer":
            assert isinstance(v, int) and not isinstance(v, bool), f"{where}.{name}"
            assert prop.get("minimum", v) <= v <= prop.get("maximum", v), f"{where}.{name}"
        elif kind == "array":
            assert isinstance(v, list) and all(isinstance(i, str) for i in v), f"{where}.{name}"
        elif kind == "boolean":
            assert isinstance(v, bool), f"{where}.{name}"
        elif kind in ("union", "ref"):
            assert isinstance(v, dict), f"{where}.{name}"
        elif kind != "unknown":
            raise AssertionError(f"{where}.{name}: type {kind} not checked here")


def check_emit_event(body: dict[str, Any]) -> None:
    """``body`` is a valid input of tools.ozone.moderation.emitEvent."""
    root = LEXICONS
    emit = _defs(root / "tools/ozone/moderation/emitEvent.json")["main"]["input"]["schema"]
    defs = _defs(root / "tools/ozone/moderation/defs.json")
    _check_object(body, emit, "input")
    event_type = body["event"]["$type"]
    assert event_type in emit["properties"]["event"]["refs"]
    _check_object(body["event"], defs[event_type.split("#")[1]], event_type)
    _check_object(body["modTool"], defs["modTool"], "modTool")
    subject = body["subject"]
    assert subject["$type"] in emit["properties"]["subject"]["refs"]
    if subject["$type"] == "com.atproto.admin.defs#repoRef":
        assert set(subject) == {"$type", "did"} and subject["did"].startswith("did:")
    else:
        assert set(subject) == {"$type", "uri", "cid"} and subject["uri"].startswith("at://")


def _bluesky(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The brigade stream on Bluesky: targets are accounts, or posts with a CID."""
    out = []
    for row in rows:
        t = row["target_id"]
        post = int(t[1:]) % 2 == 0
        target = f"at://did:plc:{t}/app.bsky.feed.post/1" if post else f"did:plc:{t}"
        extra = {"extra": {"cid": f"bafy{t}"}} if post else {}
        out.append({**row, "platform": "bluesky", "target_id": target, **extra})
    return out


def test_flagged_bluesky_reports_give_emit_event_bodies(serve: Start) -> None:
    s = serve(ozone_did=DID)
    rows = _bluesky(brigade_stream(90)) + [{**brigade_stream(3)[0], "report_id": "other"}]
    results = s.client("reports:write").post("/v1/reports/batch", json=rows).json()["results"]
    flagged = {r["report_id"] for r in results if r["recommendation"] != "count" and r["ok"]} - {
        "other"
    }
    assert len(flagged) > 5
    read = s.client("reports:read")
    got: list[dict[str, Any]] = []
    after = 0
    while True:
        page = read.get("/v1/ozone/events", params={"after": after, "limit": 7}).json()
        assert len(page["events"]) <= 7
        got += page["events"]
        if page["next"] == after:
            break
        after = page["next"]
    bodies = [e["body"] for e in got]
    assert [e["offset"] for e in got] == sorted(e["offset"] for e in got)
    ids = [b["externalId"] for b in bodies]
    assert len(ids) == len(set(ids)) == 2 * len(flagged)
    assert {i.split(":")[2] for i in ids} == flagged
    for body in bodies:
        check_emit_event(body)
        assert body["createdBy"] == DID
    scores = {
        b["externalId"].split(":")[2]: b["event"]["score"]
        for b in bodies
        if b["event"]["$type"].endswith("#modEventPriorityScore")
    }
    by_id = {r["report_id"]: r for r in results}
    assert all(scores[k] == round(by_id[k]["score"] * 100) for k in scores)
    tags = {tuple(b["event"]["add"]) for b in bodies if "add" in b["event"]}
    assert tags <= {("concerted:review",), ("concerted:discount",)}
    kinds = {b["subject"]["$type"] for b in bodies}
    assert kinds == {"com.atproto.admin.defs#repoRef", "com.atproto.repo.strongRef"}


def test_ozone_events_need_a_did_and_valid_paging(serve: Start) -> None:
    s = serve()
    assert s.client("reports:read").get("/v1/ozone/events").status_code == 404
    t = serve(state=s.settings.state.parent / "other", ozone_did=DID)
    read = t.client("reports:read")
    assert read.get("/v1/ozone/events", params={"after": "x"}).status_code == 422
    assert read.get("/v1/ozone/events", params={"limit": 0}).status_code == 422
    assert read.get("/v1/ozone/events").json() == {"events": [], "next": 0}


class _Ozone(BaseHTTPRequestHandler):
    """An Ozone stand-in: fails the first call, refuses a repeated externalId as Ozone
    does (400 DuplicateExternalId), keeps what it took."""

    taken: list[dict[str, Any]] = []
    calls = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        answer: dict[str, Any]
        with self.lock:
            type(self).calls += 1
            assert self.headers["Authorization"] == "Bearer ozone-secret"
            if type(self).calls == 1:
                status, answer = 502, {"error": "BadGateway"}
            elif any(t["externalId"] == body["externalId"] for t in self.taken):
                status, answer = 400, {"error": "DuplicateExternalId"}
            else:
                self.taken.append(body)
                status, answer = 200, {"id": len(self.taken)}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def ozone() -> Iterator[str]:
    _Ozone.taken, _Ozone.calls = [], 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ozone)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/xrpc/tools.ozone.moderation.emitEvent"
    server.shutdown()
    thread.join()
    server.server_close()


def test_events_are_posted_to_ozone_once_and_resume_after_a_restart(
    serve: Start, tmp_path: Path, ozone: str
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "ozone.token").write_text("ozone-secret\n")
    rows = _bluesky(brigade_stream(90))
    s = serve(state=state, ozone_did=DID, ozone_url=ozone)
    s.client("reports:write").post("/v1/reports/batch", json=rows[:60])
    expected = s.client("reports:read").get("/v1/ozone/events", params={"limit": 1000}).json()

    def wait_for(n: int) -> None:
        deadline = time.monotonic() + 30
        while len(_Ozone.taken) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_Ozone.taken) == n

    wait_for(len(expected["events"]))
    assert _Ozone.taken == [e["body"] for e in expected["events"]]
    assert _Ozone.calls == len(_Ozone.taken) + 1  # the first call failed and was retried
    s.stop()
    # The cursor survives; forget it partly and the repeats are refused, not doubled.
    cursor = int((state / "ozone.cursor").read_text())
    assert cursor == expected["next"]
    (state / "ozone.cursor").write_text(str(expected["events"][2]["offset"] - 1))
    again = serve(state=state, ozone_did=DID, ozone_url=ozone)
    again.client("reports:write").post("/v1/reports/batch", json=rows[60:])
    total = again.client("reports:read").get("/v1/ozone/events", params={"limit": 1000}).json()
    wait_for(len(total["events"]))
    assert [b["externalId"] for b in _Ozone.taken] == [
        e["body"]["externalId"] for e in total["events"]
    ]
    for body in _Ozone.taken:
        check_emit_event(body)
