"""Dependencies as `Annotated` aliases; handlers declare what they need by type.

The objects live on `app.state` (made once in the lifespan): the settings, the pool, the
supervisor, the execution service, the adapter registry, the stage storage and the
archive jobs. The getters are `async def` so FastAPI calls them on the event loop: a plain
`def` dependency costs a hop through the thread pool per request, for an attribute read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from psycopg_pool import ConnectionPool

from factflow.adapters.registry import AdapterRegistry
from factflow.api.settings import ApiSettings
from factflow.db.connection import DbConnection
from factflow.server.archives import ArchiveJobs
from factflow.server.executions import ExecutionService
from factflow.server.supervisor import Supervisor
from factflow.storage.base import StageStorage


async def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


def get_pool(request: Request) -> ConnectionPool[Any]:
    pool: ConnectionPool[Any] = request.app.state.pool
    return pool


def get_db(request: Request) -> Iterator[DbConnection]:
    """A pooled autocommit connection for the request; repositories open transactions."""
    pool: ConnectionPool[Any] = request.app.state.pool
    with pool.connection() as conn:
        yield conn


async def get_supervisor(request: Request) -> Supervisor:
    supervisor: Supervisor = request.app.state.supervisor
    return supervisor


async def get_executions(request: Request) -> ExecutionService:
    service: ExecutionService = request.app.state.executions
    return service


async def get_registry(request: Request) -> AdapterRegistry:
    registry: AdapterRegistry = request.app.state.registry
    return registry


async def get_storage(request: Request) -> StageStorage:
    storage: StageStorage = request.app.state.storage
    return storage


async def get_archives(request: Request) -> ArchiveJobs:
    jobs: ArchiveJobs = request.app.state.archives
    return jobs


# Postgres takes OFFSET as a bigint; a larger value would be a 500 from the database
MAX_OFFSET = 2**62
MAX_INT4 = 2**31 - 1  # an `integer` column (config versions)
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip")]

SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
# scope="function": the connection goes back to the pool when the handler returns, before
# the response is sent; held until after it (the default), the audit row written before
# the response waited for a connection that 10 concurrent POSTs held: a pool deadlock
DbDep = Annotated[DbConnection, Depends(get_db, scope="function")]
SupervisorDep = Annotated[Supervisor, Depends(get_supervisor)]
ExecutionsDep = Annotated[ExecutionService, Depends(get_executions)]
RegistryDep = Annotated[AdapterRegistry, Depends(get_registry)]
StorageDep = Annotated[StageStorage, Depends(get_storage)]
ArchivesDep = Annotated[ArchiveJobs, Depends(get_archives)]
