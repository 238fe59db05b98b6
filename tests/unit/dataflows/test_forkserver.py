"""The worker forkserver: children get the command, environment, folder and log Popen would
have given them, nothing of the zygote's (sockets, pipes, random state), report their
exit status like Popen, can be signalled, and survive the zygote; a dead zygote makes
`spawn` return None (the caller's Popen fallback) and is started again."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from factflow.dataflows.forkserver import ForkServer
from factflow.dataflows.launch import Launch

READY_SECONDS = 60


@pytest.fixture
def forkserver() -> Iterator[ForkServer]:
    # the light preload: these tests run `python -c` children, not Bytewax
    server = ForkServer(preload=("json",), restart_interval=0)
    server.start()
    assert server.wait_ready(READY_SECONDS)
    yield server
    server.close()


def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}


REPORT = """\
import json, os, random, sys
print(json.dumps({
    "argv": sys.argv, "cwd": os.getcwd(), "env": os.environ.get("FF_TEST"),
    "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
    "random": random.random(), "ppid": os.getppid(), "path0": sys.path[0],
}))
sys.stderr.write("to stderr\\n")
sys.exit(int(sys.argv[1]))
"""


def test_a_child_runs_the_command_with_its_env_folder_and_log(
    forkserver: ForkServer, tmp_path: Path
) -> None:
    log = tmp_path / "process-0.log"
    log.write_text("earlier\n")
    proc = forkserver.spawn(
        [sys.executable, "-c", REPORT, "3"], child_env(FF_TEST="yes"), log, cwd=str(tmp_path)
    )
    assert proc is not None
    assert proc.wait(timeout=30) == 3
    assert proc.returncode == 3
    lines = log.read_text().splitlines()
    assert lines[0] == "earlier"  # appended, as Popen's log is
    report = json.loads(next(line for line in lines if line.startswith("{")))
    assert "to stderr" in lines  # stderr goes to the log too
    assert report["argv"] == ["-c", "3"]
    assert report["cwd"] == str(tmp_path)
    assert report["env"] == "yes"
    assert report["ppid"] == forkserver.pid
    assert report["path0"] == ""
    # only the standard streams (and listdir's own descriptor): no socket or pipe
    assert len(report["fds"]) == 4
    assert report["fds"][:3] == [0, 1, 2]


def test_children_get_their_own_random_state(forkserver: ForkServer, tmp_path: Path) -> None:
    procs = [
        forkserver.spawn([sys.executable, "-c", REPORT, "0"], child_env(), tmp_path / f"{i}.log")
        for i in range(3)
    ]
    values = set()
    for index, proc in enumerate(procs):
        assert proc is not None
        assert proc.wait(timeout=30) == 0
        text = (tmp_path / f"{index}.log").read_text()
        report = next(line for line in text.splitlines() if line.startswith("{"))
        values.add(json.loads(report)["random"])
    assert len(values) == 3


def test_a_signal_ends_a_child_with_popens_negative_code(
    forkserver: ForkServer, tmp_path: Path
) -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    proc = forkserver.spawn(sleeper, child_env(), tmp_path / "a.log")
    assert proc is not None
    assert proc.poll() is None
    proc.terminate()
    assert proc.wait(timeout=30) == -signal.SIGTERM
    proc = forkserver.spawn(sleeper, child_env(), tmp_path / "b.log")
    assert proc is not None
    proc.kill()
    assert proc.wait(timeout=30) == -signal.SIGKILL
    proc.kill()  # once it has exited: nothing happens (no recycled pid is hit)


def test_a_wait_times_out_like_popens(forkserver: ForkServer, tmp_path: Path) -> None:
    import subprocess

    proc = forkserver.spawn(
        [sys.executable, "-c", "import time; time.sleep(60)"], child_env(), tmp_path / "a.log"
    )
    assert proc is not None
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=0.2)
    proc.kill()
    proc.wait(timeout=30)


def test_other_interpreter_options_or_commands_are_left_to_popen(
    forkserver: ForkServer, tmp_path: Path
) -> None:
    env = child_env(PYTHONHASHSEED="123")
    assert forkserver.spawn([sys.executable, "-c", "pass"], env, tmp_path / "a.log") is None
    assert forkserver.spawn(["/bin/true"], child_env(), tmp_path / "a.log") is None


def test_a_child_outlives_a_killed_zygote_and_a_new_zygote_starts(
    forkserver: ForkServer, tmp_path: Path
) -> None:
    proc = forkserver.spawn(
        [sys.executable, "-c", "import time; time.sleep(60)"], child_env(), tmp_path / "a.log"
    )
    assert proc is not None
    zygote = forkserver.pid
    assert zygote is not None
    os.kill(zygote, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while forkserver.pid is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    # the child runs on; its exit status can no longer come, so its end counts as a kill
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    # the next spawn starts a new zygote (and waits for it)
    again = forkserver.spawn([sys.executable, "-c", "pass"], child_env(), tmp_path / "b.log")
    assert again is not None
    assert again.wait(timeout=30) == 0
    assert forkserver.starts == 2
    assert forkserver.pid not in (None, zygote)


def test_the_first_spawn_starts_the_zygote_and_waits_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # interpreter options the server runs with are the zygote's too: no reason for Popen
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    server = ForkServer(preload=("json",))
    try:
        assert server.pid is None
        proc = server.spawn([sys.executable, "-c", "pass"], child_env(), tmp_path / "a.log")
        assert proc is not None
        assert proc.wait(timeout=30) == 0
        assert server.starts == 1
        assert server.forked == 1
    finally:
        server.close()


def test_a_closed_forkserver_spawns_nothing_and_its_zygote_exits(tmp_path: Path) -> None:
    server = ForkServer(preload=())
    server.start()
    assert server.wait_ready(READY_SECONDS)
    zygote = server.pid
    server.close()
    assert server.pid is None
    assert zygote is not None
    with pytest.raises(ProcessLookupError):
        os.kill(zygote, 0)
    assert server.spawn([sys.executable, "-c", "pass"], child_env(), tmp_path / "a.log") is None


class Unavailable:
    def spawn(self, *args: object, **kwargs: object) -> None:
        return None


def test_a_launch_falls_back_to_popen_when_the_spawner_cannot(tmp_path: Path) -> None:
    launch = Launch(
        pipeline=None, execution_id="x", run_dir=tmp_path, recovery_dir=tmp_path / "r",
        spawner=Unavailable(),
    )  # fmt: skip
    launch.log_dir.mkdir(parents=True)
    proc = launch._spawn(0, [sys.executable, "-c", "print('plain')"], child_env())
    assert proc.wait(timeout=30) == 0
    assert type(proc).__name__ == "Popen"
    assert (launch.log_dir / "process-0.log").read_text() == "plain\n"


EXITS = """\
import atexit, sys, threading, time
atexit.register(lambda: print("atexit ran", flush=True))
def late():
    time.sleep(0.3)
    print("thread done", flush=True)
