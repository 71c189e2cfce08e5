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
from typing import TYPE_CHECKING, Any, ClassVar, Self, cast

from concerted import detectors
from concerted.detectors.base import Detector
from concerted.errors import ConfigError
from concerted.schema import ACTION_KINDS

if TYPE_CHECKING:
    from concerted.detectors.coaction import CoAction

__all__ = [
    "COPY_NULLS",
    "DEFAULT_KINDS",
    "FEATURES",
    "NULL_MODELS",
    "BrigadeSettings",
    "CampaignSettings",
    "ClusterSettings",
    "Config",
    "LayerSettings",
    "ScoreSettings",
    "SignificanceSettings",
    "from_mapping",
    "load",
]

#: Action kinds a network analysis pairs by default. Reports are the brigade
#: detectors' ground, and joining a group is membership, not content.
DEFAULT_KINDS: tuple[str, ...] = tuple(k for k in ACTION_KINDS if k not in ("report", "join"))


#: The analytic null first (the default), then the Monte Carlo ones.
NULL_MODELS: tuple[str, ...] = ("stratified", "relabel", "shift", "shuffle")
#: The nulls made of randomised copies of the actions.
COPY_NULLS: tuple[str, ...] = ("relabel", "shift", "shuffle")


@dataclass(frozen=True, kw_only=True)
class SignificanceSettings:
    """How pairs are tested (:class:`concerted.significance.Significance` runs the
    test): per pair under the ``stratified`` null, or against ``replicates``
    randomised copies made by ``copies``.

    >>> SignificanceSettings().null, SignificanceSettings().copies
    ('stratified', 'relabel')
    """

    name: ClassVar[str] = "significance"
    null: str = "stratified"
    stratum: float = 86_400.0
    copies: str = "relabel"
    replicates: int = 3
    fdr: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        if self.null not in NULL_MODELS:
            raise ConfigError(
                f"significance: no null model {self.null!r}; known: {', '.join(NULL_MODELS)}"
            )
        if self.copies not in COPY_NULLS:
            raise ConfigError(
                f"significance: copies must be one of {', '.join(COPY_NULLS)}, got {self.copies!r}"
            )
        if not self.stratum > 0:
            raise ConfigError(f"significance: stratum must be positive, got {self.stratum}")
        if self.replicates < 1:
            raise ConfigError("significance: replicates must be at least 1")
        if not 0 < self.fdr < 1:
            raise ConfigError(f"significance: fdr must lie between 0 and 1, got {self.fdr}")

    @property
    def analytic(self) -> bool:
        """Whether the null is computed per pair (``stratified``) rather than from
        randomised copies.

        >>> SignificanceSettings().analytic, SignificanceSettings(null="relabel").analytic
        (True, False)
        """
        return self.null not in COPY_NULLS

    def monte_carlo(self) -> Self:
        """These settings with a null made of randomised copies: ``copies`` where the
        null is analytic. Statistics with no analytic tail (synchrony, rhythm,
        co-reporting) are tested this way.

        >>> SignificanceSettings().monte_carlo().null
        'relabel'
        """
        return dataclasses.replace(self, null=self.copies) if self.analytic else self


#: The features, in the order of :attr:`ScoreSettings.weights`.
FEATURES: tuple[str, ...] = (
    "coreport",
    "automation",
    "pace",
    "burst",
    "young_account",
    "direct_channel",
    "rare_client",
    "reputation",
)


