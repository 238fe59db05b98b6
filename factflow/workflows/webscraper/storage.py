"""`web_content_storage`: writes a fetched page's HTML to stage storage, its fetch facts
as the object's metadata, and emits `{"storage_key", "url", "content_length"}`.

The key is the input message's id (`.../web_content_storage/<message-id>.html`), which is
deterministic for a replayed message, so a retry or a rerun writes nothing twice.
"""

from __future__ import annotations

from pydantic import Field

from factflow.adapters.base import Context
from factflow.messages import Message
from factflow.types import JsonDict
from factflow.workflows.config import WorkflowAdapter, WorkflowConfig
from factflow.workflows.storage import document_key, require_storage


class WebContentStorageConfig(WorkflowConfig):
    folder: str = Field(
        default="web_content_storage", description="Stage folder of the HTML files."
    )
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
            raise ValueError(msg)
        storage = require_storage(context, self.name)
        key = document_key(context, self.settings.folder, message.message_id, ".html")
        data = html.encode()
        facts = {
            "source-url": url,
            "final-url": payload.get("final_url"),
            "status": payload.get("status"),
            "content-type": payload.get("content_type"),
            "fetched-at": payload.get("fetched_at"),
            "execution-id": context.execution_id,
            "route-id": context.route_id,
            "adapter": self.name,
            "message-id": message.message_id,
        }
        metadata = {k: str(v)[:512] for k, v in facts.items() if v is not None}
        storage.put(key, data, metadata, "text/html; charset=utf-8")
        body: JsonDict = {"storage_key": key, "url": url, "content_length": len(data)}
        if isinstance(payload.get("final_url"), str):
            body["final_url"] = payload["final_url"]
        if self.settings.keep_html:
            body["html"] = html
        return [message.derive(payload=body, metadata={"url": url, "storage_key": key})]
