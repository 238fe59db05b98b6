"""The generic built-in adapters: passthrough, filter, map, split, set_metadata, deduplicate."""

from factflow.adapters.base import Adapter
from factflow.adapters.builtin.deduplicate import DeduplicateAdapter
from factflow.adapters.builtin.filter import FilterAdapter
from factflow.adapters.builtin.map import MapAdapter
from factflow.adapters.builtin.passthrough import PassthroughAdapter
from factflow.adapters.builtin.set_metadata import SetMetadataAdapter
from factflow.adapters.builtin.split import SplitAdapter

BUILTIN_ADAPTERS: tuple[type[Adapter], ...] = (
    PassthroughAdapter,
    FilterAdapter,
    MapAdapter,
    SplitAdapter,
    SetMetadataAdapter,
    DeduplicateAdapter,
)
