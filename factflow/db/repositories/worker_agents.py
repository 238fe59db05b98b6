"""Worker agents, the launches they run and each launched process (migration 0016).

The supervisor places a launch (`place_launch`): one row per Bytewax process, each on a
live agent with a free port; agents claim their rows, report the pid and, once the
process exited, its exit code; a stop request (`term` or `kill`) travels the other way.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from factflow.db.connection import DbConnection
from factflow.types import JsonDict

ProcessState = Literal["assigned", "running", "exited"]
StopKind = Literal["term", "kill"]
# pg_advisory_xact_lock key: one placement at a time, so two never take the same port
_PLACE_LOCK = 0x46_46_50_4C  # "FFPL"


@dataclass(frozen=True, slots=True)
class Agent:
    id: str
    host: str
    address: str
    first_port: int
    capacity: int
    used_ports: list[int]

    @property
    def free_ports(self) -> list[int]:
        taken = set(self.used_ports)
        ports = range(self.first_port, self.first_port + self.capacity)
        return [port for port in ports if port not in taken]


@dataclass(frozen=True, slots=True)
class WorkerProcess:
    launch_id: uuid.UUID
    process: int
    execution_id: uuid.UUID
    agent_id: str
    address: str
    state: ProcessState
    pid: int | None
    exit_code: int | None
    stop: StopKind | None
    log_tail: str | None
    agent_age_seconds: float | None
    """Seconds since the agent's heartbeat (None: the agent is gone from the table)."""


_PROCESS_COLUMNS = (
    "p.launch_id, p.process, p.execution_id, p.agent_id, p.address, p.state, p.pid,"
    " p.exit_code, p.stop, p.log_tail,"
    " extract(epoch FROM clock_timestamp() - a.heartbeat_at)::float8 AS agent_age_seconds"
)
_PROCESS_FROM = "worker_processes p LEFT JOIN worker_agents a ON a.id = p.agent_id"


def register_agent(
    conn: DbConnection, agent_id: str, host: str, address: str, first_port: int, capacity: int
) -> None:
    conn.execute(
        "INSERT INTO worker_agents (id, host, address, first_port, capacity)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host,"
        " address = EXCLUDED.address, first_port = EXCLUDED.first_port,"
        " capacity = EXCLUDED.capacity, started_at = now(), heartbeat_at = clock_timestamp()",
        (agent_id, host, address, first_port, capacity),
    )


def beat_agent(conn: DbConnection, agent_id: str) -> None:
    conn.execute(
        "UPDATE worker_agents SET heartbeat_at = clock_timestamp() WHERE id = %s", (agent_id,)
    )


def remove_agent(conn: DbConnection, agent_id: str) -> None:
    conn.execute("DELETE FROM worker_agents WHERE id = %s", (agent_id,))


def live_agents(conn: DbConnection, stale_after_seconds: float) -> list[Agent]:
    """Agents that beat within `stale_after_seconds`, with the ports their unfinished
    processes hold."""
    with conn.cursor(row_factory=class_row(Agent)) as cur:
        cur.execute(
            "SELECT a.id, a.host, a.address, a.first_port, a.capacity,"
            " coalesce(array_agg(split_part(p.address, ':', -1)::int)"
            "  FILTER (WHERE p.state <> 'exited'), '{}') AS used_ports"
            " FROM worker_agents a LEFT JOIN worker_processes p ON p.agent_id = a.id"
            " WHERE a.heartbeat_at > clock_timestamp() - make_interval(secs => %s)"
            " GROUP BY a.id ORDER BY a.id",
            (stale_after_seconds,),
        )
        return cur.fetchall()


def place_launch(
    conn: DbConnection,
    launch_id: uuid.UUID,
    execution_id: uuid.UUID,
    spec: JsonDict,
    processes: int,
    stale_after_seconds: float,
) -> list[str] | None:
    """Spread a launch's processes over the live agents (the freest first, round-robin)
    and record them; the processes' addresses, or None (nothing recorded) when the agents
    lack free ports for all of them. `spec` gets the addresses as `addresses`."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PLACE_LOCK,))
        free = {a.id: (a, a.free_ports) for a in live_agents(conn, stale_after_seconds)}
        chosen: list[tuple[str, str]] = []
        for _ in range(processes):
            candidates = [(len(ports), agent_id) for agent_id, (_a, ports) in free.items() if ports]
            if not candidates:
                return None
            # the agent with the most free ports; ties by the fewest of this launch on it
            placed = [agent_id for agent_id, _ in chosen]
            _, agent_id = max(candidates, key=lambda c: (c[0], -placed.count(c[1]), c[1]))
            agent, ports = free[agent_id]
            chosen.append((agent_id, f"{agent.address}:{ports.pop(0)}"))
        addresses = [address for _, address in chosen]
        conn.execute(
            "INSERT INTO worker_launches (id, execution_id, spec) VALUES (%s, %s, %s)",
            (launch_id, execution_id, Jsonb({**spec, "addresses": addresses})),
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO worker_processes (launch_id, process, execution_id, agent_id,"
                " address) VALUES (%s, %s, %s, %s, %s)",
                [
                    (launch_id, index, execution_id, agent_id, address)
                    for index, (agent_id, address) in enumerate(chosen)
                ],
            )
    return addresses


def launch_spec(conn: DbConnection, launch_id: uuid.UUID) -> JsonDict:
    row = conn.execute("SELECT spec FROM worker_launches WHERE id = %s", (launch_id,)).fetchone()
    if row is None:
        msg = f"launch {launch_id} does not exist"
        raise LookupError(msg)
    spec: JsonDict = row[0]
    return spec


def assigned_to(conn: DbConnection, agent_id: str) -> list[WorkerProcess]:
    """The agent's processes still to start (a stop requested before the start: none)."""
    return _processes(conn, "p.agent_id = %s AND p.state = 'assigned'", (agent_id,))


