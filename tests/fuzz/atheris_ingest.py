"""Coverage-guided fuzzing of one adapter with atheris (libFuzzer), for long runs.

::

    pip install -e '.[dev]'   # atheris is in the dev extra
    python -m tests.fuzz.atheris_ingest --fixture qut/messages.csv -- -runs=100000
    python -m tests.fuzz.atheris_ingest --fixture reports/reports.jsonl -- -max_total_time=600

``--fixture`` picks the adapter's starting file (one of ``sources.SOURCES``; its format
goes with it). Everything after ``--`` goes to libFuzzer (``-runs``, ``-max_total_time``,
``-jobs``, a corpus directory to grow). Each input is the fixture's bytes after
libFuzzer's own byte mutations or, half the time, after the structured mutations of
``mutations.py`` (a header renamed, a cell made enormous, a line cut…), and is ingested
with ``--on-error raise`` and ``quarantine`` in one kept case (``harness.Runner``,
emptied after each run, as the campaigns run). A crash (a
traceback that is not a ConcertedError) or counts that do not add up stop the run:
libFuzzer writes the input to ``crash-<sha1>``; ``--keep DIR`` also copies it into
``tests/fuzz/corpus``-style JSON (the bytes in base64) so that the test suite replays it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import random
import sys
import tempfile
from pathlib import Path

from tests.fuzz.mutations import MUTATIONS, mutate
from tests.fuzz.sources import FIXTURES, SOURCES

#: Inputs over this size are cut: a few long cells are worth trying, gigabytes are not.
MAX_SIZE = 4 * 1024 * 1024


def _arguments(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """Our options, and what follows ``--`` for libFuzzer."""
    split = argv.index("--") if "--" in argv else len(argv)
    ours, theirs = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--fixture",
        required=True,
        choices=[fixture for _, fixture in SOURCES],
        help="the starting file under tests/fixtures (its adapter goes with it)",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="a directory to write each failing input to as replayable JSON",
    )
    return parser.parse_args(ours), theirs


def structured(data: bytes, seed: int) -> bytes:
    """One to three of the structured mutations of ``mutations.py``, drawn from ``seed``.

    >>> structured(b"a,b\\n1,2\\n", 0) != b"a,b\\n1,2\\n"
    True
    """
    rng = random.Random(seed)
    names = rng.sample(sorted(MUTATIONS), rng.randint(1, 3))
    return mutate(data, names, rng.randrange(2**32))


def record(fmt: str, fixture: str, data: bytes, on_error: str, kind: str) -> dict[str, str]:
    """The corpus entry for a failing input: replayed by ``test_fuzz_ingest``."""
    return {
        "format": fmt,
        "fixture": fixture,
        "data_b64": base64.b64encode(data).decode("ascii"),
        "on_error": on_error,
        "outcome": kind,
    }


def main(argv: list[str] | None = None) -> None:
    import atheris  # type: ignore[import-untyped, import-not-found, unused-ignore]

    args, libfuzzer = _arguments(list(sys.argv[1:] if argv is None else argv))
    with atheris.instrument_imports(include=["concerted"]):
        from tests.fuzz.harness import MODES, Runner
    fmt = dict((fixture, f) for f, fixture in SOURCES)[args.fixture]
    seed_bytes = (FIXTURES / args.fixture).read_bytes()
    runner = Runner()

    def one_input(data: bytes) -> None:
        data = data[:MAX_SIZE] or seed_bytes
        for on_error, outcome in zip(MODES, runner.run_both(fmt, args.fixture, data), strict=True):
            if outcome.kind in ("crash", "mismatch"):
                if args.keep:
                    args.keep.mkdir(parents=True, exist_ok=True)
                    name = hashlib.sha1(data).hexdigest()[:12]
                    entry = record(fmt, args.fixture, data, on_error, outcome.kind)
                    (args.keep / f"atheris-{name}.json").write_text(json.dumps(entry) + "\n")
                raise AssertionError(f"{outcome.kind}: {outcome.detail[-500:]}")

    def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
        if not data:
            data = seed_bytes
        if seed % 2:
            return structured(data, seed)[:max_size]
        return bytes(atheris.Mutate(data, max_size))

    if not [a for a in libfuzzer if not a.startswith("-")]:
        # No corpus directory named: start from the fixture itself.
        start = Path(tempfile.mkdtemp(prefix="concerted-fuzz-"))
        (start / Path(args.fixture).name).write_bytes(seed_bytes)
        libfuzzer.append(str(start))
    atheris.Setup(
        [sys.argv[0], f"-max_len={MAX_SIZE}", *libfuzzer],
        one_input,
        custom_mutator=custom_mutator,
    )
    atheris.Fuzz()


if __name__ == "__main__":
    main()
