"""Adapters: the registered adapter types with their config JSON Schemas."""

from __future__ import annotations

import inspect

from fastapi import APIRouter

from factflow.adapters.base import Adapter
from factflow.api.auth import require
from factflow.api.deps import RegistryDep
from factflow.api.errors import error_responses, not_found
from factflow.types import JsonDict

router = APIRouter(prefix="/adapters", tags=["adapters"], dependencies=[require("configs:read")])


def _describe(name: str, cls: type[Adapter]) -> JsonDict:
    doc = inspect.getdoc(cls) or ""
    return {
        "name": name,
        "description": doc.split("\n\n")[0].replace("\n", " "),
        "class": f"{cls.__module__}.{cls.__qualname__}",
        "stateful": bool(getattr(cls, "stateful", False)),
        "config_schema": cls.config_schema,
    }


@router.get("")
def list_adapters(registry: RegistryDep) -> list[JsonDict]:
    return [_describe(name, registry.resolve(name)) for name in registry.names()]


@router.get("/{name}", responses=error_responses(404))
def get_adapter(name: str, registry: RegistryDep) -> JsonDict:
    if name not in registry.names():
        msg = f"adapter {name!r}"
        raise not_found(msg)
    return _describe(name, registry.resolve(name))
