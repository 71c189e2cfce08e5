"""The conformance suite: every registered detector passes these, whatever it detects.

A detector is registered in :mod:`concerted.detectors`; registering it runs it here.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted import detectors
from concerted.detectors.base import EDGE_COLUMNS, EVENT_COLUMNS, Evidence

START = datetime(2020, 6, 1, tzinfo=UTC)
Row = tuple[str, str, str, str, datetime, str]


def _table(con: duckdb.DuckDBPyConnection, name: str, rows: list[Row]) -> str:
    con.execute(
        f"CREATE OR REPLACE TABLE {name} (actor_id VARCHAR, platform VARCHAR, kind VARCHAR, "
        "object_id VARCHAR, ts TIMESTAMPTZ, source_id VARCHAR)"
    )
    if rows:
        con.executemany(f"INSERT INTO {name} VALUES (?, ?, ?, ?, ?, ?)", rows)
    return name


def planted(seed: int = 0, organic: int = 150, members: int = 8) -> tuple[list[Row], set[str]]:
    """Organic accounts acting at random over a week, and ``members`` accounts acting
    on the same 20 objects within seconds of each other."""
    rnd = random.Random(seed)
    rows: list[Row] = []
    n = 0
    for i in range(organic):
        for _ in range(rnd.randint(1, 12)):
            n += 1
            at = START + timedelta(seconds=rnd.uniform(0, 7 * 86400))
            kind = rnd.choice(["repost", "hashtag", "share_url"])
            rows.append((f"o{i}", "facebook", kind, f"{kind}-{rnd.randint(0, 60)}", at, f"p{n}"))
    team = {f"m{i}" for i in range(members)}
    for item in range(20):
        at = START + timedelta(hours=6 * item + 1)
        kind = ("repost", "hashtag", "share_url")[item % 3]
        for m in sorted(team):
            n += 1
            lag = timedelta(seconds=rnd.uniform(0, 20))
            rows.append((m, "facebook", kind, f"talking-point-{item}", at + lag, f"p{n}"))
    return rows, team


def _edges(evidence: Evidence) -> list[tuple[Any, ...]]:
    return sorted(evidence.edges.fetchall(), key=repr)


def _events(evidence: Evidence) -> list[tuple[Any, ...]]:
    return sorted(evidence.events.fetchall(), key=repr)


@pytest.fixture(params=sorted(detectors.available()))
def detector(request: pytest.FixtureRequest) -> detectors.Detector:
    return detectors.get(request.param)


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()


def test_evidence_has_the_contract_columns(
    detector: detectors.Detector, con: duckdb.DuckDBPyConnection
) -> None:
    evidence = detector.detect(con, _table(con, "a", planted()[0]))
    assert evidence.edges.columns == list(EDGE_COLUMNS)
    assert evidence.events.columns == list(EVENT_COLUMNS)
    assert {row[0] for row in evidence.edges.fetchall()} == {detector.name}


def test_empty_in_empty_out(detector: detectors.Detector, con: duckdb.DuckDBPyConnection) -> None:
    evidence = detector.detect(con, _table(con, "a", []))
    assert evidence.edges.fetchall() == []
    assert evidence.events.fetchall() == []


def test_row_order_does_not_matter(
    detector: detectors.Detector, con: duckdb.DuckDBPyConnection
) -> None:
    rows, _ = planted(seed=1)
    shuffled = rows[:]
    random.Random(9).shuffle(shuffled)
    first = detector.detect(con, _table(con, "a", rows))
    second = detector.detect(con, _table(con, "b", shuffled))
    assert _edges(first) == _edges(second)
    assert _events(first) == _events(second)


def test_deterministic(detector: detectors.Detector, con: duckdb.DuckDBPyConnection) -> None:
    table = _table(con, "a", planted(seed=2)[0])
    assert _edges(detector.detect(con, table)) == _edges(detector.detect(con, table))


def test_never_pairs_an_account_with_itself(
    detector: detectors.Detector, con: duckdb.DuckDBPyConnection
) -> None:
    rows, _ = planted(seed=3)
    # The same account twice on one object, a second apart: still not a pair.
    rows.append(("m0", "facebook", "repost", "talking-point-0", START + timedelta(hours=1), "x"))
    evidence = detector.detect(con, _table(con, "a", rows))
    pairs = evidence.edges.project("platform_1, account_1, platform_2, account_2").fetchall()
    assert pairs
    assert all((p1, a1) < (p2, a2) for p1, a1, p2, a2 in pairs)


def test_recovers_a_planted_campaign(
    detector: detectors.Detector, con: duckdb.DuckDBPyConnection
) -> None:
    rows, team = planted(seed=4)
    evidence = detector.detect(con, _table(con, "a", rows))
    weights: dict[tuple[str, str], float] = {}
    for a1, a2, w in evidence.edges.project("account_1, account_2, weight").fetchall():
        weights[(a1, a2)] = weights.get((a1, a2), 0.0) + w
    inside = [w for (a1, a2), w in weights.items() if a1 in team and a2 in team]
    outside = [w for (a1, a2), w in weights.items() if not (a1 in team and a2 in team)]
    # Every pair of the team is tied, and more strongly than any other pair.
    assert len(inside) == len(team) * (len(team) - 1) // 2
    assert min(inside) > max(outside, default=0)


@settings(max_examples=20, deadline=None)
@given(extra=st.integers(0, 200), seed=st.integers(0, 10_000))
def test_unrelated_accounts_never_remove_a_planted_campaign(extra: int, seed: int) -> None:
    """Accounts acting on other objects leave the team's edges exactly as they were."""
    rows, team = planted(seed=5, organic=20)
    rnd = random.Random(seed)
    noise: list[Row] = [
        (
            f"n{i % 37}",
            "facebook",
            "repost",
            f"elsewhere-{rnd.randint(0, 9)}",
            START + timedelta(seconds=rnd.uniform(0, 7 * 86400)),
            f"q{i}",
        )
        for i in range(extra)
    ]
    con = duckdb.connect()
    for name in sorted(detectors.available()):
        detector = detectors.get(name)
        query = "SELECT * FROM ({}) WHERE account_1 LIKE 'm%' AND account_2 LIKE 'm%' ORDER BY ALL"
        before = con.sql(
            query.format(detector.detect(con, _table(con, "a", rows)).edges.sql_query())
        ).fetchall()
        after = con.sql(
            query.format(detector.detect(con, _table(con, "b", rows + noise)).edges.sql_query())
        ).fetchall()
        assert before == after
        assert len(before) >= len(team) * (len(team) - 1) // 2
    con.close()
