"""`storage_retriever` and `markdown_storage_writer`: reading a stored page back, and
keeping the canonical markdown and its segments in stage storage.

`storage_retriever` takes `{"storage_key"}` (what `web_content_storage` emits) and emits
`{"html", "source_key", "source_url"}`, the URL from the object's metadata.

`markdown_storage_writer` writes `<document_id>.md` (YAML front matter, then the markdown)
and, when the payload has segments, `<document_id>.segments.json`, under
`executions/<execution>/<route>/<folder>/`. `merge_strategy` says what happens when a
document is seen again in the execution (the same URL fetched twice): `keep_first` keeps
what is stored (storage is first-write-wins; the default), `version` stores the changed
content beside it as `<document_id>.<content-hash>.md`. It emits its input plus
`markdown_key` and `segments_key`.
"""

from __future__ import annotations

import asyncio
import json
from enum import StrEnum
from typing import Any

import yaml
from pydantic import Field

from factflow.adapters.base import Context
from factflow.messages import Message, content_hash
from factflow.storage import StageStorage
from factflow.types import JsonDict
from factflow.workflows.config import WorkflowAdapter, WorkflowConfig
from factflow.workflows.errors import PayloadError
from factflow.workflows.storage import document_key, require_storage


class StorageRetrieverConfig(WorkflowConfig):
    key_field: str = Field(default="storage_key", description="Payload field with the key.")


class StorageRetrieverAdapter(WorkflowAdapter):
    name = "storage_retriever"
    config_model = StorageRetrieverConfig

    def __init__(self, config: JsonDict | None = None) -> None:
        super().__init__(config)
        self.settings = StorageRetrieverConfig.model_validate(self.config)

    def process(self, message: Message, context: Context) -> list[Message]:
        payload = message.payload if isinstance(message.payload, dict) else {}
        key = payload.get(self.settings.key_field)
        if not isinstance(key, str) or not key:
            msg = f"payload has no '{self.settings.key_field}' (a stage storage key)"
            raise PayloadError(msg)
        storage = require_storage(context, self.name)
        html = storage.get(key).decode("utf-8", errors="replace")
        facts = storage.metadata(key)
        url = facts.get("source-url") or payload.get("url")
        body: JsonDict = {"html": html, "source_key": key, "source_url": url}
        final_url = facts.get("final-url") or payload.get("final_url")
        if isinstance(final_url, str):
            body["final_url"] = final_url
        return [message.derive(payload=body, metadata={"url": url} if url else None)]


class MergeStrategy(StrEnum):
    KEEP_FIRST = "keep_first"
    VERSION = "version"


class MarkdownStorageConfig(WorkflowConfig):
    folder: str = Field(default="markdown", description="Stage folder of the documents.")
    merge_strategy: MergeStrategy = MergeStrategy.KEEP_FIRST
    store_segments: bool = True


def render_document(markdown: str, front_matter: JsonDict) -> str:
    """The canonical document: YAML front matter between `---` lines, then the markdown."""
    if not front_matter:
        return markdown + "\n"
    head = yaml.safe_dump(front_matter, allow_unicode=True, sort_keys=False).strip()
    return f"---\n{head}\n---\n\n{markdown}\n"


class MarkdownStorageWriterAdapter(WorkflowAdapter):
    name = "markdown_storage_writer"
    config_model = MarkdownStorageConfig

    def __init__(self, config: JsonDict | None = None) -> None:
        super().__init__(config)
        self.settings = MarkdownStorageConfig.model_validate(self.config)

    async def process(self, message: Message, context: Context) -> list[Message]:
        payload: Any = message.payload if isinstance(message.payload, dict) else {}
        markdown = payload.get("markdown")
        if not isinstance(markdown, str):
            msg = "payload has no 'markdown' (the output of html_to_markdown)"
            raise PayloadError(msg)
        storage = require_storage(context, self.name)
        # the durable writes (two fsynced objects) run off the worker's thread, so the
        # messages of a batch write at once instead of one fsync after another
        body = await asyncio.to_thread(self._write, storage, payload, markdown, context)
        return [message.derive(payload=body)]

    def _write(
        self, storage: StageStorage, payload: JsonDict, markdown: str, context: Context
    ) -> JsonDict:
        given = payload.get("front_matter")
        front: JsonDict = given if isinstance(given, dict) else {}
        document_id = str(front.get("document_id") or content_hash(markdown)[:32])
        name = document_id
        doc_key = document_key(context, self.settings.folder, name, ".md")
        document = render_document(markdown, front).encode()
        versioned = self.settings.merge_strategy is MergeStrategy.VERSION
        if versioned and storage.exists(doc_key) and storage.get(doc_key) != document:
            name = f"{document_id}.{content_hash(markdown)[:12]}"
            doc_key = document_key(context, self.settings.folder, name, ".md")
        metadata = {
            "source-url": str(front.get("url", ""))[:512],
            "document-id": document_id,
            "execution-id": context.execution_id,
            "route-id": context.route_id,
            "adapter": self.name,
        }
        metadata = {k: v for k, v in metadata.items() if v}
        storage.put(doc_key, document, metadata, "text/markdown; charset=utf-8")
        body = {**payload, "markdown_key": doc_key}
        segments = payload.get("segments")
        if self.settings.store_segments and isinstance(segments, list):
            seg_key = document_key(context, self.settings.folder, name, ".segments.json")
            data = json.dumps(segments, ensure_ascii=False).encode()
            storage.put(seg_key, data, metadata, "application/json")
            body["segments_key"] = seg_key
        return body
