"""AdapterInvoker's decisions on one message, without a flow around it: the gate, how many
attempts, the wait before each retry, which dead letter (reason, attempts, error) and
what the circuit breaker is told, the ids and lineage rows of what comes out. Every test
runs the sync and the async path, which call and wait differently.

The flow tests (test_retries.py) check the same promises end to end; these take a few
milliseconds each, so mutation testing (scripts/mutation.sh invoke-decisions) can run
them for every mutant."""

from __future__ import annotations

import functools
import time
import uuid
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from factflow import Adapter, Context, Message, NonRetryableError
from factflow.compiler.compile import compile_text
from factflow.compiler.plan import ConcurrencyPolicy, Plan
from factflow.dataflows import invoke
from factflow.dataflows.backpressure import ConcurrencyController
from factflow.dataflows.circuit import CircuitBreaker, CircuitState
from factflow.dataflows.invoke import AdapterInvoker, StepRuntime, child_id
from factflow.dataflows.lineage import HANDOFF_ROWS, LineageMark
from factflow.deadletter import DeadLetter
from factflow.storage.base import StageStorage
from factflow.storage.filesystem import FileSystemStorage
from factflow.storage.keys import stage_key
from tests.unit.db.test_lineage_copy import decoded

Step = list[Any]
"""What the adapter does on each attempt for one message: an exception to raise, or what
to return."""


class Scripted(Adapter):
    """Follows SCRIPT[payload] attempt by attempt (the last entry repeats)."""

    name = "scripted"
    SCRIPT: ClassVar[dict[str, Step]] = {}
    CALLS: ClassVar[list[str]] = []

    def _next(self, message: Message, context: Context) -> Any:
        key = message.payload["key"]
        Scripted.CALLS.append(key)
        if (context.execution_id, context.route_id, context.stage) != ("exec-1", "r", "work"):
            msg = f"called with another step's context: {context!r}"
            raise AssertionError(msg)
        steps = Scripted.SCRIPT[key]
        step = steps.pop(0) if len(steps) > 1 else steps[0]
        if isinstance(step, BaseException):
            raise step
        return step(message) if callable(step) else step

    def process(self, message: Message, context: Context) -> Any:
        return self._next(message, context)


class AsyncScripted(Scripted):
    name = "async_scripted"

    async def process(self, message: Message, context: Context) -> Any:  # type: ignore[override]
        return self._next(message, context)  # a coroutine: the async path


KINDS = [Scripted, AsyncScripted]


class RecordingLineage:
    """Stands in for LineageLog (which writes to Postgres): keeps the rows, decoded."""

    def __init__(self) -> None:
        self.execution_id = uuid.uuid4()
        self.rows: list[dict[str, Any]] = []
        self.handoff_rows = HANDOFF_ROWS
        self._buffer: deque[bytes] = deque()

    def buffer(self) -> deque[bytes]:
        return self._buffer

    def record_buffered(self, buffer: deque[bytes], *, wait: bool = True) -> None:
        rows = list(buffer)
        buffer.clear()
        self.record_many(rows)

    def record_many(self, rows: list[bytes]) -> None:
        self.rows.extend(decoded(row) for row in rows)

    def mark(self) -> LineageMark:
        return LineageMark(len(self.rows))


@pytest.fixture(autouse=True)
def _fresh_script() -> Iterator[None]:
    Scripted.SCRIPT.clear()
    Scripted.CALLS.clear()
    yield
    Scripted.SCRIPT.clear()


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The seconds waited before each retry, recorded instead of slept."""
    recorded: list[float] = []

    async def no_wait(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr(invoke.time, "sleep", recorded.append)
    monkeypatch.setattr(invoke.asyncio, "sleep", no_wait)
    return recorded


def invoker(
    kind: type[Scripted],
    *,
    retries: int = 2,
    delay: float = 0.5,
    backoff: str = "exponential",
    cap: float = 60,
    threshold: int = 1000,
    condition: str = "",
    lineage: RecordingLineage | None = None,
    storage: StageStorage | None = None,
    store: bool | None = None,
) -> AdapterInvoker:
    store = storage is not None if store is None else store
    plan = _plan(
        f"""\
version: "1.0"
name: decisions
queue: {{provider: memory}}
routes:
  r:
    inbound: {{queue: in}}
    error_handling:
      max_retries: {retries}
      retry_delay_seconds: {delay}
      backoff: {backoff}
      max_retry_delay_seconds: {cap}
      circuit_breaker_threshold: {threshold}
      circuit_breaker_reset_seconds: 3600
    adapters:
      - type: "{kind.__module__}:{kind.__name__}"
        name: work
        store: {"true" if store else "false"}
{condition}
    outbound: out
