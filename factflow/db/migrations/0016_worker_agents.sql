-- Workers on several hosts (docs/operations.md, "Worker agents").
--
-- worker_agents: one row per `factflow worker serve`, beating its heartbeat; the
-- supervisor spreads an execution's Bytewax processes over the live ones.
-- worker_launches: what one start of an execution's processes runs (plan, inputs,
-- addresses), read by the agents that run them.
-- worker_processes: one row per process of a launch: which agent runs it, its pid and
-- exit code once it exited, and a stop request from the supervisor.
-- worker_counters: each process's drain and progress counters (and its Prometheus
-- text), so that every process, on any host, and every server replica read them.

CREATE TABLE worker_agents (
    id           text        PRIMARY KEY,
    host         text        NOT NULL,
    address      text        NOT NULL,
    first_port   integer     NOT NULL CHECK (first_port > 0),
    capacity     integer     NOT NULL CHECK (capacity > 0),
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE worker_launches (
    id           uuid        PRIMARY KEY,
    execution_id uuid        NOT NULL,
    spec         jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX worker_launches_execution ON worker_launches (execution_id);

CREATE TABLE worker_processes (
    launch_id    uuid        NOT NULL REFERENCES worker_launches (id) ON DELETE CASCADE,
    process      integer     NOT NULL CHECK (process >= 0),
    execution_id uuid        NOT NULL,
    agent_id     text        NOT NULL,
    address      text        NOT NULL,
    state        text        NOT NULL DEFAULT 'assigned'
                 CHECK (state IN ('assigned', 'running', 'exited')),
    pid          integer,
    exit_code    integer,
    stop         text        CHECK (stop IN ('term', 'kill')),
    log_tail     text,
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (launch_id, process)
);
CREATE INDEX worker_processes_agent ON worker_processes (agent_id) WHERE state <> 'exited';
CREATE INDEX worker_processes_execution ON worker_processes (execution_id);

CREATE TABLE worker_counters (
    execution_id uuid        NOT NULL,
    launch_id    text        NOT NULL,
    process      integer     NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('drain', 'progress')),
    counts       jsonb       NOT NULL,
    metrics      text,
    at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (execution_id, launch_id, kind, process)
);
