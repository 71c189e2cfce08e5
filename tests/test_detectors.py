"""The conformance suite: every registered detector passes these, whatever it detects.

A detector is registered in :mod:`concerted.detectors`; registering it runs it here, on
the planted case of :mod:`tests.planted` (an organic population with its hard
negatives, a planted network and a planted brigade).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted import detectors
from concerted.detectors.base import EDGE_COLUMNS, EVENT_COLUMNS, SIGNAL_COLUMNS, Evidence
from concerted.schema import EVIDENCE_CONTRACTS
from tests.planted import START, Planted, planted_case

PARTS = ("edges", "events", "signals")
_SQL_TYPES = {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}
COLUMNS = {"edges": EDGE_COLUMNS, "events": EVENT_COLUMNS, "signals": SIGNAL_COLUMNS}


def _rows(evidence: Evidence, part: str) -> list[tuple[Any, ...]]:
    """A part's rows, sorted, floats rounded (sums may differ in the last bits)."""
    rows = getattr(evidence, part).fetchall()
    return sorted(
        (tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in rows),
        key=repr,
    )


def _all(evidence: Evidence) -> dict[str, list[tuple[Any, ...]]]:
    return {part: _rows(evidence, part) for part in PARTS}


@pytest.fixture(params=sorted(detectors.available()))
def detector(request: pytest.FixtureRequest) -> detectors.Detector:
    return detectors.get(request.param)


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET memory_limit = '2GB'")
    return con


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = _connect()
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def planted() -> Iterator[tuple[duckdb.DuckDBPyConnection, Planted]]:
    connection = _connect()
    truth = planted_case(connection, seed=4)
    yield connection, truth
    connection.close()


def test_evidence_has_the_contract_columns_and_types(
    detector: detectors.Detector, con: duckdb.DuckDBPyConnection
) -> None:
    planted_case(con)
    evidence = detector.detect(con, "actions")
    found = 0
    for part in PARTS:
        relation = getattr(evidence, part)
        assert relation.columns == list(COLUMNS[part]), part
        types = [str(t) for t in relation.types]
        expected = [_SQL_TYPES.get(c.type, c.type) for c in EVIDENCE_CONTRACTS[part].columns]
        assert types == expected, part
        rows = relation.fetchall()
        found += len(rows)
        assert {row[0] for row in rows} <= {detector.name}, part
    assert found, f"{detector.name} found nothing in the planted case"


def test_signals_are_scored_in_the_unit_interval(
    detector: detectors.Detector, con: duckdb.DuckDBPyConnection
) -> None:
    planted_case(con)
    evidence = detector.detect(con, "actions")
    bad = evidence.signals.filter("score IS NULL OR NOT (score BETWEEN 0 AND 1)").fetchall()
    assert bad == []
    scores = evidence.edges.filter("score IS NOT NULL AND NOT (score BETWEEN 0 AND 1)")
    assert scores.fetchall() == []


def test_empty_in_empty_out(detector: detectors.Detector, con: duckdb.DuckDBPyConnection) -> None:
    planted_case(con, empty=True)
    evidence = detector.detect(con, "actions")
    assert _all(evidence) == {part: [] for part in PARTS}


def test_row_order_does_not_matter(
    detector: detectors.Detector, con: duckdb.DuckDBPyConnection
) -> None:
    planted_case(con, seed=1)
    first = _all(detector.detect(con, "actions"))
    other = _connect()
    try:
        planted_case(other, seed=1, shuffle=True)
        assert _all(detector.detect(other, "actions")) == first
    finally:
        other.close()


def test_deterministic(detector: detectors.Detector, con: duckdb.DuckDBPyConnection) -> None:
    planted_case(con, seed=2)
    assert _all(detector.detect(con, "actions")) == _all(detector.detect(con, "actions"))


def test_never_pairs_an_account_with_itself(
    detector: detectors.Detector, con: duckdb.DuckDBPyConnection
) -> None:
    planted_case(con, seed=3)
    # The same account twice on one object, a second apart: still not a pair.
    con.execute(
        "INSERT INTO actions SELECT actor_id, platform, kind, object_id, "
        "ts + INTERVAL 1 SECOND, source_id || '-again' FROM actions WHERE actor_id = 'm0'"
    )
    evidence = detector.detect(con, "actions")
    for part in ("edges", "events"):
        pairs = getattr(evidence, part).project("platform_1, account_1, platform_2, account_2")
        assert all((p1, a1) < (p2, a2) for p1, a1, p2, a2 in pairs.fetchall()), part


def test_recovers_the_planted_operation(
    detector: detectors.Detector, planted: tuple[duckdb.DuckDBPyConnection, Planted]
) -> None:
    """Whatever it scores, the planted operation scores higher than the rest on average,
    and at least one planted thing is scored."""
    con, truth = planted
    evidence = detector.detect(con, "actions")
    inside: list[float] = []
    outside: list[float] = []
    pairs: dict[tuple[str, str, str, str], float] = {}
    for p1, a1, p2, a2, weight, score in evidence.edges.project(
        "platform_1, account_1, platform_2, account_2, weight, score"
    ).fetchall():
        key = (p1, a1, p2, a2)
        pairs[key] = max(pairs.get(key, 0.0), score if score is not None else weight)
    accounts = truth.entities("account")
    for (p1, a1, p2, a2), value in pairs.items():
        both = (p1, a1) in accounts and (p2, a2) in accounts
        (inside if both else outside).append(value)
    for entity, platform, id_, score in evidence.signals.project(
        "entity, platform, id, score"
    ).fetchall():
        (inside if (platform, id_) in truth.entities(entity) else outside).append(score)
    assert inside, f"{detector.name} scored nothing planted"
    if outside:
        assert sum(inside) / len(inside) > sum(outside) / len(outside)


@settings(max_examples=10, deadline=None)
@given(extra=st.integers(0, 200), seed=st.integers(0, 10_000))
def test_unrelated_actions_never_change_the_planted_pairs(extra: int, seed: int) -> None:
    """Accounts acting on other objects leave the planted accounts' edges exactly as
    they were, for every detector that reads actions alone."""
    rnd = random.Random(seed)
    noise = [
        (
            f"n{i % 37}",
            "facebook",
            rnd.choice(("repost", "report", "hashtag")),
            f"elsewhere-{rnd.randint(0, 9)}",
            START + timedelta(seconds=rnd.uniform(0, 7 * 86400)),
            f"q{i}",
        )
        for i in range(extra)
    ]
    con = _connect()
    truth = planted_case(con, seed=5, organic=20)
    names = [n for n in sorted(detectors.available()) if not detectors.get(n).reads]
    accounts = truth.entities("account")
    query = (
        "SELECT * EXCLUDE (score) FROM ({}) WHERE (platform_1, account_1) IN ({}) "
        "AND (platform_2, account_2) IN ({}) ORDER BY ALL"
    )
    members = ", ".join(f"('{p}', '{a}')" for p, a in sorted(accounts))
    before = {}
    for name in names:
        rel = detectors.get(name).detect(con, "actions").edges.sql_query()
        before[name] = con.sql(query.format(rel, members, members)).fetchall()
    if noise:
        con.executemany("INSERT INTO actions VALUES (?, ?, ?, ?, ?, ?)", noise)
    for name in names:
        rel = detectors.get(name).detect(con, "actions").edges.sql_query()
        assert con.sql(query.format(rel, members, members)).fetchall() == before[name], name
    assert before["co_action"]
    con.close()
