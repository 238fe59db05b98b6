"""`link_crawler`: crawls a site from a start URL by following its same-site links, for
sites without a sitemap; emits one message per page in `web_scraper`'s shape.

Breadth first: the start page is depth 0, the pages it links to depth 1, and so on up to
`max_depth`; at most `max_pages` pages are emitted. A link is followed when it is http(s),
on the start URL's host (or the host its redirect landed on), matches the include / exclude
patterns, and has not been seen (fragments dropped). Pages are fetched by the same polite
fetcher as `web_scraper` (robots.txt, the shared per-domain rate limit, byte limit, content
types), up to `concurrency` at a time. A rejected page is skipped and counted
(`link_crawler.rejected.<reason>`); a fetch that fails (429, 5xx, network) is tried again
up to `page_retries` times (the rate limiter has meanwhile slowed the domain down), then
the page is skipped, counted (`link_crawler.errors`) and listed in the last page's
`crawl_errors`; the start page failing raises `FetchError`, so the route retries the
whole crawl.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin, urlsplit

import lxml.etree
import lxml.html
from pydantic import Field

from factflow.adapters.base import Context
from factflow.messages import Message
from factflow.types import JsonDict
from factflow.workflows.config import WorkflowAdapter
from factflow.workflows.errors import FetchError
from factflow.workflows.webscraper.scraper import FetchConfig, PageFetcher, Rejection, http_url
from factflow.workflows.webscraper.urls import UrlFilter, UrlPatterns


class LinkCrawlerConfig(FetchConfig, UrlPatterns):
    max_pages: int = Field(default=100, ge=1, description="Emit at most this many pages.")
    max_depth: int = Field(default=3, ge=0, description="Links followed from the start page.")
    concurrency: int = Field(default=4, ge=1, le=64, description="Pages fetched at once.")
    page_retries: int = Field(
        default=2, ge=0, description="Fetch attempts after a failed one (429, 5xx, network)."
    )
    url_field: str = Field(default="start_url", description="Payload field with the start URL.")


def page_links(html: str, base_url: str) -> list[str]:
    """The absolute http(s) URLs of the page's `<a href>`s, fragments dropped, in order
    and without repeats; `<base href>` is honoured."""
    try:
        root = lxml.html.fromstring(html)
    except (lxml.etree.ParserError, ValueError):  # an empty or unparsable document
        return []
    bases = root.xpath("//base/@href")
    base = urljoin(base_url, str(bases[0])) if bases else base_url
    found: dict[str, None] = {}
    for href in root.xpath("//a/@href"):
        url = urldefrag(urljoin(base, str(href).strip())).url
        if urlsplit(url).scheme in ("http", "https"):
            found.setdefault(url, None)
    return list(found)


@dataclass
class _Crawl:
    hosts: set[str]
    filter: UrlFilter
    seen: set[str] = field(default_factory=set)
    landed: set[str] = field(default_factory=set)
    """Final URLs of the pages emitted (a redirect may land on one twice)."""
    pages: list[tuple[int, JsonDict]] = field(default_factory=list)
    errors: list[JsonDict] = field(default_factory=list)

    def follow(self, url: str) -> bool:
        if url in self.seen or urlsplit(url).netloc not in self.hosts:
            return False
        self.seen.add(url)
        return self.filter.wanted(url)


class LinkCrawlerAdapter(WorkflowAdapter):
    """`{"start_url": ...}` -> one message per page: `web_scraper`'s payload plus `depth`
    and `start_url`; metadata gets `url`, `domain` and `start_url`."""

    name = "link_crawler"
    config_model = LinkCrawlerConfig

    def __init__(self, config: JsonDict | None = None) -> None:
        super().__init__(config)
        self.settings = LinkCrawlerConfig.model_validate(self.config)
        self.fetcher = PageFetcher(self.settings)
        self.filter = UrlFilter(self.settings)

    async def process(self, message: Message, context: Context) -> list[Message]:
        payload = message.payload
        field_name = self.settings.url_field
        if isinstance(payload, dict) and field_name not in payload and "url" in payload:
            field_name = "url"
        start = urldefrag(http_url(payload, field_name)).url
        crawl = await self.crawl(start, context)
        out = []
        for index, (depth, page) in enumerate(crawl.pages):
            body = {**page, "depth": depth, "start_url": start}
            if index == len(crawl.pages) - 1 and crawl.errors:
                body["crawl_errors"] = crawl.errors
            domain = urlsplit(page["url"]).netloc
            meta = {"url": page["url"], "domain": domain, "start_url": start}
            out.append(message.derive(payload=body, metadata=meta))
        return out

    async def crawl(self, start: str, context: Context) -> _Crawl:
        s = self.settings
        crawl = _Crawl(hosts={urlsplit(start).netloc}, filter=self.filter, seen={start})
        level, depth = [start], 0
        limit = asyncio.Semaphore(s.concurrency)

        async def get(url: str) -> JsonDict | Rejection | FetchError:
            async with limit:
                failures = 0
                while True:
                    try:
                        return await self.fetcher.get(url)
                    except FetchError as exc:
                        # the limiter has slowed the domain down (and honours Retry-After),
                        # so the next attempt waits by itself
                        failures += 1
                        if failures > s.page_retries:
                            if url == start:
                                raise
                            return exc

        while level and len(crawl.pages) < s.max_pages:
            following: list[str] = []
            done = 0
            # fetch no more at once than pages still wanted: a wide page must not cost
            # hundreds of requests when max_pages is small
            while done < len(level) and len(crawl.pages) < s.max_pages:
                chunk = level[done : done + s.max_pages - len(crawl.pages)]
                done += len(chunk)
                results = await asyncio.gather(*(get(url) for url in chunk))
                for url, result in zip(chunk, results, strict=True):
                    if links := self._take(crawl, context, url, result, depth):
                        following += links
            level, depth = following, depth + 1
        return crawl

    def _take(
        self,
        crawl: _Crawl,
        context: Context,
        url: str,
        result: JsonDict | Rejection | FetchError,
        depth: int,
    ) -> list[str]:
        """Record one fetched URL; returns the links to follow from it."""
        if isinstance(result, Rejection):
            context.metrics.add(f"link_crawler.rejected.{result.reason}", 1)
            return []
        if isinstance(result, FetchError):
            context.metrics.add("link_crawler.errors", 1)
            crawl.errors.append({"url": url, "error": str(result)})
            return []
        final = str(result["final_url"])
        if len(crawl.pages) >= self.settings.max_pages or final in crawl.landed:
            return []  # full, or a redirect to a page already emitted
        crawl.landed.add(final)
        crawl.pages.append((depth, result))
        context.metrics.add("link_crawler.pages", 1)
        if depth == 0:  # a redirected start URL makes its target's host part of the site
            crawl.hosts.add(urlsplit(final).netloc)
        if depth >= self.settings.max_depth:
            return []
        return [u for u in page_links(str(result["html"]), final) if crawl.follow(u)]
