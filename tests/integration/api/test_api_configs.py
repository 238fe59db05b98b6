"""Configs: stored even when invalid, with the seed system's report; versions; run gate."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from starlette.testclient import TestClient

pytestmark = pytest.mark.integration

VALID = """\
version: "1.0"
queue: {provider: file, path: ./q}
routes:
  r:
    inbound: {queue: in}
    adapters:
      - type: set_metadata
        config: {values: {a: 1}}
"""
UNKNOWN_ADAPTER = VALID.replace("set_metadata", "no_such_adapter")
REPORT_KEYS = {"is_valid", "error_count", "warning_count", "issues"}
ISSUE_KEYS = {"severity", "code", "path", "message", "suggestion"}


def test_create_get_update_delete(api: TestClient) -> None:
    created = api.post("/api/v1/configs", json={"name": "c-valid", "config_yaml": VALID})
    assert created.status_code == 201, created.text
    config = created.json()
    assert config["is_runnable"] is True and config["version"] == 1
    assert config["source_type"] == "api" and config["is_active"] is True
    assert set(config["validation_report"]) >= REPORT_KEYS
    assert len(config["config_hash"]) == 64

    got = api.get(f"/api/v1/configs/{config['id']}").json()
    assert got["config_yaml"] == VALID

    updated = api.put(
        f"/api/v1/configs/{config['id']}", json={"config_yaml": VALID + "# v2\n"}
    ).json()
    assert updated["version"] == 2 and updated["id"] == config["id"]
    names = [c["name"] for c in api.get("/api/v1/configs").json()]
    assert "c-valid" in names
    inactive = api.get("/api/v1/configs", params={"active": False}).json()
    assert any(c["id"] == config["id"] and c["version"] == 1 for c in inactive)
    versions = api.get(f"/api/v1/configs/{config['id']}/versions").json()
    assert [v["version"] for v in versions] == [2, 1]

    assert api.delete(f"/api/v1/configs/{config['id']}").status_code == 204
    missing = api.get(f"/api/v1/configs/{config['id']}")
    assert missing.status_code == 404 and missing.json()["error_code"] == "NOT_FOUND"


def test_invalid_config_is_stored_but_cannot_run(api: TestClient) -> None:
    created = api.post(
        "/api/v1/configs", json={"name": "c-invalid", "config_yaml": UNKNOWN_ADAPTER}
    )
    assert created.status_code == 201
    config = created.json()
    assert config["is_runnable"] is False
    report = config["validation_report"]
    assert report["is_valid"] is False and report["error_count"] >= 1
    issue = report["issues"][0]
    assert set(issue) >= ISSUE_KEYS and issue["code"] == "E103"

    run = api.post(f"/api/v1/configs/{config['id']}/run")
    assert run.status_code == 400
    body = run.json()
    assert body["error_code"] == "CONFIG_INVALID"
    assert body["validation_report"]["issues"][0]["code"] == "E103"
    assert set(body) >= {"detail", "error_code", "correlation_id", "timestamp"}


def test_unparsable_yaml_is_400_with_report(api: TestClient) -> None:
    response = api.post("/api/v1/configs", json={"name": "c-broken", "config_yaml": "a: [1"})
    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "CONFIG_INVALID"
    assert body["validation_report"]["issues"][0]["code"].startswith("E0")


def test_duplicate_name_conflicts(api: TestClient) -> None:
    assert (
        api.post("/api/v1/configs", json={"name": "c-dup", "config_yaml": VALID}).status_code == 201
    )
    again = api.post("/api/v1/configs", json={"name": "c-dup", "config_yaml": VALID})
    assert again.status_code == 409 and again.json()["error_code"] == "CONFLICT"


def test_validate_always_200(api: TestClient) -> None:
    ok = api.post("/api/v1/configs/validate", json={"config_yaml": VALID})
    assert ok.status_code == 200 and ok.json()["is_valid"] is True
    bad = api.post("/api/v1/configs/validate", json={"config_yaml": UNKNOWN_ADAPTER})
    assert bad.status_code == 200 and bad.json()["is_valid"] is False
    broken = api.post("/api/v1/configs/validate", json={"config_yaml": "::: ["})
    assert broken.status_code == 200 and broken.json()["error_count"] >= 1
