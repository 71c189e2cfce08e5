"""The OpenAPI document served at ``/openapi.json``; a test checks that its paths and
methods are exactly the app's routes."""

from __future__ import annotations

from typing import Any

from concerted import __version__
from concerted.service.bodies import CONTRACT

__all__ = ["ROUTES", "document"]

#: (method, path, scope or None for no token, summary): every route of the app.
ROUTES: tuple[tuple[str, str, str | None, str], ...] = (
    ("POST", "/v1/reports", "reports:write", "Score, store and learn one report."),
    ("POST", "/v1/reports/batch", "reports:write", "A JSON array or NDJSON of reports."),
    ("GET", "/v1/reports/{platform}/{report_id}", "reports:read", "A stored report."),
    ("GET", "/v1/targets", "reports:read", "The targets in review now."),
    ("GET", "/v1/targets/{platform}/{target_id}", "reports:read", "One target's state now."),
    ("POST", "/v1/outcomes", "admin", "Store a moderator's decision on a report."),
    (
        "POST",
        "/v1/intake/mastodon",
        "signature",
        "A Mastodon report webhook, signed X-Hub-Signature (no bearer token).",
    ),
    (
        "POST",
        "/v1/intake/{format}",
        "reports:write",
        "Reports in a moderation tool's format: atproto, synapse or lemmy.",
    ),
    ("GET", "/healthz", None, "The process is up."),
    ("GET", "/readyz", "any", "The log is replayed and intake is open."),
    ("GET", "/metrics", "admin", "Prometheus metrics."),
    ("GET", "/openapi.json", "any", "This document."),
    (
        "GET",
        "/v1/ozone/events",
        "reports:read",
        "tools.ozone.moderation.emitEvent bodies for the flagged reports, by log offset.",
    ),
    (
        "GET",
        "/",
        None,
        "The moderator's page: static, no data; it asks /v1/targets with a token.",
    ),
    (
        "POST",
        "/v1/admin/reanalyse",
        "admin",
        "Run hindsight now: the batch brigade stage over the log's recent reports; the "
        "targets of the brigades it finds are marked for review (source: hindsight).",
    ),
)

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "reason"],
            "properties": {
                "status": {"type": "integer"},
                "field": {"type": ["string", "null"]},
                "reason": {"type": "string"},
            },
        }
    },
}


def _report_schema() -> dict[str, Any]:
    props: dict[str, Any] = {}
    for c in CONTRACT.columns:
        if c.name == "extra":
            props[c.name] = {"type": ["object", "null"], "description": c.doc}
        elif c.type == "TIMESTAMPTZ":
            props[c.name] = {
                "type": ["string", "number", "null"],
                "description": c.doc + " ISO 8601 with an offset, or epoch seconds.",
            }
        else:
            schema: dict[str, Any] = {"type": ["string", "number", "null"], "description": c.doc}
            if c.choices:
                schema["description"] += f" One of: {', '.join(c.choices)}."
            props[c.name] = schema
    required = [c.name for c in CONTRACT.columns if c.required and c.default is None]
    return {
        "type": "object",
        "required": required,
        "properties": props,
        "additionalProperties": False,
    }


_TARGET = {
    "type": "object",
    "properties": {
        "platform": {"type": "string"},
        "target_id": {"type": "string"},
        "state": {"type": "string", "enum": ["review", "normal"]},
        "reports": {"type": "integer"},
        "sources": {
            "type": "array",
            "description": "What holds the target in review: online (its reports' scores, "
            "counted in signals) and hindsight (a brigade the batch stage found, described "
            "in hindsight).",
            "items": {"type": "string", "enum": ["online", "hindsight"]},
        },
        "hindsight": {
            "oneOf": [{"$ref": "#/components/schemas/HindsightMark"}, {"type": "null"}],
        },
        "first_report": {"type": ["string", "null"]},
        "latest_report": {"type": ["string", "null"]},
        "last_flagged": {"type": ["string", "null"]},
        "recommendations": {"type": "object", "additionalProperties": {"type": "integer"}},
        "co_reporters": {"type": "array", "items": {"type": "string"}},
        "signals": {
            "type": "object",
            "description": "Online signals: how many of its flagged reports showed each.",
            "additionalProperties": {"type": "integer"},
        },
        "timeline": {
            "type": "array",
            "description": "The latest reports (at most 200): [time, recommendation]. "
            "Listed by /v1/targets only, not in a report's result.",
            "items": {"type": "array", "items": {"type": "string"}},
        },
    },
}

