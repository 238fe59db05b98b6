"""Plan -> Bytewax dataflow.

Sources per source queue, the init message, each route's adapters as steps in order,
outbound conditions as filters, in-dataflow edges, sinks per sink queue and one
dead-letter sink per dead-letter queue. Stateless steps are `flat_map_batch` on the
worker that read the message (no exchange: measured 10-25x slower with two workers);
only stateful adapters key the stream.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeGuard, cast

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream
from bytewax.inputs import FixedPartitionedSource, Source

from factflow.adapters.registry import AdapterRegistry, default_registry
from factflow.compiler.plan import SCOPE_EXECUTION, Plan, QueueSettings, RoutePlan
from factflow.conditions import compile_condition, field_getter, is_missing
from factflow.connectors.drain import DrainDetector, DrainingSource, DrainRule, ledger
from factflow.connectors.file import FileSource
from factflow.connectors.init_message import InitSource
from factflow.connectors.postgres import DeadLetterTableSink
from factflow.connectors.registry import SourceSpec, make_sink, make_source
from factflow.dataflows.backpressure import ConcurrencyController
from factflow.dataflows.circuit import CircuitBreaker
from factflow.dataflows.counting import CountingSink
from factflow.dataflows.entries import passes, unmarked
from factflow.dataflows.invoke import AdapterInvoker, Outcome, StepRuntime
from factflow.dataflows.lineage import LineageLog, LineageMark, LineageSink, lineage_log
from factflow.dataflows.metrics import LagSource, RouteMetrics, TimedSource, worker_metrics
from factflow.dataflows.pause import PausableSource, PauseWatcher
from factflow.dataflows.progress import progress
from factflow.dataflows.stateful import AdapterStateLogic
from factflow.dataflows.usage import DbUsageLog, usage_log
from factflow.dataflows.workers import add_worker_probe
from factflow.dataflows.writer_sink import WriterSink
from factflow.deadletter import REASON_UNDECODABLE, DeadLetter, Undecodable
from factflow.exceptions import ConfigurationError
from factflow.llm import LiteLLMClient, LLMConfig
from factflow.messages import Message
from factflow.perthread import PerThread
from factflow.providers.registry import get_provider

_STEP = re.compile(r"[^A-Za-z0-9_]+")


def _sid(name: str) -> str:
    return _STEP.sub("_", name).strip("_") or "q"


@dataclass(frozen=True)
class FlowOptions:
    """How to build the flow: the execution, where stages go, how sources split."""

    execution_id: str
    storage: Any = None
    source_partitions: int = 1
    queue_override: QueueSettings | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    """Queue -> a JSON-lines file read instead of (or as) that queue's source."""
    entries: dict[str, str] = field(default_factory=dict)
    """Route -> a JSON-lines file of messages entering that route part-way
    (`dataflows.entries`: a restart from lineage and storage)."""
    extra_sources: tuple[str, ...] = ()
    """Queues to read from the provider even where the plan has no source for them."""
    database_url: str | None = None
    """With a database: lineage rows, and dead letters of broker-less providers in a table."""
    processes: int = 1
    """Worker processes of the execution: drain detection waits for all of their counters."""
    process_id: int = 0
    """This process's index among them (Bytewax's `-i`)."""
    llm: LLMConfig | None = None
    """The models behind `Context.llm` / `Context.embeddings`; None: adapters get none."""

    @property
    def lineage_execution(self) -> uuid.UUID | None:
        return uuid.UUID(self.execution_id) if self.database_url else None

    def lineage_log(self) -> LineageLog | None:
        """This process's lineage writer for the execution, when lineage is recorded."""
        execution = self.lineage_execution
        if self.database_url is None or execution is None:
            return None
        return lineage_log(self.database_url, execution)

    def usage_log(self) -> DbUsageLog | None:
        """Where this process's adapters' model calls are recorded, with a database."""
        execution = self.lineage_execution
        if self.database_url is None or execution is None:
            return None
        return usage_log(self.database_url, execution)


