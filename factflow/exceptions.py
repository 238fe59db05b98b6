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
