"""The `file` provider: queue Q is `<path>/<Q with / as _>.jsonl`, one record per line.

Sources read a file from their byte offset to EOF and then end; the offset is the
snapshot, so a killed run resumes where it was. With K partitions per queue (one per
worker) partition k takes lines k, k+K, ... so every worker has a share. Sinks append
whole lines with one `write` per batch on an O_APPEND descriptor (several workers and
processes can share a file) and fsync before the batch returns, so the epoch closes only
on durable output.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition

from factflow.compiler.plan import QueueSettings
from factflow.connectors.batching import BatchSizer
from factflow.connectors.codec import decode_json_line, encode_json_line
from factflow.connectors.protocol import SourceSpec
from factflow.deadletter import DeadLetter, Undecodable
from factflow.exceptions import ConfigurationError
from factflow.messages import Message
from factflow.providers.file import queue_file_name

log = logging.getLogger(__name__)

BATCH_LINES = 1000
"""Most lines of a partition in a source batch: fewer than the 1024 items Bytewax moves
between operators at once, so that a batch reaches a sink as one write and one fsync.
Slow pipelines get fewer (connectors/batching.py)."""
BATCH_BYTES = 1 << 20
"""A source batch ends after the line that reaches this size: big records, small batches."""


def queue_path(folder: str | Path, queue: str) -> Path:
    return Path(folder) / queue_file_name(queue)


@dataclass(frozen=True, slots=True)
class FileOffset:
    """Where a partition is: the byte offset and the index of the next line."""

    byte: int = 0
    line: int = 0


class _FilePartition(StatefulSourcePartition[Message | Undecodable, FileOffset]):
    def __init__(
        self,
        queue: str,
        path: Path,
        raw: bool,
        part: int,
        parts: int,
        at: FileOffset,
        sizer: BatchSizer,
    ) -> None:
        self._queue, self._raw = queue, raw
        self._part, self._parts = part, parts
        self._line = at.line
        self._file = path.open("rb") if path.exists() else None
        if self._file is None:
            log.warning("file queue %s has no file %s: nothing to read", queue, path)
        else:
            self._file.seek(at.byte)
        self._sizer = sizer

    def next_batch(self) -> list[Message | Undecodable]:
        if self._file is None:
            raise StopIteration
        # this partition's lines are every `parts`-th one; what is not read stays unread
        # past the snapshot's offset
        most = self._sizer.limit() * self._parts
        lines: list[bytes] = []
        size = 0
        for line in self._file:
            lines.append(line)
            size += len(line)
            if len(lines) == most or size >= BATCH_BYTES:
                break
        if len(lines) > 1 and not lines[-1].endswith(b"\n"):
            # maybe a line still being written: read it again next time. Alone it is the
            # file's last line without a newline (sources end at EOF), so it is read now.
            self._file.seek(-len(lines.pop()), os.SEEK_CUR)
        batch: list[Message | Undecodable] = []
        for line in lines:
            index = self._line
            self._line += 1
            if index % self._parts != self._part or not line.strip():
                continue
            batch.append(decode_json_line(line, raw=self._raw, queue=self._queue, position=index))
        if not batch and self._at_eof():
            raise StopIteration
        self._sizer.handed_out(len(batch))
        return batch

    def _at_eof(self) -> bool:
        assert self._file is not None
        here = self._file.tell()
        return here >= os.fstat(self._file.fileno()).st_size

    def snapshot(self) -> FileOffset:
        return FileOffset(self._file.tell() if self._file else 0, self._line)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class FileSource(FixedPartitionedSource[Message | Undecodable, FileOffset]):
    """Reads `path` as queue `queue` (the provider's file, or a `--input` file)."""

    def __init__(
        self,
        path: str | Path,
        queue: str,
        *,
        raw: bool = False,
        partitions: int = 1,
        min_batch: int = 1,
    ) -> None:
        if partitions < 1:
            msg = f"partitions must be >= 1, got {partitions}"
            raise ValueError(msg)
        self.path = Path(path)
        self.queue, self.raw, self.partitions, self.min_batch = queue, raw, partitions, min_batch

    def list_parts(self) -> list[str]:
        return [str(k) for k in range(self.partitions)]

    def build_part(self, step_id: str, for_part: str, resume_state: Any) -> _FilePartition:
        at = resume_state if isinstance(resume_state, FileOffset) else FileOffset()
        sizer = BatchSizer(BATCH_LINES, minimum=self.min_batch)
        return _FilePartition(
            self.queue, self.path, self.raw, int(for_part), self.partitions, at, sizer
        )


class _FileSinkPartition(StatelessSinkPartition[Message | DeadLetter]):
    def __init__(self, path: Path, fsync: bool) -> None:
        self._path = path
        self._fd: int | None = None  # opened on the first write: no empty files
        self._fsync = fsync

    def write_batch(self, items: list[Message | DeadLetter]) -> None:
        if not items:
            return
        data = b"".join(encode_json_line(item) for item in items)
        if self._fd is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self._path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            if _ends_torn(self._fd):
                # a writer killed mid-write left half a line: end it, or our first record
                # would be glued to it (an extra blank line is harmless, sources skip it)
                data = b"\n" + data
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self._fsync:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _ends_torn(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


class FileSink(DynamicSink[Message | DeadLetter]):
    def __init__(self, folder: str | Path, queue: str, *, fsync: bool = True) -> None:
        self.path = queue_path(folder, queue)
        self.fsync = fsync

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _FileSinkPartition:
        return _FileSinkPartition(self.path, self.fsync)


def make_source(spec: SourceSpec, settings: QueueSettings) -> FileSource:
    path = queue_path(_folder(settings), spec.queue)
    return FileSource(
        path, spec.queue, raw=spec.raw, partitions=spec.partitions, min_batch=spec.min_batch
    )


def make_sink(queue: str, settings: QueueSettings, *, raw: bool = False) -> FileSink:
    return FileSink(_folder(settings), queue, fsync=bool(settings.options.get("fsync", True)))


def _folder(settings: QueueSettings) -> str:
    if not settings.path:
        msg = "the file provider needs `queue.path`"
        raise ConfigurationError(msg)
    return settings.path
