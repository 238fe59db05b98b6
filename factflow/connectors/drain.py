"""Completion when every route drains: knowing, across worker processes, that nothing is
in flight and every execution-scoped queue is empty.

Each process keeps a few monotonic counters (the ledger) and writes them to
`<drain dir>/<pid>.json` several times a second:

- `delivered` / `acked`: messages a source handed to Bytewax, and those whose epoch has
  closed (the next `next_batch` after the sealing snapshot: Bytewax reads epoch e+1 only
  after all of epoch e reached the sinks, so an acked message's outputs are durable);
- `put:<queue>` / `got:<queue>`: messages written to and read from each scoped queue;
- `finished`: finite source partitions (init message, input files) that ended, which
  they do only after all they delivered is acked.

The execution has drained when two consecutive readings of every process's counters are
equal (double counting: counters only grow, so equal readings mean nothing moved between
them) and show every finite partition finished, every delivery acked, and every scoped
queue read at least as often as written. A reading counts only if each file was written
after the reading began. Scoped source partitions then end, the dataflow completes and the
workers exit 0. Redeliveries (a reconnect, a resumed run) only raise `got`, which is why
each partition also waits until its own queue has been quiet for a moment.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

FLUSH_SECONDS = 0.1
CHECK_SECONDS = 0.2
QUIET_SECONDS = 0.3
"""How long a scoped partition's queue must have given nothing before it may end."""
_WAKE = timedelta(milliseconds=50)


class DrainLedger:
    """This process's counters; a daemon thread writes them to the drain folder."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
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
            if self._started or self.directory is None:
                self._started = True
                return
            self._started = True
        self.directory.mkdir(parents=True, exist_ok=True)
        threading.Thread(target=self._flush_forever, name="factflow-drain", daemon=True).start()
        atexit.register(self.flush)

    def _flush_forever(self) -> None:
        while True:
            self.flush()
            time.sleep(FLUSH_SECONDS)

    def flush(self) -> None:
        if self.directory is None:
            return
        path = self.directory / f"{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"at": time.time(), "counts": self.counts()}))
        tmp.replace(path)


_ledger: DrainLedger | None = None


def ledger(directory: Path | None = None) -> DrainLedger:
    """This process's ledger (the first call chooses its folder: the launcher's
    `FACTFLOW_DRAIN_DIR`, shared by the execution's processes; None keeps it in memory)."""
    global _ledger
    if _ledger is None:
        _ledger = DrainLedger(directory)
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
    directory: Path | None
    clock: Callable[[], float] = time.time
    _previous: dict[str, int] | None = None
    _checked_at: float = 0.0
    _drained: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def drained(self) -> bool:
        with self._lock:
            now = self.clock()
            if self._drained or now - self._checked_at < CHECK_SECONDS:
                return self._drained
            reading = self._read(since=self._checked_at)
            # the next reading must be of states after this one ended
            self._checked_at = self.clock()
            if reading is None or not self.rule.holds(reading):
                self._previous = None
                return False
            self._drained = reading == self._previous
            self._previous = reading
            return self._drained

    def _read(self, since: float) -> dict[str, int] | None:
        """Every process's counters summed, or None while one is missing or stale."""
        if self.directory is None:
            return ledger().counts()
        totals: Counter[str] = Counter()
        files = 0
        for path in self.directory.glob("*.json"):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                return None  # being replaced right now: read again next time
            if float(data["at"]) < since:
                return None
            totals.update(data["counts"])
            files += 1
        return dict(totals) if files >= self.rule.processes else None


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