threading.Thread(target=late).start()
sys.exit("bye")
"""


def test_a_child_exits_as_the_interpreter_would(forkserver: ForkServer, tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    proc = forkserver.spawn([sys.executable, "-c", EXITS], child_env(), log)
    assert proc is not None
    # sys.exit("bye"): the message on stderr, status 1; the thread joined, atexit run
    assert proc.wait(timeout=30) == 1
    assert log.read_text().splitlines() == ["bye", "thread done", "atexit ran"]


# waits for the test's go-ahead (a file), so that it reports its niceness after the
# launcher has set it, however slow the machine
NICENESS = """\
import os, sys, time
while not os.path.exists(sys.argv[1]):
    time.sleep(0.01)
print(os.nice(0))
"""


@pytest.mark.parametrize(
    ("given", "added"), [({"nice": 5}, 5), ({}, 0)], ids=["nice 5", "no nice: the server's"]
)
def test_a_forked_child_runs_at_the_niceness_it_was_given(
    forkserver: ForkServer, tmp_path: Path, given: dict[str, int], added: int
) -> None:
    go = tmp_path / "go"
    go.touch()  # the child nices itself before it runs the command
    log = tmp_path / "process-0.log"
    proc = forkserver.spawn([sys.executable, "-c", NICENESS, str(go)], child_env(), log, **given)
    assert proc is not None
    assert proc.wait(timeout=30) == 0
    assert int(log.read_text()) == min(os.nice(0) + added, 19)


def test_a_popen_worker_is_niced_by_its_launch(tmp_path: Path) -> None:
    launch = Launch(
        pipeline=None, execution_id="x", run_dir=tmp_path, recovery_dir=tmp_path / "r",
        spawner=Unavailable(), nice=7,
    )  # fmt: skip
    launch.log_dir.mkdir(parents=True)
    go = tmp_path / "go"
    proc = launch._spawn(0, [sys.executable, "-c", NICENESS, str(go)], child_env())
    go.touch()
    assert proc.wait(timeout=30) == 0
    assert int((launch.log_dir / "process-0.log").read_text()) == min(os.nice(0) + 7, 19)
