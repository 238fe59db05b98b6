"""The plan: what a validated pipeline means, in the terms the runtime needs.

Routes with their resolved settings, edges (queues written and read inside the pipeline),
sources and sinks (queues on the provider), the init message, dead-letter queues, and
stable step ids. The runtime, the server and the docs read this, never the YAML.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from factflow.adapters.registry import AdapterRegistry
from factflow.compiler.config import (
    ErrorHandlingConfig,
    PipelineConfig,
    RouteConfig,
    TriggerConfig,
)
from factflow.compiler.graph import QueueGraph
from factflow.conditions import ConditionConfig
from factflow.providers.registry import get_provider
from factflow.types import JsonDict

DEFAULT_PROVIDER = "memory"
DEFAULT_MAX_RETRIES = 3
DEFAULT_RETRY_DELAY_SECONDS = 1.0
DEFAULT_MAX_RETRY_DELAY_SECONDS = 60.0
DEFAULT_BREAKER_THRESHOLD = 5
DEFAULT_BREAKER_RESET_SECONDS = 30.0
DEFAULT_TARGET_LATENCY_MS = 500.0

_STEP_CHARS = re.compile(r"[^A-Za-z0-9_]+")


def step_id(route_id: str, index: int, type_name: str) -> str:
    """A Bytewax step id from the route id, adapter index and type only.

    Nothing else goes in, so recovery snapshots survive unrelated YAML edits; Bytewax
    forbids '.' in step ids, hence the underscores.
    """
    return _STEP_CHARS.sub("_", f"{route_id}__{index}_{type_name}")


@dataclass(frozen=True, slots=True)
class AdapterStep:
    index: int
    type: str
    stage: str
    step_id: str
    config: JsonDict
    condition: ConditionConfig | None
    store: bool
    stateful: bool


@dataclass(frozen=True, slots=True)
class Outbound:
    queue: str
    condition: ConditionConfig | None
    format: str


@dataclass(frozen=True, slots=True)
class WriterStep:
    """An outbound `sink:`: a writer that takes the route's results (where its condition
    holds) instead of a queue."""

    index: int
    type: str
    config: JsonDict
    condition: ConditionConfig | None
    step_id: str


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int
    retry_delay_seconds: float
    backoff: str
    max_retry_delay_seconds: float
    circuit_breaker_threshold: int
    circuit_breaker_reset_seconds: float

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        if self.backoff == "fixed":
            return self.retry_delay_seconds
        return float(
            min(self.retry_delay_seconds * 2 ** (attempt - 1), self.max_retry_delay_seconds)
        )


@dataclass(frozen=True, slots=True)
class ConcurrencyPolicy:
    initial: int
    minimum: int
    maximum: int
    target_latency_ms: float


@dataclass(frozen=True, slots=True)
class RoutePlan:
    id: str
    name: str
    description: str | None
    inbound_queue: str
    subscription: str
    external: bool
    format: str
    prefetch: int
    adapters: tuple[AdapterStep, ...]
    outbound: tuple[Outbound, ...]
    writers: tuple[WriterStep, ...]
    key: str | None
    loop: bool
    retry: RetryPolicy
    concurrency: ConcurrencyPolicy
    dead_letter_queue: str
    stateful: bool


@dataclass(frozen=True, slots=True)
class Edge:
    queue: str
    from_route: str
    to_route: str


SCOPE_EXECUTION = "execution"
SCOPE_GLOBAL = "global"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A queue on the provider: a source read by `routes`, or a sink written by them.

    `scope` is `execution` for a queue the pipeline both feeds and reads (its name on the
    provider then carries the execution id), `global` for one an outside producer or
    consumer shares.
    """

    queue: str
    provider: str
    routes: tuple[str, ...]
    scope: str = SCOPE_GLOBAL


@dataclass(frozen=True, slots=True)
class InitMessage:
    route: str
    queue: str
    payload: JsonDict
    metadata: JsonDict


@dataclass(frozen=True, slots=True)
class DeadLetters:
    route: str
    queue: str
    provider: str


@dataclass(frozen=True, slots=True)
class QueueSettings:
    provider: str
    url: str | None
    path: str | None
    options: JsonDict
    format: str


