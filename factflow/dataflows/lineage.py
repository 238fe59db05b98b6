"""Lineage on the dataflow: one row per input message per adapter invocation, live.

An adapter step encodes each invocation's row for binary COPY (`lineage_row`) and hands a
batch's rows to its process's `LineageLog` at once, after the batch or sooner once
`HANDOFF_ROWS` wait or the first is `HANDOFF_US` old; a background thread
writes the buffered rows with one COPY at least every `FLUSH_SECONDS` (sooner once
`FLUSH_ROWS` wait), so a row is readable within about half a second of its invocation,
never a round trip per message.

Durability still follows epochs. After each batch an adapter step emits a `LineageMark`
(how many rows the process had accepted). The lineage sink has one partition per process,
which its workers' marks are routed to; it keeps the highest mark of the epoch and, at the
epoch's end (its `snapshot`, which Bytewax calls before the epoch closes), makes sure the
log wrote at least that many (writing them itself when no COPY is running). So a worker
waits for Postgres once per epoch, not after every batch, and the thread's COPYs overlap
the batches in between. Bytewax closes an epoch, and the sources ack its messages, only
after every sink finished it, so no message is acked before the rows describing it are in
Postgres. After a SIGKILL, the rows
of the last flush interval (at most ~0.5 s) may be missing; their messages were not acked,
so the rerun processes them again and writes new rows: a redo shows as a second row for
the same message and step, never as a gap.

A lineage database outage shorter than the outage limit (FACTFLOW_OUTAGE_LIMIT_SECONDS,
factflow/outage.py) does not fail the pipeline: the log keeps its rows (at most
`MAX_BUFFERED_ROWS`; recording waits beyond that), retries with backoff and reports the
outage ("waiting for Postgres at ... since ..."); the sink's wait holds the pipeline at the
next batch end until the database is back, then everything is written and the run goes
on. Past the limit the writer stops and the sink raises: the run fails, resumable. SIGTERM (cancel)
and interpreter exit flush what was recorded first (`install_flush_on_exit`).
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import signal
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from types import FrameType
from typing import Any

import orjson
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from factflow.db.connection import DbConnection, connect
from factflow.db.exceptions import DatabaseError
from factflow.db.lineage_copy import StepRowEncoder, parent_field
from factflow.db.lineage_writer import LineageStatus, LineageWriter, encode_row
from factflow.masking import mask_url
from factflow.messages import Message, canonical_json
from factflow.outage import Backoff, Outage, postgres_what

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5
"""A recorded row is written at most this long after it was recorded (plus one COPY)."""
FLUSH_ROWS = 5_000
"""This many waiting rows are written at once, without waiting for the interval."""
MAX_BUFFERED_ROWS = 200_000
"""During an outage recording waits once this many rows are unwritten (backpressure)."""
WAIT_SECONDS = 10.0
"""How long a waiting sink sleeps at most before it looks at the writer again."""
RETRY_LIMIT_SECONDS = 2.0
"""The longest wait between two tries during an outage: rows go soon after it ends."""
HANDOFF_ROWS = 1_000
"""A step hands its batch's rows to the log after the batch, or once this many wait."""
HANDOFF_US = 100_000
"""... or once the first of them is this old (microseconds): slow batches stay live."""
EXIT_FLUSH_SECONDS = 5.0
"""How long SIGTERM and interpreter exit wait for the last rows (under the supervisor's
10 s grace period before SIGKILL)."""


@dataclass(frozen=True, slots=True)
class LineageMark:
    """Emitted after a batch: the process's rows up to `seq` must be written before the
    epoch closes."""

    seq: int


