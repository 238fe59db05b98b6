"""`web_scraper`: fetches one URL and emits its HTML with status, headers, final URL and
fetch time.

Polite by default: robots.txt (protego), the adaptive per-domain rate limit
(`ratelimit`), a byte limit and allowed content types. What is not content to ingest
(robots-denied, a non-429 4xx, another content type, too large, an unfollowed redirect)
is a *rejection*: with `on_reject: filter` (the default) the message is dropped, logged
with its reason and counted in `context.metrics` (`web_scraper.rejected.<reason>`); with
`on_reject: dead_letter` it raises `PageRejectedError`, which is non-retryable: the
route dead-letters it at once (reason `non_retryable`), without fetching it again.
429, 503, other 5xx and network errors raise `FetchError`, which the route retries (the
limiter has meanwhile slowed the domain down and honours Retry-After).

With stage storage, a fetched page is written to its `page_store` folder at once (the key
`web_content_storage` uses, so that adapter does not write it again), and a URL whose page
is already there in this execution and route is emitted from storage, not fetched: a run
killed mid-crawl and started again fetches no stored page twice.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import httpx
from pydantic import Field

from factflow.adapters.base import Context
from factflow.messages import Message
from factflow.types import JsonDict
from factflow.workflows.config import WorkflowAdapter, WorkflowConfig
from factflow.workflows.errors import FetchError, PageRejectedError, PayloadError
from factflow.workflows.webscraper.http import (
    DEFAULT_USER_AGENT,
    Fetched,
    fetch,
    make_client,
    retry_after_seconds,
)
from factflow.workflows.webscraper.ratelimit import DomainRateLimiter, RateSettings, shared_limiter
from factflow.workflows.webscraper.robots import RobotsCache
from factflow.workflows.webscraper.storage import DEFAULT_FOLDER, page_key, store_page, stored_page

HTML_TYPES = ["text/html", "application/xhtml+xml"]
THROTTLE_STATUSES = (429, 503)
OnReject = Literal["filter", "dead_letter"]


class RateLimitConfig(WorkflowConfig):
    initial_rate: float = Field(
        default=4.0, gt=0, description="Requests/s per domain at the start."
    )
    min_rate: float = Field(default=0.5, gt=0, description="Floor after repeated back-offs.")
    max_rate: float = Field(default=50.0, gt=0, description="Ceiling the rate climbs to.")
    increase: float = Field(default=0.5, ge=0, description="Requests/s added per success.")
    decrease: float = Field(default=0.5, gt=0, lt=1, description="Factor applied on a 429 / 503.")
    max_retry_after: float = Field(
        default=120.0, ge=0, description="Cap on a Retry-After wait (s)."
    )


def rate_limiter(config: RateLimitConfig) -> DomainRateLimiter:
    """The process's shared per-domain limiter for these settings."""
    return shared_limiter(
        RateSettings(
            initial_rate=config.initial_rate,
            min_rate=config.min_rate,
            max_rate=config.max_rate,
            increase=config.increase,
            decrease=config.decrease,
            max_block_seconds=config.max_retry_after,
        )
    )


class FetchConfig(WorkflowConfig):
    """How a page is fetched: what `web_scraper` and `link_crawler` share."""

    follow_redirects: bool = True
    timeout: float = Field(default=30.0, gt=0, description="Seconds per request.")
    user_agent: str = DEFAULT_USER_AGENT
    respect_robots: bool = True
    max_bytes: int = Field(default=5 * 1024 * 1024, ge=1, description="Larger pages are rejected.")
    content_types: list[str] = Field(
        default_factory=lambda: list(HTML_TYPES), description="Media types accepted."
    )
    rate_limit: RateLimitConfig = Field(default_factory=lambda: RateLimitConfig())


