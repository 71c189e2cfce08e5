"""``summary.json``: the findings of a result as JSON, without any message text.

What the page's summary shows (each network's accounts by platform and kind, each
brigade's reporters, targets and reports, the targets to protect), with the inputs and
settings they came from, for a script or a spreadsheet to read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from concerted.outputs.base import SUMMARY_FILE
from concerted.outputs.figures import Limits
from concerted.outputs.model import collect

__all__ = ["FILES", "SUMMARY_FILE", "dump", "summarise", "write"]

FILES: tuple[str, ...] = (SUMMARY_FILE,)


def summarise(model: Mapping[str, Any]) -> dict[str, Any]:
    """The findings of a page model (:func:`~concerted.outputs.model.collect`)."""
    method = model["method"]
    return {
        "concerted": model["concerted"],
        "generated": model["generated"],
        "pseudonymised": method["pseudonymised"],
        "counts": method["counts"],
        "networks": model["summary"]["networks"],
        "brigades": model["summary"]["brigades"],
        "totals": model["summary"]["totals"],
        "protected_targets": model["summary"]["protected"],
        "unflagged_campaigns": model["summary"]["unflagged"],
        "inputs": method["inputs"],
        "settings": dict(method["settings"]),
        "capped": model["caps"],
    }


def dump(model: Mapping[str, Any], directory: Path) -> Path:
    """Write the findings of ``model`` to ``directory/summary.json``."""
    path = directory / SUMMARY_FILE
    path.write_text(json.dumps(summarise(model), indent=2, default=str) + "\n")
    return path


def write(
    result_dir: str | Path, /, *, out: str | Path | None = None, limits: Limits | None = None
) -> Path:
    """Write ``summary.json`` into ``out`` (a directory; default ``result_dir``) from the
    result directory alone; returns its path."""
    model = collect(result_dir, hide_text=True, limits=limits)
    return dump(model, Path(out) if out is not None else Path(result_dir))
