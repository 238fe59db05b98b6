"""The one auth dependency every router uses, and each route's scope in the OpenAPI document.

A router declares its scopes in one line:

    router = APIRouter(prefix="/search", tags=["search"], dependencies=[require("search:read")])

`require(scope)` needs `scope` on every route of the router; `require(read, write=w)`
needs `w` on unsafe methods (POST, PUT, PATCH, DELETE); `routes={"endpoint_name": scope}`
names the exceptions (`PUBLIC` for health, readiness and login; `AUTHENTICATED` for any
valid credentials whatever their scopes, e.g. `GET /auth/me`). Credentials are an API key,
else a login's session cookie (whose unsafe requests must carry the CSRF token), else a
trusted proxy's SSO headers; each principal's requests count against its rate limit
(factflow/auth/limits.py). `secure_routes(app)` refuses to
build an app with a route that declares no scope (or names a route that does not exist)
and writes each operation's scope into the OpenAPI document (`x-required-scope`,
`security`, the first line of its description, and the 401, 403 and 429 a route that
needs credentials can answer).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Final, Literal

from anyio import to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.datastructures import Headers

from factflow.api.deps import get_pool
from factflow.api.errors import AUTH_STATUSES, error_responses
from factflow.auth.exceptions import AuthCode, AuthenticationError, PermissionDeniedError
from factflow.auth.keys import KeyType
from factflow.auth.limits import check_rate
from factflow.auth.principal import OPEN_PRINCIPAL, Principal, authorize
from factflow.auth.scopes import Scope
from factflow.auth.service import authenticate_key
from factflow.auth.sessions import CSRF_HEADER, SESSION_COOKIE, authenticate_session, check_csrf
from factflow.auth.settings import AuthMode, AuthSettings
from factflow.auth.sso import sso_principal
from factflow.exceptions import FactflowError
from factflow.server.supervisor import StartedBy

# methods that change nothing: they get a router's read scope, the others its `write`
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC: Final = "public"
"""A route anyone may call (health, readiness, login): `routes={"health": PUBLIC}`."""
AUTHENTICATED: Final = "authenticated"
"""A route any valid credentials may call, whatever their scopes (`GET /auth/me`, logout);
an `ff_ro_` key only with a safe method."""
Needed = Scope | Literal["authenticated"] | None
"""What a route needs: a scope, any credentials, or nothing (None: public)."""

API_KEY_HEADER = "X-API-Key"
_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "an API key (ff_live_..., ff_test_..., ff_ro_...) as a bearer token",
    },
    "apiKey": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER},
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "a login's session (POST /api/v1/auth/login); unsafe methods also"
        f" need the CSRF token in {CSRF_HEADER}",
    },
}


class RouteScopeError(FactflowError):
    """A route declares no scope, or several, or a router names a route it does not have.

    Add `dependencies=[require("domain:action")]` to the router (see factflow/api/auth.py).
    """


class ScopeRequirement:
    """The dependency: authenticates the request, then checks the route's scope."""

    def __init__(self, read: Scope, write: Scope | None, routes: Mapping[str, Needed]) -> None:
        self.read = read
        self.write = write
        self.routes = dict(routes)

    def scope_for(self, route_name: str, method: str) -> Needed:
        """The scope a route needs for `method`; None when the route is public."""
        if route_name in self.routes:
            return self.routes[route_name]
        if self.write is not None and method.upper() not in SAFE_METHODS:
            return self.write
        return self.read

    async def __call__(self, request: Request) -> None:
        # async, so open mode and public routes cost no hop through the thread pool; the
        # credentials check reads Postgres, in a thread
        route = request.scope.get("route")
        assert isinstance(route, APIRoute), "a ScopeRequirement runs only on API routes"
        needed = self.scope_for(route.name, request.method)
        request.state.required_scope = needed  # the audit log keeps what is not a read
        if needed is None:
            return
        auth: AuthSettings = request.app.state.auth
        if auth.mode is AuthMode.OPEN:
            principal = OPEN_PRINCIPAL
        else:
            principal = await to_thread.run_sync(authenticate, request)
        request.state.principal = principal  # the audit log names who was refused, too
        if needed == AUTHENTICATED:
            if principal.key_type is KeyType.RO and request.method.upper() not in SAFE_METHODS:
                msg = f"{principal.key_prefix} is a read-only key (ff_ro_): this is a write"
                raise PermissionDeniedError(AuthCode.READ_ONLY_KEY, msg)
            return
        assert isinstance(needed, Scope)
        authorize(principal, needed)


def _scope(value: str) -> Needed:
    if value == PUBLIC:
        return None
    return AUTHENTICATED if value == AUTHENTICATED else Scope(value)


def require(
    scope: str, *, write: str | None = None, routes: Mapping[str, str] | None = None
) -> DependsParam:
    """The router's auth dependency: `scope` for its routes (and `write` for unsafe
    methods when given), with per-endpoint exceptions in `routes` (`PUBLIC` for none,
    `AUTHENTICATED` for any credentials)."""
    requirement = ScopeRequirement(
        Scope(scope),
        Scope(write) if write else None,
        {name: _scope(value) for name, value in (routes or {}).items()},
    )
    return DependsParam(requirement)


def presented_key(headers: Headers) -> str | None:
    """The key from `Authorization: Bearer KEY` or `X-API-Key: KEY`, if either is sent."""
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return headers.get(API_KEY_HEADER) or None


