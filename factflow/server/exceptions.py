"""Errors of the execution supervisor; each docstring tells the caller what to do."""

from factflow.compiler.diagnostics import ValidationReport, format_path
from factflow.exceptions import FactflowError


class SupervisorError(FactflowError):
    """An execution could not be launched, cancelled or resumed; the message says why."""


class TooManyConcurrentExecutionsError(SupervisorError):
    """`max_concurrent_executions` executions are running already.

    Wait for one to finish (or cancel one), or raise FACTFLOW_MAX_CONCURRENT_EXECUTIONS.
    """


class KeyExecutionLimitError(TooManyConcurrentExecutionsError):
    """The API key that asks has as many executions running as it may
    (`max_running_executions`, FACTFLOW_AUTH_KEY_MAX_RUNNING_EXECUTIONS): wait for one to
    finish, cancel one, or ask an admin for a key with a higher cap."""


class ExecutionStateError(SupervisorError):
    """The execution is not in a state that allows the request (resume a running one...)."""


class InvalidPipelineError(SupervisorError):
    """The pipeline does not compile: `report` is the compiler's report. Fix the config."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        first = report.errors[0] if report.errors else None
        where = format_path(first.path) if first else ""
        detail = f"; first: {first.code} at {where}: {first.message}" if first else ""
        super().__init__(f"the pipeline config is invalid ({len(report.errors)} error(s)){detail}")


class UnknownInputQueueError(SupervisorError):
    """Inputs name queues no route reads: name a route's inbound queue."""


class ReplayError(SupervisorError):
    """A replay cannot be made as asked (no such stage or route, a stage that stores
    nothing, no matching messages): the message says which and what exists."""


class MissingStoredMessagesError(ReplayError):
    """Stored messages a replay needs are gone: `missing` names them (keys, or the prefix
    when the stage has no objects at all). Check with `factflow storage list`."""

    def __init__(self, message: str, missing: list[str]) -> None:
        super().__init__(message)
        self.missing = missing


class RetentionError(SupervisorError):
    """A prune was asked for without saying what to prune: give an age, execution ids,
    or both."""


class StorageInUseError(RetentionError):
    """Executions named for pruning are still needed (live, or read by a live replay or
    restart): `kept` says which and why. Wait for them to finish, or cancel them."""

    def __init__(self, message: str, kept: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.kept = kept
