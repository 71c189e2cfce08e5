"""Bearer tokens with scopes, stored hashed; and a per-token rate limit.

A token is 32 random bytes (``cst_`` and URL-safe base64); only its SHA-256 is kept,
in a JSON file of the state directory (mode 0600). A slow password hash is not needed:
a token is a long random secret, not a password a person chose. ``concerted serve
token create`` prints a new token once.

Scopes: ``reports:write`` (intake), ``reports:read`` (reports and targets),
``admin`` (outcomes, metrics, and everything else).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from concerted.errors import ConfigError

__all__ = ["SCOPES", "RateLimiter", "Token", "TokenStore", "create_token"]

SCOPES: tuple[str, ...] = ("reports:write", "reports:read", "admin")


@dataclass(frozen=True, slots=True)
class Token:
    """A token's public part: an id (a prefix of its hash) and its scopes."""

    id: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenStore:
    """The tokens in JSON file ``path``: ``{"tokens": [{"id", "sha256", "scopes",
    "created"}]}``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._by_digest: dict[str, Token] = {}
        self.reload()

    def reload(self) -> None:
        if not self.path.exists():
            self._by_digest = {}
            return
        try:
            data = json.loads(self.path.read_text())
            tokens = {
                str(t["sha256"]): Token(str(t["id"]), frozenset(map(str, t["scopes"])))
                for t in data["tokens"]
            }
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{self.path} is not a token file: {exc}") from exc
        self._by_digest = tokens

    def __len__(self) -> int:
        return len(self._by_digest)

    def check(self, secret: str) -> Token | None:
        """The token ``secret`` is, or None."""
        return self._by_digest.get(_digest(secret))


def create_token(path: Path, scopes: Iterable[str]) -> tuple[str, Token]:
    """Add a new token with ``scopes`` to the file at ``path``; return its secret (shown
    once, never stored) and its public part."""
    wanted = sorted(set(scopes))
    if not wanted:
        raise ConfigError(f"a token needs at least one scope of {', '.join(SCOPES)}")
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown:
        raise ConfigError(f"unknown scope {', '.join(unknown)}; scopes: {', '.join(SCOPES)}")
    secret = "cst_" + secrets.token_urlsafe(32)
    digest = _digest(secret)
    token = Token(digest[:12], frozenset(wanted))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.exists() else {"tokens": []}
    data["tokens"].append(
        {
            "id": token.id,
            "sha256": digest,
            "scopes": wanted,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    )
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return secret, token


class RateLimiter:
    """A token bucket per key: ``rate`` requests a second, bursts of ``burst``.

    >>> limiter = RateLimiter(rate=1.0, burst=2)
    >>> [limiter.wait("k", now=0.0) for _ in range(3)]
    [0.0, 0.0, 1.0]
    """

    def __init__(self, *, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ConfigError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait(self, key: str, now: float | None = None) -> float:
        """0 and one request taken when ``key`` may go on; else the seconds to wait."""
        now = time.monotonic() if now is None else now
        with self._lock:
            level, at = self._buckets.get(key, (float(self.burst), now))
            level = min(float(self.burst), level + (now - at) * self.rate)
            if level >= 1.0:
                self._buckets[key] = (level - 1.0, now)
                return 0.0
            self._buckets[key] = (level, now)
            return (1.0 - level) / self.rate

    @staticmethod
    def retry_after(seconds: float) -> str:
        """The ``Retry-After`` header: whole seconds, at least 1."""
        return str(max(1, math.ceil(seconds)))
