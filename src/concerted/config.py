"""Settings of an analysis: frozen, with defaults, loadable from a TOML file.

Each table of the file sets one stage; a key the stage does not know is an error
naming the file and the key, so that a typo never silently leaves a default in place::

    [coaction]
    window = 60                  # seconds, inclusive
    kinds = ["repost", "share_url", "hashtag"]
    min_weight = 1               # distinct shared objects for an edge to be kept
    max_object_pairs = 2000000   # viral-object cap (0: no cap, exact whatever it costs)

    [significance]
    null = "stratified"          # stratified (per pair), relabel, shift or shuffle
    stratum = 86400              # seconds: the stratified null's strata
    copies = "relabel"           # the randomised copies for synchrony and co-reporting
    replicates = 3
    fdr = 0.01
    seed = 0

    [clusters]
    method = "leiden"            # leiden or components
    resolution = 1.0
    weighted = false             # Leiden weighs ties by their weight (false: each counts once)
    merge_density = 0.25         # join communities whose ties between are this dense
    min_degree = 2               # significant ties an account needs to stay in
    min_accounts = 3             # accounts a cluster needs to be flagged
    seed = 0

    [campaigns]
    venue_share = 0.5            # share of a page's or group's posts by members ...
    venue_min_posts = 5          # ... and how many, for it to join the campaign

    [layers]
    near_text = true             # near-duplicate texts become a co-action layer
    tested = ["synchrony"]       # detectors tested like co-action, then network layers
    corroborating = ["creation_burst", "shared_admins", "cross_platform"]
    min_ties = 1                 # corroborating ties that attach an account

    [brigades]                   # see docs/reporting.md
    detectors = ["report_burst", "co_report", ...]

    [detector.near_text]         # any detector's settings, by its name
    threshold = 0.7

Every key is documented in ``docs/analysis.md``; a test fails when one is not.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from concerted import detectors
from concerted.actions import ACTION_KINDS
from concerted.brigades import BrigadeSettings
from concerted.detectors.base import Detector
from concerted.detectors.coaction import CoAction
from concerted.errors import ConfigError
from concerted.scoring import ScoreSettings
from concerted.significance import Significance

__all__ = [
    "CampaignSettings",
    "ClusterSettings",
    "Config",
    "DEFAULT_KINDS",
    "LayerSettings",
    "load",
]

#: Action kinds a network analysis pairs by default. Reports are the brigade
#: detectors' ground, and joining a group is membership, not content.
DEFAULT_KINDS: tuple[str, ...] = tuple(k for k in ACTION_KINDS if k not in ("report", "join"))


@dataclass(frozen=True, kw_only=True)
class ClusterSettings:
    """How the significant network is cut into clusters."""

    method: str = "leiden"
    resolution: float = 1.0
    weighted: bool = False
    merge_density: float = 0.25
    min_degree: int = 2
    min_accounts: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in ("leiden", "components"):
            raise ConfigError(f"clusters.method: leiden or components, not {self.method!r}")
        if self.resolution <= 0:
            raise ConfigError("clusters.resolution must be positive")
        if not 0 <= self.merge_density <= 1:
            raise ConfigError("clusters.merge_density must lie between 0 and 1")
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
class LayerSettings:
    """The detectors beyond co-action that shape the network.

    ``near_text``: near-duplicate texts (:mod:`concerted.detectors.near_text`) become
    a co-action layer, tested with the rest. ``tested``: pair detectors whose pairs are
    tested against the same null model and join the significant network as layers of
    their own. ``corroborating``: pair detectors whose ties only attach an account to a
    campaign that co-action found (``min_ties`` ties to its acting accounts) and say
    which signals fired on its members; they never make a campaign alone.
    """

    near_text: bool = True
    tested: tuple[str, ...] = ("synchrony",)
    corroborating: tuple[str, ...] = ("creation_burst", "shared_admins", "cross_platform")
    min_ties: int = 1
    #: The least edge score a corroborating detector's tie needs to count (1.0 where
    #: an edge has no score), by detector; unnamed detectors need none.
    min_scores: tuple[tuple[str, float], ...] = (("cross_platform", 0.9), ("handle_pattern", 0.5))
    #: The least edge weight a corroborating tie needs, by detector (creation bursts:
    #: objects the two accounts co-acted on); unnamed detectors need none.
    min_weights: tuple[tuple[str, float], ...] = (("creation_burst", 3.0),)

    def min_score(self, name: str) -> float:
        """The least score a tie of detector ``name`` needs.

        >>> LayerSettings().min_score("cross_platform"), LayerSettings().min_score("x")
        (0.9, 0.0)
        """
        return dict(self.min_scores).get(name, 0.0)

    def min_weight(self, name: str) -> float:
        """The least weight a tie of detector ``name`` needs.

        >>> LayerSettings().min_weight("creation_burst")
        3.0
        """
        return dict(self.min_weights).get(name, 0.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tested", tuple(self.tested))
        object.__setattr__(self, "corroborating", tuple(self.corroborating))
        for name in ("min_scores", "min_weights"):
            cuts = tuple((str(k), float(v)) for k, v in getattr(self, name))
            object.__setattr__(self, name, cuts)
        for part, names in (("tested", self.tested), ("corroborating", self.corroborating)):
            for name in names:
                if detectors.family(name) != part:
                    raise ConfigError(
                        f"layers.{part}: {name!r} is a {detectors.family(name)} detector, "
                        f"not a {part} one; {part} detectors: "
                        + ", ".join(detectors.of_family(part, plugins=True))
                    )
        if self.min_ties < 1:
            raise ConfigError("layers.min_ties must be at least 1")


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
    layers: LayerSettings = field(default_factory=LayerSettings)
    brigades: BrigadeSettings = field(default_factory=BrigadeSettings)
    #: Settings of any detector, by name (``[detector.NAME]`` tables).
    detector: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def make(self, name: str) -> Detector:
        """The detector called ``name`` with the settings this configuration gives it.

        >>> from_mapping({"detector": {"near_text": {"threshold": 0.9}}}).make(
        ...     "near_text").threshold
        0.9
        """
        return detectors.get(name, **self.detector.get(name, {}))

    def as_dict(self) -> dict[str, Any]:
        """Every setting, as ``run.json`` records it."""
        out: dict[str, Any] = {}
        for part in dataclasses.fields(self):
            value = getattr(self, part.name)
            if part.name == "brigades":
                out[part.name] = value.as_dict()
            elif part.name == "detector":
                out[part.name] = {k: dict(v) for k, v in value.items()}
            else:
                out[part.name] = _values(value)
        names = {*self.layers.tested, *self.layers.corroborating}
        if self.layers.near_text:
            names.add("near_text")
        out["detector"] = {name: _values(self.make(name)) for name in sorted(names)}
        return out


def _values(component: Any) -> dict[str, Any]:
    return {
        f.name: (list(v) if isinstance(v := getattr(component, f.name), tuple) else v)
        for f in dataclasses.fields(component)
    }


_PARTS: Mapping[str, type[Any]] = {
    "coaction": CoAction,
    "significance": Significance,
    "clusters": ClusterSettings,
    "campaigns": CampaignSettings,
    "layers": LayerSettings,
    "brigades": BrigadeSettings,
    "detector": dict,
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
        elif name == "layers" and key in ("tested", "corroborating"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}: layers.{key} must be a list of detector names")
            value = tuple(value)
        else:
            default = getattr(current, key)
            if isinstance(default, tuple) and isinstance(value, list):
                value = tuple(value)
            elif isinstance(default, tuple) and isinstance(value, Mapping):
                value = tuple(value.items())
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
        if name in ("detector", "brigades"):
            continue
        changes[name] = _part(name, getattr(config, name), values, where)
    settings = _detector_settings(data.get("detector", {}), where)
    changes["detector"] = settings
    if "brigades" in data:
        changes["brigades"] = _brigades(data["brigades"], settings, where)
    elif settings:
        changes["brigades"] = _brigades({}, settings, where)
    return dataclasses.replace(config, **changes)


def _detector_settings(values: Mapping[str, Any], where: str) -> dict[str, dict[str, Any]]:
    """``[detector.NAME]`` tables, each checked by making the detector."""
    out: dict[str, dict[str, Any]] = {}
    known = detectors.available()
    for name, settings in values.items():
        if name not in known:
            raise ConfigError(
                f"{where}: [detector.{name}]: no detector {name!r}; known: {', '.join(known)}"
            )
        if not isinstance(settings, Mapping):
            raise ConfigError(f"{where}: [detector.{name}] must be a table of settings")
        made = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}
        try:
            detectors.get(name, **made)
        except ConfigError as exc:
            raise ConfigError(f"{where}: [detector.{name}]: {exc}") from exc
        out[name] = made
    return out


def _brigades(
    values: Mapping[str, Any], settings: Mapping[str, Mapping[str, Any]], where: str
) -> BrigadeSettings:
    """``[brigades]``: the report detectors by name (with ``[detector.NAME]``
    settings), ``[brigades.scoring]``, and the rest of :class:`BrigadeSettings`."""
    rest = {k: v for k, v in values.items() if k not in ("detectors", "scoring")}
    names = values.get("detectors", list(detectors.of_family("report")))
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{where}: brigades.detectors must be a list of detector names")
    for n in names:
        if detectors.family(n) != "report":
            raise ConfigError(
                f"{where}: brigades.detectors: {n!r} is a {detectors.family(n)} detector, "
                "not a report one; report detectors: "
                + ", ".join(detectors.of_family("report", plugins=True))
            )
    made = tuple(detectors.get(n, **settings.get(n, {})) for n in names)
    scoring = values.get("scoring", {})
    if not isinstance(scoring, Mapping):
        raise ConfigError(f"{where}: [brigades.scoring] must be a table of settings")
    current = BrigadeSettings(detectors=made)
    changed = _part("brigades", current, rest, where)
    result: BrigadeSettings = dataclasses.replace(
        changed, scoring=_part("brigades.scoring", ScoreSettings(), scoring, where)
    )
    return result


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
