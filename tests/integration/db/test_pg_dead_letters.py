"""Dead letters: storing, listing, claiming for redrive once, redrive into the pg queue."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from factflow.db import DbConnection, connect
from factflow.db.lineage_writer import LineageWriter, parse_row_id
from factflow.db.pgqueue import claim_batch, publish_batch
from factflow.db.repositories import dead_letters as dl
from factflow.db.repositories.executions import Execution
from factflow.db.repositories.lineage import ancestors
from factflow.messages import Message

pytestmark = pytest.mark.integration


def _letter(execution: Execution, n: int, lineage_id: uuid.UUID | None = None) -> dl.NewDeadLetter:
    message = Message(payload={"n": n}, execution_id=str(execution.id), route_id="split")
    return dl.NewDeadLetter(
        execution_id=execution.id,
        route_id="split",
        queue="split.in",
        message=message.to_envelope(),
        error="ValueError: bad input",
        error_type="ValueError",
        attempts=3,
        lineage_id=lineage_id,
    )


def test_add_and_list(conn: DbConnection, execution: Execution) -> None:
    ids = dl.add_dead_letters(conn, [_letter(execution, n) for n in range(3)])
    assert ids == sorted(ids)
    assert len(ids) == 3
    listed = dl.list_dead_letters(conn, execution_id=execution.id)
    assert [d.id for d in listed] == ids
    assert [d.message["payload"] for d in listed] == [{"n": 0}, {"n": 1}, {"n": 2}]
    first = listed[0]
    assert (first.error_type, first.attempts, first.reason, first.queue) == (
        "ValueError",
        3,
        "max_retries",
        "split.in",
    )
    assert first.redriven_at is None
    assert dl.count_dead_letters(conn, execution_id=execution.id, pending_only=True) == 3
    assert dl.add_dead_letters(conn, []) == []


def test_each_dead_letter_is_claimed_for_redrive_once(
    db_url: str, conn: DbConnection, execution: Execution
) -> None:
    ids = dl.add_dead_letters(conn, [_letter(execution, n) for n in range(4)])
    with connect(db_url) as holder, holder.transaction():
        held = dl.claim_dead_letters(holder, execution_id=execution.id, limit=2)
        # the holder's transaction is open: the others skip its rows instead of waiting
        with conn.transaction():
            others = dl.claim_dead_letters(conn, execution_id=execution.id)
            assert dl.mark_redriven(conn, [d.id for d in others]) == 2
        assert dl.mark_redriven(holder, [d.id for d in held]) == 2
    assert [d.id for d in held] == ids[:2]
    assert [d.id for d in others] == ids[2:]
    assert dl.claim_dead_letters(conn, execution_id=execution.id) == []
    assert dl.count_dead_letters(conn, execution_id=execution.id, pending_only=True) == 0
    pending = dl.list_dead_letters(conn, execution_id=execution.id, pending_only=True)
    assert pending == []


def test_a_claim_whose_transaction_rolls_back_leaves_the_letters_pending(
    conn: DbConnection, execution: Execution
) -> None:
    ids = dl.add_dead_letters(conn, [_letter(execution, n) for n in range(2)])
    with pytest.raises(RuntimeError, match="publish failed"), conn.transaction():
        claimed = dl.claim_dead_letters(conn, execution_id=execution.id)
        assert [d.id for d in claimed] == ids
        msg = "publish failed"
        raise RuntimeError(msg)
    pending = dl.list_dead_letters(conn, execution_id=execution.id, pending_only=True)
    assert [d.id for d in pending] == ids
    assert all(d.redriven_at is None for d in pending)


def test_redrive_puts_the_message_back_linked_to_the_failed_attempt(
    conn: DbConnection, execution: Execution
) -> None:
    writer = LineageWriter(execution.id)
    failed_row = writer.record(
        route_id="split",
        adapter_name="segment",
        adapter_index=0,
        message_id="m-1",
        status="dead_lettered",
        started_at=datetime.now(UTC),
        attempts=3,
    )
    writer.flush(conn)
    (dead_id,) = dl.add_dead_letters(conn, [_letter(execution, 7, lineage_id=failed_row)])
    queue = f"split.in.{uuid.uuid4().hex[:6]}"

    # claim and publish in one transaction: both happen or neither
    with conn.transaction():
        letters = dl.claim_dead_letters(conn, ids=[dead_id])
        envelopes = [dl.redrive_envelope(letter) for letter in letters]
        publish_batch(conn, queue, [json.dumps(e).encode() for e in envelopes])
        dl.mark_redriven(conn, [letter.id for letter in letters])

    (claimed,) = claim_batch(conn, queue, "worker-1")
    message = Message.from_envelope(json.loads(claimed.body))
    assert message.payload == {"n": 7}
    assert message.correlation_id == str(failed_row)
    assert message.metadata["redriven_from_dead_letter"] == dead_id

    # the new attempt's lineage row points at the dead-lettered one
    retry = LineageWriter(execution.id)
    new_row = retry.record(
        route_id="split",
        adapter_name="segment",
        adapter_index=0,
        message_id=message.message_id,
        parent_id=parse_row_id(message.correlation_id),
        status="completed",
        started_at=datetime.now(UTC),
    )
    retry.flush(conn)
    assert [r.id for r in ancestors(conn, new_row)] == [failed_row]