def authenticate(request: Request) -> Principal:
    """Who sent the request: anyone in open mode; else the key sent, else the session
    cookie (with its CSRF token on unsafe methods), else the SSO user a trusted proxy
    forwarded; AuthenticationError (401) when none. The principal's request is counted
    against its rate limit (RateLimitedError, 429)."""
    auth: AuthSettings = request.app.state.auth
    if auth.mode is AuthMode.OPEN:
        return OPEN_PRINCIPAL
    assert auth.secret is not None
    key = presented_key(request.headers)
    cookie = request.cookies.get(SESSION_COOKIE) if key is None else None
    with get_pool(request).connection() as conn:
        if key is not None:
            principal = authenticate_key(conn, auth, key)
        elif cookie:
            principal = authenticate_session(conn, auth, cookie)
            if request.method.upper() not in SAFE_METHODS:
                check_csrf(auth.secret, cookie, request.headers.get(CSRF_HEADER))
        else:
            principal = _sso(request, auth)
        check_rate(conn, auth, principal)
    return principal


def _sso(request: Request, auth: AuthSettings) -> Principal:
    if auth.sso is not None:
        peer = request.client.host if request.client else None
        principal = sso_principal(auth.sso, peer, request.headers)
        if principal is not None:
            return principal
    msg = (
        "this route needs credentials: send an API key as `Authorization: Bearer ff_...`"
        f" or `{API_KEY_HEADER}: ff_...`, or log in (POST /api/v1/auth/login)"
    )
    raise AuthenticationError(AuthCode.AUTHENTICATION_REQUIRED, msg)


async def current_principal(request: Request) -> Principal:
    """The principal the route's ScopeRequirement authenticated (it runs first)."""
    return _principal(request)


def _principal(request: Request) -> Principal:
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        msg = "current_principal on a route without a scope (a PUBLIC route?)"
        raise RouteScopeError(msg)
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def current_starter(request: Request) -> StartedBy:
    """Who starts an execution, for its row and the cap on running executions per key
    (the key's own `max_running_executions`, else the server's default)."""
    principal = _principal(request)
    auth: AuthSettings = request.app.state.auth
    cap = principal.max_running_executions or auth.limits.max_running_executions
    return StartedBy(principal.label, principal.key_id, cap if principal.key_id else None)


StarterDep = Annotated[StartedBy, Depends(current_starter)]
"""For the routes that start executions: `service.start(..., started_by=starter)`."""


def _requirement(route: RouteContext) -> ScopeRequirement:
    found = [d.dependency for d in route.dependencies if isinstance(d.dependency, ScopeRequirement)]
    if len(found) != 1:
        methods = ",".join(sorted(route.methods or ()))
        msg = (
            f"route {methods} {route.path_format} ({route.name}) declares {len(found)} scopes,"
            " needs exactly one: add dependencies=[require('domain:action')] to its router"
            " (factflow/api/routers/__init__.py says how)"
        )
        raise RouteScopeError(msg)
    requirement = found[0]
    assert isinstance(requirement, ScopeRequirement)
    return requirement


def route_scopes(app: FastAPI) -> dict[tuple[str, str], Needed]:
    """(path, METHOD) -> the scope it needs (None: public) for every API route of `app`;
    RouteScopeError for a route without exactly one requirement, or an exception that
    names no route of its router."""
    table: dict[tuple[str, str], Needed] = {}
    names: dict[int, set[str]] = {}
    requirements: dict[int, ScopeRequirement] = {}
    # FastAPI keeps included routers as such; their routes, with the prefixes and the
    # router's dependencies applied, are these contexts (what the OpenAPI document lists)
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute):
            continue  # /openapi.json, /docs, /redoc: the documentation stays public
        requirement = _requirement(route)
        requirements[id(requirement)] = requirement
        name = route.original_route.name  # what the request's scope["route"] carries
        names.setdefault(id(requirement), set()).add(name)
        for method in route.methods or ():
            table[(str(route.path_format), method)] = requirement.scope_for(name, method)
    for key, requirement in requirements.items():
        unknown = sorted(set(requirement.routes) - names[key])
        if unknown:
            msg = f"require(routes=...) names routes its router does not have: {unknown}"
            raise RouteScopeError(msg)
    return table


def secure_routes(app: FastAPI) -> None:
    """Check every route's scope now, and show them in the OpenAPI document."""
    table = route_scopes(app)
    build: Callable[[], dict[str, Any]] = app.openapi
    decorated = False

    def openapi() -> dict[str, Any]:
        nonlocal decorated
        schema = build()
        if decorated:
            return schema
        schema.setdefault("components", {})["securitySchemes"] = _SCHEMES
        for path, operations in schema.get("paths", {}).items():
            for method, operation in operations.items():
                scope = table.get((path, method.upper()))
                if scope is not None:
                    responses = operation.setdefault("responses", {})
                    for status, response in error_responses(*AUTH_STATUSES).items():
                        responses.setdefault(str(status), response)
                if scope is None:
                    operation["security"] = []
                    operation["x-required-scope"] = None
                    note = "Public: no credentials needed."
                elif scope == AUTHENTICATED:
                    operation["security"] = [{name: []} for name in _SCHEMES]
                    operation["x-required-scope"] = AUTHENTICATED
                    note = "Requires credentials (any scope)."
                else:
                    operation["security"] = [{name: [scope.value]} for name in _SCHEMES]
                    operation["x-required-scope"] = scope.value
                    note = f"Requires scope `{scope.value}`."
                described = operation.get("description", "")
                operation["description"] = f"{note}\n\n{described}" if described else note
        decorated = True
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
