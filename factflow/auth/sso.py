"""The identity an ingress forwarded, trusted only from its configured addresses."""

from __future__ import annotations

from collections.abc import Mapping

from factflow.auth.exceptions import AuthCode, PermissionDeniedError
from factflow.auth.principal import Principal, PrincipalKind
from factflow.auth.scopes import ROLE_SCOPES, Role
from factflow.auth.settings import SsoSettings

_RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2}


def sso_principal(
    sso: SsoSettings, peer: str | None, headers: Mapping[str, str]
) -> Principal | None:
    """The forwarded user when `peer` is a trusted proxy and sent the user header; None
    otherwise (headers from anyone else are ignored). PermissionDeniedError when the
    user's groups map to no role and there is no default role."""
    if not sso.trusts(peer):
        return None
    user = headers.get(sso.user_header, "").strip()
    if not user:
        return None
    email = headers.get(sso.email_header, "").strip()
    groups = [g.strip() for g in headers.get(sso.groups_header, "").split(",") if g.strip()]
    roles = [sso.group_roles[g] for g in groups if g in sso.group_roles]
    role = max(roles, key=_RANK.__getitem__) if roles else sso.default_role
    name = email or user
    if role is None:
        msg = f"SSO user {name} is in no group that maps to a role ({', '.join(groups) or 'none'})"
        raise PermissionDeniedError(AuthCode.NO_ROLE, msg)
    return Principal(PrincipalKind.SSO, name, ROLE_SCOPES[role], role)
