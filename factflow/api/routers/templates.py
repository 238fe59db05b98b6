"""Templates: the shipped pipelines (validated when the server starts)."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import APIRouter, Request

from factflow.adapters.registry import AdapterRegistry
from factflow.api.auth import require
from factflow.api.compiling import compile_yaml
from factflow.api.errors import error_responses, not_found
from factflow.types import JsonDict

router = APIRouter(prefix="/templates", tags=["templates"], dependencies=[require("configs:read")])
_log = logging.getLogger(__name__)


def load_templates(folder: Path, registry: AdapterRegistry) -> dict[str, JsonDict]:
    """Every `*.yaml` in `folder`, compiled; invalid ones are logged and kept, marked."""
    templates: dict[str, JsonDict] = {}
    if not folder.is_dir():
        return templates
    for path in sorted(folder.glob("*.y*ml")):
        text = path.read_text()
        compiled = compile_yaml(text, registry, name=path.stem)
        plan = compiled.result.plan
        if plan is None:
            _log.warning("shipped pipeline %s is invalid: %s", path, compiled.report)
        templates[path.stem] = {
            "name": path.stem,
            "file": path.name,
            "description": plan.description if plan else None,
            "queue_provider": plan.queue.provider if plan else None,
            "routes": [r.id for r in plan.routes] if plan else [],
            "source_queues": sorted({r.inbound_queue for r in plan.routes}) if plan else [],
            "is_runnable": plan is not None,
            "validation_report": compiled.report,
            "config_yaml": text,
        }
    return templates


def _templates(request: Request) -> dict[str, JsonDict]:
    templates: dict[str, JsonDict] = request.app.state.templates
    return templates


@router.get("")
def list_templates(request: Request) -> list[JsonDict]:
    return [
        {k: v for k, v in t.items() if k not in ("config_yaml", "validation_report")}
        for t in _templates(request).values()
    ]


@router.get("/{name}", responses=error_responses(404))
def get_template(name: str, request: Request) -> JsonDict:
    """The template with its YAML (create a config from it with POST /configs)."""
    template = _templates(request).get(name)
    if template is None:
        msg = f"template {name!r}"
        raise not_found(msg)
    return template
