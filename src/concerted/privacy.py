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
import json
import re
from pathlib import Path
from typing import Any

import duckdb

from concerted.errors import ConfigError

__all__ = ["Pseudonymiser", "TOKEN_HEX_DIGITS", "JSON_TOKENS"]

#: The SQL function :meth:`Pseudonymiser.register` adds: ``extra`` with its values
#: tokenised (:meth:`Pseudonymiser.json_tokens`).
JSON_TOKENS = "concerted_json_tokens"

# A key whose integer value is an identifier (userid, account.id, in_reply_to_tweetid).
_ID_KEY = re.compile(r"(^|[._])id$|id$|Id$|ID$")
# Integers this large are identifiers whatever their key (platforms' snowflake ids).
_ID_SIZE = 10**9

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

    def _tokens(self, value: Any, key: str) -> Any:
        if isinstance(value, dict):
            return {k: self._tokens(v, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self._tokens(v, key) for v in value]
        if isinstance(value, str):
            return self.token(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if _ID_KEY.search(key) or abs(value) >= _ID_SIZE:
                return self.token(str(value))
        return value

    def json_tokens(self, text: str | None) -> str | None:
        """The JSON value ``text`` (a row's ``extra``) with every string, and every
        integer that is an identifier (its key names an id, or it has ten digits or
        more), replaced by its token; keys, other numbers and booleans kept. Whatever
        columns a file brings beyond the contract, no raw identifier survives in it,
        and an id there still joins its token in the contract's columns.

        >>> p = Pseudonymiser(b"an example key, 16+ bytes")
        >>> p.json_tokens('{"retweet_userid": "1234567890", "follower_count": 12}')
        '{"retweet_userid": "c9b1a11b90050512c590", "follower_count": 12}'
        """
        if text is None:
            return None
        return json.dumps(self._tokens(json.loads(text), ""), ensure_ascii=False)

    def register(self, con: duckdb.DuckDBPyConnection) -> None:
        """Add the SQL function :data:`JSON_TOKENS` to ``con`` (once)."""
        known = con.execute(
            "SELECT count(*) FROM duckdb_functions() WHERE function_name = ?", [JSON_TOKENS]
        ).fetchone()
        if known and known[0]:
            con.remove_function(JSON_TOKENS)
        con.create_function(
            JSON_TOKENS, self.json_tokens, ["VARCHAR"], "VARCHAR", side_effects=False
        )

    def sql(self, expr: str) -> str:
        """SQL computing :meth:`token` of the VARCHAR expression ``expr`` (NULL stays NULL)."""
        inner = f"unhex(sha256(unhex('{self._inner}') || encode({expr})))"
        return f"left(sha256(unhex('{self._outer}') || {inner}), {TOKEN_HEX_DIGITS})"
