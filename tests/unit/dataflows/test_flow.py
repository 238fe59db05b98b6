"""The runtime in-process: real Bytewax (`run_main`) on the memory provider through
`factflow.testing.run_pipeline`; test-only adapters come from `tests/e2e/adapters_for_tests.py`.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from bytewax.testing import run_main

from factflow.connectors.memory import MemoryQueues
from factflow.dataflows.build import FlowOptions, build_dataflow
from factflow.testing import PipelineResult, compile_plan, run_pipeline
from tests.e2e.adapters_for_tests import (
    AlwaysFails,
    FailsCallsFirst,
    FailsTwice,
    InFlight,
    RejectsBad,
    SyncThreads,
)

T = "tests.e2e.adapters_for_tests"

HEADER = """\
version: "1.0"
name: t
queue: {provider: memory}
"""


def run(body: str, inputs: dict[str, list[Any]]) -> PipelineResult:
    return run_pipeline(HEADER + body, inputs=inputs)


@pytest.fixture(autouse=True)
def _fresh_counters() -> None:
    AlwaysFails.calls.clear()
    FailsCallsFirst.calls.clear()
    FailsTwice.calls.clear()
    RejectsBad.calls.clear()
    InFlight.reset()
    SyncThreads.threads.clear()


# --- conditions, routing, built-ins ------------------------------------------------------


def test_adapter_condition_is_a_gate_not_a_filter() -> None:
    result = run(
        """
routes:
  r:
    inbound: {queue: in}
    adapters:
      - type: set_metadata
        config: {values: {tagged: true}}
        condition: {field: kind, operator: eq, value: a}
      - type: set_metadata
        config: {values: {seen: true}}
    outbound: out
""",
        {"in": [{"kind": "a"}, {"kind": "b", "x": 1}]},
    )
    by_kind = {m.payload["kind"]: m for m in result.messages("out")}
    assert set(by_kind) == {"a", "b"}
    assert by_kind["a"].metadata == {"tagged": True, "seen": True}
    # the gated adapter left b alone (payload and metadata), the next one still ran
    assert by_kind["b"].payload == {"kind": "b", "x": 1}
    assert by_kind["b"].metadata == {"seen": True}


def test_outbound_conditions_fan_out_to_every_match_and_the_catch_all() -> None:
    result = run(
        """
routes:
  r:
    inbound: {queue: in}
    adapters: [{type: passthrough}]
    outbound:
      - queue: out.en
        condition: {field: lang, operator: eq, value: en}
      - queue: out.big
        condition: {field: n, operator: gt, value: 5}
      - queue: out.none
        condition: {field: lang, operator: eq, value: xx}
      - queue: out.all
""",
        {"in": [{"lang": "en", "n": 10}, {"lang": "de", "n": 1}, {"lang": "en", "n": 2}]},
    )
    assert result.payloads("out.en") == [{"lang": "en", "n": 10}, {"lang": "en", "n": 2}]
    assert result.payloads("out.big") == [{"lang": "en", "n": 10}]
    assert result.payloads("out.none") == []
    assert [p["n"] for p in result.payloads("out.all")] == [10, 1, 2]
    # the same message (same id) reaches each matching queue
    assert result.messages("out.big")[0].message_id == result.messages("out.en")[0].message_id


def test_filter_drops_what_its_condition_rejects() -> None:
    result = run(
        """
routes:
  r:
    inbound: {queue: in}
    adapters:
      - type: filter
        config: {field: n, operator: gt, value: 2}
    outbound: out
""",
        {"in": [{"n": n} for n in range(6)]},
    )
    assert result.payloads("out") == [{"n": 3}, {"n": 4}, {"n": 5}]
    assert result.dead_letters("r") == []


def test_split_fans_out_children_with_lineage() -> None:
    result = run(
        """
routes:
  r:
    inbound: {queue: in}
    adapters:
      - type: split
        config: {field: items, into: item}
    outbound: out
