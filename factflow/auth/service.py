"""Issuing, rotating and checking API keys; the SQL is in db/repositories/api_keys.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from factflow.auth.exceptions import AuthCode, AuthenticationError, KeyPolicyError
from factflow.auth.keys import KeyType, generate_key, hash_key, key_matches, parse_key
from factflow.auth.principal import Principal, PrincipalKind
from factflow.auth.scopes import READ_SCOPES, ROLE_SCOPES, Role, Scope, parse_scopes
from factflow.auth.settings import AuthSettings
from factflow.db.connection import DbConnection
from factflow.db.repositories import api_keys as keys_repo
from factflow.db.repositories import users as users_repo
from factflow.db.repositories.api_keys import ApiKey

DEFAULT_ROTATION_GRACE = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: str
    """The key itself: shown once, never stored."""
    record: ApiKey


def key_scopes(record: ApiKey) -> frozenset[Scope]:
    """What a key may do now: its scopes within its owner's current role, reads only for
    `ff_ro_` (so demoting a person narrows their keys at once)."""
    scopes = frozenset(Scope(s) for s in record.scopes) & ROLE_SCOPES[Role(record.owner_role)]
    if record.key_type == KeyType.RO:
        scopes &= READ_SCOPES
    return scopes


def authenticate_key(
    conn: DbConnection, settings: AuthSettings, key: str, *, now: datetime | None = None
) -> Principal:
    """The principal a key stands for; AuthenticationError (with its code) when it is
    malformed, unknown, revoked, expired, a test key in production, or its owner disabled."""
    assert settings.secret is not None, "keys are checked only in KEYS mode"
    parsed = parse_key(key)
    if parsed is None:
        msg = "not a factflow API key (they look like ff_live_..., ff_test_..., ff_ro_...)"
        raise AuthenticationError(AuthCode.INVALID_API_KEY, msg)
    record = keys_repo.find_key_by_prefix(conn, parsed.prefix)
    if record is None or not key_matches(settings.secret, key, record.key_hash):
        raise AuthenticationError(AuthCode.INVALID_API_KEY, f"unknown API key {parsed.prefix}")
    now = now or datetime.now(UTC)
    if record.revoked_at is not None:
        msg = f"API key {parsed.prefix} was revoked at {record.revoked_at.isoformat()}"
        raise AuthenticationError(AuthCode.API_KEY_REVOKED, msg)
    if record.expires_at is not None and record.expires_at <= now:
        msg = f"API key {parsed.prefix} expired at {record.expires_at.isoformat()}"
        raise AuthenticationError(AuthCode.API_KEY_EXPIRED, msg)
    if settings.production and parsed.key_type is KeyType.TEST:
        msg = f"{parsed.prefix} is a test key (ff_test_): refused in production"
        raise AuthenticationError(AuthCode.TEST_KEY_IN_PRODUCTION, msg)
    if record.owner_disabled:
        msg = f"the owner of API key {parsed.prefix} ({record.owner_email}) is disabled"
        raise AuthenticationError(AuthCode.USER_DISABLED, msg)
    keys_repo.touch_key(conn, record, now)
    return Principal(
        PrincipalKind.KEY,
        record.owner_email,
        key_scopes(record),
        Role(record.owner_role),
        key_id=record.id,
        key_prefix=record.prefix,
        key_type=parsed.key_type,
        user_id=record.owner_id,
        rate_limit_per_minute=record.rate_limit_per_minute,
        max_running_executions=record.max_running_executions,
    )


def check_key_scopes(
    key_type: KeyType, scopes: Iterable[str], owner_role: Role, issuer: Principal | None
) -> frozenset[Scope]:
    """The scopes to store; KeyPolicyError when unknown, a write on `ff_ro_`, beyond the
    owner's role, or beyond what the issuer holds (nobody hands out more than they have)."""
    try:
        wanted = parse_scopes(tuple(scopes))
    except ValueError as exc:
        raise KeyPolicyError(AuthCode.UNKNOWN_SCOPE, str(exc)) from None
    if not wanted:
        raise KeyPolicyError(AuthCode.NO_SCOPES, "a key needs at least one scope")
    if key_type is KeyType.RO and not wanted <= READ_SCOPES:
        writes = ", ".join(sorted(wanted - READ_SCOPES))
        msg = f"an ff_ro_ key holds only :read scopes; not {writes}"
        raise KeyPolicyError(AuthCode.READ_ONLY_KEY_SCOPES, msg)
    beyond_role = wanted - ROLE_SCOPES[owner_role]
    if beyond_role:
        msg = f"the owner's role {owner_role.value} does not allow {', '.join(sorted(beyond_role))}"
        raise KeyPolicyError(AuthCode.SCOPE_BEYOND_ROLE, msg)
    if issuer is not None and Scope.ADMIN not in issuer.scopes and not wanted <= issuer.scopes:
        beyond = ", ".join(sorted(wanted - issuer.scopes))
        raise KeyPolicyError(
            AuthCode.SCOPE_BEYOND_ISSUER, f"you cannot grant scopes you lack: {beyond}"
        )
    return wanted