@dataclass
class _Wiring:
    flow: Dataflow
    queue_inputs: dict[str, list[Stream[Message]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    route_inputs: dict[str, list[Stream[Message]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    outputs: dict[str, list[Stream[Message]]] = field(default_factory=lambda: defaultdict(list))
    dead: dict[str, list[Stream[DeadLetter]]] = field(default_factory=lambda: defaultdict(list))
    lineage: list[Stream[LineageMark]] = field(default_factory=list)
    finite: list[DrainingSource] = field(default_factory=list)
    """Sources that end by themselves, wrapped for drain detection (when it applies)."""
    detector: DrainDetector | None = None


def build_dataflow(
    plan: Plan, options: FlowOptions, registry: AdapterRegistry | None = None
) -> Dataflow:
    registry = registry or default_registry()
    queue = options.queue_override or plan.queue
    wiring = _Wiring(Dataflow(f"factflow_{_sid(plan.pipeline)}"))
    wiring.detector = _drain_detector(plan, queue, options)
    add_worker_probe(wiring.flow)
    _add_sources(plan, queue, options, wiring)
    if plan.init_message is not None:
        init_source: FixedPartitionedSource[Message, bool] = InitSource(
            plan.init_message, options.execution_id
        )
        if options.database_url is not None:
            watcher = _pause_watcher(options.database_url)
            init_source = PausableSource(init_source, watcher, (plan.init_message.route,))
        init = op.input("init", wiring.flow, _draining(init_source, wiring, None))
        wiring.route_inputs[plan.init_message.route].append(init)
    _add_entries(plan, options, wiring)
    llm = PerThread(partial(LiteLLMClient, options.llm)) if options.llm is not None else None
    for route in _topological(plan):
        _add_route(plan, route, options, registry, wiring, llm)
    sink_queues = {s.queue for s in plan.sinks}
    for name in sorted(sink_queues):
        raw = queue.format == "raw" or any(
            o.format == "raw" for r in plan.routes for o in r.outbound if o.queue == name
        )
        _add_sink(
            f"sink__{_sid(name)}",
            name,
            wiring.outputs[name],
            queue,
            raw=raw,
            physical=plan.queue_name(name, options.execution_id, queue.provider),
            drained=wiring.detector is not None and name in plan.scoped_queues,
        )
    _add_dead_letter_sinks(plan, queue, options, wiring)
    if wiring.detector is not None:
        finite = sum(len(source.list_parts()) for source in wiring.finite)
        wiring.detector.rule = DrainRule(finite, plan.scoped_queues, options.processes)
    execution = options.lineage_execution
    if options.database_url and execution is not None and wiring.lineage:
        marks = wiring.lineage
        merged = marks[0] if len(marks) == 1 else op.merge("lineage__merge", *marks)
        # to this process's partition of the sink (a worker of the same process)
        key = str(options.process_id)
        keyed = op.map("lineage__key", merged, lambda mark: (key, mark))
        sink = LineageSink(options.database_url, execution, options.process_id)
        op.output("lineage", keyed, sink)
    return wiring.flow


def _add_dead_letter_sinks(
    plan: Plan, queue: QueueSettings, options: FlowOptions, w: _Wiring
) -> None:
    """Dead letters go to their queue on a broker; without one, to the dead-letter table
    when there is a database (the file and postgres providers), else to the queue."""
    execution = options.lineage_execution
    to_table = options.database_url is not None and get_provider(queue.provider).table_dead_letters
    if to_table and execution is not None and options.database_url is not None:
        streams = [s for name in sorted(w.dead) for s in w.dead[name]]
        if streams:
            merged = streams[0] if len(streams) == 1 else op.merge("dead__merge", *streams)
            inbound = {r.id: r.inbound_queue for r in plan.routes}
            sink = DeadLetterTableSink(options.database_url, execution, inbound)
            op.output("dead__table", merged, CountingSink(sink, "queue:dead_letters"))
        return
    for name, streams in sorted(w.dead.items()):
        _add_sink(f"dead__{_sid(name)}", name, streams, queue, raw=False)


def _drain_detector(plan: Plan, queue: QueueSettings, options: FlowOptions) -> DrainDetector | None:
    """A detector when the execution can only end by draining: some source reads a scoped
    queue from a broker (which never ends by itself) and none reads a global one."""
    if options.extra_sources or not plan.drains:
        return None
    if get_provider(queue.provider).finite or not any(
        s.scope == SCOPE_EXECUTION and s.queue not in options.inputs for s in plan.sources
    ):
        return None
    counts = ledger()
    counts.start()
    # the rule is completed once every source is known (see build_dataflow)
    return DrainDetector(DrainRule(0, plan.scoped_queues), counts.store)


def _draining(
    source: FixedPartitionedSource[Any, Any], w: _Wiring, scoped_queue: str | None
) -> FixedPartitionedSource[Any, Any]:
    """With drain detection, `source` counted in it: a finite one (scoped_queue None) ends
    only after its last epoch closed, a scoped one ends when the execution drained."""
    if w.detector is None:
        return source
    draining = DrainingSource(source, w.detector, scoped_queue)
    if scoped_queue is None:
        w.finite.append(draining)
    return draining


def _add_sources(plan: Plan, queue: QueueSettings, options: FlowOptions, w: _Wiring) -> None:
    source_queues = {s.queue: list(s.routes) for s in plan.sources}
    for name in [*options.inputs, *options.extra_sources]:
        reading = [r.id for r in plan.routes if r.inbound_queue == name]
        if not reading:
            msg = f"input for queue '{name}': no route reads it"
            raise ConfigurationError(msg)
        source_queues.setdefault(name, reading)
    for name, route_ids in source_queues.items():
        readers = [plan.route(r) for r in route_ids]
        raw = any(r.format == "raw" for r in readers)
        step = f"source__{_sid(name)}"
        source: Source[Any]
        drains_queue: str | None = None
        # async adapters run a batch's messages at once: a batch as large as the readers'
        # concurrency keeps them busy however long one message takes
        min_batch = max(r.concurrency.maximum for r in readers)
        if name in options.inputs:
            source = FileSource(
                options.inputs[name],
                name,
                raw=raw,
                partitions=options.source_partitions,
                min_batch=min_batch,
            )
        else:
            if name in plan.scoped_queues and not get_provider(queue.provider).finite:
                drains_queue = name
            # a queue the caller feeds itself (`extra_sources`) is read under its own name
            physical = (
                name
                if name in options.extra_sources
                else plan.queue_name(name, options.execution_id, queue.provider)
            )
            spec = SourceSpec(
                queue=physical,
                raw=raw,
                partitions=options.source_partitions,
                subscription=readers[0].subscription,
                prefetch=max(r.prefetch for r in readers),
                idle_timeout=plan.idle_timeout_seconds,
                min_batch=min_batch,
            )
            source = make_source(spec, queue)
            if isinstance(source, FixedPartitionedSource):
                source = LagSource(source, name, route_ids)
        if options.database_url is not None and isinstance(source, FixedPartitionedSource):
            source = PausableSource(source, _pause_watcher(options.database_url), tuple(route_ids))
        if isinstance(source, FixedPartitionedSource):
            source = TimedSource(_draining(source, w, drains_queue), name)
        items = op.input(step, w.flow, source)
        decoded = op.branch(f"{step}__decoded", items, _is_decoded)
        w.queue_inputs[name].append(decoded.trues)
        first = readers[0]
        undecodable = cast(Stream[Undecodable], decoded.falses)
        w.dead[first.dead_letter_queue].append(
            op.map(
                f"{step}__undecodable",
                undecodable,
                _undecodable_letter(first.id, options.execution_id),
            )
        )


def _add_entries(plan: Plan, options: FlowOptions, w: _Wiring) -> None:
    """Each route's entry file as one more input of that route (a finite source)."""
    for route_id, path in sorted(options.entries.items()):
        route = plan.route(route_id)
        step = f"entry__{_sid(route_id)}"
        source = FileSource(path, f"entry:{route_id}", partitions=options.source_partitions)
        items = op.input(step, w.flow, _draining(source, w, None))
        decoded = op.branch(f"{step}__decoded", items, _is_decoded)
        w.route_inputs[route_id].append(decoded.trues)
        undecodable = cast(Stream[Undecodable], decoded.falses)
        w.dead[route.dead_letter_queue].append(
            op.map(
                f"{step}__undecodable",
                undecodable,
                _undecodable_letter(route_id, options.execution_id),
            )
        )


_watchers: dict[str, PauseWatcher] = {}


def _pause_watcher(url: str) -> PauseWatcher:
    """One watcher (one polling thread) per database per process."""
    return _watchers.setdefault(url, PauseWatcher(url))


def _is_decoded(item: Message | Undecodable) -> TypeGuard[Message]:
    return isinstance(item, Message)


def _undecodable_letter(route_id: str, execution_id: str) -> Callable[[Undecodable], DeadLetter]:
    def letter(item: Undecodable) -> DeadLetter:
        progress().add(f"route:{route_id}:dead")
        worker_metrics().route(route_id).dead_letters.inc()
        return DeadLetter(
            route_id=route_id,
            stage="decode",
            step_id="decode",
            reason=REASON_UNDECODABLE,
            error_type="DecodeError",
            error=item.error,
            attempts=0,
            message=item.envelope(execution_id),
        )

    return letter


def _topological(plan: Plan) -> list[RoutePlan]:
    upstream: dict[str, set[str]] = {r.id: set() for r in plan.routes}
    for edge in plan.edges:
        upstream[edge.to_route].add(edge.from_route)
    ordered: list[RoutePlan] = []
    placed: set[str] = set()
    while len(ordered) < len(plan.routes):
        ready = [r for r in plan.routes if r.id not in placed and upstream[r.id] <= placed]
        if not ready:
            stuck = [r.id for r in plan.routes if r.id not in placed]
            msg = (
                f"routes {', '.join(stuck)} form a cycle inside the dataflow: set "
                "`inbound: {external: true}` on one of them so the loop runs through the "
                "queue provider"
            )
            raise ConfigurationError(msg)
        for route in ready:
            ordered.append(route)
            placed.add(route.id)
    return ordered


def _add_route(
    plan: Plan,
    route: RoutePlan,
    options: FlowOptions,
    registry: AdapterRegistry,
    w: _Wiring,
    llm: PerThread[LiteLLMClient] | None,
) -> None:
    streams = list(w.queue_inputs.get(route.inbound_queue, [])) + w.route_inputs[route.id]
    if not route.external:
        streams += w.outputs.get(route.inbound_queue, [])
    if not streams:
        return  # nothing can reach this route in this flow
    stream = streams[0] if len(streams) == 1 else op.merge(f"{route.id}__in", *streams)
    side: list[Stream[Outcome]] = []
    # positions, not adapter indexes: a replay's plan enters a route part-way
    last = len(route.adapters) - 1
    entering = route.id in options.entries
    for position, step in enumerate(route.adapters):
        passing: Stream[Message] | None = None
        if entering:
            # messages entering after this step go round it (see dataflows.entries)
            entry = op.branch(f"{step.step_id}__enters", stream, passes(step.index))
            passing = entry.trues
            stream = op.map(f"{step.step_id}__entered", entry.falses, unmarked)
        runtime = StepRuntime(
            route=route,
            step=step,
            execution_id=options.execution_id,
            storage=options.storage,
            breaker=CircuitBreaker(
                route.retry.circuit_breaker_threshold, route.retry.circuit_breaker_reset_seconds
            ),
            concurrency=ConcurrencyController(route.concurrency),
            lineage=options.lineage_log(),
            usage=options.usage_log(),
            config_hash=plan.config_hash,
            llm=llm,
        )
        invoker = AdapterInvoker(runtime, registry.resolve(step.type))
        counter = RouteCounter(route.id, first=position == 0, last=position == last)
        if step.stateful:
            outcomes = _stateful_step(step.step_id, stream, route, invoker, counter)
        else:
            outcomes = op.flat_map_batch(step.step_id, stream, counter.wrap(invoker.run_batch))
        split = op.branch(f"{step.step_id}__ok", outcomes, _is_message)
        stream = split.trues
        side.append(split.falses)
        if passing is not None:
            stream = op.merge(f"{step.step_id}__rejoin", stream, passing)
    if entering:
        # a message entering after the route's last step leaves it unmarked too
        stream = op.map(f"{route.id}__entries_out", stream, unmarked)
    _add_side_outputs(route, side, options, w)
    for index, outbound in enumerate(route.outbound):
        out = stream
        if outbound.condition is not None:
            out = op.filter(
                f"{route.id}__out_{index}", stream, compile_condition(outbound.condition)
            )
        w.outputs[outbound.queue].append(out)
    for writer in route.writers:
        out = stream
        if writer.condition is not None:
            out = op.filter(f"{writer.step_id}__if", stream, compile_condition(writer.condition))
        sink = WriterSink(
            writer,
            execution_id=options.execution_id,
            route_id=route.id,
            storage=options.storage,
            database_url=options.database_url,
        )
        op.output(writer.step_id, out, CountingSink(sink, f"sink:{writer.step_id}"))


def _add_side_outputs(
    route: RoutePlan, side: list[Stream[Outcome]], options: FlowOptions, w: _Wiring
) -> None:
    """Dead letters to the route's dead-letter queue; lineage marks (if any) to lineage."""
    if not side:
        return
    if options.database_url is None:
        w.dead[route.dead_letter_queue].extend(cast(list[Stream[DeadLetter]], side))
        return
    merged = side[0] if len(side) == 1 else op.merge(f"{route.id}__side", *side)
    split = op.branch(f"{route.id}__dead", merged, _is_dead_letter)
    w.dead[route.dead_letter_queue].append(split.trues)
    w.lineage.append(cast(Stream[LineageMark], split.falses))


def _is_dead_letter(item: Outcome) -> TypeGuard[DeadLetter]:
    return isinstance(item, DeadLetter)


@dataclass(frozen=True)
class RouteCounter:
    """Counts a route's messages in (at its first step), out (after its last), dead, and
    in flight (inside one of its adapter steps right now)."""

    route_id: str
    first: bool
    last: bool
    metrics: RouteMetrics = field(init=False)
    """The same counts as Prometheus metrics (`factflow.dataflows.metrics`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", worker_metrics().route(self.route_id))

    def begin(self, consumed: int) -> None:
        progress().add(f"route:{self.route_id}:in_flight", consumed)
        self.metrics.in_flight.inc(consumed)

    def record(self, consumed: int, outcomes: list[Outcome]) -> None:
        counters = progress()
        counters.add(f"route:{self.route_id}:in_flight", -consumed)
        self.metrics.in_flight.dec(consumed)
        if self.first:
            counters.add(f"route:{self.route_id}:in", consumed)
            self.metrics.messages_in.inc(consumed)
        # one pass over the batch's outcomes (messages, dead letters, lineage marks)
        emitted = dead = 0
        for outcome in outcomes:
            if isinstance(outcome, Message):
                emitted += 1
            elif isinstance(outcome, DeadLetter):
                dead += 1
        counters.add(f"route:{self.route_id}:dead", dead)
        if dead:
            self.metrics.dead_letters.inc(dead)
        if self.last:
            counters.add(f"route:{self.route_id}:out", emitted)
            self.metrics.messages_out.inc(emitted)

    def wrap(
        self, run: Callable[[list[Message]], list[Outcome]]
    ) -> Callable[[list[Message]], list[Outcome]]:
        def counted(batch: list[Message]) -> list[Outcome]:
            self.begin(len(batch))
            outcomes = run(batch)
            self.record(len(batch), outcomes)
            return outcomes

        return counted


def _is_message(item: Outcome) -> TypeGuard[Message]:
    return isinstance(item, Message)


def _stateful_step(
    step_id: str,
    stream: Stream[Message],
    route: RoutePlan,
    invoker: AdapterInvoker,
    counter: RouteCounter,
) -> Stream[Outcome]:
    get = field_getter(route.key) if route.key else None

    def key_of(message: Message) -> str:
        if get is None:
            return ""
        value = get(message)
        return "" if is_missing(value) else str(value)

    keyed = op.key_on(f"{step_id}__key", stream, key_of)
    stateful = op.stateful_batch(
        step_id,
        keyed,
        lambda state: AdapterStateLogic(invoker, counter.begin, counter.record, state),
    )
    return op.key_rm(f"{step_id}__unkey", stateful)


def _add_sink(
    step_id: str,
    queue: str,
    streams: list[Stream[Any]],
    settings: QueueSettings,
    *,
    raw: bool,
    physical: str | None = None,
    drained: bool = False,
) -> None:
    """`queue`'s sink (named `physical` on the provider); `drained` counts its writes for
    drain detection."""
    if not streams:
        return
    merged = streams[0] if len(streams) == 1 else op.merge(f"{step_id}__merge", *streams)
    sink = make_sink(physical or queue, settings, raw=raw)
    op.output(
        step_id,
        merged,
        CountingSink(sink, f"queue:{queue}", drain_queue=queue if drained else None),
    )
