"""Detectors, registered by name, as adapters are.

Built-in detectors are registered exactly as third-party ones: a name and a
``module:Class`` reference; other packages add theirs through the entry-point group
``concerted.detectors``. Every registered detector must pass the conformance suite
(``tests/test_detectors.py``): empty in, empty out; independent of row order;
deterministic; never an account paired with itself; a planted campaign recovered.

>>> sorted(available())
['co_action']
>>> get("co_action", window=30).window
30.0
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from concerted.detectors.base import EDGE_COLUMNS, EVENT_COLUMNS, Detector, Evidence
from concerted.errors import ConfigError, UnknownComponentError

__all__ = ["EDGE_COLUMNS", "EVENT_COLUMNS", "Detector", "Evidence", "available", "get"]

ENTRY_POINT_GROUP = "concerted.detectors"

_BUILTIN = {
    "co_action": "concerted.detectors.coaction:CoAction",
}


@cache
def _registry() -> dict[str, str]:
    found = dict(_BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def available() -> dict[str, str]:
    """Detector names and where each is defined."""
    return dict(_registry())


def get(name: str, **settings: Any) -> Detector:
    """A new instance of the detector called ``name`` with ``settings``."""
    try:
        target = _registry()[name]
    except KeyError:
        raise UnknownComponentError("detector", name, _registry()) from None
    module, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    try:
        detector: Detector = cls(**settings)
    except TypeError as exc:
        raise ConfigError(f"detector {name}: {exc}") from exc
    return detector
