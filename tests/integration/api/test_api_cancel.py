"""Cancel escalation through the API, with a real worker process and Postgres: a worker
that ignores SIGTERM is given the whole grace period, then killed with SIGKILL, and the
execution still ends `cancelled`.

The worker's adapter (`tests.integration.flow_adapters:IgnoresSigterm`) sets SIGTERM to
SIG_IGN for its whole process before it says it is ready, so neither Python's nor the
worker's own handler (the lineage flush on SIGTERM) can end it early.
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.helpers import wait_until
from tests.integration.api.conftest import REPO_ROOT

if TYPE_CHECKING:
    from starlette.testclient import TestClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Wait = Callable[..., dict[str, Any]]
GRACE_SECONDS = 2.0
# after the grace period: the supervisor's next ticks (0.2 s) and the row's update
SLACK_SECONDS = 8.0

PIPELINE = """\
version: "1.0"
name: stubborn
queue: {provider: postgres}
routes:
  r:
    # a global source: the run goes on until it is cancelled
    inbound: {queue: stubborn.in, scope: global}
    adapters:
      - type: "tests.integration.flow_adapters:IgnoresSigterm"
        config: {ready: "READY"}
    outbound: stubborn.out
init_message:
  route: r
  payload: {n: 1}
"""


@pytest.mark.timeout(120)
def test_a_worker_that_ignores_sigterm_is_killed_after_the_grace_period(
    make_app: Callable[..., TestClient],
    wait_status: Wait,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = make_app(worker_env={"PYTHONPATH": str(REPO_ROOT)}, cancel_grace_seconds=GRACE_SECONDS)
    ready = tmp_path / "ignoring-sigterm"
    started = api.post(
        "/api/v1/executions", json={"pipeline_yaml": PIPELINE.replace("READY", str(ready))}
    )
    assert started.status_code == 201, started.text
    execution_id = started.json()["execution_id"]
    [pid] = [int(w["pid"]) for w in started.json()["workers"]]
    # readiness: the init message went through the adapter, so SIGTERM is ignored now
    wait_until(ready.exists, 60, "the worker to ignore SIGTERM")

    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="factflow.dataflows.launch"):
        cancel = api.post(f"/api/v1/executions/{execution_id}/cancel")
        assert cancel.status_code == 200, cancel.text
        assert cancel.json()["status"] == "cancelling"
        done = wait_status(
            api, execution_id, ("cancelled", "completed", "failed"), GRACE_SECONDS + 30
        )
        took = time.monotonic() - began

    assert done["status"] == "cancelled", done["error"]
    # killed by SIGKILL, not ended by SIGTERM (which it ignored)
    assert done["stats"]["exit_codes"] == [-signal.SIGKILL]
    assert [r.getMessage() for r in caplog.records if "SIGKILL" in r.getMessage()] == [
        f"worker process {pid} still running {GRACE_SECONDS:.1f} s after SIGTERM: sending SIGKILL"
    ]
    # the whole grace period, then not much more
    assert GRACE_SECONDS <= took < GRACE_SECONDS + SLACK_SECONDS, took
