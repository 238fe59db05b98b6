"""Pipelines: the routes of the active configs, and pausing / resuming a route everywhere."""

from __future__ import annotations

from typing import Any, Literal

import yaml
from fastapi import APIRouter
from pydantic import BaseModel

from factflow.api.auth import require
from factflow.api.bodies import RequestBody
from factflow.api.deps import DbDep
from factflow.api.errors import error_responses, not_found
from factflow.compiler.loader import parse_yaml
from factflow.db.connection import DbConnection
from factflow.db.repositories.configs import list_configs
from factflow.db.repositories.executions import list_executions
from factflow.db.repositories.route_states import paused_routes, set_route_paused
from factflow.types import JsonDict

router = APIRouter(
    prefix="/pipelines",
    tags=["pipelines"],
    dependencies=[require("configs:read", write="executions:run")],
)


class RouteStateChange(RequestBody):
    state: Literal["paused", "running"]
    reason: str | None = None


class RouteStateResponse(BaseModel):
    success: bool
    route_id: str
    message: str
    status: Literal["paused", "running"]


def _routes_of(config: Any) -> dict[str, JsonDict]:
    routes = config.get("routes") if isinstance(config, dict) else None
    return (
        {str(k): v for k, v in routes.items() if isinstance(v, dict)}
        if isinstance(routes, dict)
        else {}
    )


def known_routes(db: DbConnection) -> list[JsonDict]:
    """Routes of active configs and of running executions (inline pipelines too)."""
    found: list[JsonDict] = []
    for config in list_configs(db, limit=10_000):
        try:
            data = parse_yaml(config.config_yaml)
        except (yaml.YAMLError, RecursionError):
            continue
        for route_id, route in _routes_of(data).items():
            inbound = route.get("inbound")
            found.append(
                {
                    "route_id": route_id,
                    "name": route.get("name") or route_id,
                    "pipeline": config.name,
                    "config_id": str(config.id),
                    "config_version": config.version,
                    "queue": inbound.get("queue") if isinstance(inbound, dict) else inbound,
                }
            )
    for execution in list_executions(db, status=["running", "cancelling"], limit=10_000):
        for route_id, route in _routes_of(execution.config_snapshot.get("config")).items():
            inbound = route.get("inbound")
            found.append(
                {
                    "route_id": route_id,
                    "name": route.get("name") or route_id,
                    "pipeline": execution.pipeline_name,
                    "execution_id": str(execution.id),
                    "queue": inbound.get("queue") if isinstance(inbound, dict) else inbound,
                }
            )
    return found


@router.get("")
def list_pipelines(db: DbDep) -> list[JsonDict]:
    """Every route of the active configs and running executions, with its state."""
    paused = paused_routes(db)
    return [
        {**route, "status": "paused" if route["route_id"] in paused else "running"}
        for route in known_routes(db)
    ]


@router.patch("/{route_id}", responses=error_responses(404))
def change_route_state(route_id: str, body: RouteStateChange, db: DbDep) -> RouteStateResponse:
    """Pause or resume a route across all executions; 404 when no config has it."""
    paused = paused_routes(db)
    if route_id not in paused and not any(r["route_id"] == route_id for r in known_routes(db)):
        msg = f"route {route_id!r}"
        raise not_found(msg)
    changed = set_route_paused(db, route_id, body.state == "paused", reason=body.reason)
    verb = "paused" if body.state == "paused" else "resumed"
    message = (
        f"route {route_id} {verb}" if changed else f"route {route_id} was already {body.state}"
    )
    return RouteStateResponse(success=True, route_id=route_id, message=message, status=body.state)
