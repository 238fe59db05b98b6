"""The HTTP client the webscraper adapters share: one `httpx.AsyncClient` per adapter
instance (adapters are per worker thread, each with its own event loop), HTTP/2 and
connection reuse, and a bounded read so a huge response cannot exhaust memory."""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

DEFAULT_USER_AGENT = "factflow-webscraper/0.1 (+https://github.com/factflow)"


def make_client(*, user_agent: str, timeout: float, follow_redirects: bool) -> httpx.AsyncClient:
    """A client with HTTP/2 (h2 is installed with httpx[http2]) and pooled connections."""
    return httpx.AsyncClient(
        http2=True,
        timeout=httpx.Timeout(timeout),
        follow_redirects=follow_redirects,
        headers={"User-Agent": user_agent},
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
    )


@dataclass(frozen=True, slots=True)
class Fetched:
    """One response, its body read up to the limit. `truncated` when the body was longer."""

    url: str
    final_url: str
    status: int
    headers: dict[str, str]
    body: bytes
    truncated: bool
    encoding: str | None
    fetched_at: str
    elapsed_ms: float

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def text(self) -> str:
        return self.body.decode(self.encoding or "utf-8", errors="replace")


async def fetch(client: httpx.AsyncClient, url: str, max_bytes: int) -> Fetched:
    """GET `url`, reading at most `max_bytes` of its body.

    Raises `httpx.HTTPError` on network errors and timeouts; any status is returned.
    A declared Content-Length over the limit is not read at all.
    """
    started = time.perf_counter()
    async with client.stream("GET", url) as response:
        headers = {k.lower(): v for k, v in response.headers.items()}
        body = bytearray()
        truncated = False
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            truncated = True
        else:
            async for chunk in response.aiter_bytes():
                body.extend(chunk)
                if len(body) > max_bytes:
                    truncated = True
                    break
        return Fetched(
            url=url,
            final_url=str(response.url),
            status=response.status_code,
            headers=headers,
            body=bytes(body[:max_bytes]),
            truncated=truncated,
            encoding=response.charset_encoding,
            fetched_at=datetime.now(UTC).isoformat(),
            elapsed_ms=(time.perf_counter() - started) * 1000,
        )


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) as seconds from now; None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
