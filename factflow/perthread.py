"""Values kept per OS thread.

Not `threading.local`: Bytewax's worker threads are Rust threads that may get a fresh
Python thread state each time they call into Python, and a `threading.local` lives in the
thread state, so its values would vanish between calls. The OS thread id does not change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerThread(Generic[T]):
    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._values: dict[int, T] = {}
        self._lock = threading.Lock()

    def get(self) -> T:
        ident = threading.get_ident()
        value = self._values.get(ident)
        if value is None:
            with self._lock:
                value = self._values.get(ident)
                if value is None:
                    value = self._factory()
                    self._values[ident] = value
        return value
