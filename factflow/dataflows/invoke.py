"""Running one adapter over a batch: the gate, retries, circuit breaker, adaptive
concurrency, ids of emitted messages, and stage storage.

A batch never raises: every message ends as outputs or as one dead letter.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

from factflow.adapters.base import Adapter, Context, UsageLog
from factflow.compiler.plan import AdapterStep, RoutePlan
from factflow.conditions import Predicate, compile_condition
from factflow.dataflows.backpressure import ConcurrencyController
from factflow.dataflows.circuit import CircuitBreaker, CircuitOpenError
from factflow.dataflows.lineage import HANDOFF_US, LineageLog, LineageMark, lineage_row
from factflow.dataflows.metrics import CallTally, worker_metrics
from factflow.dataflows.progress import AdapterMetrics
from factflow.dataflows.usage import NoUsageLog
from factflow.dataflows.workers import current_worker_index
from factflow.db.lineage_copy import StepRowEncoder
from factflow.db.lineage_writer import LineageStatus, new_row_id
from factflow.deadletter import (
    REASON_CIRCUIT_OPEN,
    REASON_FAILED,
    REASON_NON_RETRYABLE,
    DeadLetter,
)
from factflow.exceptions import NonRetryableError
from factflow.ids import NameIds
from factflow.llm import LiteLLMClient
from factflow.loop import worker_loop
from factflow.messages import Message, make_message
from factflow.perthread import PerThread
from factflow.storage.base import StageStorage

# Emitted message ids are derived from the input id and the step, so a message replayed
# after a crash gets the same ids again and idempotent sinks absorb the duplicate.
_ID_NAMESPACE = uuid.UUID("6f1c5d4e-2b0a-4f5e-9c61-7a4e3f0b8d21")
_child_ids = NameIds(_ID_NAMESPACE)

Outcome = Message | DeadLetter | LineageMark


@dataclass
class StepRuntime:
    """What every invocation of one adapter step shares within a process."""

    route: RoutePlan
    step: AdapterStep
    execution_id: str
    storage: StageStorage | None
    breaker: CircuitBreaker
    concurrency: ConcurrencyController
    lineage: LineageLog | None = None
    """Set when lineage is recorded: where this process's rows go."""
    usage: UsageLog | None = None
    """Set with a database: where adapters' model calls go (`Context.usage`)."""
    config_hash: str | None = None
    """The compiled pipeline's hash, stored with each artefact."""
    llm: PerThread[LiteLLMClient] | None = None
    """The worker's LLM client, shared by every step of the worker (one limiter per
    worker and event loop); None when no model is configured."""


def child_id(parent_id: str, step_id: str, index: int) -> str:
    return _child_ids(f"{parent_id}/{step_id}/{index}")


class BatchTally(CallTally):
    """A batch's counts, and where its lineage rows (encoded) wait for the log: the
    thread's buffer of the log (`LineageLog.buffer`), which an exit flush drains too."""

    __slots__ = ("rows", "since_us")

    def __init__(self, lineage: LineageLog | None) -> None:
        super().__init__()
        self.rows: deque[bytes] = deque() if lineage is None else lineage.buffer()
        self.since_us = 0  # when the first of `rows` was made


