"""A RabbitMQ connect that fails (the broker unreachable, or the connection opened and
then the queue or exchange refused) closes the connection it made: each retry of a failed
connect makes a new one, so a kept one would stay open at the broker, and a dropped one
is closed by aio_pika's __del__ on whatever loop the garbage collector's thread has."""

from __future__ import annotations

import gc
import socket
import warnings

import aio_pika
import pytest

from factflow.connectors.rabbitmq import RabbitMQSink, RabbitMQSource
from tests.integration.brokers.clients import RabbitMQ, tag
from tests.integration.brokers.conftest import require

pytestmark = [pytest.mark.integration]


def _open_connections(*, collect: bool = True) -> set[int]:
    if collect:
        gc.collect()
    with warnings.catch_warnings():
        # type(), not isinstance(): that would touch lazy module proxies (torch's warn)
        warnings.simplefilter("ignore")
        found = [o for o in gc.get_objects() if issubclass(type(o), aio_pika.Connection)]
    return {id(o) for o in found if not o.is_closed}


def test_a_sink_whose_exchange_is_missing_leaves_no_connection_open() -> None:
    broker = require(RabbitMQ())
    before = _open_connections()
    sink = RabbitMQSink("unused", url=broker.url, exchange=f"ff-{tag()}-missing").build("s", 0, 1)
    for _ in range(3):  # as the sink's retries would
        with pytest.raises(Exception, match="NOT_FOUND"):
            sink._connect()
    assert not _open_connections() - before


def test_a_source_refused_its_queue_leaves_no_connection_open() -> None:
    broker = require(RabbitMQ())
    queue = f"ff-{tag()}-durable"
    broker.prepare([queue])  # durable: a transient declare of it is refused
    before = _open_connections()
    part = RabbitMQSource(queue, url=broker.url, durable=False).build_part("r", "0", None)
    for _ in range(3):
        with pytest.raises(Exception, match="PRECONDITION_FAILED"):
            part._connect()
    assert not _open_connections() - before


def test_a_connect_to_an_unreachable_broker_leaves_no_connection_behind() -> None:
    # no broker needed: nothing listens on the port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    part = RabbitMQSource("q", url=f"amqp://guest:guest@127.0.0.1:{port}/").build_part(
        "r", "0", None
    )
    before = _open_connections()
    gc.disable()  # a dropped connection stays findable instead of being collected
    try:
        for _ in range(3):
            with pytest.raises(Exception, match="Connect call failed"):
                part._connect()
        left = _open_connections(collect=False) - before
    finally:
        gc.enable()
    assert not left, f"{len(left)} failed connects left their connection unclosed"
