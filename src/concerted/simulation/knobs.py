"""What a scenario is made of, and the knobs that set its size and difficulty."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from concerted.errors import ConfigError

DIFFICULTIES = ("easy", "standard", "hard", "real")


@dataclass(frozen=True, kw_only=True)
class Population:
    """The organic platform every scenario starts from.

    Activity per account is log-normal (``activity_sigma`` sets the tail); popularity
    (followers) is heavy-tailed and decides whose posts get reposted; ``cascades`` viral
    posts are reposted (or a news link shared) by ``cascade_size`` accounts within
    minutes; ``report_spikes`` of the reposted ones are genuinely violating and draw
    about ``spike_size`` uncoordinated reports each; ``callouts`` ordinary users ask
    their friends to report an account or two, with report links, and a handful do.
    None of these carries a truth label. Times of posts and reports are cut to
    ``time_resolution`` seconds where it is set (60: the minute, as many research
    archives keep them; 0: to the microsecond, as drawn).
    """

    accounts: int = 20_000
    days: int = 14
    start: str = "2020-06-01"
    instagram_share: float = 0.25
    page_share: float = 0.01
    group_share: float = 0.005
    posts_per_day: float = 0.6
    activity_sigma: float = 1.2
    repost_share: float = 0.3
    reply_share: float = 0.1
    url_share: float = 0.3
    image_share: float = 0.1
    hashtags_per_post: float = 0.6
    languages: tuple[float, float, float, float] = (0.35, 0.25, 0.15, 0.25)
    group_membership: float = 0.3
    reports_per_day: float = 0.03
    cascades: int = 8
    cascade_size: int = 400
    report_spikes: int = 4
    spike_size: int = 300
    callouts: int = 10
    time_resolution: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Network:
    """A coordinated network: assets, how they co-post, and how well they hide.

    Every day brings ``items_per_day`` talking points (a link, a text, a hashtag push
    or an image); a page posts each first, and every other asset joins with probability
    ``participation`` after an exponential delay of mean ``jitter`` seconds, reposting
    the page's post (``repost_share`` of Facebook users) or posting a copy edited at
    ``edit_rate``. ``camouflage`` is ordinary activity per coordinated post; more of it
    lowers the share of the network's actions that co-occur. ``burst_share`` of user
    accounts are created in ``creation_bursts`` bursts of ``burst_hours``. ``twin_share``
    of Instagram accounts carry the name and handle of one of the network's Facebook
    accounts: one operator on two platforms.
    """

    pages: int = 20
    groups: int = 15
    users: int = 90
    instagram: int = 20
    admins: int = 8
    organic_members: int = 20
    items_per_day: float = 10.0
    participation: float = 0.4
    jitter: float = 90.0
    repost_share: float = 0.4
    edit_rate: float = 0.08
    camouflage: float = 1.0
    creation_bursts: int = 3
    burst_hours: float = 6.0
    burst_share: float = 0.8
    digit_handles: float = 0.6
    twin_share: float = 0.5
    languages: tuple[float, float, float, float] = (0.25, 0.4, 0.0, 0.35)


@dataclass(frozen=True, kw_only=True)
class Brigade:
    """A mass-reporting operation run from a group, modelled on the 2020 case.

    ``waves`` times an organiser posts a list of 10 to ``list_max`` targets from a pool
    of ``targets`` (``minority_share`` of them accounts of a religious minority, the
    rest critics) with report links and one reason to pick. Each of ``members`` joins a
    wave with probability ``participation``. Humans start after a log-normal delay
    (median ``human_delay`` minutes), report ``coverage`` of the list, pick the called
    reason with probability ``reason_focus`` and pause ``human_gap`` seconds (median)
    between reports. ``automated_share`` of members use a bulk-reporting extension:
    every target in list order, one reason, ``extension_gap`` seconds apart (give or
    take ``extension_jitter`` seconds, uniformly, where it is set: a tool that hides
    its clockwork); its mark
    shows in the client string for ``fingerprint_leak`` of them. ``fake_share`` of
    members are fake accounts created in bursts just before. A target that draws
    ``uphold_threshold`` reports in a day is actioned, and the organisers boast.
    ``from_network`` is the share of members taken from the scenario's network.
    """

    members: int = 120
    organisers: int = 3
    targets: int = 60
    waves: int = 6
    list_max: int = 80
    minority_share: float = 0.5
    participation: float = 0.6
    coverage: float = 0.7
    reason_focus: float = 0.75
    human_delay: float = 45.0
    human_gap: float = 40.0
    direct_link_share: float = 0.8
    automated_share: float = 0.15
    extension_gap: float = 3.0
    extension_jitter: float = 0.0
    fingerprint_leak: float = 0.5
    fake_share: float = 0.3
    camouflage: float = 1.0
    uphold_threshold: int = 30
    from_network: float = 0.0
    languages: tuple[float, float, float, float] = (0.3, 0.35, 0.0, 0.35)


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """A population and the operations planted in it."""

    name: str
    population: Population = field(default_factory=Population)
    networks: tuple[Network, ...] = ()
    brigades: tuple[Brigade, ...] = ()

    def scaled(self, scale: float) -> Scenario:
        """Every count multiplied by ``scale`` (rates, delays and shares unchanged)."""
        if not scale > 0:
            raise ConfigError(f"--scale must be positive, not {scale}")
        return dataclasses.replace(
            self,
            population=_scale(self.population, scale),
            networks=tuple(_scale(n, scale) for n in self.networks),
            brigades=tuple(_scale(b, scale) for b in self.brigades),
        )

    def with_knobs(self, knobs: Mapping[str, str]) -> Scenario:
        """Set knobs by ``part.knob`` name (``network.jitter``); a part that occurs
        several times (``brigade``) has the knob set on each.

        >>> scenario("cib").with_knobs({"network.jitter": "600"}).networks[0].jitter
        600.0
        """
        result = self
        for key, raw in knobs.items():
            part, _, name = key.partition(".")
            if part not in ("population", "network", "brigade") or not name:
                raise ConfigError(
                    f"unknown knob {key!r}: write population.KNOB, network.KNOB or "
                    "brigade.KNOB (see --dry-run for the knobs)"
                )
            if part == "population":
                result = dataclasses.replace(
                    result, population=_set(result.population, key, name, raw)
                )
            elif part == "network":
                if not result.networks:
                    raise ConfigError(f"scenario {self.name!r} has no network to set {key}")
                nets = tuple(_set(n, key, name, raw) for n in result.networks)
                result = dataclasses.replace(result, networks=nets)
            else:
                if not result.brigades:
                    raise ConfigError(f"scenario {self.name!r} has no brigade to set {key}")
                brigs = tuple(_set(b, key, name, raw) for b in result.brigades)
                result = dataclasses.replace(result, brigades=brigs)
        return result

    def knobs(self) -> dict[str, Any]:
        """Every knob, JSON-ready."""
        return {
            "name": self.name,
            "population": dataclasses.asdict(self.population),
            "networks": [dataclasses.asdict(n) for n in self.networks],
            "brigades": [dataclasses.asdict(b) for b in self.brigades],
        }


_COUNTS = {
    "accounts",
    "cascades",
    "report_spikes",
    "callouts",
    "pages",
    "groups",
    "users",
    "instagram",
    "admins",
    "members",
    "organisers",
    "targets",
    "uphold_threshold",
}


def _scale(part: Any, scale: float) -> Any:
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(part):
        if f.name in _COUNTS:
            value = getattr(part, f.name)
            scaled = value * scale
            changes[f.name] = float(scaled) if isinstance(value, float) else max(1, round(scaled))
    return dataclasses.replace(part, **changes)


def _set(part: Any, key: str, name: str, raw: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(part)}
    if name not in fields:
        raise ConfigError(
            f"unknown knob {key!r}; {type(part).__name__.lower()} has: {', '.join(fields)}"
        )
    current = getattr(part, name)
    try:
        value: Any
        if isinstance(current, bool):
            value = raw.lower() in ("1", "true", "yes")
        elif isinstance(current, int):
            value = int(raw)
        elif isinstance(current, float):
            value = float(raw)
        elif isinstance(current, tuple):
            value = tuple(float(v) for v in raw.split(","))
            if len(value) != len(current):
                raise ValueError(f"{len(current)} values expected")
        else:
            value = raw
    except ValueError as exc:
        raise ConfigError(f"knob {key}: {raw!r} is not a valid value ({exc})") from exc
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        raise ConfigError(f"knob {key} cannot be negative")
    return dataclasses.replace(part, **{name: value})


_EASY_NET: dict[str, Any] = {
    "jitter": 30.0,
    "camouflage": 0.5,
    "edit_rate": 0.03,
    "participation": 0.5,
}
_HARD_NET: dict[str, Any] = {
    "jitter": 600.0,
    "camouflage": 3.0,
    "edit_rate": 0.2,
    "participation": 0.25,
}
_EASY_BRIG: dict[str, Any] = {
    "human_delay": 20.0,
    "coverage": 0.8,
    "automated_share": 0.2,
    "fake_share": 0.4,
    "participation": 0.7,
}
_HARD_BRIG: dict[str, Any] = {
    "human_delay": 120.0,
    "coverage": 0.5,
    "participation": 0.4,
    "reason_focus": 0.5,
    "automated_share": 0.1,
    "fake_share": 0.15,
    "camouflage": 3.0,
}


# Closer to what real archives hold: times to the minute, a heavier tail of busy
# accounts, three times the viral cascades, and network members that act a few times
# each (two talking points a day, a third of the members on each, two minutes apart).
_REAL_POP: dict[str, Any] = {
    "time_resolution": 60.0,
    "activity_sigma": 1.8,
    "cascades": 24,
}
_REAL_NET: dict[str, Any] = {
    "items_per_day": 2.0,
    "participation": 0.3,
    "jitter": 120.0,
    "camouflage": 3.0,
}


def _organic() -> Scenario:
    return Scenario(name="organic")


def _cib() -> Scenario:
    return Scenario(name="cib", networks=(Network(),))


def _brigade() -> Scenario:
    return Scenario(name="brigade", brigades=(Brigade(), Brigade(members=80, targets=40)))


def _pakistan_2020() -> Scenario:
    return Scenario(
        name="pakistan-2020",
        population=Population(accounts=50_000, cascades=12, report_spikes=6),
        networks=(
            Network(pages=100, groups=80, users=450, instagram=100, admins=25, items_per_day=12.0),
        ),
        brigades=(
            Brigade(members=150, from_network=0.6),
            Brigade(members=100, targets=40, waves=4, from_network=0.6, minority_share=0.8),
        ),
    )


#: The named scenarios, each a function returning its standard form.
SCENARIOS: Mapping[str, Callable[[], Scenario]] = {
    "organic": _organic,
    "cib": _cib,
    "brigade": _brigade,
    "pakistan-2020": _pakistan_2020,
}


def scenario(
    name: str,
    *,
    difficulty: str = "standard",
    scale: float = 1.0,
    knobs: Mapping[str, str] | None = None,
) -> Scenario:
    """A named scenario at a difficulty and scale, with knobs set on top."""
    if name not in SCENARIOS:
        raise ConfigError(f"unknown scenario {name!r}; choose one of {', '.join(SCENARIOS)}")
    if difficulty not in DIFFICULTIES:
        raise ConfigError(
            f"unknown difficulty {difficulty!r}; choose one of {', '.join(DIFFICULTIES)}"
        )
    base = SCENARIOS[name]()
    if difficulty == "real":
        base = dataclasses.replace(
            base,
            population=dataclasses.replace(
                base.population,
                **{**_REAL_POP, "cascades": base.population.cascades * 3},
            ),
            networks=tuple(dataclasses.replace(n, **_REAL_NET) for n in base.networks),
        )
    elif difficulty != "standard":
        net, brig = (_EASY_NET, _EASY_BRIG) if difficulty == "easy" else (_HARD_NET, _HARD_BRIG)
        base = dataclasses.replace(
            base,
            networks=tuple(dataclasses.replace(n, **net) for n in base.networks),
            brigades=tuple(dataclasses.replace(b, **brig) for b in base.brigades),
        )
    result = base.scaled(scale).with_knobs(knobs or {})
    for part in (result.population, *result.networks, *result.brigades):
        _check(part)
    return result


#: Knobs that are probabilities or shares.
_PROBABILITIES = {
    "participation",
    "coverage",
    "reason_focus",
    "fingerprint_leak",
    "from_network",
    "edit_rate",
}


def _check(part: Any) -> None:
    name = type(part).__name__.lower()
    for f in dataclasses.fields(part):
        value = getattr(part, f.name)
        if (f.name.endswith("_share") or f.name in _PROBABILITIES) and not 0 <= value <= 1:
            raise ConfigError(f"knob {name}.{f.name} is a share: {value} is not in [0, 1]")
        if f.name == "languages" and (min(value) < 0 or sum(value) <= 0):
            raise ConfigError(f"knob {name}.languages needs weights >= 0 with a positive sum")
    if isinstance(part, Population) and part.accounts < 100:
        raise ConfigError("knob population.accounts must be at least 100")
