"""`deduplicate`: lets the first message of each key through and drops repeats.

Stateful: the set of seen keys is its snapshot, so a restarted worker keeps dropping
what it had seen before the last recovery snapshot.
"""

from __future__ import annotations

from typing import Any

from factflow.adapters.base import Adapter, Context
from factflow.conditions import field_getter, field_path_problem, is_missing
from factflow.messages import Message, content_hash
from factflow.types import ConfigProblem, JsonDict


class DeduplicateAdapter(Adapter):
    """`key`: a field path; without it the payload's content hash is the key."""

    name = "deduplicate"
    stateful = True
    config_schema = {
        "type": "object",
        "properties": {"key": {"type": "string"}},
        "additionalProperties": False,
    }

    def __init__(self, config: JsonDict | None = None) -> None:
        super().__init__(config)
        path = self.config.get("key")
        self._get = field_getter(path) if path else None
        self._seen: set[str] = set()

    @classmethod
    def check_config(cls, config: JsonDict) -> list[ConfigProblem]:
        problem = field_path_problem(config["key"], ("key",)) if "key" in config else None
        return [problem] if problem else []

    def key_of(self, message: Message) -> str:
        if self._get is None:
            return content_hash(message.payload)
        value = self._get(message)
        return content_hash(None if is_missing(value) else value)

    def process(self, message: Message, context: Context) -> list[Message]:
        key = self.key_of(message)
        if key in self._seen:
            return []
        self._seen.add(key)
        return [message]

    def snapshot(self) -> Any:
        return sorted(self._seen)

    def restore(self, state: Any) -> None:
        self._seen = set(state or [])
