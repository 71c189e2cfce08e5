"""The ASGI app: Starlette routes, msgspec JSON, one :class:`Guard` per process.

Every route but ``/healthz`` and the static page ``/`` needs ``Authorization: Bearer
TOKEN`` with the route's scope (:data:`concerted.service.openapi.ROUTES`). Errors are
JSON ``{"error": {"status", "field", "reason"}}``. The access log names the route
template, never the path, so that no identifier reaches a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import logging
import operator
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from concerted import adapters
from concerted.adapters.base import Reject
from concerted.adapters.moderation import records_to_reports
from concerted.service import ozone, page
from concerted.service.auth import RateLimiter, Token, TokenStore
from concerted.service.base import IntakeLog, Outcome
from concerted.service.bodies import (
    BadRequest,
    Candidate,
    ItemError,
    candidates,
    parse_batch,
    parse_one,
    read_batch,
)
from concerted.service.hindsight import Hindsight
from concerted.service.intake import Accepted, Guard, NewAnswers, NotReady
from concerted.service.logs import open_log
from concerted.service.metrics import Metrics
from concerted.service.openapi import ROUTES, document
from concerted.service.settings import ServiceSettings
from concerted.service.state import GuardState

__all__ = ["HTTPError", "create_app", "encode_batch", "encode_batch_once"]

access = logging.getLogger("concerted.service.access")
log = logging.getLogger("concerted.service")
_encode = msgspec.json.Encoder().encode


class HTTPError(Exception):
    """An error answered as JSON with ``status``."""

    def __init__(
        self,
        status: int,
        reason: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.field = field
        self.headers = headers or {}


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encode(value), status, headers, media_type="application/json")


def _error(exc: HTTPError) -> Response:
    body = {"error": {"status": exc.status, "field": exc.field, "reason": exc.reason}}
    return _json(body, exc.status, exc.headers)


@dataclass
class _Service:
    settings: ServiceSettings
    tokens: TokenStore
    limiter: RateLimiter
    log: IntakeLog
    guard: Guard
    metrics: Metrics
    hindsight: Hindsight


Handler = Callable[[Request, _Service, Token | None], Awaitable[Response]]


def _endpoint(method: str, path: str, scope: str | None) -> Callable[[Handler], Route]:
    """The route at ``path``: auth, rate limit, metrics and error mapping around it."""

    def wrap(handler: Handler) -> Route:
        async def endpoint(request: Request) -> Response:
            began = time.perf_counter()
            service: _Service = request.app.state.service
            try:
                token = (
                    _authorise(request, service, scope)
                    if scope not in (None, "signature")
                    else None
                )
                response = await handler(request, service, token)
            except HTTPError as exc:
                response = _error(exc)
            except NotReady as exc:
                response = _error(HTTPError(503, str(exc)))
            except BadRequest as exc:
                response = _error(HTTPError(400, str(exc)))
            except Exception as exc:
                # The type only: a message may quote a report.
                log.error("%s %s failed: %s", method, path, type(exc).__name__)
                response = _error(HTTPError(500, "internal error"))
            elapsed = time.perf_counter() - began
            service.metrics.requests.labels(path, method, str(response.status_code)).inc()
            service.metrics.latency.labels(path).observe(elapsed)
            access.info("%s %s %d %.1fms", method, path, response.status_code, elapsed * 1e3)
            return response

        # Ids may hold slashes (an at:// URI is a Bluesky target).
        routed = path.replace("{report_id}", "{report_id:path}")
        return Route(routed.replace("{target_id}", "{target_id:path}"), endpoint, methods=[method])

    return wrap


def _authorise(request: Request, service: _Service, scope: str) -> Token:
    header = request.headers.get("authorization", "")
    kind, _, secret = header.partition(" ")
    if kind.lower() != "bearer" or not secret.strip():
        raise HTTPError(401, "needs Authorization: Bearer TOKEN", headers=_CHALLENGE)
    token = service.tokens.check(secret.strip())
    if token is None:
        raise HTTPError(401, "unknown token", headers=_CHALLENGE)
    if scope != "any" and not token.allows(scope):
        raise HTTPError(403, f"the token lacks scope {scope}")
    wait = service.limiter.wait(token.id)
    if wait > 0:
        retry = RateLimiter.retry_after(wait)
        raise HTTPError(429, "over this token's rate", headers={"Retry-After": retry})
    return token


_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def _body(request: Request, limit: int) -> bytes:
    """The body, or 413 as soon as it passes ``limit`` bytes."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise HTTPError(413, f"the body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# Routes ---------------------------------------------------------------------------