class WebScraperConfig(FetchConfig):
    on_reject: OnReject = "filter"
    page_store: str | None = Field(
        default=DEFAULT_FOLDER,
        description="Stage folder where fetched pages are kept and looked up first "
        "(web_content_storage's); null: always fetch.",
    )


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a fetched (or robots-denied) page is not content; `reason` is the short name."""

    reason: str
    detail: str


class PageFetcher:
    """Fetches pages politely (robots.txt, the shared per-domain rate limit) and judges
    them; one per adapter instance, since its HTTP client belongs to the worker's loop."""

    def __init__(self, settings: FetchConfig) -> None:
        self.settings = s = settings
        self.limiter = rate_limiter(s.rate_limit)
        self.robots = RobotsCache(s.user_agent)
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            s = self.settings
            self._client = make_client(
                user_agent=s.user_agent, timeout=s.timeout, follow_redirects=s.follow_redirects
            )
        return self._client

    async def get(self, url: str) -> JsonDict | Rejection:
        """The page as `web_scraper` emits it, or why it is not content.

        Raises `FetchError` on what a retry may cure: network errors, 429, 5xx.
        """
        domain = urlsplit(url).netloc
        client = self._http()
        if self.settings.respect_robots and not await self.robots.allowed(client, url):
            return Rejection("robots", "disallowed by robots.txt")
        await self.limiter.acquire(domain)
        try:
            page = await fetch(client, url, self.settings.max_bytes)
        except httpx.HTTPError as exc:
            msg = f"{url}: {type(exc).__name__}: {exc}"
            raise FetchError(msg) from exc
        if page.status in THROTTLE_STATUSES:
            self.limiter.on_throttled(domain, retry_after_seconds(page.headers.get("retry-after")))
            msg = f"{url}: HTTP {page.status} (throttled; retried after a back-off)"
            raise FetchError(msg)
        if page.status >= 500:
            msg = f"{url}: HTTP {page.status}"
            raise FetchError(msg)
        self.limiter.on_success(domain)
        if rejection := self._rejection(page):
            return rejection
        return {
            "url": url,
            "final_url": page.final_url,
            "html": page.text(),
            "status": page.status,
            "headers": page.headers,
            "content_type": page.media_type,
            "fetched_at": page.fetched_at,
            "elapsed_ms": round(page.elapsed_ms, 3),
        }

    def _rejection(self, page: Fetched) -> Rejection | None:
        if 300 <= page.status < 400:
            return Rejection(
                "redirect", f"HTTP {page.status} to {page.headers.get('location', '?')}"
            )
        if page.status >= 400:
            return Rejection(f"status_{page.status}", f"HTTP {page.status}")
        if page.media_type not in self.settings.content_types:
            return Rejection(
                "content_type", f"content type {page.media_type or 'none'!r} not accepted"
            )
        if page.truncated:
            return Rejection("too_large", f"larger than max_bytes ({self.settings.max_bytes})")
        return None


def reject(
    adapter: str, on_reject: OnReject, context: Context, url: str, rejection: Rejection
) -> list[Message]:
    """What a page that is not content becomes: a `PageRejectedError` (dead-lettered at
    once) or, by default, nothing, logged and counted as `<adapter>.rejected.<reason>`."""
    if on_reject == "dead_letter":
        raise PageRejectedError(url, rejection.reason, rejection.detail)
    context.metrics.add(f"{adapter}.rejected.{rejection.reason}", 1)
    context.logger.info("%s: skipped %s (%s): %s", adapter, url, rejection.reason, rejection.detail)
    return []


def http_url(payload: object, field: str) -> str:
    """The http(s) URL in `payload[field]`; ValueError when there is none."""
    url = payload.get(field) if isinstance(payload, dict) else None
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        msg = f"payload has no http(s) '{field}' (got {url!r})"
        raise PayloadError(msg)
    return url


class WebScraperAdapter(WorkflowAdapter):
    """`{"url": ...}` -> `{"url", "final_url", "html", "status", "headers", "fetched_at",
    "content_type", "elapsed_ms"}`; metadata gets `url` and `domain`."""

    name = "web_scraper"
    config_model = WebScraperConfig

    def __init__(self, config: JsonDict | None = None) -> None:
        super().__init__(config)
        self.settings = WebScraperConfig.model_validate(self.config)
        self.fetcher = PageFetcher(self.settings)

    async def process(self, message: Message, context: Context) -> list[Message]:
        url = http_url(message.payload, "url")
        domain = urlsplit(url).netloc
        folder, storage = self.settings.page_store, context.storage
        key = page_key(context, folder, url) if folder and storage is not None else None
        if key is not None and storage is not None and storage.exists(key):
            # stored before a crash or by an earlier attempt: not fetched again
            context.metrics.add("web_scraper.reused", 1)
            kept = stored_page(storage, key)
            return [message.derive(payload=kept, metadata={"url": url, "domain": domain})]
        page = await self.fetcher.get(url)
        if isinstance(page, Rejection):
            return reject(self.name, self.settings.on_reject, context, url, page)
        context.metrics.add("web_scraper.fetched", 1)
        if key is not None and storage is not None:
            # kept as soon as it is fetched, so a crash later in the batch does not lose it
            await asyncio.to_thread(store_page, storage, key, page, context, self.name)
            page["storage_key"] = key
        return [message.derive(payload=page, metadata={"url": url, "domain": domain})]
