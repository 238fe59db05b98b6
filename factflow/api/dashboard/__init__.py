"""The web dashboard: one page at `/`, its assets under `/ui/static/`, talking to /api/v1.

Buildless on purpose: plain HTML, CSS and ES modules in `static/`, shipped as package data,
so a user who installs factflow needs no Node and the page needs no CDN. Every dashboard
response carries a Content-Security-Policy that allows only the app's own assets; stored
HTML is previewed in sandboxed frames, where no script runs (docs/dashboard.md).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.routing import iter_route_contexts
from pydantic import BaseModel, Field
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from factflow.api.auth import PUBLIC, authenticate, require
from factflow.auth.exceptions import AuthenticationError
from factflow.auth.settings import AuthMode, AuthSettings

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/ui/static"
# only the app's own scripts, styles and images; previews are srcdoc frames (sandboxed by
# their attribute, so their scripts never run), nothing may frame the dashboard
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; frame-src 'self'; object-src 'none'; base-uri 'none';"
    " form-action 'self'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]

router = APIRouter(
    include_in_schema=False,
    dependencies=[
        require("system:read", routes={"dashboard": PUBLIC, "dashboard_session": PUBLIC})
    ],
)


class SessionPrincipal(BaseModel):
    name: str
    kind: str
    role: str | None
    scopes: list[str]


class DashboardSession(BaseModel):
    auth: str = Field(description="open (development: no checks) or keys")
    principal: SessionPrincipal | None = Field(
        description="who the request's credentials name; null when none or not valid"
    )
    error: str | None = None
    features: list[str] = Field(
        description="optional parts this server has (chat, usage, login): the page shows them"
    )


# a feature is on when the app has the route that is its entry point
FEATURES = {"chat": "/api/v1/chat", "usage": "/api/v1/usage", "login": "/api/v1/auth/login"}


def _features(app: FastAPI) -> list[str]:
    # included routers stay routers in app.routes; their contexts carry the full paths
    paths = {str(route.path_format) for route in iter_route_contexts(app.routes)}
    return [name for name, path in FEATURES.items() if path in paths]


@router.get("/")
def dashboard() -> FileResponse:
    """The single page; the hash part of the URL picks the view."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html")


@router.get("/ui/session")
def dashboard_session(request: Request) -> DashboardSession:
    """Whom the page's credentials name, so it shows only the buttons they may use (the
    server refuses the rest anyway); public, as it tells a caller only about itself."""
    auth: AuthSettings = request.app.state.auth
    mode = "open" if auth.mode is AuthMode.OPEN else "keys"
    features = _features(request.app)
    try:
        principal = authenticate(request)
    except AuthenticationError as exc:
        return DashboardSession(auth=mode, principal=None, error=str(exc), features=features)
    return DashboardSession(
        auth=mode,
        features=features,
        principal=SessionPrincipal(
            name=principal.name,
            kind=principal.kind.value,
            role=principal.role.value if principal.role else None,
            scopes=sorted(s.value for s in principal.scopes),
        ),
    )


class SecurityHeaders:
    """Adds the CSP and its companions to the dashboard's own responses (`/`, `/ui/...`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else None
        if path is None or not (path == "/" or path.startswith("/ui/")):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def install_dashboard(app: FastAPI) -> None:
    """The page, its session probe, its assets and their headers on `app`."""
    app.include_router(router)
    app.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    app.add_middleware(SecurityHeaders)
