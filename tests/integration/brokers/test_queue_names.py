"""Queue names checked against each broker's rules at compile time (E402), for inbound,
outbound and dead-letter queues; the provider-shaped default dead-letter queue is valid.
No broker needed."""

from __future__ import annotations

import pytest

from factflow.compiler.compile import compile_text
from factflow.providers.registry import get_provider

GOOD = {
    "rabbitmq": ["orders", "text.docs.in", "a-b_c:d", "q" * 255],
    "stomp": ["/queue/orders", "/topic/events.all", "/queue/a/b-c_d:e"],
    "pulsar": [
        "persistent://public/default/orders",
        "non-persistent://tenant/ns/t.x-y_z",
    ],
    "kafka": ["orders", "text.docs.in", "a-b", "k" * 249],
}
BAD = {
    "rabbitmq": ["with space", "slash/name", "q" * 256, "émoji"],
    "stomp": ["orders", "/queues/orders", "/queue/", "queue/orders", "/queue/with space"],
    "pulsar": ["orders", "persistent://public/orders", "pulsar://public/default/x"],
    "kafka": ["with space", ".", "..", "k" * 250, "slash/name"],
}
URLS = {
    "rabbitmq": "amqp://guest:guest@127.0.0.1:5672/",
    "stomp": "stomp://artemis:artemis@127.0.0.1:61614",
    "pulsar": "pulsar://127.0.0.1:6650",
    "kafka": "127.0.0.1:9092",
}


def _pipeline(provider: str, inbound: str, outbound: str, dlq: str | None = None) -> str:
    handling = f'error_handling: {{dead_letter_queue: "{dlq}"}}\n' if dlq is not None else ""
    return (
        f'version: "1.0"\nqueue: {{provider: {provider}, url: "{URLS[provider]}"}}\n{handling}'
        f'routes:\n  r:\n    inbound: {{queue: "{inbound}"}}\n'
        f'    adapters: [{{type: passthrough}}]\n    outbound: "{outbound}"\n'
    )


def _e402(text: str) -> list[str]:
    result = compile_text(text, strict=True)
    return [".".join(map(str, i.path)) for i in result.report.issues if i.code == "E402"]


@pytest.mark.parametrize(("provider", "name"), [(p, n) for p, names in GOOD.items() for n in names])
def test_valid_names_compile(provider: str, name: str) -> None:
    good_out = GOOD[provider][1] if name == GOOD[provider][0] else GOOD[provider][0]
    result = compile_text(_pipeline(provider, name, good_out), strict=True)
    assert not [i for i in result.report.issues if i.code == "E402"], result.report.issues
    assert result.plan is not None
    # the default dead-letter queue is shaped to the provider and valid too
    [route] = result.plan.routes
    assert route.dead_letter_queue == get_provider(provider).dead_letter_queue("r")


@pytest.mark.parametrize(("provider", "name"), [(p, n) for p, names in BAD.items() for n in names])
def test_invalid_names_are_e402_wherever_they_appear(provider: str, name: str) -> None:
    good = GOOD[provider]
    assert _e402(_pipeline(provider, name, good[0])) == ["routes.r.inbound.queue"]
    assert _e402(_pipeline(provider, good[0], name)) == ["routes.r.outbound.0.queue"]
    assert _e402(_pipeline(provider, good[0], good[1], dlq=name)) == [
        "error_handling.dead_letter_queue"
    ]
    result = compile_text(_pipeline(provider, name, good[0]), strict=True)
    assert result.plan is None
    [issue] = [i for i in result.report.issues if i.code == "E402"]
    assert provider in issue.message
    assert issue.suggestion  # the provider's rule, spelled out
