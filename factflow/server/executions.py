"""The execution service: the one home of an execution's life on the server.

Routers, triggers and the CLI's server commands call it; it compiles the pipeline once
with the server's overrides (`compiler.overrides`: default provider, per-execution file
queues, the server's storage), checks the inputs, and asks the supervisor to launch,
cancel or resume. The compiled plan is what the workers run (`plan.json` in the run
folder), so the plan validated here is the plan that runs. It knows no HTTP: errors are
exceptions the API maps to status codes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from factflow.adapters.registry import AdapterRegistry
from factflow.compiler.compile import CompileResult, compile_text
from factflow.compiler.overrides import Overrides
from factflow.compiler.plan import Plan
from factflow.compiler.plan_codec import read_plan
from factflow.db.connection import DbConnection
from factflow.db.repositories import executions as repo
from factflow.server.exceptions import InvalidPipelineError, UnknownInputQueueError
from factflow.server.supervisor import LaunchRequest, Supervisor
from factflow.types import JsonDict


@dataclass(frozen=True)
class StartRequest:
    """An execution to start: the YAML (a stored config's or inline) and how to run it."""

    config_yaml: str
    pipeline_name: str
    config_id: uuid.UUID | None = None
    config_version: int | None = None
    inputs: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    workers: int = 1
    processes: int = 1
    trigger_context: JsonDict = field(default_factory=dict)
    idempotency_key: str | None = None
    source: str = "api"


class ExecutionService:
    def __init__(self, supervisor: Supervisor, registry: AdapterRegistry) -> None:
        self.supervisor = supervisor
        self.registry = registry

    def compile(self, text: str, name: str, execution_id: uuid.UUID) -> CompileResult:
        """`text` compiled as the workers of `execution_id` would run it."""
        settings = self.supervisor.settings
        overrides = Overrides(
            default_provider=settings.default_queue_provider,
            file_queue_dir=self.supervisor.run_dir(execution_id) / "queues",
            storage_uri=self.supervisor.absolute_storage_uri(),
        )
        return compile_text(text, self.registry, file=name, overrides=overrides, name=name)

    def start(self, conn: DbConnection, request: StartRequest) -> tuple[repo.Execution, bool]:
        """Compile, create the row and launch the workers; `(execution, False)` when the
        idempotency key names an existing execution. InvalidPipelineError carries the
        compiler's report; UnknownInputQueueError names inputs no route reads."""
        execution_id = uuid.uuid4()
        result = self.compile(request.config_yaml, request.pipeline_name, execution_id)
        if result.plan is None:
            raise InvalidPipelineError(result.report)
        check_inputs(result.plan, request.inputs)
        return self.supervisor.launch(
            conn,
            LaunchRequest(
                execution_id=execution_id,
                plan=result.plan,
                config_yaml=request.config_yaml,
                pipeline_name=request.pipeline_name,
                config_id=request.config_id,
                config_version=request.config_version,
                inputs=request.inputs,
                workers=request.workers,
                processes=request.processes,
                trigger_context=request.trigger_context,
                idempotency_key=request.idempotency_key,
                source=request.source,
            ),
        )

    def cancel(self, conn: DbConnection, execution_id: uuid.UUID) -> repo.Execution:
        return self.supervisor.cancel(conn, execution_id)

    def resume(self, conn: DbConnection, execution_id: uuid.UUID) -> repo.Execution:
        """Relaunch an interrupted execution with the plan it ran (its `plan.json`, or
        its config snapshot compiled again when the run folder is gone)."""
        return self.supervisor.resume(conn, execution_id, self.plan_of(conn, execution_id))

    def plan_of(self, conn: DbConnection, execution_id: uuid.UUID) -> Plan:
        """The plan an execution runs (or ran)."""
        saved = self.supervisor.run_dir(execution_id) / "plan.json"
        if saved.is_file():
            return read_plan(saved)
        execution = repo.get_execution(conn, execution_id)
        text = str(execution.config_snapshot.get("config_yaml", ""))
        result = self.compile(text, execution.pipeline_name, execution_id)
        if result.plan is None:
            raise InvalidPipelineError(result.report)
        return result.plan


def check_inputs(plan: Plan, inputs: Mapping[str, Any]) -> None:
    readable = {route.inbound_queue for route in plan.routes}
    unknown = sorted(set(inputs) - readable)
    if unknown:
        msg = (
            f"inputs name queue(s) no route reads: {', '.join(unknown)} "
            f"(routes read: {', '.join(sorted(readable))})"
        )
        raise UnknownInputQueueError(msg)
