"""The whole analysis at scale: ``concerted analyze`` on 10^6, 10^7 or 10^8 actions.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.analyze                              # 10^6 actions
    .venv/bin/python -m benchmarks.analyze --actions 10000000 --memory-limit 8GB
    .venv/bin/python -m benchmarks.analyze --actions 100000000 --memory-limit 12GB

1. **Build** (once per size, seed, workload and scenario; cached under ``--out``, by
   default ``bench-data/analyze``): ``concerted simulate --scenario pakistan-2020``
   with about ``--actions`` actions, then ingested into a case file, as the demo does.
   The simulator is the workload because it has every part the analysis reads: an
   organic population posting texts in four languages (so near-duplicate texts run),
   reposts, shares, URLs and hashtags, a planted network of pages, groups and
   accounts, and mass-reporting brigades, so that the networks and the brigade stage
   are not empty. It reaches 10^8 actions in about ten minutes (BENCHMARKS.md,
   "Simulate"). Each step runs in a child process and is timed.

   **The workload** (``--workload``) says how the size grows. ``days`` (the default)
   keeps the population of the 10^6 case (scale 0.805: 1,242,145 actions per unit of
   scale for 14 days, from the simulator's benchmark) and lengthens its time span
   (``population.days``: 14 at 10^6, 140 at 10^7, 1,400 at 10^8), as a real archive of
   10^8 actions spans years. Its hashtags, domains and URLs (a fixed vocabulary) then
   keep the actions on one object within one minute about as many at every size:
   pairs of actions on one hashtag in the same minute grow 9.2 times from 10^6 to 10^7
   (590,629 to 5,415,874), with the actions. Reposts and replies still grow faster
   (pairs in the same minute 68 times): the simulator draws them from a pool of
   popular posts sized by the population, not the span, so each pooled post draws
   ten times the reposts within its first hours. ``accounts`` (the first runs'
   workload) keeps 14 days and grows the population (``--scale``): its pairs on one
   hashtag in the same minute grow 90 times from 10^6 to 10^7 (52,970,434), with the
   square of the actions. Both give the same case at 10^6, so the 10^6 figures of
   either compare.
2. **Analyse**, one child process: ``analysis.analyze`` on the cached case opened
   read-only (as ``concerted analyze CASE`` opens one), with DuckDB's ``memory_limit``
   at ``--memory-limit`` (the command's ``--memory-limit``) and its spill in a fresh
   directory. The limit is DuckDB's own: work beyond it spills to disk. What the
   process holds beyond it (Python, Arrow, numpy) is observed, not capped (an
   ``RLIMIT_AS`` breaks the libraries that map large regions): the child's peak
   resident memory (``ru_maxrss`` from ``wait4``) is compared with ``--budget`` (GiB).
   A thread in the child reads ``VmRSS`` from ``/proc/self/status`` every 0.2 s (and
   the size of its spill directory every second, so each stage gets its largest); at
   every boundary of the analysis clock's stages (its progress messages) it reads
   ``VmHWM``, ``VmRSS`` and the process's CPU time, so each stage gets its CPU
   seconds, its largest sampled resident memory and, where the process's peak rose
   during it, the new peak. Writing ``report.html`` after ``run.json`` is the stage
   ``page``. The parent measures the spill directory every 2 s (its peak is printed)
   and stops the child when the spill passes ``--max-spill`` GiB or the disk's free
   space falls under ``--min-free`` GiB: the disk is shared, and a run at 10^7 spilled
   20 GiB within its co-action pairing. A stopped run prints what it measured so far
   and its log (the stages it reached, with their resident memory and DuckDB's).
3. **Report**: wall, CPU seconds (user + system, the child's own), peak RSS, the
   stage that reached it, the load average before and after, the clock's seconds of
   every stage with their CPU seconds and memory, and the run's counts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.ingest import DEFAULT_OUT, REPO, machine

__all__ = ["main"]

# Bump when the way a case is built changes, so that older cases are not reused.
GENERATOR_VERSION = 2  # 2: popular posts ranked per period of the span (spans over 14 days)
#: Actions per unit of the simulator's scale (pakistan-2020 at scale 8: 9,937,162).
ACTIONS_PER_SCALE = 9_937_162 / 8
SCENARIO = "pakistan-2020"
#: The simulator's own time span (``population.days``), and the size it gives at the
#: scale the ``days`` workload keeps.
BASE_DAYS = 14
BASE_ACTIONS = 1_000_000
MIB = 2**20
SAMPLE_SECONDS = 0.2
#: The spill directory is measured every this many samples (each second).
SPILL_EVERY = 5


def _load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def _status() -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` of this process, in KiB."""
    out: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":", 1)
            out[key] = int(value.split()[0])
    return out


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def workload(actions: int, kind: str = "days") -> tuple[float, int]:
    """The simulator's scale and days for about ``actions`` actions.

    ``days`` (the default) keeps the population of the 10^6 case (scale 0.805) and
    lengthens its time span: the actions on one object within one window stay about
    as many at every size, as in a real archive that spans months or years.
    ``accounts`` keeps 14 days and grows the population, so that those actions, and
    the pairs on one object with their square, grow with the size (the workload of
    the first runs). Both give the same case at 10^6.

    >>> workload(10_000_000)
    (0.805, 140)
    >>> workload(10_000_000, "accounts")
    (8.05, 14)
    >>> workload(1_000_000) == workload(1_000_000, "accounts")
    True
    """
    if kind == "accounts":
        return scale_for(actions), BASE_DAYS
    return scale_for(BASE_ACTIONS), max(1, round(BASE_DAYS * actions / BASE_ACTIONS))


