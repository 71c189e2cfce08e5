"""Settings of an analysis: frozen, with defaults, loadable from a TOML file.

Each table of the file sets one stage; a key the stage does not know is an error
naming the file and the key, so that a typo never silently leaves a default in place::

    [coaction]
    window = 60                  # seconds, inclusive
    kinds = ["repost", "share_url", "hashtag"]
    min_weight = 1               # distinct shared objects for an edge to be kept
    max_object_pairs = 2000000   # viral-object cap (0: no cap, exact whatever it costs)

    [significance]
    null = "relabel"             # relabel, shift or shuffle
    replicates = 3
    fdr = 0.01
    seed = 0

    [clusters]
    method = "leiden"            # leiden or components
    resolution = 1.0
    min_degree = 2               # significant ties an account needs to stay in
    min_accounts = 3             # accounts a cluster needs to be flagged
    seed = 0

    [campaigns]
    venue_share = 0.5            # share of a page's or group's posts by members ...
    venue_min_posts = 5          # ... and how many, for it to join the campaign

Every key is documented in ``docs/analysis.md``; a test fails when one is not.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from concerted.actions import ACTION_KINDS
from concerted.detectors.coaction import CoAction
from concerted.errors import ConfigError
from concerted.significance import Significance

__all__ = ["CampaignSettings", "ClusterSettings", "Config", "DEFAULT_KINDS", "load"]

#: Action kinds a network analysis pairs by default. Reports are the brigade
#: detectors' ground, and joining a group is membership, not content.
DEFAULT_KINDS: tuple[str, ...] = tuple(k for k in ACTION_KINDS if k not in ("report", "join"))


@dataclass(frozen=True, kw_only=True)
class ClusterSettings:
    """How the significant network is cut into clusters."""

    method: str = "components"
    resolution: float = 1.0
    min_degree: int = 2
    min_accounts: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in ("leiden", "components"):
            raise ConfigError(f"clusters.method: leiden or components, not {self.method!r}")
        if self.resolution <= 0:
            raise ConfigError("clusters.resolution must be positive")
        if self.min_degree < 1 or self.min_accounts < 2:
            raise ConfigError("clusters: min_degree must be at least 1, min_accounts at least 2")


@dataclass(frozen=True, kw_only=True)
class CampaignSettings:
    """How pages and groups that never act themselves are attributed to a campaign."""

    venue_share: float = 0.5
    venue_min_posts: int = 5

    def __post_init__(self) -> None:
        if not 0 < self.venue_share <= 1:
            raise ConfigError("campaigns.venue_share must lie in (0, 1]")
        if self.venue_min_posts < 1:
            raise ConfigError("campaigns.venue_min_posts must be at least 1")


@dataclass(frozen=True, kw_only=True)
class Config:
    """All settings of ``concerted analyze``.

    >>> Config().coaction.window
    60.0
    >>> Config().significance.fdr
    0.01
    """

    coaction: CoAction = field(default_factory=lambda: CoAction(kinds=DEFAULT_KINDS))
    significance: Significance = field(default_factory=Significance)
    clusters: ClusterSettings = field(default_factory=ClusterSettings)
    campaigns: CampaignSettings = field(default_factory=CampaignSettings)

    def as_dict(self) -> dict[str, Any]:
        """Every setting, as ``run.json`` records it."""
        out: dict[str, Any] = {}
        for part in dataclasses.fields(self):
            value = getattr(self, part.name)
            out[part.name] = {
                f.name: (list(v) if isinstance(v := getattr(value, f.name), tuple) else v)
                for f in dataclasses.fields(value)
            }
        return out


_PARTS: Mapping[str, type[Any]] = {
    "coaction": CoAction,
    "significance": Significance,
    "clusters": ClusterSettings,
    "campaigns": CampaignSettings,
}


def _part(name: str, current: Any, values: Mapping[str, Any], where: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(current)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(
                f"{where}: [{name}] has no setting {key!r}; known: {', '.join(sorted(known))}"
            )
        if name == "coaction" and key == "kinds":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}: coaction.kinds must be a list of action kinds")
            unknown = [v for v in value if v not in ACTION_KINDS]
            if unknown:
                raise ConfigError(
                    f"{where}: coaction.kinds: unknown kind {unknown[0]!r}; "
                    f"known: {', '.join(ACTION_KINDS)}"
                )
            value = tuple(value)
        elif name == "coaction" and key == "max_object_pairs" and value == 0:
            value = None
        else:
            default = getattr(current, key)
            if (
                isinstance(default, float)
                and isinstance(value, int)
                and not isinstance(value, bool)
            ):
                value = float(value)
            if default is not None and type(value) is not type(default):
                raise ConfigError(
                    f"{where}: {name}.{key} must be {type(default).__name__}, got {value!r}"
                )
        changes[key] = value
    return dataclasses.replace(current, **changes)


def from_mapping(data: Mapping[str, Any], where: str = "config") -> Config:
    """A :class:`Config` from parsed TOML (defaults for what it leaves out).

    >>> from_mapping({"coaction": {"window": 30}}).coaction.window
    30.0
    """
    config = Config()
    changes: dict[str, Any] = {}
    for name, values in data.items():
        if name not in _PARTS:
            raise ConfigError(f"{where}: no section [{name}]; known: {', '.join(_PARTS)}")
        if not isinstance(values, Mapping):
            raise ConfigError(f"{where}: [{name}] must be a table of settings")
        changes[name] = _part(name, getattr(config, name), values, where)
    return dataclasses.replace(config, **changes)


def load(path: str | Path | None) -> Config:
    """Settings from a TOML file, or the defaults when ``path`` is ``None``."""
    if path is None:
        return Config()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return from_mapping(data, str(path))
