"""Fixtures for tests that start worker processes (`python -m bytewax.run`, `factflow run`)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.e2e.helpers import worker_env


@pytest.fixture
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Worker environment: test adapters importable, stage storage off, recovery in tmp."""
    recovery = tmp_path_factory.mktemp("recovery")
    return worker_env(FACTFLOW_RECOVERY_DIR=str(recovery))


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; any still running when it ends are killed."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
