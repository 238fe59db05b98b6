"""Errors of the triggers area; each docstring tells the operator what to do."""

from factflow.exceptions import FactflowError


class TriggerError(FactflowError):
    """A trigger or schedule is not valid: the message names the field and the fix."""
