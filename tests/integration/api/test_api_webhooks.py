"""Webhooks through the API against a real Postgres and a real receiver on 127.0.0.1.

The retry schedule is compressed (FACTFLOW_WEBHOOK_RETRY_SCHEDULE_SECONDS) so the six
attempts take a second, not 14 hours; the order and the gaps are what is checked.
"""

from __future__ import annotations

import socket
import time
import uuid
from typing import Any

import pytest
from standardwebhooks import Webhook

from factflow.db.connection import connect
from factflow.db.repositories.events import emit_event
from factflow.webhooks.dispatcher import Dispatcher
from factflow.webhooks.settings import WebhookSettings
from factflow.webhooks.signing import SIGNATURE_HEADER, verify_factflow_signature
from tests.integration.api.conftest import MakeApp
from tests.integration.webhook_receiver import receiving

pytestmark = pytest.mark.integration
SECRET = "test-secret-123"
SCHEDULE = (0.2, 0.3, 0.4, 0.5, 0.6)


def _app(make_app: MakeApp, **extra: Any) -> Any:
    return make_app(
        webhook_allow_private_urls=True, webhook_retry_schedule_seconds=SCHEDULE, **extra
    )


def _subscribe(client: Any, url: str, events: list[str], **extra: Any) -> dict[str, Any]:
    response = client.post(
        "/api/v1/webhooks", json={"url": url, "event_types": events, "secret": SECRET, **extra}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _deliveries(client: Any, webhook_id: str) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = client.get(f"/api/v1/webhooks/{webhook_id}/deliveries").json()
    return body


def _wait_delivery(
    client: Any, webhook_id: str, status: str, timeout: float = 20
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [d for d in _deliveries(client, webhook_id) if d["status"] == status]
        if found:
            detail: dict[str, Any] = client.get(
                f"/api/v1/webhooks/{webhook_id}/deliveries/{found[0]['delivery_id']}"
            ).json()
            return detail
        time.sleep(0.05)
    msg = f"no {status} delivery: {_deliveries(client, webhook_id)}"
    raise AssertionError(msg)


def test_execution_events_are_delivered_signed(
    make_app: MakeApp, start_text: Any, wait_status: Any
) -> None:
    client = _app(make_app)
    with receiving(SECRET) as receiver:
        hook = _subscribe(client, receiver.url, ["execution.started", "execution.completed"])
        assert hook["secret"] == SECRET
        assert client.get(f"/api/v1/webhooks/{hook['webhook_id']}").json()["secret"] is None
        started = start_text(client)
        wait_status(client, started["execution_id"], ("completed",))
        receiver.wait_for(1, "execution.completed")
        receiver.wait_for(1, "execution.started")
        done = receiver.of_type("execution.completed")[0]
        assert done.verified
        assert done.payload["data"]["execution_id"] == started["execution_id"]
        assert done.payload["data"]["status"] == "completed"
        assert done.headers["X-Factflow-Delivery"] == done.headers["webhook-id"]
    assert all(r.verified for r in receiver.received)
    assert {r.headers["X-Factflow-Event"] for r in receiver.received} == {
        "execution.started", "execution.completed",
    }  # fmt: skip


def test_fails_five_times_then_succeeds_on_the_schedule(make_app: MakeApp) -> None:
    client = _app(make_app)
    with receiving(SECRET, fail_first=5) as receiver:
        hook = _subscribe(client, receiver.url, ["*"])
        client.post(f"/api/v1/webhooks/{hook['webhook_id']}/test")
        delivery = _wait_delivery(client, hook["webhook_id"], "delivered")
    assert [r.answered for r in receiver.received] == [500] * 5 + [200]
    gaps = [b.at - a.at for a, b in zip(receiver.received, receiver.received[1:], strict=False)]
    # each wait is the schedule's (compressed) delay, in order, never shorter
    for gap, planned in zip(gaps, SCHEDULE, strict=True):
        assert planned - 0.05 <= gap <= planned + 1.0, (gaps, SCHEDULE)
    ids = {r.headers["X-Factflow-Delivery"] for r in receiver.received}
    assert ids == {delivery["delivery_id"]}, "every attempt carries the same delivery id"
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500] * 5 + [200]
    assert delivery["attempt_log"][5]["response_excerpt"] == "ok"
    assert all(r.verified for r in receiver.received)


def test_retry_after_longer_than_the_schedule_is_honoured(make_app: MakeApp) -> None:
    client = _app(make_app)
    with receiving(SECRET, fail_first=1, headers={"Retry-After": "2"}) as receiver:
        receiver.fail_first = 0
        receiver.status = 429
        hook = _subscribe(client, receiver.url, ["*"])
        client.post(f"/api/v1/webhooks/{hook['webhook_id']}/test")
        receiver.wait_for(1)
        receiver.status = 200
        _wait_delivery(client, hook["webhook_id"], "delivered")
    first, second = receiver.received[:2]
    assert first.answered == 429 and second.answered == 200
    assert second.at - first.at >= 1.95, "waited Retry-After (2 s), not the schedule (0.2 s)"


def test_network_errors_and_timeouts_are_retried_then_dead_lettered(make_app: MakeApp) -> None:
    client = _app(make_app, webhook_timeout_seconds=0.3)
    with receiving(SECRET, sleep=1.0) as slow:
        timed_out = _subscribe(client, slow.url, ["*"])
        refused = _subscribe(client, f"http://127.0.0.1:{_closed_port()}/hook", ["*"])
        client.post(f"/api/v1/webhooks/{timed_out['webhook_id']}/test")
        client.post(f"/api/v1/webhooks/{refused['webhook_id']}/test")
        for hook, error in ((timed_out, "Timeout"), (refused, "ConnectError")):
            dead = _wait_delivery(client, hook["webhook_id"], "dead_lettered", timeout=40)
            assert dead["attempts"] == 6
            assert all(a["status_code"] is None for a in dead["attempt_log"])
            assert all(error in (a["error"] or "") for a in dead["attempt_log"]), dead
        slow.wait_for(6, timeout=5)  # the last one is recorded once its sleep is over


def test_redirects_are_not_followed(make_app: MakeApp) -> None:
    client = _app(make_app)
    with (
        receiving(SECRET) as target,
        receiving(SECRET, status=302, headers={"Location": "TARGET"}) as redirecting,
    ):
        redirecting.headers["Location"] = target.url
        hook = _subscribe(client, redirecting.url, ["*"])
        client.post(f"/api/v1/webhooks/{hook['webhook_id']}/test")
        failed = _wait_delivery(client, hook["webhook_id"], "failed")
        time.sleep(SCHEDULE[0] + 0.3)
    assert failed["attempts"] == 1 and failed["last_status_code"] == 302
    assert target.received == [] and len(redirecting.received) == 1


def _closed_port() -> int:
    """A port nothing listens on (bound, then closed at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_dead_lettered_after_six_then_redelivered(make_app: MakeApp) -> None:
    client = _app(make_app)
    with receiving(SECRET, status=503) as receiver:
        hook = _subscribe(client, receiver.url, ["*"])
        client.post(f"/api/v1/webhooks/{hook['webhook_id']}/test")
        dead = _wait_delivery(client, hook["webhook_id"], "dead_lettered")
        assert len(receiver.received) == 6
        assert dead["attempts"] == 6 and dead["last_status_code"] == 503
        receiver.status = 200
        answer = client.post(
            f"/api/v1/webhooks/{hook['webhook_id']}/deliveries/{dead['delivery_id']}/redeliver"
        )
        assert answer.json()["status"] == "pending"
        done = _wait_delivery(client, hook["webhook_id"], "delivered")
    assert done["delivery_id"] == dead["delivery_id"] and done["attempts"] == 7
    assert len(receiver.received) == 7


def test_client_errors_are_not_retried(make_app: MakeApp) -> None:
    client = _app(make_app)
    with receiving(SECRET, status=410) as receiver:
        hook = _subscribe(client, receiver.url, ["*"])
        client.post(f"/api/v1/webhooks/{hook['webhook_id']}/test")
        failed = _wait_delivery(client, hook["webhook_id"], "failed")
        time.sleep(SCHEDULE[0] + 0.3)
    assert len(receiver.received) == 1 and failed["attempts"] == 1


def test_filters_and_rolled_back_events(make_app: MakeApp, api_db_url: str) -> None:
    client = _app(make_app)
    mine, other = uuid.uuid4(), uuid.uuid4()
    with receiving(SECRET) as receiver:
        hook = _subscribe(
            client, receiver.url, ["deadletter.created"],
            filters={"execution_id": str(mine), "route_id": "crawl"},
        )  # fmt: skip
        with connect(api_db_url) as conn:
            emit_event(conn, "deadletter.created", {"route_id": "crawl"}, execution_id=other)
            emit_event(conn, "deadletter.created", {"route_id": "other"}, execution_id=mine)
            emit_event(conn, "lineage.failed", {"route_id": "crawl"}, execution_id=mine)
            try:
                with conn.transaction():
                    emit_event(conn, "deadletter.created", {"route_id": "crawl"}, execution_id=mine)
                    raise RuntimeError("roll back")  # noqa: EM101
            except RuntimeError:
                pass
            emit_event(conn, "deadletter.created", {"route_id": "crawl", "n": 1}, execution_id=mine)
        receiver.wait_for(1)
        # the filters apply when an event is stored (the fan-out trigger): one delivery
        # was made, and it is the one received
        [delivery] = _deliveries(client, hook["webhook_id"])
        assert delivery["body"]["data"]["n"] == 1
    assert len(receiver.received) == 1, [r.payload for r in receiver.received]
    assert receiver.received[0].payload["data"]["n"] == 1


def test_refused_urls_and_unknown_events(make_app: MakeApp) -> None:
    client = make_app()  # default allow rule: loopback refused
    refused = client.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "event_types": ["*"]}
    )
    assert refused.status_code == 400 and refused.json()["error_code"] == "WEBHOOK_INVALID"
    unknown = client.post(
        "/api/v1/webhooks", json={"url": "https://93.184.215.14/", "event_types": ["exec.done"]}
    )
    assert unknown.status_code == 400 and "exec.done" in unknown.json()["detail"]


def test_pause_holds_and_rotation_signs_with_both(make_app: MakeApp) -> None:
    client = _app(make_app)
    with receiving(SECRET) as receiver, receiving(SECRET) as probe:
        hook = _subscribe(client, receiver.url, ["*"])
        webhook = f"/api/v1/webhooks/{hook['webhook_id']}"
        assert client.post(f"{webhook}/pause").json()["is_active"] is False
        held = client.post(f"{webhook}/test").json()
        # a delivery of an active webhook queued after the held one: once it arrived, the
        # dispatcher has claimed past the held one, which was due first
        active = _subscribe(client, probe.url, ["*"])
        client.post(f"/api/v1/webhooks/{active['webhook_id']}/test")
        probe.wait_for(1)
        assert receiver.received == []
        [pending] = _deliveries(client, hook["webhook_id"])
        assert (pending["delivery_id"], pending["status"]) == (held["delivery_id"], "pending")
        assert pending["attempts"] == 0
        rotated = client.post(f"{webhook}/rotate-secret").json()
        assert rotated["secret"].startswith("whsec_")
        client.post(f"{webhook}/resume")
        receiver.wait_for(1)
    got = receiver.received[0]
    # webhook-signature carries both secrets' signatures; X-Factflow-Signature the new one
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    Webhook(SECRET.encode()).verify(got.body, got.headers)
    Webhook(rotated["secret"]).verify(got.body, got.headers)
    assert verify_factflow_signature(rotated["secret"], got.body, got.headers[SIGNATURE_HEADER])
    assert client.delete(webhook).status_code == 204
    assert client.get(webhook).status_code == 404


def test_two_dispatchers_deliver_each_once(make_app: MakeApp, api_db_url: str) -> None:
    client = _app(make_app)
    count = 150
    with receiving(SECRET) as receiver:
        hook = _subscribe(client, receiver.url, ["route.paused"])
        # the app's own dispatcher is a third one
        settings = WebhookSettings(allow_private_urls=True, per_endpoint_concurrency=8)
        dispatchers = [Dispatcher(api_db_url, settings, instance=f"test-{i}") for i in range(2)]
        for dispatcher in dispatchers:
            dispatcher.start()
        try:
            with connect(api_db_url) as conn:
                for i in range(count):
                    emit_event(conn, "route.paused", {"route_id": f"r{i}"})
            receiver.wait_for(count, timeout=60)
            time.sleep(0.5)
        finally:
            for dispatcher in dispatchers:
                dispatcher.close()
    ids = [r.headers["X-Factflow-Delivery"] for r in receiver.received]
    assert len(ids) == len(set(ids)) == count
    assert all(d["attempts"] == 1 for d in _deliveries(client, hook["webhook_id"]))


def test_lineage_batches_become_events(make_app: MakeApp, api_db_url: str) -> None:
    """One `storage.object_created` per batch, route and adapter; one `lineage.failed`
    per failed row; `deadletter.created` per dead letter (all from database triggers)."""
    client = _app(make_app)
    execution = uuid.uuid4()
    with receiving(SECRET) as receiver:
        _subscribe(
            client, receiver.url,
            ["storage.object_created", "lineage.failed", "deadletter.created"],
        )  # fmt: skip
        rows = [
            (uuid.uuid4(), execution, "ingest", "split", 0, "ingest__0_split", f"m{i}",
             "failed" if i == 2 else "completed", f"executions/x/ingest/{i}.json")
            for i in range(3)
        ]  # fmt: skip
        with connect(api_db_url) as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO lineage (id, execution_id, route_id, adapter_name, adapter_index,"
                " stage_name, message_id, status, storage_key, started_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, now())",
                rows,
                returning=False,
            )
            conn.execute(
                "INSERT INTO lineage (id, execution_id, route_id, adapter_name, adapter_index,"
                " stage_name, message_id, status, storage_key, started_at)"
                " SELECT gen_random_uuid(), %s, 'ingest', 'split', 0, 'ingest__0_split',"
                " 'b' || n, 'completed', 'k' || n, now() FROM generate_series(1, 5) n",
                (execution,),
            )
            conn.execute(
                "INSERT INTO dead_letters (execution_id, route_id, queue, message, error)"
                " VALUES (%s, 'ingest', 'docs.in', '{}', 'boom')",
                (execution,),
            )
        receiver.wait_for(1, "deadletter.created")
        receiver.wait_for(1, "lineage.failed")
        time.sleep(0.3)
    batch = [
        r for r in receiver.of_type("storage.object_created") if r.payload["data"]["count"] == 5
    ]
    assert len(batch) == 1 and len(batch[0].payload["data"]["objects"]) == 5
    failed = receiver.of_type("lineage.failed")
    assert len(failed) == 1 and failed[0].payload["data"]["message_id"] == "m2"
    assert receiver.of_type("deadletter.created")[0].payload["data"]["error"] == "boom"
