"""`map`: replaces the payload with `function(payload)`, a function named `module:attr`."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from factflow.adapters.base import Adapter, Context
from factflow.messages import Message
from factflow.types import ConfigProblem, JsonDict


def import_function(spec: str) -> Callable[[Any], Any]:
    """`package.module:attr` -> the callable; raises ImportError / AttributeError / TypeError."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        msg = f"'{spec}' is not of the form 'package.module:function'"
        raise ImportError(msg)
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    if not callable(target):
        msg = f"'{spec}' is not callable"
        raise TypeError(msg)
    return target  # type: ignore[no-any-return]


class MapAdapter(Adapter):
    name = "map"
    config_schema = {
        "type": "object",
        "properties": {"function": {"type": "string", "pattern": r"^[\w.]+:[\w.]+$"}},
        "required": ["function"],
        "additionalProperties": False,
    }

    def __init__(self, config: JsonDict | None = None) -> None:
        super().__init__(config)
        self._function = import_function(self.config["function"])

    @classmethod
    def check_config(cls, config: JsonDict) -> list[ConfigProblem]:
        try:
            import_function(config["function"])
        except Exception as exc:  # importing user code may fail in any way
            return [
                ConfigProblem(
                    ("function",),
                    "E303",
                    f"cannot use map function '{config['function']}': {exc}",
                    "name an importable callable as 'package.module:function'",
                )
            ]
        return []

    def process(self, message: Message, context: Context) -> list[Message]:
        return [message.derive(payload=self._function(message.payload))]
