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
from dataclasses import dataclass, field, replace
from typing import Any

from factflow.adapters.registry import AdapterRegistry
from factflow.compiler.compile import CompileResult, compile_text
from factflow.compiler.overrides import Overrides
from factflow.compiler.plan import Plan
from factflow.compiler.plan_codec import read_plan
from factflow.compiler.replay import ENTRY_START, entered_at, stage_index
from factflow.db.connection import DbConnection
from factflow.db.repositories import configs as configs_repo
from factflow.db.repositories import dead_letters as letters_repo
from factflow.db.repositories import executions as repo
from factflow.db.repositories.retention import reading_stages
from factflow.exceptions import ConfigurationError
from factflow.server import rundir
from factflow.server.exceptions import (
    ExecutionStateError,
    InvalidPipelineError,
    ReplayError,
    UnknownInputQueueError,
)
from factflow.server.replay import ReplayRequest, replay_envelope, select_messages, source_step
from factflow.server.restart import plan_restart
from factflow.server.supervisor import LaunchRequest, StartedBy, Supervisor
from factflow.storage import open_storage
from factflow.storage.base import StageStorage
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
    init_payload: JsonDict | None = None
    """Merged over the pipeline's `init_message` payload (an event trigger's
    `init_payload: true` sends the event's data)."""
    started_by: StartedBy | None = None


@dataclass(frozen=True)
class ReplayOutcome:
    """What a replay reads and where it goes; `execution` is None for a dry run."""

    source_route: str
    source_stage: str
    entry_route: str
    entry_queue: str
    after_stage: str | None
    """The entry route runs its steps after this one (None: all of them)."""
    routes: list[str]
    """The routes the replay runs."""
    messages: int
    replay_source: JsonDict
    execution: repo.Execution | None = None


