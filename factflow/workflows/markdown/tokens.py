"""Offline token counting: tiktoken encodings whose BPE files ship inside a package this
project already depends on (litellm bundles cl100k_base, o200k_base and p50k_base), or any
Hugging Face `tokenizer.json` (an embedding model's own, through `tokenizers`). Nothing is
downloaded at run time: an encoding that is not bundled is refused."""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

BUNDLED_ENCODINGS = ("cl100k_base", "o200k_base", "p50k_base")


class Tokenizer(Protocol):
    def encode(self, text: str) -> Sequence[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


class _Tiktoken:
    def __init__(self, name: str) -> None:
        import tiktoken

        self._encoding = tiktoken.get_encoding(name)

    def encode(self, text: str) -> Sequence[int]:
        return self._encoding.encode(text, disallowed_special=())

    def decode(self, ids: Sequence[int]) -> str:
        return self._encoding.decode(list(ids))


class _HuggingFace:
    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer as HfTokenizer

        self._tokenizer = HfTokenizer.from_file(str(path))
        # a model's tokenizer.json may pad or truncate to its sequence length; counting
        # needs neither
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()

    def encode(self, text: str) -> Sequence[int]:
        return self._tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Sequence[int]) -> str:
        return self._tokenizer.decode(list(ids))


def _bundled_bpe_dir() -> Path | None:
    # found without importing litellm (its import is slow and reaches for the network)
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
    return folder if folder.is_dir() else None


@functools.cache
def get_tokenizer(encoding: str = "cl100k_base", tokenizer_file: str | None = None) -> Tokenizer:
    """The tokenizer for a config: a `tokenizer.json` path wins over `encoding`."""
    if tokenizer_file:
        path = Path(tokenizer_file)
        if not path.is_file():
            msg = f"tokenizer_file {tokenizer_file!r} does not exist"
            raise FileNotFoundError(msg)
        return _HuggingFace(path)
    if encoding not in BUNDLED_ENCODINGS:
        msg = f"encoding {encoding!r} is not bundled; use one of {', '.join(BUNDLED_ENCODINGS)}"
        raise ValueError(msg)
    folder = _bundled_bpe_dir()
    if folder is None:
        msg = "the bundled tiktoken files (in the litellm package) are missing: pip install litellm"
        raise RuntimeError(msg)
    # tiktoken reads its cache directory on every load; litellm points it at the same
    # folder when it is imported, so this agrees with it rather than overriding a choice
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(folder))
    return _Tiktoken(encoding)


def count_tokens(tokenizer: Tokenizer, text: str) -> int:
    return len(tokenizer.encode(text))
