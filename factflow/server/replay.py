"""Replay's reading side: which stage, which stored messages, and what is missing.

A replay reads `executions/<parent>/<route>/<stage>/*` (the stage's stored outputs). The
source route and stage are resolved in the **parent's** plan, never the target's, so a
cross-pipeline replay into a config with the same route names reads what the parent ran.
Before anything starts, lineage is asked which outputs of the stage later steps consumed;
each must be in storage, else the replay fails naming the missing keys.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from factflow.compiler.plan import AdapterStep, Plan, RoutePlan
from factflow.db.connection import DbConnection
from factflow.db.repositories.replay import consumed_outputs
from factflow.server.exceptions import MissingStoredMessagesError, ReplayError
from factflow.server.supervisor import StartedBy
from factflow.storage.base import StageStorage
from factflow.storage.keys import DEFAULT_EXT, parse_stage_key, stage_key, stage_prefix
from factflow.types import JsonDict

ConfigChoice = Literal["snapshot", "current"]
FAILED_STATUSES = frozenset({"failed", "dead_lettered"})
MAX_NAMED = 20
"""Missing keys named in an error message (the error's `missing` holds them all)."""


@dataclass(frozen=True)
class MessageFilter:
    """Which stored messages to replay; empty: all of them."""

    message_ids: frozenset[str] = frozenset()
    only_failed: bool = False
    """Only outputs whose next step failed or dead-lettered them in the parent."""
    url: str | None = None
    document_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    """A window on the stored message's `timestamp` (inclusive)."""

    def to_dict(self) -> JsonDict:
        data: JsonDict = {
            "message_ids": sorted(self.message_ids) or None,
            "only_failed": self.only_failed or None,
            "url": self.url,
            "document_id": self.document_id,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }
        return {k: v for k, v in data.items() if v is not None}

    def keeps(self, envelope: Mapping[str, Any]) -> bool:
        if self.url is not None and _field(envelope, "url") != self.url:
            return False
        if self.document_id is not None and _field(envelope, "document_id") != self.document_id:
            return False
        if self.since is not None or self.until is not None:
            when = _timestamp(envelope)
            if when is None:
                return False
            if self.since is not None and when < self.since:
                return False
            if self.until is not None and when > self.until:
                return False
        return True


@dataclass(frozen=True)
class ReplayRequest:
    """Replay the stored outputs of `from_stage` of execution `parent_id`.

    Same pipeline: the steps after the stage run, with the parent's config (`snapshot`)
    or its config's newest version (`current`). With `to_route`, the messages enter that
    route at its first step instead; with `target_config_id` or `target_yaml` that route
    is in another pipeline (cross-pipeline replay).
    """

    parent_id: uuid.UUID
    from_stage: str
    from_route: str | None = None
    to_route: str | None = None
    config: ConfigChoice = "snapshot"
    target_config_id: uuid.UUID | None = None
    target_yaml: str | None = None
    target_name: str = "inline"
    """The pipeline name of `target_yaml` (its `name:`)."""
    filter: MessageFilter = field(default_factory=MessageFilter)
    dry_run: bool = False
    workers: int = 1
    processes: int = 1
    started_by: StartedBy | None = None

    @property
    def cross_pipeline(self) -> bool:
        return self.target_config_id is not None or self.target_yaml is not None


@dataclass(frozen=True)
class StoredMessage:
    key: str
    envelope: JsonDict


def source_step(plan: Plan, stage: str, route_id: str | None) -> tuple[RoutePlan, AdapterStep]:
    """The route and adapter step named by `stage` (and `route_id`) in the parent's plan."""
    routes = [plan.route(route_id)] if route_id is not None and _has(plan, route_id) else []
    if route_id is not None and not routes:
        known = ", ".join(r.id for r in plan.routes)
        msg = f"the parent execution has no route '{route_id}' (its routes: {known})"
        raise ReplayError(msg)
    candidates = [
        (route, step)
        for route in routes or plan.routes
        for step in route.adapters
        if step.stage == stage
    ]
    if not candidates:
        stages = ", ".join(f"{r.id}/{s.stage}" for r in routes or plan.routes for s in r.adapters)
        msg = f"the parent execution has no stage '{stage}' (its stages: {stages})"
        raise ReplayError(msg)
    if len(candidates) > 1:
        names = ", ".join(route.id for route, _ in candidates)
        msg = f"stage '{stage}' is in routes {names}: name one with from_route"
        raise ReplayError(msg)
    route, step = candidates[0]
    if not step.store:
        msg = (
            f"stage '{route.id}/{stage}' does not store its outputs (store: false), so "
            "there is nothing to replay from it; replay from an earlier stored stage"
        )
        raise ReplayError(msg)
    return candidates[0]


def _has(plan: Plan, route_id: str) -> bool:
    return any(r.id == route_id for r in plan.routes)


def select_messages(
    conn: DbConnection,
    storage: StageStorage,
    parent_id: uuid.UUID,
    route_id: str,
    stage: str,
    selection: MessageFilter,
) -> list[StoredMessage]:
    """The stage's stored messages that `selection` keeps, in key order.

    MissingStoredMessagesError when the stage has no objects, when an output lineage
    says a later step consumed is not stored, or when a requested message id is not.
    """
    parent = str(parent_id)
    prefix = stage_prefix(parent, route_id, stage)
    stored = {_message_id(o.key, prefix): o.key for o in storage.list(prefix)}
    consumed = consumed_outputs(conn, parent_id, route_id, stage)
    if not stored:
        msg = (
            f"no stored messages under {prefix}: the stage's objects are gone or were "
            f"never written (check with `factflow storage list --execution {parent}`)"
        )
        raise MissingStoredMessagesError(msg, [prefix])
    wanted = {c.message_id for c in consumed} | set(selection.message_ids)
    missing = sorted(stage_key(parent, route_id, stage, m) for m in wanted if m not in stored)
    if missing:
        named = ", ".join(missing[:MAX_NAMED])
        more = f" and {len(missing) - MAX_NAMED} more" if len(missing) > MAX_NAMED else ""
        msg = (
            f"{len(missing)} stored message(s) of stage '{route_id}/{stage}' that the "
            f"replay needs are missing: {named}{more}"
        )
        raise MissingStoredMessagesError(msg, missing)
    ids = sorted(stored)
    if selection.message_ids:
        ids = [m for m in ids if m in selection.message_ids]
    if selection.only_failed:
        failed = {c.message_id for c in consumed if c.status in FAILED_STATUSES}
        ids = [m for m in ids if m in failed]
    out = []
    for message_id in ids:
        key = stored[message_id]
        envelope = json.loads(storage.get(key))
        if isinstance(envelope, dict) and selection.keeps(envelope):
            out.append(StoredMessage(key, envelope))
    return out


def _message_id(key: str, prefix: str) -> str:
    """The message id of a stage object's key: cut from the key as stored (it was checked
    when it was put), parsed in full only when it is not the plain `<id>.json`."""
    rest = key[len(prefix) :]
    if key.startswith(prefix) and rest.endswith(DEFAULT_EXT) and "/" not in rest:
        return rest[: -len(DEFAULT_EXT)]
    return parse_stage_key(key).message_id


def replay_envelope(message: StoredMessage, batch_id: str, parent_id: uuid.UUID) -> JsonDict:
    """The stored envelope as the replay's input: same ids (so lineage rows descend from
    the parent's), tagged with the replay batch."""
    envelope = dict(message.envelope)
    metadata = dict(envelope.get("metadata") or {})
    metadata["replay_batch_id"] = batch_id
    metadata["replayed_from_execution"] = str(parent_id)
    envelope["metadata"] = metadata
    return envelope


def _field(envelope: Mapping[str, Any], name: str) -> Any:
    for part in ("payload", "metadata"):
        source = envelope.get(part)
        if isinstance(source, Mapping) and name in source:
            return source[name]
    return None


def _timestamp(envelope: Mapping[str, Any]) -> datetime | None:
    value = envelope.get("timestamp")
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
