"""factflow.auth without a database: key strings and hashes, the scope and role tables,
`authorize`, and SSO header trust."""

from __future__ import annotations

import ipaddress

import pytest

from factflow.auth.exceptions import AuthCode, KeyPolicyError, PermissionDeniedError
from factflow.auth.keys import KeyType, generate_key, hash_key, key_matches, parse_key
from factflow.auth.principal import OPEN_PRINCIPAL, Principal, PrincipalKind, authorize
from factflow.auth.scopes import READ_SCOPES, ROLE_SCOPES, Role, Scope, parse_scopes
from factflow.auth.service import check_key_scopes
from factflow.auth.settings import SsoSettings
from factflow.auth.sso import sso_principal

SECRET = "s" * 32


@pytest.mark.parametrize("key_type", list(KeyType))
def test_generated_keys_parse_and_differ(key_type: KeyType) -> None:
    key, parsed = generate_key(key_type)
    other, _ = generate_key(key_type)
    assert key != other
    assert key.startswith(f"ff_{key_type.value}_") and key.startswith(parsed.prefix)
    assert parse_key(key) == parsed and parsed.key_type is key_type
    assert len(key) - len(parsed.prefix) == 40  # the secret part never shows in listings


@pytest.mark.parametrize(
    "text", ["", "ff_live_", "ff_prod_" + "a" * 52, "ff_live_" + "a" * 51, "ff_live_" + "-" * 52]
)
def test_malformed_keys_do_not_parse(text: str) -> None:
    assert parse_key(text) is None


def test_hash_is_keyed_and_never_the_key() -> None:
    key, _ = generate_key(KeyType.LIVE)
    stored = hash_key(SECRET, key)
    assert stored != key and key not in stored and len(stored) == 64
    assert key_matches(SECRET, key, stored)
    assert not key_matches("t" * 32, key, stored)  # another server secret
    assert not key_matches(SECRET, key[:-1] + "x", stored)


def test_role_table() -> None:
    assert ROLE_SCOPES[Role.ADMIN] == frozenset(Scope)
    assert ROLE_SCOPES[Role.VIEWER] == READ_SCOPES
    assert all(s.value.endswith(":read") for s in READ_SCOPES)
    member = ROLE_SCOPES[Role.MEMBER]
    assert {
        Scope.CONFIGS_WRITE,
        Scope.EXECUTIONS_RUN,
        Scope.CHAT_USE,
        Scope.WEBHOOKS_MANAGE,
    } <= member
    assert Scope.KEYS_MANAGE not in member and Scope.ADMIN not in member
    with pytest.raises(ValueError, match="unknown scope"):
        parse_scopes(["configs:read", "configs:delete"])


def test_authorize() -> None:
    reader = Principal(
        PrincipalKind.KEY, "r", READ_SCOPES, key_prefix="ff_ro_x", key_type=KeyType.RO
    )
    authorize(reader, Scope.SEARCH_READ)
    # even holding a write scope (a row edited by hand), an ff_ro_ key never writes
    hand_edited = Principal(
        PrincipalKind.KEY, "r", frozenset(Scope), key_prefix="ff_ro_y", key_type=KeyType.RO
    )
    with pytest.raises(PermissionDeniedError) as refused:
        authorize(hand_edited, Scope.CONFIGS_WRITE)
    assert refused.value.code == "READ_ONLY_KEY"
    writer = Principal(PrincipalKind.KEY, "w", frozenset({Scope.CONFIGS_WRITE}))
    authorize(writer, Scope.CONFIGS_WRITE)
    with pytest.raises(PermissionDeniedError) as missing:
        authorize(writer, Scope.EXECUTIONS_RUN)
    assert missing.value.code == "INSUFFICIENT_SCOPE" and "executions:run" in str(missing.value)
    authorize(OPEN_PRINCIPAL, Scope.ADMIN)  # admin grants everything


SSO = SsoSettings(
    trusted_proxies=(ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_network("::1/128")),
    group_roles={"readers": Role.VIEWER, "ops": Role.MEMBER},
)
HEADERS = {
    "X-Forwarded-User": "bo",
    "X-Forwarded-Email": "bo@x.test",
    "X-Forwarded-Groups": "readers,ops",
}


def test_sso_from_a_trusted_proxy() -> None:
    principal = sso_principal(SSO, "10.1.2.3", HEADERS)
    assert principal is not None
    assert (principal.kind, principal.name, principal.role) == (
        PrincipalKind.SSO,
        "bo@x.test",
        Role.MEMBER,
    )
    assert sso_principal(SSO, "::1", HEADERS) is not None


@pytest.mark.parametrize("peer", ["10.2.0.1", "127.0.0.1", "testclient", None])
def test_sso_headers_from_anyone_else_are_ignored(peer: str | None) -> None:
    assert sso_principal(SSO, peer, HEADERS) is None


def test_sso_without_a_role() -> None:
    with pytest.raises(PermissionDeniedError, match="no group"):
        sso_principal(SSO, "10.1.0.1", {**HEADERS, "X-Forwarded-Groups": "strangers"})
    assert sso_principal(SSO, "10.1.0.1", {"X-Forwarded-Email": "x@y"}) is None  # no user header


@pytest.mark.parametrize(
    ("key_type", "scopes", "role", "code"),
    [
        (KeyType.LIVE, ["no:such"], Role.ADMIN, AuthCode.UNKNOWN_SCOPE),
        (KeyType.LIVE, [], Role.ADMIN, AuthCode.NO_SCOPES),
        (KeyType.RO, ["configs:write"], Role.ADMIN, AuthCode.READ_ONLY_KEY_SCOPES),
        (KeyType.LIVE, ["configs:write"], Role.VIEWER, AuthCode.SCOPE_BEYOND_ROLE),
    ],
)
def test_key_scope_policies(
    key_type: KeyType, scopes: list[str], role: Role, code: AuthCode
) -> None:
    # the API's body schema refuses unknown and empty scope lists first (422); the CLI
    # issues keys through the same check and gets these codes
    with pytest.raises(KeyPolicyError) as caught:
        check_key_scopes(key_type, scopes, role, None)
    assert caught.value.code is code


def test_an_issuer_hands_out_only_what_it_holds() -> None:
    issuer = Principal(PrincipalKind.KEY, "m@p.test", frozenset({Scope("configs:read")}))
    with pytest.raises(KeyPolicyError) as caught:
        check_key_scopes(KeyType.LIVE, ["configs:write"], Role.ADMIN, issuer)
    assert caught.value.code is AuthCode.SCOPE_BEYOND_ISSUER
    assert check_key_scopes(KeyType.RO, ["configs:read"], Role.VIEWER, issuer) == {
        Scope("configs:read")
    }
