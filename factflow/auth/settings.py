"""What access control needs to know: `AuthSettings.of(Settings())`, a plain view of the one
settings model, or built directly by tests."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from factflow.auth.scopes import Role
from factflow.exceptions import ConfigurationError

if TYPE_CHECKING:
    from factflow.settings import Settings

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AuthMode(StrEnum):
    KEYS = "keys"
    """Every route but health and readiness needs a key (or trusted SSO headers)."""
    OPEN = "open"
    """Development without a server secret: no checks at all, said at start and in /system."""


@dataclass(frozen=True, slots=True)
class SsoSettings:
    """Trust of an ingress's forwarded identity headers (the seed system's deployment).

    Headers are read only from a peer address inside `trusted_proxies`; from any other
    address they are ignored as if absent. Roles come from `group_roles` (the highest
    role of the user's groups wins), else `default_role`; no role means 403.
    """

    trusted_proxies: tuple[IpNetwork, ...]
    user_header: str = "X-Forwarded-User"
    email_header: str = "X-Forwarded-Email"
    groups_header: str = "X-Forwarded-Groups"
    group_roles: dict[str, Role] = field(default_factory=dict)
    default_role: Role | None = None

    def trusts(self, peer: str | None) -> bool:
        if peer is None:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in network for network in self.trusted_proxies)


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """Password login: lockout after `max_failures` failures in a row (counted within
    `lockout_seconds`, then locked for as long), attempts per minute per client address,
    and the session cookie's lifetime."""

    max_failures: int = 5
    lockout_seconds: float = 900.0
    rate_per_minute: int = 30
    session_ttl_seconds: float = 8 * 3600.0
    cookie_secure: bool = False


@dataclass(frozen=True, slots=True)
class Limits:
    """Per key (or user) defaults; a key's own values win. None: no limit."""

    rate_per_minute: int | None = 600
    max_running_executions: int | None = None


@dataclass(frozen=True, slots=True)
class AuthSettings:
    mode: AuthMode
    secret: str | None
    """The server secret keying the key and session hashes; required in KEYS mode."""
    production: bool = False
    """`environment: production`: `ff_test_` keys are refused."""
    sso: SsoSettings | None = None
    login: LoginPolicy = field(default_factory=LoginPolicy)
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def of(cls, settings: Settings) -> AuthSettings:
        """Open only in development without a secret; SSO trust only with trusted proxies.
        ConfigurationError outside development without FACTFLOW_AUTH_SECRET."""
        secret = settings.auth_secret.get_secret_value() if settings.auth_secret else None
        if secret is None and settings.environment != "development":
            msg = (
                f"FACTFLOW_AUTH_SECRET must be set when FACTFLOW_ENVIRONMENT="
                f"{settings.environment} (at least 32 characters, e.g. from"
                " `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
            raise ConfigurationError(msg)
        sso = None
        if settings.auth_trusted_proxies:
            sso = SsoSettings(
                trusted_proxies=tuple(settings.auth_trusted_proxies),
                user_header=settings.auth_sso_user_header,
                email_header=settings.auth_sso_email_header,
                groups_header=settings.auth_sso_groups_header,
                group_roles={g: Role(r) for g, r in settings.auth_sso_group_roles.items()},
                default_role=Role(settings.auth_sso_default_role)
                if settings.auth_sso_default_role
                else None,
            )
        return cls(
            mode=AuthMode.KEYS if secret else AuthMode.OPEN,
            secret=secret,
            production=settings.environment == "production",
            sso=sso,
            login=LoginPolicy(
                max_failures=settings.auth_login_max_failures,
                lockout_seconds=settings.auth_login_lockout_seconds,
                rate_per_minute=settings.auth_login_rate_per_minute,
                session_ttl_seconds=settings.auth_session_ttl_seconds,
                cookie_secure=settings.environment == "production"
                if settings.auth_cookie_secure is None
                else settings.auth_cookie_secure,
            ),
            limits=Limits(
                rate_per_minute=settings.auth_rate_limit_per_minute,
                max_running_executions=settings.auth_key_max_running_executions,
            ),
        )
