"""Worker metrics through the server: the processes of an execution write theirs, the
server that launched them sums them per route and adapter on /api/v1/system/metrics.

The shipped text pipeline with two documents and its init message: 3 documents into
`ingest`, split into 8 paragraphs, 2 of which `deduplicate` drops as repeats.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.api.conftest import MakeApp


def _samples(text: str, execution_id: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("execution_id") == execution_id:
                labels = {k: v for k, v in sample.labels.items() if k != "execution_id"}
                found[(sample.name, frozenset(labels.items()))] = sample.value
    return found


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_route_and_adapter_metrics_of_a_two_process_execution(
    make_app: MakeApp,
    start_text: Callable[..., dict[str, Any]],
    wait_status: Callable[..., dict[str, Any]],
) -> None:
    api: TestClient = make_app()
    execution_id = start_text(api, processes=2)["execution_id"]
    wait_status(api, execution_id, ("completed",))

    response = api.get("/api/v1/system/metrics")
    assert response.status_code == 200
    samples = _samples(response.text, execution_id)
    assert _value(samples, "factflow_route_messages_in_total", route="ingest") == 3
    assert _value(samples, "factflow_route_messages_out_total", route="ingest") == 8
    assert _value(samples, "factflow_route_messages_in_total", route="dedupe") == 8
    assert _value(samples, "factflow_route_messages_out_total", route="dedupe") == 6
    assert _value(samples, "factflow_route_in_flight", route="dedupe") == 0
    dedupe = {"route": "dedupe", "stage": "deduplicate", "adapter": "deduplicate"}
    assert _value(samples, "factflow_adapter_calls_total", **dedupe, outcome="completed") == 6
    assert _value(samples, "factflow_adapter_calls_total", **dedupe, outcome="filtered") == 2
    assert _value(samples, "factflow_adapter_calls_total", **dedupe, outcome="dead_lettered") == 0
    split = {"route": "ingest", "stage": "split", "adapter": "split"}
    # the latency histogram: one observation a call, every call within the last bucket
    assert _value(samples, "factflow_adapter_duration_seconds_count", **split) == 3
    assert _value(samples, "factflow_adapter_duration_seconds_bucket", **split, le="+Inf") == 3
    assert _value(samples, "factflow_adapter_duration_seconds_sum", **split) > 0
    epochs = [
        v for (name, _), v in samples.items() if name == "factflow_epoch_duration_seconds_count"
    ]
    assert epochs and sum(epochs) >= 1, "sources report their epochs"


def test_dead_letters_and_retries_are_counted(
    make_app: MakeApp, wait_status: Callable[..., dict[str, Any]]
) -> None:
    api: TestClient = make_app()
    pipeline = """
version: "1.0"
name: failing
queue: {provider: file, path: ./queues}
error_handling: {max_retries: 1, retry_delay_seconds: 0}
routes:
  r:
    inbound: {queue: in}
    adapters:
      - type: "tests.e2e.adapters_for_tests:AlwaysFails"
    outbound: out
"""
    response = api.post(
        "/api/v1/executions",
        json={"pipeline_yaml": pipeline, "inputs": {"in": [{"n": 1}, {"n": 2}]}},
    )
    assert response.status_code == 201, response.text
    execution_id = response.json()["execution_id"]
    wait_status(api, execution_id, ("completed",))
    samples = _samples(api.get("/api/v1/system/metrics").text, execution_id)
    step = {
        "route": "r",
        "stage": "AlwaysFails",
        "adapter": "tests.e2e.adapters_for_tests:AlwaysFails",
    }
    assert _value(samples, "factflow_adapter_calls_total", **step, outcome="failed") == 4
    assert _value(samples, "factflow_adapter_retries_total", **step) == 2
    assert _value(samples, "factflow_adapter_calls_total", **step, outcome="dead_lettered") == 2
    assert _value(samples, "factflow_route_dead_letters_total", route="r") == 2
