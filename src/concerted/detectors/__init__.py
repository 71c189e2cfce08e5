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

from typing import Any

from concerted.detectors.base import EDGE_COLUMNS, EVENT_COLUMNS, Detector, Evidence
from concerted.errors import ConfigError
from concerted.registry import Registry

__all__ = ["EDGE_COLUMNS", "EVENT_COLUMNS", "Detector", "Evidence", "available", "get"]

ENTRY_POINT_GROUP = "concerted.detectors"

_BUILTIN = {
    "co_action": "concerted.detectors.coaction:CoAction",
}


_REGISTRY = Registry("detector", ENTRY_POINT_GROUP, _BUILTIN)


def available() -> dict[str, str]:
    """Detector names and where each is defined."""
    return _REGISTRY.available()


def get(name: str, **settings: Any) -> Detector:
    """A new instance of the detector called ``name`` with ``settings``."""
    cls = _REGISTRY.load(name)
    try:
        detector: Detector = cls(**settings)
    except TypeError as exc:
        raise ConfigError(f"detector {name}: {exc}") from exc
    return detector
