"""The workflow adapters are registered under the seed system's type strings, their
configs are checked at compile time, and each is documented in docs/adapters.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from factflow.adapters.registry import default_registry
from factflow.compiler.compile import compile_text
from factflow.workflows import WORKFLOW_ADAPTERS
from tests.unit.compiler.test_shipped_pipelines import SEED_WEBSCRAPER

SEED_TYPES = {
    "sitemap_parser",
    "url_expander",
    "web_scraper",
    "web_content_storage",
    "storage_retriever",
    "html_to_markdown",
    "smart_segmenter",
    "segment_publisher",
    "markdown_storage_writer",
}
DOCS = Path(__file__).resolve().parents[3] / "docs" / "adapters.md"


def test_the_seed_type_strings_are_registered() -> None:
    assert set(default_registry().names()) >= SEED_TYPES


def test_the_seed_webscraper_example_compiles_with_the_real_adapters() -> None:
    result = compile_text(SEED_WEBSCRAPER, file="webscraper.yaml")
    assert result.report.issues == (), [i.to_dict() for i in result.report.issues]
    [route] = result.require_plan().routes
    assert [a.type for a in route.adapters] == [
        "sitemap_parser",
        "url_expander",
        "web_scraper",
        "web_content_storage",
    ]


def test_the_seed_markdown_fragment_compiles() -> None:
    text = SEED_WEBSCRAPER.replace(
        '      - type: "web_content_storage"\n',
        '      - type: "html_to_markdown"\n'
        "        config: {preserve_images: true, max_tokens: 4096}\n",
    )
    assert compile_text(text).report.issues == ()


def test_the_seed_web_crawler_fragment_compiles() -> None:
    text = SEED_WEBSCRAPER.replace(
        '      - type: "web_scraper"\n        config:\n          follow_redirects: true\n'
        "          timeout: 30\n",
        '      - type: "web_crawler"\n'
        '        config: {wait_for_selector: "article.content", timeout: 60}\n',
    )
    assert "web_crawler" in text
    assert compile_text(text).report.issues == ()


@pytest.mark.parametrize(
    ("config", "code"),
    [
        ("{follow_redirect: true}", "E301"),
        ("{timeout: -1}", "E303"),
        ("{on_reject: explode}", "E303"),
    ],
)
def test_bad_configs_fail_at_compile_time(config: str, code: str) -> None:
    text = SEED_WEBSCRAPER.replace(
        "config:\n          follow_redirects: true\n          timeout: 30", f"config: {config}"
    )
    codes = [i.code for i in compile_text(text).report.issues]
    assert code in codes


@pytest.mark.parametrize("cls", WORKFLOW_ADAPTERS, ids=lambda c: c.name)
def test_each_adapter_is_documented_with_its_config_fields(cls: type) -> None:
    docs = DOCS.read_text()
    assert f"### `{cls.name}`" in docs
    section = docs.split(f"### `{cls.name}`", 1)[1].split("\n### ", 1)[0]
    for field in cls.config_schema.get("properties", {}):
        assert f"`{field}`" in section, f"{cls.name}: config field {field} undocumented"