""",
        {"in": [{"message_id": "doc-1", "payload": {"doc": 1, "items": ["a", "b", "c"]}}]},
    )
    out = result.messages("out")
    assert [m.payload["item"] for m in out] == ["a", "b", "c"]
    assert all(m.payload["doc"] == 1 for m in out)
    assert [m.metadata["split_index"] for m in out] == [0, 1, 2]
    assert {m.correlation_id for m in out} == {"doc-1"}
    assert len({m.message_id for m in out}) == 3
    assert {(m.route_id, m.stage, m.execution_id) for m in out} == {
        ("r", "split", "test-execution")
    }


def test_set_metadata_merges_over_existing_metadata() -> None:
    result = run(
        """
routes:
  r:
    inbound: {queue: in}
    adapters:
      - type: set_metadata
        config: {values: {pipeline: t, lang: fr}}
    outbound: out
""",
        {"in": [{"payload": {"x": 1}, "metadata": {"lang": "en", "origin": "test"}}]},
    )
    [message] = result.messages("out")
    assert message.metadata == {"lang": "fr", "origin": "test", "pipeline": "t"}
    assert message.payload == {"x": 1}


def test_deduplicate_keeps_the_first_of_each_key() -> None:
    result = run(
        """
routes:
  r:
    inbound: {queue: in}
    key: k
    adapters:
      - type: deduplicate
        config: {key: k}
    outbound: out
""",
        {"in": [{"k": k, "i": i} for i, k in enumerate("abacbcd")]},
    )
    assert sorted((p["k"], p["i"]) for p in result.payloads("out")) == [
        ("a", 0),
        ("b", 1),
        ("c", 3),
        ("d", 6),
    ]


def test_init_message_reaches_its_route() -> None:
    result = run(
        """
routes:
  r:
    inbound: {queue: start}
    adapters: [{type: passthrough}]
    outbound: out
init_message:
  route: r
  payload: {hello: world}
""",
        {},
    )
    assert result.payloads("out") == [{"hello": "world"}]


def test_chained_routes_run_through_in_dataflow_edges() -> None:
    result = run(
        """
routes:
  first:
    inbound: {queue: in}
    adapters: [{type: split, config: {field: items}}]
    outbound: mid
  second:
    inbound: {queue: mid}
    adapters: [{type: filter, config: {field: payload, operator: gt, value: 1}}]
    outbound: out
""",
        {"in": [{"items": [1, 2, 3]}]},
    )
    assert result.payloads("out") == [2, 3]
    assert {m.route_id for m in result.messages("out")} == {"second"}


# --- failures -----------------------------------------------------------------------------


def test_poison_message_is_dead_lettered_and_the_rest_flows() -> None:
    result = run(
        """
error_handling: {max_retries: 1, retry_delay_seconds: 0}
routes:
  r:
    inbound: {queue: in}
    adapters:
      - type: split
        config: {field: items}
    outbound: out
""",
        {"in": [{"items": [1]}, "not a dict", {"items": [2, 3]}]},
    )
    assert result.payloads("out") == [1, 2, 3]
    [letter] = result.dead_letters("r")
    assert letter["reason"] == "failed"
    assert letter["route_id"] == "r"
    assert letter["stage"] == "split"
    assert letter["error_type"] == "ValueError"
    assert "must be a list" in letter["error"]
    assert letter["attempts"] == 2
    assert letter["message"]["payload"] == "not a dict"
    assert letter["failed_at"]


def test_always_failing_adapter_dead_letters_after_max_retries_plus_one() -> None:
    result = run(
        f"""
routes:
  r:
    inbound: {{queue: in}}
    error_handling:
      max_retries: 2
      retry_delay_seconds: 0
      circuit_breaker_threshold: 100
      dead_letter_queue: failures
    adapters:
      - type: passthrough
      - type: {T}:AlwaysFails
    outbound: out