def scale_for(actions: int) -> float:
    """The simulator's scale for about ``actions`` actions, to three digits.

    >>> scale_for(10_000_000)
    8.05
    """
    return float(f"{actions / ACTIONS_PER_SCALE:.3g}")


# -- the child processes ---------------------------------------------------------------


class _Stages:
    """Per-stage CPU seconds and resident memory, from the analysis's progress."""

    def __init__(self, spill: Path | None = None) -> None:
        self.current = "start"
        # The spill directory's largest size seen in each stage (every second).
        self.spill = spill
        self.spill_max: dict[str, int] = {}
        self.order: list[str] = ["start"]
        self.cpu: dict[str, float] = {"start": 0.0}
        self.rss_max: dict[str, int] = {"start": 0}
        self.peak_rose: dict[str, int] = {}
        # DuckDB's own memory (its buffer manager) as each stage began, read through a
        # cursor of the case's database: what the rest of RSS is, is Python's.
        self.duckdb_mib: dict[str, int] = {}
        self.rss_start: dict[str, int] = {}
        self.cursor: Any = None
        self._mark_cpu = _cpu()
        self._mark_hwm = _status().get("VmHWM", 0)
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        ticks = 0
        while not self._done.wait(SAMPLE_SECONDS):
            rss = _status().get("VmRSS", 0)
            ticks += 1
            spill = _size(self.spill) if self.spill and ticks % SPILL_EVERY == 0 else None
            with self._lock:
                name = self.current
                self.rss_max[name] = max(self.rss_max.get(name, 0), rss)
                if spill is not None:
                    self.spill_max[name] = max(self.spill_max.get(name, 0), spill)

    def enter(self, name: str) -> None:
        """Close the stage running and start ``name``."""
        status, cpu = _status(), _cpu()
        duck = None
        if self.cursor is not None:
            row = self.cursor.execute(
                "SELECT sum(memory_usage_bytes) FROM duckdb_memory()"
            ).fetchone()
            duck = round(int(row[0] or 0) / MIB) if row else None
        rss, hwm = status.get("VmRSS", 0), status.get("VmHWM", 0)
        with self._lock:
            last = self.current
            self.cpu[last] = self.cpu.get(last, 0.0) + cpu - self._mark_cpu
            self.rss_max[last] = max(self.rss_max.get(last, 0), rss)
            if hwm > self._mark_hwm:
                self.peak_rose[last] = hwm
                self._mark_hwm = hwm
            self._mark_cpu = cpu
            self.current = name
            if name not in self.cpu:
                self.order.append(name)
                self.cpu[name] = 0.0
                self.rss_max[name] = rss
                self.rss_start[name] = rss
                if duck is not None:
                    self.duckdb_mib[name] = duck
        # The child's log: where a long run has got to.
        print(
            f"{time.strftime('%H:%M:%S')} {name} (RSS {rss // 1024:,} MiB, DuckDB {duck} MiB)",
            flush=True,
        )

    def close(self) -> dict[str, Any]:
        self._done.set()
        self._thread.join()
        return {
            "stages": [
                {
                    "stage": name,
                    "cpu_seconds": round(self.cpu[name], 2),
                    "rss_max_mib": round(self.rss_max.get(name, 0) / 1024),
                    "rss_at_start_mib": round(self.rss_start.get(name, 0) / 1024),
                    "duckdb_at_start_mib": self.duckdb_mib.get(name),
                    # None: the stage ended before the spill was measured in it.
                    "spill_max_mib": (
                        round(self.spill_max[name] / MIB) if name in self.spill_max else None
                    ),
                    "peak_rose_to_mib": (
                        round(self.peak_rose[name] / 1024) if name in self.peak_rose else None
                    ),
                }
                for name in self.order
            ],
        }


