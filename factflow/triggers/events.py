"""Receiving an event: start every active config whose trigger matches it, once."""

from __future__ import annotations

import logging
import uuid

from factflow.db.connection import DbConnection
from factflow.db.repositories import triggers as repo
from factflow.triggers.matching import matches
from factflow.triggers.starter import Starter, TriggerStart
from factflow.types import JsonDict

_log = logging.getLogger(__name__)


def receive_event(
    conn: DbConnection,
    starter: Starter,
    *,
    name: str,
    data: JsonDict,
    event_id: str | None = None,
) -> tuple[repo.InboundEvent, bool]:
    """Record the event and start the executions its triggers ask for; `(event, False)`
    for an `event_id` seen before (nothing is started again).

    Each start's idempotency key is `event:<event id>:<trigger id>`, so a receiver that
    died half-way and the client's retry with the same id start each execution once.
    Results list per trigger its `execution_id`, or the `error` that stopped the start.
    """
    chosen = event_id or str(uuid.uuid4())
    event, created = repo.record_inbound_event(conn, chosen, name, data)
    if not created:
        return event, False
    results: list[JsonDict] = []
    for trigger in repo.list_triggers(conn, active_only=True):
        if not matches(trigger.event_pattern, trigger.condition, name, data):
            continue
        result: JsonDict = {
            "trigger_id": str(trigger.id),
            "config_id": str(trigger.config_id),
            "execution_id": None,
            "error": None,
        }
        if (
            trigger.max_running is not None
            and repo.running_count(conn, trigger.config_id) >= trigger.max_running
        ):
            result["error"] = (
                f"not started: {trigger.max_running} execution(s) of the config are running "
                "(the trigger's max_running)"
            )
            results.append(result)
            continue
        request = TriggerStart(
            config_id=trigger.config_id,
            trigger_context={
                "trigger": "event",
                "trigger_id": str(trigger.id),
                "event": {"id": chosen, "name": name, "data": data},
            },
            idempotency_key=f"event:{chosen}:{trigger.id}",
            source="event",
            inputs={trigger.input_queue: [data]} if trigger.input_queue else {},
        )
        try:
            result["execution_id"] = str(starter(request))
        except Exception as exc:
            _log.warning("event %s: trigger %s could not start: %s", chosen, trigger.id, exc)
            result["error"] = str(exc) or type(exc).__name__
        results.append(result)
    return repo.set_event_results(conn, chosen, results), True
