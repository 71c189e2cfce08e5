"""Detectors, registered by name, as adapters are.

Built-in detectors are registered exactly as third-party ones: a name and a
``module:Class`` reference; other packages add theirs through the entry-point group
``concerted.detectors``. Every registered detector must pass the conformance suite
(``tests/test_detectors.py``): empty in, empty out; independent of row order;
deterministic; never an account paired with itself; a planted campaign recovered.

>>> sorted(available())[:3]
['boasting', 'co_action', 'co_report']
>>> get("co_action", window=30).window
30.0
>>> family("co_report"), weight("co_report")
('report', 0.5)
>>> of_family("tested")
('synchrony', 'rhythm')
"""

from __future__ import annotations

from typing import Any

from concerted.detectors.base import (
    EDGE_COLUMNS,
    EVENT_COLUMNS,
    FAMILIES,
    SIGNAL_COLUMNS,
    Detector,
    Evidence,
    empty,
    family_of,
    weight_of,
)
from concerted.errors import ConfigError
from concerted.registry import Registry

__all__ = [
    "EDGE_COLUMNS",
    "EVENT_COLUMNS",
    "SIGNAL_COLUMNS",
    "Detector",
    "Evidence",
    "FAMILIES",
    "available",
    "builtin",
    "empty",
    "family",
    "family_of",
    "get",
    "of_family",
    "weight",
    "weight_of",
]

ENTRY_POINT_GROUP = "concerted.detectors"

_BUILTIN = {
    # Coordination between accounts.
    "co_action": "concerted.detectors.coaction:CoAction",
    "near_text": "concerted.detectors.near_text:NearText",
    "synchrony": "concerted.detectors.synchrony:Synchrony",
    "rhythm": "concerted.detectors.synchrony:Rhythm",
    "creation_burst": "concerted.detectors.accounts:CreationBurst",
    "shared_admins": "concerted.detectors.accounts:SharedAdmins",
    "handle_pattern": "concerted.detectors.accounts:HandlePattern",
    "cross_platform": "concerted.detectors.accounts:CrossPlatformName",
    # Mass reporting (S1-S8, M1, M3).
    "report_burst": "concerted.detectors.report_burst:ReportBurst",
    "co_report": "concerted.detectors.co_report:CoReport",
    "dense_block": "concerted.detectors.dense_block:DenseBlock",
    "report_content": "concerted.detectors.report_content:ReportContent",
    "reporter_reputation": "concerted.detectors.reputation:ReporterReputation",
    "reporter_inauthenticity": "concerted.detectors.reporter_accounts:ReporterInauthenticity",
    "report_automation": "concerted.detectors.automation:ReportAutomation",
    "list_order": "concerted.detectors.list_order:ListOrder",
    "mobilisation": "concerted.detectors.mobilisation:Mobilisation",
    "boasting": "concerted.detectors.mobilisation:Boasting",
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


def builtin() -> tuple[str, ...]:
    """The detectors concerted ships, in the order they are documented."""
    return tuple(_BUILTIN)


def family(name: str) -> str:
    """What the detector called ``name`` is for (:data:`FAMILIES`)."""
    return family_of(_REGISTRY.load(name))


def weight(name: str) -> float:
    """The default weight of report detector ``name`` in a brigade's score."""
    return weight_of(_REGISTRY.load(name))


def of_family(wanted: str, *, plugins: bool = False) -> tuple[str, ...]:
    """The built-in detectors of one family in their documented order, and with
    ``plugins`` the registered third-party ones after them (by name)."""
    if wanted not in FAMILIES:
        raise ConfigError(f"no detector family {wanted!r}; known: {', '.join(FAMILIES)}")
    names = [n for n in _BUILTIN if family(n) == wanted]
    if plugins:
        names += sorted(n for n in available() if n not in _BUILTIN and family(n) == wanted)
    return tuple(names)