def lineage_row(
    encoder: StepRowEncoder,
    *,
    row_id: uuid.UUID,
    message: Message,
    status: LineageStatus,
    attempts: int,
    started_us: int,
    completed_us: int,
    outputs: list[Message] | None = None,
    error: str | None = None,
    storage_key: str | None = None,
) -> bytes:
    """A lineage row of the encoder's step, encoded for COPY; times in microseconds since
    the Unix epoch.

    `input_hash` is the `payload_hash` of the input payload, `output_hash` that of the
    list of the output payloads."""
    payload = message.payload
    input_json = payload_json(payload)
    output_hash = None
    if len(outputs or ()) == 1:
        # an output that kept the input's payload (a passthrough, a gate) reuses its
        # encoding
        assert outputs is not None
        out = outputs[0].payload
        output_hash = _sha256(b"[%b]" % (input_json if out is payload else payload_json(out)))
    elif outputs:
        texts = [input_json if m.payload is payload else payload_json(m.payload) for m in outputs]
        output_hash = _sha256(b"[%b]" % b",".join(texts))
    metadata = message.metadata
    kept = {k: metadata[k] for k in _METADATA_KEYS if k in metadata} if metadata else None
    batch = metadata.get("replay_batch_id") if metadata else None
    return encoder.row(
        row_id,
        message.message_id,
        parent_field(message.correlation_id),
        status,
        attempts,
        _sha256(input_json),
        output_hash,
        error,
        started_us,
        completed_us,
        (completed_us - started_us) / 1000.0,
        # the replay a message came in with (`batch_id`, the API's `replay_batch_id`)
        batch if isinstance(batch, str) else None,
        storage_key,
        kept,
    )


def payload_json(value: Any) -> bytes:
    """A payload's JSON as lineage hashes it: sorted keys, no spaces, UTF-8, `str()` for
    other types (orjson, a fifth of the stdlib's time). What orjson refuses (keys that are
    not strings, integers beyond 64 bits, lone surrogates) is the stdlib's canonical JSON
    (`factflow.messages.canonical_json`, ASCII) instead."""
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return canonical_json(value).encode()


def payload_hash(value: Any) -> str:
    """The hex SHA-256 of `payload_json(value)`: a lineage row's `input_hash` is that of its
    input payload, its `output_hash` that of the list of its output payloads."""
    return _sha256(payload_json(value))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# the metadata the seed system's lineage filters search (origin, url, title, document_id)
_METADATA_KEYS = ("origin", "url", "title", "document_id", "source_url")


