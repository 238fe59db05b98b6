"""The seed system's markdown adapters: `storage_retriever` -> `html_to_markdown` ->
`smart_segmenter` -> `markdown_storage_writer` -> `segment_publisher`."""

from factflow.workflows.markdown.convert import HtmlToMarkdownAdapter
from factflow.workflows.markdown.publish import SegmentPublisherAdapter
from factflow.workflows.markdown.segment import SmartSegmenterAdapter
from factflow.workflows.markdown.storage import (
    MarkdownStorageWriterAdapter,
    StorageRetrieverAdapter,
)

__all__ = [
    "HtmlToMarkdownAdapter",
    "MarkdownStorageWriterAdapter",
    "SegmentPublisherAdapter",
    "SmartSegmenterAdapter",
    "StorageRetrieverAdapter",
]
