"""`POST /system/mq-diagnostic`: a publish -> consume -> ack round trip per queue provider.

Checked here: `postgres` (the table queue in the server's database), `file` (a queue file
in the data folder), and every broker a stored pipeline names (its `queue:` provider and
URL, once per distinct pair), through the provider's own connector
(`connectors/roundtrip.py`). A provider no stored pipeline uses is listed as `not_checked`.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from psycopg_pool import ConnectionPool

from factflow.compiler.compile import compile_text
from factflow.compiler.plan import QueueSettings
from factflow.connectors.roundtrip import round_trip
from factflow.db import pgqueue
from factflow.db.repositories.configs import list_configs
from factflow.providers.registry import provider_names
from factflow.types import JsonDict

CHECKED_HERE = ("postgres", "file", "memory")


def _result(provider: str, started: float, **fields: Any) -> JsonDict:
    return {
        "provider": provider,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        **fields,
    }


def postgres_round_trip(pool: ConnectionPool[Any]) -> JsonDict:
    started = time.perf_counter()
    queue = f"factflow.mq-diagnostic.{uuid.uuid4().hex[:12]}"
    body = json.dumps({"probe": queue}).encode()
    try:
        with pool.connection() as conn:
            pgqueue.publish_batch(conn, queue, [body])
            claimed = pgqueue.claim_batch(conn, queue, "mq-diagnostic", limit=1)
            pgqueue.ack(conn, [m.id for m in claimed])
        ok = len(claimed) == 1 and claimed[0].body == body
        return _result(
            "postgres", started, status="ok" if ok else "failed", queue=queue,
            error=None if ok else "the published message did not come back",
        )  # fmt: skip
    except Exception as exc:
        return _result("postgres", started, status="failed", queue=queue, error=str(exc))


def file_round_trip(folder: Path) -> JsonDict:
    started = time.perf_counter()
    path = folder / f"mq-diagnostic-{uuid.uuid4().hex[:12]}.jsonl"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"payload": {"probe": path.name}}) + "\n"
        path.write_text(line)
        ok = path.read_text() == line
        path.unlink()
        return _result("file", started, status="ok" if ok else "failed", queue=str(path))
    except OSError as exc:
        return _result("file", started, status="failed", queue=str(path), error=str(exc))


def configured_brokers(pool: ConnectionPool[Any]) -> list[QueueSettings]:
    """The distinct (provider, URL) pairs of the stored pipelines' brokers."""
    with pool.connection() as conn:
        configs = list_configs(conn, limit=1000)
    found: dict[tuple[str, str | None], QueueSettings] = {}
    for config in configs:
        plan = compile_text(config.config_yaml, file=config.name).plan
        if plan is not None and plan.queue.provider not in CHECKED_HERE:
            found.setdefault((plan.queue.provider, plan.queue.url), plan.queue)
    return list(found.values())


def run_diagnostic(pool: ConnectionPool[Any], data_dir: Path) -> JsonDict:
    brokers = [round_trip(settings) for settings in configured_brokers(pool)]
    checked = {r["provider"] for r in brokers}
    results = [
        postgres_round_trip(pool),
        file_round_trip(data_dir / "mq-diagnostic"),
        _result("memory", time.perf_counter(), status="ok", queue=None),
        *brokers,
        *(
            {"provider": name, "status": "not_checked", "latency_ms": None}
            for name in provider_names()
            if name not in CHECKED_HERE and name not in checked
        ),
    ]
    healthy = all(r["status"] in ("ok", "not_checked") for r in results)
    return {"status": "ok" if healthy else "failed", "providers": results}
