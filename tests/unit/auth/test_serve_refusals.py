"""`factflow serve` refuses to run unprotected where it should, before anything starts."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from factflow.cli.app import app

# a URL nothing listens on: the refusals come before any connection is made
ENV = {"FACTFLOW_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}


@pytest.fixture(autouse=True)
def _no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FACTFLOW_AUTH_SECRET", raising=False)
    monkeypatch.delenv("FACTFLOW_ENVIRONMENT", raising=False)


def test_production_without_a_secret_does_not_start() -> None:
    result = CliRunner().invoke(
        app, ["serve", "--port", "0"], env={**ENV, "FACTFLOW_ENVIRONMENT": "production",
                                             "FACTFLOW_DATA_DIR": "/tmp/ff-serve-refusal"}
    )  # fmt: skip
    assert result.exit_code == 1
    assert "FACTFLOW_AUTH_SECRET must be set" in result.output


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::"])
def test_open_mode_on_a_public_address_is_refused(host: str) -> None:
    result = CliRunner().invoke(app, ["serve", "--host", host, "--port", "0"], env=ENV)
    assert result.exit_code == 1
    assert f"refusing to serve {host} without auth" in result.output
    assert "--insecure" in result.output
