"""Domain adapter families, registered under the seed system's `type:` strings.

- `webscraper/`: sitemap_parser, url_expander, web_scraper, web_crawler,
  web_content_storage, link_crawler
- `markdown/`: storage_retriever, html_to_markdown, smart_segmenter, segment_publisher,
  markdown_storage_writer
- `embeddings/`: embedding_generator (adapter) and embedding_index (writer)
- `files/`: file_source, pdf_to_markdown (local folders and PDFs, beyond the seed system)

Workflows know no engine, compiler or server: everything comes through the adapter
`Context` (execution, route, stage storage, logger, metrics). `docs/adapters.md` documents
every adapter's config and emitted shape.
"""

from factflow.adapters.base import Adapter
from factflow.workflows.embeddings import INDEX_WRITER, EmbeddingGeneratorAdapter
from factflow.workflows.files import FileSourceAdapter, PdfToMarkdownAdapter
from factflow.workflows.markdown import (
    HtmlToMarkdownAdapter,
    MarkdownStorageWriterAdapter,
    SegmentPublisherAdapter,
    SmartSegmenterAdapter,
    StorageRetrieverAdapter,
)
from factflow.workflows.webscraper import (
    LinkCrawlerAdapter,
    SitemapParserAdapter,
    UrlExpanderAdapter,
    WebContentStorageAdapter,
    WebCrawlerAdapter,
    WebScraperAdapter,
)

WORKFLOW_ADAPTERS: tuple[type[Adapter], ...] = (
    SitemapParserAdapter,
    UrlExpanderAdapter,
    WebScraperAdapter,
    WebCrawlerAdapter,
    WebContentStorageAdapter,
    LinkCrawlerAdapter,
    StorageRetrieverAdapter,
    HtmlToMarkdownAdapter,
    SmartSegmenterAdapter,
    SegmentPublisherAdapter,
    MarkdownStorageWriterAdapter,
    FileSourceAdapter,
    PdfToMarkdownAdapter,
    EmbeddingGeneratorAdapter,
)

WORKFLOW_WRITERS: dict[str, str] = {"embedding_index": INDEX_WRITER}
"""Workflow writers by `sink: {type}`, as dotted paths imported when first resolved."""
