"""``concerted demo``: a simulated platform, analysed, reported and scored.

The README's first command. It shows the whole pipeline on data whose truth is known:
simulate a scenario, ingest it, analyse it, write the report and score the result
against the simulation's truth.

The simulated world (the platform's files with their truth, and the case ingested from
them) depends only on the scenario, seed and scale and on concerted's own code, so it
is made once and kept in the user's cache directory (:func:`cache_directory`), under a
key of those and a digest of the package's files: any change to the code makes a new
one. A later demo copies it and runs the analysis, the report and the evaluation
again; the analysis is never skipped. The demo's DuckDB works within
:data:`MEMORY_LIMIT` (``CONCERTED_MEMORY_LIMIT`` when set) and spills beyond it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from concerted import __version__, analysis, evaluate, simulate
from concerted.ingest import IngestOptions, open_case
from concerted.outputs import REPORT_FILE
from concerted.store import SCHEMA_VERSION, Store

__all__ = ["MEMORY_LIMIT", "Demo", "cache_directory", "demo", "world_key"]

#: DuckDB's memory limit in the demo, unless ``CONCERTED_MEMORY_LIMIT`` says otherwise:
#: the demo's case is small, and a modest limit keeps the whole run under 3 GiB.
MEMORY_LIMIT = "1536MB"

_CASE = "case.duckdb"


@dataclass(frozen=True)
class Demo:
    """Where ``concerted demo`` left its files, and how the analysis scored."""

    data: Path
    result: Path
    report: Path
    run: dict[str, Any]
    evaluation: dict[str, Any]


def cache_directory() -> Path:
    """Where the demo keeps its worlds: ``CONCERTED_CACHE``, else
    ``$XDG_CACHE_HOME/concerted``, else ``~/.cache/concerted``."""
    configured = os.environ.get("CONCERTED_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "concerted"


@functools.cache
def _code_digest() -> str:
    """A digest of every file of the installed package (its code, lexicons and
    templates), so that a world made by other code is never reused."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def world_key(scenario: str, seed: int, scale: float) -> str:
    """The name of the cached world of ``scenario`` at ``seed`` and ``scale``: readable
    parts, then a digest of them, concerted's version, the case schema's version and
    the package's files."""
    parts = {
        "scenario": scenario,
        "seed": seed,
        "scale": scale,
        "version": __version__,
        "schema": SCHEMA_VERSION,
        "code": _code_digest(),
    }
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
    return f"{_prefix(scenario, seed, scale)}{digest}"


def _prefix(scenario: str, seed: int, scale: float) -> str:
    return f"{scenario}-seed{seed}-scale{scale:g}-"


def _make_world(
    where: Path, scenario: str, seed: int, scale: float, say: Callable[[str], None]
) -> None:
    """Simulate into ``where/data`` and ingest it into ``where/case.duckdb``."""
    data = where / "data"
    simulate.simulate(
        simulate.scenario(scenario, scale=scale), seed=seed, out=data, overwrite=True, progress=say
    )
    store, _ = open_case(
        [data],
        where / _CASE,
        IngestOptions(format="generic"),
        memory_limit=_memory_limit(),
        progress=say,
    )
    store.close()
    shutil.rmtree(where / f"{_CASE}.tmp", ignore_errors=True)


def _cached_world(scenario: str, seed: int, scale: float, say: Callable[[str], None]) -> Path:
    """The cached world's directory, made first if it is not there (in a directory of
    its own, renamed into place when whole, so a failed or concurrent run never leaves
    half a world). Worlds of the same scenario, seed and scale made by other code are
    removed."""
    root = cache_directory()
    key = world_key(scenario, seed, scale)
    world = root / key
    if (world / _CASE).is_file():
        say(f"world: cached in {world}")
        return world
    root.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
    try:
        _make_world(building, scenario, seed, scale, say)
        try:
            building.rename(world)
        except OSError:
            if not (world / _CASE).is_file():  # not another demo's world made meanwhile
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    for stale in root.glob(f"{_prefix(scenario, seed, scale)}*"):
        if stale.name != key and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    return world


def _memory_limit() -> str:
    return os.environ.get("CONCERTED_MEMORY_LIMIT") or MEMORY_LIMIT


def demo(
    out: str | Path = "concerted-demo",
    *,
    seed: int = 0,
    scale: float = 1.0,
    scenario: str = "pakistan-2020",
    progress: Callable[[str], None] | None = None,
    cache: bool = True,
) -> Demo:
    """Simulate ``scenario``, ingest it, analyse it, write the report (titled after the
    scenario) and score the result against the simulation's truth: ``out/data`` holds
    the simulated platform, ``out/result`` the analysis, its case and ``report.html``.
    A rerun replaces both. With ``cache`` the simulated platform and its case come from
    (or go to) :func:`cache_directory`; the analysis runs every time."""
    say = progress or (lambda _: None)
    out = Path(out)
    data, result = out / "data", out / "result"
    case = result / _CASE
    # The demo's own case from a former run: a new seed must not add to it.
    for stale in (case, case.with_name(case.name + ".wal"), result / REPORT_FILE):
        stale.unlink(missing_ok=True)
    shutil.rmtree(case.with_name(case.name + ".tmp"), ignore_errors=True)
    world: Path | None = None
    if cache:
        try:
            world = _cached_world(scenario, seed, scale, say)
        except OSError as exc:
            # A cache directory that cannot be written costs the cache, not the demo.
            say(f"world: not cached ({exc})")
    if world is not None:
        shutil.rmtree(data, ignore_errors=True)
        shutil.copytree(world / "data", data)
        result.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(world / _CASE, case)
        # The case as made: read-only, as `concerted analyze CASE` opens one.
        store = Store(case, read_only=True, memory_limit=_memory_limit())
    else:
        simulate.simulate(
            simulate.scenario(scenario, scale=scale),
            seed=seed,
            out=data,
            overwrite=True,
            progress=say,
        )
        store, _ = open_case(
            [data],
            case,
            IngestOptions(format="generic"),
            memory_limit=_memory_limit(),
            progress=say,
        )
    title = f"Coordination report: simulated {scenario}, seed {seed}"
    with store:
        run = analysis.analyze(store, result, overwrite=True, progress=say, title=title)
    shutil.rmtree(case.with_name(case.name + ".tmp"), ignore_errors=True)
    report = result / REPORT_FILE
    say("evaluate")
    evaluation = evaluate.evaluate(result, data)
    return Demo(data=data, result=result, report=report, run=run, evaluation=evaluation)
