"""Prometheus metrics of one worker process, per route and per adapter.

Every worker process has one registry (`worker_metrics()`); the names are in
docs/operations.md. It is served over HTTP when FACTFLOW_METRICS_PORT is set (port plus
the Bytewax process id, so several processes share a host), and written in the text
format with the progress counters twice a second (`<progress dir>/<pid>.prom`, and the
process's `worker_counters` row in Postgres, where the server that launched the process
reads it for `/api/v1/system/metrics`, whichever host the process runs on). Recording is
a labelled child's `inc` (a lock and an add) once per batch: the children are made once
per route and step, and an adapter step counts a batch's calls in a `CallTally` (plain
adds, no lock) that goes into its metrics when the batch ends, so the metrics of a batch
show once it is done. Prometheus updates per message were ~30% of a relay's worker CPU.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from factflow.connectors.protocol import LagReporter
from factflow.dataflows.wrapped_source import WrappedPartition
from factflow.outage import waiting

# adapter calls range from microseconds (passthrough) to minutes (an LLM, a browser)
LATENCY_BUCKETS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
EPOCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)

ROUTE_LABELS = ("execution_id", "route")
ADAPTER_LABELS = ("execution_id", "route", "stage", "adapter")
OUTCOMES = ("completed", "filtered", "failed", "dead_lettered")


class WorkerMetrics:
    """The metric families of a worker process (see docs/operations.md)."""

    def __init__(self, execution_id: str = "") -> None:
        self.execution_id = execution_id
        self.registry = CollectorRegistry()
        r = self.registry
        self.route_in = Counter(
            "factflow_route_messages_in", "messages a route took in", ROUTE_LABELS, registry=r
        )
        self.route_out = Counter(
            "factflow_route_messages_out", "messages a route emitted", ROUTE_LABELS, registry=r
        )
        self.route_dead = Counter(
            "factflow_route_dead_letters",
            "messages a route dead-lettered",
            ROUTE_LABELS,
            registry=r,
        )
        self.route_in_flight = Gauge(
            "factflow_route_in_flight",
            "messages inside one of the route's adapter steps now",
            ROUTE_LABELS,
            registry=r,
        )
        self.adapter_calls = Counter(
            "factflow_adapter_calls",
            "adapter invocations by outcome (completed, filtered, failed, dead_lettered)",
            [*ADAPTER_LABELS, "outcome"],
            registry=r,
        )
        self.adapter_retries = Counter(
            "factflow_adapter_retries",
            "attempts retried after a failure",
            ADAPTER_LABELS,
            registry=r,
        )
        self.adapter_latency = BatchHistogram(
            "factflow_adapter_duration_seconds",
            "time of one adapter call (one attempt)",
            ADAPTER_LABELS,
            LATENCY_BUCKETS,
        )
        r.register(self.adapter_latency)
        self.epoch = Histogram(
            "factflow_epoch_duration_seconds",
            "time between two snapshots of a source partition (one epoch)",
            ["execution_id", "source"],
            buckets=EPOCH_BUCKETS,
            registry=r,
        )
        self.source_lag = Gauge(
            "factflow_source_lag_messages",
            "messages waiting on the broker for a source (label route: the routes reading it)",
            ["execution_id", "route", "queue"],
            registry=r,
        )
        self._lags: dict[tuple[str, str, str], QueueLag] = {}
        self._lags_lock = threading.Lock()
        r.register(_WaitingCollector(execution_id))

    def route(self, route_id: str) -> RouteMetrics:
        labels = (self.execution_id, route_id)
        return RouteMetrics(
            self.route_in.labels(*labels),
            self.route_out.labels(*labels),
            self.route_dead.labels(*labels),
            self.route_in_flight.labels(*labels),
        )

    def adapter(self, route_id: str, stage: str, adapter: str) -> AdapterCallMetrics:
        labels = (self.execution_id, route_id, stage, adapter)
        return AdapterCallMetrics(
            {o: self.adapter_calls.labels(*labels, o) for o in OUTCOMES},
            self.adapter_retries.labels(*labels),
            self.adapter_latency.labels(*labels),
        )

    def queue_lag(self, queue: str, route_ids: Iterable[str]) -> QueueLag:
        """One per source and process: the partitions of a source in this process share it."""
        labels = (self.execution_id, ",".join(route_ids), queue)
        with self._lags_lock:
            if labels not in self._lags:
                self._lags[labels] = QueueLag(self.source_lag, labels)
            return self._lags[labels]

    def text(self) -> bytes:
        return generate_latest(self.registry)

    def write(self, path: Path, text: bytes) -> None:
        """`text` (as `text()` rendered it) to `path`, atomically (the server may be
        reading it)."""
        tmp = path.with_suffix(".prom.tmp")
        tmp.write_bytes(text)
        tmp.replace(path)

    def serve(self, port: int) -> None:
        """An HTTP endpoint for Prometheus (a daemon thread)."""
        from prometheus_client import start_http_server

        start_http_server(port, registry=self.registry)


class _WaitingCollector(Collector):
    """`factflow_waiting`: the sources and sinks that wait for a broker or Postgres now
    (factflow/outage.py), read when the metrics are written or scraped."""

    def __init__(self, execution_id: str) -> None:
        self._execution_id = execution_id

    def collect(self) -> list[Metric]:
        family = GaugeMetricFamily(
            "factflow_waiting",
            "sources and sinks waiting for a broker or Postgres that went away",
            labels=["execution_id", "what"],
        )
        for w in waiting():
            family.add_metric([self._execution_id, w.what], w.waiters)
        return [family]

    def describe(self) -> list[Metric]:
        return []  # the labels come and go with outages: collect at every scrape


@dataclass(frozen=True, slots=True)
class RouteMetrics:
    messages_in: Any
    messages_out: Any
    dead_letters: Any
    in_flight: Any


class BatchHistogram(Collector):
    """A labelled histogram that takes a batch of observations at once (`add`), which
    prometheus_client's Histogram cannot: it takes one per call, each under a lock. Its
    text format is the same as a Histogram's (without the `_created` sample)."""

    def __init__(
        self, name: str, documentation: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> None:
        self.name, self.documentation, self.label_names = name, documentation, tuple(labels)
        self.bounds = tuple(buckets)
        # `le` as prometheus_client writes it: "0.0005", "1.0", "300.0"
        self._le = [repr(float(b)) for b in self.bounds] + ["+Inf"]
        self._children: dict[tuple[str, ...], HistogramChild] = {}
        self._lock = threading.Lock()

    def labels(self, *values: str) -> HistogramChild:
        with self._lock:
            child = self._children.get(values)
            if child is None:
                child = self._children[values] = HistogramChild(len(self.bounds) + 1)
            return child

    def collect(self) -> list[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=list(self.label_names))
        with self._lock:
            children = list(self._children.items())
        for values, child in children:
            counts, total = child.read()
            cumulative, running = [], 0
            for le, count in zip(self._le, counts, strict=True):
                running += count
                cumulative.append((le, float(running)))
            family.add_metric(list(values), cumulative, total)
        return [family]

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=self.label_names)]