def running_on(conn: DbConnection, agent_id: str) -> list[WorkerProcess]:
    return _processes(conn, "p.agent_id = %s AND p.state = 'running'", (agent_id,))


def launch_processes(conn: DbConnection, launch_id: uuid.UUID) -> list[WorkerProcess]:
    return _processes(conn, "p.launch_id = %s", (launch_id,))


def _processes(conn: DbConnection, where: str, params: tuple[object, ...]) -> list[WorkerProcess]:
    with conn.cursor(row_factory=class_row(WorkerProcess)) as cur:
        cur.execute(
            f"SELECT {_PROCESS_COLUMNS} FROM {_PROCESS_FROM} WHERE {where}"
            " ORDER BY p.launch_id, p.process",
            params,
        )
        return cur.fetchall()


def set_running(conn: DbConnection, launch_id: uuid.UUID, process: int, pid: int) -> bool:
    """False when the process was stopped meanwhile (before it started)."""
    cur = conn.execute(
        "UPDATE worker_processes SET state = 'running', pid = %s, updated_at = clock_timestamp()"
        " WHERE launch_id = %s AND process = %s AND state = 'assigned'",
        (pid, launch_id, process),
    )
    return cur.rowcount == 1


def set_exited(
    conn: DbConnection,
    launch_id: uuid.UUID,
    process: int,
    exit_code: int,
    log_tail: str | None = None,
) -> None:
    conn.execute(
        "UPDATE worker_processes SET state = 'exited', exit_code = %s, log_tail = %s,"
        " updated_at = clock_timestamp() WHERE launch_id = %s AND process = %s",
        (exit_code, log_tail, launch_id, process),
    )


def request_stop(
    conn: DbConnection, launch_id: uuid.UUID, process: int | None, stop: StopKind
) -> None:
    """Ask the agent to stop a process (all of the launch's: `process` None); a process
    not started yet is marked exited at once (-15, as a SIGTERM would)."""
    which = "launch_id = %(l)s AND (%(p)s::int IS NULL OR process = %(p)s)"
    with conn.transaction():
        conn.execute(
            "UPDATE worker_processes SET state = 'exited', exit_code = -15, stop = %(s)s,"
            f" updated_at = clock_timestamp() WHERE {which} AND state = 'assigned'",
            {"l": launch_id, "p": process, "s": stop},
        )
        conn.execute(
            "UPDATE worker_processes SET stop = %(s)s, updated_at = clock_timestamp()"
            f" WHERE {which} AND state = 'running' AND stop IS DISTINCT FROM 'kill'",
            {"l": launch_id, "p": process, "s": stop},
        )


def stop_execution(conn: DbConnection, execution_id: uuid.UUID, stop: StopKind) -> None:
    """A stop request for every unfinished process of the execution, whichever launch
    (an abandoned execution's orphans, on any host)."""
    rows = conn.execute(
        "SELECT DISTINCT launch_id FROM worker_processes"
        " WHERE execution_id = %s AND state <> 'exited'",
        (execution_id,),
    ).fetchall()
    for (launch_id,) in rows:
        request_stop(conn, launch_id, None, stop)


def unfinished(conn: DbConnection, execution_id: uuid.UUID, stale_after_seconds: float) -> int:
    """The execution's processes not exited yet on agents that still beat."""
    row = conn.execute(
        f"SELECT count(*) FROM {_PROCESS_FROM} WHERE p.execution_id = %s"
        " AND p.state <> 'exited'"
        " AND a.heartbeat_at > clock_timestamp() - make_interval(secs => %s)",
        (execution_id, stale_after_seconds),
    ).fetchone()
    return int(row[0]) if row else 0
