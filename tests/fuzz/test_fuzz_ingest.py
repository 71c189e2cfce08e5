"""Fuzzing every adapter with mutated real files: no crash, and counts that add up.

Hypothesis draws a fixture of some adapter and a few mutations (``mutations.py``); each
mutated file is ingested with ``--on-error raise`` and ``quarantine``. Every run must end
in consistent counts or a ConcertedError naming the file. ``FUZZ_EXAMPLES`` sets how
many inputs (a few dozen in the test suite; ``python -m tests.fuzz.campaign`` runs long
campaigns and keeps what it finds in ``tests/fuzz/corpus``, replayed below).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.budget import examples
from tests.fuzz.harness import run
from tests.fuzz.mutations import MUTATIONS, mutate
from tests.fuzz.sources import FIXTURES, SOURCES

CORPUS = Path(__file__).parent / "corpus"


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", examples(30))),
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


@pytest.mark.parametrize(("fmt", "fixture"), SOURCES)
def test_every_starting_file_reads_as_given(fmt: str, fixture: str) -> None:
    """Unmutated, each fixture is read without a refusal: a fuzzer whose every input is
    refused for one setting it lacks (a column mapping, a platform) tests nothing."""
    data = (FIXTURES / fixture).read_bytes()
    for on_error in ("raise", "quarantine"):
        assert run(fmt, fixture, data, on_error).kind == "ok", (fixture, on_error)


def test_what_the_fuzzer_once_found_stays_fixed() -> None:
    """Each input a campaign found crashing or miscounting (and the shapes of past
    crashes), kept in ``corpus/`` as a regression test."""
    cases = sorted(CORPUS.glob("*.json"))
    assert cases, "the corpus holds the past crashes"
    failed = []
    for case in cases:
        found = json.loads(case.read_text(encoding="utf-8"))
        if "data_b64" in found:  # found by atheris: the bytes themselves
            data = base64.b64decode(found["data_b64"])
        else:
            original = (FIXTURES / found["fixture"]).read_bytes()
            data = mutate(original, found["mutations"], found["seed"])
        outcome = run(found["format"], found["fixture"], data, found["on_error"])
        if outcome.kind not in ("ok", "refused"):
            failed.append((case.name, outcome.detail))
    assert not failed


@pytest.mark.slow
def test_the_atheris_entry_point_runs_an_adapter(tmp_path: Path) -> None:
    """The long-run entry point starts, fuzzes a few inputs and ends cleanly."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fuzz.atheris_ingest",
            "--fixture",
            "generic/posts.csv",
            "--keep",
            str(tmp_path),
            "--",
            "-runs=4",
            "-seed=1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Done 4 runs" in done.stderr
    assert not list(tmp_path.glob("*.json"))