"""
    )
    route = plan.routes[0]
    runtime = StepRuntime(
        route=route,
        step=route.adapters[0],
        execution_id="exec-1",
        storage=storage,
        breaker=CircuitBreaker(threshold, 3600),
        concurrency=ConcurrencyController(route.concurrency),
        lineage=lineage,  # type: ignore[arg-type]
    )
    return AdapterInvoker(runtime, kind)


@functools.cache
def _plan(text: str) -> Plan:
    return compile_text(text).require_plan()


def msg(key: str, **fields: Any) -> Message:
    return Message(payload={"key": key, **fields}, message_id=f"id-{key}")


def run(inv: AdapterInvoker, *messages: Message) -> list[Any]:
    return [o for o in inv.run_batch(list(messages)) if not isinstance(o, LineageMark)]


def only_letter(outcomes: list[Any]) -> DeadLetter:
    [letter] = outcomes
    assert isinstance(letter, DeadLetter)
    return letter


@pytest.mark.parametrize("kind", KINDS)
def test_an_adapter_failing_every_attempt_is_tried_max_retries_plus_one_times(
    kind: type[Scripted], waits: list[float]
) -> None:
    Scripted.SCRIPT["a"] = [TimeoutError("slow")]
    inv = invoker(kind, retries=2)
    letter = only_letter(run(inv, msg("a")))
    assert Scripted.CALLS == ["a"] * 3
    assert (letter.reason, letter.attempts) == ("failed", 3)
    assert (letter.error_type, letter.error) == ("TimeoutError", "slow")
    assert (letter.route_id, letter.stage, letter.step_id) == (
        "r",
        "work",
        inv.runtime.step.step_id,
    )
    assert letter.message["payload"] == {"key": "a"}
    assert letter.lineage_id is None
    assert waits == [0.5, 1.0], "waits before the two retries, doubling"


@pytest.mark.parametrize("kind", KINDS)
def test_a_success_on_the_last_retry_passes_the_output_on(
    kind: type[Scripted], waits: list[float]
) -> None:
    out = Message(payload={"done": True})
    Scripted.SCRIPT["a"] = [ValueError("1"), ValueError("2"), out]
    [result] = run(invoker(kind, retries=2), msg("a"))
    assert isinstance(result, Message)
    assert result.payload == {"done": True}
    assert len(Scripted.CALLS) == 3


@pytest.mark.parametrize("kind", KINDS)
def test_without_retries_the_first_failure_is_dead_lettered(
    kind: type[Scripted], waits: list[float]
) -> None:
    Scripted.SCRIPT["a"] = [ValueError("no")]
    letter = only_letter(run(invoker(kind, retries=0), msg("a")))
    assert letter.attempts == 1
    assert waits == []


@pytest.mark.parametrize("kind", KINDS)
def test_fixed_backoff_waits_the_same_before_every_retry(
    kind: type[Scripted], waits: list[float]
) -> None:
    Scripted.SCRIPT["a"] = [ValueError("no")]
    run(invoker(kind, retries=3, delay=0.25, backoff="fixed"), msg("a"))
    assert waits == [0.25, 0.25, 0.25]


@pytest.mark.parametrize("kind", KINDS)
def test_exponential_waits_stop_at_the_cap(kind: type[Scripted], waits: list[float]) -> None:
    Scripted.SCRIPT["a"] = [ValueError("no")]
    run(invoker(kind, retries=4, delay=1, cap=3), msg("a"))
    assert waits == [1.0, 2.0, 3.0, 3.0]


@pytest.mark.parametrize("kind", KINDS)
def test_a_non_retryable_error_is_dead_lettered_at_once_and_spares_the_breaker(
    kind: type[Scripted], waits: list[float]
) -> None:
    Scripted.SCRIPT["a"] = [NonRetryableError("bad input")]
    inv = invoker(kind, retries=5, threshold=1)
    letter = only_letter(run(inv, msg("a")))
    assert (letter.reason, letter.attempts, letter.error) == ("non_retryable", 1, "bad input")
    assert Scripted.CALLS == ["a"]
    assert waits == []
    assert inv.runtime.breaker.state is CircuitState.closed


@pytest.mark.parametrize("kind", KINDS)
def test_an_open_circuit_dead_letters_without_calling_the_adapter(
    kind: type[Scripted], waits: list[float]
) -> None:
    Scripted.SCRIPT["a"] = [ValueError("down")]
    Scripted.SCRIPT["b"] = [Message(payload={})]
    inv = invoker(kind, retries=0, threshold=1)
    _failed, refused = run(inv, msg("a"), msg("b"))
    assert inv.runtime.breaker.state is CircuitState.open
    assert Scripted.CALLS == ["a"]
    assert isinstance(refused, DeadLetter)
    assert (refused.reason, refused.attempts) == ("circuit_open", 0)
    assert (refused.error_type, refused.error) == (
        "CircuitOpenError",
        "circuit of adapter 'work' is open",
    )
    assert refused.message["message_id"] == "id-b"


@pytest.mark.parametrize("kind", KINDS)
def test_the_breaker_opening_during_retries_stops_them(
    kind: type[Scripted], waits: list[float]
) -> None:
    Scripted.SCRIPT["a"] = [ValueError("down")]
    letter = only_letter(run(invoker(kind, retries=5, threshold=2), msg("a")))
    assert (letter.reason, letter.attempts) == ("circuit_open", 2)  # the attempts made
    assert len(Scripted.CALLS) == 2


@pytest.mark.parametrize("kind", KINDS)
def test_a_success_resets_the_breakers_count_of_failures(
    kind: type[Scripted], waits: list[float]
) -> None:
    for key in "abc":
        Scripted.SCRIPT[key] = [ValueError("flaky"), Message(payload={})]
    inv = invoker(kind, retries=1, threshold=2)
    outcomes = run(inv, msg("a"), msg("b"), msg("c"))
    assert all(isinstance(o, Message) for o in outcomes), outcomes
    assert inv.runtime.breaker.state is CircuitState.closed


@pytest.mark.parametrize("kind", KINDS)
def test_a_message_the_gate_refuses_passes_unchanged_without_a_call(
    kind: type[Scripted], waits: list[float]
) -> None:
    Scripted.SCRIPT["yes"] = [None]
    gate = "        condition: {field: go, operator: eq, value: true}"
    inv = invoker(kind, condition=gate)
    refused = msg("no", go=False)
    assert run(inv, refused, msg("yes", go=True)) == [refused]
    assert Scripted.CALLS == ["yes"]


@pytest.mark.parametrize("kind", KINDS)
def test_outputs_get_ids_derived_from_the_input_and_the_step(
    kind: type[Scripted], waits: list[float]
) -> None:
    Scripted.SCRIPT["a"] = [lambda m: [Message(payload=1), Message(payload=2), m]]
    inv = invoker(kind)
    first, second, same = run(inv, msg("a"))
    step_id = inv.runtime.step.step_id
    assert [first.message_id, second.message_id] == [
        child_id("id-a", step_id, 0),
        child_id("id-a", step_id, 1),
    ]
    assert first.correlation_id == second.correlation_id == "id-a"
    assert (same.message_id, same.correlation_id) == ("id-a", None)  # passed on as it was
    for out in (first, second, same):
        assert (out.execution_id, out.route_id, out.stage) == ("exec-1", "r", "work")


@pytest.mark.parametrize("kind", KINDS)
def test_what_an_adapter_may_return(kind: type[Scripted], waits: list[float]) -> None:
    single = Message(payload="one")
    Scripted.SCRIPT["none"] = [None]
    Scripted.SCRIPT["one"] = [single]
    Scripted.SCRIPT["gen"] = [lambda m: (Message(payload=i) for i in range(2))]
    inv = invoker(kind)
    assert run(inv, msg("none")) == []
    assert [m.payload for m in run(inv, msg("one"))] == ["one"]
    assert [m.payload for m in run(inv, msg("gen"))] == [0, 1]


@pytest.mark.parametrize("kind", KINDS)
def test_returning_something_else_than_messages_is_a_failure(
    kind: type[Scripted], waits: list[float]
) -> None:
    Scripted.SCRIPT["a"] = [[{"not": "a message"}]]
    letter = only_letter(run(invoker(kind, retries=1), msg("a")))
    assert (letter.error_type, letter.attempts) == ("TypeError", 2)
    assert letter.error == "adapters must return factflow.Message objects, got dict"


# --- with lineage ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_dead_letter_points_at_its_lineage_row(kind: type[Scripted], waits: list[float]) -> None:
    lineage = RecordingLineage()
    Scripted.SCRIPT["a"] = [KeyError("k")]
    outcomes = list(invoker(kind, retries=1, lineage=lineage).run_batch([msg("a")]))
    letter, mark = outcomes
    assert mark == LineageMark(1)
    [row] = lineage.rows
    assert letter.lineage_id == str(row["id"])
    assert (row["status"], row["attempts"], row["error"]) == ("dead_lettered", 2, "KeyError: 'k'")
    assert (row["execution_id"], row["route_id"], row["stage_name"]) == (
        lineage.execution_id,
        "r",
        "work",
    )
    assert row["message_id"] == "id-a"


@pytest.mark.parametrize("kind", KINDS)
def test_outputs_descend_from_the_lineage_row_of_their_invocation(
    kind: type[Scripted], waits: list[float]
) -> None:
    lineage = RecordingLineage()
    Scripted.SCRIPT["a"] = [ValueError("once"), lambda m: [Message(payload=1), m]]
    Scripted.SCRIPT["b"] = [None]
    inv = invoker(kind, retries=1, lineage=lineage)
    child, same = run(inv, msg("a"))
    run(invoker(kind, lineage=lineage), msg("b"))
    done, filtered = lineage.rows
    assert (done["status"], done["attempts"], done["error"]) == ("completed", 2, None)
    assert (filtered["status"], filtered["attempts"]) == ("filtered", 1)
    assert child.message_id == child_id("id-a", inv.runtime.step.step_id, 0)
    assert child.correlation_id == same.correlation_id == str(done["id"])
    assert same.message_id == "id-a"


@pytest.mark.parametrize("kind", KINDS)
def test_a_circuit_open_dead_letter_has_a_lineage_row_with_no_attempts(
    kind: type[Scripted], waits: list[float]
) -> None:
    lineage = RecordingLineage()
    Scripted.SCRIPT["a"] = [ValueError("down")]
    inv = invoker(kind, retries=0, threshold=1, lineage=lineage)
    run(inv, msg("a"), msg("b"))
    assert [(r["status"], r["attempts"]) for r in lineage.rows] == [
        ("dead_lettered", 1),
        ("dead_lettered", 0),
    ]
    assert lineage.rows[1]["error"] == "CircuitOpenError: circuit of adapter 'work' is open"


class Handoffs(RecordingLineage):
    """Also counts the hand-offs: each `record_many` call's rows."""

    def __init__(self) -> None:
        super().__init__()
        self.handoffs: list[int] = []

    def record_many(self, rows: list[bytes]) -> None:
        self.handoffs.append(len(rows))
        super().record_many(rows)


