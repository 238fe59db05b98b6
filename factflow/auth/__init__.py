"""Access control: API keys with scopes, people with roles, trusted SSO headers, password
logins with sessions and CSRF tokens (sessions.py, passwords.py), and per-key rate limits
(limits.py).

Knows no HTTP: `factflow.api.auth` turns requests into calls of `authenticate_key`,
`authenticate_session`, `sso_principal`, `check_rate` and `authorize`, and errors into 401 /
403 / 429 responses; `factflow.api.audit` writes the audit log.
"""

from factflow.auth.exceptions import (
    AuthenticationError,
    AuthError,
    KeyPolicyError,
    PermissionDeniedError,
)
from factflow.auth.keys import KeyType
from factflow.auth.principal import Principal, PrincipalKind, authorize
from factflow.auth.scopes import ROLE_SCOPES, Role, Scope
from factflow.auth.settings import AuthMode, AuthSettings, SsoSettings

__all__ = [
    "ROLE_SCOPES",
    "AuthError",
    "AuthMode",
    "AuthSettings",
    "AuthenticationError",
    "KeyPolicyError",
    "KeyType",
    "PermissionDeniedError",
    "Principal",
    "PrincipalKind",
    "Role",
    "Scope",
    "SsoSettings",
    "authorize",
]
