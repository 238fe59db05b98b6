"""Find adapter classes by their YAML `type:`.

A type is a registered name (the built-ins, classes registered in code, the
`factflow.adapters` entry-point group) or a dotted path `package.module:ClassName`
(`factflow.plugins` resolves them). Every class is checked once: it must subclass
`Adapter`, have a name and a valid JSON Schema as `config_schema`.
"""

from __future__ import annotations

import weakref

import jsonschema

from factflow.adapters.base import Adapter
from factflow.exceptions import AdapterRegistrationError
from factflow.plugins import PluginRegistry, UnknownPluginError

ENTRY_POINT_GROUP = "factflow.adapters"
# class -> the config_schema object found valid: the meta-schema check costs ~10 ms per
# class, and every registry (each worker process's, each compile's) checks every class
_VALID_SCHEMAS: weakref.WeakKeyDictionary[type, object] = weakref.WeakKeyDictionary()


class UnknownAdapterError(UnknownPluginError):
    """No adapter is registered under this type; `suggestions` holds close names."""

    kind = "adapter type"


def check_adapter_class(obj: object, origin: str) -> type[Adapter]:
    """Return `obj` as an adapter class, or raise AdapterRegistrationError saying why."""
    if not (isinstance(obj, type) and issubclass(obj, Adapter)):
        msg = f"{origin} is not a subclass of factflow.Adapter"
        raise AdapterRegistrationError(msg)
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name.strip():
        msg = f'{origin} has no `name`: set a class attribute `name = "my_adapter"`'
        raise AdapterRegistrationError(msg)
    schema = obj.config_schema
    if _VALID_SCHEMAS.get(obj) is schema:
        return obj
    try:
        if not isinstance(schema, dict):
            msg = "config_schema must be a dict"
            raise jsonschema.SchemaError(msg)
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        msg = f"{origin} has an invalid config_schema: {exc.message}"
        raise AdapterRegistrationError(msg) from exc
    _VALID_SCHEMAS[obj] = schema
    return obj


class AdapterRegistry(PluginRegistry[type[Adapter]]):
    """Names -> adapter classes. Dotted paths are imported on first use."""

    def __init__(self) -> None:
        super().__init__(
            check=check_adapter_class,
            entry_point_group=ENTRY_POINT_GROUP,
            unknown=UnknownAdapterError,
        )

    def register(self, cls: type[Adapter], name: str | None = None) -> type[Adapter]:
        """Register `cls` under its `name` (or `name`); usable as a class decorator."""
        origin = f"adapter class {cls.__module__}.{cls.__qualname__}"
        checked = check_adapter_class(cls, origin)
        self.add(name or checked.name, checked, origin)
        return cls


def default_registry() -> AdapterRegistry:
    """A fresh registry holding the built-in adapters, the workflow adapters (webscraper,
    markdown, files) and, lazily, entry points."""
    from factflow.adapters.builtin import BUILTIN_ADAPTERS
    from factflow.workflows import WORKFLOW_ADAPTERS

    registry = AdapterRegistry()
    for cls in (*BUILTIN_ADAPTERS, *WORKFLOW_ADAPTERS):
        registry.register(cls)
    return registry