@pytest.mark.parametrize("kind", KINDS)
def test_a_batchs_rows_go_to_the_log_together_after_it(
    kind: type[Scripted], waits: list[float]
) -> None:
    lineage = Handoffs()
    for key in "abc":
        Scripted.SCRIPT[key] = [None]
    invoker(kind, lineage=lineage).run_batch([msg("a"), msg("b"), msg("c")])
    assert lineage.handoffs == [3]


def test_a_slow_batch_hands_its_rows_off_while_it_runs() -> None:  # real sleeps
    lineage = Handoffs()

    def slow(m: Message) -> None:
        time.sleep(invoke.HANDOFF_US / 1e6 * 1.2)

    for key in "abc":
        Scripted.SCRIPT[key] = [slow]
    invoker(Scripted, lineage=lineage).run_batch([msg("a"), msg("b"), msg("c")])
    # the first row waits for the second, which comes over HANDOFF_US later
    assert lineage.handoffs == [2, 1]


def test_a_batch_hands_off_every_handoff_rows_rows(waits: list[float]) -> None:
    lineage = Handoffs()
    lineage.handoff_rows = 2  # LineageLog.handoff_rows: HANDOFF_ROWS, 1 once exiting
    for key in "abcde":
        Scripted.SCRIPT[key] = [None]
    invoker(Scripted, lineage=lineage).run_batch([msg(k) for k in "abcde"])
    assert lineage.handoffs == [2, 2, 1]


