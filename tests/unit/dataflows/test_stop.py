"""Cancelling workers (`launch.stop`, what the server's cancel calls): SIGTERM first, SIGKILL
only for a process still running after the grace period; real child processes that obey,
clean up, or ignore SIGTERM."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from factflow.dataflows.launch import stop

# Each child says "ready" once its SIGTERM handling is in place, so the test never signals
# a process that has not yet installed its handler.
OBEYS = "import time; print('ready', flush=True); time.sleep(60)"
CLEANS_UP = (
    "import signal, sys, time\n"
    "def bye(*_):\n"
    "    time.sleep(0.3)  # flushing its last epoch\n"
    "    sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, bye)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)
IGNORES = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


@pytest.fixture
def spawn() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def start(procs: list[subprocess.Popen[bytes]], code: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    procs.append(proc)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"
    return proc


@pytest.mark.timeout(30)
def test_sigterm_then_sigkill_after_the_grace_period(
    spawn: list[subprocess.Popen[bytes]], caplog: pytest.LogCaptureFixture
) -> None:
    obeys, cleans_up, ignores, also_ignores = (
        start(spawn, code) for code in (OBEYS, CLEANS_UP, IGNORES, IGNORES)
    )
    grace = 2.0

    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="factflow.dataflows.launch"):
        stop([obeys, cleans_up, ignores, also_ignores], grace_seconds=grace)
    took = time.monotonic() - began

    assert obeys.returncode == -signal.SIGTERM
    assert cleans_up.returncode == 0  # given the time it needed, not killed
    assert ignores.returncode == also_ignores.returncode == -signal.SIGKILL
    assert took >= grace  # the stubborn ones had their whole grace period
    # one grace period for all: waiting one after the other would take two
    assert took < 2 * grace
    killed = [r.getMessage() for r in caplog.records if "SIGKILL" in r.getMessage()]
    assert [str(ignores.pid) in m for m in killed] == [True, False]
    assert str(also_ignores.pid) in killed[1]


@pytest.mark.timeout(30)
def test_no_waiting_when_every_worker_stops_at_once(
    spawn: list[subprocess.Popen[bytes]],
) -> None:
    procs = [start(spawn, OBEYS) for _ in range(2)]

    began = time.monotonic()
    stop(procs, grace_seconds=20)

    assert [p.returncode for p in procs] == [-signal.SIGTERM, -signal.SIGTERM]
    assert time.monotonic() - began < 10  # not the 20 s grace period


def test_workers_that_already_exited_are_left_alone(
    spawn: list[subprocess.Popen[bytes]],
) -> None:
    done = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    spawn.append(done)
    done.wait()

    stop([done], grace_seconds=0.1)

    assert done.returncode == 3  # its own exit code, no signal sent
