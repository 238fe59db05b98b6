"""`web_crawler`: renders a page's JavaScript in Chromium (Playwright driving the system's
browser) and emits the rendered HTML in `web_scraper`'s shape.

Playwright's own browser download is not used: the adapter starts the Chromium the
system has (`apt-get install chromium`; `executable_path` or `FACTFLOW_CHROMIUM` point
elsewhere). One browser per adapter instance, i.e. per worker, started on the worker's
event loop at the first message; up to `pages` browser pages are kept open and reused;
the browser is closed when the worker process exits. Politeness is `web_scraper`'s:
robots.txt before any navigation, the shared per-domain rate limit on navigations.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import Field

from factflow.adapters.base import Context
from factflow.exceptions import NonRetryableError
from factflow.extras import Extra
from factflow.messages import Message
from factflow.types import ConfigProblem, JsonDict
from factflow.workflows.config import WorkflowAdapter, WorkflowConfig
from factflow.workflows.errors import FetchError, WorkflowError
from factflow.workflows.webscraper.http import DEFAULT_USER_AGENT, make_client, retry_after_seconds
from factflow.workflows.webscraper.robots import RobotsCache
from factflow.workflows.webscraper.scraper import (
    HTML_TYPES,
    THROTTLE_STATUSES,
    OnReject,
    RateLimitConfig,
    Rejection,
    http_url,
    rate_limiter,
    reject,
)

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, Page, Playwright

BROWSER = Extra("browser", ("playwright",))
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def find_chromium(configured: str | None = None) -> str | None:
    """The Chromium to start: `configured`, else FACTFLOW_CHROMIUM, else the system's."""
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    candidates = [os.environ.get("FACTFLOW_CHROMIUM"), *CHROMIUM_CANDIDATES]
    candidates += [shutil.which("chromium"), shutil.which("chromium-browser")]
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


class BrowserUnavailableError(WorkflowError, NonRetryableError):
    """web_crawler cannot start a browser: Chromium (or the playwright package) is missing.

    Install them: `apt-get install chromium` and `pip install 'factflow[browser]'`, or set
    the adapter's `executable_path` (or FACTFLOW_CHROMIUM) to a Chromium binary.
    """


class WebCrawlerConfig(WorkflowConfig):
    wait_for_selector: str | None = Field(
        default=None, description="CSS selector to wait for after the page loaded."
    )
    timeout: float = Field(default=60.0, gt=0, description="Seconds for load and selector.")
    wait_until: Literal["commit", "domcontentloaded", "load", "networkidle"] = "load"
    user_agent: str = DEFAULT_USER_AGENT
    respect_robots: bool = True
    max_bytes: int = Field(default=5 * 1024 * 1024, ge=1, description="Larger pages are rejected.")
    content_types: list[str] = Field(
        default_factory=lambda: list(HTML_TYPES), description="Media types accepted."
    )
    on_reject: OnReject = "filter"
    pages: int = Field(default=4, ge=1, le=32, description="Browser pages kept open and reused.")
    executable_path: str | None = Field(default=None, description="The Chromium binary.")
    rate_limit: RateLimitConfig = Field(default_factory=lambda: RateLimitConfig())


class _Browser:
    """One Chromium and its pool of pages, owned by the event loop that started it."""

    def __init__(self, settings: WebCrawlerConfig) -> None:
        self.settings = settings
        self._lock = asyncio.Lock()
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._context: BrowserContext | None = None
        self._idle: list[Page] = []
        self._available: asyncio.Semaphore = asyncio.Semaphore(settings.pages)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def _start(self) -> BrowserContext:
        async with self._lock:
            if self._context is not None:
                return self._context
            try:
                from playwright.async_api import async_playwright
            except ImportError as exc:
                msg = f"web_crawler needs the playwright package: {BROWSER.install}"
                raise BrowserUnavailableError(msg) from exc
            executable = find_chromium(self.settings.executable_path)
            if executable is None:
                msg = (
                    "web_crawler found no Chromium: `apt-get install chromium`, or set "
                    "executable_path (or FACTFLOW_CHROMIUM) to the browser's binary"
                )
                raise BrowserUnavailableError(msg)
            self._playwright = await async_playwright().start()
            # --no-sandbox: Chromium refuses to run as root with its sandbox
            self._browser = await self._playwright.chromium.launch(
                executable_path=executable,
                headless=True,
                args=["--no-sandbox", "--disable-dev-shm-usage"],
            )
            self._context = await self._browser.new_context(user_agent=self.settings.user_agent)
            self._loop = asyncio.get_running_loop()
            atexit.register(self._close_at_exit)
            return self._context

    @asynccontextmanager
    async def page(self) -> AsyncIterator[Page]:
        """A browser page for one render, reused afterwards unless the render broke it."""
        context = await self._start()
        async with self._available:
            page = self._idle.pop() if self._idle else await context.new_page()
            healthy = False
            try:
                yield page
                healthy = True
            finally:
                if healthy and not page.is_closed():
                    self._idle.append(page)
                else:
                    with suppress(Exception):
                        await page.close()

    async def close(self) -> None:
        if self._browser is not None:
            with suppress(Exception):
                await self._browser.close()
        if self._playwright is not None:
            with suppress(Exception):
                await self._playwright.stop()
        self._browser = self._playwright = self._context = None
        self._idle.clear()

    def _close_at_exit(self) -> None:
        # the worker's loop runs in a daemon thread that is still alive during atexit
        loop = self._loop
        if loop is not None and loop.is_running():
            with suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.close(), loop).result(timeout=10)