def _child_build(args: argparse.Namespace) -> int:
    from concerted import simulate
    from concerted.ingest import IngestOptions, open_case

    world = Path(args.world)
    say: Callable[[str], None] = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if args.step == "simulate":
        simulate.simulate(
            simulate.scenario(
                SCENARIO, scale=args.scale, knobs={"population.days": str(args.days)}
            ),
            seed=args.seed,
            out=world / "data",
            overwrite=True,
            progress=say,
        )
        return 0
    # truth.parquet is the simulation's answer, not the platform's data.
    data = [p for p in sorted((world / "data").glob("*.parquet")) if p.stem != "truth"]
    store, _ = open_case(
        data,
        world / "case.duckdb",
        IngestOptions(format="generic"),
        memory_limit=args.memory_limit,
        temp_directory=world / "spill",
        progress=say,
    )
    store.close()
    shutil.rmtree(world / "spill", ignore_errors=True)
    return 0


def _child_analyze(args: argparse.Namespace) -> int:
    from concerted import analysis
    from concerted.outputs import page
    from concerted.store import Store

    work = Path(args.work)
    stages = _Stages(work / "spill")
    write_page = page.write

    def paged(*a: Any, **k: Any) -> Any:
        stages.enter("page")
        return write_page(*a, **k)

    page.write = paged
    store = Store(
        args.case,
        read_only=True,
        memory_limit=args.memory_limit,
        temp_directory=work / "spill",
    )
    stages.cursor = store.con.cursor()
    with store:
        run = analysis.analyze(store, work / "result", overwrite=True, progress=stages.enter)
        stages.enter("end")
        stages.cursor.close()
        stages.cursor = None
    figures = stages.close()
    figures["seconds"] = run["seconds"]
    figures["counts"] = run["counts"]
    (work / "stages.json").write_text(json.dumps(figures, indent=2) + "\n")
    return 0


# -- the parent --------------------------------------------------------------------------


def _size(directory: Path) -> int:
    """Bytes of the files under ``directory`` (0 if it is not there)."""
    total = 0
    for root, _, files in os.walk(directory):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


