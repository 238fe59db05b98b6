"""`pdf_to_markdown`: a PDF's text layer as markdown, headings found by font size (pypdf).

pypdf (the `pdf` extra) reads the text of each page with the size it is drawn at; the size
most of the text has is the body's, and lines drawn clearly larger (`heading_ratio`) and
short enough to be titles become headings, the largest size `#`, the next `##` and so on.
Body lines are joined into paragraphs (a wider gap between lines, or a new page, starts
the next; a word hyphenated at a line end is joined again). Emits `html_to_markdown`'s
shape, `{"markdown", "front_matter"}`, so `smart_segmenter` and the writers follow it
unchanged. A PDF without a text layer (a scan) is filtered and counted as
`pdf_to_markdown.empty`: OCR is not attempted.
"""

from __future__ import annotations

import io
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from factflow.adapters.base import Context
from factflow.extras import PDF
from factflow.messages import Message
from factflow.types import ConfigProblem, JsonDict
from factflow.workflows.config import WorkflowAdapter, WorkflowConfig
from factflow.workflows.errors import DocumentError
from factflow.workflows.markdown.convert import document_id_for

MAX_HEADING_LEVEL = 3


class PdfToMarkdownConfig(WorkflowConfig):
    path_field: str = Field(default="path", description="Payload field with the PDF's path.")
    max_pages: int | None = Field(default=None, ge=1, description="Read at most this many pages.")
    heading_ratio: float = Field(
        default=1.15, ge=1.0, description="Lines this much larger than the body are headings."
    )
    max_heading_chars: int = Field(
        default=120, ge=1, description="Longer lines are never headings."
    )


@dataclass
class _Line:
    page: int
    y: float
    size: float = 0.0
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join("".join(self.parts).split())


def _page_lines(page: Any, index: int) -> list[_Line]:
    """The page's text lines with the size each is drawn at (its largest run's)."""
    lines: list[_Line] = []
    current: _Line | None = None

    def visit(text: str, cm: list[float], tm: list[float], _font: Any, size: float) -> None:
        nonlocal current
        # the text matrix times the current transformation: where and how large it lands
        a, b, c, d, _e, f = tm
        m = [
            a * cm[0] + b * cm[2],
            a * cm[1] + b * cm[3],
            c * cm[0] + d * cm[2],
            c * cm[1] + d * cm[3],
            0.0,
            tm[4] * cm[1] + f * cm[3] + cm[5],
        ]
        effective = size * (math.hypot(m[2], m[3]) or 1.0)
        for i, chunk in enumerate(text.split("\n")):
            if i:
                current = None  # a newline ends the line
            if not chunk.strip():
                continue
            if current is None:
                current = _Line(index, m[5])
                lines.append(current)
            current.parts.append(chunk)
            current.size = max(current.size, effective)

    page.extract_text(visitor_text=visit)
    return [line for line in lines if line.text]


def _heading_levels(lines: list[_Line], ratio: float, max_chars: int) -> dict[float, int]:
    """Heading level by (rounded) size: sizes clearly above the body's, largest first."""
    chars: Counter[float] = Counter()
    for line in lines:
        chars[round(line.size, 1)] += len(line.text)
    if not chars:
        return {}
    body = chars.most_common(1)[0][0]
    large = {round(ln.size, 1) for ln in lines if ln.size >= body * ratio}
    titles = {round(ln.size, 1) for ln in lines if len(ln.text) <= max_chars}
    sizes = sorted(large & titles, reverse=True)
    return {size: min(i + 1, MAX_HEADING_LEVEL) for i, size in enumerate(sizes)}


def _join(paragraph: list[str]) -> str:
    text = paragraph[0]
    for line in paragraph[1:]:
        hyphenated = text.endswith("-") and line[:1].islower()  # a word cut at the line's end
        text = text[:-1] + line if hyphenated else f"{text} {line}"
    return text


