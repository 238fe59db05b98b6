"""The writers factflow ships."""

from factflow.writers.base import Writer
from factflow.writers.builtin.jsonl_storage import JsonLinesStorageWriter

BUILTIN_WRITERS: tuple[type[Writer], ...] = (JsonLinesStorageWriter,)

__all__ = ["BUILTIN_WRITERS", "JsonLinesStorageWriter"]
