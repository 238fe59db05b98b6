"""The auth matrix: every operation of the app's OpenAPI document, called with each kind of
credential, answers 401, 403 or neither as the scope table (`factflow.auth.scopes`) says.

Operations come from /openapi.json, so a new route is in the matrix without editing this
file, and one without a declared scope makes `create_app` raise (the last test). "Let
through" means neither 401 nor 403: the handler then answers for itself (404 for the
made-up ids, 422 for the empty bodies, 200...).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from factflow.api.auth import AUTHENTICATED, PUBLIC, Needed, RouteScopeError, require, secure_routes
from factflow.auth.scopes import ALL_SCOPES, READ_SCOPES, ROLE_SCOPES, Role, Scope
from tests.integration.api.conftest import MakeApp

pytestmark = pytest.mark.integration

SAFE = {"GET", "HEAD", "OPTIONS"}
FORGED = "factflow_session=ffs_" + "x" * 43
# POST /system/mq-diagnostic publishes on every reachable provider: it is called, but only
# by the credentials it refuses (it is in the table like every other route)
NOT_CALLED_WHEN_ALLOWED = {("POST", "/api/v1/system/mq-diagnostic")}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    scope: Needed

    @property
    def url(self) -> str:
        def fill(match: re.Match[str]) -> str:
            name = match[1]
            return str(uuid.UUID(int=7)) if name.endswith("_id") else "nothing-here"

        return re.sub(r"\{([^}]+)\}", fill, self.path)

    def call(self, client: TestClient, headers: dict[str, str]) -> Any:
        body = {} if self.method not in SAFE else None
        return client.request(self.method, self.url, headers=headers, json=body)


@pytest.fixture(scope="module")
def operations() -> list[Operation]:
    from factflow.api import ApiSettings, create_app

    spec = create_app(ApiSettings(environment="test", auth_secret="m" * 32)).openapi()

    def needed(value: str | None) -> Needed:
        if value is None:
            return None
        return AUTHENTICATED if value == AUTHENTICATED else Scope(value)

    found = [
        Operation(method.upper(), path, needed(op["x-required-scope"]))
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    ]
    assert len(found) > 40  # every domain's routes, not an empty document
    return found


@pytest.fixture
def world(make_app: MakeApp) -> Iterator[dict[str, Any]]:
    """An app with an admin key, plus users and keys of every kind we test."""
    api = make_app()
    made: dict[str, Any] = {"api": api}
    for role in ("member", "viewer"):
        r = api.post("/api/v1/users", json={"email": f"{role}@m.test", "role": role})
        assert r.status_code == 201, r.text

    def key(owner: str, scopes: set[Scope] | frozenset[Scope], **extra: Any) -> dict[str, Any]:
        body = {"name": "m", "owner_email": owner, "scopes": sorted(scopes), **extra}
        r = api.post("/api/v1/keys", json=body)
        assert r.status_code == 201, r.text
        created: dict[str, Any] = r.json()
        return created

    admin = "admin@tests.factflow"
    made["member"] = key("member@m.test", ROLE_SCOPES[Role.MEMBER])["key"]
    made["viewer"] = key("viewer@m.test", ROLE_SCOPES[Role.VIEWER])["key"]
    made["ro"] = key(admin, READ_SCOPES, type="ro")["key"]
    revoked = key(admin, ALL_SCOPES)
    assert api.post(f"/api/v1/keys/{revoked['id']}/revoke").status_code == 200
    made["revoked"] = revoked["key"]
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    made["expired"] = key(admin, ALL_SCOPES, expires_at=past)["key"]
    # for each scope, a key with every other scope (admin excluded: it grants all)
    made["all_but"] = {
        scope: key(admin, ALL_SCOPES - {scope, Scope.ADMIN})["key"]
        for scope in ALL_SCOPES
        if scope is not Scope.ADMIN
    }
    yield made


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_every_operation_declares_a_scope_or_public(operations: list[Operation]) -> None:
    public = sorted(op.path for op in operations if op.scope is None)
    assert public == ["/api/v1/auth/login", "/api/v1/system/health", "/api/v1/system/readiness"]
    authenticated = sorted(op.path for op in operations if op.scope == AUTHENTICATED)
    assert authenticated == ["/api/v1/auth/logout", "/api/v1/auth/me"]


def test_matrix(world: dict[str, Any], operations: list[Operation]) -> None:
    api: TestClient = world["api"]
    failures: list[str] = []

    def expect(op: Operation, who: str, headers: dict[str, str], want: str) -> None:
        if want == "allowed" and (op.method, op.path) in NOT_CALLED_WHEN_ALLOWED:
            return
        response = op.call(api, headers)
        status = response.status_code
        ok = status not in (401, 403) if want == "allowed" else str(status) == want.split()[0]
        if ok and want != "allowed":
            code = want.split()[1]
            body = response.json()
            ok = body.get("error_code") == code and {
                "detail",
                "correlation_id",
                "timestamp",
            } <= set(body)
        if not ok:
            failures.append(
                f"{op.method} {op.path} as {who}: wanted {want}, got {status} {response.text[:200]}"
            )

    for op in operations:
        if op.scope is None:
            expect(op, "nobody", {"Authorization": ""}, "allowed")
            continue
        expect(op, "no credentials", {"Authorization": ""}, "401 AUTHENTICATION_REQUIRED")
        expect(op, "a malformed key", bearer("ff_live_short"), "401 INVALID_API_KEY")
        expect(op, "a revoked key", bearer(world["revoked"]), "401 API_KEY_REVOKED")
        expect(op, "an expired key", bearer(world["expired"]), "401 API_KEY_EXPIRED")
        expect(
            op, "a forged session", {"Authorization": "", "Cookie": FORGED}, "401 SESSION_INVALID"
        )
        if op.scope == AUTHENTICATED:  # any credentials; ff_ro_ keys only for reads
            ro_want = "allowed" if op.method in SAFE else "403 READ_ONLY_KEY"
            expect(op, "an ff_ro_ key", bearer(world["ro"]), ro_want)
            for role in (Role.MEMBER, Role.VIEWER):
                expect(op, role.value, bearer(world[role.value]), "allowed")
            expect(op, "admin", {}, "allowed")
            continue
        assert isinstance(op.scope, Scope)
        # ff_ro_: through on every :read route (POST searches too), refused on all others
        ro_want = "allowed" if op.scope.reads_only else "403 READ_ONLY_KEY"
        expect(op, "an ff_ro_ key", bearer(world["ro"]), ro_want)
        if op.scope is not Scope.ADMIN:
            expect(
                op,
                f"a key without {op.scope}",
                bearer(world["all_but"][op.scope]),
                "403 INSUFFICIENT_SCOPE",
            )
        for role in (Role.MEMBER, Role.VIEWER):
            allowed = op.scope in ROLE_SCOPES[role]
            expect(
                op,
                role.value,
                bearer(world[role.value]),
                "allowed" if allowed else "403 INSUFFICIENT_SCOPE",
            )
        expect(op, "admin", {}, "allowed")  # the client's own admin key
    assert not failures, "\n".join(failures)


def test_a_route_without_a_scope_stops_the_app() -> None:
    app = FastAPI()
    undeclared = APIRouter(prefix="/new")

    @undeclared.get("")
    def new_route() -> dict[str, str]:
        return {}

    app.include_router(undeclared)
    with pytest.raises(RouteScopeError, match="GET /new"):
        secure_routes(app)


def test_an_exception_naming_no_route_stops_the_app() -> None:
    app = FastAPI()
    router = APIRouter(prefix="/x", dependencies=[require("configs:read", routes={"typo": PUBLIC})])

    @router.get("")
    def real() -> dict[str, str]:
        return {}

    app.include_router(router)
    with pytest.raises(RouteScopeError, match="typo"):
        secure_routes(app)
