"""Message counters per route and queue, written to a file for `factflow run` to show
(and, beside it, the process's Prometheus metrics: `factflow.dataflows.metrics`, and what
its sources and sinks wait for during an outage: `<pid>.waiting`, factflow/outage.py),
and, for a launch with a database, the counters and metrics to its row of
`worker_counters`, where the server replicas read them whichever host the process runs on.

Counting is a dict update under a lock; a daemon thread writes the counters at most twice
a second (and at exit), so the hot path never touches the disk.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from factflow.dataflows.metrics import worker_metrics
from factflow.db.exceptions import DatabaseError
from factflow.db.repositories.worker_counters import PostgresCounters
from factflow.outage import Waiting, waiting

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5


class Progress:
    def __init__(self, path: Path | None, store: PostgresCounters | None = None) -> None:
        self.path = path
        self.store = store
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        # one flush at a time: the thread's and exit's share the temporary file, and a
        # slower one must not overwrite the newer counters another just wrote (reentrant
        # for a signal handler that flushes in the middle of one)
        self._flush_lock = threading.RLock()
        self._started = False

    def add(self, name: str, amount: int = 1) -> None:
        if amount:
            with self._lock:
                self._counts[name] += amount
            if (self.path is not None or self.store is not None) and not self._started:
                self.start()

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def start(self) -> None:
        """Write the file twice a second from now on (else from the first count): a worker
        starts it at once, since an outage may come before any message and must show."""
        if self.path is None and self.store is None:
            return
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._flush_forever, name="factflow-progress", daemon=True).start()
        atexit.register(self._flush_quietly)

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self._flush_quietly()

    def _flush_quietly(self) -> None:
        try:
            self.flush()
        except (OSError, DatabaseError) as exc:
            log.warning("progress counters not written: %s", exc)

    def flush(self) -> None:
        with self._flush_lock:
            self._flush()

    def _flush(self) -> None:
        counts = self.snapshot()
        # the Prometheus view of the same process, rendered once for the file and the row
        metrics = worker_metrics()
        text = metrics.text()
        if self.path is not None:
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(counts))
            tmp.replace(self.path)
            tmp.write_text(json.dumps([_waiting_json(w) for w in waiting()]))
            tmp.replace(self.path.with_suffix(WAITING_SUFFIX))
            metrics.write(self.path.with_suffix(".prom"), text)
        if self.store is not None:
            self.store.write(counts, text.decode())


def read_counts(progress_dir: Path) -> dict[str, int]:
    """The counters of every worker process of a run, summed."""
    totals: dict[str, int] = {}
    for path in progress_dir.glob("*.json"):
        try:
            counts = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # being replaced right now; next refresh reads it
        for name, value in counts.items():
            totals[name] = totals.get(name, 0) + int(value)
    return totals


WAITING_SUFFIX = ".waiting"


def _waiting_json(w: Waiting) -> dict[str, object]:
    return {"what": w.what, "since": w.since, "waiters": w.waiters, "queues": list(w.queues)}


def read_waiting(progress_dir: Path) -> list[Waiting]:
    """What the worker processes of a run wait for now (one entry per `what`, the earliest
    `since`), oldest first; empty when nothing is down."""
    merged: dict[str, Waiting] = {}
    for path in progress_dir.glob(f"*{WAITING_SUFFIX}"):
        try:
            entries = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # being replaced right now
        for entry in entries:
            w = Waiting(
                str(entry["what"]),
                float(entry["since"]),
                int(entry["waiters"]),
                tuple(entry["queues"]),
            )
            seen = merged.get(w.what)
            if seen is not None:
                w = Waiting(
                    w.what,
                    min(w.since, seen.since),
                    w.waiters + seen.waiters,
                    tuple(sorted({*w.queues, *seen.queues})),
                )
            merged[w.what] = w
    return sorted(merged.values(), key=lambda w: w.since)


_progress: Progress | None = None


def progress(path: Path | None = None, store: PostgresCounters | None = None) -> Progress:
    """This process's counters (the first call chooses the file and the store)."""
    global _progress
    if _progress is None:
        _progress = Progress(path, store)
    return _progress


@dataclass(frozen=True, slots=True)
class AdapterMetrics:
    """One adapter step's `Context.metrics`: its counters in this process's `Progress`,
    named `adapter:<route>:<stage>:<name>` (summed over processes like the others)."""

    prefix: str

    @classmethod
    def of(cls, route_id: str, stage: str) -> AdapterMetrics:
        return cls(f"adapter:{route_id}:{stage}:")

    def add(self, name: str, amount: int = 1) -> None:
        progress().add(self.prefix + name, amount)
