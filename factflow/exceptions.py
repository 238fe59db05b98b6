"""The root of factflow's exceptions; each area adds its own below it."""


class FactflowError(Exception):
    """Base of every error factflow raises on purpose."""


class ConfigurationError(FactflowError):
    """A pipeline, adapter or setting is invalid.

    Fix the configuration the message names; a pipeline's full report comes from
    `factflow compile PIPELINE.yaml`.
    """


class AdapterRegistrationError(ConfigurationError):
    """An adapter class cannot be registered: no name, or an invalid JSON Schema."""


class NonRetryableError(FactflowError):
    """Raised by an adapter for a message that no retry can fix (a page robots.txt denies,
    a 404, a payload of the wrong shape).

    The runtime dead-letters the message at once, with reason `non_retryable` and one
    attempt, and does not count it against the adapter's circuit breaker: the adapter
    worked, the input is bad. Redrive it after fixing its cause.
    """
