"""Pipelines and worker processes for the broker tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import msgpack

from factflow.messages import Message
from tests.e2e.helpers import REPO_ROOT, worker_env
from tests.integration.brokers.clients import Broker, Record

T = "tests.e2e.adapters_for_tests"


def write_pipeline(
    path: Path,
    broker: Broker,
    routes: str,
    *,
    idle: float = 2,
    options: dict[str, Any] | None = None,
) -> Path:
    path.write_text(
        f'version: "1.0"\nname: {path.stem}\n{broker.queue_block(options)}\n'
        f"idle_timeout_seconds: {idle}\n"
        "error_handling: {max_retries: 0, retry_delay_seconds: 0.01}\n"
        f"routes:\n{routes}"
    )
    return path


def relay_route(
    route: str,
    inbound: str,
    outbound: str,
    *,
    raw: bool = False,
    adapter: str = "{type: passthrough}",
) -> str:
    fmt = ", format: raw" if raw else ""
    return (
        f"  {route}:\n"
        f'    inbound: {{queue: "{inbound}"{fmt}}}\n'
        f"    adapters: [{adapter}]\n"
        f'    outbound: {{queue: "{outbound}"{fmt}}}\n'
    )


def adapter_route(route: str, inbound: str, outbound: str, adapter: str) -> str:
    return (
        f"  {route}:\n"
        f'    inbound: {{queue: "{inbound}"}}\n'
        f"    adapters: [{adapter}]\n"
        f'    outbound: "{outbound}"\n'
    )


def run_flow(
    pipeline: Path, *, workers: int = 1, timeout: float = 50, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m bytewax.run factflow.flow` until it ends (idle timeout) or `timeout`."""
    return subprocess.run(
        [sys.executable, "-m", "bytewax.run", "factflow.flow", "-s", "1", "-w", str(workers)],
        env=worker_env(FACTFLOW_PIPELINE=str(pipeline), **(env or {})),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def envelope(message: Message) -> Record:
    """What the seed system (and factflow) publishes: the msgpack envelope."""
    return Record(msgpack.packb(message.to_envelope()), {"factflow-format": "envelope"})


def unpack(record: Record) -> dict[str, Any]:
    data = msgpack.unpackb(record.body)
    assert isinstance(data, dict), record
    return data