class HistogramChild:
    """One label set's buckets (not cumulative; the last one is +Inf) and sum."""

    __slots__ = ("_counts", "_lock", "_sum")

    def __init__(self, buckets: int) -> None:
        self._counts = [0] * buckets
        self._sum = 0.0
        self._lock = threading.Lock()

    def add(self, counts: Sequence[int], total: float) -> None:
        with self._lock:
            mine = self._counts
            for index, count in enumerate(counts):
                if count:
                    mine[index] += count
            self._sum += total

    def read(self) -> tuple[list[int], float]:
        with self._lock:
            return list(self._counts), self._sum


class CallTally:
    """One batch's adapter attempts of one step, counted with plain adds (a batch runs on
    one thread) and added to the step's metrics once, by `AdapterCallMetrics.add`."""

    __slots__ = ("buckets", "outcomes", "retries", "seconds")

    def __init__(self) -> None:
        self.outcomes = dict.fromkeys(OUTCOMES, 0)
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.seconds = 0.0
        self.retries = 0

    def call(self, started: float, outcome: str) -> None:
        """One attempt that began at `started` (perf_counter) ended with `outcome`."""
        elapsed = time.perf_counter() - started
        self.seconds += elapsed
        # the first bound >= elapsed: Prometheus buckets count values <= their bound
        self.buckets[bisect_left(LATENCY_BUCKETS, elapsed)] += 1
        self.outcomes[outcome] += 1

    def dead_lettered(self) -> None:
        self.outcomes["dead_lettered"] += 1


@dataclass(frozen=True, slots=True)
class AdapterCallMetrics:
    calls: dict[str, Any]
    retries: Any
    latency: HistogramChild

    def add(self, tally: CallTally) -> None:
        """A batch's attempts, counted in `tally`."""
        for outcome, count in tally.outcomes.items():
            if count:
                self.calls[outcome].inc(count)
        if tally.retries:
            self.retries.inc(tally.retries)
        self.latency.add(tally.buckets, tally.seconds)


class QueueLag:
    """The lag gauge of one source in this process: the sum over its partitions here
    (several workers of a process may each hold some)."""

    def __init__(self, gauge: Gauge, labels: tuple[str, str, str]) -> None:
        self._gauge, self._labels = gauge, labels
        self._parts: dict[str, int] = {}
        self._lock = threading.Lock()

    def report(self, part: str, value: int | None) -> None:
        """`value` None forgets the partition (it closed). The labelled gauge is made at
        the first sample: before it the lag is unknown, not 0."""
        with self._lock:
            if value is None:
                if self._parts.pop(part, None) is None:
                    return
            else:
                self._parts[part] = value
            self._gauge.labels(*self._labels).set(sum(self._parts.values()))


