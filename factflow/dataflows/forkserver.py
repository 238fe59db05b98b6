"""A warm launcher for worker processes: a forkserver with Bytewax and factflow imported.

`python -m bytewax.run factflow.flow` pays an interpreter start and about a second of
CPU importing Bytewax and factflow in every worker process; on a small machine that, not
the server, caps how fast executions start. A `ForkServer` (one per server or worker
agent) runs one process, the zygote:

    python -m factflow.dataflows.forkserver --fd N --serves factflow.flow

which imports Bytewax and factflow's worker modules once (`PRELOAD`: no threads, event
loop, sockets or database connections exist before a fork; the heavy optional libraries,
torch and sentence-transformers, are imported by the adapters that use them, in the
child), then forks one child per worker process. Each request carries what
`subprocess.Popen` would have been given: the command (`python -m MODULE ...` or
`python -c CODE ...`), the environment, the working directory, and the log file (its
descriptor, passed over the socket). The child closes the zygote's socket and pipes,
reseeds `random`, points stdout and stderr at the log, restores the default signal
handlers and runs the module as `python -m` would (`runpy`, `__main__`), then exits as
the interpreter would (non-daemon threads joined, atexit handlers run, streams flushed, the
same exit status) but without freeing every object (`_exit`). The children keep the zygote's
command line (with `factflow.flow` in it, which is how orphan checks recognise workers).

The zygote is the children's parent: it reaps them and reports each exit status
(negative for a signal, as `Popen.returncode`) over the socket; a `ForkedProcess` is the
server's handle, with `Popen`'s `pid`, `poll`, `wait`, `send_signal`, `terminate`,
`kill` and `returncode`, signalling the child directly. When the zygote dies its children
live on (reparented to init, like a dead server's workers); their handles then see only
whether the pid is alive, and one that ends counts as killed (-9), which the supervisor
answers by restarting the run from recovery. The first `spawn` starts the zygote and waits
for its imports (`READY_WAIT`); `spawn` returns None when the zygote is dead or refused
the request: the caller starts the process with `Popen` instead, and a dead zygote is
started again (at most once per `RESTART_INTERVAL`). When the server closes the socket
(it stopped, or died) the zygote exits; its children run on.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import json
import logging
import os
import random
import runpy
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

_log = logging.getLogger(__name__)

PRELOAD = (
    "bytewax.run",
    "factflow.flow",
    "factflow.adapters.builtin",
    "factflow.workflows",
    "factflow.connectors.file",
    "factflow.connectors.memory",
    "factflow.connectors.postgres",
    "factflow.dataflows.lineage",
    "factflow.dataflows.recovery",
    # `module:function`: called once after the imports, for what it caches: the adapter
    # classes' checked schemas (~0.4 s per worker otherwise), the installed
    # distributions' entry points
    "factflow.adapters.registry:default_registry",
    "factflow.plugins:remember_entry_points",
)
"""What the zygote imports (and calls) before it forks: what every worker needs, nothing
that starts threads or pulls in a large optional library (the broker clients, torch)."""
SPAWN_TIMEOUT = 10.0
"""Seconds a spawn waits for the zygote's answer; then the zygote is given up (killed)."""
READY_WAIT = 10.0
"""Seconds a spawn waits for a zygote that is still importing (at the server's start, or
after a restart): the process would pay the same imports itself."""
RESTART_INTERVAL = 10.0
"""A dead zygote is started again at most this often (one that dies while importing would
otherwise cost every launch a start)."""
_MAX_MESSAGE = 1 << 20


