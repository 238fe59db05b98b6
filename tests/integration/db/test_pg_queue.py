"""The postgres queue: batches, leases, acks, redelivery, NOTIFY, competing processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import pytest

from factflow.db import DbConnection, connect
from factflow.db import pgqueue as q

pytestmark = pytest.mark.integration

T_ = TypeVar("T_")


def _queue() -> str:
    return f"q.{uuid.uuid4().hex[:8]}"


def test_publish_and_claim_round_trip_in_order(conn: DbConnection) -> None:
    queue = _queue()
    ids = q.publish_batch(conn, queue, [b"a", b"b", b"\x00\xff"], [{"k": 1}, {}, {"raw": True}])
    assert ids == sorted(ids)
    claimed = q.claim_batch(conn, queue, "c1", limit=10)
    assert [m.id for m in claimed] == ids
    assert [m.body for m in claimed] == [b"a", b"b", b"\x00\xff"]
    assert [m.headers for m in claimed] == [{"k": 1}, {}, {"raw": True}]
    assert {m.attempts for m in claimed} == {1}
    assert q.publish_batch(conn, queue, []) == []
    with pytest.raises(ValueError, match="2 headers for 1 bodies"):
        q.publish_batch(conn, queue, [b"x"], [{}, {}])


def test_a_claim_hides_messages_until_acked(db_url: str, conn: DbConnection) -> None:
    queue = _queue()
    q.publish_batch(conn, queue, [b"1", b"2", b"3"])
    first = q.claim_batch(conn, queue, "c1", limit=2)
    with connect(db_url) as other:
        second = q.claim_batch(other, queue, "c2", limit=10)
        assert [m.body for m in second] == [b"3"]
        assert q.claim_batch(other, queue, "c2") == []
    assert q.queue_depth(conn, queue) == q.QueueDepth(ready=0, in_flight=3)
    assert q.ack(conn, [m.id for m in first + second]) == 3
    assert q.ack(conn, [first[0].id]) == 0
    assert q.queue_depth(conn, queue) == q.QueueDepth(ready=0, in_flight=0)


# Leases and delays long enough that what is asserted while they run (within milliseconds
# of the claim) holds on a loaded machine; their end is waited for, never slept through.
LEASE_SECONDS = 2.0


def _until(poll: Callable[[], T_], done: Callable[[T_], bool], timeout: float = 30) -> T_:
    """`poll()` again until `done` holds for its result (a deadline, not a sleep)."""
    deadline = time.monotonic() + timeout
    while not done(value := poll()):
        assert time.monotonic() < deadline, f"still {value!r} after {timeout} s"
        time.sleep(0.05)
    return value


def test_an_expired_claim_is_delivered_again(db_url: str, conn: DbConnection) -> None:
    queue = _queue()
    q.publish_batch(conn, queue, [b"lost-worker"])
    began = time.monotonic()
    (first,) = q.claim_batch(conn, queue, "dies", visibility_timeout=LEASE_SECONDS)
    assert q.claim_batch(conn, queue, "survivor") == []
    assert q.reclaim_expired(conn, queue) == 0
    reclaimed = _until(lambda: q.reclaim_expired(conn, queue), lambda n: n > 0)
    assert reclaimed == 1
    assert time.monotonic() - began >= LEASE_SECONDS  # the lease held for its whole time
    with connect(db_url) as other:
        (again,) = q.claim_batch(other, queue, "survivor")
    assert (again.id, again.body, again.attempts) == (first.id, b"lost-worker", 2)


def _visible_at(conn: DbConnection, message_id: int) -> datetime:
    row = conn.execute("SELECT visible_at FROM queue_messages WHERE id = %s", (message_id,))
    found = row.fetchone()
    assert found is not None
    visible: datetime = found[0]
    return visible


def test_extend_keeps_a_lease_and_release_gives_it_back(conn: DbConnection) -> None:
    queue = _queue()
    q.publish_batch(conn, queue, [b"slow", b"give-back"])
    slow, give_back = q.claim_batch(conn, queue, "c1", visibility_timeout=LEASE_SECONDS)
    first_lease_ends = _visible_at(conn, slow.id)
    assert q.extend(conn, [slow.id], "c1", visibility_timeout=30) == 1
    assert q.extend(conn, [slow.id], "someone-else", visibility_timeout=30) == 0
    assert q.release(conn, [give_back.id]) == 1
    # the database's clock past the first lease: without the extension it would be over
    _until(
        lambda: conn.execute("SELECT now() > %s", (first_lease_ends,)).fetchone(),
        lambda row: row is not None and bool(row[0]),
    )
    # the extended one is still leased; the released one is back
    assert [m.body for m in q.claim_batch(conn, queue, "c2")] == [b"give-back"]


def test_delayed_messages_wait(conn: DbConnection) -> None:
    queue = _queue()
    began = time.monotonic()
    q.publish_batch(conn, queue, [b"later"], delay_seconds=LEASE_SECONDS)
    assert q.claim_batch(conn, queue, "c") == []
    claimed = _until(lambda: q.claim_batch(conn, queue, "c"), bool)
    assert [m.body for m in claimed] == [b"later"]
    assert time.monotonic() - began >= LEASE_SECONDS  # not visible before its delay


def test_publishing_wakes_a_listening_consumer(db_url: str) -> None:
    queue = _queue()
    with connect(db_url) as listener, connect(db_url) as publisher:
        q.listen(listener)
        started = time.monotonic()
        assert not q.wait_for_messages(listener, queue, timeout=0.3)
        assert time.monotonic() - started >= 0.25

        def publish_soon() -> None:
            time.sleep(0.2)
            q.publish_batch(publisher, _queue(), [b"other queue"])
            q.publish_batch(publisher, queue, [b"wake up"])

        thread = threading.Thread(target=publish_soon)
        thread.start()
        started = time.monotonic()
        assert q.wait_for_messages(listener, queue, timeout=10)
        thread.join()
        assert time.monotonic() - started < 5
        assert [m.body for m in q.claim_batch(listener, queue, "c")] == [b"wake up"]


CONSUMER = textwrap.dedent(
    """
    import json, sys, time
    from factflow.db import connect
    from factflow.db import pgqueue as q

    url, queue, name, mode = sys.argv[1:5]
    seen = []
    with connect(url) as conn:
        q.listen(conn)
        print("ready", flush=True)
        sys.stdin.readline()
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 3.0:
            batch = q.claim_batch(conn, queue, name, limit=20, visibility_timeout=2.0)
            if not batch:
                q.wait_for_messages(conn, queue, timeout=0.2)
                continue
            if mode == "die":
                # claimed and never acked: a worker killed mid-epoch
                print(json.dumps([m.body.decode() for m in batch]), flush=True)
                import os
                os._exit(0)
            idle_since = time.monotonic()
            time.sleep(0.002)  # the work
            seen.extend((m.body.decode(), m.attempts) for m in batch)
            q.ack(conn, [m.id for m in batch])
    print(json.dumps(seen), flush=True)
    """
)


def _consumer(db_url: str, queue: str, name: str, mode: str = "work") -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CONSUMER, db_url, queue, name, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _finish(proc: subprocess.Popen[str]) -> Any:
    """What the consumer printed last: JSON, lists of bodies or of [body, attempts]."""
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0
    return json.loads(out.strip().splitlines()[-1])


def test_two_consumer_processes_each_message_once(db_url: str, conn: DbConnection) -> None:
    queue = _queue()
    consumers = [_consumer(db_url, queue, f"worker-{i}") for i in range(2)]
    for proc in consumers:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    bodies = [f"m{i}" for i in range(1500)]
    for start in range(0, len(bodies), 100):
        q.publish_batch(conn, queue, [b.encode() for b in bodies[start : start + 100]])
    results = [_finish(proc) for proc in consumers]
    got = [[tuple(item) for item in r] for r in results]
    everything = [body for seen in got for body, _ in seen]
    assert sorted(everything) == sorted(bodies)
    assert len(everything) == len(set(everything))
    assert all(attempts == 1 for seen in got for _, attempts in seen)
    assert all(len(seen) > 0 for seen in got), "both consumers should have competed"
    assert q.queue_depth(conn, queue) == q.QueueDepth(ready=0, in_flight=0)


def test_messages_of_a_dead_consumer_are_redelivered(db_url: str, conn: DbConnection) -> None:
    queue = _queue()
    bodies = [f"m{i}" for i in range(60)]
    q.publish_batch(conn, queue, [b.encode() for b in bodies])
    dying = _consumer(db_url, queue, "dies", mode="die")
    assert dying.stdin is not None
    dying.stdin.write("go\n")
    dying.stdin.flush()
    lost = _finish(dying)
    assert len(lost) == 20
    survivor = _consumer(db_url, queue, "survivor")
    assert survivor.stdin is not None
    survivor.stdin.write("go\n")
    survivor.stdin.flush()
    seen = dict(_finish(survivor))
    assert sorted(seen) == sorted(bodies)
    assert {seen[b] for b in lost} == {2}
    assert {seen[b] for b in bodies if b not in lost} == {1}
