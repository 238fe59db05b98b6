"""Executions whose workers are forked by the server's forkserver (`worker_forkserver`, on
by default), with real worker processes and Postgres: one completes, a cancel ends one
(SIGTERM to the forked child), a two-process cluster (-i/-a) completes, and with the
zygote killed the next launch starts plain processes (Popen) and a later one a new zygote.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from factflow.dataflows.forkserver import ForkServer
from tests.e2e.helpers import wait_until

if TYPE_CHECKING:
    from starlette.testclient import TestClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]

Wait = Callable[..., dict[str, Any]]
Start = Callable[..., dict[str, Any]]

ENDLESS = """\
version: "1.0"
name: endless
queue: {provider: postgres}
routes:
  r:
    # a global source: the run goes on until it is cancelled
    inbound: {queue: endless.in, scope: global}
    adapters:
      - type: passthrough
    outbound: endless.out
init_message:
  route: r
  payload: {n: 1}
"""


def forkserver_of(api: TestClient) -> ForkServer:
    server = api.app.state.supervisor.forkserver  # type: ignore[attr-defined]
    assert isinstance(server, ForkServer)
    return server


def parent_of(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[1])


@pytest.mark.timeout(180)
def test_an_execution_forked_by_the_forkserver_completes(
    make_app: Callable[..., TestClient], wait_status: Wait, start_text: Start
) -> None:
    api = make_app()
    forkserver = forkserver_of(api)
    assert forkserver.pid is None  # started by the first launch, which waits for it
    execution_id = start_text(api)["execution_id"]
    done = wait_status(api, execution_id, ("completed", "failed", "cancelled"), 90)
    assert done["status"] == "completed", done["error"]
    assert done["stats"]["exit_codes"] == [0]
    assert (forkserver.starts, forkserver.forked) == (1, 1)
    assert done["stats"]["counts"], done["stats"]  # the forked worker's counters came


@pytest.mark.timeout(180)
def test_a_cancel_ends_a_forked_worker(
    make_app: Callable[..., TestClient], wait_status: Wait
) -> None:
    api = make_app(cancel_grace_seconds=10)
    forkserver = forkserver_of(api)
    started = api.post("/api/v1/executions", json={"pipeline_yaml": ENDLESS})
    assert started.status_code == 201, started.text
    execution_id = started.json()["execution_id"]
    [pid] = [int(w["pid"]) for w in started.json()["workers"]]
    # a child of the zygote, recognisable as a worker by its command line
    assert parent_of(pid) == forkserver.pid
    assert b"factflow.flow" in Path(f"/proc/{pid}/cmdline").read_bytes()
    # below the server's priority (FACTFLOW_WORKER_NICE, default 10)
    assert os.getpriority(os.PRIO_PROCESS, pid) == min(os.nice(0) + 10, 19)
    wait_until(
        lambda: bool(wait_status(api, execution_id, ("running",))["stats"].get("counts")),
        60,
        "the worker's first counters",
    )
    began = time.monotonic()
    assert api.post(f"/api/v1/executions/{execution_id}/cancel").status_code == 200
    done = wait_status(api, execution_id, ("cancelled", "completed", "failed"), 60)
    assert done["status"] == "cancelled", done["error"]
    # ended by the SIGTERM (its handler drains and exits), well before the SIGKILL
    assert done["stats"]["exit_codes"] != [-signal.SIGKILL]
    assert time.monotonic() - began < 10
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


@pytest.mark.timeout(240)
def test_a_two_process_execution_is_forked_and_completes(
    make_app: Callable[..., TestClient], wait_status: Wait, start_text: Start
) -> None:
    api = make_app()
    forkserver = forkserver_of(api)
    before = forkserver.forked
    body = start_text(api, processes=2)
    done = wait_status(api, body["execution_id"], ("completed", "failed", "cancelled"), 120)
    assert done["status"] == "completed", done["error"]
    assert done["stats"]["exit_codes"] == [0, 0]
    assert forkserver.forked == before + 2
    assert len({w["pid"] for w in body["workers"]}) == 2


@pytest.mark.timeout(240)
def test_with_the_zygote_killed_launches_fall_back_to_popen_then_use_a_new_one(
    make_app: Callable[..., TestClient], wait_status: Wait, start_text: Start
) -> None:
    api = make_app()
    forkserver = forkserver_of(api)
    forkserver.start()
    assert forkserver.wait_ready(60)
    zygote = forkserver.pid
    assert zygote is not None
    forkserver.restart_interval = 3600.0  # not replaced yet: the launch must use Popen
    os.kill(zygote, signal.SIGKILL)
    wait_until(lambda: forkserver.pid is None, 10, "the supervisor to see the zygote gone")
    before = forkserver.forked
    body = start_text(api)
    [pid] = [int(w["pid"]) for w in body["workers"]]
    done = wait_status(api, body["execution_id"], ("completed", "failed", "cancelled"), 90)
    assert done["status"] == "completed", done["error"]
    assert forkserver.forked == before  # a plain process
    assert pid != zygote

    forkserver.restart_interval = 0.0
    body = start_text(api)  # replaces the zygote, waits for its imports, forks
    done = wait_status(api, body["execution_id"], ("completed", "failed", "cancelled"), 90)
    assert done["status"] == "completed", done["error"]
    assert forkserver.forked == before + 1
    assert forkserver.starts == 2
    assert forkserver.pid not in (None, zygote)


@pytest.mark.timeout(120)
def test_the_setting_turns_it_off(
    make_app: Callable[..., TestClient], wait_status: Wait, start_text: Start
) -> None:
    api = make_app(worker_forkserver=False)
    assert api.app.state.supervisor.forkserver is None  # type: ignore[attr-defined]
    body = start_text(api)
    done = wait_status(api, body["execution_id"], ("completed", "failed", "cancelled"), 90)
    assert done["status"] == "completed", done["error"]
