"""Named components: built-ins and entry points, registered the same way.

Adapters and detectors are each a :class:`Registry`: a name and a ``module:attribute``
reference for every built-in, extended by other packages through an entry-point group,
so that a third-party component plugs in exactly as a built-in one does.

>>> r = Registry("widget", "concerted.widgets", {"path": "pathlib:Path"})
>>> r.load("path").__name__
'Path'
>>> r.load("spanner")
Traceback (most recent call last):
...
concerted.errors.UnknownComponentError: no widget named 'spanner'; known: path
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from functools import cached_property
from importlib.metadata import entry_points
from typing import Any

from concerted.errors import UnknownComponentError

__all__ = ["Registry"]


class Registry:
    """Components of one kind, by name."""

    def __init__(self, kind: str, group: str, builtin: Mapping[str, str]) -> None:
        self.kind = kind
        self.group = group
        self.builtin = dict(builtin)

    @cached_property
    def _found(self) -> dict[str, str]:
        found = dict(self.builtin)
        for ep in entry_points(group=self.group):
            found.setdefault(ep.name, ep.value)
        return found

    def available(self) -> dict[str, str]:
        """Names and where each is defined."""
        return dict(self._found)

    def load(self, name: str) -> Any:
        """The attribute registered as ``name`` (a class, as a rule)."""
        try:
            target = self._found[name]
        except KeyError:
            raise UnknownComponentError(self.kind, name, self._found) from None
        module, _, attr = target.partition(":")
        return getattr(importlib.import_module(module), attr)
