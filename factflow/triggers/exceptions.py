"""Errors of the triggers area; each docstring tells the operator what to do."""

from factflow.exceptions import ConfigurationError


class TriggerError(ConfigurationError):
    """A trigger or schedule is not valid: the message names the field, its E-code and
    the fix."""
