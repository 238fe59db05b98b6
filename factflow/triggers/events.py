"""Receiving an event: start every active config whose trigger matches it, once, within
the trigger's flow control.

Per trigger, in this order:
- `debounce` ({period_seconds, key, timeout_seconds}): the event opens or joins a burst
  (per value of `key` in its data) and starts nothing now; the burst starts one execution,
  with its last event, once `period_seconds` pass without another (but at the latest
  `timeout_seconds` after its first). The scheduler loop of any instance starts it
  (`run_due_debounces`), and the last event's result gets the execution.
- `max_running`: refused while that many executions of the config run or cancel.
- `rate_limit` ({limit, period_seconds, key}): refused beyond `limit` starts in the last
  `period_seconds` (per value of `key`); a start that then fails still counts.

Each result has an `outcome`: `started`, `debounced`, `refused`, `rate_limited` or
`failed` (with `error`).
"""

from __future__ import annotations

import json
import logging
import uuid

from factflow.conditions import field_getter, is_missing
from factflow.db.connection import DbConnection
from factflow.db.repositories import triggers as repo
from factflow.messages import Message
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
        if trigger.debounce is not None:
            burst = repo.debounce_event(
                conn,
                trigger.id,
                flow_key(trigger.debounce, data),
                event_id=chosen,
                event_name=name,
                data=data,
                period_seconds=float(trigger.debounce["period_seconds"]),
                timeout_seconds=trigger.debounce.get("timeout_seconds"),
            )
            result |= {"outcome": "debounced", "starts_at": burst.due_at.isoformat()}
        else:
            result |= start_for(conn, starter, trigger, event_id=chosen, name=name, data=data)
        results.append(result)
    return repo.set_event_results(conn, chosen, results), True


def start_for(
    conn: DbConnection,
    starter: Starter,
    trigger: repo.EventTrigger,
    *,
    event_id: str,
    name: str,
    data: JsonDict,
    burst: JsonDict | None = None,
) -> JsonDict:
    """Start the trigger's config for one event, within `max_running` and `rate_limit`;
    the result fields `outcome`, `execution_id`, `error`."""
    if (
        trigger.max_running is not None
        and repo.running_count(conn, trigger.config_id) >= trigger.max_running
    ):
        return {
            "outcome": "refused",
            "error": f"not started: {trigger.max_running} execution(s) of the config are "
            "running (the trigger's max_running)",
        }
    limit = trigger.rate_limit
    if limit is not None and not repo.take_rate_slot(
        conn,
        trigger.id,
        flow_key(limit, data),
        int(limit["limit"]),
        float(limit["period_seconds"]),
    ):
        return {
            "outcome": "rate_limited",
            "error": f"not started: {limit['limit']} start(s) in the last "
            f"{limit['period_seconds']} s (the trigger's rate_limit)",
        }
    context: JsonDict = {
        "trigger": "event",
        "trigger_id": str(trigger.id),
        "event": {"id": event_id, "name": name, "data": data},
    }
    if burst is not None:
        context["debounce"] = burst
    request = TriggerStart(
        config_id=trigger.config_id,
        trigger_context=context,
        idempotency_key=f"event:{event_id}:{trigger.id}",
        source="event",
        inputs={trigger.input_queue: [data]} if trigger.input_queue else {},
        init_payload=data if trigger.init_payload else None,
    )
    try:
        return {"outcome": "started", "execution_id": str(starter(request)), "error": None}
    except Exception as exc:
        _log.warning("event %s: trigger %s could not start: %s", event_id, trigger.id, exc)
        return {"outcome": "failed", "error": str(exc) or type(exc).__name__}


def run_due_debounces(conn: DbConnection, starter: Starter) -> list[JsonDict]:
    """Start every burst whose quiet period is over, once across instances; returns the
    results. The burst stays locked while its execution starts, and the start's
    idempotency key is its last event's, so an instance that dies half-way leaves a burst
    that another instance starts (or finds started) again."""
    done: list[JsonDict] = []
    while True:
        with conn.transaction():
            burst = repo.lock_due_debounce(conn)
            if burst is None:
                return done
            trigger = repo.get_trigger(conn, burst.trigger_id)
            result = start_for(
                conn,
                starter,
                trigger,
                event_id=burst.event_id,
                name=burst.event_name,
                data=burst.data,
                burst={
                    "key": burst.rate_key,
                    "events": burst.events,
                    "first_at": burst.first_at.isoformat(),
                },
            )
            repo.update_event_result(conn, burst.event_id, trigger.id, result)
            repo.close_debounce(conn, burst.trigger_id, burst.rate_key)
        done.append(result)


def flow_key(control: JsonDict, data: JsonDict) -> str:
    """The value of the control's `key` field path in the event's data, as text (`""`
    without a key or when the field is missing: every event shares one window)."""
    path = control.get("key")
    if path is None:
        return ""
    value = field_getter(str(path))(Message(payload=data))
    return "" if is_missing(value) else json.dumps(value, sort_keys=True, default=str)
