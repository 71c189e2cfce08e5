"""schemathesis against ``/openapi.json`` of a running service: for requests drawn from
the document (valid and not), no answer is a 5xx, and every answer's status, content
type, headers and body are those the document declares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from concerted.service.openapi import ROUTES, document
from tests.service.conftest import Start, brigade_stream

_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.mark.slow
def test_no_5xx_and_no_answer_outside_the_document(serve: Start, tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "mastodon.secret").write_text("secret")
    s = serve(state=state, rate=1e6, burst=10**6)
    # Some state, so that reads find reports and targets in review.
    s.client("reports:write").post("/v1/reports/batch", json=brigade_stream(60))
    served = s.client().get("/openapi.json").json()
    assert served == document()
    schema = schemathesis.openapi.from_dict(served)
    headers = {"Authorization": f"Bearer {s.tokens['admin']}"}
    results: list[Any] = list(schema.get_all_operations())
    operations = [result.ok() for result in results]
    assert len(operations) == len(ROUTES)
    for operation in operations:
        strategy: Any = operation.as_strategy()

        @given(case=strategy, auth=st.sampled_from([True, True, True, False]))
        @settings(
            max_examples=40,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any, auth: bool) -> None:
            case.call_and_validate(
                base_url=s.url, headers=headers if auth else {}, checks=_CHECKS, timeout=30
            )

        check()


def test_a_record_the_mapping_cannot_read_is_its_own_error(serve: Start) -> None:
    """Found by schemathesis: an empty object made the whole intake answer 500."""
    s = serve()
    rows = [{}, {"id": 1, "reasonType": "spam"}]
    for format_ in ("atproto", "synapse", "lemmy"):
        r = s.client("reports:write").post(f"/v1/intake/{format_}", json=rows)
        assert r.status_code == 200, format_
        assert r.json()["accepted"] == 0 and r.json()["refused"] == 2