@dataclass(frozen=True)
class Plan:
    pipeline: str
    version: str
    description: str | None
    config_hash: str
    queue: QueueSettings
    storage_uri: str | None
    idle_timeout_seconds: float | None
    routes: tuple[RoutePlan, ...]
    edges: tuple[Edge, ...]
    sources: tuple[Endpoint, ...]
    sinks: tuple[Endpoint, ...]
    init_message: InitMessage | None
    dead_letters: tuple[DeadLetters, ...]
    scoped_queues: frozenset[str] = frozenset()
    triggers: tuple[TriggerConfig, ...] = ()
    """factflow: what starts executions of the config (the server registers them when the
    config is saved); workers ignore them."""

    def queue_name(self, queue: str, execution_id: str, provider: str | None = None) -> str:
        """`queue`'s name on the provider for one execution (scoped queues carry its id)."""
        if queue not in self.scoped_queues:
            return queue
        return get_provider(provider or self.queue.provider).scoped_queue(queue, execution_id)

    @property
    def drains(self) -> bool:
        """Whether the execution can end by itself: every source the provider holds is
        scoped, so once they are empty and nothing is in flight no message can arrive."""
        return all(s.scope == SCOPE_EXECUTION for s in self.sources)

    def route(self, route_id: str) -> RoutePlan:
        for route in self.routes:
            if route.id == route_id:
                return route
        msg = f"no route '{route_id}' in pipeline '{self.pipeline}'"
        raise KeyError(msg)

    @property
    def step_ids(self) -> list[str]:
        return [a.step_id for r in self.routes for a in r.adapters]

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data (`factflow compile --output json`)."""
        return {
            "pipeline": self.pipeline,
            "version": self.version,
            "description": self.description,
            "config_hash": self.config_hash,
            "queue": asdict(self.queue),
            "storage_uri": self.storage_uri,
            "routes": [_route_dict(r) for r in self.routes],
            "edges": [
                {"queue": e.queue, "from": e.from_route, "to": e.to_route} for e in self.edges
            ],
            "sources": [asdict(s) for s in self.sources],
            "sinks": [asdict(s) for s in self.sinks],
            "init_message": asdict(self.init_message) if self.init_message else None,
            "dead_letters": [asdict(d) for d in self.dead_letters],
            "scoped_queues": sorted(self.scoped_queues),
            "triggers": [
                t.model_dump(mode="json", by_alias=True, exclude_defaults=True)
                for t in self.triggers
            ],
        }


def _condition_dict(condition: ConditionConfig | None) -> JsonDict | None:
    if condition is None:
        return None
    return condition.model_dump(by_alias=True, exclude_none=True)


def _route_dict(route: RoutePlan) -> JsonDict:
    return {
        "id": route.id,
        "name": route.name,
        "inbound": {
            "queue": route.inbound_queue,
            "subscription": route.subscription,
            "external": route.external,
            "format": route.format,
            "prefetch": route.prefetch,
        },
        "adapters": [
            {
                "index": a.index,
                "type": a.type,
                "stage": a.stage,
                "step_id": a.step_id,
                "stateful": a.stateful,
                "store": a.store,
                "condition": _condition_dict(a.condition),
            }
            for a in route.adapters
        ],
        "outbound": [
            {"queue": o.queue, "condition": _condition_dict(o.condition)} for o in route.outbound
        ],
        "sinks": [
            {
                "type": w.type,
                "config": w.config,
                "step_id": w.step_id,
                "condition": _condition_dict(w.condition),
            }
            for w in route.writers
        ],
        "key": route.key,
        "stateful": route.stateful,
        "retry": asdict(route.retry),
        "concurrency": asdict(route.concurrency),
        "dead_letter_queue": route.dead_letter_queue,
    }


def _retry(config: PipelineConfig, route: RouteConfig) -> RetryPolicy:
    merged = ErrorHandlingConfig.model_validate(
        {
            **(
                config.error_handling.model_dump(exclude_none=True) if config.error_handling else {}
            ),
            **(route.error_handling.model_dump(exclude_none=True) if route.error_handling else {}),
        }
    )
    return RetryPolicy(
        max_retries=_or(merged.max_retries, DEFAULT_MAX_RETRIES),
        retry_delay_seconds=_or(merged.retry_delay_seconds, DEFAULT_RETRY_DELAY_SECONDS),
        backoff=merged.backoff or "exponential",
        max_retry_delay_seconds=_or(
            merged.max_retry_delay_seconds, DEFAULT_MAX_RETRY_DELAY_SECONDS
        ),
        circuit_breaker_threshold=_or(merged.circuit_breaker_threshold, DEFAULT_BREAKER_THRESHOLD),
        circuit_breaker_reset_seconds=_or(
            merged.circuit_breaker_reset_seconds, DEFAULT_BREAKER_RESET_SECONDS
        ),
    )


def _external(route: RouteConfig) -> bool:
    """Read through the queue provider: asked for, or a loop (a dataflow has no cycles,
    so the loop closes through the provider's queue)."""
    return route.inbound.external or route.loop


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _concurrency(config: PipelineConfig, route: RouteConfig) -> ConcurrencyPolicy:
    top = config.backpressure.model_dump(exclude_none=True) if config.backpressure else {}
    own = route.backpressure.model_dump(exclude_none=True) if route.backpressure else {}
    merged = {**top, **own}
    initial = route.inbound.concurrency
    maximum = max(merged.get("max_concurrency", initial), initial)
    minimum = min(merged.get("min_concurrency", 1), maximum)
    return ConcurrencyPolicy(
        initial=initial,
        minimum=minimum,
        maximum=maximum,
        target_latency_ms=merged.get("target_latency_ms", DEFAULT_TARGET_LATENCY_MS),
    )


def _dead_letter_queue(config: PipelineConfig, route_id: str, provider: str) -> str:
    route = config.routes[route_id]
    for handling in (route.error_handling, config.error_handling):
        if handling is not None and handling.dead_letter_queue:
            return handling.dead_letter_queue
    return get_provider(provider).dead_letter_queue(route_id)


def _stage_name(type_name: str, name: str | None) -> str:
    return name or type_name.rpartition(":")[2]


def build_plan(
    config: PipelineConfig, registry: AdapterRegistry, *, name: str, config_hash: str
) -> Plan:
    """The plan of a pipeline that passed validation."""
    provider = config.queue.provider if config.queue else DEFAULT_PROVIDER
    queue = QueueSettings(
        provider=provider,
        url=config.queue.url if config.queue else None,
        path=config.queue.path if config.queue else None,
        options=dict(config.queue.options) if config.queue else {},
        format=config.queue.format if config.queue else "envelope",
    )
    routes = tuple(
        _route_plan(config, registry, route_id, route, provider)
        for route_id, route in config.routes.items()
    )
    graph = QueueGraph.of(config)
    internal_readers = {
        q: [r for r in readers if not _external(config.routes[r])]
        for q, readers in graph.readers.items()
    }
    edges = tuple(
        Edge(queue, writer, reader)
        for queue, writers in graph.writers.items()
        for writer in writers
        for reader in internal_readers.get(queue, [])
    )
    init = config.init_message
    init_queue = config.routes[init.route].inbound.queue if init else None
    scoped = _scoped_queues(config, graph, provider, init_queue)
    sources = tuple(
        Endpoint(
            queue,
            provider,
            tuple(_source_readers(config, queue, readers, graph)),
            SCOPE_EXECUTION if queue in scoped else SCOPE_GLOBAL,
        )
        for queue, readers in graph.readers.items()
        if _is_source(config, queue, readers, graph, init_queue, scoped)
    )
    sinks = tuple(
        Endpoint(
            queue,
            provider,
            tuple(writers),
            SCOPE_EXECUTION if queue in scoped else SCOPE_GLOBAL,
        )
        for queue, writers in graph.writers.items()
        if not internal_readers.get(queue)
        or any(_external(config.routes[r]) for r in graph.readers.get(queue, []))
    )
    return Plan(
        pipeline=config.name or name,
        version=config.version,
        description=config.description,
        config_hash=config_hash,
        queue=queue,
        storage_uri=config.storage.uri if config.storage else None,
        idle_timeout_seconds=config.idle_timeout_seconds,
        routes=routes,
        edges=edges,
        sources=sources,
        sinks=sinks,
        init_message=(
            InitMessage(init.route, init_queue, dict(init.payload), dict(init.metadata))
            if init and init_queue is not None
            else None
        ),
        dead_letters=tuple(DeadLetters(r.id, r.dead_letter_queue, provider) for r in routes),
        scoped_queues=frozenset(scoped),
        triggers=tuple(config.triggers),
    )


def _scoped_queues(
    config: PipelineConfig, graph: QueueGraph, provider: str, init_queue: str | None
) -> set[str]:
    """Queues the pipeline both feeds (a route writes it, or the init message targets it)
    and reads: the seed system scopes those to the execution, so two executions of one
    config never see each other's messages. `scope:` on an inbound or outbound overrides;
    STOMP topics are broadcast and stay global."""
    explicit: dict[str, str] = {}
    for route in config.routes.values():
        if route.inbound.scope is not None:
            explicit.setdefault(route.inbound.queue, route.inbound.scope)
        for outbound in route.outbound:
            if outbound.scope is not None and outbound.queue is not None:
                explicit.setdefault(outbound.queue, outbound.scope)
    scoped = set()
    for queue in {*graph.readers, *graph.writers}:
        fed = queue in graph.writers or queue == init_queue
        scope = explicit.get(queue, SCOPE_EXECUTION if fed and queue in graph.readers else None)
        if scope == SCOPE_EXECUTION and not get_provider(provider).is_topic(queue):
            scoped.add(queue)
    return scoped


def _source_readers(
    config: PipelineConfig, queue: str, readers: list[str], graph: QueueGraph
) -> list[str]:
    """Who reads `queue` from the provider: a reader fed by an in-pipeline edge does not."""
    if queue not in graph.writers:
        return readers
    return [r for r in readers if _external(config.routes[r])]


def _is_source(
    config: PipelineConfig,
    queue: str,
    readers: list[str],
    graph: QueueGraph,
    init_queue: str | None,
    scoped: set[str],
) -> bool:
    if any(_external(config.routes[r]) for r in readers):
        return True
    if queue in graph.writers:
        return False
    # a queue fed only by the init message needs no source: scoped to the execution, no
    # one else can write it (unless `scope: global` invites outside producers)
    return queue != init_queue or (config.queue is not None and queue not in scoped)


def _route_plan(
    config: PipelineConfig,
    registry: AdapterRegistry,
    route_id: str,
    route: RouteConfig,
    provider: str,
) -> RoutePlan:
    steps = []
    for index, adapter in enumerate(route.adapters):
        cls = registry.resolve(adapter.type)
        store = adapter.store if adapter.store is not None else route.store
        steps.append(
            AdapterStep(
                index=index,
                type=adapter.type,
                stage=_stage_name(adapter.type, adapter.name),
                step_id=step_id(route_id, index, adapter.type),
                config=dict(adapter.config),
                condition=adapter.condition,
                store=True if store is None else store,
                stateful=cls.stateful,
            )
        )
    fmt = route.inbound.format
    if fmt == "envelope" and config.queue is not None:
        fmt = config.queue.format
    return RoutePlan(
        id=route_id,
        name=route.name or route_id,
        description=route.description,
        inbound_queue=route.inbound.queue,
        subscription=route.inbound.subscription or f"{route_id}-processors",
        external=_external(route),
        format=fmt,
        prefetch=route.inbound.prefetch or max(route.inbound.concurrency * 2, 10),
        adapters=tuple(steps),
        outbound=tuple(
            Outbound(o.queue, o.condition, o.format) for o in route.outbound if o.queue is not None
        ),
        writers=tuple(
            WriterStep(
                index=i,
                type=o.sink.type,
                config=dict(o.sink.config),
                condition=o.condition,
                step_id=step_id(route_id, i, f"sink_{o.sink.type}"),
            )
            for i, o in enumerate(route.outbound)
            if o.sink is not None
        ),
        key=route.key,
        loop=route.loop,
        retry=_retry(config, route),
        concurrency=_concurrency(config, route),
        dead_letter_queue=_dead_letter_queue(config, route_id, provider),
        stateful=any(s.stateful for s in steps),
    )