class WebCrawlerAdapter(WorkflowAdapter):
    """`{"url": ...}` -> `web_scraper`'s payload with the rendered HTML, plus
    `"rendered": true`; metadata gets `url` and `domain`."""

    name = "web_crawler"
    config_model = WebCrawlerConfig

    def __init__(self, config: JsonDict | None = None) -> None:
        super().__init__(config)
        self.settings = WebCrawlerConfig.model_validate(self.config)
        self.limiter = rate_limiter(self.settings.rate_limit)
        self.robots = RobotsCache(self.settings.user_agent)
        self._browser: _Browser | None = None
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def check_config(cls, config: JsonDict) -> list[ConfigProblem]:
        problems = super().check_config(config)
        module = BROWSER.missing()
        if module is not None:
            problems.append(
                ConfigProblem(
                    path=(),
                    code="E407",
                    message=f"web_crawler needs the Python package {module!r}, not installed",
                    suggestion=f"{BROWSER.install}, and apt-get install chromium",
                )
            )
        return problems

    async def process(self, message: Message, context: Context) -> list[Message]:
        url = http_url(message.payload, "url")
        page = await self.render(url)
        if isinstance(page, Rejection):
            return reject(self.name, self.settings.on_reject, context, url, page)
        context.metrics.add("web_crawler.rendered", 1)
        domain = urlsplit(url).netloc
        return [message.derive(payload=page, metadata={"url": url, "domain": domain})]

    async def render(self, url: str) -> JsonDict | Rejection:
        """The rendered page, or why it is not content; `FetchError` when worth a retry."""
        from playwright.async_api import Error as PlaywrightError

        s = self.settings
        if self._client is None:
            self._client = make_client(
                user_agent=s.user_agent, timeout=s.timeout, follow_redirects=True
            )
        if s.respect_robots and not await self.robots.allowed(self._client, url):
            return Rejection("robots", "disallowed by robots.txt")
        if self._browser is None:
            self._browser = _Browser(s)
        domain = urlsplit(url).netloc
        timeout_ms = s.timeout * 1000
        await self.limiter.acquire(domain)
        started = time.perf_counter()
        async with self._browser.page() as page:
            try:
                response = await page.goto(url, wait_until=s.wait_until, timeout=timeout_ms)
            except PlaywrightError as exc:
                msg = f"{url}: {exc.message.splitlines()[0] if exc.message else exc}"
                raise FetchError(msg) from exc
            if response is None:
                msg = f"{url}: the browser reported no response"
                raise FetchError(msg)
            status = response.status
            headers = await response.all_headers()
            if status in THROTTLE_STATUSES:
                self.limiter.on_throttled(domain, retry_after_seconds(headers.get("retry-after")))
                msg = f"{url}: HTTP {status} (throttled; retried after a back-off)"
                raise FetchError(msg)
            if status >= 500:
                msg = f"{url}: HTTP {status}"
                raise FetchError(msg)
            self.limiter.on_success(domain)
            media_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if rejection := _rejection(status, media_type, s):
                return rejection
            if s.wait_for_selector:
                try:
                    await page.wait_for_selector(s.wait_for_selector, timeout=timeout_ms)
                except PlaywrightError as exc:
                    msg = f"{url}: {s.wait_for_selector!r} did not appear within {s.timeout:g} s"
                    raise FetchError(msg) from exc
            html = await page.content()
            final_url = page.url
        if len(html.encode()) > s.max_bytes:
            return Rejection("too_large", f"larger than max_bytes ({s.max_bytes})")
        return {
            "url": url,
            "final_url": final_url,
            "html": html,
            "status": status,
            "headers": headers,
            "content_type": media_type,
            "fetched_at": datetime.now(UTC).isoformat(),
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 3),
            "rendered": True,
        }


def _rejection(status: int, media_type: str, settings: WebCrawlerConfig) -> Rejection | None:
    if status >= 400:
        return Rejection(f"status_{status}", f"HTTP {status}")
    if media_type not in settings.content_types:
        return Rejection("content_type", f"content type {media_type or 'none'!r} not accepted")
    return None
