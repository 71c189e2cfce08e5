"""The array scorer gives FastScorer's features, scores and held flags, report by
report, whatever the batches it is given; decisions, pair memory, growth and a
restore from its arrays included."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from concerted.scoring import FEATURES, ScoreSettings
from concerted.service.arrayscore import ArrayScorer
from concerted.service.fastscore import FastScorer
from tests import test_scoring as scoring_tests
from tests.budget import examples

SMALL = scoring_tests.SMALL
_US = 1_000_000


@st.composite
def streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Reports in the order they arrive, times in microseconds: mostly forward, some
    ties and some steps back; few reporters and targets, so that pairs, bursts and
    gaps all occur."""
    n = draw(st.integers(0, 80))
    reporters = draw(st.integers(1, 7))
    targets = draw(st.integers(1, 4))
    ages = {f"u{k}": draw(st.none() | st.integers(-3600, 5 * 86400)) for k in range(reporters)}
    start = 1_590_969_600 * _US
    t = start
    rows: list[dict[str, Any]] = []
    for i in range(n):
        step = draw(st.sampled_from([0, 0, 0.5, 1, 3, 7, 20, 45, 100, 700, 5000, -3, -60]))
        t += round(step * _US)
        reporter = f"u{draw(st.integers(0, reporters - 1))}"
        age = ages[reporter]
        rows.append(
            {
                "report_id": f"r{i:03d}",
                "platform": draw(st.sampled_from(["facebook", "facebook", "instagram"])),
                "reporter_id": reporter,
                "target_id": f"t{draw(st.integers(0, targets - 1))}",
                "ts": t,
                "channel": draw(st.sampled_from([None, "app", "web", "direct_link"])),
                "client": draw(st.sampled_from([None, "A", "B", "C"])),
                "outcome": draw(st.sampled_from([None, None, "upheld", "rejected"])),
                "reporter_created_at": None if age is None else start - age * _US,
            }
        )
    return rows


def _same(
    fast: FastScorer, array: ArrayScorer, rows: list[dict[str, Any]], cuts: list[int]
) -> None:
    """Feed ``rows`` to both, ``array`` in the batches ``cuts`` makes; compare."""
    bounds = sorted({0, len(rows), *(c for c in cuts if 0 < c < len(rows))})
    for a, b in zip(bounds, bounds[1:], strict=False):
        part = rows[a:b]
        scored = array.learn_many(array.encode(part))
        for i, x in enumerate(part):
            values, score, held = fast.evaluate(x)
            fast.learn_one(x)
            assert abs(scored.scores[i] - score) <= 1e-12
            assert bool(scored.held[i]) == held
            for j, name in enumerate(FEATURES):
                assert abs(scored.features[i, j] - values[name]) <= 1e-12, name
    assert array.seen == fast.seen
    assert array.pairs == fast.pairs


@given(
    rows=streams(),
    wide=st.booleans(),
    shared=st.integers(1, 4),
    memory=st.none() | st.sampled_from([30.0, 600.0, 7200.0]),
    cuts=st.lists(st.integers(0, 80), max_size=6),
    decide=st.lists(st.tuples(st.integers(0, 79), st.sampled_from(["upheld", "rejected"]))),
)
@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_array_scorer_equals_the_fast_scorer(
    rows: list[dict[str, Any]],
    wide: bool,
    shared: int,
    memory: float | None,
    cuts: list[int],
    decide: list[tuple[int, str]],
) -> None:
    chosen = replace(ScoreSettings() if wide else SMALL, min_shared=shared)
    fast, array = FastScorer(chosen, memory), ArrayScorer(chosen, memory)
    # Decisions come between batches: after the batch that ends at report i, a
    # decision on report i // 2.
    decisions = dict(decide)
    outcomes: dict[int, str | None] = {}
    bounds = sorted({0, len(rows), *(c for c in cuts + list(decisions) if 0 < c < len(rows))})
    for a, b in zip(bounds, bounds[1:], strict=False):
        _same(fast, array, rows[a:b], [])
        if b in decisions:
            j = b // 2
            previous = outcomes.get(j, rows[j]["outcome"])
            fast.learn_outcome(rows[j], decisions[b], previous)
            array.learn_outcome(rows[j], decisions[b], previous)
            outcomes[j] = decisions[b]


def _busy(n: int, seed: int) -> list[dict[str, Any]]:
    """A dense stream like the service benchmark's: many reporters on fewer targets,
    a thousand reports a second of its clock, some decided."""
    rng = random.Random(seed)
    return [
        {
            "report_id": f"b{i}",
            "platform": "mastodon",
            "reporter_id": f"u{rng.randrange(3000)}",
            "target_id": f"t{rng.randrange(300)}",
            "ts": 1_780_000_000 * _US + i * 1000 + rng.randrange(-5000, 5000),
            "channel": rng.choice(["web", "api"]),
            "client": rng.choice([None, "a", "b"]),
            "outcome": rng.choice([None] * 8 + ["upheld", "rejected"]),
            "reporter_created_at": None,
        }
        for i in range(n)
    ]


def test_growing_tables_and_pools_change_nothing() -> None:
    """Thousands of pairs and queues: the tables and pools double many times over,
    with and without pair memory (whose rotations then empty tables of any size)."""
    rows = _busy(12_000, 1)
    wide = replace(ScoreSettings(), window=5.0, burst_window=2.0, baseline_window=20.0)
    for memory in (None, 3.0):
        fast, array = FastScorer(wide, memory), ArrayScorer(wide, memory)
        _same(fast, array, rows, [1, 700, 701, 5000])
        assert array.pairs > 10_000 if memory is None else array.pairs > 100


def test_a_restored_scorer_goes_on_as_the_first() -> None:
    rows = _busy(4000, 2)
    fast, array = FastScorer(SMALL, 60.0), ArrayScorer(SMALL, 60.0)
    _same(fast, array, rows[:2500], [1000])
    copy = {k: np.array(v) for k, v in array.arrays().items()}
    restored = ArrayScorer.restore(SMALL, 60.0, array.header(), copy)
    _same(fast, restored, rows[2500:], [300])


def test_a_decision_on_a_report_of_a_new_reporter() -> None:
    fast, array = FastScorer(SMALL), ArrayScorer(SMALL)
    rows = _busy(50, 3)
    report = {**rows[0], "reporter_id": "never-reported"}
    fast.learn_outcome(report, "rejected", None)
    array.learn_outcome(report, "rejected", None)
    later = {**rows[1], "reporter_id": "never-reported", "ts": rows[0]["ts"] + 2 * 86_400 * _US}
    _same(fast, array, [later, *rows], [])
    assert array.learn_many(array.encode([])).scores.shape == (0,)
