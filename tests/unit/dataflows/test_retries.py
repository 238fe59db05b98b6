"""Retries and dead letters of sync and async adapters in a real flow (Bytewax `run_main`
through `factflow.testing.run_pipeline`), and the retry delays measured between the
attempts the adapter saw.

Every test runs twice: with a sync adapter and with an async one (the README's own
example adapter is async), since the two paths call and wait differently.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest

from factflow.testing import PipelineResult, run_pipeline
from tests.e2e.adapters_for_tests import ATTEMPTS

T = "tests.e2e.adapters_for_tests"
KINDS = [f"{T}:FailsFirst", f"{T}:AsyncFailsFirst"]

# Sleeps never end early (the loop's clock may round by a millisecond); a loaded 2-core
# machine wakes a sleeper late (0.22 s was seen at load 16), so late gets a wide margin,
# still below the next delay of each schedule, so that a shifted schedule fails.
EARLY = 0.01
LATE = 0.25


def run(adapter: str, error_handling: str, inputs: list[Any], extra: str = "") -> PipelineResult:
    return run_pipeline(
        f"""\
version: "1.0"
name: retries
queue: {{provider: memory}}
routes:
  r:
    inbound: {{queue: in}}
    error_handling: {{circuit_breaker_threshold: 1000, {error_handling}}}
    adapters:
      - type: "{adapter}"
{extra}
    outbound: out
""",
        inputs={"in": inputs},
    )


@pytest.fixture(autouse=True)
def _fresh_attempts() -> None:
    ATTEMPTS.clear()


def gaps(message_id: str) -> list[float]:
    times = ATTEMPTS[message_id]
    return [later - earlier for earlier, later in pairwise(times)]


@pytest.mark.parametrize("adapter", KINDS)
def test_a_failing_adapter_is_retried_then_dead_lettered_with_its_error(adapter: str) -> None:
    inputs = [{"message_id": f"m{i}", "payload": {"i": i}} for i in range(3)]
    result = run(adapter, "max_retries: 2, retry_delay_seconds: 0", inputs)

    assert result.payloads("out") == []
    letters = {letter["message"]["message_id"]: letter for letter in result.dead_letters("r")}
    assert set(letters) == {"m0", "m1", "m2"}
    for i in range(3):
        letter = letters[f"m{i}"]
        assert letter["reason"] == "failed"
        assert letter["attempts"] == 3  # the first call and two retries
        assert letter["error_type"] == "TimeoutError"
        assert letter["error"] == f"attempt 3 on {{'i': {i}}} timed out"
        assert letter["message"]["payload"] == {"i": i}  # the original, for a redrive
        assert len(ATTEMPTS[f"m{i}"]) == 3


@pytest.mark.parametrize("adapter", KINDS)
def test_failures_within_the_retries_pass_the_message_on(adapter: str) -> None:
    inputs = [{"message_id": "m0", "payload": {"i": 0}}]
    result = run(
        adapter,
        "max_retries: 2, retry_delay_seconds: 0",
        inputs,
        extra="        config: {failures: 2}",
    )

    assert result.dead_letters("r") == []
    [out] = result.messages("out")
    assert (out.payload, out.metadata) == ({"i": 0}, {"attempts": 3})
    assert len(ATTEMPTS["m0"]) == 3


@pytest.mark.parametrize("adapter", KINDS)
def test_one_retry_too_few_dead_letters_after_every_attempt(adapter: str) -> None:
    inputs = [{"message_id": "m0", "payload": {"i": 0}}]
    result = run(
        adapter,
        "max_retries: 1, retry_delay_seconds: 0",
        inputs,
        extra="        config: {failures: 2}",
    )

    assert result.payloads("out") == []
    [letter] = result.dead_letters("r")
    assert (letter["attempts"], letter["error"]) == (2, "attempt 2 on {'i': 0} timed out")


@pytest.mark.parametrize("adapter", KINDS)
def test_a_poison_message_is_dead_lettered_and_the_others_flow(adapter: str) -> None:
    inputs = [{"message_id": f"m{i}", "payload": {"i": i, "bad": i == 1}} for i in range(4)]
    result = run(
        adapter,
        "max_retries: 1, retry_delay_seconds: 0",
        inputs,
        # only the poison message reaches the failing adapter; the gate passes the rest
        extra="        condition: {field: bad, operator: eq, value: true}",
    )

    assert [p["i"] for p in result.payloads("out")] == [0, 2, 3]
    [letter] = result.dead_letters("r")
    assert letter["message"]["message_id"] == "m1"
    assert set(ATTEMPTS) == {"m1"}


@pytest.mark.parametrize("adapter", KINDS)
def test_exponential_delays_double_from_the_base_up_to_the_cap(adapter: str) -> None:
    result = run(
        adapter,
        "max_retries: 3, retry_delay_seconds: 0.3, backoff: exponential,"
        " max_retry_delay_seconds: 0.8",
        [{"message_id": "m0", "payload": {}}],
    )

    assert [letter["attempts"] for letter in result.dead_letters("r")] == [4]
    # 0.3 then doubled, then capped at 0.8 (uncapped it would be 1.2)
    for measured, expected in zip(gaps("m0"), [0.3, 0.6, 0.8], strict=True):
        assert expected - EARLY <= measured <= expected + LATE, gaps("m0")


@pytest.mark.parametrize("adapter", KINDS)
def test_fixed_delays_are_the_same_before_every_retry(adapter: str) -> None:
    result = run(
        adapter,
        "max_retries: 3, retry_delay_seconds: 0.2, backoff: fixed",
        [{"message_id": "m0", "payload": {}}],
        extra="        config: {failures: 3}",
    )

    assert result.dead_letters("r") == []
    assert len(result.payloads("out")) == 1
    for measured in gaps("m0"):
        assert 0.2 - EARLY <= measured <= 0.2 + LATE, gaps("m0")
    assert len(gaps("m0")) == 3


@pytest.mark.parametrize("adapter", KINDS)
def test_no_delay_means_the_retries_follow_at_once(adapter: str) -> None:
    run(adapter, "max_retries: 3, retry_delay_seconds: 0", [{"message_id": "m0", "payload": {}}])

    assert len(gaps("m0")) == 3
    assert all(measured < LATE for measured in gaps("m0")), gaps("m0")
