"""Kafka's `options.partitions`: new topics get that many partitions, and the source has
one partition slot per topic partition."""

from __future__ import annotations

import pytest

from factflow.compiler.plan import QueueSettings
from factflow.connectors.kafka import KafkaSink, KafkaSource
from factflow.connectors.registry import SourceSpec, make_source
from tests.integration.brokers.clients import tag
from tests.integration.brokers.conftest import BROKERS, require

pytestmark = pytest.mark.integration


def test_options_partitions_creates_topics_with_that_many_partitions() -> None:
    kafka = require(BROKERS["kafka"])
    topic = f"parts-{tag()}"
    settings = QueueSettings("kafka", kafka.url, None, {"partitions": 3}, "envelope")
    source = make_source(SourceSpec(queue=topic), settings)
    assert isinstance(source, KafkaSource)
    assert source.list_parts() == ["0", "1", "2"]
    # an existing topic keeps its count
    KafkaSink(topic, url=kafka.url, partitions=5).build("s", 0, 1).close()
    assert KafkaSource(topic, url=kafka.url).list_parts() == ["0", "1", "2"]
