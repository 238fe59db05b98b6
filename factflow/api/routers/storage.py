"""Storage: stage artefacts by prefix, one object's bytes, its metadata sidecar, and
retention (`POST /storage/prune`, admin only: it deletes)."""

from __future__ import annotations

import mimetypes
from typing import Annotated

from fastapi import APIRouter, Query, Response

from factflow.api.auth import require
from factflow.api.deps import DbDep, StorageDep
from factflow.api.errors import error_responses
from factflow.api.schemas.storage import PruneBody
from factflow.server.retention import prune
from factflow.types import JsonDict

router = APIRouter(
    prefix="/storage", tags=["storage"], dependencies=[require("storage:read", write="admin")]
)


@router.get("/objects")
def list_objects(
    storage: StorageDep,
    prefix: str = "",
    execution_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> JsonDict:
    """Objects whose key starts with `prefix` (or `executions/<execution_id>/`), key order."""
    if execution_id is not None:
        prefix = f"executions/{execution_id}/{prefix}"
    objects = storage.list(prefix, limit=limit)
    return {
        "prefix": prefix,
        "count": len(objects),
        "truncated": len(objects) == limit,
        "objects": [
            {"key": o.key, "size": o.size, "last_modified": o.last_modified.isoformat()}
            for o in objects
        ],
    }


@router.get("/objects/{key:path}/metadata", responses=error_responses(404))
def object_metadata(key: str, storage: StorageDep) -> JsonDict:
    """The object's metadata (the `.meta.json` sidecar, or S3 object metadata)."""
    return {"key": key, "metadata": storage.metadata(key)}


@router.get(
    "/objects/{key:path}",
    response_class=Response,
    responses={
        200: {
            "description": "the object's bytes; Content-Type guessed from the key",
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        },
        **error_responses(404),
    },
)
def get_object(key: str, storage: StorageDep) -> Response:
    """The object's bytes, with a content type guessed from the key."""
    data = storage.get(key)
    media_type = mimetypes.guess_type(key)[0] or "application/octet-stream"
    # stored HTML is crawled content on the dashboard's origin: opened directly, it runs
    # sandboxed (no scripts, no cookies), like the dashboard's previews
    return Response(
        content=data, media_type=media_type, headers={"Content-Security-Policy": "sandbox"}
    )


@router.post("/prune", responses=error_responses(409))
def prune_storage(body: PruneBody, conn: DbDep, storage: StorageDep) -> JsonDict:
    """Delete (or, `dry_run`, list) the stored stages of finished executions, keeping what
    a live execution, replay or restart needs; 409 STORAGE_IN_USE when a named one is."""
    return prune(conn, storage, body.to_request()).to_dict()
