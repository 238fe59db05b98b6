"""html_to_markdown, smart_segmenter, segment_publisher and the storage adapters; every
workflow adapter refuses a payload from the wrong producer without retrying it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from factflow import Adapter, NonRetryableError
from factflow.storage import open_storage
from factflow.storage.exceptions import ObjectNotFoundError
from factflow.testing import run_pipeline
from factflow.workflows.errors import PayloadError, StorageRequiredError
from factflow.workflows.markdown.blocks import split_blocks
from factflow.workflows.markdown.convert import HtmlToMarkdownAdapter
from factflow.workflows.markdown.publish import SegmentPublisherAdapter
from factflow.workflows.markdown.segment import Segmenter, SmartSegmenterAdapter
from factflow.workflows.markdown.storage import (
    MarkdownStorageWriterAdapter,
    StorageRetrieverAdapter,
)
from factflow.workflows.markdown.tokens import count_tokens, get_tokenizer
from factflow.workflows.webscraper.scraper import WebScraperAdapter
from factflow.workflows.webscraper.sitemap import SitemapParserAdapter
from factflow.workflows.webscraper.storage import WebContentStorageAdapter
from factflow.workflows.webscraper.urls import UrlExpanderAdapter
from tests.docsite import _INSTALL, _NB
from tests.unit.workflows.helpers import call, context

DOC = """# Title

## Intro

First paragraph about pipelines.

```python
def f():
    return 1
```

## Usage

- one
- two

