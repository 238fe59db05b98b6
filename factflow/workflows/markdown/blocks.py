"""Markdown as blocks: headings, fenced code blocks and paragraphs (a list or a table is a
paragraph: lines without a blank line between them), each with the heading path in force.
The segmenter and `html_to_markdown`'s truncation cut only between blocks where they can."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")

BlockKind = Literal["heading", "code", "text"]


@dataclass(frozen=True, slots=True)
class Block:
    text: str
    kind: BlockKind
    heading_path: tuple[str, ...]
    """The headings above this block, outermost first (a heading's includes itself)."""


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return stripped.startswith(fence) and stripped.strip(fence[0]) == ""


def split_blocks(markdown: str) -> list[Block]:
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    fence: str | None = None

    def heading_path() -> tuple[str, ...]:
        return tuple(title for _, title in path)

    def flush(kind: BlockKind = "text") -> None:
        text = "\n".join(lines).strip("\n")
        if text.strip():
            blocks.append(Block(text, kind, heading_path()))
        lines.clear()

    for line in markdown.splitlines():
        if fence is not None:
            lines.append(line)
            if _closes(line, fence):
                flush("code")
                fence = None
            continue
        if opening := _FENCE.match(line):
            flush()
            fence = opening.group(1)
            lines.append(line)
            continue
        if heading := _HEADING.match(line):
            flush()
            level, title = len(heading.group(1)), heading.group(2).strip()
            path = [(lvl, t) for lvl, t in path if lvl < level]
            path.append((level, title))
            blocks.append(Block(line.strip(), "heading", heading_path()))
            continue
        if not line.strip():
            flush()
            continue
        lines.append(line)
    flush("code" if fence is not None else "text")  # an unclosed fence runs to the end
    return blocks
