"""Shared set-up for the unit tests."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # When a hypothesis test fails, hypothesis' report touches mypy_extensions.TypedDict,
    # whose DeprecationWarning (an error under `filterwarnings = error`) would turn the
    # failure into an INTERNALERROR that hides the falsifying example.
    config.addinivalue_line(
        "filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
    )


@pytest.fixture(autouse=True)
def _default_strictness(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start strict; a test that wants warn-only sets the variable itself."""
    monkeypatch.delenv("FACTFLOW_CONFIG_VALIDATOR_STRICT", raising=False)