class AdapterInvoker:
    """Calls one adapter of one route on batches of messages.

    One invoker per process and step; it makes one adapter instance per worker thread,
    since adapters need not be thread-safe.
    """

    def __init__(self, runtime: StepRuntime, adapter_cls: type[Adapter]) -> None:
        self.runtime = runtime
        self.adapter_cls = adapter_cls
        step = runtime.step
        self._gate: Predicate | None = compile_condition(step.condition) if step.condition else None
        self._is_async = inspect.iscoroutinefunction(adapter_cls.process)
        self._adapters = PerThread(lambda: adapter_cls(runtime.step.config))
        self._contexts = PerThread(self._new_context)
        self._metrics = worker_metrics().adapter(runtime.route.id, step.stage, step.type)
        lineage = runtime.lineage
        self._rows: StepRowEncoder | None = None
        if lineage is not None:
            route = runtime.route.id
            self._rows = StepRowEncoder(
                lineage.execution_id, route, step.type, step.index, step.stage
            )

    def adapter(self) -> Adapter:
        return self._adapters.get()

    def context(self) -> Context:
        return self._contexts.get()

    def _new_context(self) -> Context:
        """The calling worker's context, made on its first message of this step."""
        runtime = self.runtime
        route, stage = runtime.route.id, runtime.step.stage
        client = runtime.llm.get() if runtime.llm is not None else None
        return Context(
            execution_id=runtime.execution_id,
            route_id=route,
            stage=stage,
            worker_index=current_worker_index(),
            storage=runtime.storage,
            llm=client if client is not None and client.config.model else None,
            embeddings=client if client is not None and client.config.embedding_model else None,
            logger=logging.getLogger(f"factflow.adapter.{route}.{stage}"),
            metrics=AdapterMetrics.of(route, stage),
            usage=runtime.usage if runtime.usage is not None else NoUsageLog(),
        )

    # -- batches -----------------------------------------------------------------

    def run_batch(self, batch: list[Message]) -> list[Outcome]:
        tally = BatchTally(self.runtime.lineage)
        if self._is_async:
            results = worker_loop().run(self._run_async_batch(batch, self.adapter(), tally))
        else:
            adapter, context, run = self.adapter(), self.context(), self._run_sync
            results = [run(adapter, context, message, tally) for message in batch]
        self._done(tally)
        out: list[Outcome] = [item for result in results for item in result]
        out.extend(self.marks())
        return out

    def _done(self, tally: BatchTally) -> None:
        """After a batch: its counts to the metrics, its rows to the lineage log."""
        self._metrics.add(tally)
        if tally.rows:
            self._hand_off(tally)

    def _hand_off(self, tally: BatchTally) -> None:
        lineage = self.runtime.lineage
        assert lineage is not None
        lineage.record_buffered(tally.rows)

    def marks(self) -> list[Outcome]:
        """After a batch: the mark that makes the epoch wait for the batch's lineage rows."""
        lineage = self.runtime.lineage
        return [] if lineage is None else [lineage.mark()]

    def run_each(self, adapter: Adapter, batch: list[Message]) -> list[Outcome]:
        """`batch` through a given adapter instance (stateful steps own theirs), one
        message after another so that its state sees them in order; counted once."""
        tally = BatchTally(self.runtime.lineage)
        outcomes: list[Outcome] = []
        if self._is_async:
            loop = worker_loop()
            for message in batch:
                outcomes.extend(loop.run(self._run_async(adapter, message, tally)))
        else:
            context, run = self.context(), self._run_sync
            for message in batch:
                outcomes.extend(run(adapter, context, message, tally))
        self._done(tally)
        return outcomes

    async def _run_async_batch(
        self, batch: list[Message], adapter: Adapter, tally: BatchTally
    ) -> list[list[Outcome]]:
        limit = asyncio.Semaphore(self.runtime.concurrency.limit)

        async def bounded(message: Message) -> list[Outcome]:
            async with limit:
                return await self._run_async(adapter, message, tally)

        return await asyncio.gather(*(bounded(m) for m in batch))

    # -- one message ---------------------------------------------------------------
    # The sync and async paths differ only in how they call and wait; the decisions are
    # shared in _refused, _on_failure and _on_success. Both time each attempt for the
    # latency metric (counted in the batch's CallTally); only the async path feeds the
    # concurrency controller: the bound limits async batches, sync adapters run one at a
    # time.

    def _run_sync(
        self, adapter: Adapter, context: Context, message: Message, tally: BatchTally
    ) -> list[Outcome]:
        if self._gate is not None and not self._gate(message):
            return [message]
        started_at = self._lineage_start()
        attempt = 0
        while True:
            attempt += 1
            if refused := self._refused(message, attempt, started_at, tally):
                return refused
            started = time.perf_counter()
            try:
                outputs = _as_list(adapter.process(message, context))
            except Exception as exc:
                tally.call(started, "failed")
                verdict = self._on_failure(message, exc, attempt, started_at, tally)
                if isinstance(verdict, list):
                    return verdict
                tally.retries += 1
                time.sleep(verdict)
                continue
            tally.call(started, "completed" if outputs else "filtered")
            return self._on_success(message, outputs, attempt, started_at, tally)

    async def _run_async(
        self, adapter: Adapter, message: Message, tally: BatchTally
    ) -> list[Outcome]:
        if self._gate is not None and not self._gate(message):
            return [message]
        started_at = self._lineage_start()
        attempt = 0
        while True:
            attempt += 1
            if refused := self._refused(message, attempt, started_at, tally):
                return refused
            started = time.perf_counter()
            try:
                result = adapter.process(message, self.context())
                outputs = _as_list(await result if inspect.isawaitable(result) else result)
            except Exception as exc:
                self._observe(started, failed=True)
                tally.call(started, "failed")
                verdict = self._on_failure(message, exc, attempt, started_at, tally)
                if isinstance(verdict, list):
                    return verdict
                tally.retries += 1
                await asyncio.sleep(verdict)
                continue
            self._observe(started, failed=False)
            tally.call(started, "completed" if outputs else "filtered")
            return self._on_success(message, outputs, attempt, started_at, tally)

    def _lineage_start(self) -> int | None:
        """Microseconds since the Unix epoch when lineage is recorded (the row's
        started_at), else None."""
        return time.time_ns() // 1000 if self._rows is not None else None

    def _refused(
        self, message: Message, attempt: int, started_at: int | None, tally: BatchTally
    ) -> list[Outcome] | None:
        if self.runtime.breaker.allow():
            return None
        exc = CircuitOpenError(f"circuit of adapter '{self.runtime.step.stage}' is open")
        return self._dead(message, exc, attempt - 1, REASON_CIRCUIT_OPEN, started_at, tally)

    def _observe(self, started: float, *, failed: bool) -> None:
        self.runtime.concurrency.observe((time.perf_counter() - started) * 1000, failed=failed)

    def _on_failure(
        self,
        message: Message,
        exc: Exception,
        attempt: int,
        started_at: int | None,
        tally: BatchTally,
    ) -> list[Outcome] | float:
        """The dead letter (and its lineage) after the last attempt or a non-retryable
        error, else seconds to wait."""
        if isinstance(exc, NonRetryableError):
            # the input is at fault, not the adapter: no retry, and the breaker is untouched
            return self._dead(message, exc, attempt, REASON_NON_RETRYABLE, started_at, tally)
        self.runtime.breaker.record_failure()
        retry = self.runtime.route.retry
        if attempt > retry.max_retries:
            return self._dead(message, exc, attempt, REASON_FAILED, started_at, tally)
        return retry.delay(attempt)

    def _on_success(
        self,
        message: Message,
        outputs: list[Message],
        attempt: int,
        started_at: int | None,
        tally: BatchTally,
    ) -> list[Outcome]:
        self.runtime.breaker.record_success()
        if started_at is None:
            emitted, _ = self._emitted(message, outputs, message.message_id, None)
            return emitted
        row_id = new_row_id()
        emitted, storage_key = self._emitted(message, outputs, str(row_id), row_id)
        status: LineageStatus = "completed" if outputs else "filtered"
        self._record(
            tally,
            row_id,
            message,
            status,
            attempt,
            started_at,
            outputs=outputs,
            storage_key=storage_key,
        )
        return emitted

    def _dead(
        self,
        message: Message,
        exc: BaseException,
        attempts: int,
        reason: str,
        started_at: int | None,
        tally: BatchTally,
    ) -> list[Outcome]:
        step = self.runtime.step
        tally.dead_lettered()
        letter = DeadLetter.of(
            self.runtime.route.id, step.stage, step.step_id, message, exc, attempts, reason
        )
        if started_at is None:
            return [letter]
        error = f"{type(exc).__name__}: {exc}"
        row_id = new_row_id()
        self._record(tally, row_id, message, "dead_lettered", attempts, started_at, error=error)
        return [replace(letter, lineage_id=str(row_id))]

    def _record(
        self,
        tally: BatchTally,
        row_id: uuid.UUID,
        message: Message,
        status: LineageStatus,
        attempts: int,
        started_us: int,
        *,
        outputs: list[Message] | None = None,
        error: str | None = None,
        storage_key: str | None = None,
    ) -> None:
        """The invocation's lineage row, kept with the batch (recorded after it)."""
        assert self._rows is not None
        completed_us = time.time_ns() // 1000
        rows = tally.rows
        if not rows:
            tally.since_us = completed_us
        rows.append(
            lineage_row(
                self._rows,
                row_id=row_id,
                message=message,
                status=status,
                attempts=attempts,
                started_us=started_us,
                completed_us=completed_us,
                outputs=outputs,
                error=error,
                storage_key=storage_key,
            )
        )
        lineage = self.runtime.lineage
        assert lineage is not None
        if len(rows) >= lineage.handoff_rows or completed_us - tally.since_us >= HANDOFF_US:
            self._hand_off(tally)

    def _emitted(
        self,
        message: Message,
        outputs: list[Message],
        correlation: str,
        row_id: uuid.UUID | None,
    ) -> tuple[list[Outcome], str | None]:
        """Outputs stamped with this step, and the storage key of the first one stored.

        `correlation` is the lineage row id (`row_id`) when lineage is recorded, else the
        input's message id."""
        runtime = self.runtime
        step = runtime.step
        execution_id, route_id, stage = runtime.execution_id, runtime.route.id, step.stage
        input_id = message.message_id
        emitted: list[Outcome] = []
        for index, output in enumerate(outputs):
            message_id, correlation_id = output.message_id, output.correlation_id
            if message_id != input_id:
                message_id = child_id(input_id, step.step_id, index)
                correlation_id = correlation
            elif row_id is not None:
                # the same message passed on still descends from this invocation
                correlation_id = correlation
            emitted.append(
                make_message(
                    output.payload,
                    output.metadata,
                    message_id,
                    correlation_id,
                    execution_id,
                    route_id,
                    stage,
                    output.timestamp,
                )
            )
        storage_key = None
        if step.store and runtime.storage is not None:
            storage_key = _store(
                runtime.storage, runtime, [m for m in emitted if isinstance(m, Message)], row_id
            )
        return emitted, storage_key


def _as_list(result: Any) -> list[Message]:
    if result is None:
        return []
    if isinstance(result, Message):
        return [result]
    # the adapter's own list as it is: the step reads it once, before the next call
    outputs = result if type(result) is list else list(result)
    for item in outputs:
        if not isinstance(item, Message):
            msg = f"adapters must return factflow.Message objects, got {type(item).__name__}"
            raise TypeError(msg)
    return outputs


def _store(
    storage: StageStorage, runtime: StepRuntime, messages: list[Message], row_id: uuid.UUID | None
) -> str | None:
    """Store each output as the step's artefact, linked to the lineage row; returns the
    first key (the row's `storage_key`: a fan-out's other keys differ only in message id)."""
    from factflow.storage import store_message

    keys = [
        store_message(
            storage,
            message,
            execution_id=runtime.execution_id,
            route_id=runtime.route.id,
            stage=runtime.step.stage,
            adapter=runtime.step.type,
            lineage_id=None if row_id is None else str(row_id),
            config_hash=runtime.config_hash,
        )
        for message in messages
    ]
    return keys[0] if keys else None
