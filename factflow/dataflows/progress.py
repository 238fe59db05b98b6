"""Message counters per route and queue, written to a file for `factflow run` to show
(and, beside it, the process's Prometheus metrics: `factflow.dataflows.metrics`).

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
                self._start()

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def _start(self) -> None:
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
