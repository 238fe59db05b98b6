"""`memory`: in-process queues, for tests and `factflow.testing`."""

from factflow.providers.spec import ProviderSpec

PROVIDER = ProviderSpec(
    name="memory",
    connector="factflow.connectors.memory",
    summary="in-process queues (tests)",
    finite=True,
)
