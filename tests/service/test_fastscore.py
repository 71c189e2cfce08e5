"""The service's scalar scorer gives OnlineScorer's features, scores and
recommendations, decisions included; its pair memory bounds the pairs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concerted.scoring import FEATURES, OnlineScorer, ScoreSettings
from concerted.service.fastscore import FastScorer
from concerted.service.state import _micros
from tests import test_scoring as scoring_tests
from tests.budget import examples

SMALL = scoring_tests.SMALL


def _x(report: dict[str, Any]) -> dict[str, Any]:
    """The report as the service's scorer takes it: times in microseconds."""
    created = report["reporter_created_at"]
    return {
        **report,
        "ts": _micros(report["ts"].isoformat()),
        "reporter_created_at": None if created is None else _micros(created.isoformat()),
    }


@given(
    rows=scoring_tests.streams(),
    wide=st.booleans(),
    shared=st.integers(1, 4),
    decide=st.lists(st.tuples(st.integers(0, 59), st.sampled_from(["upheld", "rejected"]))),
)
@settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_fast_scorer_equals_the_online_scorer(
    rows: list[dict[str, Any]], wide: bool, shared: int, decide: list[tuple[int, str]]
) -> None:
    chosen = replace(ScoreSettings() if wide else SMALL, min_shared=shared)
    online, fast = OnlineScorer(chosen), FastScorer(chosen)
    decisions = dict(decide)  # after report i, a decision on report i // 2
    outcomes: dict[int, str | None] = {}
    for i, report in enumerate(rows):
        x = _x(report)
        values, score, held = fast.evaluate(x)
        assert score == pytest.approx(online.score_one(report), abs=1e-12)
        assert held == online.held(report)
        expected = online.features_one(report)
        for name in FEATURES:
            assert values[name] == pytest.approx(expected[name], abs=1e-12), name
        online.learn_one(report)
        fast.learn_one(x)
        if i in decisions:
            j = i // 2
            previous = outcomes.get(j, rows[j]["outcome"])
            online.learn_outcome(rows[j], decisions[i], previous)
            fast.learn_outcome(_x(rows[j]), decisions[i], previous)
            outcomes[j] = decisions[i]
    assert fast.seen == online.seen == len(rows)


def test_learning_a_report_not_evaluated_first_evaluates_it() -> None:
    rows = [_x(r) for r in _brigade(40)]
    a, b = FastScorer(SMALL), FastScorer(SMALL)
    for x in rows:
        a.evaluate(x)
        a.learn_one(x)
        b.learn_one(x)  # as replay does
    assert a.evaluate(rows[0])[1] == b.evaluate(rows[0])[1]
    assert a._discounted == b._discounted and a._pairs == b._pairs


def _brigade(n: int, start: float = 0.0, group: int = 0) -> list[dict[str, Any]]:
    from datetime import timedelta

    return [
        {
            "report_id": f"r{group}.{i}",
            "platform": "x",
            "reporter_id": f"g{group}u{i % 5}",
            "target_id": f"g{group}t{i // 5}",
            "ts": scoring_tests.START + timedelta(seconds=start + 4.0 * i),
            "channel": None,
            "client": None,
            "outcome": None,
            "reporter_created_at": None,
        }
        for i in range(n)
    ]


def test_pair_memory_forgets_pairs_that_stop_co_reporting() -> None:
    """Groups of reporters one after another, a day apart: with a memory of an hour,
    the pairs held stay those of the last group or two; without, they all stay."""
    kept, bounded = FastScorer(SMALL), FastScorer(SMALL, pair_memory=3600.0)
    held = []
    for group in range(6):
        for report in _brigade(50, start=86_400.0 * group, group=group):
            x = _x(report)
            for scorer in (kept, bounded):
                scorer.evaluate(x)
                scorer.learn_one(x)
        held.append(bounded.pairs)
    assert kept.pairs == 10 * 6  # five reporters a group: ten pairs each
    assert max(held) <= 2 * 10 and bounded.pairs <= 2 * 10
    # Within a group (minutes) the memory changes nothing: the scores are the same.
    one, two = FastScorer(SMALL), FastScorer(SMALL, pair_memory=3600.0)
    for report in _brigade(50):
        x = _x(report)
        assert one.evaluate(x)[1] == two.evaluate(x)[1]
        one.learn_one(x)
        two.learn_one(x)
