"""The investigation report: one HTML file that opens offline, built from a result
directory alone.

:func:`write` reads what ``concerted analyze`` wrote (through
:func:`~concerted.outputs.model.collect`) and writes ``report.html``, and
``summary.json`` beside it (:mod:`concerted.outputs.summary`), so ``concerted report
DIR`` can rebuild both from a finished run. The page is rendered from the Jinja2
templates in ``concerted/templates``; the charting libraries (uPlot for timelines,
Cytoscape.js for the network views) are vendored in ``concerted/assets`` and inlined
with every style and script, so no request leaves the page; so are the fonts of the
scripts the page's text uses that readers often lack (:mod:`concerted.outputs.fonts`).

A run without reports has no brigades, and the page says so; big runs are capped
(graph nodes and edges, table rows, target charts; see
:class:`~concerted.outputs.figures.Limits`) and the page says what was capped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from concerted import paths
from concerted.outputs import fonts, summary
from concerted.outputs.base import REPORT_FILE
from concerted.outputs.figures import Limits
from concerted.outputs.model import collect

__all__ = ["FILES", "REPORT_FILE", "render", "write"]

FILES: tuple[str, ...] = (REPORT_FILE, *summary.FILES)

# Vendored files, inlined in this order (see scripts/vendor_assets.sh).
_STYLES = ("uPlot.min.css",)
_SCRIPTS = ("uPlot.iife.min.js", "cytoscape.min.js")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("concerted", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["count"] = lambda v: "–" if v is None else f"{int(v):,}"
    env.filters["num"] = lambda v, d=2: "–" if v is None else f"{float(v):,.{d}f}"
    env.filters["score"] = _score
    env.filters["plural"] = _plural
    env.filters["fmt"] = _fmt
    env.filters["pct"] = lambda v: "–" if v is None else f"{100 * float(v):.0f}%"
    env.filters["size"] = _size
    return env


def _plural(n: Any, one: str, many: str | None = None) -> str:
    """A count and its noun.

    >>> _plural(1, "member"), _plural(1200, "member"), _plural(None, "report")
    ('1 member', '1,200 members', 'an unknown number of reports')
    """
    if n is None:
        return f"an unknown number of {many or one + 's'}"
    return f"{int(n):,} {one if int(n) == 1 else many or one + 's'}"


def _score(value: Any) -> str:
    """A score as the tables show it: whole numbers for large sums, else two decimals.

    >>> _score(501.0), _score(0.8321), _score(None)
    ('501', '0.83', '–')
    """
    if value is None:
        return "–"
    v = float(value)
    return f"{v:,.0f}" if abs(v) >= 10 else f"{v:.2f}"


def _fmt(value: Any) -> str:
    """Any setting or count for people.

    >>> _fmt(100660), _fmt(0.0042736), _fmt(True), _fmt("relabel")
    ('100,660', '0.00427', 'yes', 'relabel')
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return "none" if value is None else str(value)


def _size(n: int) -> str:
    """Bytes for people.

    >>> _size(1536)
    '1.5 KB'
    """
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"  # pragma: no cover


def _asset(name: str) -> str:
    text = resources.files("concerted").joinpath("assets", name).read_text(encoding="utf-8")
    # An inline script ends at the first "</script" whatever the JavaScript means.
    return text.replace("</script", "<\\/script").replace("</style", "<\\/style")


def render(model: Mapping[str, Any]) -> str:
    """The HTML page of a model from :func:`~concerted.outputs.model.collect`."""
    env = _environment()
    template = env.get_template("report.html.j2")
    styles = "\n".join(_asset(n) for n in _STYLES)
    scripts = [_asset(n) for n in _SCRIPTS]
    # Every text the page shows comes from the model: embed a font for each script in it.
    shown = json.dumps(model, ensure_ascii=False, default=str)
    return template.render(
        m=model,
        font_faces=fonts.font_faces(shown),
        vendor_styles=styles,
        vendor_scripts=scripts,
        own_style=_own("report.css"),
        own_script=_own("report.js"),
    )


def _own(name: str) -> str:
    text = resources.files("concerted").joinpath("templates", name).read_text(encoding="utf-8")
    return text.replace("</script", "<\\/script").replace("</style", "<\\/style")


def write(
    result_dir: str | Path,
    /,
    *,
    out: str | Path | None = None,
    hide_text: bool = False,
    limits: Limits | None = None,
    title: str | None = None,
    memory_limit: str | None = None,
) -> Path:
    """Write ``report.html`` (to ``out``, default ``result_dir/report.html``) and
    ``summary.json`` beside it, from the result directory alone; returns the page's
    path. ``hide_text`` leaves every message text out of the page; ``title`` replaces
    the one named after the case; ``memory_limit`` bounds the DuckDB database that
    reads the result (``analyze`` passes the case's)."""
    model = collect(
        result_dir, hide_text=hide_text, limits=limits, title=title, memory_limit=memory_limit
    )
    target = Path(out) if out is not None else Path(result_dir) / REPORT_FILE
    paths.directory(target.parent)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(render(model), encoding="utf-8")
    partial.replace(target)
    summary.dump(model, target.parent)
    return target
