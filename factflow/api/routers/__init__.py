"""One router per domain, each with its prefix and tag, collected under /api/v1."""

from fastapi import APIRouter

from factflow.api.routers import (
    adapters,
    configs,
    content,
    deadletters,
    executions,
    lineage,
    pipelines,
    replay,
    search,
    storage,
    system,
    templates,
    triggers,
    webhooks,
)

API_PREFIX = "/api/v1"

api_router = APIRouter(prefix=API_PREFIX)
for module in (
    system, configs, executions, pipelines, lineage, storage, content, adapters, templates,
    search, webhooks, triggers, replay, deadletters,
):  # fmt: skip
    api_router.include_router(module.router)

__all__ = ["API_PREFIX", "api_router"]
