"""``concerted demo``: a simulated platform, analysed, reported and scored.

The README's first command. It shows the whole pipeline on data whose truth is known:
simulate a scenario, ingest it, analyse it, write the report and score the result
against the simulation's truth.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from concerted import analysis, evaluate, simulate
from concerted.ingest import IngestOptions, open_case
from concerted.outputs import REPORT_FILE, page

__all__ = ["Demo", "demo"]


@dataclass(frozen=True)
class Demo:
    """Where ``concerted demo`` left its files, and how the analysis scored."""

    data: Path
    result: Path
    report: Path
    run: dict[str, Any]
    evaluation: dict[str, Any]


def demo(
    out: str | Path = "concerted-demo",
    *,
    seed: int = 0,
    scale: float = 1.0,
    scenario: str = "pakistan-2020",
    progress: Callable[[str], None] | None = None,
) -> Demo:
    """Simulate ``scenario``, ingest it, analyse it, write the report (titled after the
    scenario) and score the result against the simulation's truth: ``out/data`` holds
    the simulated platform, ``out/result`` the analysis and ``report.html``. A rerun
    replaces both."""
    say = progress or (lambda _: None)
    out = Path(out)
    data, result = out / "data", out / "result"
    simulate.simulate(
        simulate.scenario(scenario, scale=scale), seed=seed, out=data, overwrite=True, progress=say
    )
    case = result / "case.duckdb"
    # The demo's own case from a former run: a new seed must not add to it.
    for stale in (case, case.with_name(case.name + ".wal"), result / REPORT_FILE):
        stale.unlink(missing_ok=True)
    shutil.rmtree(case.with_name(case.name + ".tmp"), ignore_errors=True)
    store, _ = open_case([data], case, IngestOptions(format="generic"), progress=say)
    with store:
        run = analysis.analyze(store, result, overwrite=True, progress=say)
    say("report")
    report = page.write(result, title=f"Coordination report: simulated {scenario}, seed {seed}")
    say("evaluate")
    evaluation = evaluate.evaluate(result, data)
    return Demo(data=data, result=result, report=report, run=run, evaluation=evaluation)