@pytest.mark.parametrize("kind", KINDS)
def test_outputs_keep_their_metadata_and_timestamp(
    kind: type[Scripted], waits: list[float]
) -> None:
    out = Message(payload=1, metadata={"lang": "en"}, timestamp="2026-01-02T03:04:05+00:00")
    Scripted.SCRIPT["a"] = [out]
    [emitted] = run(invoker(kind), msg("a"))
    assert (emitted.metadata, emitted.timestamp) == ({"lang": "en"}, out.timestamp)


@pytest.mark.parametrize("kind", KINDS)
def test_a_lineage_row_hashes_the_outputs_and_times_the_invocation(
    kind: type[Scripted], waits: list[float]
) -> None:
    lineage = RecordingLineage()
    Scripted.SCRIPT["a"] = [Message(payload=1)]
    Scripted.SCRIPT["b"] = [Message(payload=2)]
    Scripted.SCRIPT["c"] = [None]
    before = datetime.now(UTC)
    run(invoker(kind, lineage=lineage), msg("a"), msg("b"), msg("c"))
    after = datetime.now(UTC)
    one, two, filtered = lineage.rows
    assert one["output_hash"] is not None and two["output_hash"] is not None
    assert one["output_hash"] != two["output_hash"]
    assert filtered["output_hash"] is None
    for row in lineage.rows:
        assert before <= row["started_at"] <= row["completed_at"] <= after
        assert row["storage_key"] is None  # nothing stored


