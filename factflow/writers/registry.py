"""Find writer classes by their `sink: {type: ...}`: built-ins, the `factflow.writers`
entry-point group, or a dotted path `package.module:ClassName` (`factflow.plugins`
resolves them)."""

from __future__ import annotations

import jsonschema

from factflow.exceptions import AdapterRegistrationError
from factflow.plugins import PluginRegistry, UnknownPluginError
from factflow.writers.base import Writer

ENTRY_POINT_GROUP = "factflow.writers"


class UnknownWriterError(UnknownPluginError):
    """No writer is registered under this type; `suggestions` holds close names."""

    kind = "sink type"


def check_writer_class(obj: object, origin: str) -> type[Writer]:
    """`obj` as a writer class, or AdapterRegistrationError saying why not."""
    if not (isinstance(obj, type) and issubclass(obj, Writer)):
        msg = f"{origin} is not a subclass of factflow.writers.Writer"
        raise AdapterRegistrationError(msg)
    if not isinstance(getattr(obj, "name", None), str):
        msg = f'{origin} has no `name`: set a class attribute `name = "my_writer"`'
        raise AdapterRegistrationError(msg)
    try:
        jsonschema.Draft202012Validator.check_schema(obj.config_schema)
    except jsonschema.SchemaError as exc:
        msg = f"{origin} has an invalid config_schema: {exc.message}"
        raise AdapterRegistrationError(msg) from exc
    return obj


class WriterRegistry(PluginRegistry[type[Writer]]):
    """Names -> writer classes."""

    def __init__(self) -> None:
        super().__init__(
            check=check_writer_class,
            entry_point_group=ENTRY_POINT_GROUP,
            unknown=UnknownWriterError,
        )

    def register(self, cls: type[Writer]) -> type[Writer]:
        origin = f"writer class {cls.__module__}.{cls.__qualname__}"
        self.add(check_writer_class(cls, origin).name, cls, origin)
        return cls

    def register_path(self, name: str, path: str) -> None:
        """Register `name` as the class at dotted `path`, imported when first resolved
        (for writers whose module pulls in clients the caller must not depend on)."""
        self.add_path(name, path)


def default_writers() -> WriterRegistry:
    """A registry holding the built-in writers, the workflow writers (embedding_index)
    and, lazily, entry points."""
    from factflow.workflows import WORKFLOW_WRITERS
    from factflow.writers.builtin import BUILTIN_WRITERS

    registry = WriterRegistry()
    for cls in BUILTIN_WRITERS:
        registry.register(cls)
    for name, path in WORKFLOW_WRITERS.items():
        registry.register_path(name, path)
    return registry
