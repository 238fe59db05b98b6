"""E407: a provider whose client library is missing fails at compile time, naming the extra.

Nothing is uninstalled: the missing library is a module name that does not exist, put in
the table of the provider (or storage scheme) the pipeline names.
"""

from __future__ import annotations

import textwrap

import pytest

from factflow.compiler.compile import compile_text
from factflow.compiler.extras import missing_extra_problem
from factflow.compiler.render import render_report
from factflow.extras import KAFKA as KAFKA_EXTRA
from factflow.extras import STORAGE_EXTRAS, Extra

ABSENT = "factflow_test_no_such_client"

KAFKA = textwrap.dedent(
    """\
    version: "1.0"
    queue: {provider: kafka, url: "127.0.0.1:9092"}
    routes:
      clean:
        inbound: {queue: docs.in}
        outbound: docs.out
    """
)


def test_installed_client_reports_nothing() -> None:
    assert missing_extra_problem(("queue", "provider"), "kafka", KAFKA_EXTRA) is None
    assert "E407" not in {i.code for i in compile_text(KAFKA).report.issues}


def test_missing_module_is_an_e407_naming_the_extra() -> None:
    problem = missing_extra_problem(("queue", "provider"), "x", Extra("kafka", ("json", ABSENT)))
    assert problem is not None
    assert problem.code == "E407"
    assert repr(ABSENT) in problem.message
    assert "pip install 'factflow[kafka]'" in problem.suggestion


def test_pipeline_naming_a_provider_without_its_client_is_invalid(
    kafka_client_missing: None,
) -> None:
    result = compile_text(KAFKA, file="pipeline.yaml")
    assert result.plan is None
    (issue,) = [i for i in result.report.issues if i.code == "E407"]
    assert issue.to_dict()["path"] == "queue.provider"
    assert issue.location is not None
    assert (issue.location.line, issue.location.column) == (2, 19)
    assert issue.suggestion.startswith("pip install 'factflow[kafka]'")
    assert "error E407 queue provider 'kafka' needs" in render_report(result)


def test_e407_stays_an_error_with_validation_warn(kafka_client_missing: None) -> None:
    result = compile_text(KAFKA, strict=False)
    assert result.plan is None
    assert "E407" in {i.code for i in result.report.errors}


def test_s3_storage_without_its_client_is_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(STORAGE_EXTRAS, "s3", Extra("s3", (ABSENT,)))
    text = KAFKA.replace(
        'queue: {provider: kafka, url: "127.0.0.1:9092"}',
        'queue: {provider: file, path: ./q}\nstorage: {uri: "s3://bucket/prefix"}',
    )
    result = compile_text(text)
    (issue,) = [i for i in result.report.issues if i.code == "E407"]
    assert issue.to_dict()["path"] == "storage.uri"
    assert "pip install 'factflow[s3]'" in issue.suggestion
