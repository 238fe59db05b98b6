"""Completion when every route drains: knowing, across worker processes, that nothing is
in flight and every execution-scoped queue is empty.

Each process keeps a few monotonic counters (the ledger) and writes them to a shared
store several times a second: a row of `worker_counters` in Postgres when the execution
has a database and a launch id (its processes may run on several hosts), else
`<drain dir>/<pid>.json`:

- `delivered` / `acked`: messages a source handed to Bytewax, and those whose epoch has
  closed (the next `next_batch` after the sealing snapshot: Bytewax reads epoch e+1 only
  after all of epoch e reached the sinks, so an acked message's outputs are durable);
- `put:<queue>` / `got:<queue>`: messages written to and read from each scoped queue;
- `finished`: finite source partitions (init message, input files) that ended, which
  they do only after all they delivered is acked.

The execution has drained when two consecutive readings of every process's counters are
equal (double counting: counters only grow, so equal readings mean nothing moved between
them) and show every finite partition finished, every delivery acked, and every scoped
queue read at least as often as written. A reading counts only if each process wrote
after the previous reading ended (on the store's clock: the database's for Postgres).
Scoped source partitions then end, the dataflow completes and the workers exit 0.
Redeliveries (a reconnect, a resumed run) only raise `got`, which is why each partition
also waits until its own queue has been quiet for a moment.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from factflow.db.exceptions import DatabaseError
from factflow.db.repositories.worker_counters import CounterRow

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.1
CHECK_SECONDS = 0.2
QUIET_SECONDS = 0.3
"""How long a scoped partition's queue must have given nothing before it may end."""
_WAKE = timedelta(milliseconds=50)


class CounterStore(Protocol):
    """Where the processes of one execution share their counters."""

    def write(self, counts: dict[str, int]) -> None: ...

    def read(self) -> tuple[float, list[CounterRow]]:
        """The store's clock after reading, and every process's latest counters."""
        ...


@dataclass(frozen=True)
class FileCounters:
    """One JSON file per process in a folder every process of the execution sees."""

    directory: Path

    def write(self, counts: dict[str, int]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"at": time.time(), "counts": counts}))
        tmp.replace(path)

    def read(self) -> tuple[float, list[CounterRow]]:
        rows = []
        for path in self.directory.glob("*.json"):
            data = json.loads(path.read_text())
            rows.append(CounterRow(int(path.stem), float(data["at"]), data["counts"], None))
        return time.time(), rows


class DrainLedger:
    """This process's counters; a daemon thread writes them to the store."""

    def __init__(self, store: CounterStore | None) -> None:
        self.store = store
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._started = False

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount
        if not self._started:
            self.start()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def start(self) -> None:
        """Write the counters from now on: a process whose partitions never deliver (all
        of a queue's partitions elsewhere) must still be seen by the others' detectors."""
        with self._lock:
            if self._started or self.store is None:
                self._started = True
                return
            self._started = True
        threading.Thread(target=self._flush_forever, name="factflow-drain", daemon=True).start()
        atexit.register(self._flush_quietly)

    def _flush_forever(self) -> None:
        while True:
            self._flush_quietly()
            time.sleep(FLUSH_SECONDS)

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except (OSError, DatabaseError) as exc:
            # the others see this process as stale until a write succeeds again
            log.warning("drain counters not written: %s", exc)

    def flush(self) -> None:
        if self.store is not None:
            self.store.write(self.counts())


_ledger: DrainLedger | None = None


def ledger(store: CounterStore | None = None) -> DrainLedger:
    """This process's ledger (the first call chooses its store, shared by the
    execution's processes; None keeps it in memory)."""
    global _ledger
    if _ledger is None:
        _ledger = DrainLedger(store)
    return _ledger


@dataclass(frozen=True)
class DrainRule:
    """What drained means for one execution's dataflow."""

    finite_partitions: int
    scoped_queues: frozenset[str]
    processes: int = 1

    def holds(self, totals: dict[str, int]) -> bool:
        if totals.get("finished", 0) < self.finite_partitions:
            return False
        if totals.get("delivered", 0) != totals.get("acked", 0):
            return False
        return all(
            totals.get(f"got:{q}", 0) >= totals.get(f"put:{q}", 0) for q in self.scoped_queues
        )


