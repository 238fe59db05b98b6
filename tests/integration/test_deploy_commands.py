"""The image's commands, run on this machine without Docker (no engine runs here).

- The build stage's install (`python -m venv ... && pip install ".[EXTRAS]"`), run as the
  Dockerfile writes it in a clean virtualenv on a copy of exactly what the image copies:
  the installed factflow (not this checkout) imports its worker entry and finds its
  migrations. It downloads from PyPI (pip's cache helps); skipped when PyPI is
  unreachable.
- The image's default command with the image's environment (production settings, JSON
  logs) serves a health check that the image's HEALTHCHECK command accepts.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from factflow.dataflows.launch import free_ports
from tests.deploy_files import ROOT, stage

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
    except OSError:
        return False
    return True


def test_the_build_stage_install_works_in_a_clean_virtualenv(tmp_path: Path) -> None:
    if not _pypi_reachable():
        pytest.skip("PyPI is unreachable: the image's install cannot run here")
    build = stage("build")
    args = dict(re.findall(r"(\w+)=(\S+)", " ".join(a for i, a in build if i == "ARG")))
    [run] = [a for i, a in build if i == "RUN"]
    context = tmp_path / "src"  # what the stage copies, nothing else
    for instruction, copy_args in build:
        if instruction == "COPY":
            *sources, target = copy_args.split()
            destination = context / target.removeprefix("./")
            for source in sources:
                if (ROOT / source).is_dir():
                    shutil.copytree(
                        ROOT / source, destination, ignore=shutil.ignore_patterns("__pycache__")
                    )
                else:
                    destination.mkdir(parents=True, exist_ok=True)
                    shutil.copy(ROOT / source, destination)
    venv = tmp_path / "venv"
    command = run.replace("/opt/factflow", str(venv)).replace("${EXTRAS}", args["EXTRAS"])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_NO_CACHE_DIR")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    result = subprocess.run(
        command, shell=True, cwd=context, env=env, capture_output=True, text=True,
        timeout=1500, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    probe = (
        "import factflow, factflow.flow, factflow.api.app, pathlib, bytewax, stomp, aio_pika;"
        "print(factflow.__file__);"
        "print(len(list((pathlib.Path(factflow.__file__).parent / 'db/migrations').glob('*.sql'))))"
    )
    checked = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    location, migrations = checked.stdout.split()
    assert Path(location).is_relative_to(venv), "the virtualenv's own factflow"
    assert int(migrations) >= 1
    helped = subprocess.run(
        [str(venv / "bin" / "factflow"), "serve", "--help"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert helped.returncode == 0 and "--embedded" in helped.stdout


def test_the_default_command_serves_what_the_healthcheck_probes(
    tmp_path: Path, db_url: str
) -> None:
    runtime = stage("runtime")
    env = dict(os.environ)
    for instruction, args in runtime:
        if instruction == "ENV":
            env.update(re.findall(r"(\w+)=(\S+)", args))
    env["PATH"] = os.environ["PATH"]  # the image's virtualenv is this interpreter's here
    [port] = free_ports(1)
    env.update(
        FACTFLOW_DATA_DIR=str(tmp_path / "data" / "server"),  # /data in the image
        FACTFLOW_RECOVERY_DIR=str(tmp_path / "data" / "recovery"),
        FACTFLOW_PIPELINES_DIR=str(ROOT / "pipelines"),
        FACTFLOW_DATABASE_URL=db_url,
        FACTFLOW_AUTH_SECRET=secrets.token_hex(24),
    )
    [cmd] = [json.loads(a) for i, a in runtime if i == "CMD"]
    cmd = [str(port) if part == "8000" else part for part in cmd]
    assert cmd[0] == "factflow"
    cmd = [sys.executable, "-m", "factflow", *cmd[1:]]  # `factflow` of this interpreter
    [healthcheck] = [a for i, a in runtime if i == "HEALTHCHECK"]
    probe = json.loads(healthcheck.split("CMD", 1)[1])
    probe = [sys.executable, *(p.replace(":8000/", f":{port}/") for p in probe[1:])]
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, log.read_text()[-3000:]
            healthy = subprocess.run(probe, capture_output=True, timeout=30, check=False)
            if healthy.returncode == 0:
                break
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=60)
    # the image logs JSON lines (FACTFLOW_LOG_FORMAT=json) naming the instance
    entries = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert entries, log.read_text()[-3000:]
    assert all("instance_id" in entry and "level" in entry for entry in entries)
    # and the server stops when its health check goes down
    assert subprocess.run(probe, capture_output=True, timeout=30, check=False).returncode != 0