""",
        {
            "in": [
                {"message_id": "m1", "payload": {"n": 1}, "metadata": {"src": "t"}},
                {"message_id": "m2", "payload": {"n": 2}},
            ]
        },
    )
    assert result.payloads("out") == []
    assert result.dead_letters("r") == result.queues["failures"]
    letters = {d["message"]["message_id"]: d for d in result.queues["failures"]}
    assert set(letters) == {"m1", "m2"}
    assert AlwaysFails.calls == Counter({"m1": 3, "m2": 3})
    first = letters["m1"]
    assert first["attempts"] == 3
    assert first["reason"] == "failed"
    assert first["error_type"] == "RuntimeError"
    assert first["error"] == "always fails on {'n': 1}"
    assert first["stage"] == "AlwaysFails"  # a dotted type's stage is its class name
    assert first["step_id"] == "r__1_tests_e2e_adapters_for_tests_AlwaysFails"
    assert first["message"]["payload"] == {"n": 1}
    assert first["message"]["metadata"] == {"src": "t"}


def test_retries_succeed_within_max_retries() -> None:
    result = run(
        f"""
routes:
  r:
    inbound: {{queue: in}}
    error_handling: {{max_retries: 2, retry_delay_seconds: 0}}
    adapters: [{{type: "{T}:FailsTwice"}}]
    outbound: out
""",
        {"in": [{"message_id": "m1", "payload": 1}]},
    )
    assert result.payloads("out") == [1]
    assert result.dead_letters("r") == []
    assert FailsTwice.calls["m1"] == 3


def test_one_retry_too_few_dead_letters() -> None:
    result = run(
        f"""
routes:
  r:
    inbound: {{queue: in}}
    error_handling: {{max_retries: 1, retry_delay_seconds: 0}}
    adapters: [{{type: "{T}:FailsTwice"}}]
    outbound: out
""",
        {"in": [{"message_id": "m1", "payload": 1}]},
    )
    assert result.payloads("out") == []
    [letter] = result.dead_letters("r")
    assert (letter["attempts"], letter["error_type"]) == (2, "ConnectionError")


@pytest.mark.parametrize("adapter", ["RejectsBad", "RejectsBadAsync"])
def test_a_non_retryable_error_dead_letters_at_once_and_leaves_the_circuit_closed(
    adapter: str,
) -> None:
    # retries and a breaker that opens on the first counted failure: neither applies
    result = run(
        f"""
routes:
  r:
    inbound: {{queue: in}}
    error_handling:
      max_retries: 3
      retry_delay_seconds: 5
      circuit_breaker_threshold: 1
    adapters: [{{type: "{T}:{adapter}"}}]
    outbound: out
""",
        {
            "in": [
                {"message_id": "b1", "payload": {"bad": True}},
                {"message_id": "b2", "payload": {"bad": True}},
                {"message_id": "ok", "payload": {"bad": False}},
            ]
        },
    )
    assert result.payloads("out") == [{"bad": False}]
    letters = {d["message"]["message_id"]: d for d in result.dead_letters("r")}
    assert set(letters) == {"b1", "b2"}
    assert RejectsBad.calls == Counter({"b1": 1, "b2": 1, "ok": 1})
    for letter in letters.values():
        assert (letter["reason"], letter["attempts"]) == ("non_retryable", 1)
        assert letter["error_type"] == "NonRetryableError"
        assert letter["error"] == "cannot use {'bad': True}"


def test_undecodable_file_line_goes_to_the_first_reading_routes_dlq(tmp_path: Path) -> None:
    lines = [json.dumps({"n": 1}), "{not json", json.dumps({"n": 2})]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    plan = compile_plan(
        HEADER
        + """
routes:
  first:
    inbound: {queue: in}
    adapters: [{type: passthrough}]
    outbound: out.first
  second:
    inbound: {queue: in}
    adapters: [{type: passthrough}]
    outbound: out.second
"""
    )
    MemoryQueues.clear()
    options = FlowOptions(execution_id="e", queue_override=plan.queue, inputs={"in": str(source)})
    run_main(build_dataflow(plan, options))
    assert [r["payload"] for r in MemoryQueues.read("out.first")] == [{"n": 1}, {"n": 2}]
    assert [r["payload"] for r in MemoryQueues.read("out.second")] == [{"n": 1}, {"n": 2}]
    [letter] = MemoryQueues.read("first.dlq")
    assert letter["reason"] == "undecodable"
    assert letter["route_id"] == "first"
    assert letter["message"]["payload"].strip() == "{not json"
    assert "not JSON" in letter["error"]
    assert MemoryQueues.read("second.dlq") == []


def test_open_circuit_dead_letters_later_messages_without_calling() -> None:
    result = run(
        f"""
