"""Fixtures for the broker tests: one parameter per broker peer, skipped (with the reason
printed) when it does not answer; flows run as `python -m bytewax.run` processes."""

from __future__ import annotations

import pytest

from tests.integration.brokers.clients import Broker, all_brokers

BROKERS = {b.name: b for b in all_brokers()}


def require(broker: Broker) -> Broker:
    reason = broker.unreachable()
    if reason is not None:
        print(reason)
        pytest.skip(reason)
    return broker


@pytest.fixture(params=sorted(BROKERS), scope="module")
def broker(request: pytest.FixtureRequest) -> Broker:
    return require(BROKERS[request.param])
