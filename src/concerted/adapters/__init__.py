"""Adapters, registered by name: the formats ``concerted ingest --format`` reads.

Built-in adapters are registered exactly as third-party ones are: a name and an
``module:Class`` reference. Other packages add theirs through the entry-point group
``concerted.adapters``.

>>> sorted(available())[:4]
['atproto', 'coortweet', 'crowdtangle', 'generic']
>>> get("generic").name
'generic'
"""

from __future__ import annotations

from concerted.adapters.base import Adapter, AdapterOptions, RawTable, Reject, Scan
from concerted.registry import Registry

__all__ = ["Adapter", "AdapterOptions", "RawTable", "Reject", "Scan", "available", "get"]

ENTRY_POINT_GROUP = "concerted.adapters"

_BUILTIN = {
    "generic": "concerted.adapters.generic:Generic",
    "coortweet": "concerted.adapters.coortweet:CooRTweet",
    "qut": "concerted.adapters.qut:Qut",
    "twitter-io": "concerted.adapters.twitter_io:TwitterIO",
    "crowdtangle": "concerted.adapters.crowdtangle:CrowdTangle",
    "reports": "concerted.adapters.reports:Reports",
    "mastodon": "concerted.adapters.mastodon:Mastodon",
    "atproto": "concerted.adapters.atproto:Atproto",
    "synapse": "concerted.adapters.synapse:Synapse",
    "lemmy": "concerted.adapters.lemmy:Lemmy",
}


_REGISTRY = Registry("format", ENTRY_POINT_GROUP, _BUILTIN)


def available() -> dict[str, str]:
    """Adapter names and where each is defined."""
    return _REGISTRY.available()


def get(name: str) -> Adapter:
    """A new instance of the adapter called ``name``."""
    adapter: Adapter = _REGISTRY.load(name)()
    return adapter
