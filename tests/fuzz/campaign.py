"""A long fuzzing campaign over every adapter: ``python -m tests.fuzz.campaign``.

Draws ``--runs`` mutated inputs per adapter fixture (``sources.SOURCES``), ingests each
with ``--on-error raise`` and ``quarantine``, prints the counts by outcome and adapter,
and writes each crashing or miscounting input to ``tests/fuzz/corpus/`` (a small JSON
file naming the fixture, the mutations and the seed), which the test suite replays.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter

from tests.fuzz.harness import run
from tests.fuzz.mutations import MUTATIONS, mutate
from tests.fuzz.sources import FIXTURES, SOURCES
from tests.fuzz.test_fuzz_ingest import CORPUS

#: What a run can end in (harness.Outcome.kind).
KINDS = ("ok", "refused", "crash", "mismatch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200, help="inputs per fixture")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    counts: Counter[tuple[str, str]] = Counter()
    found = 0
    started = time.perf_counter()
    for fmt, fixture in SOURCES:
        original = (FIXTURES / fixture).read_bytes()
        for _ in range(args.runs):
            names = rng.sample(sorted(MUTATIONS), rng.randint(1, 3))
            seed = rng.randrange(2**32)
            data = mutate(original, names, seed)
            for on_error in ("raise", "quarantine"):
                outcome = run(fmt, fixture, data, on_error)
                counts[(fmt, outcome.kind)] += 1
                if outcome.kind in ("crash", "mismatch"):
                    found += 1
                    CORPUS.mkdir(exist_ok=True)
                    record = {
                        "format": fmt,
                        "fixture": fixture,
                        "mutations": names,
                        "seed": seed,
                        "on_error": on_error,
                        "outcome": outcome.kind,
                        "detail": outcome.detail.splitlines()[-1:] if outcome.detail else [],
                    }
                    name = f"{fmt}-{outcome.kind}-{seed}-{on_error}.json"
                    (CORPUS / name).write_text(json.dumps(record, indent=1), encoding="utf-8")
        # A running tally after each fixture, so that a campaign cut short still says
        # what it ran.
        done = ", ".join(f"{k} {sum(n for (_, o), n in counts.items() if o == k)}" for k in KINDS)
        print(f"after {fixture}: {done}", flush=True)
    seconds = time.perf_counter() - started
    runs = sum(counts.values())
    print(f"{runs} runs ({args.runs} inputs per fixture, 2 modes) in {seconds:.0f} s")
    for fmt in sorted({f for f, _ in counts}):
        line = ", ".join(f"{k} {counts[(fmt, k)]}" for k in KINDS)
        print(f"  {fmt}: {line}")
    print(f"written to {CORPUS}: {found}")


if __name__ == "__main__":
    main()
