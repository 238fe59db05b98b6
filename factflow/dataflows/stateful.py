"""Stateful adapters on a keyed stream: one adapter instance per key, its `snapshot()`
kept in Bytewax recovery and handed back to `restore()` when a worker resumes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bytewax.operators import StatefulBatchLogic

from factflow.adapters.base import Adapter
from factflow.dataflows.invoke import AdapterInvoker, Outcome
from factflow.messages import Message


class AdapterStateLogic(StatefulBatchLogic[Message, Outcome, Any]):
    def __init__(
        self,
        invoker: AdapterInvoker,
        begin: Callable[[int], None],
        record: Callable[[int, list[Outcome]], None],
        resume_state: Any,
    ) -> None:
        self._invoker = invoker
        self._begin, self._record = begin, record
        self._adapter: Adapter = invoker.adapter_cls(invoker.runtime.step.config)
        if resume_state is not None:
            self._adapter.restore(resume_state)

    def on_batch(self, values: list[Message]) -> tuple[list[Outcome], bool]:
        self._begin(len(values))
        outcomes = self._invoker.run_each(self._adapter, values)
        outcomes.extend(self._invoker.marks())
        self._record(len(values), outcomes)
        return outcomes, StatefulBatchLogic.RETAIN

    def snapshot(self) -> Any:
        return self._adapter.snapshot()
