"""Lineage on the dataflow: one row per input message per adapter invocation.

Adapter steps emit `LineageRow` items beside their messages; all of a worker's rows go
to one sink that writes them with COPY inside `write_batch`. Bytewax closes an epoch only
after every sink wrote its part, so the rows are durable before any source acks the
messages they describe. A failed write is retried on a new connection (the writer skips
rows a lost commit already stored), then raised so the epoch does not close.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from factflow.connectors.base import Backoff
from factflow.db.connection import DbConnection, connect
from factflow.db.exceptions import DatabaseError
from factflow.db.lineage_writer import LineageStatus, LineageWriter, parse_row_id
from factflow.masking import mask_url
from factflow.messages import Message, canonical_json, text_hash

log = logging.getLogger(__name__)

WRITE_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class LineageRow:
    """A lineage row travelling to the lineage sink: values in LINEAGE_COLUMNS order."""

    values: tuple[Any, ...]


def lineage_row(
    *,
    row_id: uuid.UUID,
    execution_id: uuid.UUID,
    route_id: str,
    adapter_name: str,
    adapter_index: int,
    stage_name: str,
    message: Message,
    status: LineageStatus,
    attempts: int,
    started_at: datetime,
    outputs: list[Message] | None = None,
    error: str | None = None,
    storage_key: str | None = None,
) -> LineageRow:
    completed_at = datetime.now(UTC)
    payload = message.payload
    input_text = canonical_json(payload)
    output_hash = None
    if outputs:
        # the hash of the list of output payloads; an output that kept the input's
        # payload (a passthrough, a gate) reuses its encoding
        texts = [input_text if m.payload is payload else canonical_json(m.payload) for m in outputs]
        output_hash = text_hash(f"[{','.join(texts)}]")
    metadata = {k: message.metadata[k] for k in _METADATA_KEYS if k in message.metadata}
    return LineageRow(
        (
            row_id,
            execution_id,
            route_id,
            adapter_name,
            adapter_index,
            stage_name,
            message.message_id,
            parse_row_id(message.correlation_id),
            status,
            attempts,
            text_hash(input_text),
            output_hash,
            error,
            started_at,
            completed_at,
            (completed_at - started_at).total_seconds() * 1000.0,
            None,
            storage_key,
            metadata,
        )
    )


# the metadata the seed system's lineage filters search (origin, url, title, document_id)
_METADATA_KEYS = ("origin", "url", "title", "document_id", "source_url")


class _LineagePartition(StatelessSinkPartition[LineageRow]):
    def __init__(self, url: str, execution_id: uuid.UUID) -> None:
        self._url = url
        self._writer = LineageWriter(execution_id)
        self._conn: DbConnection | None = None

    def write_batch(self, items: list[LineageRow]) -> None:
        self._writer.extend_rows([item.values for item in items])
        backoff = Backoff()
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = connect(self._url)
                self._writer.flush(self._conn)
                return
            except DatabaseError as exc:
                self._drop_connection()
                if attempt == WRITE_ATTEMPTS:
                    msg = (
                        f"lineage rows could not be written to {mask_url(self._url)} after "
                        f"{attempt} attempts ({exc}); the epoch stays open and its messages "
                        "unacked, so rerunning the execution loses nothing"
                    )
                    raise DatabaseError(msg) from exc
                log.warning("lineage write failed (%s); retrying", exc)
                time.sleep(backoff.wait())

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def close(self) -> None:
        self._drop_connection()


class LineageSink(DynamicSink[LineageRow]):
    def __init__(self, url: str, execution_id: uuid.UUID) -> None:
        self.url, self.execution_id = url, execution_id

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _LineagePartition:
        return _LineagePartition(self.url, self.execution_id)
