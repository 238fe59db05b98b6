"""Restarting an interrupted execution from lineage and stage storage, when its recovery
snapshot is gone (the worker's disk and the Postgres archive both lost).

What the workers guarantee makes this exact where it matters: an epoch closes only after
its lineage rows are written, and everything a message does inside the dataflow happens
in the epoch that carried it. So a row older than the last epoch belongs to a closed
epoch, and whatever its outputs led to is recorded too. Only the rows of the last
`window` seconds before the execution's newest row can have outputs still in flight:

- each stored output of such a row that no later step took for good (see
  `db.repositories.restart`) re-enters its route after the step that stored it, from
  the stored envelope (same id, same parent row, so lineage links up);
- each input line and the init message re-enters its route from the first step unless a
  step of that route took it for good (their ids are derived from the execution and the
  line, so they are known without reading anything);
- messages on broker and Postgres queues were not acknowledged past the last closed
  epoch: the queue delivers them again, as on any resume.

Nothing stored is processed again. Duplicates are bounded by the window: an output of
the last seconds that only went to a sink (a queue, a writer) is sent to it once more,
which idempotent writers absorb. What is lost with the snapshot: the state of stateful
adapters (a `deduplicate` forgets what it saw) and file-provider offsets of queues the
execution does not feed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

from factflow.compiler.plan import AdapterStep, Plan
from factflow.compiler.replay import ENTRY_START
from factflow.connectors.codec import decode_json_line
from factflow.dataflows.entries import mark_entry
from factflow.dataflows.invoke import child_id
from factflow.db.connection import DbConnection
from factflow.db.repositories import restart as restart_repo
from factflow.deadletter import Undecodable
from factflow.ids import record_id
from factflow.storage.base import StageStorage
from factflow.storage.keys import stage_key
from factflow.types import JsonDict

DEFAULT_WINDOW_SECONDS = 10.0
"""`FACTFLOW_RESTART_WINDOW_SECONDS`: longer than the longest epoch (interval + one batch)."""


@dataclass
class Restart:
    """What the restarted workers read instead of their recovery snapshot."""

    plan: Plan
    """The execution's plan without its init message (an entry when it is needed)."""
    inputs: dict[str, list[JsonDict]]
    """Each input queue, emptied: its lines that still need to run are entries."""
    entries: dict[str, list[JsonDict]] = field(default_factory=dict)
    """Route -> marked envelopes entering it (`dataflows.entries`)."""
    summary: JsonDict = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    """Entries per `route/stage` they enter after."""

    def add(self, route_id: str, envelope: JsonDict, after: int, stage: str | None) -> None:
        self.entries.setdefault(route_id, []).append(mark_entry(envelope, after))
        where = f"{route_id}/{stage}" if stage is not None else f"{route_id} (first step)"
        self.counts[where] = self.counts.get(where, 0) + 1


def plan_restart(
    conn: DbConnection,
    storage: StageStorage,
    plan: Plan,
    execution_id: uuid.UUID,
    inputs: Mapping[str, str],
    *,
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
) -> Restart:
    """The entries that restart `execution_id` (running `plan`, started with the input
    files `inputs`) where lineage and storage say each message is."""
    restart = Restart(replace(plan, init_message=None), {queue: [] for queue in inputs})
    roots = _root_messages(plan, execution_id, inputs)
    readers = sorted({route for route, _ in roots})
    taken = restart_repo.settled_roots(
        conn, execution_id, readers, sorted({m["message_id"] for _, m in roots})
    )
    for route_id, envelope in roots:
        if (route_id, envelope["message_id"]) not in taken:
            restart.add(route_id, envelope, ENTRY_START, None)
    inputs_again = sum(len(v) for v in restart.entries.values())
    newest = restart_repo.last_completed_at(conn, execution_id)
    in_flight = 0
    if newest is not None:
        since = newest - timedelta(seconds=window_seconds)
        rows = restart_repo.stored_rows_since(conn, execution_id, since)
        done = restart_repo.settled_outputs(conn, execution_id, [r.id for r in rows])
        steps = {(r.id, s.index): s for r in plan.routes for s in r.adapters}
        for row in rows:
            step = steps.get((row.route_id, row.adapter_index))
            if step is None:
                continue  # a step the plan no longer has (a replay's trimmed plan)
            for key, message_id in _stored_outputs(storage, execution_id, row, step):
                if (row.id, message_id) in done:
                    continue
                envelope = json.loads(storage.get(key))
                restart.add(row.route_id, envelope, row.adapter_index, row.stage_name)
                in_flight += 1
    restart.summary = {
        "from": "lineage",
        "window_seconds": window_seconds,
        "newest_row_at": None if newest is None else newest.isoformat(),
        "inputs_again": inputs_again,
        "in_flight_again": in_flight,
        "entries": dict(sorted(restart.counts.items())),
    }
    return restart


def _root_messages(
    plan: Plan, execution_id: uuid.UUID, inputs: Mapping[str, str]
) -> list[tuple[str, JsonDict]]:
    """`(route, envelope)` of every input line and the init message, with the ids the
    sources gave them (`factflow.ids.record_id`)."""
    out: list[tuple[str, JsonDict]] = []
    if plan.init_message is not None:
        envelope: JsonDict = {
            "message_id": record_id(f"init:{execution_id}", 0),
            "execution_id": str(execution_id),
            "payload": plan.init_message.payload,
            "metadata": dict(plan.init_message.metadata),
        }
        out.append((plan.init_message.route, envelope))
    for queue, path in inputs.items():
        routes = [r for r in plan.routes if r.inbound_queue == queue]
        raw = any(r.format == "raw" for r in routes)
        for index, line in enumerate(_lines(Path(path))):
            if not line.strip():
                continue
            message = decode_json_line(line, raw=raw, queue=queue, position=index)
            if isinstance(message, Undecodable):
                continue  # dead-lettered when it was read; nothing to run again
            for route in routes:
                out.append((route.id, message.to_envelope()))
    return out


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True) if path.is_file() else []


def _stored_outputs(
    storage: StageStorage,
    execution_id: uuid.UUID,
    row: restart_repo.StoredRow,
    step: AdapterStep,
) -> list[tuple[str, str]]:
    """`(key, message id)` of what `row` stored: the input passed on under its own id,
    and the new messages with ids derived from it (`dataflows.invoke.child_id`), in
    order; a passed-on input leaves one gap in the derived ids."""
    execution = str(execution_id)

    def key(message_id: str) -> str:
        return stage_key(execution, row.route_id, row.stage_name, message_id)

    found: list[tuple[str, str]] = []
    if storage.exists(key(row.message_id)):
        found.append((key(row.message_id), row.message_id))
    gaps = 1 if found else 0
    index = 0
    while True:
        message_id = child_id(row.message_id, step.step_id, index)
        if storage.exists(key(message_id)):
            found.append((key(message_id), message_id))
        elif gaps:
            gaps -= 1
        else:
            return found
        index += 1