class LineageLog:
    """One process's lineage rows of one execution and the thread that writes them.

    Thread-safe: every worker thread of the process records into it. The lock is
    reentrant because the SIGTERM handler flushes from the main thread, which may be a
    worker interrupted inside `record`. Cheap to make; the thread starts with the first row.
    """

    def __init__(self, url: str, execution_id: uuid.UUID) -> None:
        self.url, self.execution_id = url, execution_id
        self._cond = threading.Condition(threading.RLock())
        self._rows: list[bytes] = []
        self._buffers: dict[int, deque[bytes]] = {}  # per thread: rows not yet recorded
        self.handoff_rows = HANDOFF_ROWS
        """Steps hand their buffered rows over once this many wait (or after the batch)."""
        self._accepted = 0
        self._durable = 0
        self._urgent = False
        self._thread: threading.Thread | None = None
        self._writer = LineageWriter(execution_id)
        self._conn: DbConnection | None = None
        self._unwritten = 0  # rows taken for a COPY but not yet written
        self._first_pending = 0.0  # when the oldest row in _rows was recorded
        self._failure: BaseException | None = None
        self._write_lock = threading.Lock()  # one COPY at a time, by either thread
        self._failing = False  # the database is unreachable: only the thread retries
        self._closed = False
        self._outage = Outage(postgres_what(url))

    # -- the workers' side ---------------------------------------------------------

    def record(self, values: tuple[Any, ...]) -> None:
        """Buffer one row (values in LINEAGE_COLUMNS order); waits only when
        MAX_BUFFERED_ROWS are unwritten (a database outage)."""
        self.record_many([encode_row(values)])

    def buffer(self) -> deque[bytes]:
        """The calling thread's buffer: a step appends a batch's encoded rows to it and
        hands them over with `record_buffered`; until then they are not accepted (no mark
        counts them), but SIGTERM's and exit's flush takes them as well."""
        ident = threading.get_ident()
        found = self._buffers.get(ident)
        if found is None:
            with self._cond:
                found = self._buffers.setdefault(ident, deque())
        return found

    def record_buffered(self, buffer: deque[bytes], *, wait: bool = True) -> None:
        """Record what `buffer` holds (taken one popleft at a time: each row goes once,
        even when a signal handler's flush takes from the same buffer meanwhile)."""
        take = buffer.popleft
        rows = []
        try:
            while True:
                rows.append(take())
        except IndexError:
            pass
        if rows:
            self.record_many(rows, wait=wait)

    def record_many(self, rows: list[bytes], *, wait: bool = True) -> None:
        """Buffer encoded rows (`lineage_row`, `encode_row`), a batch's at once; waits
        only when MAX_BUFFERED_ROWS are unwritten (a database outage) and `wait`."""
        with self._cond:
            if self._thread is None:
                self._start()
            while wait and len(self._rows) + self._unwritten >= MAX_BUFFERED_ROWS:
                self._cond.wait(1.0)
            before = len(self._rows)
            self._rows.extend(rows)
            self._accepted += len(rows)
            pending = before + len(rows)
            if before == 0:
                self._first_pending = time.monotonic()
                self._cond.notify_all()
            elif pending >= FLUSH_ROWS:
                self._cond.notify_all()

    def mark(self) -> LineageMark:
        """The mark for what was recorded so far."""
        with self._cond:
            return LineageMark(self._accepted)

    def wait_written(self, seq: int, timeout: float | None = None) -> bool:
        """Block until the first `seq` rows are in Postgres; False when `timeout` passed
        first. The caller writes them itself when no COPY is running: handing them to the
        thread would cost two wake-ups per batch, which a busy machine makes slow."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._cond:
                if self._durable >= seq:
                    return True
                if self._failure is not None:
                    msg = f"the lineage writer of execution {self.execution_id} stopped"
                    raise DatabaseError(msg) from self._failure
                failing = self._failing
            if not failing and self._write_lock.acquire(blocking=False):
                try:
                    self._write_taken()
                    continue
                except DatabaseError as exc:
                    log.warning("lineage write failed (%s); the writer thread retries", exc)
                    with self._cond:
                        self._failing = True
                finally:
                    self._write_lock.release()
            with self._cond:
                if self._durable >= seq:
                    return True
                self._urgent = True
                self._cond.notify_all()
                remaining = WAIT_SECONDS if deadline is None else deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, WAIT_SECONDS))

    def flush(self, timeout: float) -> int:
        """Write everything recorded so far, and what steps still hold in their buffers
        (SIGTERM may stop a batch midway), waiting at most `timeout`; returns how many
        rows are still unwritten (0 on success)."""
        # a worker thread may still be running batches meanwhile: from now on its steps
        # hand each row over at once, and a second pass takes what came during the first
        self.handoff_rows = 1
        deadline = time.monotonic() + timeout
        for _ in range(2):
            for buffer in list(self._buffers.values()):
                self.record_buffered(buffer, wait=False)
            with self._cond:
                accepted = self._accepted
                left = max(0.0, deadline - time.monotonic())
                if self._thread is not None and not self.wait_written(accepted, left):
                    return accepted - self._durable
        return 0

    def close(self) -> None:
        """Stop the writing thread; rows still unwritten stay unwritten (their messages
        were not acked). Workers never call it: their log lives as long as the process."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=RETRY_LIMIT_SECONDS + 1)
        self._drop_connection()

    # -- the writing thread ----------------------------------------------------------

    def _start(self) -> None:
        self._thread = threading.Thread(
            target=self._write_forever, name=f"factflow-lineage-{self.execution_id}", daemon=True
        )
        self._thread.start()

    def _wait_for_reason(self) -> None:
        """Until there is a reason to write: a waiter, FLUSH_ROWS rows, the oldest row
        FLUSH_SECONDS old, or rows of a failed attempt."""
        with self._cond:
            while not (self._rows or self._unwritten or self._closed):
                self._cond.wait()
            while not (self._urgent or self._closed or len(self._rows) >= FLUSH_ROWS):
                remaining = self._first_pending + FLUSH_SECONDS - time.monotonic()
                if remaining <= 0 or not self._rows:
                    break
                self._cond.wait(remaining)

    def _write_taken(self) -> None:
        """Take every buffered row and write it, with what a failed attempt left, in one
        COPY. Hold `_write_lock`. Raises DatabaseError; the rows stay for the retry."""
        with self._cond:
            rows, self._rows = self._rows, []
            upto, self._urgent = self._accepted, False
            self._unwritten += len(rows)
        self._writer.extend_encoded(rows)
        try:
            if self._conn is None or self._conn.closed:
                self._conn = connect(self.url)
            self._writer.flush(self._conn)
        except DatabaseError:
            self._drop_connection()
            raise
        with self._cond:
            self._unwritten = 0
            self._durable = max(self._durable, upto)
            self._failing = False
            self._cond.notify_all()

    def _write_forever(self) -> None:
        try:
            self._write_loop()
        except Exception as exc:
            # a bug, not an outage: make the waiting sink raise instead of hanging
            log.exception("the lineage writer of execution %s stopped", self.execution_id)
            with self._cond:
                self._failure = exc
                self._cond.notify_all()

    def _write_loop(self) -> None:
        backoff = Backoff(limit=RETRY_LIMIT_SECONDS)
        while True:
            self._wait_for_reason()
            if self._closed:
                self._outage.forget()
                return
            try:
                with self._write_lock:
                    self._write_taken()
            except DatabaseError as exc:
                with self._cond:
                    self._failing = True
                    kept = self._accepted - self._durable
                # past the outage limit this raises: the writer stops, the sink fails
                self._outage.failed(f"{exc}; {kept} lineage rows kept in memory")
                time.sleep(backoff.wait())
                continue
            if self._outage.failing:
                self._outage.recovered()
                backoff.reset()

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None


