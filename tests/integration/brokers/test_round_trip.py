"""The mq-diagnostic round trip on every broker, through the provider's own connector."""

from __future__ import annotations

import gc

import pytest

from factflow.compiler.plan import QueueSettings
from factflow.connectors.roundtrip import round_trip
from tests.integration.brokers.clients import Broker

# a port nothing listens on, on this machine
DEAD_URLS = {
    "rabbitmq": "amqp://guest:guest@127.0.0.1:1/",
    "stomp": "stomp://artemis:artemis@127.0.0.1:1",
    "pulsar": "pulsar://127.0.0.1:1",
    "kafka": "127.0.0.1:1",
}


def test_a_probe_message_goes_round_the_broker_and_its_queue_is_removed(broker: Broker) -> None:
    result = round_trip(QueueSettings(broker.provider, broker.url, None, {}, "json"))
    assert result["status"] == "ok", result
    assert result["error"] is None
    assert result["latency_ms"] > 0
    assert "mq-diagnostic" in result["queue"]


# aiormq drops a `Connection.close()` coroutine unawaited when a connect is refused: the
# warning is collected here, not in whichever test the garbage collector runs next
@pytest.mark.filterwarnings("ignore:coroutine 'Connection.close' was never awaited")
def test_an_unreachable_broker_fails_with_its_error_and_no_password(broker: Broker) -> None:
    settings = QueueSettings(broker.provider, DEAD_URLS[broker.provider], None, {}, "json")
    result = round_trip(settings, timeout=20)
    gc.collect()
    assert result["status"] == "failed"
    assert result["error"]
    assert "guest:guest" not in str(result) and "artemis:artemis" not in str(result)
