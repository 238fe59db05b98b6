"""url_expander: fan-out, include / exclude, de-duplication across lists."""

from __future__ import annotations

import pytest

from factflow.adapters.registry import default_registry
from factflow.workflows.webscraper.urls import UrlExpanderAdapter
from tests.unit.workflows.helpers import call


def test_one_message_per_url_with_the_url_in_metadata() -> None:
    out = call(UrlExpanderAdapter({}), {"urls": ["https://a.example/1", "https://a.example/2"]})
    assert [m.payload for m in out] == [
        {"url": "https://a.example/1"},
        {"url": "https://a.example/2"},
    ]
    assert out[0].metadata["url"] == "https://a.example/1"


def test_include_exclude_and_dedup_within_the_instance() -> None:
    adapter = UrlExpanderAdapter({"include": ["/docs/"], "exclude": [r"\.pdf$"]})
    first = call(
        adapter,
        {
            "urls": [
                "https://a/docs/x",
                "https://a/docs/x#part",
                "https://a/blog/y",
                "https://a/docs/m.pdf",
                7,
                "",
            ]
        },
    )
    again = call(adapter, {"urls": ["https://a/docs/x", "https://a/docs/z"]})
    assert [m.payload["url"] for m in first] == ["https://a/docs/x"]
    assert [m.payload["url"] for m in again] == ["https://a/docs/z"]


def test_dedup_can_be_turned_off_and_max_urls_caps() -> None:
    adapter = UrlExpanderAdapter({"deduplicate": False, "max_urls": 2})
    out = call(adapter, {"urls": ["https://a/1", "https://a/1", "https://a/2"]})
    assert [m.payload["url"] for m in out] == ["https://a/1", "https://a/1"]


def test_a_payload_without_a_list_fails() -> None:
    with pytest.raises(ValueError, match="urls"):
        call(UrlExpanderAdapter({}), {"urls": "https://a/1"})


def test_a_bad_pattern_is_a_compile_time_problem() -> None:
    cls = default_registry().resolve("url_expander")
    [problem] = cls.check_config({"include": ["(unclosed"]})
    assert problem.code == "E303"
    assert problem.path == ("include",)
    assert "regular expression" in problem.message
