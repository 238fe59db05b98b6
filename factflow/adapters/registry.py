"""Find adapter classes by their YAML `type:`.

A type is a registered name (the built-ins, classes registered in code, the
`factflow.adapters` entry-point group) or a dotted path `package.module:ClassName`.
Every class is checked once: it must subclass `Adapter`, have a name and a valid JSON
Schema as `config_schema`.
"""

from __future__ import annotations

import difflib
import importlib
import re
from importlib.metadata import entry_points

import jsonschema

from factflow.adapters.base import Adapter
from factflow.exceptions import AdapterRegistrationError, ConfigurationError

ENTRY_POINT_GROUP = "factflow.adapters"
_DOTTED_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


class UnknownAdapterError(ConfigurationError):
    """No adapter is registered under this type; `suggestions` holds close names."""

    def __init__(self, type_name: str, suggestions: list[str]) -> None:
        self.type_name = type_name
        self.suggestions = suggestions
        hint = f" (did you mean '{suggestions[0]}'?)" if suggestions else ""
        super().__init__(f"unknown adapter type '{type_name}'{hint}")


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
    try:
        if not isinstance(schema, dict):
            msg = "config_schema must be a dict"
            raise jsonschema.SchemaError(msg)
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        msg = f"{origin} has an invalid config_schema: {exc.message}"
        raise AdapterRegistrationError(msg) from exc
    return obj


class AdapterRegistry:
    """Names -> adapter classes. Dotted paths are imported on first use."""

    def __init__(self) -> None:
        self._classes: dict[str, type[Adapter]] = {}
        self._entry_points_loaded = False

    def register(self, cls: type[Adapter], name: str | None = None) -> type[Adapter]:
        """Register `cls` under its `name` (or `name`); usable as a class decorator."""
        checked = check_adapter_class(cls, f"adapter class {cls.__module__}.{cls.__qualname__}")
        self._classes[name or checked.name] = checked
        return cls

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._classes)

    def resolve(self, type_name: str) -> type[Adapter]:
        """The class for `type_name`; raises UnknownAdapterError or AdapterRegistrationError."""
        if ":" in type_name:
            return self._import_dotted(type_name)
        self._load_entry_points()
        try:
            return self._classes[type_name]
        except KeyError:
            close = difflib.get_close_matches(type_name, list(self._classes), n=3, cutoff=0.6)
            raise UnknownAdapterError(type_name, close) from None

    def _import_dotted(self, path: str) -> type[Adapter]:
        module_name, _, attr = path.partition(":")
        if not _DOTTED_PATH.match(path):
            msg = f"'{path}' is not a dotted path of the form 'package.module:ClassName'"
            raise AdapterRegistrationError(msg)
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # the module is user code: any failure is a config problem
            msg = f"cannot import module '{module_name}' for adapter '{path}': {exc}"
            raise AdapterRegistrationError(msg) from exc
        try:
            obj = getattr(module, attr)
        except AttributeError:
            msg = f"module '{module_name}' has no attribute '{attr}'"
            raise AdapterRegistrationError(msg) from None
        return check_adapter_class(obj, f"'{path}'")

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in self._classes:
                continue
            try:
                cls = check_adapter_class(ep.load(), f"entry point '{ep.name}' ({ep.value})")
            except (ImportError, AttributeError) as exc:
                msg = f"entry point '{ep.name}' ({ep.value}) cannot be loaded: {exc}"
                raise AdapterRegistrationError(msg) from exc
            self._classes[ep.name] = cls


def default_registry() -> AdapterRegistry:
    """A fresh registry holding the built-in adapters, the workflow adapters (webscraper,
    markdown, files) and, lazily, entry points."""
    from factflow.adapters.builtin import BUILTIN_ADAPTERS
    from factflow.workflows import WORKFLOW_ADAPTERS

    registry = AdapterRegistry()
    for cls in (*BUILTIN_ADAPTERS, *WORKFLOW_ADAPTERS):
        registry.register(cls)
    return registry