@_endpoint("POST", "/v1/reports", "reports:write")
async def post_report(request: Request, s: _Service, _: Token | None) -> Response:
    value = parse_one(await _body(request, s.settings.max_body))
    if isinstance(value, list):
        raise HTTPError(400, "one report is a JSON object; send arrays to /v1/reports/batch")
    (answer,) = await s.guard.submit_reports([value])
    if isinstance(answer, ItemError):
        raise HTTPError(422, answer.reason, answer.field)
    return _json(answer)


@_endpoint("POST", "/v1/reports/batch", "reports:write")
async def post_batch(request: Request, s: _Service, _: Token | None) -> Response:
    targets = request.query_params.get("targets", "each")
    if targets not in ("each", "once"):
        raise HTTPError(422, "targets is each (the default) or once", "targets")
    items = read_batch(await _body(request, s.settings.max_batch_body))
    if len(items) > s.settings.max_batch:
        raise HTTPError(413, f"a batch holds at most {s.settings.max_batch} reports")
    return await _answer_batch(s, items, targets == "once")


async def _answer_batch(s: _Service, items: list[Candidate], once: bool = False) -> Response:
    answers = await s.guard.submit(items, compact=once)
    body = encode_batch_once(answers) if once else encode_batch(answers)
    return Response(body, media_type="application/json")


#: Keys of a batch answer's own: a result holding one is encoded the plain way.
_OWN = frozenset(("ok", "index", "repeat", "offset"))


def _accepted(index: int, answer: Accepted, encoded: bytes, without: str | None = None) -> bytes:
    """An accepted report's entry in a batch's answer: ``encoded`` (its result as JSON,
    less the key ``without``) spliced in between the entry's own keys, or, when that is
    empty or the result holds one of them, the whole entry encoded the plain way."""
    inner = encoded[1:-1]
    if inner and (answer.target is not None or _OWN.isdisjoint(answer.result)):
        return b'{"ok":true,"index":%d,%b,"repeat":%b,"offset":%d}' % (
            index,
            inner,
            b"true" if answer.repeat else b"false",
            answer.offset,
        )
    fields = {k: v for k, v in answer.result.items() if k != without}
    plain = {"ok": True, "index": index, **fields, "repeat": answer.repeat}
    return _encode({**plain, "offset": answer.offset})


def encode_batch(answers: Sequence[Accepted | ItemError]) -> bytes:
    """A batch's answer as JSON: ``{"accepted", "refused", "results"}``, each result
    ``{"ok": true, "index", ...the result..., "repeat", "offset"}`` or ``{"ok": false,
    "index", "error"}``. Each result's JSON (made once, for the log too) is spliced in
    as it is rather than encoded again (a test holds this to encoding the dicts).

    >>> a = Accepted({"score": 0.5}, b'{"score":0.5}', 7, False)
    >>> encode_batch([a, ItemError("ts", "bad")]).decode()
    '{"accepted":1,"refused":1,"results":[{"ok":true,"index":0,"score":0.5,\
"repeat":false,"offset":7},{"ok":false,"index":1,"error":{"field":"ts","reason":"bad"}}]}'
    """
    parts: list[bytes] = []
    refused = 0
    for index, answer in enumerate(answers):
        if isinstance(answer, ItemError):
            refused += 1
            parts.append(_encode({"ok": False, "index": index, "error": answer.as_dict()}))
            continue
        parts.append(_accepted(index, answer, answer.encoded))
    return b'{"accepted":%d,"refused":%d,"results":[%b]}' % (
        len(answers) - refused,
        refused,
        b",".join(parts),
    )


