"""What a fuzzing run costs, the plain way and in a kept case:
``python -m tests.fuzz.bench_harness --runs 4 --seed 5 --rounds 2``.

Draws ``--runs`` inputs per fixture (as ``campaign`` does) and runs them all, in both
modes, through ``harness.run`` (a new case file for every run) and through one
``harness.Runner`` (one in-memory case, emptied between runs), alternating, ``--rounds``
times each, in this process. Prints, for each pass, the wall and CPU (user + system)
milliseconds a run, split into inputs under and over 1 MB (a 3 MB cell is read by
DuckDB's CSV reader for most of a run's cost), the peak resident memory, and the
1-minute load average before and after; with ``--by-fixture``, the CPU a run of each
fixture's inputs under 1 MB as well.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Callable

from tests.fuzz.campaign import Draw, draws
from tests.fuzz.harness import MODES, Outcome, Runner, run

Way = Callable[[Draw, bytes], list[Outcome]]


def _pass(
    name: str, way: Way, inputs: list[tuple[Draw, bytes]], by_fixture: bool = False
) -> list[str]:
    load = os.getloadavg()[0]
    cpu: dict[bool, float] = {False: 0.0, True: 0.0}
    wall: dict[bool, float] = {False: 0.0, True: 0.0}
    runs: dict[bool, int] = {False: 0, True: 0}
    # CPU seconds and runs of each fixture's inputs under 1 MB.
    fixtures: dict[str, tuple[float, int]] = {}
    kinds: list[str] = []
    for draw, data in inputs:
        big = len(data) > 2**20
        began, cpu_began = time.perf_counter(), time.process_time()
        kinds += [o.kind for o in way(draw, data)]
        wall[big] += time.perf_counter() - began
        cpu[big] += time.process_time() - cpu_began
        runs[big] += len(MODES)
        if not big:
            spent, n = fixtures.get(draw.fixture, (0.0, 0))
            fixtures[draw.fixture] = (spent + time.process_time() - cpu_began, n + len(MODES))
    n = runs[False] + runs[True]
    parts = ", ".join(
        f"{'over' if big else 'under'} 1 MB: {runs[big]} runs, "
        f"{1000 * wall[big] / max(runs[big], 1):.1f} ms wall, "
        f"{1000 * cpu[big] / max(runs[big], 1):.1f} ms CPU"
        for big in (False, True)
    )
    print(
        f"{name}: {n} runs, {1000 * sum(wall.values()) / n:.1f} ms wall and "
        f"{1000 * sum(cpu.values()) / n:.1f} ms CPU a run ({parts}); peak RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB; load "
        f"{load:.2f} before, {os.getloadavg()[0]:.2f} after",
        flush=True,
    )
    if by_fixture:
        for fixture, (spent, n) in fixtures.items():
            print(f"  {fixture}: {1000 * spent / n:.1f} ms CPU a run under 1 MB ({n} runs)")
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=4, help="inputs per fixture")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--by-fixture", action="store_true", help="CPU a run of each fixture's inputs too"
    )
    args = parser.parse_args()
    inputs = [(d, d.data()) for d in draws(args.runs, args.seed)]
    with Runner() as runner:

        def plain(draw: Draw, data: bytes) -> list[Outcome]:
            return [run(draw.fmt, draw.fixture, data, on_error) for on_error in MODES]

        def kept(draw: Draw, data: bytes) -> list[Outcome]:
            return list(runner.run_both(draw.fmt, draw.fixture, data))

        # Both ways once before measuring: imports, DuckDB's first connection.
        plain(*inputs[0])
        kept(*inputs[0])
        seen = set()
        for _ in range(args.rounds):
            for name, way in (("plain", plain), ("kept case", kept)):
                seen.add(tuple(_pass(name, way, inputs, args.by_fixture)))
    assert len(seen) == 1, "the two ways judged some input differently"


if __name__ == "__main__":
    main()
