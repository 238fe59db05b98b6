"""Adapters for the integration tests that run pipelines in worker processes, named in
YAML by dotted path (`tests.integration.flow_adapters:FailsWhileMarker`); the workers
need the repository root on PYTHONPATH (`tests.e2e.helpers.worker_env`)."""

from __future__ import annotations

import ctypes
import os
import signal
import time
from pathlib import Path

from factflow import Adapter, Context, Message
from factflow.types import JsonDict, JsonSchema


class FailsWhileMarker(Adapter):
    """Raises while the file `marker` exists (a broken dependency), then passes messages
    on unchanged: removing the file is "fixing the adapter" between a run and a redrive."""

    name = "fails_while_marker"
    config_schema: JsonSchema = {
        "type": "object",
        "properties": {"marker": {"type": "string"}},
        "required": ["marker"],
        "additionalProperties": False,
    }

    def process(self, message: Message, context: Context) -> list[Message]:
        marker = Path(self.config["marker"])
        if marker.exists():
            msg = f"dependency down while {marker.name} exists"
            raise RuntimeError(msg)
        return [message]


class TaggedSlow(Adapter):
    """Sleeps `sleep_ms`, then passes the message on with `metadata.pid`: the worker
    process that handled it."""

    name = "tagged_slow"
    config_schema: JsonSchema = {
        "type": "object",
        "properties": {"sleep_ms": {"type": "number", "minimum": 0}},
        "additionalProperties": False,
    }

    def __init__(self, config: JsonDict | None = None) -> None:
        super().__init__(config)
        self._seconds = float(self.config.get("sleep_ms", 1)) / 1000

    def process(self, message: Message, context: Context) -> list[Message]:
        time.sleep(self._seconds)
        return [message.with_changes(metadata={**message.metadata, "pid": os.getpid()})]


class Journaled(Adapter):
    """Appends each input's message id to the file `journal` (one line per call, so a
    test sees every invocation across worker processes and restarts), sleeps `sleep_ms`,
    then emits a child message tagged with the step's `tag`."""

    name = "journaled"
    config_schema: JsonSchema = {
        "type": "object",
        "properties": {
            "journal": {"type": "string"},
            "sleep_ms": {"type": "number", "minimum": 0},
            "tag": {"type": "string"},
        },
        "required": ["journal"],
        "additionalProperties": False,
    }

    def process(self, message: Message, context: Context) -> list[Message]:
        with Path(self.config["journal"]).open("a") as journal:
            journal.write(message.message_id + "\n")
        time.sleep(float(self.config.get("sleep_ms", 0)) / 1000)
        return [message.derive(metadata={self.config.get("tag", "journaled"): True})]


def _ignore_sigterm() -> None:
    """SIGTERM ignored by the whole process, from any thread: the C library's `signal`,
    since Python's `signal.signal` works only in the main thread, which Bytewax keeps (the
    worker's own handler there, `lineage.install_flush_on_exit`, would end the process)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.signal.argtypes = (ctypes.c_int, ctypes.c_void_p)
    libc.signal.restype = ctypes.c_void_p
    sig_ign = 1  # SIG_IGN in <signal.h>
    if libc.signal(signal.SIGTERM, sig_ign) == ctypes.c_void_p(-1).value:
        msg = f"signal(SIGTERM, SIG_IGN) failed: errno {ctypes.get_errno()}"
        raise OSError(msg)


class IgnoresSigterm(Adapter):
    """Makes its worker process ignore SIGTERM (a worker stuck where a cancel cannot reach
    it), then creates the file `ready` and passes messages on: only SIGKILL ends it."""

    name = "ignores_sigterm"
    config_schema: JsonSchema = {
        "type": "object",
        "properties": {"ready": {"type": "string"}},
        "required": ["ready"],
        "additionalProperties": False,
    }

    def process(self, message: Message, context: Context) -> list[Message]:
        _ignore_sigterm()
        Path(self.config["ready"]).touch()
        return [message]
