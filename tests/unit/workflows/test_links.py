"""link_crawler against the local site: depth, page limit, patterns, same-site links,
robots.txt, rejections and retries, and the links it finds in a page."""

from __future__ import annotations

import socket

import pytest

from factflow.adapters.base import Counts
from factflow.compiler.compile import compile_text
from factflow.workflows.errors import FetchError
from factflow.workflows.webscraper.links import LinkCrawlerAdapter, page_links
from tests.docsite import DocSite
from tests.unit.workflows.helpers import call, call_all, context


def _crawl(site: DocSite, **config: object) -> tuple[dict[str, int], Counts]:
    ctx = context()
    adapter = LinkCrawlerAdapter({"rate_limit": {"initial_rate": 50}, **config})
    out = call(adapter, {"start_url": site.url("/docs/")}, ctx)
    assert isinstance(ctx.metrics, Counts)
    return {m.payload["url"].removeprefix(site.base): m.payload["depth"] for m in out}, ctx.metrics


def test_follows_same_site_links_breadth_first_to_the_depth(site: DocSite) -> None:
    pages, metrics = _crawl(site, max_depth=2)
    # /docs/slow is two links away and answers 429 once: retried into content
    assert pages == {"/docs/": 0, "/docs/install": 1, "/docs/guide": 1, "/docs/slow": 2}
    assert site.hits["/docs/slow"] == 2
    assert site.hits["/private/secret"] == 0  # robots.txt denies it: never requested
    assert site.hits["/docs/guide"] == 1  # the fragment link to itself is the same page
    assert metrics == Counts(
        {
            "link_crawler.pages": 4,
            "link_crawler.rejected.robots": 1,
            "link_crawler.rejected.content_type": 1,  # the PDF
        }
    )


def test_a_page_carries_web_scrapers_payload_with_depth_and_start(site: DocSite) -> None:
    adapter = LinkCrawlerAdapter({"max_depth": 1})
    out = call(adapter, {"url": site.url("/docs/")})  # `url` works as the start field too
    install = next(m for m in out if m.payload["url"] == site.url("/docs/install"))
    assert install.payload["status"] == 200
    assert "<h1>Installing factflow</h1>" in install.payload["html"]
    assert install.payload["start_url"] == site.url("/docs/")
    assert install.metadata == {
        "url": site.url("/docs/install"),
        "domain": site.base.split("//")[1],
        "start_url": site.url("/docs/"),
    }


def test_depth_zero_is_the_start_page_alone(site: DocSite) -> None:
    pages, _ = _crawl(site, max_depth=0)
    assert pages == {"/docs/": 0}
    assert site.hits["/docs/install"] == 0


def test_max_pages_bounds_what_is_emitted_and_what_is_requested(site: DocSite) -> None:
    pages, _ = _crawl(site, max_pages=2)
    assert pages == {"/docs/": 0, "/docs/install": 1}
    assert site.hits["/docs/guide"] == 0  # not requested once the pages were enough


def test_include_and_exclude_patterns_choose_the_links(site: DocSite) -> None:
    pages, _ = _crawl(site, exclude=["/install$"])
    assert "/docs/install" not in pages and "/docs/guide" in pages
    assert site.hits["/docs/install"] == 0
    pages, _ = _crawl(site, include=["/guide"])
    assert set(pages) == {"/docs/", "/docs/guide"}  # the start URL is not filtered


def test_a_page_that_keeps_failing_is_listed_and_the_rest_kept(site: DocSite) -> None:
    pages, metrics = _crawl(site, max_depth=2, page_retries=0)
    assert "/docs/slow" not in pages and len(pages) == 3
    assert metrics["link_crawler.errors"] == 1


def test_a_start_page_that_cannot_be_fetched_raises_for_the_routes_retry() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    [result] = call_all(
        LinkCrawlerAdapter({"page_retries": 0, "timeout": 2}),
        [{"start_url": f"http://127.0.0.1:{port}/"}],
    )
    assert isinstance(result, FetchError)


def test_a_rejected_start_page_emits_nothing(site: DocSite) -> None:
    ctx = context()
    assert call(LinkCrawlerAdapter({}), {"start_url": site.url("/docs/missing")}, ctx) == []
    assert ctx.metrics == Counts({"link_crawler.rejected.status_404": 1})


def test_page_links_resolve_against_the_base_and_drop_fragments_and_other_schemes() -> None:
    html = """<html><head><base href="/docs/"></head><body>
    <a href="a">a</a> <a href="a#x">again</a> <a href="/b?q=1">b</a>
    <a href="mailto:x@y">mail</a> <a href="javascript:void(0)">js</a>
    <a href="https://other.example/c">c</a> <a>no href</a></body></html>"""
    assert page_links(html, "http://h.example/start/page") == [
        "http://h.example/docs/a",
        "http://h.example/b?q=1",
        "https://other.example/c",
    ]
    assert page_links("", "http://h.example/") == []


@pytest.mark.parametrize(
    ("config", "code"),
    [("{max_pages: 0}", "E303"), ("{exclude: ['(']}", "E303"), ("{max_page: 5}", "E301")],
)
def test_bad_configs_fail_at_compile_time(config: str, code: str) -> None:
    text = f"""version: "1.0"
routes:
  crawl:
    inbound: {{queue: start}}
    adapters:
      - type: link_crawler
        config: {config}
    outbound: pages
"""
    assert code in [i.code for i in compile_text(text).report.issues]