_metrics: WorkerMetrics | None = None
_lock = threading.Lock()


def worker_metrics() -> WorkerMetrics:
    """This process's metrics (made on first use; `start_worker_metrics` names the
    execution)."""
    global _metrics
    with _lock:
        if _metrics is None:
            _metrics = WorkerMetrics()
        return _metrics


def start_worker_metrics(execution_id: str, port: int | None, process_id: int) -> WorkerMetrics:
    """Label this process's metrics with its execution and serve them on `port +
    process_id` when a port is set (before the dataflow is built: the children are made
    while building)."""
    global _metrics
    with _lock:
        _metrics = WorkerMetrics(execution_id)
    if port is not None:
        _metrics.serve(port + process_id)
    return _metrics


class _TimedPartition(WrappedPartition[Any, Any]):
    def __init__(self, inner: StatefulSourcePartition[Any, Any], epoch: Any) -> None:
        super().__init__(inner)
        self._epoch = epoch
        self._last = time.perf_counter()

    def snapshot(self) -> Any:
        now = time.perf_counter()
        self._epoch.observe(now - self._last)
        self._last = now
        return super().snapshot()


class TimedSource(FixedPartitionedSource[Any, Any]):
    """A source whose partitions report each epoch's duration (Bytewax snapshots every
    partition once an epoch)."""

    def __init__(self, inner: FixedPartitionedSource[Any, Any], name: str) -> None:
        self._inner = inner
        self._name = name

    def list_parts(self) -> list[str]:
        return self._inner.list_parts()

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _TimedPartition:
        metrics = worker_metrics()
        epoch = metrics.epoch.labels(metrics.execution_id, self._name)
        return _TimedPartition(self._inner.build_part(step_id, for_part, resume_state), epoch)


LAG_SAMPLE_SECONDS = 2.0
"""How often a source partition asks its broker client for its lag (at its next batch)."""
LAG_RETRY_SECONDS = 0.5
"""How soon it asks again when the client had no answer."""


class _LagPartition(WrappedPartition[Any, Any]):
    def __init__(self, inner: Any, part: str, lag: QueueLag) -> None:
        super().__init__(inner)
        self._reporter: LagReporter = inner
        self._part, self._lag = part, lag
        self._sample_at = 0.0

    def next_batch(self) -> list[Any]:
        batch = super().next_batch()
        now = time.monotonic()
        if now >= self._sample_at:
            value = self._reporter.lag()
            if value is None:  # not known yet (a first fetch, a reconnect): ask again soon
                self._sample_at = now + LAG_RETRY_SECONDS
            else:
                self._sample_at = now + LAG_SAMPLE_SECONDS
                self._lag.report(self._part, value)
        return batch

    def close(self) -> None:
        self._lag.report(self._part, None)
        super().close()


class LagSource(FixedPartitionedSource[Any, Any]):
    """A broker source whose partitions report `factflow_source_lag_messages` for `queue`
    (where the connector's partitions are a `LagReporter`), sampled every
    LAG_SAMPLE_SECONDS when Bytewax asks for the next batch: a busy worker samples late,
    never per message."""

    def __init__(
        self, inner: FixedPartitionedSource[Any, Any], queue: str, route_ids: list[str]
    ) -> None:
        self._inner, self._queue, self._route_ids = inner, queue, route_ids

    def list_parts(self) -> list[str]:
        return self._inner.list_parts()

    def build_part(
        self, step_id: str, for_part: str, resume_state: Any
    ) -> StatefulSourcePartition[Any, Any]:
        part = self._inner.build_part(step_id, for_part, resume_state)
        if not isinstance(part, LagReporter):
            return part
        # a queue-wide count is reported by one partition only (Bytewax builds each
        # partition in exactly one worker): the server's sum over processes stays right
        if part.lag_covers_queue and for_part != self._inner.list_parts()[0]:
            return part
        return _LagPartition(
            part, for_part, worker_metrics().queue_lag(self._queue, self._route_ids)
        )


def merge_worker_metrics(texts: Iterable[str]) -> list[Metric]:
    """The metrics the worker processes of a run reported (their text format, from
    `worker_counters`), summed over the processes sample by sample: counters, histogram
    buckets and in-flight gauges add up. `_created` samples (a per-process start time)
    are left out."""
    families: dict[str, Metric] = {}
    totals: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            families.setdefault(family.name, Metric(family.name, family.documentation, family.type))
            samples = totals.setdefault(family.name, {})
            for sample in family.samples:
                if sample.name.endswith("_created"):
                    continue
                key = (sample.name, tuple(sorted(sample.labels.items())))
                samples[key] = samples.get(key, 0.0) + sample.value
    for name, samples in totals.items():
        for (sample_name, labels), value in samples.items():
            families[name].add_sample(sample_name, dict(labels), value)
    return [family for family in families.values() if family.samples]
