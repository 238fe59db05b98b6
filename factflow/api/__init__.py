"""The FastAPI sidecar: `create_app(ApiSettings(...))`, one router per domain under /api/v1.

- `settings`: `ApiSettings` (pydantic-settings, `FACTFLOW_*`), passed in explicitly.
- `app`: the factory and its lifespan (pool, migrations, supervisor, shipped pipelines).
- `deps`: the `Annotated` dependencies handlers take (`DbDep`, `SettingsDep`, ...).
- `errors`: the seed system's error body and the handlers that produce it.
- `sse`: execution event streams fed by LISTEN/NOTIFY.
- `routers/`: system, configs, executions, pipelines, lineage, storage, content,
  adapters, templates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from factflow.api.app import create_app
    from factflow.api.settings import ApiSettings

__all__ = ["ApiSettings", "create_app"]


def __getattr__(name: str) -> Any:
    # lazy: the supervisor imports `factflow.api.settings` without building the app
    if name == "create_app":
        from factflow.api.app import create_app

        return create_app
    if name == "ApiSettings":
        from factflow.api.settings import ApiSettings

        return ApiSettings
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