class _Guard(threading.Thread):
    """Watches a child's spill directory every 2 s: its peak size, and the child
    stopped when the spill passes ``max_spill`` bytes or the disk's free space falls
    under ``min_free`` bytes (the disk is shared)."""

    def __init__(self, proc: subprocess.Popen[Any], spill: Path, max_spill: int, min_free: int):
        super().__init__(daemon=True)
        self.proc, self.spill = proc, spill
        self.max_spill, self.min_free = max_spill, min_free
        self.peak = 0
        self.stopped: str | None = None

    def run(self) -> None:
        while self.proc.poll() is None:
            size = _size(self.spill)
            self.peak = max(self.peak, size)
            free = shutil.disk_usage(self.spill.parent).free
            if size > self.max_spill or free < self.min_free:
                self.stopped = (
                    f"stopped: spill {size / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free on disk"
                )
                self.proc.kill()
                return
            time.sleep(2)


def _spawn(
    command: list[str],
    log: Path,
    spill: Path | None = None,
    max_spill: int = 0,
    min_free: int = 0,
) -> dict[str, Any]:
    """Run ``command`` as a child, measured: wall, its own CPU and peak RSS (``wait4``),
    the load average before and after, and with ``spill`` its spill's peak size."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    load_before = _load()
    began = time.perf_counter()
    guard = None
    with log.open("w") as printed:
        proc = subprocess.Popen(command, stdout=printed, stderr=subprocess.STDOUT, env=env)
        if spill is not None:
            guard = _Guard(proc, spill, max_spill, min_free)
            guard.start()
        # wait4, not proc.wait(): it gives this child's own resource usage.
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - began
    figures: dict[str, Any] = {
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024),
        "load_before": load_before,
        "load_after": _load(),
    }
    if guard is not None:
        guard.join()
        figures["peak_spill_mib"] = round(guard.peak / MIB)
    if proc.returncode:
        tail = log.read_text()[-4000:]
        why = guard.stopped if guard is not None and guard.stopped else "failed"
        raise SystemExit(f"{' '.join(command)} {why}\n{json.dumps(figures)}\n{tail}")
    return figures


def _self(*extra: str) -> list[str]:
    return [sys.executable, "-m", "benchmarks.analyze", *extra]


def build(
    root: Path, actions: int, seed: int, memory_limit: str, kind: str = "days"
) -> tuple[Path, dict[str, Any]]:
    """The cached case of about ``actions`` actions of workload ``kind``, built first
    if missing (in a directory of its own, renamed into place when whole); the build's
    figures."""
    scale, days = workload(actions, kind)
    key = f"{SCENARIO}-seed{seed}-scale{scale:g}-v{GENERATOR_VERSION}"
    if days != BASE_DAYS:
        key += f"-days{days}"
    world = root / key
    if (world / "case.duckdb").is_file():
        return world / "case.duckdb", {"cached": str(world)}
    root.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
    figures: dict[str, Any] = {"scale": scale, "days": days}
    try:
        for step in ("simulate", "ingest"):
            figures[step] = _spawn(
                _self(
                    "--child",
                    step,
                    "--world",
                    str(building),
                    "--scale",
                    str(scale),
                    "--days",
                    str(days),
                    "--seed",
                    str(seed),
                    "--memory-limit",
                    memory_limit,
                ),
                building / f"{step}.log",
            )
            print(f"{step}: {figures[step]}", file=sys.stderr, flush=True)
        building.rename(world)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return world / "case.duckdb", figures


def analyse(
    case: Path, work: Path, memory_limit: str, max_spill: int, min_free: int
) -> dict[str, Any]:
    """One measured analysis of ``case`` in a child process."""
    figures = _spawn(
        _self(
            "--child",
            "analyze",
            "--case",
            str(case),
            "--work",
            str(work),
            "--memory-limit",
            memory_limit,
        ),
        work / "analyze.log",
        spill=work / "spill",
        max_spill=max_spill,
        min_free=min_free,
    )
    figures.update(json.loads((work / "stages.json").read_text()))
    rose = [s for s in figures["stages"] if s["peak_rose_to_mib"] is not None]
    figures["peak_stage"] = rose[-1]["stage"] if rose else None
    return figures


def _print(report: dict[str, Any]) -> None:
    m, r = report["machine"], report["analyze"]
    print(f"commit {m['commit']}{' (src modified)' if m['src_modified'] else ''}")
    print(
        f"{r['counts']['actions']:,} actions ({report['workload']} workload: scale "
        f"{report['scale']}, {report['days']} days); DuckDB memory_limit "
        f"{report['memory_limit']}; budget {report['budget_gib']} GiB"
    )
    print(
        f"analyze: {r['wall_seconds']} s wall, {r['cpu_seconds']} CPU s, peak RSS "
        f"{r['peak_rss_mib']:,} MiB ({'within' if report['within_budget'] else 'OVER'} "
        f"budget), reached in {r['peak_stage']}; load {r['load_before']} -> {r['load_after']}"
    )
    print(f"spill at most {r['peak_spill_mib']:,} MiB")
    seconds = r["seconds"]
    print(
        f"{'stage':28} {'wall s':>8} {'CPU s':>8} {'max RSS MiB':>12} {'peak rose to':>13} "
        f"{'DuckDB MiB at start':>20} {'max spill MiB':>14}"
    )
    for s in r["stages"]:
        rose = s["peak_rose_to_mib"]
        wall = seconds.get(s["stage"])
        duck = s["duckdb_at_start_mib"]
        spill = s.get("spill_max_mib")
        print(
            f"{s['stage'][:28]:28} {'' if wall is None else f'{wall:.1f}':>8} "
            f"{s['cpu_seconds']:8.1f} {s['rss_max_mib']:12,} "
            f"{'' if rose is None else f'{rose:,}':>13} {'' if duck is None else duck:>20} "
            f"{'' if spill is None else f'{spill:,}':>14}"
        )
    print("counts: " + ", ".join(f"{k} {v:,}" for k, v in r["counts"].items()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workload",
        choices=("days", "accounts"),
        default="days",
        help="grow the time span (days, the default) or the population (accounts)",
    )
    parser.add_argument("--memory-limit", default="4GB", help="DuckDB's memory_limit")
    parser.add_argument("--budget", type=float, default=16.0, help="peak RSS budget, GiB")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT / "analyze")
    parser.add_argument(
        "--max-spill", type=float, default=20.0, help="stop the analysis beyond this spill, GiB"
    )
    parser.add_argument(
        "--min-free", type=float, default=10.0, help="stop it below this free disk, GiB"
    )
    parser.add_argument("--keep", action="store_true", help="keep the result directory")
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    # The child processes' own arguments.
    parser.add_argument(
        "--child", choices=("simulate", "ingest", "analyze"), help=argparse.SUPPRESS
    )
    parser.add_argument("--world", help=argparse.SUPPRESS)
    parser.add_argument("--scale", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--days", type=int, default=BASE_DAYS, help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "analyze":
        return _child_analyze(args)
    if args.child:
        args.step = args.child
        return _child_build(args)

    case, built = build(args.out, args.actions, args.seed, args.memory_limit, args.workload)
    if args.build_only:
        print(json.dumps(built, indent=2))
        return 0
    work = Path(tempfile.mkdtemp(prefix="run-", dir=args.out))
    try:
        figures = analyse(
            case,
            work,
            args.memory_limit,
            max_spill=round(args.max_spill * 2**30),
            min_free=round(args.min_free * 2**30),
        )
    finally:
        shutil.rmtree(work / "spill", ignore_errors=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report = {
        "machine": machine(),
        "case": str(case),
        "workload": args.workload,
        "scale": workload(args.actions, args.workload)[0],
        "days": workload(args.actions, args.workload)[1],
        "memory_limit": args.memory_limit,
        "budget_gib": args.budget,
        "build": built,
        "analyze": figures,
        "within_budget": figures["peak_rss_mib"] <= args.budget * 1024,
    }
    if args.keep:
        report["result"] = str(work / "result")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
