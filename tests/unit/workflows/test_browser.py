"""web_crawler against the local site with the system's Chromium (Playwright driving it):
JavaScript rendered, selectors waited for, rejections, one browser reused across pages.
Skipped where no Chromium is installed (`apt-get install chromium`)."""

from __future__ import annotations

import asyncio

import pytest

from factflow.workflows.errors import FetchError
from factflow.workflows.webscraper.browser import WebCrawlerAdapter, find_chromium
from factflow.workflows.webscraper.scraper import WebScraperAdapter
from tests.docsite import DocSite
from tests.unit.workflows.helpers import call, call_all, context

pytestmark = pytest.mark.skipif(
    find_chromium() is None, reason="no Chromium here: apt-get install chromium"
)


def _crawl(adapter: WebCrawlerAdapter, payloads: list[object]) -> list[object]:
    """Each payload through the adapter on one loop, then the browser closed on it."""
    ctx = context()

    async def main() -> list[object]:
        out: list[object] = []
        for payload in payloads:
            try:
                out.append(await adapter.process(_message(payload), ctx))
            except Exception as exc:
                out.append(exc)
        if adapter._browser is not None:
            await adapter._browser.close()
        return out

    return asyncio.run(main())


def _message(payload: object):  # type: ignore[no-untyped-def]
    from factflow.messages import Message

    return Message(payload=payload)


def test_javascript_is_rendered_where_a_plain_fetch_sees_nothing(site: DocSite) -> None:
    url = site.url("/js/app")
    [plain] = call(WebScraperAdapter({"page_store": None}), {"url": url})
    assert "<h2>Rendered in the browser</h2>" not in plain.payload["html"]
    [[rendered]] = _crawl(WebCrawlerAdapter({"timeout": 30}), [{"url": url}])
    body = rendered.payload
    assert "<h2>Rendered in the browser</h2>" in body["html"]
    assert (body["status"], body["rendered"], body["content_type"]) == (200, True, "text/html")
    assert body["final_url"] == url
    assert rendered.metadata["url"] == url


def test_wait_for_selector_waits_for_late_content_and_fails_when_it_never_comes(
    site: DocSite,
) -> None:
    waiting = WebCrawlerAdapter({"wait_for_selector": "#late", "timeout": 20})
    never = WebCrawlerAdapter({"wait_for_selector": "#never", "timeout": 1})
    [[page]] = _crawl(waiting, [{"url": site.url("/js/late")}])
    assert 'id="late"' in page.payload["html"]
    [error] = _crawl(never, [{"url": site.url("/js/late")}])
    assert isinstance(error, FetchError)
    assert "'#never' did not appear within 1 s" in str(error)


def test_one_browser_serves_many_pages_and_rejects_like_web_scraper(site: DocSite) -> None:
    adapter = WebCrawlerAdapter({"timeout": 30, "pages": 2})
    results = _crawl(
        adapter,
        [
            {"url": site.url("/docs/install")},
            {"url": site.url("/docs/missing")},
            {"url": site.url("/private/secret")},
            {"url": site.url("/files/manual.pdf")},
            {"url": site.url("/nb/installere")},
        ],
    )
    install, missing, private, pdf, nb = results
    assert isinstance(install, list) and "Installing factflow" in install[0].payload["html"]
    assert missing == [] and private == [] and pdf == []
    assert isinstance(nb, list) and "kjører" in nb[0].payload["html"]
    assert site.hits["/private/secret"] == 0
    assert adapter._browser is not None and adapter._browser._browser is None  # closed


def test_a_browser_that_cannot_start_dead_letters_with_the_fix() -> None:
    from factflow.workflows.webscraper.browser import BrowserUnavailableError

    [error] = call_all(
        WebCrawlerAdapter({"executable_path": "/nonexistent/chromium", "respect_robots": False}),
        [{"url": "http://127.0.0.1:9/"}],
    )
    assert isinstance(error, BrowserUnavailableError)
    assert "apt-get install chromium" in str(error)
