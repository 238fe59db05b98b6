"""Which Bytewax worker the calling thread is, for `Context.worker_index`.

Bytewax tells sources and sinks their worker index when it builds them, on the worker's
own thread and before any item flows, but never tells operators. So every flow gets one
empty dynamic source whose `build` records the index of the thread building it; adapter
steps run on those same threads and read it back.
"""

from __future__ import annotations

import threading

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import DynamicSource, StatelessSourcePartition

_indexes: dict[int, int] = {}
"""OS thread id -> worker index (not threading.local: see perthread.py)."""


def current_worker_index() -> int:
    """The calling worker thread's index across all processes; 0 outside a dataflow."""
    return _indexes.get(threading.get_ident(), 0)


def add_worker_probe(flow: Dataflow) -> None:
    # an input nothing reads: it ends at once and carries no items
    op.input("worker_probe", flow, _WorkerProbe())


class _WorkerProbe(DynamicSource[None]):
    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Empty:
        _indexes[threading.get_ident()] = worker_index
        return _Empty()


class _Empty(StatelessSourcePartition[None]):
    def next_batch(self) -> list[None]:
        raise StopIteration
