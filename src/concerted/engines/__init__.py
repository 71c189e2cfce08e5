"""Engines, registered by name: what runs the heavy stages (:mod:`.base` says which,
and what crosses).

``duckdb`` is built in and the default; another package adds an engine through the
entry-point group ``concerted.engines`` (a ``module:Class`` whose class is opened on
the case's connection, as :data:`~concerted.engines.base.EngineFactory` says).

>>> available()
('duckdb',)
>>> import duckdb
>>> get()(duckdb.connect()).name
'duckdb'
>>> get("spark")
Traceback (most recent call last):
...
concerted.errors.ConfigError: no engine named 'spark'; known: duckdb
"""

from __future__ import annotations

from typing import cast

from concerted.engines.base import (
    DERIVED_FROM,
    EXPECTATION_COLUMNS,
    Engine,
    EngineFactory,
    Paired,
)
from concerted.errors import ConfigError, UnknownComponentError
from concerted.registry import Registry

__all__ = [
    "DEFAULT",
    "DERIVED_FROM",
    "EXPECTATION_COLUMNS",
    "Engine",
    "EngineFactory",
    "Paired",
    "available",
    "get",
]

ENTRY_POINT_GROUP = "concerted.engines"

#: The engine used when none is named.
DEFAULT = "duckdb"

_REGISTRY = Registry("engine", ENTRY_POINT_GROUP, {"duckdb": "concerted.engines.duck:DuckDBEngine"})


def available() -> tuple[str, ...]:
    """The names of the engines that can be used, sorted."""
    return tuple(sorted(_REGISTRY.available()))


def get(name: str = DEFAULT) -> EngineFactory:
    """The engine registered as ``name``, to be opened on a case's connection; an
    unknown name is a :class:`~concerted.errors.ConfigError` naming the known ones."""
    try:
        return cast(EngineFactory, _REGISTRY.load(name))
    except UnknownComponentError as exc:
        raise ConfigError(str(exc)) from None
