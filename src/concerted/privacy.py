"""Pseudonymisation of identifiers with a keyed hash.

An identifier becomes the first 20 hex digits (80 bits) of HMAC-SHA256 under the
case's key: the same id maps to the same token in every table and every ingest,
so joins and co-action still work, while nobody without the key can test a guess.
The SQL form runs inside DuckDB; the Python form gives the same tokens.

>>> p = Pseudonymiser(b"an example key, 16+ bytes")
>>> p.token("1234567890")
'c9b1a11b90050512c590'
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from concerted.errors import ConfigError

__all__ = ["Pseudonymiser", "TOKEN_HEX_DIGITS"]

TOKEN_HEX_DIGITS = 20
_MIN_KEY_BYTES = 16
_BLOCK = 64  # SHA-256 block size


class Pseudonymiser:
    """Keyed hashing of identifiers, in Python and in DuckDB SQL."""

    def __init__(self, key: bytes) -> None:
        if len(key) < _MIN_KEY_BYTES:
            raise ConfigError(
                f"the pseudonymisation key has {len(key)} bytes; use at least {_MIN_KEY_BYTES} "
                "(for example: head -c 32 /dev/urandom | base64 > case.key)"
            )
        self._key = key
        block = hashlib.sha256(key).digest() if len(key) > _BLOCK else key
        block = block.ljust(_BLOCK, b"\0")
        self._inner = bytes(b ^ 0x36 for b in block).hex()
        self._outer = bytes(b ^ 0x5C for b in block).hex()

    @classmethod
    def from_file(cls, path: str | Path) -> Pseudonymiser:
        try:
            key = Path(path).read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the pseudonymisation key file {path}: {exc}") from exc
        return cls(key)

    @property
    def fingerprint(self) -> str:
        """A check value that tells keys apart without revealing them."""
        return hmac.new(self._key, b"concerted key fingerprint", hashlib.sha256).hexdigest()[:16]

    def token(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()[:TOKEN_HEX_DIGITS]

    def sql(self, expr: str) -> str:
        """SQL computing :meth:`token` of the VARCHAR expression ``expr`` (NULL stays NULL)."""
        inner = f"unhex(sha256(unhex('{self._inner}') || encode({expr})))"
        return f"left(sha256(unhex('{self._outer}') || {inner}), {TOKEN_HEX_DIGITS})"
