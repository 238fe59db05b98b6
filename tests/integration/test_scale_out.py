"""Two server replicas on one Postgres, an execution of 3 Bytewax processes, and failures.

Two `factflow serve` processes, each in its own folder (run folders, recovery
directories: as if on two hosts), share only the database (which holds the recovery
archives) and the broker; stage storage is off. A round-robin client sends every request
to the next replica that is up, as a load balancer would.

1. An execution started through one replica is seen and cancelled through the other
   (no worker agents: the replica runs the processes on its own host; the queues in
   Postgres, the `postgres` provider).
2. Three hosts: three worker agents (`factflow worker serve`), each in a folder of its
   own and sharing nothing but Postgres and RabbitMQ with the others and the replicas,
   run one process each of a 3-process execution (Bytewax's `-i/-a` across the agents;
   the work queue a RabbitMQ hop so the processes compete for it, the output a global
   RabbitMQ queue). One process is SIGKILLed mid-run, and the replica supervising it
   restarts all three from the recovery archive; then that replica is SIGKILLed, and the
   other finds the execution abandoned, has the agents stop the orphaned processes and
   resumes it. The execution completes, every input reaches the output, the replicas
   report the same state while both are up, and a replica started afresh once it
   completed reports the same final state as the survivor.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from factflow.connectors.codec import decode_body
from factflow.dataflows.launch import free_ports
from factflow.db import connect
from factflow.db.repositories import executions as repo
from factflow.messages import Message
from tests.e2e.helpers import T, wait_until, worker_env
from tests.integration.brokers.clients import Broker, Collector, Record, tag
from tests.integration.brokers.conftest import BROKERS, require
from tests.integration.flows import queue_messages
from tests.integration.servers import Replica

# serial: its agents' Bytewax cluster ports are picked free before the processes bind
# them; another pytest worker's run taking one meanwhile fails the launch ("Address
# already in use"), as a whole-suite run on 4 workers showed
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.serial]

ITEMS = 360
SLEEP_MS = 40


POSTGRES_QUEUES = "queue: {provider: postgres, options: {visibility_timeout: 3}}"


def _pipeline(name: str, items: int, queue_block: str = POSTGRES_QUEUES) -> str:
    payload = ", ".join(f"{{n: {n}}}" for n in range(items))
    return f"""version: "1.0"
name: {name}
{queue_block}
routes:
  fan:
    inbound: {{queue: jobs.start}}
    adapters:
      - type: split
        config: {{field: items}}
    outbound: jobs.work
  work:
    inbound: {{queue: jobs.work, external: true, prefetch: 5}}
    adapters:
      - type: "{T}:Slow"
        config: {{sleep_ms: {SLEEP_MS}}}
    outbound: {name}.done
init_message:
  route: fan
  payload: {{items: [{payload}]}}
