"""Per-key rate limits (429 with Retry-After, shared through Postgres by every replica)
and the audit log (written for every state-changing request, readable by admins only)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.integration.api.conftest import ADMIN_EMAIL, TEXT_POSTGRES_YAML, TEXT_YAML, MakeApp

pytestmark = pytest.mark.integration

CONFIGS = "/api/v1/configs"
AUDIT = "/api/v1/audit"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_key(api: TestClient, scopes: list[str], **extra: Any) -> dict[str, Any]:
    r = api.post("/api/v1/keys", json={"name": "t", "scopes": scopes, **extra})
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def test_a_key_over_its_rate_gets_429_with_retry_after(make_app: MakeApp) -> None:
    api = make_app(auth_rate_limit_per_minute=5)
    key = new_key(api, ["configs:read"])["key"]
    for _ in range(5):  # the burst: a minute's worth at once
        assert api.get(CONFIGS, headers=bearer(key)).status_code == 200
    limited = api.get(CONFIGS, headers=bearer(key))
    assert limited.status_code == 429
    body = limited.json()
    assert body["error_code"] == "RATE_LIMITED"
    assert "5 requests per minute" in body["detail"]
    assert body["limit"] == 5 and body["retry_after_seconds"] >= 1
    # one request is earned back every 60/5 = 12 s
    assert 1 <= int(limited.headers["Retry-After"]) <= 12
    # limits are per key: another key of the same owner is not affected
    other = new_key(api, ["configs:read"])["key"]
    assert api.get(CONFIGS, headers=bearer(other)).status_code == 200


def test_a_key_may_have_its_own_rate(make_app: MakeApp) -> None:
    api = make_app()  # the server's default is high (conftest)
    created = new_key(api, ["configs:read"], rate_limit_per_minute=2)
    assert created["rate_limit_per_minute"] == 2
    codes = [api.get(CONFIGS, headers=bearer(created["key"])).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    rotated = api.post(f"/api/v1/keys/{created['id']}/rotate", json={"grace_seconds": 0})
    assert rotated.json()["rate_limit_per_minute"] == 2  # a successor keeps the limit


def test_replicas_share_the_limit(make_app: MakeApp) -> None:
    """Two app instances on one database (two replicas) count one key's requests together."""
    first = make_app(auth_rate_limit_per_minute=4)
    second = make_app(auth_rate_limit_per_minute=4)
    key = new_key(first, ["configs:read"])["key"]
    codes = [
        (first if i % 2 else second).get(CONFIGS, headers=bearer(key)).status_code for i in range(5)
    ]
    assert codes == [200, 200, 200, 200, 429]


def test_state_changes_are_audited(api: TestClient) -> None:
    created = api.post(CONFIGS, json={"name": f"audit-{uuid.uuid4().hex[:6]}",
                                      "config_yaml": TEXT_YAML})  # fmt: skip
    assert created.status_code == 201, created.text
    config_id = created.json()["id"]
    assert api.delete(f"{CONFIGS}/{config_id}").status_code == 204
    entries = api.get(AUDIT, params={"resource_id": config_id}).json()
    assert [e["action"] for e in entries] == ["delete_config", "create_config"]
    deleted, made = entries
    assert made["method"] == "POST" and made["path"] == CONFIGS
    assert made["resource_type"] == "configs" and made["status_code"] == 201
    assert made["actor"] == ADMIN_EMAIL and made["actor_kind"] == "key"
    assert made["key_prefix"].startswith("ff_live_") and made["outcome"] == "success"
    assert made["client_address"] == "testclient" and made["correlation_id"]
    assert deleted["id"] > made["id"] and deleted["occurred_at"] >= made["occurred_at"]
    # reads are not audited (GETs, and POSTs of :read routes such as validate)
    api.get(CONFIGS)
    api.post(f"{CONFIGS}/validate", json={"config_yaml": TEXT_YAML})
    recent = api.get(AUDIT, params={"limit": 5}).json()
    assert {e["action"] for e in recent} & {
        "list_configs",
        "validate_config",
        "list_audit",
    } == set()


def test_refused_requests_are_audited_too(api: TestClient) -> None:
    viewer_key = new_key(api, ["configs:read"])["key"]
    refused = api.post(CONFIGS, json={}, headers=bearer(viewer_key))
    assert refused.status_code == 403
    nobody = api.post(CONFIGS, json={}, headers={"Authorization": ""})
    assert nobody.status_code == 401
    denied = api.get(AUDIT, params={"outcome": "denied", "limit": 2}).json()
    assert [(e["status_code"], e["error_code"], e["actor_kind"]) for e in denied] == [
        (401, "AUTHENTICATION_REQUIRED", "anonymous"),
        (403, "INSUFFICIENT_SCOPE", "key"),
    ]
    failed_login = api.post("/api/v1/auth/login", json={"email": "x@y.z", "password": "nope"})
    assert failed_login.status_code == 401
    entry = api.get(AUDIT, params={"action": "login_user", "limit": 1}).json()[0]
    assert (entry["actor"], entry["outcome"]) == ("x@y.z", "denied")


