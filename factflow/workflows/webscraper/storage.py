"""`web_content_storage`: writes a fetched page's HTML to stage storage, its fetch facts
as the object's metadata, and emits `{"storage_key", "url", "content_length"}`.

The key comes from the page's URL (`.../web_content_storage/<sha256 of the URL>.html`,
within the execution and route), so a retry, a replay after a crash or a rerun writes
nothing twice. `web_scraper` keeps the pages it fetches under the same key (its
`page_store`) and looks there before fetching, so a page stored before a crash is not
fetched again; `web_content_storage` then finds it stored and only emits the reference.
"""

from __future__ import annotations

import hashlib

from pydantic import Field

from factflow.adapters.base import Context
from factflow.messages import Message
from factflow.storage import StageStorage
from factflow.types import JsonDict
from factflow.workflows.config import WorkflowAdapter, WorkflowConfig
from factflow.workflows.errors import PayloadError
from factflow.workflows.storage import document_key, require_storage

DEFAULT_FOLDER = "web_content_storage"
HTML_TYPE = "text/html; charset=utf-8"


def page_key(context: Context, folder: str, url: str) -> str:
    """Where the page at `url` is kept in this execution and route."""
    name = hashlib.sha256(url.encode()).hexdigest()[:32]
    return document_key(context, folder, name, ".html")


def store_page(
    storage: StageStorage, key: str, page: JsonDict, context: Context, adapter: str
) -> int:
    """Write a `web_scraper` payload's HTML and fetch facts under `key`; its length."""
    data = str(page["html"]).encode()
    facts = {
        "source-url": page.get("url"),
        "final-url": page.get("final_url"),
        "status": page.get("status"),
        "content-type": page.get("content_type"),
        "fetched-at": page.get("fetched_at"),
        "execution-id": context.execution_id,
        "route-id": context.route_id,
        "adapter": adapter,
    }
    metadata = {k: str(v)[:512] for k, v in facts.items() if v is not None}
    storage.put(key, data, metadata, HTML_TYPE)
    return len(data)


def stored_page(storage: StageStorage, key: str) -> JsonDict:
    """A page `store_page` wrote, back in `web_scraper`'s shape (of its headers only the
    content type is kept)."""
    facts = storage.metadata(key)
    content_type = facts.get("content-type", "text/html")
    url = facts.get("source-url", "")
    return {
        "url": url,
        "final_url": facts.get("final-url", url),
        "html": storage.get(key).decode("utf-8", errors="replace"),
        "status": int(facts.get("status", "200")),
        "headers": {"content-type": content_type},
        "content_type": content_type,
        "fetched_at": facts.get("fetched-at"),
        "elapsed_ms": 0.0,
        "storage_key": key,
    }


class WebContentStorageConfig(WorkflowConfig):
    folder: str = Field(default=DEFAULT_FOLDER, description="Stage folder of the HTML files.")
    keep_html: bool = Field(default=False, description="Also pass the HTML on in the payload.")


class WebContentStorageAdapter(WorkflowAdapter):
    name = "web_content_storage"
    config_model = WebContentStorageConfig

    def __init__(self, config: JsonDict | None = None) -> None:
        super().__init__(config)
        self.settings = WebContentStorageConfig.model_validate(self.config)

    def process(self, message: Message, context: Context) -> list[Message]:
        payload = message.payload if isinstance(message.payload, dict) else {}
        html = payload.get("html")
        url = payload.get("url")
        if not isinstance(html, str) or not isinstance(url, str):
            msg = "payload needs 'html' and 'url' (the output of web_scraper or web_crawler)"
            raise PayloadError(msg)
        storage = require_storage(context, self.name)
        key = page_key(context, self.settings.folder, url)
        if payload.get("storage_key") == key or storage.exists(key):
            length = len(html.encode())  # web_scraper's page store wrote it already
        else:
            length = store_page(storage, key, payload, context, self.name)
        body: JsonDict = {"storage_key": key, "url": url, "content_length": length}
        if isinstance(payload.get("final_url"), str):
            body["final_url"] = payload["final_url"]
        if self.settings.keep_html:
            body["html"] = html
        return [message.derive(payload=body, metadata={"url": url, "storage_key": key})]