routes:
  r:
    inbound: {{queue: in}}
    error_handling:
      max_retries: 0
      circuit_breaker_threshold: 2
      circuit_breaker_reset_seconds: 3600
    adapters: [{{type: "{T}:AlwaysFails"}}]
    outbound: out
""",
        {"in": [{"message_id": f"m{i}", "payload": i} for i in range(5)]},
    )
    letters = result.dead_letters("r")
    assert len(letters) == 5
    reasons = {d["message"]["message_id"]: (d["reason"], d["attempts"]) for d in letters}
    assert reasons == {
        "m0": ("failed", 1),
        "m1": ("failed", 1),
        "m2": ("circuit_open", 0),
        "m3": ("circuit_open", 0),
        "m4": ("circuit_open", 0),
    }
    # the open circuit refused the calls: the adapter saw only the first two
    assert sum(AlwaysFails.calls.values()) == 2
    open_letter = next(d for d in letters if d["reason"] == "circuit_open")
    assert open_letter["error_type"] == "CircuitOpenError"
    assert open_letter["message"]["payload"] == 2


# The breaker half-opens inside a running flow: the first call fails and opens the circuit
# (threshold 1); the retry waits as long as the reset time, so the retry is the half-open
# trial. A retry delay is a sleep, never shorter, so a loaded machine cannot change the
# outcome, only make it later.
HALF_OPEN = f"""
routes:
  r:
    inbound: {{queue: in}}
    error_handling:
      max_retries: 1
      retry_delay_seconds: 1.0
      backoff: fixed
      circuit_breaker_threshold: 1
      circuit_breaker_reset_seconds: 1.0
    adapters: [{{type: "{T}:FailsCallsFirst", config: {{failures: FAILURES}}}}]
    outbound: out
"""


def test_half_open_trial_that_succeeds_closes_the_circuit_in_a_flow() -> None:
    # the dependency is back after one failure: the trial goes through and the circuit
    # closes, so every later message is called (none refused as circuit_open)
    inputs = [{"message_id": f"m{i}", "payload": i} for i in range(4)]
    result = run(HALF_OPEN.replace("FAILURES", "1"), {"in": inputs})
    assert result.dead_letters("r") == []
    assert sorted(result.payloads("out")) == [0, 1, 2, 3]
    assert FailsCallsFirst.calls == {"m0": 2, "m1": 1, "m2": 1, "m3": 1}


def test_half_open_trial_that_fails_reopens_the_circuit_in_a_flow() -> None:
    # still down at the trial: the circuit opens again at once, so the messages behind
    # the first are refused without a call (well within the 1 s reset time)
    inputs = [{"message_id": f"m{i}", "payload": i} for i in range(4)]
    result = run(HALF_OPEN.replace("FAILURES", "2"), {"in": inputs})
    reasons = {
        d["message"]["message_id"]: (d["reason"], d["attempts"]) for d in result.dead_letters("r")
    }
    assert reasons == {
        "m0": ("failed", 2),
        "m1": ("circuit_open", 0),
        "m2": ("circuit_open", 0),
        "m3": ("circuit_open", 0),
    }
    assert result.payloads("out") == []
    assert FailsCallsFirst.calls == {"m0": 2}


# --- async and sync adapters ---------------------------------------------------------------


def test_async_adapter_keeps_up_to_concurrency_in_flight() -> None:
    result = run(
        f"""
routes:
  r:
    inbound: {{queue: in, concurrency: 6}}
    adapters:
      - type: "{T}:InFlight"
        config: {{sleep_ms: 50}}
    outbound: out
""",
        {"in": list(range(24))},
    )
    assert sorted(result.payloads("out")) == list(range(24))
    assert InFlight.max_running == 6  # one batch of 24, bounded by the route's concurrency
    assert InFlight.threads == {"factflow-worker-loop"}


def test_slow_async_calls_keep_the_concurrency_busy() -> None:
    # one call takes longer than a batch should (connectors/batching.py), but a batch as
    # large as the concurrency takes no longer than one message: batches never go below it
    started = time.monotonic()
    result = run(
        f"""
