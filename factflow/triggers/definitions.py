"""Triggers and schedules from their spec (`TriggerConfig`: a `triggers:` entry of a
pipeline, or a body of `POST /triggers` / `POST /schedules`), and a config's own
triggers registered from its YAML.

A config's `triggers:` are registered when the config is saved and again when a server
starts (configs saved before, by an older server or straight into the database): each
entry is one row identified by `spec_key`, the hash of the entry, so saving the same
entries again changes nothing (a schedule keeps its next tick), a removed or changed
entry's row goes, and two instances registering at once make one row each.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from factflow.adapters.registry import AdapterRegistry
from factflow.compiler.compile import compile_text
from factflow.compiler.config import TriggerConfig
from factflow.cron import Cron
from factflow.db.connection import DbConnection
from factflow.db.repositories import configs as configs_repo
from factflow.db.repositories import triggers as repo
from factflow.types import JsonDict

_CONFIG_PAGE = 500


def spec_key(spec: TriggerConfig) -> str:
    """The entry's identity: equal entries (after defaults) have equal keys."""
    text = json.dumps(_dump(spec), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def register(
    conn: DbConnection, config_id: uuid.UUID, spec: TriggerConfig, *, spec_key: str | None = None
) -> repo.EventTrigger | repo.Schedule | None:
    """The trigger or schedule of `spec`, which passed `trigger_problems`; with
    `spec_key` (a YAML entry) None when the config already has it."""
    if spec.kind == "schedule":
        assert spec.cron is not None
        cron = Cron(spec.cron, spec.timezone)
        return repo.create_schedule(
            conn,
            config_id=config_id,
            cron=spec.cron,
            timezone=spec.timezone,
            missed=spec.missed,
            next_run_at=cron.next_after(datetime.now(UTC)),
            max_running=spec.max_running,
            spec_key=spec_key,
        )
    assert spec.event is not None
    dumped = _dump(spec)
    return repo.create_trigger(
        conn,
        config_id=config_id,
        event_pattern=spec.event,
        condition=dumped.get("condition"),
        input_queue=spec.input_queue,
        max_running=spec.max_running,
        init_payload=spec.init_payload,
        rate_limit=dumped.get("rate_limit"),
        debounce=dumped.get("debounce"),
        spec_key=spec_key,
    )


def sync_config_triggers(
    conn: DbConnection, config_id: uuid.UUID, specs: Sequence[TriggerConfig]
) -> None:
    """Make the config's YAML-registered triggers and schedules be `specs`: those of an
    invalid config are `()` (nothing could start it)."""
    wanted = {spec_key(s): s for s in specs}
    with conn.transaction():
        repo.keep_config_triggers(conn, config_id, set(wanted))
        for key, spec in wanted.items():
            register(conn, config_id, spec, spec_key=key)


def config_triggers(
    config_yaml: str, name: str, registry: AdapterRegistry
) -> tuple[TriggerConfig, ...]:
    """The `triggers:` of a config that compiles; `()` for one that does not."""
    plan = compile_text(config_yaml, registry, file=name, name=name).plan
    return () if plan is None else plan.triggers


def sync_all_configs(conn: DbConnection, registry: AdapterRegistry) -> int:
    """Register the `triggers:` of every active config (a server starting); returns how
    many configs have any."""
    with_triggers = 0
    offset = 0
    while page := configs_repo.list_configs(conn, limit=_CONFIG_PAGE, offset=offset):
        for config in page:
            specs = config_triggers(config.config_yaml, config.name, registry)
            sync_config_triggers(conn, config.id, specs)
            with_triggers += bool(specs)
        offset += len(page)
    return with_triggers


def _dump(spec: TriggerConfig) -> JsonDict:
    return spec.model_dump(mode="json", by_alias=True, exclude_defaults=True, exclude_none=True)