_RESULT = {
    "type": "object",
    "required": ["report_id", "platform", "score", "recommendation", "signals", "offset"],
    "properties": {
        "report_id": {"type": "string"},
        "platform": {"type": "string"},
        "target_id": {"type": "string"},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "recommendation": {"type": "string", "enum": ["count", "review", "discount"]},
        "signals": {"type": "array", "items": {"type": "string"}},
        "features": {"type": "object", "additionalProperties": {"type": "number"}},
        "target": {
            "description": "The target's view: for a new report, as it stood right after "
            "the report was learnt; for a repeat and a stored report, as it stands now "
            "(null when nothing is known of the target any more). The score, "
            "recommendation, signals and features are always the first result's. Left "
            "out of a batch's results with targets=once.",
            "oneOf": [{"$ref": "#/components/schemas/Target"}, {"type": "null"}],
        },
        "offset": {"type": "integer"},
        "repeat": {"type": "boolean"},
    },
}


#: The query parameter of the listing endpoints: how many items a page holds.
_LIMIT = {
    "name": "limit",
    "in": "query",
    "required": False,
    "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
}


def _json(ref: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def _errors(*codes: int) -> dict[str, Any]:
    reasons = {
        400: "Not JSON.",
        401: "No or unknown bearer token.",
        403: "The token lacks the scope.",
        404: "Not found.",
        413: "Body or batch over the limit.",
        422: "Breaks the contract; `field` names the field.",
        429: "Over the token's rate; see Retry-After.",
        503: "Not ready (replaying the log) or the log failed.",
    }
    return {str(c): {"description": reasons[c], **_json("Error")} for c in codes}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the service."""
    auth: list[dict[str, list[str]]] = [{"bearer": []}]
    path_params = {
        name: {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in ("platform", "report_id", "target_id")
    }
    common = (401, 403, 429)
    paths: dict[str, Any] = {
        "/v1/reports": {
            "post": {
                "summary": ROUTES[0][3],
                "security": auth,
                "requestBody": {"required": True, **_json("Report")},
                "responses": {
                    "200": {"description": "Scored and durable.", **_json("Result")},
                    **_errors(400, *common, 413, 422, 503),
                },
            }
        },
        "/v1/reports/batch": {
            "post": {
                "summary": ROUTES[1][3],
                "security": auth,
                "parameters": [
                    {
                        "name": "targets",
                        "in": "query",
                        "required": False,
                        "description": "each (the default): every result holds its "
                        "target's view; once: no result does, and the answer's targets "
                        "list each target's view once, the last any result of the batch "
                        "would have shown.",
                        "schema": {"type": "string", "enum": ["each", "once"]},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/Report"},
                            }
                        },
                        "application/x-ndjson": {"schema": {"type": "string"}},
                    },
                },
                "responses": {
                    "200": {
                        "description": "One entry per report, in order.",
                        **_json("BatchResult"),
                    },
                    **_errors(400, *common, 413, 422, 503),
                },
            }
        },
        "/v1/reports/{platform}/{report_id}": {
            "get": {
                "summary": ROUTES[2][3],
                "security": auth,
                "parameters": [path_params["platform"], path_params["report_id"]],
                "responses": {
                    "200": {
                        "description": "The report and its first result (the target's "
                        "view as it stands now).",
                        **_json("StoredReport"),
                    },
                    **_errors(*common, 404),
                },
            }
        },
        "/v1/targets": {
            "get": {
                "summary": ROUTES[3][3],
                "security": auth,
                "parameters": [
                    {
                        "name": "state",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["review"]},
                    },
                    _LIMIT,
                ],
                "responses": {
                    "200": {
                        "description": "Targets in review, latest flagged first.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "targets": {
                                            "type": "array",
                                            "items": {"$ref": "#/components/schemas/Target"},
                                        }
                                    },
                                }
                            }
                        },
                    },
                    **_errors(*common, 422, 503),
                },
            }
        },
        "/v1/targets/{platform}/{target_id}": {
            "get": {
                "summary": ROUTES[4][3],
                "security": auth,
                "parameters": [path_params["platform"], path_params["target_id"]],
                "responses": {
                    "200": {"description": "The target's state.", **_json("Target")},
                    **_errors(*common, 404, 503),
                },
            }
        },
        "/v1/outcomes": {
            "post": {
                "summary": ROUTES[5][3],
                "security": auth,
                "requestBody": {"required": True, **_json("Outcome")},
                "responses": {
                    "200": {"description": "Stored durably."},
                    **_errors(400, *common, 404, 413, 422, 503),
                },
            }
        },
        "/v1/intake/mastodon": {
            "post": {
                "summary": ROUTES[6][3],
                "security": [],
                "parameters": [
                    {
                        "name": "X-Hub-Signature",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^sha256=[0-9a-f]{64}$"},
                    }
                ],
                "requestBody": {"required": True, "content": {"application/json": {}}},
                "responses": {
                    "200": {"description": "One entry per report.", **_json("BatchResult")},
                    **_errors(400, 401, 404, 413, 429, 503),
                },
            }
        },
        "/v1/intake/{format}": {
            "post": {
                "summary": ROUTES[7][3],
                "security": auth,
                "parameters": [
                    {
                        "name": "format",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": ["atproto", "synapse", "lemmy"]},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {}, "application/x-ndjson": {}},
                },
                "responses": {
                    "200": {"description": "One entry per report.", **_json("BatchResult")},
                    **_errors(400, *common, 404, 413, 503),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": ROUTES[8][3],
                "security": [],
                "responses": {"200": {"description": "Up."}},
            }
        },
        "/readyz": {
            "get": {
                "summary": ROUTES[9][3],
                "security": auth,
                "responses": {"200": {"description": "Ready."}, **_errors(*common, 503)},
            }
        },
        "/metrics": {
            "get": {
                "summary": ROUTES[10][3],
                "security": auth,
                "responses": {
                    "200": {"description": "Prometheus text.", "content": {"text/plain": {}}},
                    **_errors(*common),
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": ROUTES[11][3],
                "security": auth,
                "responses": {"200": {"description": "OpenAPI 3.1."}, **_errors(*common)},
            }
        },
        "/v1/ozone/events": {
            "get": {
                "summary": ROUTES[12][3],
                "security": auth,
                "parameters": [
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 0},
                    },
                    _LIMIT,
                ],
                "responses": {
                    "200": {
                        "description": "Events of the reports after `after`; ask after `next`.",
                        **_json("OzoneEvents"),
                    },
                    **_errors(*common, 404, 422),
                },
            }
        },
        "/": {
            "get": {
                "summary": ROUTES[13][3],
                "security": [],
                "responses": {"200": {"description": "HTML.", "content": {"text/html": {}}}},
            }
        },
        "/v1/admin/reanalyse": {
            "post": {
                "summary": ROUTES[14][3],
                "description": "Runs at once (one run at a time: a call during a run waits "
                "for it, then runs again). `concerted serve` runs it on a schedule with "
                "`reanalyse_every` in [service]. No body.",
                "security": auth,
                "responses": {
                    "200": {"description": "What the run did.", **_json("Reanalysis")},
                    **_errors(*common, 503),
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "concerted serve",
            "version": __version__,
            "description": "The report-queue guard: scores every report as it arrives.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Report": _report_schema(),
                "Result": _RESULT,
                "Target": _TARGET,
                "Error": _ERROR,
                "BatchResult": {
                    "type": "object",
                    "properties": {
                        "accepted": {"type": "integer"},
                        "refused": {"type": "integer"},
                        "results": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "ok": {"type": "boolean"},
                                    "index": {"type": "integer"},
                                },
                            },
                        },
                        "targets": {
                            "type": "array",
                            "description": "With targets=once only: each target's view, once.",
                            "items": {"$ref": "#/components/schemas/Target"},
                        },
                    },
                },
                "StoredReport": {
                    "type": "object",
                    "properties": {
                        "offset": {"type": "integer"},
                        "report": {"type": "object"},
                        "result": {"$ref": "#/components/schemas/Result"},
                        "outcome": {"type": ["string", "null"]},
                    },
                },
                "OzoneEvents": {
                    "type": "object",
                    "required": ["events", "next"],
                    "properties": {
                        "events": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["offset", "body"],
                                "properties": {
                                    "offset": {"type": "integer"},
                                    "body": {"type": "object"},
                                },
                            },
                        },
                        "next": {"type": "integer"},
                    },
                },
                "HindsightMark": {
                    "type": "object",
                    "description": "A brigade the batch stage found on the target.",
                    "required": ["source", "campaign_id", "score", "reporters", "signals"],
                    "properties": {
                        "source": {"type": "string", "enum": ["hindsight"]},
                        "campaign_id": {"type": ["string", "null"]},
                        "score": {"type": "number"},
                        "reporters": {"type": "array", "items": {"type": "string"}},
                        "signals": {
                            "type": "array",
                            "description": "The brigade's signals (detector names).",
                            "items": {"type": "string"},
                        },
                        "first_report": {"type": ["string", "null"]},
                        "latest_report": {"type": ["string", "null"]},
                        "protected": {"type": "boolean"},
                        "found_at": {"type": "string"},
                    },
                },
                "Reanalysis": {
                    "type": "object",
                    "required": ["reports", "brigades", "flagged_brigades", "targets_marked"],
                    "properties": {
                        "reports": {"type": "integer"},
                        "offset": {"type": "integer"},
                        "brigades": {"type": "integer"},
                        "flagged_brigades": {"type": "integer"},
                        "targets_marked": {"type": "integer"},
                        "seconds": {"type": "number"},
                        "finished_at": {"type": ["string", "null"]},
                    },
                },
                "Outcome": {
                    "type": "object",
                    "required": ["platform", "report_id", "outcome"],
                    "additionalProperties": False,
                    "properties": {
                        "platform": {"type": "string"},
                        "report_id": {"type": "string"},
                        "outcome": {"type": "string", "enum": ["upheld", "rejected"]},
                        "decided_at": {"type": ["string", "null"]},
                    },
                },
            },
        },
    }
