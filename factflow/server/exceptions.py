"""Errors of the execution supervisor; each docstring tells the caller what to do."""

from factflow.exceptions import FactflowError


class SupervisorError(FactflowError):
    """An execution could not be launched, cancelled or resumed; the message says why."""


class TooManyConcurrentExecutionsError(SupervisorError):
    """`max_concurrent_executions` executions are running already.

    Wait for one to finish (or cancel one), or raise FACTFLOW_MAX_CONCURRENT_EXECUTIONS.
    """


class ExecutionStateError(SupervisorError):
    """The execution is not in a state that allows the request (resume a running one...)."""
