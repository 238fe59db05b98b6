"""The dashboard's routes without a browser: the page and its assets are served with the
CSP, `/ui/session` names the caller (or nobody) and the optional parts this app has, in
open (development) and key mode. The pages themselves: tests/browser."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from factflow.api.dashboard import CSP, FEATURES

MakeApp = Callable[..., TestClient]


def test_page_and_assets_carry_the_csp_without_credentials(make_app: MakeApp) -> None:
    client = make_app(auth=False)
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/ui/static/app.js">' in page.text
    assert page.headers["content-security-policy"] == CSP
    assert page.headers["x-content-type-options"] == "nosniff"
    script = client.get("/ui/static/app.js")
    assert script.status_code == 200 and script.headers["content-security-policy"] == CSP
    assert client.get("/ui/static/missing.js").status_code == 404
    # the API's own answers are not the dashboard's: no page CSP on them
    assert "content-security-policy" not in client.get("/api/v1/system/health").headers
    # nothing else moved: the docs and unknown API paths answer as before
    assert client.get("/docs").status_code == 200
    assert client.get("/api/v1/nope").json()["error_code"] == "NOT_FOUND"


def test_session_names_the_key_holder_or_nobody(make_app: MakeApp) -> None:
    client = make_app()
    mine: dict[str, Any] = client.get("/ui/session").json()
    assert mine["auth"] == "keys" and mine["principal"]["role"] == "admin"
    assert "admin" in mine["principal"]["scopes"]
    nobody = client.get("/ui/session", headers={"Authorization": ""}).json()
    assert nobody["principal"] is None and "credentials" in nobody["error"]
    bad = client.get("/ui/session", headers={"Authorization": "Bearer ff_live_wrong"}).json()
    assert bad["principal"] is None and bad["error"]


def test_open_mode_session_is_the_anonymous_admin(make_app: MakeApp) -> None:
    client = make_app(environment="development", auth_secret=None)
    session = client.get("/ui/session").json()
    assert session["auth"] == "open"
    assert session["principal"]["name"] == "anonymous" and session["principal"]["kind"] == "open"
    # a part is listed exactly when its path answers something other than 404
    for name, path in FEATURES.items():
        answered = client.get(path).status_code != 404
        assert (name in session["features"]) == answered, (name, session["features"])
