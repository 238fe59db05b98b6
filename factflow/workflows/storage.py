"""Stage storage access shared by the workflow adapters: the run's storage from the
Context, and the key of a document an adapter writes itself."""

from __future__ import annotations

from factflow.adapters.base import Context
from factflow.storage import StageStorage, stage_key
from factflow.workflows.errors import StorageRequiredError


def require_storage(context: Context, adapter: str) -> StageStorage:
    storage = context.storage
    if not isinstance(storage, StageStorage):
        msg = (
            f"{adapter} needs stage storage, but this run has none: give the pipeline "
            "`storage: {uri: ...}` or set FACTFLOW_STORAGE_URI (and not FACTFLOW_STORE_STAGES=0)"
        )
        raise StorageRequiredError(msg)
    return storage


def document_key(context: Context, folder: str, name: str, ext: str) -> str:
    """`executions/<execution>/<route>/<folder>/<name><ext>`: the stage key convention, so
    `factflow storage list` and replay see these objects like any stage artefact."""
    return stage_key(context.execution_id, context.route_id, folder, name, ext=ext)
