"""Fuzzing every adapter with mutated real files: no crash, and counts that add up.

Hypothesis draws a fixture of some adapter and a few mutations (``mutations.py``); each
mutated file is ingested with ``--on-error raise`` and ``quarantine``. Every run must end
in consistent counts or a ConcertedError naming the file. ``FUZZ_EXAMPLES`` sets how
many inputs (a few dozen in the test suite; ``python -m tests.fuzz.campaign`` runs long
campaigns and keeps what it finds in ``tests/fuzz/corpus``, replayed below).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.harness import FIXTURES, SOURCES, run
from tests.fuzz.mutations import MUTATIONS, mutate

CORPUS = Path(__file__).parent / "corpus"


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    source=st.sampled_from(SOURCES),
    names=st.lists(st.sampled_from(sorted(MUTATIONS)), min_size=1, max_size=3),
    seed=st.integers(0, 2**32 - 1),
)
def test_a_mutated_file_is_read_or_refused_never_crashes(
    source: tuple[str, str], names: list[str], seed: int
) -> None:
    fmt, fixture = source
    data = mutate((FIXTURES / fixture).read_bytes(), names, seed)
    for on_error in ("raise", "quarantine"):
        outcome = run(fmt, fixture, data, on_error)
        assert outcome.kind in ("ok", "refused"), (fmt, fixture, names, seed, outcome.detail)


def test_what_the_fuzzer_once_found_stays_fixed() -> None:
    """Each input a campaign found crashing or miscounting (and the shapes of past
    crashes), kept in ``corpus/`` as a regression test."""
    cases = sorted(CORPUS.glob("*.json"))
    assert cases, "the corpus holds the past crashes"
    failed = []
    for case in cases:
        found = json.loads(case.read_text(encoding="utf-8"))
        original = (FIXTURES / found["fixture"]).read_bytes()
        data = mutate(original, found["mutations"], found["seed"])
        outcome = run(found["format"], found["fixture"], data, found["on_error"])
        if outcome.kind not in ("ok", "refused"):
            failed.append((case.name, outcome.detail))
    assert not failed
