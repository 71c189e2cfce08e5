"""Simulator benchmark: a scenario of about 10^7 actions, streamed to Parquet.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.simulate                       # pakistan-2020, scale 8
    .venv/bin/python -m benchmarks.simulate --scenario brigade --scale 20 --json

The scenario runs through the library (``simulate.scenario(...)`` and
``simulate.simulate(...)``) in a child process, so that the peak resident memory
reported (the child's own ``ru_maxrss``, from ``wait4``) is the run's alone. The clock
covers generation and writing, and then, separately, counting the actions the files
derive (the same SQL ingest runs). Rows are the rows of ``accounts``, ``posts``,
``reports``, ``roles`` and ``truth`` together; the output is deleted afterwards unless
``--keep`` is given.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.ingest import DEFAULT_OUT, MIB, machine, run_child


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    from concerted import simulate

    stages: dict[str, float] = {}
    peaks: dict[str, int] = {}
    began = time.perf_counter()
    last = ["start"]

    def progress(message: str) -> None:
        # The peak so far, as each stage ends: which stage holds the memory.
        peaks[last[0]] = _peak_mib()
        stages[message] = round(time.perf_counter() - began, 2)
        last[0] = message

    sc = simulate.scenario(spec["scenario"], scale=spec["scale"])
    summary = simulate.simulate(
        sc, seed=spec["seed"], out=spec["out"], overwrite=True, progress=progress
    )
    peaks[last[0]] = _peak_mib()
    counting = stages.get("counting actions", summary.seconds)
    return {
        "rows": dict(summary.rows),
        "actions": summary.actions,
        "seconds": round(counting, 2),
        "count_seconds": round(summary.seconds - counting, 2),
        "stages": stages,
        "peak_mib_by_stage": peaks,
        "out_mib": round(sum(p.stat().st_size for p in Path(spec["out"]).iterdir()) / MIB, 1),
    }


def _peak_mib() -> int:
    """This process's peak resident memory so far (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return 0


def run(scenario: str, scale: float, seed: int, out: Path) -> dict[str, Any]:
    """Simulate in a child process and measure it."""
    spec = {"scenario": scenario, "scale": scale, "seed": seed, "out": str(out)}
    code, printed, stderr, peak_rss_mib = run_child("benchmarks.simulate", spec)
    if code != 0:
        sys.stderr.write(stderr)
        raise SystemExit(f"the simulation failed (exit status {code})")
    found: dict[str, Any] = json.loads(printed.strip().splitlines()[-1])
    rows = sum(found["rows"].values())
    found |= {
        "scenario": scenario,
        "scale": scale,
        "seed": seed,
        "total_rows": rows,
        "rows_per_second": round(rows / found["seconds"]),
        "actions_per_second": round(found["actions"] / found["seconds"]),
        "peak_rss_mib": round(peak_rss_mib),
    }
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--scenario", default="pakistan-2020", help="a scenario name")
    parser.add_argument("--scale", type=float, default=8.0, help="the scenario's scale")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help="where files go")
    parser.add_argument("--keep", action="store_true", help="keep the simulated files")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return 0
    out = args.out_dir.resolve() / f"sim-{args.scenario}-{args.scale:g}"
    try:
        result = run(args.scenario, args.scale, args.seed, out)
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    result["machine"] = machine()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    rows = " · ".join(f"{t} {n:,}" for t, n in result["rows"].items())
    print(
        f"{result['scenario']} scale {result['scale']:g} seed {result['seed']}: {rows}\n"
        f"  {result['total_rows']:,} rows, {result['actions']:,} actions in "
        f"{result['seconds']:.1f} s: {result['rows_per_second']:,} rows/s, "
        f"{result['actions_per_second']:,} actions/s; counting the actions took "
        f"{result['count_seconds']:.1f} s more\n"
        f"  peak RSS {result['peak_rss_mib']:,} MiB; {result['out_mib']:,} MiB of Parquet\n"
        f"  stages (s from start): {result['stages']}\n"
        f"  peak MiB as each stage ended: {result['peak_mib_by_stage']}\n"
        f"  machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, "
        f"{result['machine']['ram_gib']} GiB; Python {result['machine']['python']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