class ExecutionService:
    def __init__(self, supervisor: Supervisor, registry: AdapterRegistry) -> None:
        self.supervisor = supervisor
        self.registry = registry
        if supervisor.settings.resume_abandoned:
            # the supervisor finds abandoned executions; resuming needs their plan
            supervisor.on_abandoned = self.resume

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
        plan = result.plan
        if request.init_payload is not None and plan.init_message is not None:
            init = plan.init_message
            payload = {**init.payload, **request.init_payload}
            plan = replace(plan, init_message=replace(init, payload=payload))
        return self.supervisor.launch(
            conn,
            LaunchRequest(
                execution_id=execution_id,
                plan=plan,
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
                started_by=request.started_by,
                parsed_yaml=result.loaded.data,
            ),
        )

    def cancel(self, conn: DbConnection, execution_id: uuid.UUID) -> repo.Execution:
        return self.supervisor.cancel(conn, execution_id)

    def resume(self, conn: DbConnection, execution_id: uuid.UUID) -> repo.Execution:
        """Relaunch an interrupted execution with the plan it ran (its `plan.json`, or
        its config snapshot compiled again when the run folder is gone), from its
        recovery snapshot; when that is gone too, from lineage and stage storage
        (`server.restart`)."""
        plan = self.plan_of(conn, execution_id)
        if self.supervisor.has_recovery(conn, execution_id):
            return self.supervisor.resume(conn, execution_id, plan)
        execution = repo.get_execution(conn, execution_id)
        if execution.status != "interrupted":
            # the supervisor refuses it with the reason; nothing to compute
            return self.supervisor.resume(conn, execution_id, plan)
        uri = plan.storage_uri or self.supervisor.absolute_storage_uri()
        with open_storage(uri) as storage:
            restart = plan_restart(
                conn,
                storage,
                plan,
                execution_id,
                rundir.input_files(self.supervisor.run_dir(execution_id)),
                window_seconds=self.supervisor.settings.restart_window_seconds,
            )
        return self.supervisor.resume(conn, execution_id, plan, restart)

    def plan_of(self, conn: DbConnection, execution_id: uuid.UUID) -> Plan:
        """The plan an execution runs (or ran); a replay's is cut again from its
        snapshot's when the run folder is gone."""
        saved = self.supervisor.run_dir(execution_id) / "plan.json"
        if saved.is_file():
            return read_plan(saved)
        execution = repo.get_execution(conn, execution_id)
        text = str(execution.config_snapshot.get("config_yaml", ""))
        result = self.compile(text, execution.pipeline_name, execution_id)
        if result.plan is None:
            raise InvalidPipelineError(result.report)
        entry = (execution.replay_source or {}).get("entry_route")
        if isinstance(entry, str):
            after = int((execution.replay_source or {}).get("after_index", ENTRY_START))
            return entered_at(result.plan, entry, after)
        return result.plan

    def replay(
        self, conn: DbConnection, storage: StageStorage, request: ReplayRequest
    ) -> ReplayOutcome:
        """A new execution (`source: replay`) fed the stored outputs of a stage of
        `request.parent_id`: the steps after it run (or `to_route`'s, in this or another
        pipeline). Everything is checked before anything starts: ReplayError for a stage,
        route or config that does not fit, MissingStoredMessagesError naming stored
        messages that are gone. A dry run stops after the checks."""
        parent = repo.get_execution(conn, request.parent_id)
        if not parent.is_terminal and parent.status != "interrupted":
            msg = (
                f"execution {parent.id} is {parent.status}: replay a finished (or "
                "interrupted) execution, so its stored messages are complete"
            )
            raise ExecutionStateError(msg)
        route, step = source_step(
            self.plan_of(conn, parent.id), request.from_stage, request.from_route
        )
        text, name, config_id, version = self._replay_config(conn, parent, request)
        execution_id = uuid.uuid4()
        result = self.compile(text, name, execution_id)
        if result.plan is None:
            raise InvalidPipelineError(result.report)
        entry, after = self._entry(result.plan, route.id, step.stage, request)
        plan = entered_at(result.plan, entry, after)
        # a prune waits while the stored messages are read (the replay then has them)
        with reading_stages(conn, parent.id):
            messages = select_messages(
                conn, storage, parent.id, route.id, step.stage, request.filter
            )
        if not messages:
            msg = (
                f"none of the stored messages of stage '{route.id}/{step.stage}' match the "
                f"filter {request.filter.to_dict()}"
            )
            raise ReplayError(msg)
        batch_id = str(uuid.uuid4())
        replay_source: JsonDict = {
            "execution_id": str(parent.id),
            "route_id": route.id,
            "stage": step.stage,
            "to_route": request.to_route,
            "entry_route": entry,
            "after_index": after,
            "config": "target" if request.cross_pipeline else request.config,
            "replay_batch_id": batch_id,
            "messages": len(messages),
            "filter": request.filter.to_dict(),
        }
        entry_route = plan.route(entry)
        outcome = ReplayOutcome(
            source_route=route.id,
            source_stage=step.stage,
            entry_route=entry,
            entry_queue=entry_route.inbound_queue,
            after_stage=None
            if after == ENTRY_START
            else result.plan.route(entry).adapters[after].stage,
            routes=[r.id for r in plan.routes],
            messages=len(messages),
            replay_source=replay_source,
        )
        if request.dry_run:
            return outcome
        inputs = {
            entry_route.inbound_queue: [replay_envelope(m, batch_id, parent.id) for m in messages]
        }
        execution, _ = self.supervisor.launch(
            conn,
            LaunchRequest(
                execution_id=execution_id,
                plan=plan,
                config_yaml=text,
                pipeline_name=name,
                config_id=config_id,
                config_version=version,
                inputs=inputs,
                workers=request.workers,
                processes=request.processes,
                source="replay",
                replay_source=replay_source,
                started_by=request.started_by,
            ),
        )
        return replace(outcome, execution=execution)

    def redrive_into_executions(
        self,
        conn: DbConnection,
        letters: Sequence[letters_repo.DeadLetter],
        *,
        to_route: str | None = None,
        workers: int = 1,
        processes: int = 1,
        started_by: StartedBy | None = None,
    ) -> list[repo.Execution]:
        """Dead letters into new executions of their execution's config snapshot, one per
        (execution, entry): each letter's message enters its route after the step that
        emitted it (the failed step runs again, the ones before it do not), or `to_route`'s
        first step. Letters are marked redriven once their execution is launched."""
        groups: dict[tuple[uuid.UUID, str, int], list[letters_repo.DeadLetter]] = {}
        plans: dict[uuid.UUID, Plan] = {}
        for letter in letters:
            if letter.execution_id not in plans:
                plans[letter.execution_id] = self.plan_of(conn, letter.execution_id)
            entry, after = _letter_entry(plans[letter.execution_id], letter, to_route)
            groups.setdefault((letter.execution_id, entry, after), []).append(letter)
        started = []
        for (parent_id, entry, after), group in groups.items():
            parent = repo.get_execution(conn, parent_id)
            text = str(parent.config_snapshot.get("config_yaml", ""))
            execution_id = uuid.uuid4()
            result = self.compile(text, parent.pipeline_name, execution_id)
            if result.plan is None:
                raise InvalidPipelineError(result.report)
            plan = entered_at(result.plan, entry, after)
            envelopes = [letters_repo.redrive_envelope(letter) for letter in group]
            execution, _ = self.supervisor.launch(
                conn,
                LaunchRequest(
                    execution_id=execution_id,
                    plan=plan,
                    config_yaml=text,
                    pipeline_name=parent.pipeline_name,
                    config_id=parent.config_id,
                    config_version=parent.config_version,
                    inputs={plan.route(entry).inbound_queue: envelopes},
                    workers=workers,
                    processes=processes,
                    source="redrive",
                    replay_source={
                        "execution_id": str(parent_id),
                        "dead_letter_ids": [letter.id for letter in group],
                        "entry_route": entry,
                        "after_index": after,
                    },
                    started_by=started_by,
                ),
            )
            letters_repo.mark_redriven(conn, ids=[letter.id for letter in group])
            started.append(execution)
        return started

    def _replay_config(
        self, conn: DbConnection, parent: repo.Execution, request: ReplayRequest
    ) -> tuple[str, str, uuid.UUID | None, int | None]:
        """The YAML the replay runs, its name, config id and version."""
        if request.target_yaml is not None:
            return request.target_yaml, request.target_name, None, None
        if request.target_config_id is not None:
            target = configs_repo.get_config(conn, request.target_config_id)
            return target.config_yaml, target.name, target.id, target.version
        if request.config == "current":
            if parent.config_id is None:
                msg = (
                    f"execution {parent.id} ran inline YAML, not a stored config: there is "
                    "no current version to replay with (use config: snapshot)"
                )
                raise ReplayError(msg)
            current = configs_repo.get_config(conn, parent.config_id)
            return current.config_yaml, current.name, current.id, current.version
        text = str(parent.config_snapshot.get("config_yaml", ""))
        return text, parent.pipeline_name, parent.config_id, parent.config_version

    @staticmethod
    def _entry(plan: Plan, route_id: str, stage: str, request: ReplayRequest) -> tuple[str, int]:
        """The route the messages enter and the adapter index they enter after."""
        if request.to_route is not None:
            if all(r.id != request.to_route for r in plan.routes):
                known = ", ".join(r.id for r in plan.routes)
                msg = f"to_route '{request.to_route}' is not a route (the target's: {known})"
                raise ReplayError(msg)
            return request.to_route, ENTRY_START
        if request.cross_pipeline:
            msg = "a cross-pipeline replay needs to_route: the route of the target to feed"
            raise ReplayError(msg)
        if all(r.id != route_id for r in plan.routes):
            msg = f"the config replayed with has no route '{route_id}' any more"
            raise ReplayError(msg)
        try:
            return route_id, stage_index(plan.route(route_id), stage)
        except ConfigurationError as exc:
            raise ReplayError(str(exc)) from exc


def check_inputs(plan: Plan, inputs: Mapping[str, Any]) -> None:
    readable = {route.inbound_queue for route in plan.routes}
    unknown = sorted(set(inputs) - readable)
    if unknown:
        msg = (
            f"inputs name queue(s) no route reads: {', '.join(unknown)} "
            f"(routes read: {', '.join(sorted(readable))})"
        )
        raise UnknownInputQueueError(msg)


def _letter_entry(
    plan: Plan, letter: letters_repo.DeadLetter, to_route: str | None
) -> tuple[str, int]:
    """Where a dead letter's message re-enters: after the step of its route that emitted
    it (its envelope's `stage`), else at its route's (or `to_route`'s) first step."""
    if to_route is not None:
        if all(r.id != to_route for r in plan.routes):
            known = ", ".join(r.id for r in plan.routes)
            msg = f"to_route '{to_route}' is not a route of the pipeline (its routes: {known})"
            raise ReplayError(msg)
        return to_route, ENTRY_START
    route = plan.route(letter.route_id)
    if letter.message.get("route_id") == route.id:
        stage = letter.message.get("stage")
        for step in route.adapters:
            if step.stage == stage:
                return route.id, step.index
    return route.id, ENTRY_START
