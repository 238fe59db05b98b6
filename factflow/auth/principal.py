"""Who is calling (`Principal`) and the check of one scope against what they hold."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from factflow.auth.exceptions import AuthCode, PermissionDeniedError
from factflow.auth.keys import KeyType
from factflow.auth.scopes import ALL_SCOPES, Role, Scope, grants


class PrincipalKind(StrEnum):
    KEY = "key"
    SESSION = "session"
    """A password login's session cookie."""
    SSO = "sso"
    OPEN = "open"
    """Development without a server secret: everyone is an anonymous admin."""


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    name: str
    """The owner's email (keys), the forwarded user (SSO), `anonymous` (open mode)."""
    scopes: frozenset[Scope]
    role: Role | None = None
    key_id: uuid.UUID | None = None
    key_prefix: str | None = None
    key_type: KeyType | None = None
    user_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    rate_limit_per_minute: int | None = None
    """The key's own limit (None: the server's default)."""
    max_running_executions: int | None = None
    """The key's own cap on running executions (None: the server's default)."""

    @property
    def label(self) -> str:
        """For `created_by` columns and logs: the name, and the key prefix when a key."""
        return f"{self.name} ({self.key_prefix})" if self.key_prefix else self.name

    @property
    def subject(self) -> str:
        """What rate limits count against: the key, else the user (or SSO name)."""
        if self.key_id is not None:
            return f"key:{self.key_id}"
        if self.user_id is not None:
            return f"user:{self.user_id}"
        return f"{self.kind.value}:{self.name.lower()}"


OPEN_PRINCIPAL = Principal(PrincipalKind.OPEN, "anonymous", ALL_SCOPES, Role.ADMIN)


def authorize(principal: Principal, needed: Scope) -> None:
    """Raise PermissionDeniedError unless `principal` may call a route that needs `needed`.
    An `ff_ro_` key is refused on every route whose scope is not a `:read` one, whatever it
    holds (its scopes are reads only as well: two locks)."""
    if principal.key_type is KeyType.RO and not needed.reads_only:
        msg = f"{principal.key_prefix} is a read-only key (ff_ro_): {needed.value} is a write"
        raise PermissionDeniedError(AuthCode.READ_ONLY_KEY, msg)
    if not grants(principal.scopes, needed):
        held = ", ".join(sorted(principal.scopes)) or "none"
        msg = f"this route needs scope {needed.value}; {principal.label} holds: {held}"
        raise PermissionDeniedError(AuthCode.INSUFFICIENT_SCOPE, msg)
