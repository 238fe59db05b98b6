"""The compiled plan as JSON and back: how it crosses the process boundary.

A launcher compiles once and writes `plan.json`; every worker process reads it
(FACTFLOW_PLAN) instead of compiling YAML again, so the plan that was validated is the
plan that runs. The encoding is every field of every plan dataclass (`Plan.to_dict` is
the shorter, documented view for `factflow compile --output json`).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from factflow.compiler.plan import Plan
from factflow.exceptions import ConfigurationError

FORMAT = 1
T = TypeVar("T")


def plan_to_json(plan: Plan) -> str:
    return json.dumps({"format": FORMAT, "plan": _encode(plan)}, ensure_ascii=False)


def plan_from_json(text: str) -> Plan:
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        msg = f"not a factflow plan (format {FORMAT}): recompile the pipeline"
        raise ConfigurationError(msg)
    plan: Plan = _decode(Plan, data["plan"])
    return plan


def write_plan(plan: Plan, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(plan_to_json(plan))
    tmp.replace(path)
    return path


def read_plan(path: Path) -> Plan:
    try:
        return plan_from_json(path.read_text())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        msg = f"cannot read the compiled plan {path}: {exc}"
        raise ConfigurationError(msg) from exc


def _encode(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, tuple | list):
        return [_encode(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted(_encode(v) for v in value)
    return value


def _decode(kind: Any, value: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        return None if value is None else _decode(options[0], value)
    if origin is tuple:
        item = typing.get_args(kind)[0]
        return tuple(_decode(item, v) for v in value)
    if origin is frozenset:
        item = typing.get_args(kind)[0]
        return frozenset(_decode(item, v) for v in value)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        fields = {f.name for f in dataclasses.fields(kind)}
        return kind(**{name: _decode(hints[name], value[name]) for name in fields})
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return kind.model_validate(value)
    return value