def encode_batch_once(answers: Sequence[Accepted | ItemError]) -> bytes:
    """The batch's answer with ``targets=once``: :func:`encode_batch`'s, each result
    without its ``target``, and ``"targets"``: each target's view once (the last any
    result of the batch showed), in the order the results first name them.

    >>> a = Accepted({"platform": "x", "target_id": "t", "score": 0.5,
    ...               "target": {"reports": 1}}, b"", 7, False)
    >>> encode_batch_once([a]).decode()
    '{"accepted":1,"refused":0,"results":[{"ok":true,"index":0,"platform":"x",\
"target_id":"t","score":0.5,"repeat":false,"offset":7}],"targets":[{"reports":1}]}'
    """
    if isinstance(answers, NewAnswers):
        return _encode_new_once(answers)
    parts: list[bytes] = []
    targets: dict[tuple[Any, Any], bytes | None] = {}
    refused = 0
    for index, answer in enumerate(answers):
        if isinstance(answer, ItemError):
            refused += 1
            parts.append(_encode({"ok": False, "index": index, "error": answer.as_dict()}))
            continue
        target, bare, view = answer.target, answer.bare, answer.view
        if target is not None and bare is not None and len(bare) > 2:
            # A result the guard made now: its keys are known, it is not read.
            if view is not None:
                targets[target] = view
            elif target not in targets:
                targets[target] = None
            parts.append(
                b'{"ok":true,"index":%d,%b,"repeat":%b,"offset":%d}'
                % (index, bare[1:-1], b"true" if answer.repeat else b"false", answer.offset)
            )
            continue
        result = answer.result
        if bare is None:
            bare = _encode({k: v for k, v in result.items() if k != "target"})
        if view is None and answer.target is None and "target" in result:
            view = _encode(result["target"])
        key = answer.target or (result.get("platform"), result.get("target_id"))
        if view is not None:
            targets[key] = view
        elif key not in targets:  # its place: where the results first name it
            targets[key] = None
        parts.append(_accepted(index, answer, bare, without="target"))
    return b'{"accepted":%d,"refused":%d,"results":[%b],"targets":[%b]}' % (
        len(answers) - refused,
        refused,
        b",".join(parts),
        b",".join(v for v in targets.values() if v is not None and v != b"null"),
    )


def _encode_new_once(answers: NewAnswers) -> bytes:
    """:func:`encode_batch_once` of a batch whose every report was new, from the
    group's columns, each step mapped in C (no answer made one by one): the same
    bytes."""
    encoded, offsets, keys, views = answers.columns()
    parts = map(
        b'{"ok":true,"index":%d,%b,"repeat":false,"offset":%d}'.__mod__,
        zip(range(len(encoded)), map(_INNER, encoded), offsets, strict=True),
    )
    # Each target where the results first name it, with the last view shown of it (a
    # view is JSON text, never empty: compress keeps the answers that show one).
    targets: dict[tuple[str, str], bytes | None] = dict.fromkeys(keys)
    targets.update(itertools.compress(zip(keys, views, strict=True), views))
    return b'{"accepted":%d,"refused":0,"results":[%b],"targets":[%b]}' % (
        len(encoded),
        b",".join(parts),
        b",".join(filter(None, targets.values())),
    )


#: A result's JSON object without its braces.
_INNER = operator.itemgetter(slice(1, -1))


