"""robots.txt through protego (scrapy's parser), fetched once per origin and cached.

A robots.txt that is missing (4xx) allows everything, as the convention says; one that
cannot be fetched (network error, 5xx) also allows, and the reason is logged, so an
unreliable robots endpoint never blocks a crawl it does not mean to.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import httpx
from protego import Protego

from factflow.workflows.webscraper.http import fetch

log = logging.getLogger(__name__)

MAX_ROBOTS_BYTES = 512 * 1024


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class RobotsCache:
    """One parsed robots.txt per origin, for the lifetime of the adapter instance."""

    def __init__(self, user_agent: str) -> None:
        self.user_agent = user_agent
        self._rules: dict[str, Protego | None] = {}

    async def allowed(self, client: httpx.AsyncClient, url: str) -> bool:
        origin = origin_of(url)
        if origin not in self._rules:
            self._rules[origin] = await self._load(client, origin)
        rules = self._rules[origin]
        return True if rules is None else bool(rules.can_fetch(url, self.user_agent))

    async def _load(self, client: httpx.AsyncClient, origin: str) -> Protego | None:
        try:
            response = await fetch(client, f"{origin}/robots.txt", MAX_ROBOTS_BYTES)
        except httpx.HTTPError as exc:
            log.warning("robots.txt of %s unreadable (%s): allowing all", origin, exc)
            return None
        if response.status >= 400:
            if response.status >= 500:
                log.warning("robots.txt of %s: HTTP %s, allowing all", origin, response.status)
            return None
        return Protego.parse(response.text())
