"""One router per domain, each with its prefix and tag, collected under /api/v1.

Every router declares the scope its routes need, in one line (factflow/api/auth.py):

    router = APIRouter(prefix="/search", tags=["search"], dependencies=[require("search:read")])
    router = APIRouter(..., dependencies=[require("webhooks:manage")])
    router = APIRouter(..., dependencies=[require("configs:read", write="configs:write")])

`write=` is the scope of POST, PUT, PATCH and DELETE; `routes={"endpoint_name": scope}`
names the exceptions (`PUBLIC` for none, `AUTHENTICATED` for any valid credentials).
`create_app` refuses to start while a route declares no scope, and
`tests/integration/api/test_auth_matrix.py` calls every route of the OpenAPI document
with each kind of credential. Scopes are `factflow.auth.Scope`.
"""

from fastapi import APIRouter

from factflow.api.routers import (
    adapters,
    audit,
    chat,
    configs,
    content,
    deadletters,
    executions,
    keys,
    lineage,
    pipelines,
    replay,
    search,
    sessions,
    storage,
    system,
    templates,
    triggers,
    usage,
    users,
    webhooks,
)

API_PREFIX = "/api/v1"

api_router = APIRouter(prefix=API_PREFIX)
for module in (
    system, configs, executions, pipelines, lineage, storage, content, adapters, templates,
    search, chat, usage, webhooks, triggers, replay, deadletters, keys, users, sessions,
    audit,
):  # fmt: skip
    api_router.include_router(module.router)

__all__ = ["API_PREFIX", "api_router"]