@dataclass(frozen=True, kw_only=True)
class ScoreSettings:
    """How reports are scored. Times in seconds.

    >>> ScoreSettings().weights["coreport"]
    0.9
    >>> ScoreSettings(review=0.9, discount=0.5)
    Traceback (most recent call last):
    ...
    concerted.errors.ConfigError: scoring: review (0.9) must not exceed discount (0.5)
    """

    name: ClassVar[str] = "scoring"
    window: float = 7200.0
    recent: int = 32
    min_shared: int = 3
    gaps: int = 3
    fast_gap: float = 10.0
    pace_window: float = 3600.0
    burst_window: float = 3600.0
    baseline_window: float = 7 * 86400.0
    young_days: float = 30.0
    direct_channels: tuple[str, ...] = ("direct_link", "api")
    w_coreport: float = 0.9
    w_automation: float = 0.4
    w_pace: float = 0.3
    w_burst: float = 0.1
    w_young_account: float = 0.3
    w_direct_channel: float = 0.1
    w_rare_client: float = 0.05
    w_reputation: float = 0.1
    review: float = 0.3
    discount: float = 0.5
    hold: float = 86400.0
    decision_lag: float = 86400.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "direct_channels", tuple(self.direct_channels))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                raise ConfigError(f"scoring: {f.name} must not be negative, got {value}")
        if self.recent < 1 or self.gaps < 2 or self.min_shared < 1:
            raise ConfigError("scoring: recent and min_shared must be at least 1, gaps at least 2")
        if self.fast_gap <= 0 or self.young_days <= 0:
            raise ConfigError("scoring: fast_gap and young_days must be positive")
        if not self.burst_window < self.baseline_window:
            raise ConfigError("scoring: burst_window must be shorter than baseline_window")
        if any(w > 1 for w in self.weights.values()):
            raise ConfigError("scoring: weights lie in [0, 1]")
        if not 0 < self.discount <= 1:
            raise ConfigError(f"scoring: discount must lie in (0, 1], got {self.discount}")
        if self.review > self.discount:
            raise ConfigError(
                f"scoring: review ({self.review}) must not exceed discount ({self.discount})"
            )

    @property
    def weights(self) -> dict[str, float]:
        """Each feature's weight in the noisy-or."""
        return {f: float(getattr(self, f"w_{f}")) for f in FEATURES}


def _report_detectors() -> tuple[Detector, ...]:
    return tuple(detectors.get(name) for name in detectors.of_family("report"))


def _settings(component: Any) -> dict[str, Any]:
    return {
        f.name: (list(v) if isinstance(v := getattr(component, f.name), tuple) else v)
        for f in dataclasses.fields(component)
    }


