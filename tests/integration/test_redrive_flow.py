"""Dead letters in the table, fixed adapter, `factflow deadletters redrive`, same execution
again: the messages reach the output, and each new attempt's lineage row has the
dead-lettered row as parent.

The adapter fails while a marker file exists (a dependency that is down); the test
removes the file between the failed run and the redrive. The route reads a file queue,
so the redrive appends the letters to it and the rerun of the execution, resuming after
what the first run read, reads only them.
"""

from __future__ import annotations

import json
import socket
import sys
import uuid
from pathlib import Path

import pytest

from factflow.db import connect
from factflow.db.repositories.dead_letters import (
    NewDeadLetter,
    add_dead_letters,
    list_dead_letters,
)
from factflow.db.repositories.lineage import ancestors
from factflow.messages import Message
from tests.e2e.helpers import (
    REPO_ROOT,
    factflow_run,
    read_jsonl,
    run_command,
    worker_env,
    write_jsonl,
)
from tests.integration.flows import A, lineage_rows, write_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]

COUNT = 5


def test_redriven_dead_letters_reach_the_output_linked_to_the_failed_attempt(
    tmp_path: Path, db_url: str
) -> None:
    marker = tmp_path / "dependency-down"
    marker.touch()
    write_jsonl(tmp_path / "queues" / "in.jsonl", [{"n": n} for n in range(COUNT)])
    pipeline = write_pipeline(
        tmp_path,
        "redrive",
        f"""
error_handling: {{max_retries: 1, retry_delay_seconds: 0, circuit_breaker_threshold: 100}}
routes:
  r:
    inbound: {{queue: in}}
    adapters:
      - type: "{A}:FailsWhileMarker"
        config: {{marker: "{marker}"}}
    outbound: out
""",
    )
    execution = str(uuid.uuid4())
    env = worker_env(FACTFLOW_DATABASE_URL=db_url, FACTFLOW_RECOVERY_DIR=str(tmp_path / "recovery"))
    cli = [sys.executable, "-m", "factflow", "deadletters"]

    first = factflow_run(str(pipeline), "--execution-id", execution, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert read_jsonl(tmp_path / "queues" / "out.jsonl") == []
    listed = run_command([*cli, "list", execution], env=env, cwd=REPO_ROOT)
    assert listed.returncode == 0, listed.stderr
    letters = json.loads(listed.stdout)
    assert sorted(letter["message"]["payload"]["n"] for letter in letters) == list(range(COUNT))
    for letter in letters:
        assert (letter["route_id"], letter["queue"], letter["attempts"]) == ("r", "in", 2)
        assert "dependency down while dependency-down exists" in letter["error"]
        assert letter["redriven_at"] is None
    dead_rows = {r.id: r for r in lineage_rows(db_url, uuid.UUID(execution))}
    assert {str(i) for i in dead_rows} == {letter["lineage_id"] for letter in letters}
    assert {r.status for r in dead_rows.values()} == {"dead_lettered"}

    marker.unlink()  # the dependency is back
    redriven = run_command(
        [*cli, "redrive", execution, "--pipeline", str(pipeline)], env=env, cwd=REPO_ROOT
    )
    assert redriven.returncode == 0, redriven.stderr
    assert redriven.stdout.strip() == f"redrove {COUNT} dead letter(s)"
    again = run_command(
        [*cli, "redrive", execution, "--pipeline", str(pipeline)], env=env, cwd=REPO_ROOT
    )
    assert again.stdout.strip() == "redrove 0 dead letter(s)", "a letter was redriven twice"

    second = factflow_run(str(pipeline), "--execution-id", execution, env=env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    out = read_jsonl(tmp_path / "queues" / "out.jsonl")
    assert sorted(o["payload"]["n"] for o in out) == list(range(COUNT)), "each exactly once"

    rows = {r.id: r for r in lineage_rows(db_url, uuid.UUID(execution))}
    new_rows = {i: r for i, r in rows.items() if i not in dead_rows}
    assert len(new_rows) == COUNT
    assert {r.status for r in new_rows.values()} == {"completed"}
    letter_of = {letter["message"]["message_id"]: letter for letter in letters}
    with connect(db_url) as conn:
        for envelope in out:
            row = new_rows[uuid.UUID(envelope["correlation_id"])]
            letter = letter_of[envelope["message_id"]]
            assert row.message_id == envelope["message_id"]
            assert str(row.parent_id) == letter["lineage_id"]
            assert envelope["metadata"]["redriven_from_dead_letter"] == letter["id"]
            # the failed attempt was the message's first row: it is the new row's root
            assert [a.id for a in ancestors(conn, row.id)] == [row.parent_id]
        after = list_dead_letters(conn, execution_id=uuid.UUID(execution))
    assert all(letter.redriven_at is not None for letter in after)


def _closed_port() -> int:
    """A local port nothing listens on: a publish to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_failed_redrive_publish_leaves_the_letters_to_redrive_later(
    tmp_path: Path, db_url: str
) -> None:
    execution = uuid.uuid4()
    letters = [
        NewDeadLetter(
            execution_id=execution,
            route_id="r",
            queue="in",
            message=Message(payload={"n": n}, execution_id=str(execution)).to_envelope(),
            error="RuntimeError: down",
            attempts=2,
        )
        for n in range(COUNT)
    ]
    with connect(db_url) as conn:
        ids = add_dead_letters(conn, letters)
    body = "routes:\n  r:\n    inbound: {queue: in}\n    adapters: [{type: passthrough}]\n"
    closed = write_pipeline(
        tmp_path / "closed",
        "redrive",
        body,
        queue=f'{{provider: rabbitmq, url: "amqp://guest:guest@127.0.0.1:{_closed_port()}/"}}',
    )
    working = write_pipeline(tmp_path / "working", "redrive", body)
    env = worker_env(FACTFLOW_DATABASE_URL=db_url)
    cli = [sys.executable, "-m", "factflow", "deadletters", "redrive", str(execution)]

    failed = run_command([*cli, "--pipeline", str(closed)], env=env, cwd=REPO_ROOT)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert f"publishing {COUNT} dead letter(s) to queue 'in' on provider 'rabbitmq'" in (
        failed.stderr
    )
    assert "Traceback" not in failed.stderr
    with connect(db_url) as conn:
        pending = list_dead_letters(conn, execution_id=execution, pending_only=True)
    assert [letter.id for letter in pending] == ids, "a failed publish marked letters redriven"

    redriven = run_command([*cli, "--pipeline", str(working)], env=env, cwd=REPO_ROOT)
    assert redriven.returncode == 0, redriven.stderr
    assert redriven.stdout.strip() == f"redrove {COUNT} dead letter(s)"
    queued = read_jsonl(tmp_path / "working" / "queues" / "in.jsonl")
    assert sorted(m["payload"]["n"] for m in queued) == list(range(COUNT))
    with connect(db_url) as conn:
        after = list_dead_letters(conn, execution_id=execution)
    assert all(letter.redriven_at is not None for letter in after)
