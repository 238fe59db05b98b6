"""web_scraper against the local site: what becomes content, what is rejected and why."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from factflow.storage import open_storage
from factflow.testing import run_pipeline
from factflow.workflows.errors import FetchError, PageRejectedError
from factflow.workflows.webscraper.scraper import WebScraperAdapter
from factflow.workflows.webscraper.storage import WebContentStorageAdapter
from tests.docsite import DocSite
from tests.unit.workflows.helpers import call, call_all, context


def test_a_page_is_fetched_with_its_facts(site: DocSite) -> None:
    [out] = call(WebScraperAdapter({}), {"url": site.url("/docs/install")})
    body = out.payload
    assert body["status"] == 200
    assert "<h1>Installing factflow</h1>" in body["html"]
    assert body["headers"]["content-type"].startswith("text/html")
    assert body["final_url"] == body["url"] == site.url("/docs/install")
    assert body["fetched_at"].endswith("+00:00")
    assert out.metadata == {"url": site.url("/docs/install"), "domain": site.base.split("//")[1]}


def test_norwegian_pages_decode_as_utf8(site: DocSite) -> None:
    [out] = call(WebScraperAdapter({}), {"url": site.url("/nb/installere")})
    assert 'lang="nb"' in out.payload["html"]
    assert "kjører" in out.payload["html"]


def test_redirects_are_followed_and_the_final_url_kept(site: DocSite) -> None:
    [out] = call(WebScraperAdapter({"follow_redirects": True}), {"url": site.url("/old-guide")})
    assert out.payload["final_url"] == site.url("/docs/guide")
    assert out.payload["url"] == site.url("/old-guide")


@pytest.mark.parametrize(
    ("path", "config", "reason"),
    [
        ("/private/secret", {}, "robots"),
        ("/docs/missing", {}, "status_404"),
        ("/files/manual.pdf", {}, "content_type"),
        ("/docs/huge", {}, "too_large"),
        ("/old-guide", {"follow_redirects": False}, "redirect"),
    ],
)
def test_rejections_are_filtered_with_their_reason(
    site: DocSite, path: str, config: dict[str, object], reason: str
) -> None:
    ctx = context()
    assert call(WebScraperAdapter(config), {"url": site.url(path)}, ctx) == []
    assert ctx.metrics == {f"web_scraper.rejected.{reason}": 1}


def test_robots_denied_pages_are_never_requested(site: DocSite) -> None:
    call(WebScraperAdapter({}), {"url": site.url("/private/secret")})
    assert site.hits["/private/secret"] == 0
    assert site.hits["/robots.txt"] == 1


def test_robots_can_be_ignored(site: DocSite) -> None:
    [out] = call(WebScraperAdapter({"respect_robots": False}), {"url": site.url("/private/secret")})
    assert out.payload["status"] == 200
    assert site.hits["/robots.txt"] == 0


def test_a_large_page_is_fine_under_a_larger_limit(site: DocSite) -> None:
    [out] = call(WebScraperAdapter({"max_bytes": 8 * 1024 * 1024}), {"url": site.url("/docs/huge")})
    assert len(out.payload["html"]) > 6 * 1024 * 1024


def test_content_types_are_configurable(site: DocSite) -> None:
    adapter = WebScraperAdapter({"content_types": ["application/pdf"]})
    [out] = call(adapter, {"url": site.url("/files/manual.pdf")})
    assert out.payload["content_type"] == "application/pdf"


def test_dead_letter_mode_raises_with_the_reason(site: DocSite) -> None:
    with pytest.raises(PageRejectedError, match="status_404") as caught:
        call(WebScraperAdapter({"on_reject": "dead_letter"}), {"url": site.url("/docs/missing")})
    assert caught.value.reason == "status_404"


def test_in_a_pipeline_rejected_pages_are_dead_lettered_without_a_refetch(site: DocSite) -> None:
    result = run_pipeline(
        """
