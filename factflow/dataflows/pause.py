"""Pausing routes everywhere (`PATCH /api/v1/pipelines/{route_id}`).

The server records paused routes in Postgres; each worker process polls them about once
a second. A source whose reading routes are all paused stops fetching (its messages wait
on the broker, in the table or in the file) until a route resumes. Messages already
inside the dataflow finish: a Bytewax worker cannot hold one route without holding all.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

from factflow.dataflows.wrapped_source import WrappedPartition
from factflow.db.connection import connect
from factflow.db.exceptions import DatabaseError
from factflow.db.repositories.route_states import paused_routes

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
PAUSED_WAKE = timedelta(milliseconds=500)

X = TypeVar("X")
S = TypeVar("S")


class PauseWatcher:
    """The set of paused routes, refreshed from Postgres by a daemon thread."""

    def __init__(self, url: str, interval: float = POLL_SECONDS) -> None:
        self._url, self._interval = url, interval
        self._paused: frozenset[str] = frozenset()
        self._started = False
        self._lock = threading.Lock()

    def paused(self, routes: tuple[str, ...]) -> bool:
        """True when every route in `routes` is paused."""
        self._ensure_started()
        return bool(routes) and all(r in self._paused for r in routes)

    def refresh(self) -> None:
        with connect(self._url) as conn:
            self._paused = frozenset(paused_routes(conn))

    def _ensure_started(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            self._refresh_quietly()  # the first answer is known before the first batch
        threading.Thread(target=self._poll, name="factflow-pause", daemon=True).start()

    def _poll(self) -> None:
        while True:
            threading.Event().wait(self._interval)
            self._refresh_quietly()

    def _refresh_quietly(self) -> None:
        try:
            self.refresh()
        except DatabaseError as exc:
            # keep the last known state; pausing is not worth stopping the flow for
            log.warning("cannot read paused routes: %s", exc)


class _PausablePartition(WrappedPartition[X, S]):
    def __init__(
        self, inner: StatefulSourcePartition[X, S], watcher: PauseWatcher, routes: tuple[str, ...]
    ) -> None:
        super().__init__(inner)
        self._watcher, self._routes = watcher, routes

    def next_batch(self) -> list[X]:
        if self._watcher.paused(self._routes):
            return []
        return super().next_batch()

    def next_awake(self) -> datetime | None:
        if self._watcher.paused(self._routes):
            return datetime.now(UTC) + PAUSED_WAKE
        return super().next_awake()


class PausableSource(FixedPartitionedSource[X, S], Generic[X, S]):
    """Wraps a source so it stops fetching while all of `routes` are paused."""

    def __init__(
        self, inner: FixedPartitionedSource[X, S], watcher: PauseWatcher, routes: tuple[str, ...]
    ) -> None:
        self._inner, self._watcher, self._routes = inner, watcher, routes

    def list_parts(self) -> list[str]:
        return self._inner.list_parts()

    def build_part(
        self, step_id: str, for_part: str, resume_state: Any
    ) -> _PausablePartition[X, S]:
        part = self._inner.build_part(step_id, for_part, resume_state)
        return _PausablePartition(part, self._watcher, self._routes)
