"""Embedding slot rules shared by the pipeline side (embedding_generator, checked at
compile time) and the index (a slot's vectors table is named after it)."""

from __future__ import annotations

import re

SLOT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
SLOT_NAME_RULE = "a lowercase letter, then up to 39 lowercase letters, digits or underscores"
MAX_DIMENSIONS = 2000
"""pgvector's HNSW indexes `vector` columns of at most 2,000 dimensions."""


def check_slot_name(name: str) -> str:
    if not SLOT_NAME.match(name):
        msg = f"slot name {name!r} is not valid: {SLOT_NAME_RULE}"
        raise ValueError(msg)
    return name