@_endpoint("GET", "/v1/reports/{platform}/{report_id}", "reports:read")
async def get_report(request: Request, s: _Service, _: Token | None) -> Response:
    platform = str(request.path_params["platform"]).strip().lower()
    report_id = str(request.path_params["report_id"]).strip()
    found = await asyncio.to_thread(s.log.lookup, [(platform, report_id)])
    entry = found.get((platform, report_id))
    if entry is None:
        raise HTTPError(404, "no such report in the log")
    outcome = await asyncio.to_thread(s.log.outcome, platform, report_id)
    # The first result; its target's view as it is now (the log keeps none).
    result = {k: v for k, v in entry.record.result.items() if k != "target"}
    view = s.guard.state.view(entry.record.platform, entry.record.target_id)
    return _json(
        {
            "offset": entry.offset,
            "report": entry.record.report,
            "result": {**result, "target": view, "offset": entry.offset},
            "outcome": None if outcome is None else outcome.outcome,
        }
    )


@_endpoint("GET", "/v1/targets", "reports:read")
async def get_targets(request: Request, s: _Service, _: Token | None) -> Response:
    state = request.query_params.get("state", "review")
    if state != "review":
        raise HTTPError(422, "only state=review is listed", "state")
    limit_text = request.query_params.get("limit", "100")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 1000:
        raise HTTPError(422, "limit is a whole number from 1 to 1000", "limit")
    _ready(s)
    return _json({"targets": s.guard.state.under_review(int(limit_text))})


@_endpoint("GET", "/v1/targets/{platform}/{target_id}", "reports:read")
async def get_target(request: Request, s: _Service, _: Token | None) -> Response:
    _ready(s)
    platform = str(request.path_params["platform"]).strip().lower()
    target = s.guard.state.target(platform, str(request.path_params["target_id"]).strip())
    if target is None:
        raise HTTPError(404, "no live state for this target")
    return _json(target)


class _OutcomeBody(msgspec.Struct, forbid_unknown_fields=True):
    platform: str
    report_id: str
    outcome: str
    decided_at: str | None = None


@_endpoint("POST", "/v1/outcomes", "admin")
async def post_outcome(request: Request, s: _Service, _: Token | None) -> Response:
    body = await _body(request, s.settings.max_body)
    parse_one(body)
    try:
        value = msgspec.json.decode(body, type=_OutcomeBody)
    except msgspec.ValidationError as exc:
        named = re.search(r"field `(\w+)`|`\$\.(\w+)`", str(exc))
        raise HTTPError(422, str(exc), named and (named[1] or named[2])) from None
    if value.outcome not in ("upheld", "rejected"):
        raise HTTPError(422, "outcome is upheld or rejected", "outcome")
    if value.decided_at is not None:
        try:
            decided = datetime.fromisoformat(value.decided_at)
        except ValueError:
            decided = None
        if decided is None or decided.tzinfo is None:
            raise HTTPError(422, "decided_at is an ISO 8601 time with an offset", "decided_at")
    outcome = Outcome(
        value.platform.strip().lower(), value.report_id.strip(), value.outcome, value.decided_at
    )
    if not await s.guard.submit_outcome(outcome):
        raise HTTPError(404, "no such report in the log")
    # Stored, and counted in the reporter's reputation from decision_lag after the
    # report's time, as the batch scorer counts a report's outcome.
    return _json({"stored": True, "feeds_reputation": True})


_FORMATS = ("atproto", "synapse", "lemmy")


async def _intake(s: _Service, format_: str, records: list[Any]) -> Response:
    """Records of a moderation tool's format, mapped by its adapter's own SELECT (as
    `concerted ingest --format` maps them), then taken in as a batch."""
    if len(records) > s.settings.max_batch:
        raise HTTPError(413, f"a batch holds at most {s.settings.max_batch} reports")
    parsed = [r for r in records if not isinstance(r, ItemError)]
    mapped = iter(await asyncio.to_thread(_map, format_, parsed) if parsed else [])
    items: list[Any] = []
    for record in records:
        if isinstance(record, ItemError):
            items.append(record)
            continue
        one = next(mapped)
        items.append(ItemError(None, one.reason) if isinstance(one, Reject) else one)
    return await _answer_batch(s, candidates(items))


