"""Password hashes for local users: argon2id (argon2-cffi, RFC 9106's low-memory profile).

Passwords, unlike API keys, are chosen by people and can be guessed, so they get a slow,
memory-hard hash: each check costs tens of milliseconds and 64 MiB, which makes guessing
from a stolen table expensive. Logins are rare next to API calls, so the cost is paid
where it buys something (keys use a keyed HMAC instead; see keys.py).
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from factflow.auth.exceptions import AuthCode, PasswordPolicyError

MIN_LENGTH = 12
MAX_LENGTH = 1024
_HASHER = PasswordHasher()
# checked when the email is unknown or has no password, so a login takes as long either
# way and its timing does not tell which addresses have accounts
_DUMMY_HASH = _HASHER.hash("factflow: no such user, the same work as a real check")


def check_policy(password: str) -> None:
    """PasswordPolicyError unless 12 to 1024 characters (length is what resists guessing;
    the upper bound keeps one login from costing unbounded CPU)."""
    if len(password) < MIN_LENGTH:
        msg = f"a password needs at least {MIN_LENGTH} characters (a passphrase works well)"
        raise PasswordPolicyError(AuthCode.WEAK_PASSWORD, msg)
    if len(password) > MAX_LENGTH:
        msg = f"a password may have at most {MAX_LENGTH} characters"
        raise PasswordPolicyError(AuthCode.WEAK_PASSWORD, msg)


def hash_password(password: str) -> str:
    """The argon2id hash to store (policy checked first)."""
    check_policy(password)
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored`; False for no hash (after the same work)."""
    try:
        return _HASHER.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """The hash was made with other parameters than today's: store a new one at login."""
    return _HASHER.check_needs_rehash(stored)
