"""API keys: create (the key is in that response only), list, get, revoke, rotate."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from factflow.api.auth import PrincipalDep, require
from factflow.api.deps import DbDep, Offset
from factflow.api.errors import error_responses, not_found
from factflow.api.schemas.auth import KeyCreate, KeyCreated, KeyResponse, KeyRotate
from factflow.auth.exceptions import AuthCode, KeyPolicyError
from factflow.auth.service import IssuedKey, issue_key, rotate_key
from factflow.auth.settings import AuthSettings
from factflow.db.repositories import api_keys as repo
from factflow.db.repositories.users import find_user_by_email

router = APIRouter(prefix="/keys", tags=["keys"], dependencies=[require("keys:manage")])


def _secret(request: Request) -> str:
    auth: AuthSettings = request.app.state.auth
    if auth.secret is None:
        msg = "keys need a server secret: set FACTFLOW_AUTH_SECRET and restart the server"
        raise KeyPolicyError(AuthCode.AUTH_NOT_CONFIGURED, msg)
    return auth.secret


def _created(issued: IssuedKey) -> KeyCreated:
    return KeyCreated(**KeyResponse.of(issued.record).model_dump(), key=issued.key)


@router.post("", status_code=status.HTTP_201_CREATED, responses=error_responses(404))
def create_key(body: KeyCreate, request: Request, db: DbDep, principal: PrincipalDep) -> KeyCreated:
    """A new key for `owner_email` (default: the caller), with at most the scopes of the
    owner's role and of the caller. The key is in this response only."""
    email = body.owner_email or principal.name
    owner = find_user_by_email(db, email)
    if owner is None:
        what = f"user {email}"
        raise not_found(what)
    issued = issue_key(
        db,
        _secret(request),
        owner_id=owner.id,
        name=body.name,
        key_type=body.type,
        scopes=[s.value for s in body.scopes],
        issuer=principal,
        expires_at=body.expires_at,
        rate_limit_per_minute=body.rate_limit_per_minute,
        max_running_executions=body.max_running_executions,
    )
    return _created(issued)


@router.get("")
def list_keys(
    db: DbDep,
    owner_email: str | None = None,
    include_revoked: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[KeyResponse]:
    """Keys, newest first (never the keys themselves: only their prefixes)."""
    owner_id = None
    if owner_email is not None:
        owner = find_user_by_email(db, owner_email)
        if owner is None:
            return []
        owner_id = owner.id
    rows = repo.list_keys(
        db, owner_id=owner_id, include_revoked=include_revoked, limit=limit, offset=offset
    )
    return [KeyResponse.of(row) for row in rows]


@router.get("/{key_id}", responses=error_responses(404))
def get_key(key_id: uuid.UUID, db: DbDep) -> KeyResponse:
    return KeyResponse.of(repo.get_key(db, key_id))


@router.post("/{key_id}/revoke", responses=error_responses(404))
def revoke_key(key_id: uuid.UUID, db: DbDep) -> KeyResponse:
    """Revoke at once: the next request with the key is a 401."""
    return KeyResponse.of(repo.revoke_key(db, key_id))


@router.post(
    "/{key_id}/rotate", status_code=status.HTTP_201_CREATED, responses=error_responses(404)
)
def rotate(
    key_id: uuid.UUID, request: Request, db: DbDep, principal: PrincipalDep, body: KeyRotate
) -> KeyCreated:
    """A successor key (in this response only); the old one keeps working for
    `grace_seconds` so clients can switch without downtime."""
    issued = rotate_key(
        db,
        _secret(request),
        key_id,
        issuer=principal,
        grace=timedelta(seconds=body.grace_seconds),
    )
    return _created(issued)
