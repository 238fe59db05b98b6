"""Find writer classes by their `sink: {type: ...}`: built-ins, the `factflow.writers`
entry-point group, or a dotted path `package.module:ClassName`."""

from __future__ import annotations

import difflib
import importlib
from importlib.metadata import entry_points

import jsonschema

from factflow.exceptions import AdapterRegistrationError, ConfigurationError
from factflow.writers.base import Writer

ENTRY_POINT_GROUP = "factflow.writers"


class UnknownWriterError(ConfigurationError):
    """No writer is registered under this type; `suggestions` holds close names."""

    def __init__(self, type_name: str, suggestions: list[str]) -> None:
        self.type_name = type_name
        self.suggestions = suggestions
        hint = f" (did you mean '{suggestions[0]}'?)" if suggestions else ""
        super().__init__(f"unknown sink type '{type_name}'{hint}")


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


class WriterRegistry:
    def __init__(self) -> None:
        self._classes: dict[str, type[Writer]] = {}
        self._paths: dict[str, str] = {}
        self._entry_points_loaded = False

    def register(self, cls: type[Writer]) -> type[Writer]:
        checked = check_writer_class(cls, f"writer class {cls.__module__}.{cls.__qualname__}")
        self._classes[checked.name] = checked
        return cls

    def register_path(self, name: str, path: str) -> None:
        """Register `name` as the class at dotted `path`, imported when first resolved
        (for writers whose module pulls in clients the caller must not depend on)."""
        self._paths[name] = path

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted({*self._classes, *self._paths})

    def resolve(self, type_name: str) -> type[Writer]:
        if ":" in type_name:
            module_name, _, attr = type_name.partition(":")
            try:
                obj = getattr(importlib.import_module(module_name), attr)
            except Exception as exc:  # user code: any failure is a config problem
                msg = f"cannot load writer '{type_name}': {exc}"
                raise AdapterRegistrationError(msg) from exc
            return check_writer_class(obj, f"'{type_name}'")
        self._load_entry_points()
        if type_name not in self._classes and type_name in self._paths:
            self._classes[type_name] = self.resolve(self._paths[type_name])
        try:
            return self._classes[type_name]
        except KeyError:
            known = [*self._classes, *self._paths]
            close = difflib.get_close_matches(type_name, known, n=3, cutoff=0.6)
            raise UnknownWriterError(type_name, close) from None

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name not in self._classes:
                self._classes[ep.name] = check_writer_class(ep.load(), f"entry point '{ep.name}'")


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
