"""The HTTP API over a real socket: intake, idempotency, batches, errors, auth."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from pathlib import Path

import httpx
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted.service.app import encode_batch, encode_batch_once
from concerted.service.bodies import ItemError
from concerted.service.intake import Accepted
from concerted.service.openapi import ROUTES
from tests.conftest import FIXTURES
from tests.service.conftest import Start, brigade_stream, report

MODERATION = FIXTURES / "moderation"


def test_one_report_is_scored_stored_and_answered(serve: Start) -> None:
    s = serve()
    r = s.client("reports:write").post("/v1/reports", json=report(1, "a", "t", 0))
    assert r.status_code == 200
    body = r.json()
    assert body["report_id"] == "r0001" and body["platform"] == "mastodon"
    assert body["recommendation"] in ("count", "review", "discount")
    assert 0.0 <= body["score"] <= 1.0 and body["signals"] == [] and body["offset"] == 1
    assert body["repeat"] is False
    assert body["target"]["reports"] == 1 and body["target"]["state"] == "normal"
    stored = s.client("reports:read").get("/v1/reports/mastodon/r0001").json()
    assert stored["report"]["reporter_id"] == "a" and stored["report"]["ts"].endswith("Z")
    assert stored["result"]["score"] == body["score"] and stored["outcome"] is None


def test_a_repeat_gets_its_first_result_and_is_stored_once(serve: Start) -> None:
    s = serve()
    c = s.client("reports:write")
    first = c.post("/v1/reports", json=report(1, "a", "t", 0)).json()
    c.post("/v1/reports", json=report(2, "b", "t", 1))
    # The same key with other content is still the same report: the first result.
    again = c.post("/v1/reports", json=report(1, "z", "other", 50)).json()
    assert again["repeat"] is True
    assert {k: v for k, v in again.items() if k not in ("repeat", "target")} == {
        k: v for k, v in first.items() if k not in ("repeat", "target")
    }
    # The target's view is the target as it is now, two reports on, not as it was then.
    now = s.client("reports:read").get("/v1/targets/mastodon/t").json()
    assert again["target"] == {k: v for k, v in now.items() if k != "timeline"}
    assert (first["target"]["reports"], again["target"]["reports"]) == (1, 2)
    stored = s.client("reports:read").get("/v1/reports/mastodon/r0001").json()["result"]
    assert stored == {k: v for k, v in again.items() if k != "repeat"}
    batch = c.post("/v1/reports/batch", json=[report(3, "c", "t", 2), report(3, "c", "t", 2)])
    one, two = batch.json()["results"]
    assert one["repeat"] is False and two["repeat"] is True and one["offset"] == two["offset"]
    assert s.client().get("/readyz").json()["offset"] == 3


def test_a_batch_keeps_the_good_reports_and_names_the_bad_field(serve: Start) -> None:
    s = serve()
    rows = [
        report(1, "a", "t", 0),
        {**report(2, "a", "t", 1), "ts": "not a time"},
        {**report(3, "a", "t", 2), "outcome": "maybe"},
        {k: v for k, v in report(4, "a", "t", 3).items() if k != "reporter_id"},
        {**report(5, "a", "t", 4), "colour": "red"},
        "not an object",
        report(6, "a", "t", 5),
    ]
    r = s.client("reports:write").post("/v1/reports/batch", json=rows)
    assert r.status_code == 200
    body = r.json()
    assert (body["accepted"], body["refused"]) == (2, 5)
    results = body["results"]
    assert [x["index"] for x in results] == list(range(7))
    assert [x["ok"] for x in results] == [True, False, False, False, False, False, True]
    fields = [x["error"]["field"] for x in results if not x["ok"]]
    assert fields == ["ts", "outcome", "reporter_id", "colour", None]
    assert "unparseable timestamp" in results[1]["error"]["reason"]
    read = s.client("reports:read")
    assert read.get("/v1/reports/mastodon/r0002").status_code == 404
    assert read.get("/v1/reports/mastodon/r0006").json()["offset"] == 2


def test_ndjson_batches_keep_lines_that_parse(serve: Start) -> None:
    s = serve()
    lines = [json.dumps(report(1, "a", "t", 0)), "{oops", json.dumps(report(2, "b", "t", 1))]
    r = s.client("reports:write").post(
        "/v1/reports/batch",
        content="\n".join(lines).encode(),
        headers={"Content-Type": "application/x-ndjson"},
    )
    body = r.json()
    assert [x["ok"] for x in body["results"]] == [True, False, True]
    assert "line 2" in body["results"][1]["error"]["reason"]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
_KEYS = ["score", "recommendation", "signals", "target", "features", "ok", "index", "repeat"]
_ANSWERS = st.one_of(
    st.builds(ItemError, st.none() | st.sampled_from(["ts", "colour"]), st.text(max_size=8)),
    st.builds(
        lambda result, offset, repeat: Accepted(
            result, msgspec.json.encode(result), offset, repeat
        ),
        st.dictionaries(st.sampled_from([*_KEYS, "offset", 'é"x']), _JSON, max_size=5),
        st.integers(1, 2**40),
        st.booleans(),
    ),
)


_TEXT = st.text(st.characters(codec="utf-8"), max_size=4)


@st.composite
def _made_now(draw: st.DrawFn) -> tuple[Accepted, Accepted]:
    """An answer as the guard makes a new report's (its result as JSON, its target
    known, maybe its view) and the same answer as a plain result dict."""
    platform, target = draw(st.sampled_from(["x", "y"])), draw(_TEXT)
    result = {
        "report_id": draw(_TEXT),
        "platform": platform,
        "target_id": target,
        "score": draw(st.floats(0, 1)),
        "signals": draw(st.lists(st.sampled_from(["coreport", "pace"]), max_size=2)),
    }
    bare = msgspec.json.encode(result)
    view = draw(st.none() | st.fixed_dictionaries({"reports": st.integers(0, 9), "id": _TEXT}))
    offset, repeat = draw(st.integers(1, 2**40)), draw(st.booleans())
    if view is None:
        made = Accepted(None, bare, offset, repeat, bare, target=(platform, target))
        return made, Accepted(result, bare, offset, repeat)
    shown = msgspec.json.encode(view)
    whole = b'%b,"target":%b}' % (bare[:-1], shown)
    made = Accepted(None, whole, offset, repeat, bare, shown, (platform, target))
    return made, Accepted({**result, "target": view}, whole, offset, repeat)


@given(pairs=st.lists(_made_now(), max_size=8), errors=st.lists(st.integers(0, 8), max_size=2))
@settings(max_examples=80, deadline=None)
def test_answers_the_guard_made_now_encode_as_their_plain_results(
    pairs: list[tuple[Accepted, Accepted]], errors: list[int]
) -> None:
    made: list[Accepted | ItemError] = [m for m, _ in pairs]
    plain: list[Accepted | ItemError] = [p for _, p in pairs]
    for at in errors:  # refused reports among them
        made.insert(min(at, len(made)), ItemError("ts", "bad"))
        plain.insert(min(at, len(plain)), ItemError("ts", "bad"))
    assert encode_batch_once(made) == encode_batch_once(plain)
    assert encode_batch(made) == encode_batch(plain)
    # Neither encoding read a result made now as a dict.
    assert all(m._result is None for m, _ in pairs)


@given(answers=st.lists(_ANSWERS, max_size=8))
@settings(max_examples=60, deadline=None)
def test_a_batch_answer_spliced_from_encoded_results_is_the_plain_encoding(
    answers: list[Accepted | ItemError],
) -> None:
    results = [
        {"ok": False, "index": i, "error": a.as_dict()}
        if isinstance(a, ItemError)
        else {"ok": True, "index": i, **a.as_dict()}
        for i, a in enumerate(answers)
    ]
    refused = sum(isinstance(a, ItemError) for a in answers)
    plain = msgspec.json.encode(
        {"accepted": len(answers) - refused, "refused": refused, "results": results}
    )
    assert msgspec.json.decode(encode_batch(answers)) == msgspec.json.decode(plain)


def test_bad_json_is_400_and_a_contract_break_422_with_the_field(serve: Start) -> None:
    s = serve()
    c = s.client("reports:write")
    r = c.post("/v1/reports", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["status"] == 400
    r = c.post("/v1/reports", json={**report(1, "a", "t", 0), "target_kind": "planet"})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "target_kind"
    r = c.post("/v1/reports", json={**report(1, "a", "t", 0), "ts": "2026-03-01T00:00:00"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "ts"
    assert s.client().get("/readyz").json()["offset"] == 0


def test_every_endpoint_but_healthz_needs_a_token_with_its_scope(serve: Start) -> None:
    s = serve()
    anonymous = httpx.Client(base_url=s.url)
    wrong = httpx.Client(base_url=s.url, headers={"Authorization": "Bearer cst_nope"})
    try:
        assert anonymous.get("/healthz").status_code == 200
        for method, path, scope, _ in ROUTES:
            if scope in (None, "signature"):
                continue
            url = path.replace("{platform}", "x").replace("{report_id}", "r")
            url = url.replace("{target_id}", "t").replace("{format}", "lemmy")
            assert anonymous.request(method, url).status_code == 401, path
            assert wrong.request(method, url).status_code == 401, path
            for have in ("reports:write", "reports:read", "admin"):
                status = s.client(have).request(method, url, json={}).status_code
                allowed = scope == "any" or have == "admin" or have == scope
                assert (status != 403) == allowed, (path, have, status)
    finally:
        anonymous.close()
        wrong.close()


def test_a_body_over_the_limit_is_413(serve: Start) -> None:
    s = serve(max_body=2000, max_batch=3)
    c = s.client("reports:write")
    r = c.post("/v1/reports", json={**report(1, "a", "t", 0), "text": "x" * 5000})
    assert r.status_code == 413
    r = c.post("/v1/reports/batch", json=[report(i, "a", "t", i) for i in range(4)])
    assert r.status_code == 413
    # Without Content-Length (chunked), the stream is cut at the limit all the same.
    body = json.dumps({**report(1, "a", "t", 0), "text": "x" * 5000}).encode()
    r = c.post("/v1/reports", content=iter([body[:1000], body[1000:]]))
    assert r.status_code == 413
    assert s.client().get("/readyz").json()["offset"] == 0


def test_a_token_over_its_rate_gets_429_with_retry_after(serve: Start) -> None:
    s = serve(rate=0.5, burst=3)
    c = s.client("reports:read")
    codes = [c.get("/v1/targets").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = c.get("/v1/targets")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    # Each token has its own bucket.
    assert s.client("admin").get("/v1/targets").status_code == 200


def test_targets_under_a_brigade_are_listed_for_review(serve: Start) -> None:
    s = serve()
    answers = s.client("reports:write").post("/v1/reports/batch", json=brigade_stream()).json()
    flagged = [x for x in answers["results"] if x["recommendation"] != "count"]
    assert flagged, "the brigade stream should be flagged"
    read = s.client("reports:read")
    listed = read.get("/v1/targets", params={"state": "review"}).json()["targets"]
    assert listed and all(t["state"] == "review" for t in listed)
    top = listed[0]
    assert set(top) >= {"co_reporters", "first_report", "latest_report", "signals"}
    assert any(q.startswith("b") for q in top["co_reporters"])
    one = read.get(f"/v1/targets/mastodon/{top['target_id']}").json()
    assert one == top
    assert read.get("/v1/targets/mastodon/nobody").status_code == 404
    assert read.get("/v1/targets", params={"state": "count"}).status_code == 422


def test_outcomes_are_stored_for_known_reports_only(serve: Start) -> None:
    s = serve()
    s.client("reports:write").post("/v1/reports", json=report(1, "a", "t", 0))
    admin = s.client("admin")
    r = admin.post(
        "/v1/outcomes", json={"platform": "Mastodon", "report_id": "r0001", "outcome": "rejected"}
    )
    assert r.status_code == 200 and r.json() == {"stored": True, "feeds_reputation": True}
    stored = s.client("reports:read").get("/v1/reports/mastodon/r0001").json()
    assert stored["outcome"] == "rejected"
    when = {"platform": "mastodon", "report_id": "r0001", "outcome": "upheld"}
    late = admin.post("/v1/outcomes", json={**when, "decided_at": "last week"})
    assert late.status_code == 422 and late.json()["error"]["field"] == "decided_at"
    on_time = admin.post("/v1/outcomes", json={**when, "decided_at": "2026-03-02T00:00:00Z"})
    assert on_time.status_code == 200
    missing = {"platform": "mastodon", "report_id": "nope", "outcome": "upheld"}
    assert admin.post("/v1/outcomes", json=missing).status_code == 404
    bad = admin.post("/v1/outcomes", json={**missing, "outcome": "maybe"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "outcome"
    missing_field = admin.post("/v1/outcomes", json={"platform": "x"})
    assert (
        missing_field.status_code == 422 and missing_field.json()["error"]["field"] == "report_id"
    )
    extra_field = admin.post("/v1/outcomes", json={**missing, "colour": 1})
    assert extra_field.status_code == 422 and extra_field.json()["error"]["field"] == "colour"


def test_metrics_and_openapi_describe_the_service(serve: Start) -> None:
    s = serve()
    s.client("reports:write").post("/v1/reports/batch", json=brigade_stream(30))
    text = s.client("admin").get("/metrics").text
    assert 'concerted_requests_total{method="POST",route="/v1/reports/batch",status="200"}' in text
    assert "concerted_reports{" in text and "concerted_log_offset 30.0" in text
    spec = s.client("reports:read").get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    served = {(m.lower(), p) for m, p, _, _ in ROUTES}
    documented = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    assert documented == served


def test_logs_carry_no_identifier_or_text(serve: Start, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    s = serve()
    secret = {**report(1, "reporter-SECRET", "target-SECRET", 0), "text": "TEXT-SECRET"}
    s.client("reports:write").post("/v1/reports", json=secret)
    s.client("reports:read").get("/v1/reports/mastodon/r0001")
    s.client("reports:write").post("/v1/reports", json={**secret, "ts": "bad SECRET"})
    s.stop()
    # The server's own loggers (the test's client logs its URLs, which is its business).
    server = [r for r in caplog.records if r.name.startswith(("concerted", "uvicorn"))]
    logged = "\n".join(r.getMessage() for r in server)
    assert "POST /v1/reports 200" in logged
    assert "SECRET" not in logged and "r0001" not in logged


def _sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def test_mastodon_webhooks_need_a_valid_signature(serve: Start, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "mastodon.secret").write_text("s3cret\n")
    s = serve(state=state)
    records = json.loads((MODERATION / "mastodon.json").read_text())
    body = json.dumps(
        {"event": "report.created", "created_at": "2026-03-01T12:00:00Z", "object": records[1]}
    ).encode()
    anonymous = httpx.Client(base_url=s.url)
    try:
        bad = anonymous.post(
            "/v1/intake/mastodon", content=body, headers={"X-Hub-Signature": _sign(b"wrong", body)}
        )
        assert bad.status_code == 401
        assert anonymous.post("/v1/intake/mastodon", content=body).status_code == 401
        good = anonymous.post(
            "/v1/intake/mastodon", content=body, headers={"X-Hub-Signature": _sign(b"s3cret", body)}
        )
        assert good.status_code == 200
        (result,) = good.json()["results"]
        assert result["ok"] and result["report_id"] == "18" and result["platform"] == "mastodon"
        other = json.dumps({"event": "account.created", "object": {}}).encode()
        ignored = anonymous.post(
            "/v1/intake/mastodon",
            content=other,
            headers={"X-Hub-Signature": _sign(b"s3cret", other)},
        )
        assert ignored.json()["ignored"] == "account.created"
    finally:
        anonymous.close()
    stored = s.client("reports:read").get("/v1/reports/mastodon/18").json()
    assert stored["report"]["reporter_id"] == "other.example"


def test_ids_with_slashes_can_be_read_back(serve: Start) -> None:
    s = serve()
    uri = "at://did:plc:x/app.bsky.feed.post/3k"
    s.client("reports:write").post(
        "/v1/reports", json={**report(1, "a", uri, 0), "report_id": "a/b"}
    )
    read = s.client("reports:read")
    assert read.get("/v1/reports/mastodon/a/b").json()["report"]["target_id"] == uri
    assert read.get(f"/v1/targets/mastodon/{uri}").json()["target_id"] == uri


@pytest.mark.parametrize(
    ("format_", "name"),
    [("atproto", "atproto.jsonl"), ("synapse", "synapse.json"), ("lemmy", "lemmy.json")],
)
def test_moderation_formats_are_taken_in_as_ingest_reads_them(
    serve: Start, format_: str, name: str
) -> None:
    s = serve()
    body = (MODERATION / name).read_bytes()
    r = s.client("reports:write").post(f"/v1/intake/{format_}", content=body)
    assert r.status_code == 200
    assert r.json()["accepted"] == 2, r.json()
    broken = s.client("reports:write").post(f"/v1/intake/{format_}", content=b'{"id": "x"}\n[1]\n')
    entries = broken.json()["results"]
    assert [e["ok"] for e in entries] == [False, False]
    assert s.client("reports:write").post("/v1/intake/tiktok", json={}).status_code == 404


def test_a_path_no_route_matches_is_answered_as_json(serve: Start) -> None:
    """An id Starlette cannot route (a newline in it, as schemathesis sent) and an
    unknown path get the JSON error every other answer uses, not a text 404."""
    s = serve()
    reader = s.client("reports:read")
    for path in ("/v1/reports/x/a%0Ab/c", "/v1/nothing-here"):
        r = reader.get(path)
        assert r.status_code == 404 and r.headers["content-type"] == "application/json"
        assert r.json()["error"]["status"] == 404
    r = reader.delete("/v1/reports")
    assert r.status_code == 405 and r.json()["error"]["reason"] == "method not allowed"


def test_a_batch_with_targets_once_shows_each_target_once(serve: Start) -> None:
    s = serve()
    c = s.client("reports:write")
    rows = [report(1, "a", "t", 0), report(2, "b", "u", 1), report(3, "c", "t", 2)]
    r = c.post("/v1/reports/batch?targets=once", json=[*rows, {"report_id": "bad"}])
    assert r.status_code == 200
    body = r.json()
    assert (body["accepted"], body["refused"]) == (3, 1)
    assert all("target" not in x for x in body["results"])
    assert [(v["target_id"], v["reports"]) for v in body["targets"]] == [("t", 2), ("u", 1)]
    now = s.client("reports:read").get("/v1/targets/mastodon/t").json()
    assert body["targets"][0] == {k: v for k, v in now.items() if k != "timeline"}
    bad = c.post("/v1/reports/batch?targets=some", json=rows)
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "targets"
