"""`RequestBody`: the base of the JSON request bodies.

JSON can carry what nothing downstream takes: a lone surrogate (`"\\udcff"`) cannot be
encoded to UTF-8 (not for Postgres, a file or the response), and `1e400` parses as an
infinite float that is not JSON again. pydantic lets both through unconstrained `str` and
`Any` fields, so every body is checked once, before its fields, and refused with a 422.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, model_validator


def unstorable(data: Any) -> str | None:
    """Why `data` (parsed JSON) cannot be stored or sent back, or None when it can."""
    stack: list[tuple[Any, str]] = [(data, "body")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return f"{where}: the string holds a lone surrogate (not encodable as UTF-8)"
        elif isinstance(value, float):
            if not math.isfinite(value):
                return f"{where}: {value} is not a JSON number"
        elif isinstance(value, dict):
            for key, item in value.items():
                stack.append((key, f"{where} (a key)"))
                stack.append((item, f"{where}.{key}" if isinstance(key, str) else where))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(value))
    return None


class RequestBody(BaseModel):
    """A JSON request body; see the module docstring."""

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        problem = unstorable(data)
        if problem is not None:
            raise ValueError(problem)
        return data