def _map(format_: str, records: list[Any]) -> list[dict[str, Any] | Reject | ItemError]:
    """The records mapped by the format's adapter; if the mapping fails on the whole
    batch, record by record, so that one it cannot read is that record's error only."""
    adapter = adapters.get(format_)
    try:
        return list(records_to_reports(adapter, records))
    except Exception:
        if len(records) == 1:
            return [ItemError(None, f"the record cannot be read as {format_}")]
    return [one for r in records for one in _map(format_, [r])]


@_endpoint("POST", "/v1/intake/mastodon", "signature")
async def post_mastodon(request: Request, s: _Service, _: Token | None) -> Response:
    secret = s.settings.mastodon_secret()
    if secret is None:
        raise HTTPError(404, "no Mastodon webhook secret is set up (docs/service.md)")
    body = await _body(request, s.settings.max_body)
    given = request.headers.get("x-hub-signature", "")
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPError(401, "X-Hub-Signature does not match the body")
    wait = s.limiter.wait("mastodon-webhook")
    if wait > 0:
        raise HTTPError(
            429, "over the webhook's rate", headers={"Retry-After": RateLimiter.retry_after(wait)}
        )
    event = parse_one(body)
    if not isinstance(event, dict) or not str(event.get("event", "")).startswith("report."):
        kind = event.get("event") if isinstance(event, dict) else None
        return _json({"accepted": 0, "refused": 0, "results": [], "ignored": str(kind)})
    return await _intake(s, "mastodon", [event])


@_endpoint("POST", "/v1/intake/{format}", "reports:write")
async def post_intake(request: Request, s: _Service, _: Token | None) -> Response:
    format_ = str(request.path_params["format"])
    if format_ not in _FORMATS:
        raise HTTPError(404, f"no intake format {format_!r}; formats: {', '.join(_FORMATS)}")
    body = await _body(request, s.settings.max_batch_body)
    # One JSON object (a webhook's body), an array of them, or NDJSON.
    try:
        whole = msgspec.json.decode(body)
    except msgspec.DecodeError:
        whole = None
    records = [whole] if isinstance(whole, dict) else parse_batch(body)
    return await _intake(s, format_, records)


@_endpoint("GET", "/healthz", None)
async def healthz(request: Request, s: _Service, _: Token | None) -> Response:
    return _json({"status": "ok"})


@_endpoint("GET", "/readyz", "any")
async def readyz(request: Request, s: _Service, _: Token | None) -> Response:
    _ready(s)
    return _json({"ready": True, "offset": s.guard.state.offset})


