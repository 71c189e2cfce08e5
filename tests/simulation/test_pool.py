"""The popular posts grow with the span, so a longer span brings new popular posts
rather than more reposts of the same ones (the analysis benchmark's workload grows the
span with the actions; the pairs on one post must not grow with it)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb

from concerted import simulate
from concerted.simulation.organic import POOL_DAYS, pool_size


def _reposts_per_post(days: int) -> tuple[float, int]:
    """The reposts a repost's post draws on average (the sum of squares over the sum:
    what the pairs of reposts on one post grow with), and the number of reposts."""
    knobs = {
        "population.accounts": "1500",
        "population.days": str(days),
        "population.cascades": "0",
        "population.report_spikes": "0",
        "population.callouts": "0",
    }
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        simulate.simulate(simulate.scenario("cib", knobs=knobs), seed=7, out=out)
        row = duckdb.sql(
            "SELECT sum(n * n) / sum(n), sum(n) FROM (SELECT repost_of, count(*) AS n "
            f"FROM read_parquet('{out / 'posts.parquet'}') WHERE repost_of IS NOT NULL "
            "GROUP BY repost_of)"
        ).fetchone()
    assert row is not None
    return float(row[0]), int(row[1])


def test_reposts_per_popular_post_do_not_grow_with_the_span() -> None:
    short, short_reposts = _reposts_per_post(POOL_DAYS)
    long, long_reposts = _reposts_per_post(4 * POOL_DAYS)
    # Four times the span makes about four times the reposts ...
    assert 3.0 < long_reposts / short_reposts < 5.0
    # ... spread over about four times the popular posts: each draws about as many
    # (with one pool for the whole span, 3.5 times as many in this world).
    assert long / short < 1.5, (short, long)


def test_the_default_span_keeps_its_pool() -> None:
    assert pool_size(20_000, POOL_DAYS) == 600
    assert pool_size(20_000, 3) == pool_size(20_000, POOL_DAYS)
    assert pool_size(100, 5) == 50