def test_audit_filters_and_pages(api: TestClient) -> None:
    ids = []
    for _ in range(3):
        key = new_key(api, ["configs:read"])
        ids.append(key["id"])
        assert api.post(f"/api/v1/keys/{key['id']}/revoke").status_code == 200
    revokes = api.get(AUDIT, params={"action": "revoke_key", "limit": 2}).json()
    assert [e["resource_id"] for e in revokes] == [ids[2], ids[1]]
    rest = api.get(AUDIT, params={"action": "revoke_key", "before_id": revokes[-1]["id"]}).json()
    assert rest[0]["resource_id"] == ids[0]
    creations = api.get(AUDIT, params={"action": "create_key", "resource_type": "keys"}).json()
    assert {ids[0], ids[1], ids[2]} <= {e["resource_id"] for e in creations}  # from the body
    assert api.get(AUDIT, params={"actor": "someone-else@x.y"}).json() == []
    assert api.get(AUDIT, params={"since": "2999-01-01T00:00:00Z"}).json() == []
    assert api.get(AUDIT, params={"outcome": "bogus"}).status_code == 422


def test_audit_needs_admin(api: TestClient) -> None:
    api.post("/api/v1/users", json={"email": "member@audit.test", "role": "member"})
    member = new_key(api, ["configs:read", "executions:read"], owner_email="member@audit.test")
    refused = api.get(AUDIT, headers=bearer(member["key"]))
    assert (refused.status_code, refused.json()["error_code"]) == (403, "INSUFFICIENT_SCOPE")
    ro = new_key(api, ["configs:read"], type="ro")
    assert api.get(AUDIT, headers=bearer(ro["key"])).status_code == 403
    assert api.get(AUDIT, headers={"Authorization": ""}).status_code == 401
    assert api.get(AUDIT).status_code == 200


@pytest.mark.slow
def test_a_key_may_run_only_its_cap_of_executions_at_once(
    make_app: MakeApp, wait_status: Any
) -> None:
    """Runs worker processes: the text-postgres pipeline reads a global queue, so it runs
    until cancelled."""
    api = make_app()
    text = TEXT_POSTGRES_YAML
    capped = new_key(api, ["executions:run", "executions:read"], max_running_executions=1)
    headers = bearer(capped["key"])
    first = api.post("/api/v1/executions", json={"pipeline_yaml": text}, headers=headers)
    assert first.status_code == 201, first.text
    execution_id = first.json()["execution_id"]
    try:
        over = api.post("/api/v1/executions", json={"pipeline_yaml": text}, headers=headers)
        assert over.status_code == 429
        body = over.json()
        assert body["error_code"] == "KEY_EXECUTION_LIMIT"
        assert capped["prefix"] in body["detail"] and "limit is 1" in body["detail"]
        assert over.headers["Retry-After"]
        # the cap is the key's: the admin key still starts executions
        other = api.post("/api/v1/executions", json={"pipeline_yaml": text})
        assert other.status_code == 201, other.text
        api.post(f"/api/v1/executions/{other.json()['execution_id']}/cancel")
        row = api.get(f"/api/v1/executions/{execution_id}").json()
        assert row["started_by"] == f"{ADMIN_EMAIL} ({capped['prefix']})"
    finally:
        api.post(f"/api/v1/executions/{execution_id}/cancel")
    wait_status(api, execution_id, ("cancelled", "completed"))
    # once it has stopped, the key may start again
    again = api.post("/api/v1/executions", json={"pipeline_yaml": text}, headers=headers)
    assert again.status_code == 201, again.text
    api.post(f"/api/v1/executions/{again.json()['execution_id']}/cancel")
    wait_status(api, again.json()["execution_id"], ("cancelled", "completed"))


def test_wrong_keys_with_a_real_prefix_do_not_spend_its_budget(make_app: MakeApp) -> None:
    api = make_app(auth_rate_limit_per_minute=2)
    key = new_key(api, ["configs:read"])["key"]
    forged = key[:-1] + ("a" if key[-1] != "a" else "b")  # same prefix, wrong secret part
    for _ in range(5):
        r = api.get(CONFIGS, headers=bearer(forged))
        assert (r.status_code, r.json()["error_code"]) == (401, "INVALID_API_KEY")
    codes = [api.get(CONFIGS, headers=bearer(key)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_a_streamed_answer_is_audited_when_its_headers_go_out(api_db_url: str) -> None:
    """A POST answered with SSE (chat streams so) is recorded at its start, not held until
    its first event; the app is a minimal one with the real middleware and dependency."""
    from collections.abc import AsyncIterator

    from fastapi import APIRouter, FastAPI
    from sse_starlette.sse import EventSourceResponse

    from factflow.api.audit import AuditMiddleware
    from factflow.api.auth import require
    from factflow.auth.settings import AuthMode, AuthSettings
    from factflow.db.connection import connect, create_pool
    from factflow.db.migrate import migrate
    from factflow.db.settings import DatabaseSettings
    from factflow.settings import Settings

    with connect(api_db_url) as conn:
        migrate(conn)

    router = APIRouter(prefix="/api/v1/streams", dependencies=[require("chat:use")])

    @router.post("")
    def stream_answer() -> EventSourceResponse:
        async def events() -> AsyncIterator[dict[str, str]]:
            yield {"event": "token", "data": "hello"}

        return EventSourceResponse(events())

    app = FastAPI()
    app.include_router(router)
    app.add_middleware(AuditMiddleware)
    app.state.auth = AuthSettings(AuthMode.OPEN, None)
    app.state.pool = create_pool(
        DatabaseSettings.of(Settings(database_url=api_db_url)), name="audit-sse"
    )
    try:
        with TestClient(app) as client:
            r = client.post("/api/v1/streams")
            assert r.status_code == 200 and "hello" in r.text
    finally:
        app.state.pool.close()
    with connect(api_db_url) as conn:
        row = conn.execute(
            "SELECT action, resource_type, status_code, actor_kind FROM audit_log"
            " WHERE path = '/api/v1/streams' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert row == ("stream_answer", "streams", 200, "open")
