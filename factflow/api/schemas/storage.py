"""Body of storage retention (`POST /storage/prune`)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from pydantic import Field

from factflow.api.bodies import RequestBody
from factflow.server.retention import PruneRequest


class PruneBody(RequestBody):
    """Prune the stored stages of finished executions: those that finished more than
    `older_than_seconds` ago, or the ones named (both: the named ones that old)."""

    older_than_seconds: float | None = Field(
        default=None, gt=0, le=100 * 365 * 86400, description="finished at least this long ago"
    )
    execution_ids: list[uuid.UUID] = Field(default_factory=list, max_length=10_000)
    dry_run: bool = Field(default=False, description="list what would go, delete nothing")

    def to_request(self) -> PruneRequest:
        return PruneRequest(
            older_than=None
            if self.older_than_seconds is None
            else timedelta(seconds=self.older_than_seconds),
            execution_ids=tuple(dict.fromkeys(self.execution_ids)),
            dry_run=self.dry_run,
        )
