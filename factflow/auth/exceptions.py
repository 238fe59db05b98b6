"""Errors of access control; `code` is the API's `error_code`, the docstring what to do."""

from enum import StrEnum

from factflow.exceptions import FactflowError


class AuthCode(StrEnum):
    """The `error_code` of every access-control error (stable: clients match on them)."""

    ACCOUNT_LOCKED = "ACCOUNT_LOCKED"
    CSRF_TOKEN_INVALID = "CSRF_TOKEN_INVALID"
    CSRF_TOKEN_MISSING = "CSRF_TOKEN_MISSING"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    RATE_LIMITED = "RATE_LIMITED"
    SESSION_EXPIRED = "SESSION_EXPIRED"
    SESSION_INVALID = "SESSION_INVALID"
    WEAK_PASSWORD = "WEAK_PASSWORD"
    API_KEY_EXPIRED = "API_KEY_EXPIRED"
    API_KEY_REVOKED = "API_KEY_REVOKED"
    AUTHENTICATION_REQUIRED = "AUTHENTICATION_REQUIRED"
    AUTH_NOT_CONFIGURED = "AUTH_NOT_CONFIGURED"
    INSUFFICIENT_SCOPE = "INSUFFICIENT_SCOPE"
    INVALID_API_KEY = "INVALID_API_KEY"
    KEY_REVOKED = "KEY_REVOKED"
    NO_ROLE = "NO_ROLE"
    NO_SCOPES = "NO_SCOPES"
    READ_ONLY_KEY = "READ_ONLY_KEY"
    READ_ONLY_KEY_SCOPES = "READ_ONLY_KEY_SCOPES"
    SCOPE_BEYOND_ISSUER = "SCOPE_BEYOND_ISSUER"
    SCOPE_BEYOND_ROLE = "SCOPE_BEYOND_ROLE"
    TEST_KEY_IN_PRODUCTION = "TEST_KEY_IN_PRODUCTION"
    UNKNOWN_SCOPE = "UNKNOWN_SCOPE"
    USER_DISABLED = "USER_DISABLED"


class AuthError(FactflowError):
    """Base of the access-control errors; `code` is a stable machine-readable reason."""

    def __init__(self, code: AuthCode, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class AuthenticationError(AuthError):
    """No usable credentials (HTTP 401): none sent, unknown, expired, revoked or disabled.

    Send a key as `Authorization: Bearer ff_...` or `X-API-Key: ff_...` (the CLI sends
    FACTFLOW_API_KEY); an admin makes one with `factflow keys create`.
    """


class PermissionDeniedError(AuthError):
    """The caller is known but may not do this (HTTP 403): a missing scope, or a write
    with an `ff_ro_` key. Use a key with the scope the message names."""


class KeyPolicyError(AuthError):
    """A key cannot be issued as asked: an unknown scope, a write scope on an `ff_ro_`
    key, or more scopes than the owner's role (or the issuer) holds."""


class RateLimitedError(AuthError):
    """Too many requests (HTTP 429 with `Retry-After`): a key's (or user's) rate limit, the
    login attempts from one address, or a login locked out after repeated failures. Wait
    `retry_after` seconds; an admin can raise a key's limit (`rate_limit_per_minute`)."""

    def __init__(self, code: AuthCode, detail: str, *, retry_after: float, limit: int) -> None:
        super().__init__(code, detail)
        self.retry_after = retry_after
        self.limit = limit


class PasswordPolicyError(AuthError):
    """A password cannot be set as given (HTTP 400): shorter than 12 characters or longer
    than 1024. Choose a longer passphrase."""
