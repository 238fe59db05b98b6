"""Model usage of a run's adapters: each reported call one `llm_usage` row of the execution.

An adapter reports a call (`context.usage.record`) once per model call, i.e. once per
embedding batch, so one INSERT per call is negligible beside the call itself. The row is
written before `record` returns, so before the batch's messages are acked: a message acked
has its usage stored (a replay after a crash records the redone call again, as it was paid
again). Accounting never fails the pipeline: a database error is logged and the call's row
is lost, since the vectors it paid for were made.
"""

from __future__ import annotations

import logging
import threading
import uuid

import psycopg

from factflow.adapters.base import ModelCall
from factflow.db.connection import DbConnection, connect
from factflow.db.exceptions import DatabaseError
from factflow.db.repositories.usage import UsageRecord, record_usage

log = logging.getLogger(__name__)

PURPOSE = "pipeline"


class DbUsageLog:
    """`UsageLog` of one process and execution: rows through one connection, opened on the
    first call (the process's worker threads take turns)."""

    def __init__(self, url: str, execution_id: uuid.UUID) -> None:
        self.url = url
        self.execution_id = execution_id
        self._conn: DbConnection | None = None
        self._lock = threading.Lock()

    def record(self, call: ModelCall) -> None:
        row = UsageRecord(
            kind=call.kind,
            purpose=PURPOSE,
            provider=call.provider,
            model=call.model,
            prompt_tokens=call.prompt_tokens,
            completion_tokens=call.completion_tokens,
            cost_usd=call.cost_usd,
            latency_ms=call.latency_ms,
            execution_id=self.execution_id,
        )
        with self._lock:
            for attempt in (1, 2):  # the second on a fresh connection (a dropped one)
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = connect(self.url)
                    record_usage(self._conn, [row])
                    return
                except (DatabaseError, psycopg.Error) as exc:
                    self._close()
                    if attempt == 2:
                        log.warning("usage of a %s call not recorded: %s", call.model, exc)

    def close(self) -> None:
        """Close the connection (a process's log lives as long as the process)."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


class NoUsageLog:
    """`UsageLog` of a run without a database: there is nowhere to keep the calls."""

    def record(self, call: ModelCall) -> None:
        pass


_logs: dict[tuple[str, uuid.UUID], DbUsageLog] = {}
_logs_lock = threading.Lock()


def usage_log(url: str, execution_id: uuid.UUID) -> DbUsageLog:
    """This process's usage log of the execution (one connection, shared by its steps)."""
    with _logs_lock:
        found = _logs.get((url, execution_id))
        if found is None:
            found = _logs[(url, execution_id)] = DbUsageLog(url, execution_id)
        return found
