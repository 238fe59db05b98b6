"""Adapter call metrics counted per batch read the same as per-call Prometheus updates."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from factflow.dataflows.metrics import LATENCY_BUCKETS, CallTally, WorkerMetrics

LABELS = ("exec-1", "route-a", "stage-b", "passthrough")


def _samples(text: bytes, prefix: str) -> dict[str, float]:
    """`name{labels}` -> value of the samples starting with `prefix` (no `_created`)."""
    out = {}
    for line in text.decode().splitlines():
        if line.startswith(prefix) and "_created" not in line:
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def test_a_batch_tally_reads_as_prometheus_histogram_observations() -> None:
    durations = [0.0001, 0.0003, 0.003, 0.2, 0.2, 7.0, 400.0]  # off the bucket bounds
    metrics = WorkerMetrics("exec-1")
    step = metrics.adapter(*LABELS[1:])
    tally = CallTally()
    for seconds in durations:
        # a call that began `seconds` ago
        tally.call(time.perf_counter() - seconds, "completed")
    tally.call(time.perf_counter(), "failed")
    tally.retries += 1
    tally.dead_lettered()
    step.add(tally)

    reference = CollectorRegistry()
    histogram = Histogram(
        "factflow_adapter_duration_seconds",
        "time of one adapter call (one attempt)",
        ["execution_id", "route", "stage", "adapter"],
        buckets=LATENCY_BUCKETS,
        registry=reference,
    ).labels(*LABELS)
    for seconds in [*durations, 0.0]:
        histogram.observe(seconds)

    ours = _samples(metrics.text(), "factflow_adapter_duration_seconds")
    theirs = _samples(generate_latest(reference), "factflow_adapter_duration_seconds")
    sum_key = next(k for k in ours if k.startswith("factflow_adapter_duration_seconds_sum"))
    # the clock moved a little between starting and ending each call
    assert abs(ours.pop(sum_key) - theirs.pop(sum_key)) < 0.05
    assert ours == theirs
    calls = _samples(metrics.text(), "factflow_adapter_")
    step_labels = 'adapter="passthrough",execution_id="exec-1"'
    where = 'route="route-a",stage="stage-b"'

    def calls_of(outcome: str) -> float:
        return calls[f'factflow_adapter_calls_total{{{step_labels},outcome="{outcome}",{where}}}']

    assert (calls_of("completed"), calls_of("failed"), calls_of("dead_lettered")) == (7, 1, 1)
    assert calls[f"factflow_adapter_retries_total{{{step_labels},{where}}}"] == 1


def test_tallies_of_several_batches_add_up() -> None:
    metrics = WorkerMetrics("exec-1")
    step = metrics.adapter(*LABELS[1:])
    for _ in range(3):
        tally = CallTally()
        tally.call(time.perf_counter(), "filtered")
        step.add(tally)
    samples = _samples(metrics.text(), "factflow_adapter_duration_seconds_count")
    assert list(samples.values()) == [3.0]
