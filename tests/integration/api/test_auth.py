"""Access control through the API: key lifecycle (rotation, revocation, expiry), storage
as a keyed hash, policies on issuing, roles, SSO header trust, and the open development
mode. The route-by-route matrix is test_auth_matrix.py."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from factflow.api import ApiSettings, create_app
from factflow.auth.keys import hash_key
from factflow.db.connection import connect
from factflow.exceptions import ConfigurationError
from tests.integration.api.conftest import ADMIN_EMAIL, AUTH_SECRET, MakeApp

pytestmark = pytest.mark.integration

CONFIGS = "/api/v1/configs"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_key(api: TestClient, scopes: list[str], **extra: Any) -> dict[str, Any]:
    body = {"name": "t", "scopes": scopes, **extra}
    response = api.post("/api/v1/keys", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_401_body_and_header(make_app: MakeApp) -> None:
    api = make_app(auth=False)
    response = api.get(CONFIGS)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = response.json()
    assert body["error_code"] == "AUTHENTICATION_REQUIRED"
    assert set(body) >= {"detail", "error_code", "correlation_id", "timestamp"}
    assert api.get("/api/v1/system/health").status_code == 200  # public
    assert api.get("/metrics").status_code == 401  # the root metrics too


def test_key_shown_once_and_stored_as_keyed_hash(api: TestClient, api_db_url: str) -> None:
    created = new_key(api, ["configs:read"])
    key = created["key"]
    assert key.startswith("ff_live_") and key.startswith(created["prefix"])
    listed = api.get("/api/v1/keys").json()
    assert key not in str(listed) and created["prefix"] in str(listed)
    assert "key" not in api.get(f"/api/v1/keys/{created['id']}").json()
    with connect(api_db_url) as conn:
        row = conn.execute(
            "SELECT key_hash, api_keys::text FROM api_keys WHERE id = %s", (created["id"],)
        ).fetchone()
    assert row is not None
    assert row[0] == hash_key(AUTH_SECRET, key) != key
    assert key not in row[1]  # the whole row holds no trace of the key
    assert row[0] != hash_key("another-secret-" + "y" * 32, key)  # the secret matters


def test_key_works_in_either_header_and_records_its_use(api: TestClient) -> None:
    created = new_key(api, ["configs:read"])
    assert api.get(CONFIGS, headers=bearer(created["key"])).status_code == 200
    assert (
        api.get(CONFIGS, headers={"Authorization": "", "X-API-Key": created["key"]}).status_code
        == 200
    )
    used = api.get(f"/api/v1/keys/{created['id']}").json()
    assert used["last_used_at"] is not None and used["status"] == "active"
    # a key that looks right but was never issued
    forged = created["key"][:-1] + ("a" if created["key"][-1] != "a" else "b")
    refused = api.get(CONFIGS, headers=bearer(forged))
    assert (refused.status_code, refused.json()["error_code"]) == (401, "INVALID_API_KEY")


def test_revocation_is_immediate(api: TestClient) -> None:
    created = new_key(api, ["configs:read"])
    assert api.get(CONFIGS, headers=bearer(created["key"])).status_code == 200
    revoked = api.post(f"/api/v1/keys/{created['id']}/revoke").json()
    assert revoked["status"] == "revoked"
    response = api.get(CONFIGS, headers=bearer(created["key"]))
    assert (response.status_code, response.json()["error_code"]) == (401, "API_KEY_REVOKED")
    assert created["prefix"] not in str(api.get("/api/v1/keys").json())
    assert created["prefix"] in str(
        api.get("/api/v1/keys", params={"include_revoked": True}).json()
    )
    again = api.post(f"/api/v1/keys/{created['id']}/rotate", json={})
    assert (again.status_code, again.json()["error_code"]) == (400, "KEY_REVOKED")


def test_expiry(api: TestClient) -> None:
    # long enough that the first request comes before it on a loaded machine
    expires = datetime.now(UTC) + timedelta(seconds=3)
    created = new_key(api, ["configs:read"], expires_at=expires.isoformat())
    assert api.get(CONFIGS, headers=bearer(created["key"])).status_code == 200
    deadline = time.monotonic() + 30
    while (response := api.get(CONFIGS, headers=bearer(created["key"]))).status_code == 200:
        assert time.monotonic() < deadline, "the key never expired"
        time.sleep(0.05)
    assert datetime.now(UTC) >= expires  # not refused before its time
    assert (response.status_code, response.json()["error_code"]) == (401, "API_KEY_EXPIRED")


def test_rotation_keeps_both_keys_valid_for_the_grace(api: TestClient) -> None:
    old = new_key(api, ["configs:read", "executions:read"])
    rotated = api.post(f"/api/v1/keys/{old['id']}/rotate", json={"grace_seconds": 3600})
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["key"] != old["key"] and new["rotated_from"] == old["id"]
    assert new["scopes"] == old["scopes"] and new["name"] == old["name"]
    for key in (old["key"], new["key"]):
        assert api.get(CONFIGS, headers=bearer(key)).status_code == 200
    old_now = api.get(f"/api/v1/keys/{old['id']}").json()
    ends = datetime.fromisoformat(old_now["expires_at"])
    assert timedelta(minutes=59) < ends - datetime.now(UTC) <= timedelta(hours=1)
    # no grace: the old key stops at once, the new one goes on
    newer = api.post(f"/api/v1/keys/{new['id']}/rotate", json={"grace_seconds": 0}).json()
    assert api.get(CONFIGS, headers=bearer(new["key"])).status_code == 401
    assert api.get(CONFIGS, headers=bearer(newer["key"])).status_code == 200


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"type": "ro", "scopes": ["configs:write"]}, "READ_ONLY_KEY_SCOPES"),
        ({"scopes": ["configs:write"], "owner_email": "viewer@p.test"}, "SCOPE_BEYOND_ROLE"),
        ({"scopes": ["no:such"]}, None),  # refused by the body's schema: 422
    ],
)
def test_issuing_policies(api: TestClient, body: dict[str, Any], code: str | None) -> None:
    api.post("/api/v1/users", json={"email": "viewer@p.test", "role": "viewer"})
    response = api.post("/api/v1/keys", json={"name": "p", **body})
    if code is None:
        assert response.status_code == 422
    else:
        assert (response.status_code, response.json()["error_code"]) == (400, code)


def test_nobody_grants_more_than_they_hold(api: TestClient) -> None:
    manager = new_key(api, ["keys:manage", "configs:read"])
    response = api.post(
        "/api/v1/keys",
        json={"name": "x", "scopes": ["configs:write"]},
        headers=bearer(manager["key"]),
    )
    assert (response.status_code, response.json()["error_code"]) == (400, "SCOPE_BEYOND_ISSUER")
    ok = api.post(
        "/api/v1/keys",
        json={"name": "x", "scopes": ["configs:read"]},
        headers=bearer(manager["key"]),
    )
    assert ok.status_code == 201 and ok.json()["created_by"].startswith(ADMIN_EMAIL)


def test_role_changes_and_disabling_apply_to_existing_keys(api: TestClient) -> None:
    user = api.post("/api/v1/users", json={"email": "m@r.test", "role": "member"}).json()
    key = new_key(api, ["configs:read", "configs:write"], owner_email="m@r.test")["key"]
    yaml_body = {"config_yaml": "version: '1.0'\nroutes: {}\n"}
    assert api.post(f"{CONFIGS}/validate", json=yaml_body, headers=bearer(key)).status_code == 200
    demoted = api.patch(f"/api/v1/users/{user['id']}", json={"role": "viewer"})
    assert demoted.json()["role"] == "viewer"
    create = api.post(CONFIGS, json={"name": "n", "config_yaml": "x: 1"}, headers=bearer(key))
    assert (create.status_code, create.json()["error_code"]) == (403, "INSUFFICIENT_SCOPE")
    api.patch(f"/api/v1/users/{user['id']}", json={"disabled": True})
    refused = api.get(CONFIGS, headers=bearer(key))
    assert (refused.status_code, refused.json()["error_code"]) == (401, "USER_DISABLED")
    duplicate = api.post("/api/v1/users", json={"email": "M@R.test", "role": "viewer"})
    assert duplicate.status_code == 409


def test_test_keys_are_refused_in_production(make_app: MakeApp) -> None:
    production = make_app(environment="production")
    created = new_key(production, ["configs:read"], type="test")
    assert created["key"].startswith("ff_test_")
    response = production.get(CONFIGS, headers=bearer(created["key"]))
    assert (response.status_code, response.json()["error_code"]) == (401, "TEST_KEY_IN_PRODUCTION")
    live = new_key(production, ["configs:read"])
    assert production.get(CONFIGS, headers=bearer(live["key"])).status_code == 200


SSO = {
    "X-Forwarded-User": "ann",
    "X-Forwarded-Email": "ann@corp.test",
    "X-Forwarded-Groups": "ff-readers, other",
}


def test_sso_headers_are_trusted_only_from_the_proxy(make_app: MakeApp) -> None:
    settings = {
        "auth_trusted_proxies": ["10.0.0.0/24"],
        "auth_sso_group_roles": {"ff-readers": "viewer", "ff-admins": "admin"},
    }
    proxied = make_app(auth=False, peer="10.0.0.7", **settings)
    assert proxied.get(CONFIGS, headers=SSO).status_code == 200
    assert proxied.get("/api/v1/system/health").json()["auth"] == "keys+sso"
    write = proxied.post(CONFIGS, json={"name": "s", "config_yaml": "x: 1"}, headers=SSO)
    assert (write.status_code, write.json()["error_code"]) == (403, "INSUFFICIENT_SCOPE")
    admin = {**SSO, "X-Forwarded-Groups": "ff-readers,ff-admins"}
    assert proxied.get("/api/v1/users", headers=admin).status_code == 200  # highest role wins
    no_role = proxied.get(CONFIGS, headers={**SSO, "X-Forwarded-Groups": "other"})
    assert (no_role.status_code, no_role.json()["error_code"]) == (403, "NO_ROLE")
    assert proxied.get(CONFIGS).status_code == 401  # the proxy sent no user: nobody

    direct = make_app(auth=False, peer="192.168.1.9", **settings)
    spoofed = direct.get(CONFIGS, headers=admin)
    assert (spoofed.status_code, spoofed.json()["error_code"]) == (401, "AUTHENTICATION_REQUIRED")

    default_role = make_app(auth=False, peer="10.0.0.8", **settings, auth_sso_default_role="viewer")
    assert default_role.get(CONFIGS, headers={**SSO, "X-Forwarded-Groups": ""}).status_code == 200


def test_development_without_a_secret_runs_open_and_says_so(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="factflow.api.app"):
        open_api = make_app(environment="development", auth_secret=None)
    assert "authentication is OFF" in caplog.text
    assert open_api.get(CONFIGS).status_code == 200  # no key at all
    assert open_api.get("/api/v1/system/health").json()["auth"] == "open"
    assert open_api.get("/api/v1/system/diagnostics").json()["auth"] == "open"
    open_api.post("/api/v1/users", json={"email": "o@open.test", "role": "admin"})
    body = {"name": "k", "scopes": ["configs:read"], "owner_email": "o@open.test"}
    refused = open_api.post("/api/v1/keys", json=body)  # nothing to hash a key with
    assert (refused.status_code, refused.json()["error_code"]) == (400, "AUTH_NOT_CONFIGURED")


def test_outside_development_a_secret_is_required(tmp_path: Path) -> None:
    for environment in ("test", "production"):
        settings = ApiSettings(
            environment=environment, database_url="postgresql://x/y", data_dir=tmp_path
        )
        with pytest.raises(ConfigurationError, match="FACTFLOW_AUTH_SECRET"):
            create_app(settings)
    with pytest.raises(ValueError, match="at least 32"):
        ApiSettings(environment="test", auth_secret="short")
