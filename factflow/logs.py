"""Log output: plain text, or one JSON object a line (`FACTFLOW_LOG_FORMAT=json`) for log
collectors, carrying the execution, route, stage and process of the record.

Worker processes label their records with their execution and process id; an adapter's
logger (`factflow.adapter.<route>.<stage>`) adds its route and stage.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Literal

_ADAPTER_LOGGER = "factflow.adapter."
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the static `fields`, the
    adapter's route and stage, whatever `extra=` passed, and the exception if any."""

    def __init__(self, fields: dict[str, str | int] | None = None) -> None:
        super().__init__()
        self.fields = dict(fields or {})

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **self.fields,
        }
        if record.name.startswith(_ADAPTER_LOGGER):
            route, _, stage = record.name.removeprefix(_ADAPTER_LOGGER).partition(".")
            entry.update(route_id=route, stage=stage)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(
    log_format: Literal["text", "json"], level: int = logging.INFO, **fields: str | int
) -> None:
    """The root logger's one handler on stderr, in `log_format`."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter(fields))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