def issue_key(
    conn: DbConnection,
    secret: str,
    *,
    owner_id: uuid.UUID,
    name: str,
    key_type: KeyType,
    scopes: Iterable[str],
    issuer: Principal | None,
    expires_at: datetime | None = None,
    rotated_from: uuid.UUID | None = None,
    rate_limit_per_minute: int | None = None,
    max_running_executions: int | None = None,
) -> IssuedKey:
    """A new key for `owner_id`; `issuer` None is the bootstrap (database access)."""
    owner = users_repo.get_user(conn, owner_id)
    granted = check_key_scopes(key_type, scopes, Role(owner.role), issuer)
    key, parsed = generate_key(key_type)
    record = keys_repo.insert_key(
        conn,
        prefix=parsed.prefix,
        key_type=key_type.value,
        key_hash=hash_key(secret, key),
        name=name,
        owner_id=owner_id,
        scopes=[s.value for s in granted],
        created_by=issuer.label if issuer else "bootstrap",
        expires_at=expires_at,
        rotated_from=rotated_from,
        rate_limit_per_minute=rate_limit_per_minute,
        max_running_executions=max_running_executions,
    )
    return IssuedKey(key, record)


def rotate_key(
    conn: DbConnection,
    secret: str,
    key_id: uuid.UUID,
    *,
    issuer: Principal | None,
    grace: timedelta = DEFAULT_ROTATION_GRACE,
) -> IssuedKey:
    """A successor with the same owner, name, type, scopes, expiry and limits; the old key stays
    valid for `grace` (both work meanwhile, so clients switch without downtime)."""
    old = keys_repo.get_key(conn, key_id)
    if old.revoked_at is not None:
        msg = f"API key {old.prefix} is revoked; create a new one instead"
        raise KeyPolicyError(AuthCode.KEY_REVOKED, msg)
    with conn.transaction():
        issued = issue_key(
            conn,
            secret,
            owner_id=old.owner_id,
            name=old.name,
            key_type=KeyType(old.key_type),
            scopes=[s.value for s in key_scopes(old)],
            issuer=issuer,
            expires_at=old.expires_at,
            rotated_from=old.id,
            rate_limit_per_minute=old.rate_limit_per_minute,
            max_running_executions=old.max_running_executions,
        )
        keys_repo.expire_key_by(conn, old.id, datetime.now(UTC) + grace)
    return issued


def bootstrap_admin_key(
    conn: DbConnection, secret: str, email: str, *, name: str = "bootstrap admin"
) -> IssuedKey:
    """The first admin's key, made with database access (`factflow keys create --admin`):
    the user `email` is created (or made admin) and gets an `ff_live_` key with `admin`."""
    user = users_repo.upsert_user(conn, email=email, role=Role.ADMIN.value)
    return issue_key(
        conn,
        secret,
        owner_id=user.id,
        name=name,
        key_type=KeyType.LIVE,
        scopes=[Scope.ADMIN.value],
        issuer=None,
    )