@pytest.mark.parametrize("kind", KINDS)
def test_stored_outputs_are_linked_to_their_lineage_row(
    kind: type[Scripted], waits: list[float], tmp_path: Path
) -> None:
    lineage, storage = RecordingLineage(), FileSystemStorage(tmp_path, fsync=False)
    Scripted.SCRIPT["a"] = [lambda m: [Message(payload=1), Message(payload=2)]]
    first, second = run(invoker(kind, lineage=lineage, storage=storage), msg("a"))
    [row] = lineage.rows
    keys = [stage_key("exec-1", "r", "work", m.message_id) for m in (first, second)]
    assert row["storage_key"] == keys[0]
    for key in keys:
        assert storage.exists(key)
        assert storage.metadata(key)["lineage-id"] == str(row["id"])


@pytest.mark.parametrize("kind", KINDS)
def test_a_non_retryable_dead_letter_has_its_lineage_row(
    kind: type[Scripted], waits: list[float]
) -> None:
    lineage = RecordingLineage()
    Scripted.SCRIPT["a"] = [NonRetryableError("bad input")]
    letter = only_letter(run(invoker(kind, lineage=lineage), msg("a")))
    [row] = lineage.rows
    assert letter.lineage_id == str(row["id"])
    assert (row["status"], row["attempts"]) == ("dead_lettered", 1)
    assert row["error"] == "NonRetryableError: bad input"


def _counts(inv: AdapterInvoker) -> dict[str, float]:
    """The step's call counters by outcome, and its retries (this process's metrics)."""
    metrics = inv._metrics
    counts = {o: child._value.get() for o, child in metrics.calls.items()}
    return {**counts, "retries": metrics.retries._value.get()}


@pytest.mark.parametrize("kind", KINDS)
def test_attempts_are_counted_by_outcome_with_the_retries(
    kind: type[Scripted], waits: list[float]
) -> None:
    Scripted.SCRIPT["passes"] = [ValueError("1"), ValueError("2"), Message(payload={})]
    Scripted.SCRIPT["filtered"] = [None]
    Scripted.SCRIPT["dies"] = [ValueError("x")]
    inv = invoker(kind, retries=2)
    before = _counts(inv)
    run(inv, msg("passes"), msg("filtered"), msg("dies"))
    after = _counts(inv)
    assert {k: after[k] - before[k] for k in after} == {
        "completed": 1,
        "filtered": 1,
        "failed": 2 + 3,
        "dead_lettered": 1,
        "retries": 2 + 2,
    }


def test_async_attempts_steer_the_concurrency(waits: list[float]) -> None:
    Scripted.SCRIPT["fails"] = [ValueError("x")]
    Scripted.SCRIPT["passes"] = [Message(payload={})]
    inv = invoker(AsyncScripted, retries=0)
    policy = ConcurrencyPolicy(initial=8, minimum=1, maximum=16, target_latency_ms=60_000)
    inv.runtime.concurrency = ConcurrencyController(policy)
    run(inv, msg("fails"))
    assert inv.runtime.concurrency.limit == 4, "a failed attempt halves the limit"
    for _ in range(5):
        run(inv, msg("passes"))
    assert inv.runtime.concurrency.limit == 5, "fast successes raise it"


def test_a_step_not_told_to_store_stores_nothing(waits: list[float], tmp_path: Path) -> None:
    lineage, storage = RecordingLineage(), FileSystemStorage(tmp_path, fsync=False)
    Scripted.SCRIPT["a"] = [Message(payload=1)]
    run(invoker(Scripted, lineage=lineage, storage=storage, store=False), msg("a"))
    assert lineage.rows[0]["storage_key"] is None
    assert storage.list() == []
