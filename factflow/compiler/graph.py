"""The queue graph of a pipeline: which routes read and write which queues.

Queue names are the edges: a queue both written and read inside the pipeline becomes a
dataflow edge, one only read is a source, one only written is a sink.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from factflow.compiler.config import PipelineConfig


@dataclass
class QueueGraph:
    readers: dict[str, list[str]] = field(default_factory=dict)
    writers: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, config: PipelineConfig) -> QueueGraph:
        graph = cls()
        for route_id, route in config.routes.items():
            graph.readers.setdefault(route.inbound.queue, []).append(route_id)
            for _, queue in route.queue_outbounds:
                writers = graph.writers.setdefault(queue, [])
                if route_id not in writers:
                    writers.append(route_id)
        return graph

    def downstream(self, config: PipelineConfig, route_id: str) -> list[str]:
        """Routes reading what `route_id` writes (through in-pipeline queues)."""
        targets: list[str] = []
        for _, queue in config.routes[route_id].queue_outbounds:
            for reader in self.readers.get(queue, []):
                if reader not in targets:
                    targets.append(reader)
        return targets

    def cycles(self, config: PipelineConfig) -> list[list[str]]:
        """Each cycle of two or more routes once, as the route ids along it."""
        found: list[list[str]] = []
        seen_sets: set[frozenset[str]] = set()
        order = list(config.routes)

        def visit(start: str, node: str, trail: list[str]) -> None:
            for nxt in self.downstream(config, node):
                if nxt == start and len(trail) > 1:
                    key = frozenset(trail)
                    if key not in seen_sets:
                        seen_sets.add(key)
                        found.append(list(trail))
                elif nxt not in trail and order.index(nxt) > order.index(start):
                    visit(start, nxt, [*trail, nxt])

        for start in order:
            visit(start, start, [start])
        return found
