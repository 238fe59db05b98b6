"""Optional extras: the core installs and runs without the broker, S3 and LLM clients.

Nothing is uninstalled. A missing library is either a module name that does not exist, or,
in a subprocess, a real client blocked by a `None` entry in `sys.modules` (what Python
does for a module that failed to import: `import` raises ImportError and `find_spec`
finds nothing), so the whole core is exercised as if installed without the extras.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from factflow.compiler.plan import QueueSettings
from factflow.connectors.registry import make_sink
from factflow.exceptions import ConfigurationError
from factflow.extras import KAFKA, Extra, MissingExtraError, module_installed

ABSENT = "factflow_test_no_such_client"
ROOT = Path(__file__).resolve().parents[2]


def test_probe_tells_installed_from_missing_modules() -> None:
    assert module_installed("json")
    assert not module_installed(ABSENT)
    assert not module_installed(f"{ABSENT}.sub")  # a missing parent package is no crash


def test_extra_names_its_first_missing_module() -> None:
    assert KAFKA.missing() is None
    assert Extra("kafka", ("json", ABSENT, "also_absent")).missing() == ABSENT


def test_require_raises_a_configuration_error_naming_the_extra() -> None:
    with pytest.raises(MissingExtraError) as caught:
        Extra("kafka", (ABSENT,)).require("queue provider 'kafka'")
    assert isinstance(caught.value, ConfigurationError)
    assert caught.value.module == ABSENT
    assert "pip install 'factflow[kafka]'" in str(caught.value)
    KAFKA.require("queue provider 'kafka'")  # installed: no error


def test_connector_of_a_provider_without_its_client_names_the_extra(
    kafka_client_missing: None,
) -> None:
    settings = QueueSettings("kafka", "127.0.0.1:9092", None, {}, "json")
    with pytest.raises(MissingExtraError, match=r"pip install 'factflow\[kafka\]'"):
        make_sink("docs.out", settings)


OPTIONAL = ("aio_pika", "aiormq", "stomp", "pulsar", "confluent_kafka", "minio", "litellm")

WITHOUT_EXTRAS = textwrap.dedent(
    f"""
    import sys
    from dataclasses import replace
    for name in {OPTIONAL!r}:
        sys.modules[name] = None  # as if not installed

    import factflow.api.app, factflow.cli.app, factflow.flow  # the core imports
    from factflow.compiler.compile import compile_text
    from factflow.connectors.registry import make_sink
    from factflow.extras import MissingExtraError
    from factflow.storage import open_storage
    from factflow.testing import run_pipeline

    pipeline = '''
    version: "1.0"
    queue: {{provider: kafka, url: "127.0.0.1:9092"}}
    routes:
      clean:
        inbound: {{queue: docs.in}}
        outbound: docs.out
    '''
    report = compile_text(pipeline).report
    print("codes", sorted(i.code for i in report.errors))
    print("fix", [i.suggestion for i in report.errors if i.code == "E407"][0])
    result = run_pipeline(pipeline.replace("kafka", "memory"), inputs={{"docs.in": [{{"a": 1}}]}})
    print("ran", result.payloads("docs.out"))
    for call in (
        lambda: make_sink("q", replace(result.plan.queue, provider="rabbitmq")),
        lambda: open_storage("s3://bucket/prefix"),
    ):
        try:
            call()
        except MissingExtraError as exc:
            print("refused", exc.extra.name)
    print("loaded", sorted(m for m in {OPTIONAL!r} if sys.modules[m] is not None))
    """
)


@pytest.mark.slow
def test_core_runs_without_the_optional_clients(tmp_path: Path) -> None:
    script = tmp_path / "without_extras.py"
    script.write_text(WITHOUT_EXTRAS)
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "codes ['E407']" in lines
    assert "fix pip install 'factflow[kafka]' (or 'factflow[all]')" in lines
    assert "ran [{'a': 1}]" in lines
    assert "refused rabbitmq" in lines
    assert "refused s3" in lines
    assert "loaded []" in lines
