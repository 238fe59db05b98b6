"""Helpers for the integration tests that run pipelines in worker processes against a
real Postgres: a database of their own per test, pipeline files, lineage and queue reads.

Process helpers (environment, JSON lines, waiting) come from tests/e2e/helpers.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from factflow.connectors.codec import decode_body
from factflow.db import connect, migrate
from factflow.db.lineage_writer import LineageRecord
from factflow.db.repositories.lineage import list_lineage
from factflow.messages import Message

A = "tests.integration.flow_adapters"


@contextmanager
def database(server_url: str, *, migrated: bool = True) -> Iterator[str]:
    """A new database on the server (dropped afterwards), its schema applied unless
    `migrated=False` (the workers must then apply it themselves)."""
    name = f"factflow_flow_{uuid.uuid4().hex[:12]}"
    with connect(server_url) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = make_conninfo(server_url, dbname=name)
    try:
        if migrated:
            with connect(url) as conn:
                migrate(conn)
        yield url
    finally:
        with connect(server_url) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def with_password(url: str, password: str) -> str:
    """The URL with a password the server does not ask for (local trust authentication):
    errors must show it masked."""
    return make_conninfo(url, password=password)


def dbname(url: str) -> str:
    return str(conninfo_to_dict(url)["dbname"])


def write_pipeline(folder: Path, name: str, body: str, *, queue: str | None = None) -> Path:
    """`<folder>/<name>.yaml`; the queue provider defaults to files in `<folder>/queues`."""
    provider = queue or f"{{provider: file, path: {folder}/queues}}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(f'version: "1.0"\nname: {name}\nqueue: {provider}\n{body}')
    return path


def lineage_rows(url: str, execution: uuid.UUID) -> list[LineageRecord]:
    with connect(url) as conn:
        return list_lineage(conn, execution, limit=1_000_000)


def queue_messages(url: str, queue: str) -> list[Message]:
    """Every message still in a `postgres` provider queue (claimed or not), oldest first."""
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT id, body, headers FROM queue_messages WHERE queue = %s ORDER BY id", (queue,)
        ).fetchall()
    decoded = [
        decode_body(bytes(body), dict(headers), raw=False, queue=queue, fallback_id=str(id_))
        for id_, body, headers in rows
    ]
    messages = [m for m in decoded if isinstance(m, Message)]
    assert len(messages) == len(decoded), "undecodable messages in the queue"
    return messages


def payload_field(messages: list[Message], field: str) -> list[Any]:
    return [m.payload[field] for m in messages]
