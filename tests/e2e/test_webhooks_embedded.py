"""`factflow serve --embedded` delivers signed webhooks: a subscription made with the CLI
receives the run's `execution.started` and `execution.completed`, verified with the
`standardwebhooks` package and the seed system's HMAC."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from factflow.dataflows.launch import free_ports
from tests.e2e.helpers import REPO_ROOT
from tests.e2e.test_server_embedded import Server
from tests.integration.webhook_receiver import receiving

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SECRET = "e2e-secret-value"


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path, free_ports(1)[0])
    srv.start()
    yield srv
    srv.stop()
    from factflow.db.embedded import stop_embedded

    stop_embedded(tmp_path / "pg")


def test_completion_delivers_a_signed_webhook(embedded: Server) -> None:
    with receiving(SECRET) as receiver:
        hook = embedded.cli_json(
            "webhook", "create", "--url", receiver.url, "--secret", SECRET,
            "--events", "execution.started,execution.completed",
        )  # fmt: skip
        assert hook["secret"] == SECRET
        config = embedded.cli_json(
            "config", "create", "-f", str(REPO_ROOT / "pipelines" / "text.yaml")
        )
        docs = REPO_ROOT / "pipelines" / "data" / "docs.in.jsonl"
        started = embedded.cli_json("config", "run", config["id"], "--input", f"docs.in={docs}")
        waited = embedded.cli("--timeout", "90s", "execution", "wait", started["execution_id"])
        assert waited.returncode == 0, waited.stdout + waited.stderr
        receiver.wait_for(1, "execution.completed", timeout=30)
        receiver.wait_for(1, "execution.started", timeout=30)
    completed = receiver.of_type("execution.completed")
    assert len(completed) == 1 and completed[0].verified
    data = completed[0].payload["data"]
    assert data["execution_id"] == started["execution_id"]
    assert data["config_id"] == config["id"] and data["status"] == "completed"
    assert all(r.verified for r in receiver.received)
    deliveries = embedded.cli_json("webhook", "deliveries", hook["webhook_id"])
    assert {d["status"] for d in deliveries} == {"delivered"}
    assert len(deliveries) == len(receiver.received)
