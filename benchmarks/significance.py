"""The significance stage: the per-pair ``stratified`` test against three relabelled copies.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.significance                      # 10^6 actions
    .venv/bin/python -m benchmarks.significance --actions 10000000 --memory-limit 8GB

A synthetic case is drawn in DuckDB from one seed: ``--accounts`` accounts whose
activity is heavy-tailed (an account's rank is the cube of a uniform draw) and who each
live for a week that starts on a random day of a 60-day span; ``--objects`` objects,
a sixtieth of them posted each day, with Zipf-like popularity; every action a repost
of an object of a day in its account's week, an exponential delay (mean 30 min)
after the object was posted, so that popular objects draw bursts. Co-action runs once
(60 s window); then each test is timed on its edges:

``stratified``
    :meth:`Significance.test_stratified`: the per-pair expectation and Poisson tail.
``relabel``
    :meth:`Significance.null_weights` (three relabelled copies, each paired again)
    and :meth:`Significance.test`: the stage before ``stratified``.

It prints wall and CPU seconds of each, the pairs tested and how many each calls
significant, and the ratio of the two times.
"""

from __future__ import annotations

import argparse
import resource
import time

import duckdb

from concerted.detectors.coaction import CoAction
from concerted.significance import Significance

_CASE = """
CREATE OR REPLACE TABLE actions AS
WITH a AS (
    SELECT i, floor({accounts} * pow(random(), 3))::BIGINT AS acct,
           floor({per_day} * pow(random(), 2.5))::BIGINT AS rank,
           floor(7 * random())::BIGINT AS within, -ln(1 - random()) * 1800 AS delay
    FROM range({actions}) t(i)),
starts AS (
    SELECT acct, (hash(acct, {seed}) % 53)::BIGINT AS day FROM (SELECT DISTINCT acct FROM a)),
o AS (
    SELECT a.*, s.day + a.within AS d, (s.day + a.within) * {per_day} + a.rank AS obj
    FROM a JOIN starts s USING (acct))
SELECT 'u' || acct AS actor_id, 'x' AS platform, 'repost' AS kind, 'o' || obj AS object_id,
       TIMESTAMPTZ '2021-01-01 00:00:00+00'
           + to_microseconds(((d * 86400 + (hash(obj, {seed}) % 80000) + delay) * 1e6)::BIGINT)
           AS ts,
       'p' || i AS source_id
FROM o
"""


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=0, help="default: actions / 20")
    parser.add_argument("--objects", type=int, default=0, help="default: actions / 5")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory-limit", default="6GB")
    parser.add_argument("--no-relabel", action="store_true", help="time stratified only")
    args = parser.parse_args(argv)
    accounts = args.accounts or max(args.actions // 20, 10)
    objects = args.objects or max(args.actions // 5, 10)

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET memory_limit = '{args.memory_limit}'")
    con.execute(f"SELECT setseed({(args.seed % 1000) / 1000})")
    start = time.perf_counter()
    con.execute(
        _CASE.format(
            actions=args.actions,
            accounts=accounts,
            per_day=max(objects // 60, 1),
            seed=args.seed,
        )
    )
    print(
        f"case: {args.actions:,} actions, {accounts:,} accounts, {objects:,} objects "
        f"({time.perf_counter() - start:.1f} s)"
    )

    detector = CoAction(window=60, kinds=("repost",))
    start = time.perf_counter()
    found = detector.detect(con, "actions")
    con.execute(f"CREATE TABLE e AS {found.edges.sql_query()}")
    con.execute(f"CREATE TABLE ev AS {found.events.sql_query()}")
    found.release(con)
    pairs = con.sql("SELECT count(*) FROM e").fetchone()
    print(f"co-action: {pairs[0] if pairs else 0:,} pairs ({time.perf_counter() - start:.1f} s)")

    results: dict[str, tuple[float, float, int]] = {}
    runs = [("stratified", Significance())]
    if not args.no_relabel:
        runs.append(("relabel", Significance(null="relabel", replicates=3)))
    for name, test in runs:
        wall, cpu = time.perf_counter(), _cpu()
        if test.analytic:
            tested = test.test_stratified(con, "e", "ev", "actions", ("repost",))
        else:
            counts = test.null_weights(con, "actions", detector, ("repost",))
            tested = test.test(con, "e", counts)
        con.execute(f"CREATE OR REPLACE TABLE t AS {tested.edges.sql_query()}")
        tested.release(con)
        significant = tested.notes["pairs_significant"]
        results[name] = (time.perf_counter() - wall, _cpu() - cpu, significant)
    print(f"{'test':12} {'wall s':>8} {'CPU s':>8} {'significant':>12}")
    for name, (wall, cpu, significant) in results.items():
        print(f"{name:12} {wall:8.1f} {cpu:8.1f} {significant:12,}")
    if "relabel" in results:
        ratio = results["relabel"][0] / results["stratified"][0]
        print(f"stratified is {ratio:.1f}x the speed of three relabelled copies")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(f"peak RSS {peak:.2f} GiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