"""


class RoundRobin:
    """Each request to the next replica that is up (a load balancer's health check)."""

    def __init__(self, replicas: list[Replica]) -> None:
        self.replicas = replicas
        self._next = itertools.cycle(range(len(replicas)))

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for _ in range(len(self.replicas)):
            replica = self.replicas[next(self._next)]
            if replica.up:
                return httpx.request(method, f"{replica.url}/api/v1{path}", timeout=30, **kwargs)
        pytest.fail("no replica is up")

    def each(self, path: str) -> dict[str, Any]:
        """The same GET from every replica that is up, by replica name."""
        return {
            r.name: httpx.get(f"{r.url}/api/v1{path}", timeout=30).json()
            for r in self.replicas
            if r.up
        }


@pytest.fixture
def replicas(tmp_path: Path, db_url: str) -> Iterator[list[Replica]]:
    ports = free_ports(2)
    started = [Replica(n, tmp_path / n, p, db_url) for n, p in zip(("a", "b"), ports, strict=True)]
    try:
        for replica in started:
            replica.wait_healthy()
        yield started  # a test may append replicas it starts later: they are stopped too
    finally:
        for replica in started:
            replica.stop()
        _kill_workers(db_url)


def _kill_workers(db_url: str) -> None:
    """Worker processes a killed replica left behind (the test failed before the other
    replica stopped them)."""
    with connect(db_url) as conn:
        executions = repo.list_executions(conn, limit=100)
    for execution in executions:
        for worker in execution.workers:
            pid = int(worker.get("pid", 0))
            try:
                if b"factflow.flow" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _start(client: RoundRobin, name: str, items: int, queue_block: str = POSTGRES_QUEUES) -> str:
    response = client.request(
        "POST",
        "/executions",
        json={"pipeline_yaml": _pipeline(name, items, queue_block), "processes": 3},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["execution_id"])


def _execution(db_url: str, execution_id: str) -> repo.Execution:
    with connect(db_url) as conn:
        return repo.get_execution(conn, uuid.UUID(execution_id))


def _done(db_url: str, name: str) -> list[int]:
    return [int(m.payload["n"]) for m in queue_messages(db_url, f"{name}.done")]


def _same_state(client: RoundRobin, execution_id: str) -> dict[str, Any]:
    """The execution as every replica reports it, checked to be the same."""
    views = client.each(f"/executions/{execution_id}")
    keys = ("status", "workers", "started_at", "config_snapshot")
    first = next(iter(views.values()))
    for name, view in views.items():
        assert {k: view[k] for k in keys} == {k: first[k] for k in keys}, f"replica {name}"
    return first


def test_started_on_one_replica_cancelled_through_the_other(
    replicas: list[Replica], db_url: str
) -> None:
    a, b = replicas
    client = RoundRobin(replicas)
    execution_id = _start(client, "cancelme", 2000)
    running = _execution(db_url, execution_id)
    owner = running.workers[0]["instance"]
    other = b if owner == "a" else a
    wait_until(lambda: len(_done(db_url, "cancelme")) > 0, 60, "the first outputs")
    assert _same_state(client, execution_id)["status"] == "running"

    response = httpx.post(f"{other.url}/api/v1/executions/{execution_id}/cancel", timeout=30)
    assert response.status_code in (200, 202), response.text
    wait_until(
        lambda: _execution(db_url, execution_id).status == "cancelled", 60, "the owner to cancel"
    )
    views = client.each(f"/executions/{execution_id}")
    assert {v["status"] for v in views.values()} == {"cancelled"}
    assert len(_done(db_url, "cancelme")) < 2000, "cancelled before it finished"


class WorkerAgent:
    """One `factflow worker serve` in its own folder: a host of its own."""

    def __init__(self, name: str, folder: Path, first_port: int, db_url: str) -> None:
        self.name, self.folder = name, folder
        folder.mkdir(parents=True)
        env = worker_env(FACTFLOW_DATABASE_URL=db_url, FACTFLOW_CANCEL_GRACE_SECONDS="5")
        with (folder / "agent.log").open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "factflow", "worker", "serve", "--id", name,
                 "--first-port", str(first_port), "--capacity", "2", "--dir", str(folder)],
                cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return (self.folder / "agent.log").read_text()[-4000:]


@pytest.fixture
def worker_agents(tmp_path: Path, db_url: str) -> Iterator[list[WorkerAgent]]:
    # ten ports apart: each agent's two ports are first_port and the next one
    base = free_ports(1)[0] % 20_000 + 30_000
    agents = [WorkerAgent(f"h{i}", tmp_path / f"h{i}", base + 10 * i, db_url) for i in range(3)]
    try:
        wait_until(lambda: _live_agents(db_url) == 3, 90, "three worker agents to register")
        yield agents
    finally:
        for agent in agents:
            agent.stop()


def _live_agents(db_url: str) -> int:
    with connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM worker_agents").fetchone()
    return int(row[0]) if row else 0


def _numbers(records: list[Record], queue: str) -> list[int]:
    numbers = []
    for record in records:
        message = decode_body(record.body, record.headers, raw=False, queue=queue, fallback_id="")
        assert isinstance(message, Message), message
        numbers.append(int(message.payload["n"]))
    return numbers


FINAL_KEYS = (
    "status",
    "workers",
    "started_at",
    "completed_at",
    "error",
    "stats",
    "config_snapshot",
)


@dataclass
class Output:
    """A global RabbitMQ queue for the execution's outputs and what arrived in it."""

    broker: Broker
    name: str
    queue: str
    collector: Collector


@pytest.fixture
def output() -> Iterator[Output]:
    broker = require(BROKERS["rabbitmq"])
    name = f"scale{tag()}"
    queue = f"{name}.done"
    broker.prepare([queue])
    collector = broker.collect(queue)
    try:
        yield Output(broker, name, queue, collector)
    finally:
        collector.stop()


