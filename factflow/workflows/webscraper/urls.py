"""`url_expander`: one message `{"url": ...}` per URL of a `{"urls": [...]}` message.

Optional `include` / `exclude` regular expressions (searched anywhere in the URL; a URL
must match one include when any is given, and no exclude), and de-duplication: a URL
(fragment dropped) is emitted once per adapter instance, i.e. once per worker within an
execution, across all the lists it sees.
"""

from __future__ import annotations

import re
from urllib.parse import urldefrag

from pydantic import Field, field_validator

from factflow.adapters.base import Context
from factflow.messages import Message
from factflow.types import JsonDict
from factflow.workflows.config import WorkflowAdapter, WorkflowConfig
from factflow.workflows.errors import PayloadError


class UrlPatterns(WorkflowConfig):
    """`include` / `exclude` regular expressions, searched anywhere in a URL."""

    include: list[str] = Field(default_factory=list, description="Keep URLs matching one.")
    exclude: list[str] = Field(default_factory=list, description="Drop URLs matching any.")

    @field_validator("include", "exclude")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                msg = f"invalid regular expression {pattern!r}: {exc}"
                raise ValueError(msg) from exc
        return patterns


class UrlFilter:
    """The compiled `UrlPatterns`: a URL is wanted when it matches one include (if any is
    given) and no exclude."""

    def __init__(self, patterns: UrlPatterns) -> None:
        self._include = [re.compile(p) for p in patterns.include]
        self._exclude = [re.compile(p) for p in patterns.exclude]

    def wanted(self, url: str) -> bool:
        if self._include and not any(p.search(url) for p in self._include):
            return False
        return not any(p.search(url) for p in self._exclude)


class UrlExpanderConfig(UrlPatterns):
    deduplicate: bool = Field(default=True, description="Emit each URL once within the execution.")
    max_urls: int | None = Field(default=None, ge=1, description="Emit at most this many per list.")
    field: str = Field(default="urls", description="Payload field holding the URL list.")


class UrlExpanderAdapter(WorkflowAdapter):
    name = "url_expander"
    config_model = UrlExpanderConfig

    def __init__(self, config: JsonDict | None = None) -> None:
        super().__init__(config)
        self.settings = UrlExpanderConfig.model_validate(self.config)
        self.filter = UrlFilter(self.settings)
        self._seen: set[str] = set()

    def process(self, message: Message, context: Context) -> list[Message]:
        payload = message.payload if isinstance(message.payload, dict) else {}
        urls = payload.get(self.settings.field)
        if not isinstance(urls, list):
            msg = f"payload field '{self.settings.field}' is not a list of URLs"
            raise PayloadError(msg)
        out: list[Message] = []
        for raw in urls:
            if not isinstance(raw, str) or not raw.strip():
                continue
            url = urldefrag(raw.strip()).url
            if not self.filter.wanted(url) or (self.settings.deduplicate and url in self._seen):
                continue
            self._seen.add(url)
            out.append(message.derive(payload={"url": url}, metadata={"url": url}))
            if self.settings.max_urls is not None and len(out) >= self.settings.max_urls:
                break
        return out
