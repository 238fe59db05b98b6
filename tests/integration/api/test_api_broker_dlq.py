"""Broker dead-letter queues over HTTP (`/deadletters/queues`), on every broker that
answers (RabbitMQ, Artemis and RabbitMQ over STOMP, Pulsar, Kafka), with real worker
processes: an adapter fails while a marker file exists, its letters are listed and peeked
(left on the queue), the adapter is fixed and they are redriven onto the route's inbound
queue, and another execution's letters are purged while the first one's are put back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from factflow.db.connection import connect
from factflow.db.repositories.events import list_events
from tests.integration.api.conftest import REPO_ROOT
from tests.integration.brokers.clients import Broker, tag
from tests.integration.brokers.conftest import BROKERS, require

if TYPE_CHECKING:
    from starlette.testclient import TestClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Wait = Callable[..., dict[str, Any]]
DOCS = [{"payload": {"n": n}} for n in range(3)]


@pytest.fixture(params=sorted(BROKERS))
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    yield require(BROKERS[request.param])


def _pipeline(broker: Broker, route: str, inbound: str, marker: Path) -> str:
    return f"""\
version: "1.0"
name: dlq-{route.replace("_", "-")}
{broker.queue_block()}
error_handling: {{max_retries: 0}}
routes:
  {route}:
    inbound: {{queue: "{inbound}"}}
    adapters:
      - type: "tests.integration.flow_adapters:FailsWhileMarker"
        config: {{marker: "{marker}"}}
    outbound: "{broker.queue("dlq.out." + route)}"
"""


def _run(api: TestClient, wait_status: Wait, yaml_text: str, inbound: str) -> str:
    started = api.post(
        "/api/v1/executions", json={"pipeline_yaml": yaml_text, "inputs": {inbound: DOCS}}
    )
    assert started.status_code == 201, started.text
    execution_id: str = started.json()["execution_id"]
    done = wait_status(api, execution_id, ("completed", "failed", "cancelled"), timeout=120)
    assert done["status"] == "completed", done["error"]
    return execution_id


def _peek(api: TestClient, route: str, execution_id: str) -> list[dict[str, Any]]:
    response = api.get(
        f"/api/v1/deadletters/queues/{route}/messages", params={"execution_id": execution_id}
    )
    assert response.status_code == 200, response.text
    letters: list[dict[str, Any]] = response.json()["letters"]
    return letters


def test_broker_dead_letters_listed_peeked_redriven_purged(
    broker: Broker,
    make_app: Callable[..., TestClient],
    wait_status: Wait,
    tmp_path: Path,
    api_db_url: str,
) -> None:
    api = make_app(worker_env={"PYTHONPATH": str(REPO_ROOT)})
    route = f"work_{tag()}"
    inbound = broker.queue(f"dlq.in.{route}")
    marker = tmp_path / "broken"
    marker.touch()
    yaml_text = _pipeline(broker, route, inbound, marker)
    first = _run(api, wait_status, yaml_text, inbound)

    queues = api.get("/api/v1/deadletters/queues", params={"execution_id": first}).json()
    assert [(q["route_id"], q["provider"]) for q in queues] == [(route, broker.provider)]
    letters = _peek(api, route, first)
    assert sorted(letter["message"]["payload"]["n"] for letter in letters) == [0, 1, 2]
    assert {letter["reason"] for letter in letters} == {"failed"}
    assert {letter["execution_id"] for letter in letters} == {first}
    assert len(_peek(api, route, first)) == 3  # a peek leaves them on the queue

    unknown = api.get("/api/v1/deadletters/queues/nope/messages", params={"execution_id": first})
    assert unknown.status_code == 400 and "nope" in unknown.json()["detail"]

    redrive_path = f"/api/v1/deadletters/queues/{route}/redrive"
    if broker.provider == "kafka":
        refused = api.post(redrive_path, json={"execution_id": first})
        assert refused.status_code == 400 and "log" in refused.json()["detail"]
        return

    second = _run(api, wait_status, yaml_text, inbound)  # three letters of another run
    marker.unlink()  # the adapter is fixed
    collector = broker.collect(inbound)
    try:
        redriven = api.post(redrive_path, json={"execution_id": first})
        assert redriven.status_code == 200, redriven.text
        assert redriven.json()["count"] == 3
        # the first run's letters are on the inbound queue, confirmed
        assert len(collector.wait_for(3, timeout=30)) == 3
    finally:
        collector.stop()
    assert _peek(api, route, first) == []
    # the second run's letters were read too, and put back
    assert len(_peek(api, route, second)) == 3

    purged = api.delete(
        f"/api/v1/deadletters/queues/{route}", params={"execution_id": second}
    ).json()
    assert purged["count"] == 3
    assert _peek(api, route, second) == []
    with connect(api_db_url) as conn:
        events = list_events(conn, execution_id=uuid.UUID(second), limit=1000)
    [purge_event] = [e for e in events if e.type == "deadletter.purged"]
    assert sorted(x["message"]["payload"]["n"] for x in purge_event.payload["letters"]) == [0, 1, 2]