version: "1.0"
name: t
queue: {provider: memory}
error_handling: {max_retries: 3, retry_delay_seconds: 1}
routes:
  fetch:
    inbound: {queue: urls}
    adapters:
      - type: web_scraper
        config: {on_reject: dead_letter}
    outbound: pages
""",
        inputs={
            "urls": [{"url": site.url(p)} for p in ("/docs/missing", "/private/secret", "/docs/")]
        },
    )
    assert [p["url"] for p in result.payloads("pages")] == [site.url("/docs/")]
    letters = {d["message"]["payload"]["url"]: d for d in result.dead_letters("fetch")}
    assert set(letters) == {site.url("/docs/missing"), site.url("/private/secret")}
    for letter in letters.values():
        assert (letter["reason"], letter["attempts"]) == ("non_retryable", 1)
        assert letter["error_type"] == "PageRejectedError"
    assert "(status_404)" in letters[site.url("/docs/missing")]["error"]
    assert "(robots)" in letters[site.url("/private/secret")]["error"]
    assert site.hits["/docs/missing"] == 1  # fetched once, not once per retry
    assert site.hits["/private/secret"] == 0


def test_429_raises_for_a_retry_and_the_retry_waits_for_retry_after(site: DocSite) -> None:
    adapter = WebScraperAdapter({"rate_limit": {"initial_rate": 20}})
    domain = site.base.split("//")[1]
    started = time.monotonic()
    first, second = call_all(adapter, [{"url": site.url("/docs/slow")}] * 2)
    elapsed = time.monotonic() - started
    assert isinstance(first, FetchError)
    assert "429" in str(first)
    assert isinstance(second, list)
    assert second[0].payload["status"] == 200
    assert elapsed >= 0.9  # Retry-After: 1 blocked the domain before the second request
    assert adapter.fetcher.limiter.rate(domain) < 20


def test_network_errors_are_retryable_fetch_errors() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(FetchError, match="ConnectError"):
        call(WebScraperAdapter({"respect_robots": False}), {"url": f"http://127.0.0.1:{port}/"})


@pytest.mark.parametrize("payload", [{}, {"url": "ftp://x/y"}, "not a dict"])
def test_a_message_without_an_http_url_is_an_error(payload: object) -> None:
    with pytest.raises(ValueError, match="url"):
        call(WebScraperAdapter({}), payload)


def test_a_stored_page_is_not_fetched_again_in_the_execution(site: DocSite, tmp_path: Path) -> None:
    url = site.url("/docs/install")
    with open_storage(f"file://{tmp_path}") as storage:
        first_ctx, again_ctx = context(storage), context(storage)
        [fetched] = call(WebScraperAdapter({}), {"url": url}, first_ctx)
        # a new instance, as in a rerun after a crash: the page comes from storage
        [reused] = call(WebScraperAdapter({}), {"url": url}, again_ctx)
        assert site.hits["/docs/install"] == 1
        assert first_ctx.metrics == {"web_scraper.fetched": 1}
        assert again_ctx.metrics == {"web_scraper.reused": 1}
        key = fetched.payload["storage_key"]
        assert key == reused.payload["storage_key"]
        for field in ("url", "final_url", "html", "status", "content_type", "fetched_at"):
            assert reused.payload[field] == fetched.payload[field], field
        # web_content_storage finds the page stored and does not write it again
        [ref] = call(WebContentStorageAdapter({}), reused.payload, again_ctx)
        assert ref.payload["storage_key"] == key
        assert storage.metadata(key)["adapter"] == "web_scraper"
        # without a page store every call fetches
        call(WebScraperAdapter({"page_store": None}), {"url": url}, again_ctx)
        assert site.hits["/docs/install"] == 2


def test_rejected_pages_are_not_kept_in_the_page_store(site: DocSite, tmp_path: Path) -> None:
    with open_storage(f"file://{tmp_path}") as storage:
        ctx = context(storage)
        assert call(WebScraperAdapter({}), {"url": site.url("/docs/missing")}, ctx) == []
        assert storage.list("executions/") == []
