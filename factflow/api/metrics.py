"""Prometheus metrics: HTTP requests by route, this instance's executions, and the
metrics of the worker processes it launched (per route and adapter, summed over each
execution's processes; docs/operations.md lists them).

Each app has its own `CollectorRegistry` (tests build many apps in one process).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from factflow.dataflows.metrics import merge_worker_metrics
from factflow.server.supervisor import Supervisor


class SupervisorCollector(Collector):
    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def collect(self) -> Iterator[Metric]:
        running = GaugeMetricFamily(
            "factflow_executions_running", "executions whose workers this instance runs"
        )
        running.add_metric([], len(self.supervisor.local_executions()))
        yield running
        launched = CounterMetricFamily(
            "factflow_executions_launched", "executions launched or resumed by this instance"
        )
        launched.add_metric([], self.supervisor.launched)
        yield launched
        finished = CounterMetricFamily(
            "factflow_executions_finished",
            "executions this instance saw finish",
            labels=["status"],
        )
        for status, count in sorted(self.supervisor.finished.items()):
            finished.add_metric([status], count)
        yield finished
        restarts = CounterMetricFamily(
            "factflow_execution_restarts",
            "times this instance restarted an execution's processes after one died",
        )
        restarts.add_metric([], self.supervisor.restarts)
        yield restarts
        yield from _merged(
            merge_worker_metrics(self.supervisor.worker_metric_texts(execution_id))
            for execution_id in self.supervisor.metric_executions()
        )


def _merged(runs: Iterator[list[Metric]]) -> Iterator[Metric]:
    """One family per name across executions (their samples differ by execution_id)."""
    families: dict[str, Metric] = {}
    for run in runs:
        for family in run:
            into = families.setdefault(family.name, family)
            if into is not family:
                into.samples.extend(family.samples)
    yield from families.values()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "factflow_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "factflow_http_request_duration_seconds",
            "HTTP request latency (to the response start)",
            ["method", "route"],
            registry=self.registry,
        )

    def watch(self, supervisor: Supervisor) -> None:
        self.registry.register(SupervisorCollector(supervisor))


class MetricsMiddleware:
    """Counts requests by route template (not raw path, to keep label cardinality low)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope["method"]

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                # the router stores the matched route in the (shared) scope
                route = str(getattr(scope.get("route"), "path", "unmatched"))
                self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
                self.metrics.requests.labels(method, route, str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, timed_send)
