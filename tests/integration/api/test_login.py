"""Password login: sessions (cookie), CSRF on unsafe methods, lockout, expiry, logout,
and `factflow create-admin`. Real server app, real Postgres, real argon2 hashes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from factflow.api import ApiSettings, create_app
from factflow.auth.passwords import verify_password
from factflow.auth.sessions import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE
from factflow.db.connection import connect
from tests.integration.api.conftest import MakeApp

pytestmark = pytest.mark.integration

LOGIN = "/api/v1/auth/login"
PASSWORD = "correct horse battery staple"


def make_user(api: TestClient, role: str = "member", password: str = PASSWORD) -> str:
    email = f"{role}-{uuid.uuid4().hex[:8]}@login.test"
    created = api.post("/api/v1/users", json={"email": email, "role": role})
    assert created.status_code == 201, created.text
    r = api.put(f"/api/v1/users/{created.json()['id']}/password", json={"password": password})
    assert r.status_code == 200, r.text
    assert r.json()["has_password"] is True
    return email


def browser(admin: TestClient) -> TestClient:
    """A client of the same app with no key, from an address of its own: it authenticates
    with the cookies a login sets."""
    return TestClient(admin.app, client=(f"browser-{uuid.uuid4().hex[:8]}", 50000))


def log_in(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, Any]:
    r = client.post(LOGIN, json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_login_sets_a_session_cookie_and_csrf_token(make_app: MakeApp, api_db_url: str) -> None:
    admin = make_app()
    email = make_user(admin, "member")
    client = browser(admin)
    r = client.post(LOGIN, json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user"]["email"] == email and body["user"]["role"] == "member"
    cookies = r.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith(f"{SESSION_COOKIE}="))
    assert "HttpOnly" in session_cookie and "SameSite=lax" in session_cookie
    csrf_cookie = next(c for c in cookies if c.startswith(f"{CSRF_COOKIE}="))
    assert "HttpOnly" not in csrf_cookie and body["csrf_token"] in csrf_cookie
    # the session works for reads without the CSRF token
    me = client.get("/api/v1/auth/me")
    assert me.status_code == 200, me.text
    assert me.json()["kind"] == "session" and me.json()["name"] == email
    assert me.json()["csrf_token"] == body["csrf_token"]
    assert client.get("/api/v1/configs").status_code == 200
    # only the token's HMAC is stored, and the password only as an argon2id hash
    token = client.cookies[SESSION_COOKIE]
    with connect(api_db_url) as conn:
        stored = conn.execute("SELECT sessions::text FROM sessions").fetchall()
        row = conn.execute("SELECT password_hash FROM users WHERE email = %s", (email,)).fetchone()
    assert all(token not in s[0] for s in stored)
    assert row is not None and row[0].startswith("$argon2id$") and PASSWORD not in row[0]
    assert verify_password(row[0], PASSWORD) and not verify_password(row[0], PASSWORD + "!")


def test_wrong_password_and_unknown_user_get_the_same_answer(make_app: MakeApp) -> None:
    admin = make_app()
    email = make_user(admin)
    client = browser(admin)
    wrong = client.post(LOGIN, json={"email": email, "password": "not the password"})
    unknown = client.post(LOGIN, json={"email": "nobody@login.test", "password": PASSWORD})
    for r in (wrong, unknown):
        assert r.status_code == 401
        assert r.json()["error_code"] == "INVALID_CREDENTIALS"
        assert r.json()["detail"] == "wrong email or password"
    assert SESSION_COOKIE not in client.cookies
    # a user without a password (keys only) cannot log in either
    keys_only = admin.post("/api/v1/users", json={"email": "keys@login.test"}).json()["email"]
    r = client.post(LOGIN, json={"email": keys_only, "password": PASSWORD})
    assert (r.status_code, r.json()["error_code"]) == (401, "INVALID_CREDENTIALS")


def test_lockout_after_repeated_failures(make_app: MakeApp) -> None:
    admin = make_app(auth_login_max_failures=3, auth_login_lockout_seconds=600)
    email = make_user(admin)
    client = browser(admin)
    for _ in range(3):
        r = client.post(LOGIN, json={"email": email, "password": "guess guess guess"})
        assert r.json()["error_code"] == "INVALID_CREDENTIALS"
    locked = client.post(LOGIN, json={"email": email, "password": PASSWORD})
    assert locked.status_code == 429
    assert locked.json()["error_code"] == "ACCOUNT_LOCKED"
    assert 590 <= int(locked.headers["Retry-After"]) <= 600
    # unknown addresses lock the same way, so a lockout tells nothing about accounts
    for _ in range(3):
        client.post(LOGIN, json={"email": "ghost@login.test", "password": "guess guess guess"})
    ghost = client.post(LOGIN, json={"email": "ghost@login.test", "password": PASSWORD})
    assert ghost.json()["error_code"] == "ACCOUNT_LOCKED"


def test_a_success_resets_the_failure_count(make_app: MakeApp) -> None:
    admin = make_app(auth_login_max_failures=2)
    email = make_user(admin)
    client = browser(admin)
    client.post(LOGIN, json={"email": email, "password": "guess guess guess"})
    log_in(client, email)
    client.post(LOGIN, json={"email": email, "password": "guess guess guess"})
    log_in(client, email)  # 1 failure since the success: not locked


def test_login_attempts_per_address_are_rate_limited(make_app: MakeApp) -> None:
    client = browser(make_app(auth_login_rate_per_minute=3))
    for _ in range(3):
        r = client.post(LOGIN, json={"email": "a@login.test", "password": "x"})
        assert r.status_code == 401
    limited = client.post(LOGIN, json={"email": "b@login.test", "password": "x"})
    assert limited.status_code == 429
    assert limited.json()["error_code"] == "RATE_LIMITED"
    assert int(limited.headers["Retry-After"]) >= 1


def test_csrf_token_required_on_unsafe_cookie_requests(make_app: MakeApp) -> None:
    admin = make_app()
    email = make_user(admin, "member")
    client = browser(admin)
    token = log_in(client, email)["csrf_token"]
    body = {"name": "csrf-test", "config_yaml": "version: '1.0'\n"}
    missing = client.post("/api/v1/configs", json=body)
    assert (missing.status_code, missing.json()["error_code"]) == (403, "CSRF_TOKEN_MISSING")
    forged = client.post("/api/v1/configs", json=body, headers={CSRF_HEADER: "0" * 64})
    assert (forged.status_code, forged.json()["error_code"]) == (403, "CSRF_TOKEN_INVALID")
    # another session's token is no good either
    other = browser(admin)
    other_token = log_in(other, email)["csrf_token"]
    assert other_token != token
    crossed = client.post("/api/v1/configs", json=body, headers={CSRF_HEADER: other_token})
    assert crossed.json()["error_code"] == "CSRF_TOKEN_INVALID"
    # with its own token the request gets through auth (the YAML is then invalid: 400)
    ok = client.post("/api/v1/configs", json=body, headers={CSRF_HEADER: token})
    assert ok.status_code not in (401, 403), ok.text
    # a key needs no CSRF token: it is not sent by the browser on its own
    assert admin.post("/api/v1/configs", json=body).status_code not in (401, 403)


def test_session_roles_apply(make_app: MakeApp) -> None:
    admin = make_app()
    email = make_user(admin, "viewer")
    client = browser(admin)
    token = log_in(client, email)["csrf_token"]
    assert client.get("/api/v1/configs").status_code == 200
    r = client.post("/api/v1/configs", json={}, headers={CSRF_HEADER: token})
    assert (r.status_code, r.json()["error_code"]) == (403, "INSUFFICIENT_SCOPE")
    assert client.get("/api/v1/users").status_code == 403


def test_expired_session_is_refused(make_app: MakeApp, api_db_url: str) -> None:
    admin = make_app()
    email = make_user(admin)
    client = browser(admin)
    session_id = log_in(client, email)["session_id"]
    with connect(api_db_url) as conn:
        conn.execute(
            "UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = %s",
            (session_id,),
        )
    r = client.get("/api/v1/configs")
    assert (r.status_code, r.json()["error_code"]) == (401, "SESSION_EXPIRED")


def test_logout_ends_the_session(make_app: MakeApp) -> None:
    admin = make_app()
    email = make_user(admin)
    client = browser(admin)
    token = log_in(client, email)["csrf_token"]
    cookie = client.cookies[SESSION_COOKIE]
    refused = client.post("/api/v1/auth/logout")  # logout is unsafe: it needs the token too
    assert refused.json()["error_code"] == "CSRF_TOKEN_MISSING"
    out = client.post("/api/v1/auth/logout", headers={CSRF_HEADER: token})
    assert out.status_code == 204
    assert SESSION_COOKIE not in client.cookies  # cleared
    # the old cookie, sent again, is refused
    r = client.get("/api/v1/configs", headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})
    assert (r.status_code, r.json()["error_code"]) == (401, "SESSION_INVALID")


def test_disabling_or_a_new_password_ends_sessions(make_app: MakeApp) -> None:
    admin = make_app()
    email = make_user(admin)
    user_id = next(u["id"] for u in admin.get("/api/v1/users").json() if u["email"] == email)
    client = browser(admin)
    log_in(client, email)
    admin.patch(f"/api/v1/users/{user_id}", json={"disabled": True})
    r = client.get("/api/v1/configs")
    assert (r.status_code, r.json()["error_code"]) == (401, "USER_DISABLED")
    admin.patch(f"/api/v1/users/{user_id}", json={"disabled": False})
    assert client.get("/api/v1/configs").status_code == 200
    new = admin.put(f"/api/v1/users/{user_id}/password", json={"password": "another long secret"})
    assert new.status_code == 200
    r = client.get("/api/v1/configs")
    assert r.json()["error_code"] == "SESSION_INVALID"
    log_in(client, email, "another long secret")


def test_weak_passwords_are_refused(api: TestClient) -> None:
    user = api.post("/api/v1/users", json={"email": "weak@login.test"}).json()
    r = api.put(f"/api/v1/users/{user['id']}/password", json={"password": "short"})
    assert (r.status_code, r.json()["error_code"]) == (400, "WEAK_PASSWORD")


def test_login_in_open_mode_says_there_is_nothing_to_log_in_to(make_app: MakeApp) -> None:
    client = make_app(environment="development", auth_secret=None)
    r = client.post(LOGIN, json={"email": "a@b.c", "password": PASSWORD})
    assert (r.status_code, r.json()["error_code"]) == (400, "AUTH_NOT_CONFIGURED")
    me = client.get("/api/v1/auth/me").json()
    assert me["auth"] == "open" and me["kind"] == "open"


def test_production_cookies_are_secure(api_db_url: str, tmp_path: Any) -> None:
    settings = ApiSettings(
        environment="production",
        auth_secret="p" * 32,
        database_url=api_db_url,
        data_dir=tmp_path / "server",
        recovery_dir=tmp_path / "recovery",
        storage_uri=f"file://{tmp_path / 'storage'}",
    )
    with TestClient(create_app(settings)) as client:
        from factflow.auth.sessions import bootstrap_admin

        with connect(api_db_url) as conn:
            bootstrap_admin(conn, "prod-admin@login.test", PASSWORD)
        r = client.post(LOGIN, json={"email": "prod-admin@login.test", "password": PASSWORD})
        assert r.status_code == 200, r.text
        assert all("Secure" in c for c in r.headers.get_list("set-cookie"))
