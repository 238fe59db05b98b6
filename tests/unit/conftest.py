"""Shared set-up for the unit tests."""

from __future__ import annotations

from dataclasses import replace

import pytest

from factflow.extras import Extra
from factflow.providers.registry import provider_registry


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


ABSENT_CLIENT = "factflow_test_no_such_client"
"""A module name that does not exist: an extra needing it counts as not installed."""


@pytest.fixture
def kafka_client_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process's providers, with kafka's client library as if not installed."""
    registry = provider_registry()
    kafka = registry.resolve("kafka")
    registry.add("kafka", replace(kafka, extra=Extra("kafka", (ABSENT_CLIENT,))), "a test")
    monkeypatch.setattr("factflow.providers.registry.PROVIDERS", registry)
