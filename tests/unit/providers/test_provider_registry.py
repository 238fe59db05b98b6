"""Providers: the built-in specs, and a new provider added as one installed module.

The third-party provider is a real distribution on `sys.path` (a `.dist-info` with an
`entry_points.txt`), found through the `factflow.providers` entry-point group as an
installed package would be. It is one module: its spec names the module itself as the
connector, whose source and sink re-use the memory connector's.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from factflow.compiler.compile import compile_text
from factflow.connectors.memory import MemorySink
from factflow.connectors.registry import connector_module, make_sink
from factflow.exceptions import AdapterRegistrationError
from factflow.providers import registry
from factflow.providers.registry import (
    BUILTIN,
    UnknownProviderError,
    get_provider,
    provider_names,
    provider_registry,
)

PROVIDER_MODULE = """\
import re

from factflow.connectors.memory import make_sink, make_source
from factflow.providers.spec import ProviderSpec, QueueRule

PROVIDER = ProviderSpec(
    name="echo",
    connector="echo_provider",
    summary="an in-process broker for this test",
    rule=QueueRule(re.compile(r"^echo\\.[a-z.]+$"), "echo queues are `echo.NAME`"),
    dead_letter="echo.{route}.failed",
)
"""
PIPELINE = """\
version: "1.0"
queue: {provider: echo}
routes:
  clean:
    inbound: {queue: %s}
    outbound: echo.out
"""


@pytest.fixture
def echo_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    (tmp_path / "echo_provider.py").write_text(PROVIDER_MODULE)
    dist = tmp_path / "factflow_echo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: factflow-echo\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[factflow.providers]\necho = echo_provider:PROVIDER\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "PROVIDERS", provider_registry())
    yield
    sys.modules.pop("echo_provider", None)


def test_every_builtin_provider_has_a_spec_naming_its_connector() -> None:
    assert set(BUILTIN) <= set(provider_names())
    for name in BUILTIN:
        spec = get_provider(name)
        assert spec.name == name
        assert spec.connector == f"factflow.connectors.{name}"


def test_an_unknown_provider_suggests_a_close_name() -> None:
    with pytest.raises(UnknownProviderError, match="did you mean 'kafka'"):
        get_provider("kafak")


@pytest.mark.usefixtures("echo_installed")
def test_a_provider_installed_as_an_entry_point_compiles_and_connects() -> None:
    assert "echo" in provider_names()
    plan = compile_text(PIPELINE % "echo.in").require_plan()
    assert plan.route("clean").dead_letter_queue == "echo.clean.failed"
    assert plan.queue_name("echo.out", "e1") in {"echo.out", "exec:e1:echo.out"}
    assert connector_module("echo") is sys.modules["echo_provider"]
    assert isinstance(make_sink("echo.out", plan.queue), MemorySink)


@pytest.mark.usefixtures("echo_installed")
def test_the_installed_provider_s_queue_rule_is_checked_by_the_compiler() -> None:
    result = compile_text(PIPELINE % "Bad_Name")
    (issue,) = [i for i in result.report.errors if i.code == "E402"]
    assert "echo queues are `echo.NAME`" in issue.suggestion


def test_an_entry_point_that_is_not_a_spec_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "not_a_spec.py").write_text("PROVIDER = 42\n")
    dist = tmp_path / "factflow_bad-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: factflow-bad\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        textwrap.dedent("""\
            [factflow.providers]
            bad = not_a_spec:PROVIDER
        """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    fresh = provider_registry()
    with pytest.raises(AdapterRegistrationError, match=r"is not a factflow\.providers\.spec"):
        fresh.names()
    sys.modules.pop("not_a_spec", None)
