"""Adapters, registered by name: the formats ``concerted ingest --format`` reads.

Built-in adapters are registered exactly as third-party ones are: a name and an
``module:Class`` reference. Other packages add theirs through the entry-point group
``concerted.adapters``.

>>> sorted(available())[:3]
['coortweet', 'crowdtangle', 'generic']
>>> get("generic").name
'generic'
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib.metadata import entry_points

from concerted.adapters.base import Adapter, AdapterOptions, RawTable, Reject, Scan
from concerted.errors import UnknownComponentError

__all__ = ["Adapter", "AdapterOptions", "RawTable", "Reject", "Scan", "available", "get"]

ENTRY_POINT_GROUP = "concerted.adapters"

_BUILTIN = {
    "generic": "concerted.adapters.generic:Generic",
    "coortweet": "concerted.adapters.coortweet:CooRTweet",
    "qut": "concerted.adapters.qut:Qut",
    "twitter-io": "concerted.adapters.twitter_io:TwitterIO",
    "crowdtangle": "concerted.adapters.crowdtangle:CrowdTangle",
    "reports": "concerted.adapters.reports:Reports",
}


@cache
def _registry() -> dict[str, str]:
    found = dict(_BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def available() -> dict[str, str]:
    """Adapter names and where each is defined."""
    return dict(_registry())


def get(name: str) -> Adapter:
    """A new instance of the adapter called ``name``."""
    try:
        target = _registry()[name]
    except KeyError:
        raise UnknownComponentError("format", name, _registry()) from None
    module, _, attr = target.partition(":")
    adapter: Adapter = getattr(importlib.import_module(module), attr)()
    return adapter
