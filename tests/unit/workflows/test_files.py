"""file_source over real folders and real file storage (its skip state), and
pdf_to_markdown over PDFs the tests make with pypdf (tests/unit/workflows/pdfs.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from factflow import Context, Message, NonRetryableError
from factflow.compiler.compile import compile_text
from factflow.storage.filesystem import FileSystemStorage
from factflow.workflows.errors import DocumentError, FileSourceError
from factflow.workflows.files import FileSourceAdapter, PdfToMarkdownAdapter
from factflow.workflows.files.state import STATE_ROOT
from tests.unit.workflows.helpers import call
from tests.unit.workflows.pdfs import GUIDE, make_pdf

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    (docs / "guide").mkdir(parents=True)
    (docs / "guide" / "install.md").write_text(
        "---\ntitle: Installing\nlang: en\ndescription: How to install\n---\n"
        "# Install\n\nRun pip.\n"
    )
    (docs / "notes.txt").write_text("Plain notes\r\nover two lines.\n")
    (docs / "page.html").write_text("<html><body><h1>Page</h1><p>Hello.</p></body></html>")
    (docs / "manual.pdf").write_bytes(make_pdf(GUIDE, title="The manual"))
    (docs / "image.png").write_bytes(b"\x89PNG")
    (docs / ".cache").mkdir()
    (docs / ".cache" / "hidden.md").write_text("# Hidden\n")
    (docs / "empty.md").write_text("\n\n")
    return docs


def _ctx(storage: FileSystemStorage | None, execution: str = "exec-1") -> Context:
    return Context(execution_id=execution, route_id="scan", storage=storage)


def _scan(path: str | Path, ctx: Context, **config: object) -> list[Message]:
    return call(FileSourceAdapter(dict(config)), {"path": str(path)}, ctx)


def _names(messages: list[Message]) -> list[str]:
    return [m.payload["relative_path"] for m in messages]


def test_a_folder_becomes_one_message_per_document_in_path_order(folder: Path) -> None:
    ctx = _ctx(None)
    messages = _scan(folder, ctx)
    assert _names(messages) == ["guide/install.md", "manual.pdf", "notes.txt", "page.html"]
    install, pdf, notes, page = (m.payload for m in messages)
    assert install["format"] == "markdown"
    assert install["markdown"] == "# Install\n\nRun pip."  # the front matter is taken out
    front = install["front_matter"]
    assert (front["title"], front["language"], front["description"]) == (
        "Installing",
        "en",
        "How to install",
    )
    assert front["url"] == install["url"] == (folder / "guide" / "install.md").as_uri()
    assert len(front["document_id"]) == 32
    assert (pdf["format"], pdf["content_type"], "markdown" in pdf) == (
        "pdf",
        "application/pdf",
        False,
    )
    assert notes["markdown"] == "Plain notes\nover two lines."
    assert notes["front_matter"]["title"] == "notes"  # no heading: the file's name
    assert page["html"].startswith("<html>") and page["format"] == "html"
    for body in (install, pdf, notes, page):
        assert len(body["content_hash"]) == 64
        assert body["size"] == Path(body["path"]).stat().st_size
        assert body["mtime"].endswith("+00:00")
    assert messages[0].metadata["url"] == install["url"]
    assert ctx.metrics["file_source.empty"] == 1  # empty.md
    assert ctx.metrics["file_source.emitted"] == 4


def test_globs_single_files_extensions_excludes_and_hidden_files(folder: Path) -> None:
    ctx = _ctx(None)
    assert _names(_scan(f"{folder}/**/*.md", ctx)) == ["guide/install.md"]
    assert _names(_scan(folder / "notes.txt", ctx)) == ["notes.txt"]
    assert _names(_scan(folder, ctx, extensions=["pdf", ".HTML"])) == ["manual.pdf", "page.html"]
    assert "guide/install.md" not in _names(_scan(folder, ctx, exclude=["guide/*"]))
    assert ".cache/hidden.md" in _names(_scan(folder, ctx, include_hidden=True))
    assert _names(_scan(folder, ctx, max_files=2)) == ["guide/install.md", "manual.pdf"]
    assert _scan(folder, ctx, max_bytes=10) == []
    assert ctx.metrics["file_source.rejected.too_large"] >= 4


def test_base_url_gives_documents_web_urls(folder: Path) -> None:
    [message] = _scan(folder / "guide" / "install.md", _ctx(None), base_url="https://d.org/x/")
    assert message.payload["url"] == "https://d.org/x/install.md"
    assert message.payload["front_matter"]["url"] == "https://d.org/x/install.md"


def test_a_missing_folder_is_a_clear_non_retryable_error(tmp_path: Path) -> None:
    with pytest.raises(FileSourceError) as caught:
        _scan(tmp_path / "nowhere", _ctx(None))
    assert isinstance(caught.value, NonRetryableError)
    assert "'" + str(tmp_path / "nowhere") + "' does not exist" in str(caught.value)
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(FileSourceError, match="does not exist"):
        _scan(tmp_path / "nowhere" / "*.md", _ctx(None))
    with pytest.raises(FileSourceError, match="no 'path'"):
        call(FileSourceAdapter(), {"folder": "x"}, _ctx(None))


def test_the_configured_path_is_used_when_the_message_names_none(folder: Path) -> None:
    adapter = FileSourceAdapter({"path": str(folder / "notes.txt")})
    assert _names(call(adapter, {}, _ctx(None))) == ["notes.txt"]


def test_a_rerun_skips_unchanged_files_and_a_replay_emits_the_same(
    folder: Path, tmp_path: Path
) -> None:
    storage = FileSystemStorage(tmp_path / "storage")
    first = _scan(folder, _ctx(storage, "exec-1"))
    assert len(first) == 4
    # the same execution again (a replay or resume): the same files, the same payloads
    again = _scan(folder, _ctx(storage, "exec-1"))
    assert [m.payload for m in again] == [m.payload for m in first]

    later = _ctx(storage, "exec-2")
    assert _scan(folder, later) == []
    assert later.metrics["file_source.unchanged"] == 5  # empty.md too

    notes = folder / "notes.txt"
    os.utime(notes, ns=(notes.stat().st_atime_ns, notes.stat().st_mtime_ns + 10**9))
    (folder / "guide" / "install.md").write_text("# Install\n\nRun pip, then serve.\n")
    (folder / "new.md").write_text("# New\n")
    edited = _ctx(storage, "exec-3")
    assert _names(_scan(folder, edited)) == ["guide/install.md", "new.md"]  # notes: touched only
    assert edited.metrics["file_source.unchanged"] == 4

    (folder / "guide" / "install.md").write_text("# Install\n\nRun pip.\n")  # reverted
    assert _names(_scan(folder, _ctx(storage, "exec-4"))) == ["guide/install.md"]
    manifests = [i.key for i in storage.list(STATE_ROOT + "/")]
    assert len(manifests) == 5 and manifests[-1].endswith("-exec-4.json")


def test_skip_state_is_kept_per_folder_and_can_be_turned_off(folder: Path, tmp_path: Path) -> None:
    storage = FileSystemStorage(tmp_path / "storage")
    _scan(folder, _ctx(storage, "exec-1"))
    assert len(_scan(folder / "guide", _ctx(storage, "exec-2"))) == 1  # another folder's state
    assert len(_scan(folder, _ctx(storage, "exec-3"), skip_unchanged=False)) == 4
    assert len(_scan(folder, _ctx(storage, "exec-4"), state_name="other")) == 4


def test_unknown_extensions_fail_at_compile_time() -> None:
    pipeline = textwrap.dedent(
        """\
        version: "1.0"
        routes:
          scan:
            inbound: {queue: files.in}
            adapters:
              - type: file_source
                config: {extensions: [".docx"]}
            outbound: files.out
        """
    )
    [issue] = [i for i in compile_text(pipeline).report.issues if i.code == "E303"]
    assert issue.to_dict()["path"] == "routes.scan.adapters[0].config.extensions"
    assert "unknown extensions ['.docx']" in issue.message


def _pdf_message(path: Path, url: str | None = None) -> dict[str, object]:
    body: dict[str, object] = {"path": str(path), "format": "pdf", "relative_path": path.name}
    if url:
        body["url"] = url
    return body


def test_pdf_headings_come_from_font_sizes(tmp_path: Path) -> None:
    path = tmp_path / "manual.pdf"
    path.write_bytes(make_pdf(GUIDE, title="The manual"))
    [message] = call(PdfToMarkdownAdapter(), _pdf_message(path, "file:///m.pdf"), _ctx(None))
    assert message.payload["markdown"] == (
        "# Operator guide\n\n"
        "This guide explains how to install and run the service on one machine.\n\n"
        "## Installing\n\n"
        "Run pip install factflow. The installation takes a minute.\n\n"
        "## Running\n\n"
        "Start the server with factflow serve."
    )
    front = message.payload["front_matter"]
    assert (front["title"], front["pages"], front["url"], front["path"]) == (
        "The manual",
        2,
        "file:///m.pdf",
        "manual.pdf",
    )
    assert message.metadata["document_id"] == front["document_id"]


def test_pdf_title_falls_back_to_the_first_heading_and_pages_can_be_capped(
    tmp_path: Path,
) -> None:
    path = tmp_path / "guide.pdf"
    path.write_bytes(make_pdf(GUIDE))
    [message] = call(PdfToMarkdownAdapter({"max_pages": 1}), _pdf_message(path), _ctx(None))
    assert message.payload["front_matter"]["title"] == "Operator guide"
    assert message.payload["front_matter"]["url"] == path.as_uri()
    assert "Running" not in message.payload["markdown"]


def test_uniform_text_has_no_headings(tmp_path: Path) -> None:
    path = tmp_path / "flat.pdf"
    path.write_bytes(make_pdf([[(11, "One line."), (11, "Another line.")]]))
    [message] = call(PdfToMarkdownAdapter(), _pdf_message(path), _ctx(None))
    assert message.payload["markdown"] == "One line. Another line."
    assert message.payload["front_matter"]["title"] == "flat"


def test_a_pdf_without_text_is_filtered_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(make_pdf([[]]))
    ctx = _ctx(None)
    assert call(PdfToMarkdownAdapter(), _pdf_message(path), ctx) == []
    assert ctx.metrics["pdf_to_markdown.empty"] == 1


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (None, "cannot read"),
        (b"%PDF-1.4 this is not really a pdf", "not a readable PDF"),
        (make_pdf(GUIDE, password="s3cret"), "encrypted with a password"),
    ],
    ids=["missing", "corrupt", "encrypted"],
)
def test_unreadable_pdfs_are_non_retryable(
    tmp_path: Path, content: bytes | None, error: str
) -> None:
    path = tmp_path / "bad.pdf"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DocumentError, match=error) as caught:
        call(PdfToMarkdownAdapter(), _pdf_message(path), _ctx(None))
    assert isinstance(caught.value, NonRetryableError)
    assert str(path) in str(caught.value)


WITHOUT_PYPDF = textwrap.dedent(
    """
    import sys
    sys.modules["pypdf"] = None  # as if the pdf extra were not installed
    from factflow.compiler.compile import compile_file
    report = compile_file("pipelines/files-ingest.yaml").report
    for issue in report.errors:
        print(issue.code, issue.to_dict()["path"], "|", issue.suggestion)
    """
)


@pytest.mark.slow
def test_files_ingest_without_the_pdf_extra_fails_to_compile_with_e407() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_PYPDF],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "E407 routes.convert.adapters[1].config | pip install 'factflow[pdf]' (or 'factflow[all]')"
    ]
