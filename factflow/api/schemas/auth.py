"""Request and response bodies of the keys and users API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import BaseModel, Field

from factflow.api.bodies import RequestBody
from factflow.auth.keys import KeyType
from factflow.auth.scopes import Role, Scope
from factflow.db.repositories.api_keys import ApiKey
from factflow.db.repositories.users import User

MAX_GRACE_SECONDS = 30 * 86400
# the shape of an address, no more: whether it is deliverable is not the API's business
Email = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]


class KeyCreate(RequestBody):
    name: str = Field(min_length=1, max_length=200)
    type: KeyType = KeyType.LIVE
    scopes: list[Scope] = Field(min_length=1, description="what the key may do")
    owner_email: Email | None = Field(
        default=None, description="an existing user; default: the caller"
    )
    expires_at: datetime | None = Field(default=None, description="none: never expires")
    rate_limit_per_minute: int | None = Field(
        default=None, ge=1, le=1_000_000, description="none: the server's default"
    )
    max_running_executions: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="executions this key may have running at once; none: the server's default",
    )


class KeyRotate(RequestBody):
    grace_seconds: int = Field(
        default=86400,
        ge=0,
        le=MAX_GRACE_SECONDS,
        description="how long the old key keeps working beside the new one",
    )


class KeyResponse(BaseModel):
    id: uuid.UUID
    prefix: str = Field(description="the key's first characters: safe to show and log")
    type: KeyType
    name: str
    owner_email: str
    scopes: list[Scope]
    status: str = Field(description="active, expired or revoked")
    created_by: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    rotated_from: uuid.UUID | None
    rate_limit_per_minute: int | None = Field(description="none: the server's default")
    max_running_executions: int | None = Field(description="none: the server's default")

    @classmethod
    def of(cls, key: ApiKey) -> KeyResponse:
        now = datetime.now(UTC)
        status = (
            "revoked"
            if key.revoked_at is not None
            else "expired"
            if key.expires_at is not None and key.expires_at <= now
            else "active"
        )
        return cls(
            id=key.id,
            prefix=key.prefix,
            type=KeyType(key.key_type),
            name=key.name,
            owner_email=key.owner_email,
            scopes=[Scope(s) for s in key.scopes],
            status=status,
            created_by=key.created_by,
            created_at=key.created_at,
            expires_at=key.expires_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
            rotated_from=key.rotated_from,
            rate_limit_per_minute=key.rate_limit_per_minute,
            max_running_executions=key.max_running_executions,
        )


class KeyCreated(KeyResponse):
    key: str = Field(description="the key itself: shown only in this response, never again")


class UserCreate(RequestBody):
    email: Email
    name: str | None = Field(default=None, max_length=200)
    role: Role = Role.VIEWER


class UserUpdate(RequestBody):
    role: Role | None = None
    disabled: bool | None = None


class UserResponse(BaseModel):
    id: uuid.UUID
    email: str
    name: str | None
    role: Role
    disabled: bool
    created_at: datetime
    updated_at: datetime
    has_password: bool = Field(description="whether the user can log in with a password")
    last_login_at: datetime | None

    @classmethod
    def of(cls, user: User) -> UserResponse:
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            role=Role(user.role),
            disabled=user.disabled,
            created_at=user.created_at,
            updated_at=user.updated_at,
            has_password=user.password_hash is not None,
            last_login_at=user.last_login_at,
        )


class PasswordSet(RequestBody):
    password: str = Field(min_length=1, max_length=4096, description="12 to 1024 characters")


class LoginBody(RequestBody):
    email: Email
    password: str = Field(min_length=1, max_length=4096)


class LoginResponse(BaseModel):
    user: UserResponse
    session_id: uuid.UUID
    expires_at: datetime
    csrf_token: str = Field(
        description="send it as X-CSRF-Token on every POST, PUT, PATCH and DELETE made with"
        " the session cookie (it is also in the factflow_csrf cookie)"
    )


class WhoAmI(BaseModel):
    name: str = Field(description="the user's email, the SSO user, or anonymous (open mode)")
    kind: str = Field(description="key, session, sso or open")
    role: Role | None
    scopes: list[Scope]
    key_prefix: str | None = None
    session_id: uuid.UUID | None = None
    csrf_token: str | None = Field(default=None, description="for a session only")
    auth: str = Field(description="the server's mode: open or keys")