routes:
  r:
    inbound: {{queue: in, concurrency: 8}}
    adapters:
      - type: "{T}:InFlight"
        config: {{sleep_ms: 300}}
    outbound: out
""",
        {"in": list(range(32))},
    )
    elapsed = time.monotonic() - started
    assert sorted(result.payloads("out")) == list(range(32))
    assert InFlight.max_running == 8
    # four rounds of 8 take ~1.2 s; one message at a time would take 9.6 s
    assert elapsed < 0.5 * 32 * 0.3, f"{elapsed:.1f}s"


def test_concurrency_halves_inside_a_flow_when_calls_are_slower_than_the_target() -> None:
    # 30 ms calls against a 1 ms target: each slow call halves the route's concurrency,
    # so after the first batch (8 at once) the rest run one at a time
    result = run(
        f"""
routes:
  r:
    inbound: {{queue: in, concurrency: 8}}
    backpressure: {{target_latency_ms: 1, min_concurrency: 1, max_concurrency: 8}}
    adapters:
      - type: "{T}:InFlight"
        config: {{sleep_ms: 30}}
    outbound: out
""",
        {"in": list(range(16))},
    )
    assert sorted(result.payloads("out")) == list(range(16))
    assert InFlight.max_running == 8
    assert InFlight.at_start[-8:] == [1] * 8, InFlight.at_start


def test_concurrency_grows_inside_a_flow_while_calls_beat_the_target() -> None:
    # fast calls against a 60 s target: from one at a time the route's concurrency grows
    # additively towards its maximum
    result = run(
        f"""
routes:
  r:
    inbound: {{queue: in, concurrency: 1}}
    backpressure: {{target_latency_ms: 60000, max_concurrency: 6}}
    adapters:
      - type: "{T}:InFlight"
        config: {{sleep_ms: 20}}
    outbound: out
""",
        {"in": list(range(40))},
    )
    assert sorted(result.payloads("out")) == list(range(40))
    assert InFlight.at_start[0] == 1
    assert InFlight.max_running > 1, InFlight.at_start
    assert InFlight.max_running <= 6


def test_async_adapter_with_concurrency_one_runs_one_at_a_time() -> None:
    run(
        f"""
routes:
  r:
    inbound: {{queue: in, concurrency: 1}}
    backpressure: {{max_concurrency: 1}}
    adapters:
      - type: "{T}:InFlight"
        config: {{sleep_ms: 5}}
    outbound: out
""",
        {"in": list(range(8))},
    )
    assert InFlight.max_running == 1


def test_sync_adapter_runs_on_the_worker_thread_not_the_loop() -> None:
    result = run(
        f"""
routes:
  r:
    inbound: {{queue: in, concurrency: 4}}
    adapters: [{{type: "{T}:SyncThreads"}}]
    outbound: out
""",
        {"in": [1, 2, 3]},
    )
    assert [m.metadata for m in result.messages("out")] == [{"sync": True}] * 3
    assert SyncThreads.threads
    assert "factflow-worker-loop" not in SyncThreads.threads


# --- ids ---------------------------------------------------------------------------------


DERIVING = f"""
routes:
  r:
    inbound: {{queue: in}}
    adapters:
      - type: split
        config: {{field: items}}
      - type: "{T}:Explode"
    outbound: out
"""


def test_child_ids_are_deterministic_across_runs() -> None:
    inputs = {"in": [{"items": [{"n": 2}, {"n": 1}]}, {"items": [{"n": 3}]}]}
    first = [m.message_id for m in run(DERIVING, inputs).messages("out")]
    second = [m.message_id for m in run(DERIVING, inputs).messages("out")]
    assert len(first) == 6
    assert len(set(first)) == 6
    assert first == second


def test_child_ids_depend_on_the_parent() -> None:
    one = run(DERIVING, {"in": [{"message_id": "a", "payload": {"items": [{"n": 1}]}}]})
    two = run(DERIVING, {"in": [{"message_id": "b", "payload": {"items": [{"n": 1}]}}]})
    assert one.messages("out")[0].message_id != two.messages("out")[0].message_id
