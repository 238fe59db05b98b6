"""`factflow serve --embedded` delivers signed webhooks: a subscription made with the CLI
receives the run's `execution.started` and `execution.completed`, verified with the
`standardwebhooks` package and the seed system's HMAC; a server killed (SIGKILL) while
deliveries are in flight makes every one of them after it is started again."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from factflow.dataflows.launch import free_ports
from tests.e2e.helpers import REPO_ROOT
from tests.e2e.test_server_embedded import Server
from tests.integration.webhook_receiver import receiving

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SECRET = "e2e-secret-value"


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    # a 3 s attempt timeout makes the claim lease 20 s: how long a delivery whose server
    # died mid-attempt waits before another claim sends it again
    monkeypatch.setenv("FACTFLOW_WEBHOOK_TIMEOUT_SECONDS", "3")
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


def _deliveries(server: Server, webhook_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = server.cli_json("webhook", "deliveries", webhook_id)
    return found


def test_server_killed_mid_delivery_delivers_everything_after_restart(
    embedded: Server,
) -> None:
    """SIGKILL while two deliveries are held open by the receiver (sent, unanswered) and
    more are queued: after a restart every delivery arrives, the interrupted ones again
    under the same delivery id (at-least-once; receivers dedupe by it)."""
    count = 6
    with receiving(SECRET, hold=2) as receiver:
        hook = embedded.cli_json(
            "webhook", "create", "--url", receiver.url, "--secret", SECRET, "--events", "*"
        )
        # queued while paused, so they go out together when it resumes: the kill comes
        # well within the attempts' timeout
        embedded.cli_json("webhook", "pause", hook["webhook_id"])
        for _ in range(count):
            embedded.cli_json("webhook", "test", hook["webhook_id"])
        embedded.cli_json("webhook", "resume", hook["webhook_id"])
        deadline = time.monotonic() + 30
        while len(receiver.held) < 2:
            assert time.monotonic() < deadline, "no delivery reached the receiver"
            time.sleep(0.05)
        embedded.stop(signal.SIGKILL)
        interrupted = {r.headers["X-Factflow-Delivery"] for r in receiver.held}
        receiver.release.set()

        embedded.start()
        deadline = time.monotonic() + 90
        while True:
            deliveries = _deliveries(embedded, hook["webhook_id"])
            if len(deliveries) == count and all(d["status"] == "delivered" for d in deliveries):
                break
            assert time.monotonic() < deadline, deliveries
            time.sleep(0.5)
    ids = {d["delivery_id"] for d in deliveries}
    answered = [r for r in receiver.received if r.answered == 200]
    assert {r.headers["X-Factflow-Delivery"] for r in answered} == ids
    assert interrupted <= ids and len(interrupted) == 2
    for delivery_id in interrupted:
        # sent before the kill, and again after the lease under the same id
        again = [r for r in answered if r.headers["X-Factflow-Delivery"] == delivery_id]
        assert len(again) == 1 and again[0].headers["webhook-id"] == delivery_id
    assert all(r.verified for r in [*receiver.held, *receiver.received])


def test_an_event_starts_a_config_by_its_yaml_triggers(embedded: Server, tmp_path: Path) -> None:
    """`triggers:` in the YAML, saved with `config create`, and `event send`: the event
    runs the config to completion, and a subscriber hears of it."""
    pipeline = tmp_path / "triggered.yaml"
    text = (REPO_ROOT / "pipelines" / "text.yaml").read_text()
    pipeline.write_text(
        text.replace("name: text", "name: triggered", 1)
        + '\ntriggers:\n  - {event: "docs.*", input_queue: docs.in}\n'
        + '  - {cron: "0 3 * * *", timezone: Europe/Oslo}\n'
    )
    with receiving(SECRET) as receiver:
        embedded.cli_json(
            "webhook", "create", "--url", receiver.url, "--secret", SECRET,
            "--events", "execution.completed",
        )  # fmt: skip
        config = embedded.cli_json("config", "create", "-f", str(pipeline))
        schedules = embedded.cli_json("schedule", "list")
        assert [s["config_id"] for s in schedules if s["origin"] == "config"] == [config["id"]]
        document = {"title": "T", "lang": "en", "paragraphs": ["One.", "Two."]}
        sent = embedded.cli_json(
            "event", "send", "docs.arrived", "--data", json.dumps(document), "--id", "e2e-1"
        )
        [result] = sent["results"]
        assert result["outcome"] == "started" and result["config_id"] == config["id"]
        waited = embedded.cli("--timeout", "90s", "execution", "wait", result["execution_id"])
        assert waited.returncode == 0, waited.stdout + waited.stderr
        receiver.wait_for(1, "execution.completed", timeout=30)
    execution = embedded.cli_json("execution", "get", result["execution_id"])
    assert execution["source"] == "event"
    assert execution["trigger_context"]["event"]["id"] == "e2e-1"
    [done] = receiver.of_type("execution.completed")
    assert done.verified and done.payload["data"]["execution_id"] == result["execution_id"]
