"""Storage retention: deleting the stored stages of finished executions.

Stage storage is the source of truth for replay and restart, so pruning keeps what a live
execution may still read: its own stages while it runs, is cancelling or is interrupted
(a resume without snapshot restarts from them), and the stages of every execution a live
replay, redrive or restart names as its parent (conservatively: a launched replay has its
inputs in its run folder). A replay holds a shared lock on its parent's stages while it
reads them (`db.repositories.retention.reading_stages`), so a prune never deletes under a
replay that is starting. A dry run lists what would go.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from factflow.db.connection import DbConnection
from factflow.db.exceptions import NotFoundError
from factflow.db.repositories import executions as repo
from factflow.db.repositories import retention as retention_repo
from factflow.server.exceptions import RetentionError, StorageInUseError
from factflow.storage.base import StageStorage
from factflow.storage.keys import stage_prefix
from factflow.types import JsonDict

_FINISHED = ("completed", "failed", "cancelled")


@dataclass(frozen=True)
class PruneRequest:
    """Prune the executions that finished more than `older_than` ago, or those named
    (when both are given: the named ones that finished that long ago)."""

    older_than: timedelta | None = None
    execution_ids: tuple[uuid.UUID, ...] = ()
    dry_run: bool = False


@dataclass
class PruneOutcome:
    dry_run: bool
    pruned: list[JsonDict] = field(default_factory=list)
    """Per execution: id, status, completed_at, objects and bytes (deleted, or that would be)."""
    kept: list[JsonDict] = field(default_factory=list)
    """Per execution considered but kept: id and reason."""

    def to_dict(self) -> JsonDict:
        return {
            "dry_run": self.dry_run,
            "executions": len(self.pruned),
            "objects": sum(int(p["objects"]) for p in self.pruned),
            "bytes": sum(int(p["bytes"]) for p in self.pruned),
            "pruned": self.pruned,
            "kept": self.kept,
        }


def prune(conn: DbConnection, storage: StageStorage, request: PruneRequest) -> PruneOutcome:
    """Delete (or, dry run, list) the stored stages `request` names, keeping what a live
    execution needs. StorageInUseError (nothing deleted) when a named execution is needed."""
    if request.older_than is None and not request.execution_ids:
        msg = "say what to prune: older_than (e.g. 30d), execution ids, or both"
        raise RetentionError(msg)
    cutoff = None if request.older_than is None else datetime.now(UTC) - request.older_than
    live = retention_repo.needed_by_live(conn)
    outcome = PruneOutcome(request.dry_run)
    if request.execution_ids:
        executions = [_named(conn, i) for i in request.execution_ids]
        needed = [
            {"execution_id": str(e.id), "reason": reason}
            for e in executions
            if (reason := _needed(e, live, None)) is not None
        ]
        if needed:
            reasons = "; ".join(f"{k['execution_id']}: {k['reason']}" for k in needed)
            msg = f"{len(needed)} named execution(s) are still needed, nothing pruned: {reasons}"
            raise StorageInUseError(msg, needed)
    else:
        assert cutoff is not None
        executions = [
            repo.get_execution(conn, i) for i in retention_repo.finished_before(conn, cutoff)
        ]
    for execution in executions:
        reason = _needed(execution, live, cutoff)
        if reason is not None:
            outcome.kept.append({"execution_id": str(execution.id), "reason": reason})
            continue
        with retention_repo.pruning_stages(conn, execution.id) as held:
            if not held:
                outcome.kept.append(
                    {"execution_id": str(execution.id), "reason": "a replay is reading it"}
                )
                continue
            outcome.pruned.append(_prune_one(conn, storage, execution, request.dry_run))
    return outcome


def _named(conn: DbConnection, execution_id: uuid.UUID) -> repo.Execution:
    try:
        return repo.get_execution(conn, execution_id)
    except NotFoundError:
        msg = f"no execution {execution_id}: nothing of it to prune"
        raise RetentionError(msg) from None


def _needed(
    execution: repo.Execution,
    live: dict[uuid.UUID, list[uuid.UUID]],
    cutoff: datetime | None,
) -> str | None:
    """Why `execution`'s stages must stay, or None."""
    if execution.status not in _FINISHED:
        if execution.status == "interrupted":
            return "interrupted: a resume restarts it from its stored stages"
        return f"{execution.status}: its workers read and write its stages"
    children = live.get(execution.id)
    if children:
        names = ", ".join(str(c) for c in children)
        return f"live execution(s) {names} replay or redrive it"
    if cutoff is not None and (execution.completed_at is None or execution.completed_at >= cutoff):
        return f"finished after {cutoff.isoformat()}"
    return None


def _prune_one(
    conn: DbConnection, storage: StageStorage, execution: repo.Execution, dry_run: bool
) -> JsonDict:
    objects = storage.list(stage_prefix(str(execution.id)))
    if not dry_run:
        for info in objects:
            storage.delete(info.key)
        pruned: JsonDict = {
            "at": datetime.now(UTC).isoformat(),
            "objects": len(objects),
            "bytes": sum(o.size for o in objects),
        }
        repo.merge_stats(conn, execution.id, {"storage_pruned": pruned})
    return {
        "execution_id": str(execution.id),
        "status": execution.status,
        "completed_at": None
        if execution.completed_at is None
        else execution.completed_at.isoformat(),
        "objects": len(objects),
        "bytes": sum(o.size for o in objects),
    }