def lines_to_markdown(lines: list[_Line], ratio: float, max_chars: int) -> str:
    """Headings and paragraphs from the lines of every page, in reading order."""
    levels = _heading_levels(lines, ratio, max_chars)
    blocks: list[str] = []
    paragraph: list[str] = []
    previous: _Line | None = None

    def flush() -> None:
        if paragraph:
            blocks.append(_join(paragraph))
            paragraph.clear()

    for line in lines:
        level = levels.get(round(line.size, 1)) if len(line.text) <= max_chars else None
        if level is not None:
            flush()
            blocks.append(f"{'#' * level} {line.text}")
        else:
            gap = previous is not None and (
                previous.page != line.page or previous.y - line.y > 1.8 * line.size
            )
            if gap or (previous is not None and levels.get(round(previous.size, 1))):
                flush()
            paragraph.append(line.text)
        previous = line
    flush()
    return "\n\n".join(blocks)


def pdf_to_markdown(data: bytes, settings: PdfToMarkdownConfig) -> tuple[str, JsonDict]:
    """(markdown, facts: title, pages) of one PDF; `DocumentError` when it cannot be read."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            msg = "the PDF is encrypted with a password"
            raise DocumentError(msg)
        pages = list(reader.pages)[: settings.max_pages]
        lines = [line for i, page in enumerate(pages) for line in _page_lines(page, i)]
        info = reader.metadata
        title = info.title if info is not None else None
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        msg = f"not a readable PDF: {type(exc).__name__}: {exc}"
        raise DocumentError(msg) from exc
    markdown = lines_to_markdown(lines, settings.heading_ratio, settings.max_heading_chars)
    facts: JsonDict = {"title": str(title).strip() or None if title else None, "pages": len(pages)}
    return markdown, facts


def _first_heading(markdown: str) -> str | None:
    headings = (ln.lstrip("#").strip() for ln in markdown.splitlines() if ln.startswith("#"))
    return next(headings, None)


class PdfToMarkdownAdapter(WorkflowAdapter):
    """`{"path": FILE.pdf, ...}` (what `file_source` emits) -> `{"markdown", "front_matter"}`."""

    name = "pdf_to_markdown"
    config_model = PdfToMarkdownConfig

    def __init__(self, config: JsonDict | None = None) -> None:
        super().__init__(config)
        self.settings = PdfToMarkdownConfig.model_validate(self.config)

    @classmethod
    def check_config(cls, config: JsonDict) -> list[ConfigProblem]:
        problems = super().check_config(config)
        module = PDF.missing()
        if module is not None:
            problems.append(
                ConfigProblem(
                    path=(),
                    code="E407",
                    message=f"pdf_to_markdown needs the Python package {module!r}, not installed",
                    suggestion=f"{PDF.install} (or 'factflow[all]')",
                )
            )
        return problems

    def process(self, message: Message, context: Context) -> list[Message]:
        payload = message.payload if isinstance(message.payload, dict) else {}
        path = payload.get(self.settings.path_field)
        if not isinstance(path, str) or not path:
            msg = f"pdf_to_markdown: payload has no '{self.settings.path_field}' (a PDF's path)"
            raise DocumentError(msg)
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            msg = f"pdf_to_markdown: cannot read {path}: {exc.strerror or exc}"
            raise DocumentError(msg) from exc
        try:
            markdown, facts = pdf_to_markdown(data, self.settings)
        except DocumentError as exc:
            msg = f"pdf_to_markdown: {path}: {exc}"
            raise DocumentError(msg) from exc
        url = payload.get("url")
        url = url if isinstance(url, str) else Path(path).absolute().as_uri()
        if not markdown:
            context.metrics.add("pdf_to_markdown.empty", 1)
            context.logger.info("pdf_to_markdown: no text layer in %s (OCR is not done)", path)
            return []
        title = facts["title"] or _first_heading(markdown) or Path(path).stem
        front: JsonDict = {
            "url": url,
            "title": title,
            "document_id": document_id_for(url, markdown),
            "pages": facts["pages"],
            "path": payload.get("relative_path") or path,
        }
        provenance: JsonDict = {k: front[k] for k in ("url", "title", "document_id")}
        body = {"markdown": markdown, "front_matter": front}
        return [message.derive(payload=body, metadata=provenance)]
