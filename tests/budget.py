"""How many examples each property test draws.

``make check`` runs every property test with its full budget; ``make test-fast`` (the
inner loop) sets ``CONCERTED_TEST_FAST=1``, and each draws a tenth of it (at least 3),
as do the tests that name no budget (Hypothesis's profile ``fast``, loaded in
``conftest.py``).
"""

from __future__ import annotations

import os

#: Whether this is the inner loop's run.
FAST = os.environ.get("CONCERTED_TEST_FAST") == "1"


def examples(budget: int) -> int:
    """``budget`` examples, or a tenth of them (at least 3) in the inner loop."""
    return max(3, budget // 10) if FAST else budget
