"""`smart_segmenter`: token-aware segments that respect headings, paragraphs and code.

A heading starts a new segment (its line opens the segment's text, and `heading_path`
names it and its parents); within a section whole blocks are packed up to `max_tokens`;
a block too big on its own is split at sentences (text) or lines (code, each part fenced
again), and only a sentence longer than the budget is cut at token boundaries. A segment
that continues a section starts with the last `overlap_tokens` tokens of the previous one
(never inside code). Every `token_count` is exact for the configured tokenizer, and never
above `max_tokens`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import Field, model_validator

from factflow.adapters.base import Context
from factflow.messages import Message
from factflow.types import JsonDict
from factflow.workflows.config import WorkflowAdapter, WorkflowConfig
from factflow.workflows.errors import PayloadError
from factflow.workflows.markdown.blocks import Block, split_blocks
from factflow.workflows.markdown.tokens import Tokenizer, count_tokens, get_tokenizer

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class SmartSegmenterConfig(WorkflowConfig):
    max_tokens: int = Field(default=512, ge=16, description="Largest segment, in tokens.")
    overlap_tokens: int = Field(default=50, ge=0, description="Carried into the next segment.")
    min_tokens: int = Field(default=0, ge=0, description="Drop segments smaller than this.")
    encoding: str = Field(default="cl100k_base", description="Bundled tiktoken encoding.")
    tokenizer_file: str | None = Field(
        default=None, description="A Hugging Face tokenizer.json (e.g. the embedding model's)."
    )

    @model_validator(mode="after")
    def _overlap_fits(self) -> SmartSegmenterConfig:
        if self.overlap_tokens * 2 > self.max_tokens:
            msg = "overlap_tokens must be at most half of max_tokens"
            raise ValueError(msg)
        return self


@dataclass(frozen=True, slots=True)
class Segment:
    text: str
    token_count: int
    heading_path: tuple[str, ...]

    def to_dict(self, index: int) -> JsonDict:
        return {
            "text": self.text,
            "token_count": self.token_count,
            "heading_path": list(self.heading_path),
            "index": index,
        }


@dataclass
class _Piece:
    text: str
    is_code: bool


class Segmenter:
    def __init__(self, tokenizer: Tokenizer, max_tokens: int, overlap_tokens: int) -> None:
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.overlap = overlap_tokens

    def count(self, text: str) -> int:
        return count_tokens(self.tokenizer, text)

    def segments(self, markdown: str) -> list[Segment]:
        out: list[Segment] = []
        for path, heading, blocks in _sections(split_blocks(markdown)):
            out.extend(self._section(path, heading, blocks))
        return out

    def _section(
        self, path: tuple[str, ...], heading: str | None, blocks: list[Block]
    ) -> list[Segment]:
        # pieces leave room for the overlap a continuation segment starts with
        budget = self.max_tokens - self.overlap
        pieces = [p for block in blocks for p in self._pieces(block, budget)]
        if heading is not None:
            if pieces and self.count(f"{heading}\n\n{pieces[0].text}") <= budget:
                pieces[0] = _Piece(f"{heading}\n\n{pieces[0].text}", pieces[0].is_code)
            else:
                pieces.insert(0, _Piece(heading, False))
        texts: list[str] = []
        current: list[_Piece] = []
        for piece in pieces:
            if current and self.count(_join([*current, piece])) > self.max_tokens:
                texts.append(_join(current))
                tail = self._tail(current[-1])
                current = (
                    [tail] if tail and self.count(_join([tail, piece])) <= self.max_tokens else []
                )
            current.append(piece)
        if current:
            texts.append(_join(current))
        return [Segment(t, self.count(t), path) for t in texts]

    def _tail(self, last: _Piece) -> _Piece | None:
        if self.overlap == 0 or last.is_code:
            return None
        ids = self.tokenizer.encode(last.text)
        text = self.tokenizer.decode(ids[-self.overlap :]) if len(ids) > self.overlap else last.text
        # start at a word, not inside one
        if len(ids) > self.overlap and " " in text:
            text = text.split(" ", 1)[1]
        text = text.strip()
        return _Piece(text, False) if text else None

    def _pieces(self, block: Block, budget: int) -> list[_Piece]:
        if self.count(block.text) <= budget:
            return [_Piece(block.text, block.kind == "code")]
        if block.kind == "code":
            return self._code_pieces(block.text, budget)
        parts: list[str] = []
        for sentence in _SENTENCE_END.split(block.text):
            if self.count(sentence) > budget:
                parts.extend(self._cut(sentence, budget))
            else:
                parts.append(sentence)
        return [_Piece(t, False) for t in _pack(parts, " ", budget, self.count)]

    def _code_pieces(self, code: str, budget: int) -> list[_Piece]:
        lines = code.split("\n")
        opening = lines[0]
        fence = opening.strip()[:3]
        closed = len(lines) > 1 and lines[-1].strip().startswith(fence)
        body = lines[1:-1] if closed else lines[1:]
        inner = budget - self.count(f"{opening}\n\n{fence}")
        parts: list[str] = []
        for line in body:
            parts.extend(self._cut(line, inner) if self.count(line) > inner else [line])
        return [
            _Piece(f"{opening}\n{t}\n{fence}", True) for t in _pack(parts, "\n", inner, self.count)
        ]

    def _cut(self, text: str, budget: int) -> list[str]:
        """Token-boundary cuts, each re-checked (decoding may merge tokens differently)."""
        ids = self.tokenizer.encode(text)
        out: list[str] = []
        step = max(1, budget)
        start = 0
        while start < len(ids):
            size = step
            while (
                size > 1 and self.count(self.tokenizer.decode(ids[start : start + size])) > budget
            ):
                size -= 1
            out.append(self.tokenizer.decode(ids[start : start + size]))
            start += size
        return [t for t in out if t.strip()]


def _join(pieces: list[_Piece]) -> str:
    return "\n\n".join(p.text for p in pieces)


def _pack(parts: list[str], sep: str, budget: int, count: Any) -> list[str]:
    out: list[str] = []
    current: list[str] = []
    for part in parts:
        if current and count(sep.join([*current, part])) > budget:
            out.append(sep.join(current))
            current = []
        current.append(part)
    if current:
        out.append(sep.join(current))
    return out


def _sections(blocks: list[Block]) -> list[tuple[tuple[str, ...], str | None, list[Block]]]:
    """(heading path, heading line, content blocks) per section; a heading with no content
    of its own (a title right above a subheading) makes no section: its path lives on."""
    sections: list[tuple[tuple[str, ...], str | None, list[Block]]] = []
    path: tuple[str, ...] = ()
    heading: str | None = None
    content: list[Block] = []
    for block in blocks:
        if block.kind == "heading":
            if content:
                sections.append((path, heading, content))
            path, heading, content = block.heading_path, block.text, []
        else:
            content.append(block)
    if content:
        sections.append((path, heading, content))
    return sections


class SmartSegmenterAdapter(WorkflowAdapter):
    """`{"markdown", "front_matter"}` -> the same plus `"segments": [{"text",
    "token_count", "heading_path", "index"}]`."""

    name = "smart_segmenter"
    config_model = SmartSegmenterConfig

    def __init__(self, config: JsonDict | None = None) -> None:
        super().__init__(config)
        s = self.settings = SmartSegmenterConfig.model_validate(self.config)
        self._segmenter: Segmenter | None = None
        self._tokenizer_args = (s.encoding, s.tokenizer_file)

    def segmenter(self) -> Segmenter:
        if self._segmenter is None:
            s = self.settings
            tokenizer = get_tokenizer(*self._tokenizer_args)
            self._segmenter = Segmenter(tokenizer, s.max_tokens, s.overlap_tokens)
        return self._segmenter

    def process(self, message: Message, context: Context) -> list[Message]:
        payload = message.payload if isinstance(message.payload, dict) else {}
        markdown = payload.get("markdown")
        if not isinstance(markdown, str):
            msg = "payload has no 'markdown' (the output of html_to_markdown)"
            raise PayloadError(msg)
        segments = [
            s
            for s in self.segmenter().segments(markdown)
            if s.token_count >= self.settings.min_tokens
        ]
        body = {**payload, "segments": [s.to_dict(i) for i, s in enumerate(segments)]}
        return [message.derive(payload=body)]
