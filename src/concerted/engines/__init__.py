"""Engines, registered by name: what runs the heavy stages (:mod:`.base` says which,
and what crosses).

``duckdb`` is built in and the default; ``spark`` (:mod:`.spark`) derives the actions,
pairs them and makes the stratified sums on Apache Spark, with pyspark installed (``pip
install 'concerted[spark]'``) and Java 17; another package adds an engine through the
entry-point group ``concerted.engines`` (a ``module:Class`` whose class is opened on
the case's connection, as :data:`~concerted.engines.base.EngineFactory` says).

>>> available()
('duckdb', 'spark')
>>> import duckdb
>>> get()(duckdb.connect()).name
'duckdb'
>>> get("flink")
Traceback (most recent call last):
...
concerted.errors.ConfigError: no engine named 'flink'; known: duckdb, spark
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

_REGISTRY = Registry(
    "engine",
    ENTRY_POINT_GROUP,
    {
        "duckdb": "concerted.engines.duck:DuckDBEngine",
        "spark": "concerted.engines.spark:SparkEngine",
    },
)


def available() -> tuple[str, ...]:
    """The names of the engines that can be used, sorted."""
    return tuple(sorted(_REGISTRY.available()))


def get(name: str = DEFAULT) -> EngineFactory:
    """The engine registered as ``name``, to be opened on a case's connection; an
    unknown name is a :class:`~concerted.errors.ConfigError` naming the known ones, and
    so is one whose requirements are missing (an engine class's ``require()`` says)."""
    try:
        found = _REGISTRY.load(name)
    except UnknownComponentError as exc:
        raise ConfigError(str(exc)) from None
    require = getattr(found, "require", None)
    if callable(require):
        require()
    return cast(EngineFactory, found)
