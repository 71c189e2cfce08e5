"""Detection on the simulator: the default analysis over scenarios, difficulties and seeds.

Usage (from the repository root)::

    .venv/bin/python -m benchmarks.detection                          # cib and organic, 5 seeds
    .venv/bin/python -m benchmarks.detection --scenario cib --difficulty real --seeds 3
    .venv/bin/python -m benchmarks.detection --config settings.toml    # other settings

Each run simulates the scenario (reports switched off unless ``--reports``, so that
the figures are of the network analysis alone), runs ``concerted analyze`` with the
defaults (or ``--config``) and ``concerted evaluate`` against the truth, and prints one
line: pairs tested and significant, the best q-value, campaigns flagged, operations
matched, false campaigns, and account precision and recall.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

NO_REPORTS = (
    "population.reports_per_day=0",
    "population.report_spikes=0",
    "population.callouts=0",
)


def _concerted(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "concerted", *args], capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"concerted {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", action="append", help="default: organic and cib")
    parser.add_argument("--difficulty", action="append", help="default: standard")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--reports", action="store_true", help="keep the organic reports")
    args = parser.parse_args(argv)
    print(
        f"{'scenario':14} {'difficulty':10} {'seed':>4} {'pairs':>8} {'signif.':>8} "
        f"{'best q':>9} {'flagged':>7} {'matched':>9} {'false':>5} {'precision':>9} "
        f"{'recall':>6}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in args.scenario or ["organic", "cib"]:
            for difficulty in args.difficulty or ["standard"]:
                for seed in range(args.seeds):
                    data = Path(tmp) / f"{scenario}-{difficulty}-{seed}"
                    out = Path(tmp) / f"out-{scenario}-{difficulty}-{seed}"
                    knobs = [] if args.reports else [x for k in NO_REPORTS for x in ("--set", k)]
                    _concerted(
                        "simulate", "--scenario", scenario, "--difficulty", difficulty,
                        "--seed", str(seed), "--out", str(data), *knobs,
                    )  # fmt: skip
                    config = ["--config", str(args.config)] if args.config else []
                    _concerted("analyze", str(data), "--out", str(out), *config)
                    score = json.loads(_concerted("evaluate", str(out), "--truth", str(data)))
                    run = json.loads((out / "run.json").read_text())
                    counts, notes = run["counts"], run["notes"]["significance"]
                    best = notes.get("best_q_value")
                    campaigns, accounts = score.get("campaigns", {}), score["accounts"]
                    print(
                        f"{scenario:14} {difficulty:10} {seed:>4} {counts['pairs']:>8,} "
                        f"{counts['significant_pairs']:>8,} "
                        f"{best if best is not None else float('nan'):>9.2g} "
                        f"{counts['flagged_campaigns']:>7} "
                        f"{campaigns.get('operations_matched', 0)}/"
                        f"{campaigns.get('operations', 0):<7} "
                        f"{campaigns.get('false_campaigns', 0):>5} "
                        f"{accounts['precision'] if accounts['precision'] is not None else '-':>9} "
                        f"{accounts['recall'] if accounts['recall'] is not None else '-':>6}",
                        flush=True,
                    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
