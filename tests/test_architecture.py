"""The architecture as docs/architecture.md draws it: no import cycle between the
modules of concerted, and no module long enough to become the centre of gravity unless
the page says why."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "concerted"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

#: Lines a module may have before docs/architecture.md must say why it is one module.
MAX_LINES = 650


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name)."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, in functions too, except under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The innermost module of the package that ``name`` (dotted) names, if any."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def _targets(
    module: str, path: Path, node: ast.Import | ast.ImportFrom, modules: dict[str, Path]
) -> set[str]:
    """The package's modules that one import statement of ``module`` loads by name: a
    ``from package import module`` counts as importing the module."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            package = package[: len(package) - node.level + 1]
            base = ".".join([*package, node.module] if node.module else package)
        names = [
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
            for alias in node.names
        ]
    out = set()
    for name in names:
        if name == "concerted" or name.startswith("concerted."):
            target = _resolve(name, modules)
            if target is not None and target != module:
                out.add(target)
    return out


@functools.cache
def import_graph() -> nx.DiGraph:
    """Module -> the modules it imports, over the whole package (read once a run;
    callers do not change it)."""
    modules = _modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _imports(tree):
            for target in _targets(module, path, node, modules):
                graph.add_edge(module, target)
    return graph


def test_the_resolver_reads_every_form_of_import() -> None:
    modules = {
        name: PACKAGE / "x.py"
        for name in ("concerted", "concerted.a", "concerted.p", "concerted.p.b", "concerted.p.c")
    }
    source = """
import concerted.p.b
from concerted import a
from concerted.p import c, NAME
from . import b as bee
from .c import thing
def late():
    from concerted.a import f
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    import concerted
"""
    path = PACKAGE / "p" / "d.py"
    found = set()
    for node in _imports(ast.parse(source)):
        found |= _targets("concerted.p.d", path, node, modules)
    assert found == {"concerted.p.b", "concerted.a", "concerted.p.c", "concerted.p"}


def test_no_import_cycle() -> None:
    graph = import_graph()
    assert graph.number_of_edges() > 50
    # The outputs read a result directory: they never reach back into the analysis.
    assert not nx.has_path(graph, "concerted.outputs", "concerted.analysis")
    assert {"concerted.analysis", "concerted.outputs"} <= set(graph["concerted.demo"])
    try:
        cycle = nx.find_cycle(graph)
    except nx.NetworkXNoCycle:
        return
    pytest.fail("import cycle: " + " -> ".join([*(a for a, _ in cycle), cycle[0][0]]))


def _long_modules_allowed() -> set[str]:
    """The modules docs/architecture.md's "Long modules" section names (``x.py``, or a
    path under ``src/concerted``)."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    match = re.search(r"^## Long modules\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, "docs/architecture.md has no 'Long modules' section"
    return set(re.findall(r"`([\w/]+\.py)`", match.group(1)))


def test_long_modules_are_explained() -> None:
    allowed = _long_modules_allowed()
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        listed = any(relative == name or relative.endswith("/" + name) for name in allowed)
        if lines > MAX_LINES and not listed:
            too_long.append(f"{relative} ({lines} lines)")
    assert not too_long, (
        f"over {MAX_LINES} lines and not in docs/architecture.md's 'Long modules' "
        f"section: {', '.join(too_long)}"
    )


def test_settings_import_no_stage() -> None:
    """``config.py`` loads and composes the settings of every stage: it reads the
    detector registry, the contracts and the error tree, and imports no stage."""
    allowed = {
        "concerted",
        "concerted.detectors",
        "concerted.detectors.base",
        "concerted.errors",
        "concerted.schema",
    }
    imported = set(import_graph().successors("concerted.config"))
    assert imported <= allowed, sorted(imported - allowed)


def test_outputs_read_a_result_never_the_analysis() -> None:
    """The report and the exports read a finished result directory: nothing under
    ``concerted.outputs`` imports the analysis, the brigade stage or the case store's
    writers."""
    graph = import_graph()
    outputs = [m for m in graph if m.startswith("concerted.outputs")]
    reached = set().union(*(nx.descendants(graph, m) for m in outputs))
    assert not reached & {"concerted.analysis", "concerted.brigades", "concerted.ingest"}
