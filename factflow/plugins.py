"""One registry for the things a pipeline names by `type:`: adapters, writers, providers.

A name resolves to a registered object (built-ins, objects registered in code), a lazily
imported dotted path registered under a name (for modules whose clients a caller must not
load up front), an entry point of the kind's group, or, where the kind allows it, a dotted
path `package.module:Name` written in the pipeline itself. Every object is checked once by
the kind's `check`, which says what is wrong with it.
"""

from __future__ import annotations

import difflib
import importlib
import re
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

from factflow.exceptions import AdapterRegistrationError, ConfigurationError

T = TypeVar("T")

DOTTED_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")

Check = Callable[[object, str], T]
"""Return the object as a T, or raise AdapterRegistrationError naming `origin` and why."""


_GROUPS: set[str] = set()
"""The entry-point groups of the registries made so far."""
_REMEMBERED: dict[str, tuple[EntryPoint, ...]] = {}
"""Group -> its entry points, as `remember_entry_points` read them."""
_REMEMBERING: list[bool] = []


def remember_entry_points() -> None:
    """Read the entry points of every registry kind made so far once, for every later
    registry of this process and of processes forked from it (the worker forkserver:
    reading them costs each worker ~50 ms a group). Entry points installed afterwards are
    not seen until `forget_entry_points`."""
    _REMEMBERED.clear()
    _REMEMBERED.update({group: tuple(entry_points(group=group)) for group in _GROUPS})
    _REMEMBERING[:] = [True]


def forget_entry_points() -> None:
    """Registries read the installed entry points again (a child with another PYTHONPATH)."""
    _REMEMBERED.clear()
    _REMEMBERING.clear()


def group_entry_points(group: str) -> tuple[EntryPoint, ...]:
    if _REMEMBERING and group in _REMEMBERED:
        return _REMEMBERED[group]
    return tuple(entry_points(group=group))


class UnknownPluginError(ConfigurationError):
    """No object of this kind is registered under the name; `suggestions` holds close ones."""

    kind = "plugin"

    def __init__(self, type_name: str, suggestions: list[str]) -> None:
        self.type_name = type_name
        self.suggestions = suggestions
        hint = f" (did you mean '{suggestions[0]}'?)" if suggestions else ""
        super().__init__(f"unknown {self.kind} '{type_name}'{hint}")


class PluginRegistry(Generic[T]):
    """Names -> checked objects of one kind."""

    def __init__(
        self,
        *,
        check: Check[T],
        entry_point_group: str,
        unknown: type[UnknownPluginError],
        dotted_paths: bool = True,
    ) -> None:
        self._check = check
        self._group = entry_point_group
        self._unknown = unknown
        self._dotted_paths = dotted_paths
        self._objects: dict[str, T] = {}
        self._paths: dict[str, str] = {}
        self._entry_points_loaded = False
        _GROUPS.add(entry_point_group)

    def add(self, name: str, obj: object, origin: str) -> T:
        """Check `obj` and register it under `name`."""
        checked = self._check(obj, origin)
        self._objects[name] = checked
        return checked

    def add_path(self, name: str, path: str) -> None:
        """Register `name` as the object at dotted `path`, imported when first resolved."""
        self._paths[name] = path

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted({*self._objects, *self._paths})

    def resolve(self, type_name: str) -> T:
        """The object for `type_name`; raises the kind's UnknownPluginError when none is
        registered, AdapterRegistrationError when one cannot be loaded or is invalid."""
        if ":" in type_name and self._dotted_paths:
            return self._check(import_dotted(type_name), f"'{type_name}'")
        self._load_entry_points()
        if type_name not in self._objects and type_name in self._paths:
            path = self._paths[type_name]
            self._objects[type_name] = self._check(import_dotted(path), f"'{path}'")
        try:
            return self._objects[type_name]
        except KeyError:
            known = [*self._objects, *self._paths]
            close = difflib.get_close_matches(type_name, known, n=3, cutoff=0.6)
            raise self._unknown(type_name, close) from None

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in group_entry_points(self._group):
            if ep.name in self._objects or ep.name in self._paths:
                continue
            origin = f"entry point '{ep.name}' ({ep.value})"
            try:
                loaded = ep.load()
            except Exception as exc:  # a third-party module: any failure is a config problem
                msg = f"{origin} cannot be loaded: {exc}"
                raise AdapterRegistrationError(msg) from exc
            self._objects[ep.name] = self._check(loaded, origin)


def import_dotted(path: str) -> object:
    """The object at `package.module:Name`; AdapterRegistrationError saying what failed."""
    if not DOTTED_PATH.match(path):
        msg = f"'{path}' is not a dotted path of the form 'package.module:Name'"
        raise AdapterRegistrationError(msg)
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the module is user code: any failure is a config problem
        msg = f"cannot import module '{module_name}' for '{path}': {exc}"
        raise AdapterRegistrationError(msg) from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        msg = f"module '{module_name}' has no attribute '{attr}'"
        raise AdapterRegistrationError(msg) from None
