"""The demo's documentation site (scripts/docsite.py): every page in the sitemap, each page
reachable from the home page, the content converted by the same code the pipeline runs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from factflow.workflows.markdown.convert import HtmlToMarkdownConfig, html_to_markdown
from factflow.workflows.webscraper.sitemap import parse_sitemap

REPO = Path(__file__).resolve().parents[3]


def _docsite() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docsite", REPO / "scripts" / "docsite.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["docsite"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def test_the_site_has_a_page_per_readme_section_and_doc_all_in_the_sitemap(
    tmp_path: Path,
) -> None:
    urls = _docsite().build(tmp_path, "http://127.0.0.1:9999")
    readme = (REPO / "README.md").read_text()
    sections = [line for line in readme.splitlines() if line.startswith("## ")]
    docs = list((REPO / "docs").glob("*.md"))
    assert len(urls) == 1 + len(sections) + len(docs)
    listed, sitemaps = parse_sitemap((tmp_path / "sitemap.xml").read_bytes())
    assert listed == urls and sitemaps == []
    assert "http://127.0.0.1:9999/adapters/" in urls
    home = (tmp_path / "index.html").read_text()
    for url in urls[1:]:
        assert f'href="{url.removeprefix("http://127.0.0.1:9999")}"' in home


def test_a_page_converts_to_its_markdown_without_the_navigation(tmp_path: Path) -> None:
    _docsite().build(tmp_path, "http://127.0.0.1:9999")
    html = (tmp_path / "adapters" / "index.html").read_text()
    markdown, front = html_to_markdown(html, HtmlToMarkdownConfig())
    assert front["title"].startswith("Document ingestion adapters")
    assert "# Document ingestion adapters" in markdown
    assert "Validation errors and warnings" not in markdown  # a nav link, stripped
