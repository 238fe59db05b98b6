"""Extractive answers: no LLM, the best-matching sentences of the top sources, each
followed by its source's number. What the embedded server answers out of the box.

A sentence scores by the question's words it contains (stemmed crudely, stop words
dropped), weighted by how rare each word is among the candidate sentences, plus a bonus
for its source's rank; the answer takes the best sentence of the best sources (at most
`MAX_SENTENCES`), in source order, the top source's always included.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from factflow.chat.retrieval import Citation

MAX_SENTENCES = 3
MAX_SENTENCE_CHARS = 400
NOTHING_FOUND = (
    "Nothing relevant was found in the index for this question, so there is no answer to "
    "give from it. Try other words, or index the pages that would answer it."
)

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[])|\n\s*\n|\n(?=\s*(?:[-*+]|\d+\.)\s)")
_WORD = re.compile(r"[A-Za-z0-9_]+")
_MARKUP = re.compile(r"^\s*(?:#{1,6}\s+|[-*+]\s+|\d+\.\s+|>\s*)|`|\*\*|__")
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "so",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
        "my",
        "me",
        "we",
        "our",
        "use",
        "used",
        "using",
        "about",
        "should",
        "would",
        "could",
        "get",
        "make",
        "any",
        "all",
        "not",
        "no",
        "yes",
        "one",
        "two",
        "has",
        "have",
        "had",
        "been",
        "being",
        "than",
        "more",
        "most",
        "other",
        "such",
        "only",
        "own",
        "same",
        "too",
        "very",
        "just",
        "also",
        "each",
        "few",
    ]
)


@dataclass(frozen=True, slots=True)
class Sentence:
    citation: Citation
    text: str
    score: float


def terms(text: str) -> set[str]:
    """The text's content words, lower-cased and crudely stemmed."""
    return {_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


def _stem(word: str) -> str:
    for suffix in ("ing", "ies", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def sentences(text: str) -> list[str]:
    """The text's sentences; headings, code fences and markdown markers removed."""
    text = re.sub(r"```.*?```", " ", text, flags=re.DOTALL)
    # headings name the section (the citation's heading path), they answer nothing
    text = re.sub(r"^\s*#{1,6}\s.*$", "", text, flags=re.MULTILINE)
    out = []
    for part in _SENTENCE_END.split(text):
        clean = " ".join(_MARKUP.sub("", line) for line in part.splitlines()).strip()
        clean = " ".join(clean.split())
        if len(_WORD.findall(clean)) >= 3:
            out.append(
                clean if len(clean) <= MAX_SENTENCE_CHARS else clean[:MAX_SENTENCE_CHARS] + "…"
            )
    return out


def rank_sentences(question: str, citations: list[Citation]) -> list[Sentence]:
    """Every sentence of every citation, best first."""
    wanted = terms(question)
    found = [(c, s, terms(s)) for c in citations for s in sentences(c.text)]
    if not found:
        return []
    # words in fewer candidate sentences say more about which one answers
    weight = {
        t: math.log(1 + len(found) / (1 + sum(t in words for _, _, words in found))) for t in wanted
    }
    total = sum(weight.values()) or 1.0
    scored = []
    for citation, text, words in found:
        overlap = sum(weight[t] for t in wanted & words) / total
        scored.append(Sentence(citation, text, overlap + 0.5 / citation.number))
    scored.sort(key=lambda s: (-s.score, s.citation.number))
    return scored


def extract(question: str, citations: list[Citation]) -> str:
    """The answer text; sets each citation's `quote` to its best sentence."""
    if not citations:
        return NOTHING_FOUND
    ranked = rank_sentences(question, citations)
    chosen: dict[int, Sentence] = {}
    for sentence in ranked:
        if sentence.citation.number not in chosen:
            chosen[sentence.citation.number] = sentence
        if len(chosen) == MAX_SENTENCES:
            break
    top = citations[0].number
    best_top = next((s for s in ranked if s.citation.number == top), None)
    if best_top is not None and top not in chosen:
        if len(chosen) == MAX_SENTENCES:
            chosen.pop(min(chosen, key=lambda n: chosen[n].score))
        chosen[top] = best_top
    for sentence in reversed(ranked):  # every source quotes its best sentence
        sentence.citation.quote = sentence.text
    if not chosen:  # sources without a whole sentence (tables, code): quote the top one
        first = citations[0]
        return f"{' '.join(first.text.split())[:MAX_SENTENCE_CHARS]} [{first.number}]"
    parts = []
    for number in sorted(chosen):
        sentence = chosen[number]
        parts.append(f"{sentence.text} [{number}]")
    return " ".join(parts)
