"""`sitemap_parser`: fetches a sitemap and emits its page URLs as `{"urls": [...]}`.

Follows sitemap indexes (breadth first, each sitemap once), reads gzipped sitemaps (by
their magic bytes, whatever the server says) and plain-text sitemaps, and stops at
`max_urls`. XML is parsed by lxml with entities and network access off. A child sitemap
that fails is reported in `errors` and skipped; the root failing fails the message.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import httpx
from lxml import etree
from pydantic import Field

from factflow.adapters.base import Context
from factflow.messages import Message
from factflow.types import JsonDict
from factflow.workflows.config import WorkflowAdapter, WorkflowConfig
from factflow.workflows.errors import FetchError, PayloadError
from factflow.workflows.webscraper.http import DEFAULT_USER_AGENT, fetch, make_client

_GZIP_MAGIC = b"\x1f\x8b"


class SitemapParserConfig(WorkflowConfig):
    max_urls: int = Field(default=1000, ge=1, description="Stop after this many page URLs.")
    max_sitemaps: int = Field(
        default=100, ge=1, description="Read at most this many sitemap files."
    )
    max_bytes: int = Field(
        50 * 1024 * 1024, ge=1024, description="Largest sitemap file (after gunzip) read."
    )
    timeout: float = Field(default=30.0, gt=0, description="Seconds per sitemap request.")
    user_agent: str = DEFAULT_USER_AGENT
    url_field: str = Field(
        default="sitemap_url", description="Payload field holding the sitemap URL."
    )


@dataclass
class SitemapResult:
    urls: list[str] = field(default_factory=list)
    sitemaps: list[str] = field(default_factory=list)
    errors: list[JsonDict] = field(default_factory=list)


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def decode_sitemap(body: bytes, max_bytes: int) -> bytes:
    """The sitemap's bytes, gunzipped when they are gzip (bounded by `max_bytes`)."""
    if not body.startswith(_GZIP_MAGIC):
        return body
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    data = inflater.decompress(body, max_bytes + 1)
    if len(data) > max_bytes:
        msg = f"gzipped sitemap inflates beyond {max_bytes} bytes"
        raise ValueError(msg)
    return data


def parse_sitemap(data: bytes) -> tuple[list[str], list[str]]:
    """(page URLs, child sitemap URLs) of one sitemap file: XML urlset, sitemapindex, or
    a plain-text list of URLs. Raises ValueError when it is none of these."""
    stripped = data.lstrip()
    if not stripped.startswith(b"<"):
        text = stripped.decode("utf-8", errors="replace")
        urls = [line.strip() for line in text.splitlines() if line.strip().startswith("http")]
        if not urls and stripped:
            msg = "neither XML nor a plain-text list of URLs"
            raise ValueError(msg)
        return urls, []
    parser = etree.XMLParser(resolve_entities=False, no_network=True, recover=False)
    try:
        root = etree.fromstring(stripped, parser=parser)
    except etree.XMLSyntaxError as exc:
        msg = f"invalid sitemap XML: {exc}"
        raise ValueError(msg) from exc
    kind = _local(root.tag)
    if kind not in ("urlset", "sitemapindex"):
        msg = f"root element is <{kind}>, not <urlset> or <sitemapindex>"
        raise ValueError(msg)
    locs = [
        (loc.text or "").strip()
        for entry in root
        if _local(entry.tag) in ("url", "sitemap")
        for loc in entry
        if _local(loc.tag) == "loc"
    ]
    locs = [loc for loc in locs if loc]
    return (locs, []) if kind == "urlset" else ([], locs)


class SitemapParserAdapter(WorkflowAdapter):
    """`{"sitemap_url": ...}` -> `{"urls": [...], "sitemaps": [...], "errors": [...]}`."""

    name = "sitemap_parser"
    config_model = SitemapParserConfig

    def __init__(self, config: JsonDict | None = None) -> None:
        super().__init__(config)
        self.settings = SitemapParserConfig.model_validate(self.config)
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            s = self.settings
            self._client = make_client(
                user_agent=s.user_agent, timeout=s.timeout, follow_redirects=True
            )
        return self._client

    async def process(self, message: Message, context: Context) -> list[Message]:
        payload = message.payload if isinstance(message.payload, dict) else {}
        root = payload.get(self.settings.url_field) or payload.get("url")
        if not isinstance(root, str) or not root:
            msg = f"payload has no '{self.settings.url_field}' (the sitemap's URL)"
            raise PayloadError(msg)
        result = await self.collect(root)
        context.metrics.add("sitemap_parser.urls", len(result.urls))
        body: JsonDict = {"urls": result.urls, "sitemap_url": root, "sitemaps": result.sitemaps}
        if result.errors:
            body["errors"] = result.errors
        return [message.derive(payload=body, metadata={"sitemap_url": root})]

    async def collect(self, root: str) -> SitemapResult:
        s = self.settings
        result = SitemapResult()
        queue, seen, seen_urls = [root], {root}, set()
        while queue and len(result.urls) < s.max_urls and len(result.sitemaps) < s.max_sitemaps:
            current = queue.pop(0)
            try:
                pages, children = await self._read(current)
            except (FetchError, ValueError) as exc:
                if current == root:
                    raise
                result.errors.append({"sitemap": current, "error": str(exc)})
                continue
            result.sitemaps.append(current)
            for url in pages:
                if url not in seen_urls and len(result.urls) < s.max_urls:
                    seen_urls.add(url)
                    result.urls.append(url)
            for child in children:
                if child not in seen:
                    seen.add(child)
                    queue.append(child)
        return result

    async def _read(self, url: str) -> tuple[list[str], list[str]]:
        try:
            response = await fetch(self._http(), url, self.settings.max_bytes)
        except httpx.HTTPError as exc:
            msg = f"sitemap {url}: {type(exc).__name__}: {exc}"
            raise FetchError(msg) from exc
        if response.status != 200:
            msg = f"sitemap {url}: HTTP {response.status}"
            raise FetchError(msg)
        if response.truncated:
            msg = f"sitemap {url} is larger than max_bytes ({self.settings.max_bytes})"
            raise ValueError(msg)
        return parse_sitemap(decode_sitemap(response.body, self.settings.max_bytes))
