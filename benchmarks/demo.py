"""Demo benchmark: ``concerted demo`` as the README runs it, with its world made and
then cached.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.demo                  # scale 1, seed 0: the README's
    .venv/bin/python -m benchmarks.demo --scale 0.1 --json

Runs ``python -m concerted demo --json`` twice in child processes, with
``CONCERTED_CACHE`` pointing to a fresh directory: **cold** (the world is simulated,
ingested and cached, then analysed) and **warm** (the world is copied from the cache
and analysed again). For each it prints the wall seconds, the CPU seconds (user and
system, from ``wait4``: the child's own), its peak resident memory (``ru_maxrss``), the
1-minute load average before and after, the seconds of each stage of the analysis
(``run.json``) and the evaluation's F1 scores, which must be the same in both runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.ingest import REPO, machine

__all__ = ["main", "run_demo"]

_FIGURES = ("accounts", "targets", "reports", "automated_reporters", "campaigns")


def _load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def run_demo(out: Path, cache: Path, *, seed: int, scale: float) -> dict[str, Any]:
    """One ``concerted demo`` in a child process, measured."""
    env = dict(os.environ, CONCERTED_CACHE=str(cache))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "concerted", "demo", "--json"]
    command += ["--out", str(out), "--seed", str(seed), "--scale", str(scale)]
    load_before = _load()
    began = time.perf_counter()
    with tempfile.TemporaryFile("w+") as printed:
        proc = subprocess.Popen(command, stdout=printed, stderr=subprocess.PIPE, env=env, text=True)
        assert proc.stderr is not None
        with proc.stderr:
            errors = proc.stderr.read()
        # wait4, not proc.wait(): it gives this child's own resource usage.
        _, status, usage = os.wait4(proc.pid, 0)
        printed.seek(0)
        evaluation = printed.read()
    wall = time.perf_counter() - began
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"concerted demo failed:\n{errors}")
    scores = json.loads(evaluation)
    run = json.loads((out / "result" / "run.json").read_text())
    return {
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024),
        "load_before": load_before,
        "load_after": _load(),
        "stages": run.get("seconds", {}),
        "f1": {name: (scores.get(name) or {}).get("f1") for name in _FIGURES},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="concerted-demo-bench-") as work:
        root = Path(work)
        runs = {
            name: run_demo(root / name, root / "cache", seed=args.seed, scale=args.scale)
            for name in ("cold", "warm")
        }
    same = runs["cold"]["f1"] == runs["warm"]["f1"]
    report = {"machine": machine(), "seed": args.seed, "scale": args.scale, **runs, "same": same}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        m = report["machine"]
        print(f"commit {m['commit']}{' (src modified)' if m['src_modified'] else ''}")
        for name, r in runs.items():
            print(
                f"{name}: {r['wall_seconds']} s wall, {r['cpu_seconds']} CPU s, "
                f"peak RSS {r['peak_rss_mib']:,} MiB, load {r['load_before']} -> "
                f"{r['load_after']}; F1 {r['f1']}"
            )
            stages = sorted(r["stages"].items(), key=lambda kv: -float(kv[1]))
            print("  " + ", ".join(f"{k} {float(v):.1f}" for k, v in stages[:8]))
        print("same findings" if same else "FINDINGS DIFFER")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
