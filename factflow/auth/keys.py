"""API key strings: `ff_live_…`, `ff_test_…`, `ff_ro_…`, made, parsed and hashed.

A key is `ff_<type>_` + 12 characters of lookup prefix + 40 of secret (base62, about 238
random bits). Only `hash_key(secret, key)` is stored: HMAC-SHA256 keyed with the server
secret. Why not argon2 or bcrypt: those are for low-entropy passwords, where a slow hash
makes guessing expensive; a 238-bit random key cannot be guessed, so a slow hash would
only add ~50 ms of CPU to every request (and make floods cheap for an attacker). The
server secret, which lives outside the database, is what a keyed hash adds over plain
SHA-256: a stolen copy of the `api_keys` table alone cannot even confirm a key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass
from enum import StrEnum

_ALPHABET = string.ascii_letters + string.digits
PREFIX_CHARS = 12
SECRET_CHARS = 40
_KEY = re.compile(
    rf"^ff_(live|test|ro)_([A-Za-z0-9]{{{PREFIX_CHARS}}})([A-Za-z0-9]{{{SECRET_CHARS}}})$"
)


class KeyType(StrEnum):
    LIVE = "live"
    """A key for production use, with the scopes it was given."""
    TEST = "test"
    """A key for test and development servers: refused when `environment: production`."""
    RO = "ro"
    """Read-only: holds only `:read` scopes and is refused on every write, whatever it holds."""


@dataclass(frozen=True, slots=True)
class ParsedKey:
    key_type: KeyType
    prefix: str
    """`ff_<type>_` and the lookup characters: the row's `prefix`, safe to show and log."""


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def generate_key(key_type: KeyType) -> tuple[str, ParsedKey]:
    """A new key string (shown once, never stored) and its parsed form."""
    key = f"ff_{key_type.value}_{_random(PREFIX_CHARS)}{_random(SECRET_CHARS)}"
    parsed = parse_key(key)
    assert parsed is not None
    return key, parsed


def parse_key(key: str) -> ParsedKey | None:
    """The type and lookup prefix of a well-formed key, None for anything else."""
    match = _KEY.match(key)
    if match is None:
        return None
    return ParsedKey(KeyType(match[1]), f"ff_{match[1]}_{match[2]}")


def hash_key(server_secret: str, key: str) -> str:
    """HMAC-SHA256 of the key under the server secret, hex."""
    return hmac.new(server_secret.encode(), key.encode(), hashlib.sha256).hexdigest()


def key_matches(server_secret: str, key: str, stored_hash: str) -> bool:
    """Constant-time comparison of the key's hash with the stored one."""
    return hmac.compare_digest(hash_key(server_secret, key), stored_hash)