@dataclass(frozen=True, kw_only=True)
class BrigadeSettings:
    """How brigades are found, scored and flagged (:mod:`concerted.brigades`, whose
    notes say what each setting does; ``docs/reporting.md``).

    ``detectors`` are instances (``concerted.detectors.get(name, **settings)``), by
    default every built-in detector of the ``report`` family; leave one out to switch
    its signal off. ``signal_weights`` overrides a detector's default weight in a
    brigade's score (its class's ``weight``). Times in seconds.

    >>> s = BrigadeSettings()
    >>> s.flag, s.min_targets, s.as_dict()["signal_weights"]["co_report"]
    (0.6, 5, 0.5)
    """

    detectors: tuple[Detector, ...] = field(default_factory=_report_detectors)
    scoring: ScoreSettings = field(default_factory=ScoreSettings)
    null: str = "analytic"
    rounds: int = 4
    min_overlap: float = 0.1
    min_degree: int = 2
    attach_edges: int = 5
    attach_weight: int = 3
    join_targets: int = 3
    min_target_reporters: int = 3
    min_target_share: float = 0.1
    min_reporters: int = 5
    min_targets: int = 5
    flag: float = 0.6
    fired: float = 0.5
    automated: float = 0.6
    automated_layers: int = 2
    tool_layers: tuple[str, ...] = (
        "subhuman_gap",
        "clockwork",
        "sustained_pace",
        "identical_sequence",
        "client_fingerprint",
    )
    mobilisation: float = 0.2
    call_targets: int = 2
    lead: float = 2 * 86400.0
    protect_share: float = 0.5
    protect_min_reports: int = 5
    signal_weights: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "detectors", tuple(self.detectors))
        object.__setattr__(self, "tool_layers", tuple(self.tool_layers))
        object.__setattr__(
            self, "signal_weights", tuple((str(k), float(v)) for k, v in self.signal_weights)
        )
        names = [d.name for d in self.detectors]
        if len(set(names)) != len(names):
            raise ConfigError(f"brigades: a detector named twice in {names}")
        for detector in self.detectors:
            if detectors.family_of(detector) != "report":
                raise ConfigError(
                    f"brigades: {detector.name!r} is a {detectors.family_of(detector)} "
                    "detector, not a report one"
                )
        # A detector without a weight of its own in the settings gets its class's.
        weighed = dict(self.signal_weights)
        missing = tuple(
            (d.name, detectors.weight_of(d)) for d in self.detectors if d.name not in weighed
        )
        if missing:
            object.__setattr__(self, "signal_weights", (*self.signal_weights, *missing))
        if self.null not in ("analytic", "copies"):
            raise ConfigError(f"brigades: null must be 'analytic' or 'copies', got {self.null!r}")
        for name in (
            "rounds",
            "min_degree",
            "attach_edges",
            "attach_weight",
            "join_targets",
            "min_target_reporters",
            "call_targets",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"brigades: {name} must be at least 1")
        if self.min_reporters < 2 or self.min_targets < 1 or self.protect_min_reports < 1:
            raise ConfigError(
                "brigades: min_reporters must be at least 2, min_targets and "
                "protect_min_reports at least 1"
            )
        for name in (
            "min_overlap",
            "min_target_share",
            "flag",
            "fired",
            "automated",
            "mobilisation",
            "protect_share",
        ):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"brigades: {name} must lie in [0, 1]")
        if self.automated_layers < 1:
            raise ConfigError("brigades: automated_layers must be at least 1")
        if self.lead < 0:
            raise ConfigError("brigades: lead must not be negative")
        if any(not 0 <= w <= 1 for _, w in self.signal_weights):
            raise ConfigError("brigades: signal weights lie in [0, 1]")

    @property
    def names(self) -> tuple[str, ...]:
        """The names of the detectors that run."""
        return tuple(d.name for d in self.detectors)

    def as_dict(self) -> dict[str, Any]:
        """Every setting, as ``run.json`` records it."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "detectors":
                out[f.name] = {d.name: _settings(d) for d in value}
            elif f.name == "scoring":
                out[f.name] = _settings(value)
            elif f.name == "signal_weights":
                out[f.name] = dict(value)
            else:
                out[f.name] = value
        return out


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

    coaction: CoAction = field(default_factory=lambda: _co_action(kinds=DEFAULT_KINDS))
    significance: SignificanceSettings = field(default_factory=SignificanceSettings)
    clusters: ClusterSettings = field(default_factory=ClusterSettings)
    campaigns: CampaignSettings = field(default_factory=CampaignSettings)
    layers: LayerSettings = field(default_factory=LayerSettings)
    brigades: BrigadeSettings = field(default_factory=BrigadeSettings)
    #: Settings of any detector, by name (``[detector.NAME]`` tables).
    detector: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def make(self, name: str, **fill: Any) -> Detector:
        """The detector called ``name`` with the settings this configuration gives it;
        ``fill`` gives settings the configuration leaves to the caller.

        >>> from_mapping({"detector": {"near_text": {"threshold": 0.9}}}).make(
        ...     "near_text").threshold
        0.9
        """
        return detectors.get(name, **{**fill, **self.detector.get(name, {})})

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


def _co_action(**settings: Any) -> CoAction:
    """Co-action (a detector of the registry, made by name: settings import no stage)."""
    return cast("CoAction", detectors.get("co_action", **settings))


#: The tables of a settings file.
_PARTS: tuple[str, ...] = (
    "coaction",
    "significance",
    "clusters",
    "campaigns",
    "layers",
    "brigades",
    "detector",
)


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
