"""Configs: versioned pipeline YAML, stored even when invalid, with the compiler's report."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Response, status
from pydantic import BaseModel, Field

from factflow.adapters.registry import AdapterRegistry
from factflow.api.auth import StarterDep, require
from factflow.api.bodies import RequestBody
from factflow.api.compiling import compile_yaml
from factflow.api.deps import MAX_INT4, DbDep, ExecutionsDep, Offset, RegistryDep
from factflow.api.errors import error_responses
from factflow.api.routers.executions import start_execution
from factflow.api.schemas.executions import IDEMPOTENT_START, ExecutionStarted, RunRequest
from factflow.api.schemas.validation import ValidationReport
from factflow.db.connection import DbConnection
from factflow.db.repositories import configs as repo
from factflow.db.repositories.config_versions import list_inactive_versions
from factflow.db.repositories.triggers import delete_config_triggers
from factflow.triggers.definitions import config_triggers, sync_config_triggers

router = APIRouter(
    prefix="/configs",
    tags=["configs"],
    dependencies=[
        require(
            "configs:read",
            write="configs:write",
            routes={"validate_config": "configs:read", "run_config": "executions:run"},
        )
    ],
)

SourceType = Literal["file", "api", "imported", "inline"]


class ConfigCreate(RequestBody):
    name: str = Field(min_length=1, max_length=200)
    config_yaml: str = Field(min_length=1)
    source_type: SourceType = "api"
    source_path: str | None = None
    description: str | None = None


class ConfigUpdate(RequestBody):
    """Fields to change; a changed config is a new version (the old one stays, inactive)."""

    config_yaml: str | None = Field(default=None, min_length=1)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = None
    source_type: SourceType | None = None
    source_path: str | None = None


class ConfigValidate(RequestBody):
    config_yaml: str


class PipelineConfigResponse(BaseModel):
    id: uuid.UUID
    name: str
    description: str | None
    source_type: str
    source_path: str | None
    config_hash: str
    version: int
    created_at: datetime
    updated_at: datetime
    is_active: bool
    validation_report: ValidationReport
    is_runnable: bool
    config_yaml: str | None = None


def _response(
    config: repo.PipelineConfig, registry: AdapterRegistry, *, with_yaml: bool = True
) -> PipelineConfigResponse:
    compiled = compile_yaml(config.config_yaml, registry, name=config.name)
    return PipelineConfigResponse(
        id=config.id,
        name=config.name,
        description=config.description,
        source_type=config.source_type,
        source_path=config.source_path,
        config_hash=config.config_hash,
        version=config.version,
        created_at=config.created_at,
        updated_at=config.updated_at,
        is_active=config.is_active,
        validation_report=ValidationReport.model_validate(compiled.report),
        is_runnable=compiled.is_runnable,
        config_yaml=config.config_yaml if with_yaml else None,
    )


@router.post("", status_code=status.HTTP_201_CREATED, responses=error_responses(409))
def create_config(body: ConfigCreate, db: DbDep, registry: RegistryDep) -> PipelineConfigResponse:
    """Store a config (even an invalid one: see `is_runnable`); 400 when the YAML cannot
    be parsed, 409 when an active config has the name."""
    compile_yaml(body.config_yaml, registry, name=body.name).require_parsable()
    with db.transaction():
        config = repo.create_config(
            db,
            name=body.name,
            config_yaml=body.config_yaml,
            description=body.description,
            source_type=body.source_type,
            source_path=body.source_path,
        )
        _register_triggers(db, config, registry)
    return _response(config, registry)


def _register_triggers(
    db: DbConnection, config: repo.PipelineConfig, registry: AdapterRegistry
) -> None:
    """The saved version's `triggers:` replace the config's earlier ones, in the save's
    transaction (an invalid version has none: nothing could start it)."""
    specs = config_triggers(config.config_yaml, config.name, registry)
    sync_config_triggers(db, config.id, specs)


@router.post("/validate")
def validate_config(body: ConfigValidate, registry: RegistryDep) -> ValidationReport:
    """Validate without saving; always 200 with the report."""
    return ValidationReport.model_validate(compile_yaml(body.config_yaml, registry).report)


@router.get("")
def list_configs(
    db: DbDep,
    registry: RegistryDep,
    active: bool = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[PipelineConfigResponse]:
    """Active configs (their current version), or with `active=false` superseded versions."""
    rows = (
        repo.list_configs(db, limit=limit, offset=offset)
        if active
        else list_inactive_versions(db, limit=limit, offset=offset)
    )
    return [_response(row, registry, with_yaml=False) for row in rows]


@router.get("/{config_id}", responses=error_responses(404))
def get_config(
    config_id: uuid.UUID,
    db: DbDep,
    registry: RegistryDep,
    version: Annotated[int | None, Query(ge=1, le=MAX_INT4)] = None,
) -> PipelineConfigResponse:
    """The config with its YAML and a freshly computed validation report."""
    return _response(repo.get_config(db, config_id, version), registry)


@router.get("/{config_id}/versions", responses=error_responses(404))
def list_versions(
    config_id: uuid.UUID, db: DbDep, registry: RegistryDep
) -> list[PipelineConfigResponse]:
    """Every version, newest first (factflow addition)."""
    rows = repo.list_versions(db, config_id)
    if not rows:
        repo.get_config(db, config_id)  # raises NotFoundError
    return [_response(row, registry, with_yaml=False) for row in rows]


def _update(
    config_id: uuid.UUID, body: ConfigUpdate, db: Any, registry: AdapterRegistry
) -> PipelineConfigResponse:
    if body.config_yaml is not None:
        name = body.name or repo.get_config(db, config_id).name
        compile_yaml(body.config_yaml, registry, name=name).require_parsable()
    with db.transaction():
        config = repo.update_config(
            db,
            config_id,
            config_yaml=body.config_yaml,
            name=body.name,
            description=body.description,
            source_type=body.source_type,
            source_path=body.source_path,
        )
        _register_triggers(db, config, registry)
    return _response(config, registry)


@router.put("/{config_id}", responses=error_responses(404, 409))
def replace_config(
    config_id: uuid.UUID, body: ConfigUpdate, db: DbDep, registry: RegistryDep
) -> PipelineConfigResponse:
    """A new version with the given fields (unchanged fields keep the current version)."""
    return _update(config_id, body, db, registry)


@router.patch("/{config_id}", responses=error_responses(404, 409))
def patch_config(
    config_id: uuid.UUID, body: ConfigUpdate, db: DbDep, registry: RegistryDep
) -> PipelineConfigResponse:
    """Same as PUT: only the fields given change."""
    return _update(config_id, body, db, registry)


@router.delete(
    "/{config_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404)
)
def delete_config(config_id: uuid.UUID, db: DbDep) -> Response:
    """Delete every version, with its triggers and schedules; executions keep their
    config snapshot."""
    with db.transaction():
        repo.delete_config(db, config_id)
        delete_config_triggers(db, config_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{config_id}/run",
    status_code=status.HTTP_201_CREATED,
    responses={**IDEMPOTENT_START, **error_responses(404)},
)
def run_config(
    config_id: uuid.UUID,
    db: DbDep,
    service: ExecutionsDep,
    response: Response,
    starter: StarterDep,
    options: Annotated[RunRequest | None, Body()] = None,
) -> ExecutionStarted:
    """Start an execution of the active version; 400 with the report if it is invalid."""
    config = repo.get_config(db, config_id)
    return start_execution(
        service, db, response, options or RunRequest(), config=config, started_by=starter
    )
