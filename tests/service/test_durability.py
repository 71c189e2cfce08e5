"""SIGKILL under load, three times: nothing acknowledged is lost, and the state after
each replay scores the next report as an uninterrupted server does
(``benchmarks/durability.py`` runs the same with 20 kills)."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks import durability


@pytest.mark.slow
def test_kills_under_load_lose_nothing_and_replay_to_the_same_state(
    tmp_path: Path, log_kind: str
) -> None:
    """On each intake log: SQLite, and a JetStream server."""
    assert durability.run(kills=3, seed=7, out=tmp_path, quiet=True, log=log_kind) == 0