| a | b |
|---|---|
| 1 | 2 |
"""


def test_blocks_keep_code_whole_and_track_heading_paths() -> None:
    blocks = split_blocks(DOC + "\n## Hash # not a heading in code?\n```\n# inside code\n```\n")
    kinds = [(b.kind, b.heading_path) for b in blocks]
    assert ("code", ("Title", "Intro")) in kinds
    code = [b.text for b in blocks if b.kind == "code"]
    assert code[0].startswith("```python") and code[0].endswith("```")
    assert code[1] == "```\n# inside code\n```"  # a '#' line inside a fence is code
    assert [b.text for b in blocks if b.kind == "text"][1] == "- one\n- two"


def test_an_unclosed_fence_runs_to_the_end() -> None:
    [block] = split_blocks("```\ncode\nmore")
    assert block.kind == "code"
    assert block.text == "```\ncode\nmore"


def test_html_becomes_markdown_without_chrome_and_with_front_matter() -> None:
    [out] = call(HtmlToMarkdownAdapter({}), {"html": _INSTALL, "url": "http://s/docs/install"})
    markdown, front = out.payload["markdown"], out.payload["front_matter"]
    assert markdown.startswith("# Installing factflow")
    assert "## Requirements" in markdown and "- Python 3.11 or newer" in markdown
    assert "```\npip install factflow" in markdown
    assert "| provider | needs |" in markdown
    assert "cookies" not in markdown and "Footer" not in markdown and "Home" not in markdown
    assert front["title"] == "Installing factflow"
    assert front["language"] == "en" and front["url"] == "http://s/docs/install"
    assert front["description"].startswith("Installing factflow")
    assert out.metadata["document_id"] == front["document_id"]


def test_the_final_url_names_the_document_and_languages_are_read() -> None:
    adapter = HtmlToMarkdownAdapter({})
    [nb] = call(adapter, {"html": _NB, "url": "http://s/old", "final_url": "http://s/nb"})
    [again] = call(adapter, {"html": _NB, "source_url": "http://s/nb"})
    assert nb.payload["front_matter"]["language"] == "nb"
    assert nb.payload["front_matter"]["document_id"] == again.payload["front_matter"]["document_id"]


def test_images_only_when_asked() -> None:
    html = "<html><body><article><h1>T</h1><p>" + "words " * 40 + "</p>"
    html += '<img src="/d.png" alt="diagram"><p>' + "more " * 40 + "</p></article></body></html>"
    [plain] = call(HtmlToMarkdownAdapter({}), {"html": html})
    [images] = call(HtmlToMarkdownAdapter({"preserve_images": True}), {"html": html})
    assert "![diagram](/d.png)" in images.payload["markdown"]
    assert "d.png" not in plain.payload["markdown"]


def test_max_tokens_truncates_at_a_block_and_says_so() -> None:
    [out] = call(HtmlToMarkdownAdapter({"max_tokens": 60}), {"html": _INSTALL})
    tokenizer = get_tokenizer()
    assert count_tokens(tokenizer, out.payload["markdown"]) <= 60
    assert out.payload["front_matter"]["truncated"] is True
    assert out.payload["markdown"].startswith("# Installing factflow")


def test_a_page_without_content_is_filtered_and_counted() -> None:
    ctx = context()
    assert call(HtmlToMarkdownAdapter({}), {"html": "<html><body></body></html>"}, ctx) == []
    assert ctx.metrics == {"html_to_markdown.empty": 1}
    with pytest.raises(ValueError, match="html"):
        call(HtmlToMarkdownAdapter({}), {"markdown": "x"})


def test_segments_follow_headings_and_carry_exact_counts() -> None:
    [out] = call(SmartSegmenterAdapter({"max_tokens": 64, "overlap_tokens": 8}), {"markdown": DOC})
    segments = out.payload["segments"]
    tokenizer = get_tokenizer()
    assert [s["heading_path"] for s in segments] == [["Title", "Intro"], ["Title", "Usage"]]
    assert segments[0]["text"].startswith("## Intro")
    assert "def f():" in segments[0]["text"]
    for s in segments:
        assert s["token_count"] == count_tokens(tokenizer, s["text"])
    assert out.payload["markdown"] == DOC  # passed on for the writer


def test_long_sections_split_under_the_limit_with_overlap() -> None:
    sentences = " ".join(f"Sentence number {i} talks about queues." for i in range(200))
    code = "```\n" + "\n".join(f"line_{i} = {i}" for i in range(300)) + "\n```"
    markdown = f"# Big\n\n{sentences}\n\n{code}\n\n" + "x" * 3000
    tokenizer = get_tokenizer()
    segments = Segmenter(tokenizer, max_tokens=100, overlap_tokens=20).segments(markdown)
    assert len(segments) > 10
    assert all(s.token_count <= 100 for s in segments)
    assert all(s.heading_path == ("Big",) for s in segments)
    text = [s.text for s in segments if "Sentence" in s.text]
    # a continuation starts with the end of the previous segment
    assert text[1].split()[0:3] != ["#", "Big", "Sentence"]
    assert any(text[0][-30:].strip()[-10:] in text[1][:200] for _ in [0])
    code_parts = [s.text for s in segments if "line_" in s.text]
    assert all(t.count("```") == 2 for t in code_parts)  # every code part is fenced again


def test_a_tokenizer_json_can_count_instead(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    hf = Tokenizer(models.WordLevel({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    hf.pre_tokenizer = pre_tokenizers.Whitespace()
    path = tmp_path / "tokenizer.json"
    hf.save(str(path))
    [out] = call(SmartSegmenterAdapter({"tokenizer_file": str(path)}), {"markdown": "a b c d"})
    assert out.payload["segments"][0]["token_count"] == 4


def test_bad_tokenizer_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="not bundled"):
        get_tokenizer("gpt2_made_up")
    with pytest.raises(FileNotFoundError):
        get_tokenizer(tokenizer_file="/nonexistent/tokenizer.json")
    [problem] = SmartSegmenterAdapter.check_config({"max_tokens": 20, "overlap_tokens": 15})
    assert problem.code == "E303" and "overlap" in problem.message


def test_publisher_fans_out_with_provenance_in_metadata() -> None:
    payload = {
        "front_matter": {"url": "http://s/a", "title": "A", "document_id": "d1"},
        "segments": [
            {"text": "one", "token_count": 1, "heading_path": ["A"], "index": 0},
            {"text": "two", "token_count": 1, "heading_path": ["A", "B"], "index": 1},
        ],
    }
    out = call(SegmentPublisherAdapter({}), payload)
    assert [m.payload["text"] for m in out] == ["one", "two"]
    assert out[1].metadata == {
        "url": "http://s/a",
        "title": "A",
        "document_id": "d1",
        "heading_path": ["A", "B"],
    }
    assert out[1].payload["segment_count"] == 2
    with pytest.raises(ValueError, match="segments"):
        call(SegmentPublisherAdapter({}), {"markdown": "x"})
    with pytest.raises(ValueError, match="segment 0"):
        call(SegmentPublisherAdapter({}), {"segments": [{"no": "text"}]})


def test_html_is_stored_and_retrieved_with_its_url(tmp_path: Path) -> None:
    with open_storage(f"file://{tmp_path}") as storage:
        ctx = context(storage)
        page = {"url": "http://s/a", "html": "<p>hé</p>", "status": 200, "final_url": "http://s/b"}
        [stored] = call(WebContentStorageAdapter({}), page, ctx)
        key = stored.payload["storage_key"]
        assert key.startswith("executions/exec-1/crawl/web_content_storage/")
        assert stored.payload["content_length"] == len("<p>hé</p>".encode())
        assert storage.metadata(key)["status"] == "200"
        [back] = call(StorageRetrieverAdapter({}), {"storage_key": key}, ctx)
        assert back.payload["html"] == "<p>hé</p>"
        assert back.payload["source_url"] == "http://s/a"
        assert back.payload["final_url"] == "http://s/b"


def test_storage_adapters_need_storage() -> None:
    with pytest.raises(StorageRequiredError, match="FACTFLOW_STORAGE_URI"):
        call(WebContentStorageAdapter({}), {"url": "http://s/a", "html": "x"})
    with pytest.raises(StorageRequiredError):
        call(StorageRetrieverAdapter({}), {"storage_key": "executions/e/r/s/m.html"})


def test_markdown_writer_keeps_first_or_versions(tmp_path: Path) -> None:
    doc = {
        "markdown": "# A\n\ntext",
        "front_matter": {"url": "http://s/a", "title": "A", "document_id": "d1"},
        "segments": [{"text": "# A\n\ntext", "token_count": 4, "heading_path": ["A"]}],
    }
    changed = {**doc, "markdown": "# A\n\nnew text"}
    with open_storage(f"file://{tmp_path}") as storage:
        ctx = context(storage)
        [first] = call(MarkdownStorageWriterAdapter({}), doc, ctx)
        key = first.payload["markdown_key"]
        assert key == "executions/exec-1/crawl/markdown/d1.md"
        assert storage.get(key).decode().startswith("---\nurl: http://s/a\ntitle: A\n")
        segments = json.loads(storage.get(first.payload["segments_key"]))
        assert segments[0]["heading_path"] == ["A"]
        [kept] = call(MarkdownStorageWriterAdapter({}), changed, ctx)
        assert kept.payload["markdown_key"] == key
        assert b"new text" not in storage.get(key)
        [versioned] = call(
            MarkdownStorageWriterAdapter({"merge_strategy": "version"}), changed, ctx
        )
        assert versioned.payload["markdown_key"] != key
        assert b"new text" in storage.get(versioned.payload["markdown_key"])


def test_segmenter_edges_empty_documents_preambles_and_min_tokens() -> None:
    [empty] = call(SmartSegmenterAdapter({}), {"markdown": "  \n\n"})
    assert empty.payload["segments"] == []
    markdown = "Text before any heading.\n\n# A\n\nBody.\n\n## B\n\nx"
    [out] = call(SmartSegmenterAdapter({}), {"markdown": markdown})
    assert [s["heading_path"] for s in out.payload["segments"]] == [[], ["A"], ["A", "B"]]
    assert [s["index"] for s in out.payload["segments"]] == [0, 1, 2]
    [kept] = call(SmartSegmenterAdapter({"min_tokens": 5}), {"markdown": markdown})
    assert [s["text"] for s in kept.payload["segments"]] == [
        "Text before any heading.",
        "# A\n\nBody.",
    ]  # "## B\n\nx" is 4 tokens
    assert call(SegmentPublisherAdapter({}), {"segments": []}) == []


def test_storage_adapter_edges(tmp_path: Path) -> None:
    with open_storage(f"file://{tmp_path}") as storage:
        ctx = context(storage)
        [out] = call(
            WebContentStorageAdapter({"keep_html": True}),
            {"url": "http://s/", "html": "<p>x</p>"},
            ctx,
        )
        assert out.payload["html"] == "<p>x</p>"
        doc = {"markdown": "# A", "segments": [{"text": "# A"}]}  # no front matter
        [written] = call(MarkdownStorageWriterAdapter({"store_segments": False}), doc, ctx)
        assert "segments_key" not in written.payload
        assert storage.get(written.payload["markdown_key"]) == b"# A\n"  # no empty front matter
        with pytest.raises(ObjectNotFoundError):  # retried: a store may lag behind its writer
            call(StorageRetrieverAdapter({}), {"storage_key": "executions/e/r/s/none.html"}, ctx)


@pytest.mark.parametrize(
    ("adapter", "payload", "what"),
    [
        (StorageRetrieverAdapter, {"key": "x"}, "storage_key"),
        (WebContentStorageAdapter, {"html": "x"}, "'url'"),
        (HtmlToMarkdownAdapter, {"text": "x"}, "'html'"),
        (SmartSegmenterAdapter, {"html": "x"}, "'markdown'"),
        (MarkdownStorageWriterAdapter, {"front_matter": {}}, "'markdown'"),
        (SegmentPublisherAdapter, {"markdown": "x"}, "'segments'"),
        (UrlExpanderAdapter, {"urls": "http://s/"}, "not a list"),
        (SitemapParserAdapter, {"url": 7}, "sitemap"),
        (WebScraperAdapter, {"url": "ftp://s/"}, "no http"),
    ],
    ids=lambda v: v.name if isinstance(v, type) else None,
)
def test_a_payload_from_the_wrong_producer_is_not_retried(
    adapter: type[Adapter], payload: dict[str, object], what: str, tmp_path: Path
) -> None:
    with open_storage(f"file://{tmp_path}") as storage, pytest.raises(PayloadError) as caught:
        call(adapter({}), payload, context(storage))
    assert what in str(caught.value)
    assert isinstance(caught.value, NonRetryableError)
    assert isinstance(caught.value, ValueError)


def test_in_a_pipeline_bad_payloads_dead_letter_at_once_and_leave_the_circuit_closed() -> None:
    result = run_pipeline(
        """
version: "1.0"
name: t
queue: {provider: memory}
error_handling: {max_retries: 3, retry_delay_seconds: 1, circuit_breaker_threshold: 2}
routes:
  segment:
    inbound: {queue: docs}
    adapters:
      - type: smart_segmenter
    outbound: segments
""",
        inputs={
            "docs": [{"html": f"<p>{i}</p>"} for i in range(4)] + [{"markdown": "# Fine\n\nBody."}]
        },
    )
    [good] = result.payloads("segments")
    assert good["segments"][0]["text"] == "# Fine\n\nBody."
    letters = result.dead_letters("segment")
    assert len(letters) == 4
    assert {(d["reason"], d["attempts"], d["error_type"]) for d in letters} == {
        ("non_retryable", 1, "PayloadError")
    }
