"""Password login for people (the dashboard's): log in, who am I, log out.

`POST /auth/login {"email", "password"}` sets two cookies: `factflow_session` (httpOnly,
SameSite=Lax, Secure in production: the session) and `factflow_csrf` (readable by the
page: the CSRF token, also in the body). Every POST, PUT, PATCH and DELETE made with the
session cookie sends the token as `X-CSRF-Token`. API clients use keys instead.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from factflow.api.auth import AUTHENTICATED, PUBLIC, PrincipalDep, require
from factflow.api.deps import DbDep
from factflow.api.errors import error_responses
from factflow.api.schemas.auth import LoginBody, LoginResponse, UserResponse, WhoAmI
from factflow.auth.exceptions import AuthCode, KeyPolicyError
from factflow.auth.limits import check_login_rate
from factflow.auth.sessions import CSRF_COOKIE, SESSION_COOKIE, csrf_token, login, logout
from factflow.auth.settings import AuthMode, AuthSettings

router = APIRouter(
    prefix="/auth",
    tags=["auth"],
    # no route of it needs a scope: login is public, the others take any credentials
    dependencies=[
        require(
            "admin",
            routes={"login_user": PUBLIC, "me": AUTHENTICATED, "logout_user": AUTHENTICATED},
        )
    ],
)


def _auth(request: Request) -> AuthSettings:
    auth: AuthSettings = request.app.state.auth
    return auth


@router.post(
    "/login",
    responses=error_responses(
        401,
        429,
        notes={
            401: "INVALID_CREDENTIALS: no such user, a wrong password, or a disabled user",
            429: "ACCOUNT_LOCKED after repeated failures, or RATE_LIMITED",
        },
    ),
)
def login_user(body: LoginBody, request: Request, response: Response, db: DbDep) -> LoginResponse:
    """Log in with email and password: a session cookie valid for
    FACTFLOW_AUTH_SESSION_TTL_SECONDS (8 h). 401 `INVALID_CREDENTIALS` for a wrong email
    or password (the same answer for both); 429 `ACCOUNT_LOCKED` (with `Retry-After`)
    after FACTFLOW_AUTH_LOGIN_MAX_FAILURES failures in a row, 429 `RATE_LIMITED` over
    FACTFLOW_AUTH_LOGIN_RATE_PER_MINUTE attempts from one address."""
    auth = _auth(request)
    request.state.audit_actor = body.email  # who tried, for the audit log
    if auth.mode is AuthMode.OPEN:
        msg = "the server runs open (no FACTFLOW_AUTH_SECRET): there is nothing to log in to"
        raise KeyPolicyError(AuthCode.AUTH_NOT_CONFIGURED, msg)
    address = request.client.host if request.client else None
    check_login_rate(db, auth, address)
    issued = login(
        db,
        auth,
        body.email,
        body.password,
        client_address=address,
        user_agent=request.headers.get("user-agent"),
    )
    max_age = int(auth.login.session_ttl_seconds)
    secure = auth.login.cookie_secure
    response.set_cookie(
        SESSION_COOKIE, issued.token, max_age=max_age, httponly=True, secure=secure, samesite="lax"
    )
    response.set_cookie(
        CSRF_COOKIE, issued.csrf_token, max_age=max_age, httponly=False, secure=secure,
        samesite="lax",
    )  # fmt: skip
    return LoginResponse(
        user=UserResponse.of(issued.user),
        session_id=issued.session.id,
        expires_at=issued.session.expires_at,
        csrf_token=issued.csrf_token,
    )


@router.get("/me")
def me(request: Request, principal: PrincipalDep) -> WhoAmI:
    """Who the credentials stand for, with role and scopes (and, for a session, its CSRF
    token, so a reloaded page can find it)."""
    auth = _auth(request)
    token = request.cookies.get(SESSION_COOKIE)
    csrf = (
        csrf_token(auth.secret, token)
        if principal.session_id is not None and token and auth.secret
        else None
    )
    return WhoAmI(
        name=principal.name,
        kind=principal.kind.value,
        role=principal.role,
        scopes=sorted(principal.scopes),
        key_prefix=principal.key_prefix,
        session_id=principal.session_id,
        csrf_token=csrf,
        auth=auth.mode.value,
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout_user(db: DbDep, principal: PrincipalDep) -> Response:
    """End the session (its cookie is refused from now on) and clear both cookies; with
    a key there is no session, and nothing changes."""
    logout(db, principal)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)
    return response