@dataclass
class DrainDetector:
    """Reads every process's counters, at most every CHECK_SECONDS, and says when the
    execution has drained (two equal readings where the rule holds)."""

    rule: DrainRule
    store: CounterStore | None
    clock: Callable[[], float] = time.time
    _previous: dict[str, int] | None = None
    _checked_at: float = 0.0
    _read_at: float = 0.0
    _drained: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def drained(self) -> bool:
        with self._lock:
            now = self.clock()
            if self._drained or now - self._checked_at < CHECK_SECONDS:
                return self._drained
            self._checked_at = now
            # the next reading must be of states after this one ended
            self._read_at, reading = self._read(since=self._read_at)
            if reading is None or not self.rule.holds(reading):
                self._previous = None
                return False
            self._drained = reading == self._previous
            self._previous = reading
            return self._drained

    def _read(self, since: float) -> tuple[float, dict[str, int] | None]:
        """The store's clock and every process's counters summed, or None while one is
        missing or stale."""
        if self.store is None:
            return self.clock(), ledger().counts()
        try:
            read_at, rows = self.store.read()
        except (OSError, ValueError, KeyError, DatabaseError):
            return self.clock(), None  # being replaced right now: read again next time
        if len(rows) < self.rule.processes or any(row.at < since for row in rows):
            return read_at, None
        totals: Counter[str] = Counter()
        for row in rows:
            totals.update(row.counts)
        return read_at, dict(totals)


class _DrainPartition(StatefulSourcePartition[Any, Any]):
    """Counts what an inner partition delivers and when its epoch closes; a finite one
    ends only once all it delivered is acked, a scoped one when the execution drained."""

    def __init__(
        self,
        inner: StatefulSourcePartition[Any, Any],
        scoped_queue: str | None,
        detector: DrainDetector,
    ) -> None:
        self._inner = inner
        self._scoped_queue = scoped_queue
        self._detector = detector
        self._delivered = 0
        self._sealed = 0
        self._inner_done = False
        self._quiet_since = time.monotonic()

    def next_batch(self) -> list[Any]:
        counts = ledger()
        if self._sealed:
            counts.add("acked", self._sealed)
            self._sealed = 0
        if self._inner_done:
            return self._finish_finite()
        try:
            batch = list(self._inner.next_batch())
        except StopIteration:
            self._inner_done = True
            return self._finish_finite()
        if batch:
            self._delivered += len(batch)
            counts.add("delivered", len(batch))
            if self._scoped_queue is not None:
                counts.add(f"got:{self._scoped_queue}", len(batch))
            self._quiet_since = time.monotonic()
        elif (
            self._scoped_queue is not None
            and not self._delivered
            and time.monotonic() - self._quiet_since >= QUIET_SECONDS
            and self._detector.drained()
        ):
            raise StopIteration
        return batch

    def _finish_finite(self) -> list[Any]:
        """An inner partition that ended: end too once its last epoch closed."""
        if self._delivered or self._sealed:
            return []
        ledger().add("finished")
        raise StopIteration

    def next_awake(self) -> datetime | None:
        if self._inner_done:
            return datetime.now(UTC) + _WAKE
        return self._inner.next_awake()

    def snapshot(self) -> Any:
        self._sealed += self._delivered
        self._delivered = 0
        return self._inner.snapshot()

    def close(self) -> None:
        self._inner.close()


class DrainingSource(FixedPartitionedSource[Any, Any]):
    """Wraps a source so its partitions take part in drain detection."""

    def __init__(
        self,
        inner: FixedPartitionedSource[Any, Any],
        detector: DrainDetector,
        scoped_queue: str | None = None,
    ) -> None:
        self._inner = inner
        self._detector = detector
        self._scoped_queue = scoped_queue

    def list_parts(self) -> list[str]:
        return self._inner.list_parts()

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _DrainPartition:
        inner = self._inner.build_part(step_id, for_part, resume_state)
        return _DrainPartition(inner, self._scoped_queue, self._detector)
