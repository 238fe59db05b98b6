"""Errors of the embedding adapters and the index writer."""

from __future__ import annotations

from factflow.exceptions import ConfigurationError
from factflow.workflows.errors import WorkflowError


class EmbeddingError(WorkflowError):
    """An embedding call failed or returned something unusable (wrong count, wrong size)."""


class UnknownLocalModelError(ConfigurationError):
    """A slot names a local model that no installed package ships.

    Use one of the local models docs/search.md lists, or `backend: litellm` for a model
    served by a provider.
    """
