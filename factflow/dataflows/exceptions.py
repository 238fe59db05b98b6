"""Errors of the runtime's own commands (redrive)."""

from factflow.exceptions import FactflowError


class RedriveError(FactflowError):
    """Publishing dead letters back onto their queue failed.

    The letters whose publish failed are not marked redriven: fix the queue provider the
    message names and run the redrive again; nothing was lost.
    """
