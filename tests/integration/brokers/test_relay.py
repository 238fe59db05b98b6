"""Broker -> passthrough route -> broker on each real broker, in one flow run per broker.

The run has three routes: `relay` (envelopes, plus plain JSON bodies from a producer that is
not factflow, plus one undecodable body), `raw` (`format: raw` in and out: JSON bodies with
`factflow-*` headers) and `fail` (an adapter that always raises). Each test checks one part
of what came out: every message exactly once with its envelope intact, raw round trips,
undecodable bodies and failing messages in the route's dead-letter queue on the same broker
with the error.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import pytest

from factflow.messages import Message
from factflow.providers.registry import get_provider
from tests.integration.brokers.clients import Broker, Record, tag
from tests.integration.brokers.flows import (
    T,
    adapter_route,
    envelope,
    relay_route,
    run_flow,
    unpack,
    write_pipeline,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N = 1000
PLAIN = 20
FAILING = 5
UNDECODABLE = b"\xc1\xff\xfe neither msgpack nor UTF-8"
FAILS = f"{T}:AlwaysFails"


@dataclass
class RelayRun:
    broker: Broker
    routes: dict[str, str]
    sent: list[Message]
    raw_sent: list[Record]
    out: list[Record]
    raw_out: list[Record]
    fail_out: list[Record]
    dead: dict[str, list[Record]]
    left: dict[str, int]
    seconds: float


@pytest.fixture(scope="module")
def relay(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> RelayRun:
    import time

    t = tag()
    routes = {"relay": f"relay-{t}", "raw": f"raw-{t}", "fail": f"fail-{t}"}
    q = {
        name: broker.queue(f"ff-{t}-{name}")
        for name in ("in", "out", "rawin", "rawout", "failin", "failout")
    }
    dlq = {name: get_provider(broker.provider).dead_letter_queue(r) for name, r in routes.items()}
    broker.prepare([*q.values(), *dlq.values()])
    collectors = {name: broker.collect(q[name]) for name in ("out", "rawout", "failout")}
    dead_collectors = {name: broker.collect(queue) for name, queue in dlq.items()}
    try:
        sent = [
            Message(
                payload={"i": i, "text": f"message {i} \u00e9\u4e2d"},
                metadata={"source": "relay-test", "i": i},
                correlation_id=f"corr-{i}",
            )
            for i in range(N)
        ]
        plain = [Record(json.dumps({"plain": j}).encode()) for j in range(PLAIN)]
        broker.publish(q["in"], [*map(envelope, sent), *plain, Record(UNDECODABLE)])
        raw_sent = [
            Record(
                json.dumps({"raw": j}).encode(),
                {
                    "factflow-message-id": f"raw-id-{t}-{j}",
                    "factflow-correlation-id": f"raw-corr-{j}",
                    "factflow-metadata": json.dumps({"j": j}),
                },
            )
            for j in range(PLAIN)
        ] + [Record(json.dumps({"foreign": j}).encode()) for j in range(PLAIN)]
        broker.publish(q["rawin"], raw_sent)
        broker.publish(q["failin"], [envelope(Message(payload={"f": k})) for k in range(FAILING)])

        pipeline = write_pipeline(
            tmp_path_factory.mktemp("relay") / f"relay-{broker.name}.yaml",
            broker,
            relay_route(routes["relay"], q["in"], q["out"])
            + relay_route(routes["raw"], q["rawin"], q["rawout"], raw=True)
            + adapter_route(routes["fail"], q["failin"], q["failout"], f'{{type: "{FAILS}"}}'),
        )
        started = time.monotonic()
        result = run_flow(pipeline)
        seconds = time.monotonic() - started
        assert result.returncode == 0, result.stderr[-3000:]
        out = collectors["out"].wait_for(N + PLAIN, 20)
        raw_out = collectors["rawout"].wait_for(2 * PLAIN, 10)
        dead = {
            "relay": dead_collectors["relay"].wait_for(1, 10),
            "fail": dead_collectors["fail"].wait_for(FAILING, 10),
            "raw": dead_collectors["raw"].settle(),
        }
        fail_out = collectors["failout"].settle()
        # what the flow did not ack, a new consumer on its subscription gets again
        left = {
            name: broker.leftover(q[queue], f"{routes[name]}-processors")
            for name, queue in (("relay", "in"), ("raw", "rawin"), ("fail", "failin"))
        }
    finally:
        for collector in [*collectors.values(), *dead_collectors.values()]:
            collector.stop()
    print(f"{broker.name}: relay run of {N + PLAIN + 1 + 2 * PLAIN + FAILING} took {seconds:.1f}s")
    return RelayRun(broker, routes, sent, raw_sent, out, raw_out, fail_out, dead, left, seconds)


def test_every_message_arrives_exactly_once_with_its_envelope(relay: RelayRun) -> None:
    envelopes = [unpack(r) for r in relay.out]
    ids = Counter(e["message_id"] for e in envelopes)
    duplicates = {i: c for i, c in ids.items() if c > 1}
    assert not duplicates, f"{len(duplicates)} messages arrived more than once"
    by_id = {e["message_id"]: e for e in envelopes}
    missing = [m.message_id for m in relay.sent if m.message_id not in by_id]
    assert not missing, f"{len(missing)} of {N} messages lost"
    for message in relay.sent:
        out = by_id[message.message_id]
        assert out["payload"] == message.payload
        assert out["metadata"] == message.metadata
        assert out["correlation_id"] == message.correlation_id
        assert out["timestamp"] == message.timestamp
        assert out["route_id"] == relay.routes["relay"]
    assert all(r.headers.get("factflow-format") == "envelope" for r in relay.out)


def test_plain_json_from_a_foreign_producer_is_read_on_an_envelope_queue(
    relay: RelayRun,
) -> None:
    payloads = [unpack(r)["payload"] for r in relay.out]
    plain = sorted(p["plain"] for p in payloads if isinstance(p, dict) and "plain" in p)
    assert plain == list(range(PLAIN))


def test_raw_queue_round_trips_payload_and_headers(relay: RelayRun) -> None:
    assert len(relay.raw_out) == 2 * PLAIN, [r.body for r in relay.raw_out]
    bodies = [json.loads(r.body) for r in relay.raw_out]
    assert sorted(b["raw"] for b in bodies if "raw" in b) == list(range(PLAIN))
    assert sorted(b["foreign"] for b in bodies if "foreign" in b) == list(range(PLAIN))
    for record, body in zip(relay.raw_out, bodies, strict=True):
        headers = record.headers
        assert headers.get("factflow-route-id") == relay.routes["raw"]
        assert headers.get("factflow-message-id")
        if "raw" in body:
            j = body["raw"]
            assert headers["factflow-message-id"].endswith(f"-{j}")
            assert headers["factflow-message-id"].startswith("raw-id-")
            assert headers["factflow-correlation-id"] == f"raw-corr-{j}"
            assert json.loads(headers["factflow-metadata"]) == {"j": j}
    assert not relay.dead["raw"]


def test_undecodable_body_goes_to_the_routes_dead_letter_queue(relay: RelayRun) -> None:
    [record] = relay.dead["relay"]
    letter = unpack(record)
    assert letter["reason"] == "undecodable"
    assert letter["route_id"] == relay.routes["relay"]
    assert letter["error"], letter
    assert record.headers.get("factflow-reason") == "undecodable"
    assert record.headers.get("factflow-error")


def test_failing_adapter_dead_letters_with_the_error(relay: RelayRun) -> None:
    assert not relay.fail_out
    letters = [unpack(r) for r in relay.dead["fail"]]
    assert sorted(letter["message"]["payload"]["f"] for letter in letters) == list(range(FAILING))
    for record, letter in zip(relay.dead["fail"], letters, strict=True):
        assert letter["route_id"] == relay.routes["fail"]
        assert letter["reason"] == "failed"
        assert letter["error_type"] == "RuntimeError"
        assert "always fails" in letter["error"]
        assert letter["attempts"] == 1
        headers = record.headers
        assert headers.get("factflow-reason") == "failed"
        assert headers.get("factflow-error-type") == "RuntimeError"
        assert "always fails" in headers.get("factflow-error", "")
        assert headers.get("factflow-route-id") == relay.routes["fail"]


def test_every_input_is_acked_once_the_run_ends(relay: RelayRun) -> None:
    # for Kafka: the consumer group's lag, committed from the snapshots
    assert relay.left == {"relay": 0, "raw": 0, "fail": 0}
