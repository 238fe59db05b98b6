"""Message counters per route and queue, written to a file for `factflow run` to show
(and, beside it, the process's Prometheus metrics: `factflow.dataflows.metrics`, and what
its sources and sinks wait for during an outage: `<pid>.waiting`, factflow/outage.py).

Counting is a dict update under a lock; a daemon thread writes the counters at most twice
a second (and at exit), so the hot path never touches the disk.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from factflow.dataflows.metrics import worker_metrics
from factflow.outage import Waiting, waiting

FLUSH_SECONDS = 0.5


class Progress:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._started = False

    def add(self, name: str, amount: int = 1) -> None:
        if amount:
            with self._lock:
                self._counts[name] += amount
            if self.path is not None and not self._started:
                self.start()

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def start(self) -> None:
        """Write the file twice a second from now on (else from the first count): a worker
        starts it at once, since an outage may come before any message and must show."""
        if self.path is None:
            return
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._flush_forever, name="factflow-progress", daemon=True).start()
        atexit.register(self.flush)

    def _flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush()

    def flush(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.snapshot()))
        tmp.replace(self.path)
        tmp.write_text(json.dumps([_waiting_json(w) for w in waiting()]))
        tmp.replace(self.path.with_suffix(WAITING_SUFFIX))
        # the Prometheus view of the same process, for the server to re-expose
        worker_metrics().write(self.path.with_suffix(".prom"))


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


def progress(path: Path | None = None) -> Progress:
    """This process's counters (the first call chooses the file)."""
    global _progress
    if _progress is None:
        _progress = Progress(path)
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
