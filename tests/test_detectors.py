"""The conformance suite: every registered detector passes these, whatever it detects.

A detector is registered in :mod:`concerted.detectors`; registering it runs it here, on
the planted case of :mod:`concerted.testing.planted` (an organic population with its hard
negatives, a planted network and a planted brigade). The checks are
:mod:`concerted.testing`'s, which plugin authors run on their own detectors.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import ClassVar

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from concerted import detectors, testing
from concerted.detectors.base import Evidence, empty
from concerted.testing.planted import ACTION_COLUMNS, START, Planted, insert_rows, planted_case
from tests.budget import examples


@pytest.fixture(params=sorted(detectors.available()))
def detector(request: pytest.FixtureRequest) -> detectors.Detector:
    return detectors.get(request.param)


@pytest.fixture(scope="module")
def planted() -> Iterator[tuple[duckdb.DuckDBPyConnection, Planted]]:
    connection = testing.connect()
    truth = planted_case(connection, seed=4)
    yield connection, truth
    connection.close()


def test_evidence_has_the_contract_columns_and_types(detector: detectors.Detector) -> None:
    testing.check_contract(detector)


def test_signals_are_scored_in_the_unit_interval(detector: detectors.Detector) -> None:
    testing.check_unit_scores(detector)


def test_empty_in_empty_out(detector: detectors.Detector) -> None:
    testing.check_empty(detector)


def test_row_order_does_not_matter(detector: detectors.Detector) -> None:
    testing.check_row_order(detector)


def test_deterministic(detector: detectors.Detector) -> None:
    testing.check_deterministic(detector)


def test_never_pairs_an_account_with_itself(detector: detectors.Detector) -> None:
    testing.check_no_self_pairs(detector)


def test_recovers_the_planted_operation(
    detector: detectors.Detector, planted: tuple[duckdb.DuckDBPyConnection, Planted]
) -> None:
    testing.check_recovers_planted(detector, planted)


def test_every_detector_says_what_it_is_for(detector: detectors.Detector) -> None:
    assert detectors.family_of(detector) in detectors.FAMILIES
    if detectors.family_of(detector) == "report":
        assert 0 < detectors.weight_of(detector) <= 1


@dataclass(frozen=True, kw_only=True)
class _SelfPairing:
    """A broken detector: it pairs every account with itself."""

    name: ClassVar[str] = "broken"
    family: ClassVar[str] = "corroborating"
    reads: ClassVar[tuple[str, ...]] = ()

    def detect(self, con: duckdb.DuckDBPyConnection, actions: str) -> Evidence:
        edges = con.sql(
            f"""SELECT 'broken' AS detector, 'x' AS layer, platform AS platform_1,
                       actor_id AS account_1, platform AS platform_2, actor_id AS account_2,
                       1.0::DOUBLE AS weight, NULL::DOUBLE AS score, 1::BIGINT AS events,
                       0::BIGINT AS lead_1, 0::BIGINT AS lead_2, 0.0::DOUBLE AS median_dt,
                       min(ts) AS first_ts, max(ts) AS last_ts, NULL::DOUBLE AS expected,
                       NULL::DOUBLE AS p_value, NULL::DOUBLE AS q_value,
                       NULL::BOOLEAN AS significant
                FROM {actions} GROUP BY ALL"""
        )
        return Evidence(edges=edges, events=empty(con, "events"), signals=empty(con, "signals"))


def test_check_detector_fails_a_detector_that_pairs_an_account_with_itself() -> None:
    testing.check_contract(_SelfPairing())
    with pytest.raises(AssertionError, match="with itself"):
        testing.check_detector(_SelfPairing())


@settings(max_examples=examples(10), deadline=None)
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
    con = testing.connect()
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
    insert_rows(con, "actions", ACTION_COLUMNS, noise)
    for name in names:
        rel = detectors.get(name).detect(con, "actions").edges.sql_query()
        assert con.sql(query.format(rel, members, members)).fetchall() == before[name], name
    assert before["co_action"]
    con.close()
