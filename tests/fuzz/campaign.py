"""A long fuzzing campaign over every adapter: ``python -m tests.fuzz.campaign``.

Draws ``--runs`` mutated inputs per adapter fixture (``sources.SOURCES``), ingests each
with ``--on-error raise`` and ``quarantine``, prints the counts by outcome and adapter,
and writes each crashing or miscounting input to ``tests/fuzz/corpus/`` (a small JSON
file naming the fixture, the mutations and the seed), which the test suite replays.

The inputs are drawn in the main process, in the same order for a seed whatever the
number of workers (``--workers``, default 2: one per core); each worker process keeps
its imports and one case (``harness.Runner``), mutates the fixture and runs both modes
on the file written once. ``--plain`` runs the old way instead, in this process, with a
new case file for every run (``harness.run``). A worker that dies (DuckDB aborting the
process, say) takes no input with it unrecorded: each input it held is run again alone
in a new worker, and the one that kills that worker too is written as a crash.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import multiprocessing.util
import os
import random
import resource
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from tests.fuzz.harness import MODES, Outcome, Runner, run
from tests.fuzz.mutations import MUTATIONS, mutate
from tests.fuzz.sources import FIXTURES, SOURCES
from tests.fuzz.test_fuzz_ingest import CORPUS

#: What a run can end in (harness.Outcome.kind).
KINDS = ("ok", "refused", "crash", "mismatch")


@dataclass(frozen=True)
class Draw:
    """One input: a fixture, the mutations applied to it and their seed."""

    fmt: str
    fixture: str
    names: tuple[str, ...]
    seed: int

    def data(self) -> bytes:
        return mutate((FIXTURES / self.fixture).read_bytes(), list(self.names), self.seed)


def draws(runs: int, seed: int, formats: frozenset[str] | None = None) -> Iterator[Draw]:
    """``runs`` inputs per fixture, drawn from ``seed`` as every campaign has drawn them;
    with ``formats``, only those adapters' (the others' are drawn and passed over, so
    that a seed's inputs for an adapter are the same whichever adapters a campaign
    takes, and a later campaign can take the rest).

    >>> [d.seed for d in draws(2, 7)][:2] == [d.seed for d in draws(3, 7)][:2]
    True
    >>> qut = [d for d in draws(3, 7) if d.fmt == "qut"]
    >>> list(draws(3, 7, frozenset({"qut"}))) == qut
    True
    """
    rng = random.Random(seed)
    for fmt, fixture in SOURCES:
        for _ in range(runs):
            names = rng.sample(sorted(MUTATIONS), rng.randint(1, 3))
            draw = Draw(fmt, fixture, tuple(names), rng.randrange(2**32))
            if formats is None or fmt in formats:
                yield draw


# -- the worker processes -----------------------------------------------------------

_RUNNER: Runner | None = None


def _start() -> None:
    global _RUNNER
    _RUNNER = Runner()
    # Closed (its case and directory removed) when the worker exits.
    multiprocessing.util.Finalize(_RUNNER, _RUNNER.close, exitpriority=10)


def _work(draw: Draw) -> tuple[Outcome, Outcome]:
    if _RUNNER is None:  # pragma: no cover - the pool's initializer made it
        _start()
    assert _RUNNER is not None
    return _RUNNER.run_both(draw.fmt, draw.fixture, draw.data())


def _plain(draw: Draw) -> tuple[Outcome, Outcome]:
    data = draw.data()
    first, second = (run(draw.fmt, draw.fixture, data, on_error) for on_error in MODES)
    return first, second


def _pool(workers: int) -> ProcessPoolExecutor:
    # A new interpreter per worker: DuckDB's threads do not survive a fork.
    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_start
    )


Work = Callable[[Draw], tuple[Outcome, Outcome]]


def _alone(draw: Draw, work: Work = _work) -> tuple[Outcome, Outcome]:
    """``draw`` in a worker of its own: a worker that dies on it is a crash."""
    with _pool(1) as pool:
        try:
            return pool.submit(work, draw).result()
        except BrokenProcessPool as exc:
            died = Outcome("crash", f"the worker process died: {exc}")
            return died, died


def _pooled(
    items: Iterator[Draw], workers: int, work: Work = _work
) -> Iterator[tuple[Draw, tuple[Outcome, Outcome]]]:
    """Each draw with its outcomes, in the order drawn, from ``workers`` processes
    running ``work`` (a function a worker can import)."""
    window = 8 * workers
    pool = _pool(workers)
    held: deque[tuple[Draw, Future[tuple[Outcome, Outcome]]]] = deque()
    try:
        for draw in items:
            try:
                future = pool.submit(work, draw)
            except BrokenProcessPool:
                # A worker died: what the pool held is run again alone, then a new pool.
                while held:
                    yield _take(held, work)
                pool.shutdown(wait=True)
                pool = _pool(workers)
                future = pool.submit(work, draw)
            held.append((draw, future))
            while len(held) > window or (held and held[0][1].done()):
                yield _take(held, work)
        while held:
            yield _take(held, work)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _take(
    held: deque[tuple[Draw, Future[tuple[Outcome, Outcome]]]], work: Work
) -> tuple[Draw, tuple[Outcome, Outcome]]:
    draw, future = held.popleft()
    try:
        return draw, future.result()
    except BrokenProcessPool:
        return draw, _alone(draw, work)


# -- the campaign -------------------------------------------------------------------


def campaign(
    runs: int,
    seed: int,
    *,
    workers: int = 2,
    plain: bool = False,
    corpus: Path = CORPUS,
    formats: frozenset[str] | None = None,
    say: Callable[[str], None] = print,
) -> Counter[tuple[str, str]]:
    """Run the campaign (every adapter, or those in ``formats``); return the runs by
    (format, outcome kind). Inputs that crash or miscount are written to ``corpus``."""
    counts: Counter[tuple[str, str]] = Counter()
    items = draws(runs, seed, formats)
    done = (
        ((d, _plain(d)) for d in items)
        if plain
        else ((d, _work(d)) for d in items)
        if workers < 1
        else _pooled(items, workers)
    )
    per_fixture: Counter[str] = Counter()
    for draw, outcomes in done:
        for on_error, outcome in zip(MODES, outcomes, strict=True):
            counts[(draw.fmt, outcome.kind)] += 1
            if outcome.kind in ("crash", "mismatch"):
                _keep(corpus, draw, on_error, outcome)
        per_fixture[draw.fixture] += 1
        if per_fixture[draw.fixture] == runs:
            # A running tally after each fixture, so that a campaign cut short still
            # says what it ran.
            tally = ", ".join(
                f"{k} {sum(n for (_, o), n in counts.items() if o == k)}" for k in KINDS
            )
            say(f"after {draw.fixture}: {tally}")
    return counts


def _keep(corpus: Path, draw: Draw, on_error: str, outcome: Outcome) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    record = {
        "format": draw.fmt,
        "fixture": draw.fixture,
        "mutations": list(draw.names),
        "seed": draw.seed,
        "on_error": on_error,
        "outcome": outcome.kind,
        "detail": outcome.detail.splitlines()[-1:] if outcome.detail else [],
    }
    name = f"{draw.fmt}-{outcome.kind}-{draw.seed}-{on_error}.json"
    (corpus / name).write_text(json.dumps(record, indent=1), encoding="utf-8")


def _cpu() -> float:
    mine = resource.getrusage(resource.RUSAGE_SELF)
    theirs = resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + theirs.ru_utime + theirs.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="inputs per fixture")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes (0: in this process)"
    )
    parser.add_argument(
        "--plain", action="store_true", help="a new case file for every run, in this process"
    )
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="where findings go")
    parser.add_argument(
        "--formats",
        help="only these adapters, comma-separated (their inputs as the whole seed draws them)",
    )
    args = parser.parse_args()
    formats = frozenset(args.formats.split(",")) if args.formats else None
    unknown = (formats or frozenset()) - {fmt for fmt, _ in SOURCES}
    if unknown:
        parser.error(f"no fixtures for {', '.join(sorted(unknown))}")
    load_before = os.getloadavg()[0]
    started, cpu_started = time.perf_counter(), _cpu()
    counts = campaign(
        args.runs,
        args.seed,
        workers=args.workers,
        plain=args.plain,
        corpus=args.corpus,
        formats=formats,
        say=lambda line: print(line, flush=True),
    )
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu_started
    peak = max(
        resource.getrusage(who).ru_maxrss
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    runs = sum(counts.values())
    how = "plain" if args.plain else f"{args.workers} workers"
    only = f" of {args.formats}" if formats else ""
    print(
        f"{runs} runs ({args.runs} inputs per fixture{only}, 2 modes, {how}) in {seconds:.0f} s: "
        f"{runs / seconds:.1f} runs/s; CPU {cpu:.0f} s ({1000 * cpu / max(runs, 1):.1f} ms "
        f"a run); peak RSS of one process {peak / 1024:.0f} MiB; load average "
        f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
    )
    for fmt in sorted({f for f, _ in counts}):
        line = ", ".join(f"{k} {counts[(fmt, k)]}" for k in KINDS)
        print(f"  {fmt}: {line}")
    found = sum(n for (_, k), n in counts.items() if k in ("crash", "mismatch"))
    print(f"written to {args.corpus}: {found}")


if __name__ == "__main__":
    main()