def test_three_hosts_a_killed_process_and_a_killed_replica_lose_nothing(
    worker_agents: list[WorkerAgent],
    replicas: list[Replica],
    output: Output,
    db_url: str,
    tmp_path: Path,
) -> None:
    client = RoundRobin(replicas)
    execution_id = _start(client, output.name, ITEMS, output.broker.queue_block())

    def outputs() -> int:
        return len(output.collector.records)

    def placed() -> repo.Execution:
        execution = _execution(db_url, execution_id)
        # interrupted for a moment while the survivor takes it over
        assert execution.status in ("running", "interrupted", "completed"), execution.error
        return execution

    wait_until(lambda: all(w["pid"] for w in placed().workers), 60, "the agents to start them")
    first = placed()
    # one process on each host, each agent reporting the pid of its own
    assert [w["process"] for w in first.workers] == [0, 1, 2]
    assert sorted(w["agent"] for w in first.workers) == ["h0", "h1", "h2"]
    owner = next(r for r in replicas if r.name == first.workers[0]["instance"])
    survivor = next(r for r in replicas if r is not owner)

    # 1. SIGKILL one process mid-run: its replica restarts the three from recovery
    wait_until(lambda: outputs() >= ITEMS // 6, 90, "a sixth of the work")
    assert _same_state(client, execution_id)["status"] == "running"
    os.kill(int(first.workers[1]["pid"]), signal.SIGKILL)
    wait_until(lambda: placed().stats.get("restarts") == 1, 60, "the restart")
    wait_until(
        lambda: (
            {w["pid"] for w in placed().workers}.isdisjoint({w["pid"] for w in first.workers})
            and all(w["pid"] for w in placed().workers)
        ),
        60,
        "the restarted processes",
    )
    restarted = placed()
    assert sorted(w["agent"] for w in restarted.workers) == ["h0", "h1", "h2"]
    assert _same_state(client, execution_id)["workers"] == restarted.workers

    # 2. SIGKILL the replica supervising it: the other takes it over, on the agents
    before = outputs()
    wait_until(lambda: outputs() > before, 60, "progress after the restart")
    owner.kill()
    wait_until(
        lambda: any(w["instance"] == survivor.name for w in placed().workers),
        60,
        f"replica {survivor.name} to resume the execution: {survivor.log()}",
    )
    wait_until(
        lambda: _execution(db_url, execution_id).status in ("completed", "failed"),
        120,
        "the execution to finish",
    )
    finished = client.each(f"/executions/{execution_id}")
    assert list(finished) == [survivor.name]
    assert finished[survivor.name]["status"] == "completed", finished
    assert sorted(w["agent"] for w in finished[survivor.name]["workers"]) == ["h0", "h1", "h2"]

    # the replica that was killed, started afresh (a new pod): it reports what the
    # survivor does, from the database alone
    again = Replica("a-again", tmp_path / "a-again", free_ports(1)[0], db_url)
    replicas.append(again)
    again.wait_healthy()
    views = client.each(f"/executions/{execution_id}")
    assert sorted(views) == sorted([survivor.name, again.name])
    assert {k: views[again.name][k] for k in FINAL_KEYS} == {
        k: views[survivor.name][k] for k in FINAL_KEYS
    }
    routes = client.each(f"/executions/{execution_id}/routes")
    assert sorted(r["route_id"] for r in routes[survivor.name]) == ["fan", "work"]
    assert routes[again.name] == routes[survivor.name]

    seen = Counter(_numbers(output.collector.settle(2.0), output.queue))
    # at-least-once: what the failures interrupted is done again (how often depends on
    # how far the epochs got before each kill, which the load on the machine decides)
    assert set(seen) == set(range(ITEMS)), f"lost: {sorted(set(range(ITEMS)) - set(seen))}"
    # nothing of an execution is in a replica's folder: each agent ran its process in
    # its own, with a recovery directory of its own
    for agent in worker_agents:
        runs = list((agent.folder / "runs" / execution_id).glob("process-*/recovery"))
        assert runs, agent.log()
    for replica in replicas:
        assert not list(replica.folder.rglob("part-*.sqlite3")), replica.name
