"""`filter`: keeps the messages its condition holds for, drops the rest."""

from __future__ import annotations

from factflow.adapters.base import Adapter, Context
from factflow.conditions import ConditionConfig, compile_condition, condition_problems
from factflow.messages import Message
from factflow.types import ConfigProblem, JsonDict, JsonSchema

CONDITION_SCHEMA: JsonSchema = {
    "type": "object",
    "properties": {
        "field": {"type": "string"},
        "operator": {"type": "string"},
        "value": {},
        "all": {"type": "array", "items": {"type": "object"}},
        "any": {"type": "array", "items": {"type": "object"}},
        "not": {"type": "object"},
    },
    "additionalProperties": False,
    "minProperties": 1,
}


class FilterAdapter(Adapter):
    """Config is a condition: `{field, operator, value}` or `all` / `any` / `not`."""

    name = "filter"
    config_schema = CONDITION_SCHEMA

    def __init__(self, config: JsonDict | None = None) -> None:
        super().__init__(config)
        self._holds = compile_condition(ConditionConfig.model_validate(self.config))

    @classmethod
    def check_config(cls, config: JsonDict) -> list[ConfigProblem]:
        return condition_problems(config)

    def process(self, message: Message, context: Context) -> list[Message]:
        return [message] if self._holds(message) else []
