"""Users (people) and their roles: admin, member, viewer. Admins only."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from factflow.api.auth import require
from factflow.api.deps import DbDep, Offset
from factflow.api.errors import error_responses
from factflow.api.schemas.auth import PasswordSet, UserCreate, UserResponse, UserUpdate
from factflow.auth.sessions import set_password
from factflow.db.repositories import users as repo

router = APIRouter(prefix="/users", tags=["users"], dependencies=[require("admin")])


@router.post("", status_code=status.HTTP_201_CREATED, responses=error_responses(409))
def create_user(body: UserCreate, db: DbDep) -> UserResponse:
    """A new user; 409 when the email is taken (case-insensitive)."""
    return UserResponse.of(
        repo.create_user(db, email=body.email, role=body.role.value, name=body.name)
    )


@router.get("")
def list_users(
    db: DbDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100, offset: Offset = 0
) -> list[UserResponse]:
    return [UserResponse.of(u) for u in repo.list_users(db, limit=limit, offset=offset)]


@router.get("/{user_id}", responses=error_responses(404))
def get_user(user_id: uuid.UUID, db: DbDep) -> UserResponse:
    return UserResponse.of(repo.get_user(db, user_id))


@router.patch("/{user_id}", responses=error_responses(404))
def update_user(user_id: uuid.UUID, body: UserUpdate, db: DbDep) -> UserResponse:
    """Change the role (the user's keys can then do no more than the new role allows) or
    disable the user (their keys stop working)."""
    role = body.role.value if body.role else None
    return UserResponse.of(repo.update_user(db, user_id, role=role, disabled=body.disabled))


@router.put("/{user_id}/password", responses=error_responses(404))
def set_user_password(user_id: uuid.UUID, body: PasswordSet, db: DbDep) -> UserResponse:
    """Set the user's login password (argon2id; 12 to 1024 characters, else 400
    `WEAK_PASSWORD`); their sessions end."""
    return UserResponse.of(set_password(db, user_id, body.password))
