"""The server commands' output format: JSON when stdout is a pipe or a file, text on a
terminal, `--output` (the command's, then the global one) overriding both."""

from __future__ import annotations

import os
import pty
from collections.abc import Iterator
from typing import IO

import pytest
import typer
from typer.testing import CliRunner

from factflow.cli import app
from factflow.cli.client.http import STATE, output_format
from factflow.cli.common import OutputFormat


@pytest.fixture
def terminal() -> Iterator[IO[str]]:
    """A real pseudo-terminal as stdout."""
    leader, follower = pty.openpty()
    with os.fdopen(follower, "w") as out:
        yield out
    os.close(leader)


@pytest.fixture
def pipe() -> Iterator[IO[str]]:
    read, write = os.pipe()
    with os.fdopen(write, "w") as out:
        yield out
    os.close(read)


@pytest.fixture(autouse=True)
def _no_global_output() -> Iterator[None]:
    saved = STATE.output
    STATE.output = None
    yield
    STATE.output = saved


def test_pipe_gets_json_terminal_gets_text(
    monkeypatch: pytest.MonkeyPatch, terminal: IO[str], pipe: IO[str]
) -> None:
    monkeypatch.setattr("sys.stdout", pipe)
    assert output_format(None) is OutputFormat.json
    monkeypatch.setattr("sys.stdout", terminal)
    assert output_format(None) is OutputFormat.text


def test_command_option_beats_global_beats_the_terminal(
    monkeypatch: pytest.MonkeyPatch, terminal: IO[str], pipe: IO[str]
) -> None:
    monkeypatch.setattr("sys.stdout", pipe)
    assert output_format(OutputFormat.text) is OutputFormat.text
    STATE.output = OutputFormat.text
    assert output_format(None) is OutputFormat.text
    assert output_format(OutputFormat.json) is OutputFormat.json
    monkeypatch.setattr("sys.stdout", terminal)
    STATE.output = OutputFormat.json
    assert output_format(None) is OutputFormat.json


def test_raw_commands_stay_raw_when_piped(monkeypatch: pytest.MonkeyPatch, pipe: IO[str]) -> None:
    """`storage get KEY > file` keeps the object's bytes; JSON only when asked for."""
    monkeypatch.setattr("sys.stdout", pipe)
    assert output_format(None, piped=OutputFormat.text) is OutputFormat.text
    assert output_format(OutputFormat.json, piped=OutputFormat.text) is OutputFormat.json


def test_global_option_reaches_the_state() -> None:
    """`factflow --output text ...` sets the global choice; without it nothing is chosen."""
    probe = typer.Typer()
    seen: list[OutputFormat | None] = []

    @probe.command()
    def show() -> None:
        seen.append(STATE.output)

    # mount the probe under the real root app, whose callback parses the global options
    app.add_typer(probe, name="probe-output")
    try:
        runner = CliRunner()
        assert runner.invoke(app, ["--output", "text", "probe-output", "show"]).exit_code == 0
        assert runner.invoke(app, ["probe-output", "show"]).exit_code == 0
        assert runner.invoke(app, ["--output", "yaml", "probe-output", "show"]).exit_code == 2
    finally:
        app.registered_groups.pop()
    assert seen == [OutputFormat.text, None]
