"""The service's settings: command-line options over a TOML file over the defaults.

.. code-block:: toml

    [service]
    host = "127.0.0.1"        # bind address; anything else is a choice to expose it
    port = 8787
    max_body = 65536          # bytes of one report or one outcome (else 413)
    max_batch_body = 16777216 # bytes of one batch (else 413)
    max_batch = 10000         # reports in one batch (else 413)
    rate = 200.0              # requests a second per token (else 429) ...
    burst = 400               # ... in bursts of up to this many
    snapshot_every = 100000   # reports at least between two snapshots of the state
    mastodon_secret_file = "" # the Mastodon webhook's secret (default STATE/mastodon.secret)
    ozone_did = ""            # the guard's DID: createdBy of its Ozone events (needed for them)
    ozone_url = ""            # POST the events here (.../xrpc/tools.ozone.moderation.emitEvent)
    ozone_token_file = ""     # bearer token for ozone_url (default STATE/ozone.token)
    ozone_platform = "bluesky" # the platform whose reports Ozone moderates
    log = "sqlite"            # the intake log: "sqlite" (STATE/log.sqlite) or a NATS
                              # JetStream server, "nats://127.0.0.1:4222"
    reanalyse_every = "10m"   # run the batch brigade stage over recent reports this
                              # often (s, m, h); "" (the default) never
    reanalyse_span = "24h"    # ... over the reports of this span before the latest
    pair_memory = ""          # forget reporter pairs that stop co-reporting after one
                              # to two of this ("7d"); "" (the default) never, which
                              # keeps the scores equal to the batch scores

    [scoring]                 # any field of concerted.scoring.ScoreSettings
    window = 7200.0
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from concerted.errors import ConfigError
from concerted.scoring import ScoreSettings

__all__ = ["ServiceSettings", "duration", "load_settings"]

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}


def duration(text: str | float) -> float:
    """Seconds in ``text``: a number with an optional unit, s, m, h or d.

    >>> duration("10m"), duration("90"), duration(1.5)
    (600.0, 90.0, 1.5)
    """
    if isinstance(text, int | float):
        return float(text)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if match is None:
        raise ConfigError(f"service: {text!r} is not a duration such as 90s, 10m or 2h")
    return float(match[1]) * _UNITS[match[2]]


@dataclass(frozen=True, kw_only=True)
class ServiceSettings:
    """Everything ``concerted serve`` runs with."""

    state: Path = Path("concerted-state")
    host: str = "127.0.0.1"
    port: int = 8787
    tokens: Path | None = None
    max_body: int = 64 * 1024
    max_batch_body: int = 16 * 1024 * 1024
    max_batch: int = 10_000
    rate: float = 200.0
    burst: int = 400
    snapshot_every: int = 100_000
    mastodon_secret_file: Path | None = None
    ozone_did: str | None = None
    ozone_url: str | None = None
    ozone_token_file: Path | None = None
    ozone_platform: str = "bluesky"
    log: str = "sqlite"
    reanalyse_every: float | None = None
    reanalyse_span: float = 86_400.0
    pair_memory: float | None = None
    scoring: ScoreSettings = field(default_factory=ScoreSettings)

    def __post_init__(self) -> None:
        if self.log != "sqlite" and not re.match(r"(nats|tls)://", self.log):
            raise ConfigError(f"service: log is 'sqlite' or a nats:// URL, not {self.log!r}")
        for name in ("reanalyse_every", "reanalyse_span", "pair_memory"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, duration(value) if value else None)
            if name == "reanalyse_span" and getattr(self, name) is None:
                raise ConfigError("service: reanalyse_span must be given")
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"service: {name} must be positive")
        for name in ("max_body", "max_batch_body", "max_batch", "burst", "snapshot_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"service: {name} must be at least 1")
        if self.rate <= 0:
            raise ConfigError("service: rate must be positive")
        if not 0 <= self.port < 65536:
            raise ConfigError(f"service: no port {self.port}")
        if self.ozone_did is not None and not re.fullmatch(r"did:[a-z]+:\S+", self.ozone_did):
            raise ConfigError(f"service: ozone_did {self.ozone_did!r} is not a DID")
        if self.ozone_url is not None:
            if self.ozone_did is None:
                raise ConfigError("service: ozone_url needs ozone_did (createdBy of the events)")
            if not re.match(r"https?://", self.ozone_url):
                raise ConfigError("service: ozone_url is an http:// or https:// URL")

    @property
    def token_file(self) -> Path:
        return self.tokens if self.tokens is not None else self.state / "tokens.json"

    @property
    def log_file(self) -> Path:
        return self.state / "log.sqlite"

    @property
    def snapshot_file(self) -> Path:
        return self.state / "snapshot.bin"

    def ozone_token(self) -> str | None:
        """The bearer token for ``ozone_url``, when one is set up."""
        path = self.ozone_token_file or self.state / "ozone.token"
        if not path.exists():
            return None
        return path.read_text().strip() or None

    def mastodon_secret(self) -> bytes | None:
        """The secret Mastodon signs its webhooks with, when one is set up."""
        path = self.mastodon_secret_file or self.state / "mastodon.secret"
        if not path.exists():
            return None
        secret = path.read_bytes().strip()
        return secret or None


_SERVICE_KEYS = {f.name for f in fields(ServiceSettings)} - {"scoring", "state", "tokens"}


def load_settings(config: Path | None = None, **overrides: Any) -> ServiceSettings:
    """Settings from TOML file ``config`` (sections ``service`` and ``scoring``), then
    ``overrides`` (those not None)."""
    settings = ServiceSettings()
    if config is not None:
        try:
            data = tomllib.loads(Path(config).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {config}: {exc}") from exc
        unknown = set(data) - {"service", "scoring"}
        if unknown:
            raise ConfigError(f"{config}: unknown section {', '.join(sorted(unknown))}")
        service = dict(data.get("service", {}))
        bad = set(service) - _SERVICE_KEYS
        if bad:
            raise ConfigError(
                f"{config}: unknown key {', '.join(sorted(bad))} in [service]; "
                f"keys: {', '.join(sorted(_SERVICE_KEYS))}"
            )
        scoring_keys = {f.name for f in fields(ScoreSettings)}
        scoring = dict(data.get("scoring", {}))
        bad = set(scoring) - scoring_keys
        if bad:
            raise ConfigError(f"{config}: unknown key {', '.join(sorted(bad))} in [scoring]")
        for key in ("mastodon_secret_file", "ozone_token_file"):
            if key in service:
                service[key] = Path(service[key]) if service[key] else None
        for key in ("ozone_did", "ozone_url"):
            if key in service and not service[key]:
                service[key] = None
        try:
            settings = replace(settings, **service, scoring=ScoreSettings(**scoring))
        except TypeError as exc:
            raise ConfigError(f"{config}: {exc}") from exc
    given = {k: v for k, v in overrides.items() if v is not None}
    return replace(settings, **given) if given else settings
