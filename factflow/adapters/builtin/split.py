"""`split`: fans a list out, one message per element."""

from __future__ import annotations

from factflow.adapters.base import Adapter, Context
from factflow.conditions import field_getter, field_path_problem, is_missing
from factflow.messages import Message
from factflow.types import ConfigProblem, JsonDict


class SplitAdapter(Adapter):
    """`field`: the list to split. Each element becomes a payload; with `into: NAME` it is
    put under that key of a copy of the original payload instead."""

    name = "split"
    config_schema = {
        "type": "object",
        "properties": {"field": {"type": "string"}, "into": {"type": "string", "minLength": 1}},
        "required": ["field"],
        "additionalProperties": False,
    }

    def __init__(self, config: JsonDict | None = None) -> None:
        super().__init__(config)
        self._field = str(self.config["field"])
        self._get = field_getter(self._field)
        self._into: str | None = self.config.get("into")

    @classmethod
    def check_config(cls, config: JsonDict) -> list[ConfigProblem]:
        problem = field_path_problem(config["field"], ("field",))
        return [problem] if problem else []

    def process(self, message: Message, context: Context) -> list[Message]:
        items = self._get(message)
        if is_missing(items) or not isinstance(items, list):
            found = "nothing" if is_missing(items) else type(items).__name__
            msg = f"split: field '{self._field}' must be a list, found {found}"
            raise ValueError(msg)
        children = []
        for index, item in enumerate(items):
            payload = item
            if self._into is not None:
                base = message.payload if isinstance(message.payload, dict) else {}
                payload = {**base, self._into: item}
            children.append(
                message.derive(
                    payload=payload, metadata={"split_index": index, "split_count": len(items)}
                )
            )
        return children
