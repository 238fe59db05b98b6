"""Local documents, beyond the seed system: `file_source` (a folder, glob or file -> one
message per file, skipping files unchanged since an earlier execution) and
`pdf_to_markdown` (a PDF's text layer as markdown; pypdf, the `pdf` extra)."""

from factflow.workflows.files.pdf import PdfToMarkdownAdapter
from factflow.workflows.files.source import FileSourceAdapter

__all__ = ["FileSourceAdapter", "PdfToMarkdownAdapter"]