class ForkedProcess:
    """A worker process forked by the zygote; behaves like `subprocess.Popen` for the
    supervisor and the worker agent (see the module docstring)."""

    def __init__(self, pid: int, args: Sequence[str]) -> None:
        self.pid = pid
        self.args = list(args)
        self.returncode: int | None = None
        self._exited = threading.Event()
        self._orphaned = False

    def _set_exit(self, code: int) -> None:
        if self.returncode is None:
            self.returncode = code
        self._exited.set()

    def _orphan(self) -> None:
        """The zygote is gone: its exit status will never come."""
        self._orphaned = True
        self._exited.set()  # wakes a waiter, which now polls the pid

    def poll(self) -> int | None:
        if self.returncode is None and self._orphaned and not pid_running(self.pid):
            self._set_exit(-signal.SIGKILL)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            if self._orphaned:
                time.sleep(0.1 if remaining is None else min(0.1, remaining))
            else:
                self._exited.wait(remaining)
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def pid_running(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie (a zombie child counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    return True


@dataclass
class _Pending:
    done: threading.Event
    reply: dict[str, Any] | None = None
    child: ForkedProcess | None = None


class ForkServer:
    """The server's side of the zygote: starts it, asks it for processes, watches it.

    Cheap to make; the first `spawn` starts the zygote (or `start`, which does not wait for
    its imports) and waits for it to be ready; `close` lets it exit. Thread-safe."""

    def __init__(
        self, preload: Sequence[str] = PRELOAD, restart_interval: float = RESTART_INTERVAL
    ) -> None:
        self.preload = tuple(preload)
        self.restart_interval = restart_interval
        self.forked = 0
        """Processes started through the zygote."""
        self.starts = 0
        """Zygotes started (more than one: one died and was replaced)."""
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._ready = threading.Event()
        self._pending: dict[int, _Pending] = {}
        self._children: dict[int, ForkedProcess] = {}
        self._next_id = 0
        self._last_start = -restart_interval
        self._python_env: dict[str, str] = {}
        self._closed = False

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the zygote (no-op when one runs)."""
        with self._lock:
            if self._closed or (self._proc is not None and self._proc.poll() is None):
                return
            self._start_locked()

    def _start_locked(self) -> None:
        self._last_start = time.monotonic()
        self._python_env = _interpreter_env(os.environ)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            preload = ",".join(self.preload)
            command = [sys.executable, "-m", __name__, "--fd", str(theirs.fileno()),
                       "--preload", preload, "--serves", "factflow.flow"]  # fmt: skip
            proc = subprocess.Popen(
                command,
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
            )
        except OSError:
            ours.close()
            _log.exception("the worker forkserver did not start: workers start with Popen")
            return
        finally:
            theirs.close()
        self.starts += 1
        self._proc, self._sock = proc, ours
        self._ready = threading.Event()
        threading.Thread(
            target=self._read, args=(ours, proc, self._ready), name="factflow-forkserver",
            daemon=True,
        ).start()  # fmt: skip

    def wait_ready(self, timeout: float) -> bool:
        """Whether the zygote is ready (imports done) within `timeout` seconds."""
        return self._ready.wait(timeout)

    @property
    def pid(self) -> int | None:
        """The zygote's pid while it runs."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def close(self) -> None:
        """The zygote exits (its children run on); spawns return None from now on."""
        with self._lock:
            self._closed = True
            sock, proc = self._sock, self._proc
            self._sock = None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    # --- spawning ----------------------------------------------------------------------

    def spawn(
        self,
        command: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        cwd: str | None = None,
        nice: int = 0,
    ) -> ForkedProcess | None:
        """Fork `command` (`[python, -m, module, ...]` or `[python, -c, code, ...]`) with
        `env`, `cwd` (default: this process's), stdout and stderr appended to `log_path`
        and `nice` added to its niceness; None when the zygote cannot (the caller uses
        Popen)."""
        if len(command) < 3 or command[1] not in ("-m", "-c"):
            return None
        with self._lock:
            sock, ready = self._usable_locked()
        if sock is None and ready is not None and ready.wait(READY_WAIT):
            with self._lock:
                sock, _ = self._usable_locked()
        if sock is None:
            return None
        with self._lock:
            if _interpreter_env(env) != self._python_env:
                return None  # the interpreter's own options differ: a fresh one needs them
            request_id = self._next_id
            self._next_id += 1
            pending = _Pending(threading.Event())
            self._pending[request_id] = pending
        request = {"id": request_id, "argv": list(command), "env": dict(env), "nice": nice}
        body = json.dumps({**request, "cwd": cwd or str(Path.cwd())}).encode()
        try:
            with log_path.open("ab") as log, self._send_lock:
                socket.send_fds(sock, [body], [log.fileno()])
        except OSError as exc:
            # e.g. an environment too large for one message; a broken socket: the reader
            # thread sees the zygote gone
            _log.warning("worker forkserver: the request failed (%s): starting with Popen", exc)
            with self._lock:
                self._pending.pop(request_id, None)
            return None
        if not pending.done.wait(SPAWN_TIMEOUT):
            self._give_up(f"no answer in {SPAWN_TIMEOUT:.0f} s")
            return None
        if pending.child is None:
            error = (pending.reply or {}).get("error", "the forkserver stopped")
            _log.warning("the worker forkserver could not start a process: %s", error)
            return None
        self.forked += 1
        return pending.child

    def _usable_locked(self) -> tuple[socket.socket | None, threading.Event | None]:
        """The socket of a ready zygote, else the readiness to wait for of one starting
        (a dead one is replaced, see RESTART_INTERVAL), else neither."""
        if self._closed:
            return None, None
        if self._proc is None or self._proc.poll() is not None:
            if time.monotonic() - self._last_start < self.restart_interval:
                return None, None
            if self._proc is not None:
                _log.warning("the worker forkserver died: starting it again")
            self._start_locked()
            if self._proc is None or self._proc.poll() is not None:
                return None, None
        if not self._ready.is_set():
            return None, self._ready
        return self._sock, None

    def _give_up(self, why: str) -> None:
        """Kill a zygote that stopped answering; its replacement starts on a later spawn."""
        _log.warning("worker forkserver: %s; killing it, workers start with Popen", why)
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    # --- the reader thread -------------------------------------------------------------

    def _read(
        self, sock: socket.socket, proc: subprocess.Popen[bytes], ready: threading.Event
    ) -> None:
        try:
            while True:
                try:
                    data = sock.recv(_MAX_MESSAGE)
                except OSError:
                    break
                if not data:
                    break
                self._handle(json.loads(data), ready)
        finally:
            self._lost(sock, proc, ready)

    def _handle(self, message: dict[str, Any], ready: threading.Event) -> None:
        if "ready" in message:
            ready.set()
        elif "exited" in message:
            # always after the spawn's answer: the zygote answers before it reaps
            with self._lock:
                child = self._children.pop(int(message["exited"]), None)
            if child is not None:
                child._set_exit(int(message["code"]))
        elif "id" in message:
            with self._lock:
                pending = self._pending.pop(int(message["id"]), None)
                if "pid" in message:
                    child = ForkedProcess(int(message["pid"]), message.get("argv", ()))
                    self._children[child.pid] = child
                    if pending is not None:
                        pending.child = child
            if pending is not None:
                pending.reply = message
                pending.done.set()
        elif "error" in message:
            _log.warning("the worker forkserver stopped: %s", message["error"])

    def _lost(
        self, sock: socket.socket, proc: subprocess.Popen[bytes], ready: threading.Event
    ) -> None:
        """The zygote is gone (or closed): its children become orphans, waiting spawns fail."""
        ready.clear()
        with self._lock:
            if self._sock is sock:
                self._sock = None
            pending, self._pending = self._pending, {}
            children, self._children = self._children, {}
        for slot in pending.values():
            slot.done.set()
        for child in children.values():
            child._orphan()
        with contextlib.suppress(OSError):
            sock.close()
        if proc.poll() is None and not self._closed:
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def _interpreter_env(env: Mapping[str, str]) -> dict[str, str]:
    """The variables that set up an interpreter at its start (PYTHONHASHSEED, -X options,
    PYTHONWARNINGS, ...): a child shares the zygote's, so a launch asking for others starts
    a fresh interpreter. PYTHONPATH is left out: the child applies its own to `sys.path`."""
    return {k: v for k, v in env.items() if k.startswith("PYTHON") and k != "PYTHONPATH"}


# --- the zygote --------------------------------------------------------------------------


@dataclass
class _Job:
    argv: list[str]
    env: dict[str, str]
    cwd: str
    log_fd: int
    nice: int


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        sock.send(json.dumps(message).encode())


def _threads() -> int:
    try:
        return len(list(Path("/proc/self/task").iterdir()))
    except OSError:
        return threading.active_count()


def _serve(sock: socket.socket) -> _Job | None:
    """Fork a child per request until the socket closes (None); in a child, its job."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select(timeout=1.0):
            if key.fileobj == wake_r:
                with contextlib.suppress(OSError):
                    os.read(wake_r, 4096)
                continue
            try:
                data, fds, _flags, _addr = socket.recv_fds(sock, _MAX_MESSAGE, 4)
            except OSError:
                return None
            if not data:
                return None
            request = json.loads(data)
            try:
                pid = os.fork()
            except OSError as exc:
                for fd in fds:
                    os.close(fd)
                _send(sock, {"id": request["id"], "error": f"fork failed: {exc}"})
                continue
            if pid == 0:
                # the child: nothing of the zygote's but the standard streams stays open
                signal.set_wakeup_fd(-1)
                selector.close()
                os.close(wake_r)
                os.close(wake_w)
                sock.close()
                for fd in fds[1:]:
                    os.close(fd)
                return _Job(
                    request["argv"], request["env"], request["cwd"], fds[0], request["nice"]
                )
            for fd in fds:
                os.close(fd)
            _send(sock, {"id": request["id"], "pid": pid, "argv": request["argv"]})
        _reap(sock)


def _reap(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(sock, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _run_child(job: _Job) -> str | int | None:
    """Become `job`'s process, as a fresh `python -m` / `python -c` would be; its exit status."""
    if job.nice:
        # before any thread exists: threads take their niceness from the one that made them
        os.nice(job.nice)
    for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.dup2(job.log_fd, 1)
    os.dup2(job.log_fd, 2)
    os.close(job.log_fd)
    # new streams, as a fresh interpreter's on a file: stdout block-buffered, stderr by line
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(  # noqa: SIM115
        2, "w", buffering=1, closefd=False, errors="backslashreplace"
    )
    zygote_cwd = str(Path.cwd())
    os.chdir(job.cwd)
    if sys.path and sys.path[0] == zygote_cwd:
        # `python -m` puts its working directory first, `python -c` ""
        sys.path[0] = job.cwd if job.argv[1] == "-m" else ""
    _apply_pythonpath(
        os.environ.get("PYTHONPATH", ""), zygote_cwd, job.env.get("PYTHONPATH", ""), job.cwd
    )
    os.environ.clear()
    os.environ.update(job.env)
    random.seed()  # os.fork reseeds too (random's at-fork hook); said here once more
    try:
        if job.argv[1] == "-m":
            sys.argv = [job.argv[2], *job.argv[3:]]
            runpy.run_module(job.argv[2], run_name="__main__", alter_sys=True)
        else:
            sys.argv = ["-c", *job.argv[3:]]
            exec(compile(job.argv[2], "<string>", "exec"), {"__name__": "__main__"})
    except SystemExit as exc:
        return exc.code if exc.code is None or isinstance(exc.code, int | str) else 1
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def _apply_pythonpath(zygote: str, zygote_cwd: str, wanted: str, cwd: str) -> None:
    """`sys.path` with the child's PYTHONPATH entries where the zygote's were (after the
    script's folder, before the standard library), as its own interpreter would have it."""
    if zygote == wanted:
        return
    from factflow.plugins import forget_entry_points

    forget_entry_points()  # other folders may hold other distributions
    old = [os.path.join(zygote_cwd, p) for p in zygote.split(os.pathsep) if p]  # noqa: PTH118
    new = [os.path.join(cwd, p) for p in wanted.split(os.pathsep) if p]  # noqa: PTH118
    rest = sys.path[1:]
    if rest[: len(old)] == old:
        rest = rest[len(old) :]
    sys.path[1:] = [*new, *rest]


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="factflow's worker forkserver (zygote)")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--preload", default=",".join(PRELOAD))
    parser.add_argument("--serves", default="factflow.flow", help="what the children run")
    args = parser.parse_args(argv)
    sock = socket.socket(fileno=args.fd)
    # the server's Ctrl-C reaches the whole process group: the server closes the socket
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for entry in filter(None, args.preload.split(",")):
        module, _, function = entry.partition(":")
        try:
            loaded = importlib.import_module(module)
            if function:
                getattr(loaded, function)()
        except Exception as exc:  # a child imports it again, and reports the error itself
            print(f"factflow forkserver: preloading {entry} failed: {exc}", file=sys.stderr)
    if _threads() > 1:
        _send(sock, {"error": f"{_threads()} threads after the imports: forking is unsafe"})
        return 1
    # what the imports made stays: the collector leaves it alone (no copy-on-write of it)
    gc.collect()
    gc.freeze()
    sys.stdout.flush()
    sys.stderr.flush()
    _send(sock, {"ready": os.getpid()})
    job = _serve(sock)
    if job is not None:  # a child
        _exit(_run_child(job))
    return 0


def _exit(code: str | int | None) -> NoReturn:
    """End a child as the interpreter's exit would for what a worker can tell (non-daemon
    threads joined, atexit handlers run, the streams flushed, `sys.exit`'s status rules),
    without tearing down every module and object: that would write to nearly every page
    the child shares with the zygote (reference counts), ~0.1 s of CPU per process."""
    status = 0
    if isinstance(code, int):
        status = code & 0xFF
    elif code is not None:
        print(code, file=sys.stderr)
        status = 1
    main_thread = threading.main_thread()
    for thread in threading.enumerate():
        if thread is not main_thread and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


if __name__ == "__main__":
    sys.exit(main())
