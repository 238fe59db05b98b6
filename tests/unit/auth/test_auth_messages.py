"""What factflow.auth tells the caller it refuses, and the password rules: the exact
messages and codes of `authorize`, `parse_scopes` and SSO without a role, the scopes an
SSO user gets, a missing SSO header counting as empty, and argon2id hashing (length
policy at both bounds, verification, rehash detection)."""

from __future__ import annotations

import ipaddress

import pytest
from argon2 import PasswordHasher

from factflow.auth.exceptions import AuthCode, PasswordPolicyError, PermissionDeniedError
from factflow.auth.keys import KeyType
from factflow.auth.passwords import (
    MAX_LENGTH,
    MIN_LENGTH,
    check_policy,
    hash_password,
    needs_rehash,
    verify_password,
)
from factflow.auth.principal import Principal, PrincipalKind, authorize
from factflow.auth.scopes import READ_SCOPES, ROLE_SCOPES, Role, Scope, parse_scopes
from factflow.auth.settings import SsoSettings
from factflow.auth.sso import sso_principal

# --- authorize ---------------------------------------------------------------------------


def test_a_read_only_key_refused_a_write_is_told_why() -> None:
    key = Principal(
        PrincipalKind.KEY, "r@x.test", READ_SCOPES, key_prefix="ff_ro_abc", key_type=KeyType.RO
    )
    with pytest.raises(PermissionDeniedError) as refused:
        authorize(key, Scope.CONFIGS_WRITE)
    assert refused.value.code is AuthCode.READ_ONLY_KEY
    assert refused.value.detail == "ff_ro_abc is a read-only key (ff_ro_): configs:write is a write"


def test_a_missing_scope_is_named_with_the_scopes_held_sorted() -> None:
    key = Principal(
        PrincipalKind.KEY,
        "w@x.test",
        frozenset({Scope.LINEAGE_READ, Scope.CONFIGS_WRITE}),
        key_prefix="ff_live_abc",
    )
    with pytest.raises(PermissionDeniedError) as refused:
        authorize(key, Scope.EXECUTIONS_RUN)
    assert refused.value.code is AuthCode.INSUFFICIENT_SCOPE
    assert refused.value.detail == (
        "this route needs scope executions:run; w@x.test (ff_live_abc) holds: "
        "configs:write, lineage:read"
    )


def test_a_principal_without_scopes_holds_none() -> None:
    with pytest.raises(PermissionDeniedError) as refused:
        authorize(Principal(PrincipalKind.SSO, "nobody", frozenset()), Scope.CONFIGS_READ)
    assert refused.value.detail == "this route needs scope configs:read; nobody holds: none"


# --- parse_scopes ------------------------------------------------------------------------


def test_unknown_scopes_are_listed_sorted_with_every_known_one() -> None:
    with pytest.raises(ValueError, match="unknown scope") as caught:
        parse_scopes(["configs:read", "z:write", "a:write"])
    known = ", ".join(s.value for s in Scope)
    assert str(caught.value) == f"unknown scope(s) a:write, z:write; known: {known}"
    assert known.startswith("configs:read, configs:write, executions:read")


def test_known_scopes_parse() -> None:
    assert parse_scopes(("configs:read", "admin")) == {Scope.CONFIGS_READ, Scope.ADMIN}


# --- SSO ---------------------------------------------------------------------------------

SSO = SsoSettings(
    trusted_proxies=(ipaddress.ip_network("10.1.0.0/16"),),
    group_roles={"readers": Role.VIEWER, "ops": Role.MEMBER},
)


def test_an_sso_user_gets_the_scopes_of_their_highest_role() -> None:
    headers = {"X-Forwarded-User": "bo", "X-Forwarded-Groups": " ops , readers,,"}
    principal = sso_principal(SSO, "10.1.0.9", headers)
    assert principal is not None
    assert (principal.name, principal.role) == ("bo", Role.MEMBER)  # no email: the user name
    assert principal.scopes == ROLE_SCOPES[Role.MEMBER]


def test_an_sso_user_without_groups_gets_the_default_role() -> None:
    sso = SsoSettings(trusted_proxies=SSO.trusted_proxies, default_role=Role.VIEWER)
    principal = sso_principal(sso, "10.1.0.9", {"X-Forwarded-User": "bo"})
    assert principal is not None
    assert (principal.name, principal.role, principal.scopes) == ("bo", Role.VIEWER, READ_SCOPES)


def test_an_sso_user_in_no_mapped_group_is_refused_naming_the_groups() -> None:
    headers = {"X-Forwarded-User": "bo", "X-Forwarded-Groups": "strangers, guests"}
    with pytest.raises(PermissionDeniedError) as refused:
        sso_principal(SSO, "10.1.0.9", headers)
    assert refused.value.code is AuthCode.NO_ROLE
    assert refused.value.detail == (
        "SSO user bo is in no group that maps to a role (strangers, guests)"
    )


def test_an_sso_user_without_any_group_is_refused_saying_none() -> None:
    with pytest.raises(PermissionDeniedError) as refused:
        sso_principal(SSO, "10.1.0.9", {"X-Forwarded-User": "bo", "X-Forwarded-Email": "b@x"})
    assert refused.value.detail == "SSO user b@x is in no group that maps to a role (none)"


# --- passwords ---------------------------------------------------------------------------


@pytest.mark.parametrize("length", [MIN_LENGTH, MAX_LENGTH])
def test_passwords_at_the_length_bounds_are_accepted(length: int) -> None:
    check_policy("p" * length)


@pytest.mark.parametrize(
    ("length", "message"),
    [
        (MIN_LENGTH - 1, "a password needs at least 12 characters (a passphrase works well)"),
        (MAX_LENGTH + 1, "a password may have at most 1024 characters"),
    ],
)
def test_passwords_past_the_length_bounds_are_weak(length: int, message: str) -> None:
    with pytest.raises(PasswordPolicyError) as refused:
        hash_password("p" * length)
    assert refused.value.code is AuthCode.WEAK_PASSWORD
    assert refused.value.detail == message


def test_a_password_hash_verifies_only_its_password() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert "correct horse battery" not in stored
    assert verify_password(stored, "correct horse battery") is True
    assert verify_password(stored, "correct horse battery!") is False
    assert not needs_rehash(stored)


def test_no_stored_hash_or_a_broken_one_never_verifies() -> None:
    # the dummy check runs with the password the dummy hash was made of, too
    assert verify_password(None, "factflow: no such user, the same work as a real check") is False
    assert verify_password(None, "correct horse battery") is False
    assert verify_password("not a hash", "correct horse battery") is False


def test_a_hash_made_with_weaker_parameters_needs_a_rehash() -> None:
    old = PasswordHasher(time_cost=1, memory_cost=8192).hash("correct horse battery")
    assert verify_password(old, "correct horse battery") is True
    assert needs_rehash(old)