_logs: dict[tuple[str, uuid.UUID], LineageLog] = {}
_logs_lock = threading.Lock()


def lineage_log(url: str, execution_id: uuid.UUID) -> LineageLog:
    """This process's log for the execution (one writer thread per process)."""
    with _logs_lock:
        key = (url, execution_id)
        if key not in _logs:
            _logs[key] = LineageLog(url, execution_id)
        return _logs[key]


def flush_all(timeout: float = EXIT_FLUSH_SECONDS) -> None:
    """Write every log's recorded rows, waiting at most `timeout` in all; what could not
    be written is reported (its messages were not acked: a rerun processes them again)."""
    deadline = time.monotonic() + timeout
    for entry in list(_logs.values()):
        left = entry.flush(max(0.0, deadline - time.monotonic()))
        if left:
            log.error(
                "%d lineage rows of execution %s could not be written to %s before exit; "
                "their messages were not acknowledged, so rerunning the execution redoes them",
                left,
                entry.execution_id,
                mask_url(entry.url),
            )


_installed = False


def install_flush_on_exit() -> None:
    """Flush the lineage logs at interpreter exit and on SIGTERM (a cancel), before the
    process ends as it would have. Call from the main thread (signal handlers live there)."""
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    _installed = True
    atexit.register(flush_all)
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: FrameType | None) -> None:
        flush_all()
        if callable(previous):
            previous(signum, frame)
            return
        # end as SIGTERM would have, so the supervisor sees the same exit status
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_term)


class _LineagePartition(StatefulSinkPartition[LineageMark, None]):
    def __init__(self, log_: LineageLog) -> None:
        self._log = log_
        self._seq = 0

    def write_batch(self, values: list[LineageMark]) -> None:
        self._seq = max(self._seq, *(mark.seq for mark in values))

    def snapshot(self) -> None:
        # the end of an epoch in which marks came: no timeout, during a lineage outage
        # the pipeline waits here rather than ack messages whose rows are not written
        # (the log's thread warns meanwhile)
        self._log.wait_written(self._seq)

    def close(self) -> None:
        flush_all()


def lineage_partition(process_id: int) -> str:
    """The lineage sink's partition of a process; zero-padded, so that the sorted global
    list of partitions is in process order and `part_fn` can index it by process id."""
    return f"lineage-{process_id:05d}"


class LineageSink(FixedPartitionedSink[LineageMark, None]):
    """Closes each epoch only once the process's lineage rows are written: items are
    `(str(process_id), mark)`, each process lists only its own partition."""

    def __init__(self, url: str, execution_id: uuid.UUID, process_id: int) -> None:
        self.url, self.execution_id, self.process_id = url, execution_id, process_id

    def list_parts(self) -> list[str]:
        return [lineage_partition(self.process_id)]

    def part_fn(self, item_key: str) -> int:
        return int(item_key)

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _LineagePartition:
        # nothing to resume: marks count this process's rows since it started
        return _LineagePartition(lineage_log(self.url, self.execution_id))