@_endpoint("GET", "/metrics", "admin")
async def metrics(request: Request, s: _Service, _: Token | None) -> Response:
    return Response(s.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


@_endpoint("GET", "/openapi.json", "any")
async def openapi(request: Request, s: _Service, _: Token | None) -> Response:
    return _json(document())


@_endpoint("GET", "/v1/ozone/events", "reports:read")
async def ozone_events(request: Request, s: _Service, _: Token | None) -> Response:
    if s.settings.ozone_did is None:
        raise HTTPError(404, "Ozone write-back is not set up: [service] ozone_did")
    values = {}
    for name, default, top in (("after", "0", None), ("limit", "100", 1000)):
        text = request.query_params.get(name, default)
        if not text.isdigit() or (top is not None and not 1 <= int(text) <= top):
            limits = f"from 1 to {top}" if top else "0 or more"
            raise HTTPError(422, f"{name} is a whole number {limits}", name)
        values[name] = int(text)
    found, last = await asyncio.to_thread(
        ozone.page,
        s.log,
        values["after"],
        values["limit"],
        s.settings.ozone_did,
        s.settings.ozone_platform,
    )
    return _json({"events": found, "next": last})


@_endpoint("GET", "/", None)
async def moderator_page(request: Request, s: _Service, _: Token | None) -> Response:
    headers = {
        "Content-Security-Policy": page.CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    return Response(page.PAGE, media_type="text/html; charset=utf-8", headers=headers)


@_endpoint("POST", "/v1/admin/reanalyse", "admin")
async def post_reanalyse(request: Request, s: _Service, _: Token | None) -> Response:
    _ready(s)
    run = await s.hindsight.run_once()
    return _json(run.as_dict())


def _ready(s: _Service) -> None:
    if not s.guard.ready:
        reason = "the intake log failed" if s.guard.failed else "replaying the log"
        raise HTTPError(503, f"not ready: {reason}")


_ROUTES = [
    post_report,
    post_batch,
    get_report,
    get_targets,
    get_target,
    post_outcome,
    post_mastodon,
    post_intake,
    healthz,
    readyz,
    metrics,
    openapi,
    ozone_events,
    moderator_page,
    post_reanalyse,
]
assert [(r.path.replace(":path}", "}"), sorted(r.methods or ())) for r in _ROUTES] == [
    (p, sorted({m, "HEAD"} if m == "GET" else {m})) for m, p, _, _ in ROUTES
]


def _report_start(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("replaying the log failed: %s", type(task.exception()).__name__)


def create_app(settings: ServiceSettings, *, freeze_gc: bool = False) -> Starlette:
    """The service over state directory ``settings.state``; it opens the log, restores
    the snapshot and replays the log when it starts (``/readyz`` says when done).
    ``freeze_gc`` keeps the live state out of the garbage collector's full passes
    (:meth:`Guard._settle`); the server process sets it, tests in one process do not."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        settings.state.mkdir(parents=True, exist_ok=True)
        tokens = TokenStore(settings.token_file)
        if not len(tokens):
            log.warning("no tokens in the token file: every request but /healthz gets 401")
        intake_log = await asyncio.to_thread(open_log, settings.log, settings.state)
        state = await asyncio.to_thread(
            GuardState.load, settings.snapshot_file, settings.scoring, settings.pair_memory
        )
        guard = Guard(
            intake_log,
            state,
            snapshot=settings.snapshot_file,
            snapshot_every=settings.snapshot_every,
            freeze_gc=freeze_gc,
        )
        app.state.service = _Service(
            settings,
            tokens,
            RateLimiter(rate=settings.rate, burst=settings.burst),
            intake_log,
            guard,
            Metrics(guard),
            Hindsight(intake_log, state, span_s=settings.reanalyse_span),
        )
        starting = asyncio.create_task(guard.start())
        starting.add_done_callback(_report_start)
        reanalysing: asyncio.Task[None] | None = None
        if settings.reanalyse_every is not None:
            every = settings.reanalyse_every

            async def reanalyse() -> None:
                await starting  # after the replay
                await app.state.service.hindsight.run_every(every)

            reanalysing = asyncio.create_task(reanalyse(), name="concerted-hindsight")
        pushing: asyncio.Task[None] | None = None
        if settings.ozone_url is not None and settings.ozone_did is not None:
            pusher = ozone.Pusher(
                intake_log,
                settings.ozone_url,
                settings.ozone_did,
                settings.state / "ozone.cursor",
                token=settings.ozone_token(),
                platform=settings.ozone_platform,
            )
            app.state.pusher = pusher
            pushing = asyncio.create_task(pusher.run(), name="concerted-ozone")
        try:
            yield
        finally:
            if reanalysing is not None:
                reanalysing.cancel()
                with contextlib.suppress(BaseException):
                    await reanalysing
            if pushing is not None:
                pushing.cancel()
                with contextlib.suppress(BaseException):
                    await pushing
            with contextlib.suppress(Exception):
                await starting
            await guard.stop()
            intake_log.close()

    return Starlette(
        routes=list(_ROUTES),
        lifespan=lifespan,
        exception_handlers={404: _unrouted, 405: _unrouted},
    )


async def _unrouted(request: Request, exc: Exception) -> Response:
    """A path no route matches (an id Starlette cannot route, say), or a method a route
    does not take: answered as JSON, as every other error is."""
    status = int(getattr(exc, "status_code", 404))
    reason = "no such endpoint" if status == 404 else "method not allowed"
    return _error(HTTPError(status, reason))
