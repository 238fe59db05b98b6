"""The plan of a replay: one route entered part-way, the routes it feeds, nothing upstream.

A replay feeds stored messages of a stage to the steps after it (or to a route's first
step). The runtime needs no special case for that: `entered_at` cuts the plan so that
route `R` begins after adapter `after` and keeps only what `R` can reach; its inbound
queue is then fed by the caller (`FlowOptions.inputs`). Steps keep their ids and indexes,
so lineage names the same adapters as the original run and recovery snapshots of the
replay execution match its plan when it is resumed.
"""

from __future__ import annotations

from dataclasses import replace

from factflow.compiler.plan import Endpoint, Plan, RoutePlan
from factflow.exceptions import ConfigurationError

ENTRY_START = -1
"""`after` for a replay into a route's first adapter (every step of it runs)."""


def downstream_routes(plan: Plan, route_id: str) -> list[str]:
    """`route_id` and every route its messages can reach (in plan order), whether through
    an in-dataflow edge or a queue on the provider."""
    readers: dict[str, list[str]] = {}
    for route in plan.routes:
        readers.setdefault(route.inbound_queue, []).append(route.id)
    reached = {route_id}
    todo = [route_id]
    while todo:
        route = plan.route(todo.pop())
        for outbound in route.outbound:
            for reader in readers.get(outbound.queue, []):
                if reader not in reached:
                    reached.add(reader)
                    todo.append(reader)
    return [r.id for r in plan.routes if r.id in reached]


def stage_index(route: RoutePlan, stage: str) -> int:
    """The index of the adapter named `stage` in `route`; ConfigurationError listing the
    route's stages when there is none."""
    for step in route.adapters:
        if step.stage == stage:
            return step.index
    names = ", ".join(s.stage for s in route.adapters) or "none"
    msg = f"route '{route.id}' has no stage '{stage}' (its stages: {names})"
    raise ConfigurationError(msg)


def entered_at(plan: Plan, route_id: str, after: int = ENTRY_START) -> Plan:
    """`plan` entered at route `route_id` after its adapter `after` (ENTRY_START: before
    the first). Routes `route_id` cannot reach, the init message and the sources of the
    dropped routes go; `route_id`'s inbound queue is no longer a source (the caller feeds
    it)."""
    entry = plan.route(route_id)
    kept = set(downstream_routes(plan, route_id))
    routes = tuple(
        _trimmed(route, after) if route.id == route_id else route
        for route in plan.routes
        if route.id in kept
    )
    return replace(
        plan,
        routes=routes,
        edges=tuple(e for e in plan.edges if e.from_route in kept and e.to_route in kept),
        sources=_restricted(tuple(s for s in plan.sources if s.queue != entry.inbound_queue), kept),
        sinks=_restricted(plan.sinks, kept),
        init_message=None,
        dead_letters=tuple(d for d in plan.dead_letters if d.route in kept),
    )


def _trimmed(route: RoutePlan, after: int) -> RoutePlan:
    if after != ENTRY_START and all(step.index != after for step in route.adapters):
        msg = f"route '{route.id}' has no adapter {after}"
        raise ConfigurationError(msg)
    steps = tuple(step for step in route.adapters if step.index > after)
    return replace(route, adapters=steps, stateful=any(s.stateful for s in steps))


def _restricted(endpoints: tuple[Endpoint, ...], kept: set[str]) -> tuple[Endpoint, ...]:
    """The endpoints some kept route uses, naming only the kept routes."""
    out = []
    for endpoint in endpoints:
        routes = tuple(r for r in endpoint.routes if r in kept)
        if routes:
            out.append(replace(endpoint, routes=routes))
    return tuple(out)
