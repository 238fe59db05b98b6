"""`html_to_markdown`: main-content extraction and GitHub-flavoured markdown, by trafilatura.

Navigation, footers and cookie banners are dropped; headings, lists, tables, code blocks,
emphasis and links are kept (images with `preserve_images`). Emits `{"markdown",
"front_matter"}`; the front matter holds title, url, language, description and a stable
`document_id` (from the URL, else the content). With `max_tokens` the markdown is cut at
the last whole block that fits and `front_matter.truncated` says so. A page with no main
content is filtered (counted as `html_to_markdown.empty` in the metrics).
"""

from __future__ import annotations

import hashlib
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from pydantic import Field

from factflow.adapters.base import Context
from factflow.messages import Message
from factflow.types import JsonDict
from factflow.workflows.config import WorkflowAdapter, WorkflowConfig
from factflow.workflows.errors import PayloadError
from factflow.workflows.markdown.blocks import split_blocks
from factflow.workflows.markdown.tokens import Tokenizer, count_tokens, get_tokenizer

if TYPE_CHECKING:
    from lxml.html import HtmlElement
    from trafilatura.settings import Document


class HtmlToMarkdownConfig(WorkflowConfig):
    preserve_images: bool = Field(default=False, description="Keep images as ![alt](src).")
    preserve_links: bool = Field(default=True, description="Keep links as [text](href).")
    include_tables: bool = True
    max_tokens: int | None = Field(default=None, ge=1, description="Cut the markdown to fit.")
    encoding: str = Field(default="cl100k_base", description="Tokenizer for max_tokens.")
    tokenizer_file: str | None = Field(default=None, description="A tokenizer.json instead.")
    favor_recall: bool = Field(default=True, description="Rather keep too much than too little.")


def document_id_for(url: str | None, markdown: str) -> str:
    """A stable id: the URL's hash when there is one (a refetch is the same document)."""
    seed = url if url else markdown
    return hashlib.sha256(seed.encode()).hexdigest()[:32]


def page_metadata(tree: HtmlElement) -> Document:
    """Title and description the way `trafilatura.extract_metadata` finds them (meta tags,
    then JSON-LD, then the title heuristics), without the rest of it: its date search
    (htmldate), authors, categories and licence cost as much as the content extraction
    itself and nothing here uses them."""
    from trafilatura.metadata import examine_meta, extract_meta_json, extract_title

    meta = examine_meta(tree)
    with suppress(Exception):  # trafilatura guards its JSON-LD parser the same way
        meta = extract_meta_json(tree, meta)
    if not meta.title:
        meta.title = extract_title(tree)
    meta.clean_and_trim()
    return meta


def html_to_markdown(html: str, config: HtmlToMarkdownConfig) -> tuple[str, JsonDict]:
    """(markdown, page facts: title, description, language) of one HTML page."""
    import trafilatura
    from trafilatura.utils import load_html

    tree = load_html(html)
    if tree is None:
        return "", {}
    meta = page_metadata(tree)
    language = tree.get("lang") or None
    markdown = trafilatura.extract(
        tree,
        output_format="markdown",
        include_formatting=True,
        include_links=config.preserve_links,
        include_images=config.preserve_images,
        include_tables=config.include_tables,
        include_comments=False,
        favor_recall=config.favor_recall,
        deduplicate=False,
    )
    facts: JsonDict = {
        "title": meta.title,
        "description": meta.description,
        "language": language.split("-")[0].lower() if language else None,
    }
    return (markdown or "").strip(), facts


def truncate_blocks(markdown: str, tokenizer: Tokenizer, max_tokens: int) -> tuple[str, bool]:
    """The longest prefix of whole blocks within `max_tokens` (at least the cut first block)."""
    if count_tokens(tokenizer, markdown) <= max_tokens:
        return markdown, False
    kept: list[str] = []
    for block in split_blocks(markdown):
        candidate = "\n\n".join([*kept, block.text])
        if count_tokens(tokenizer, candidate) > max_tokens:
            break
        kept.append(block.text)
    if not kept:
        return tokenizer.decode(tokenizer.encode(markdown)[:max_tokens]), True
    return "\n\n".join(kept), True


class HtmlToMarkdownAdapter(WorkflowAdapter):
    name = "html_to_markdown"
    config_model = HtmlToMarkdownConfig

    def __init__(self, config: JsonDict | None = None) -> None:
        super().__init__(config)
        self.settings = HtmlToMarkdownConfig.model_validate(self.config)

    def process(self, message: Message, context: Context) -> list[Message]:
        payload: Any = message.payload if isinstance(message.payload, dict) else {}
        html = payload.get("html")
        if not isinstance(html, str):
            msg = "payload has no 'html' (the output of web_scraper or storage_retriever)"
            raise PayloadError(msg)
        url = payload.get("final_url") or payload.get("url") or payload.get("source_url")
        url = url if isinstance(url, str) else None
        markdown, facts = html_to_markdown(html, self.settings)
        if not markdown:
            context.metrics.add("html_to_markdown.empty", 1)
            context.logger.info("html_to_markdown: no main content in %s", url or "a page")
            return []
        truncated = False
        s = self.settings
        if s.max_tokens is not None:
            tokenizer = get_tokenizer(s.encoding, s.tokenizer_file)
            markdown, truncated = truncate_blocks(markdown, tokenizer, s.max_tokens)
        front: JsonDict = {"url": url, **facts, "document_id": document_id_for(url, markdown)}
        if truncated:
            front["truncated"] = True
        front = {k: v for k, v in front.items() if v is not None}
        provenance: JsonDict = {k: front[k] for k in ("url", "title", "document_id") if k in front}
        body = {"markdown": markdown, "front_matter": front}
        return [message.derive(payload=body, metadata=provenance)]
