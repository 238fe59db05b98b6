"""pipelines/files-ingest.yaml end to end through `factflow run` (real worker processes,
file queues and file storage) over a folder of markdown, HTML and a PDF made here."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.helpers import REPO_ROOT, factflow_run, read_jsonl
from tests.unit.workflows.pdfs import GUIDE, make_pdf

pytestmark = pytest.mark.slow

HTML = """<html lang="en"><head><title>Release notes</title></head><body>
<nav><a href="/">Home</a> | <a href="/docs">Docs</a></nav>
<main><h1>Release notes</h1><h2>Version 2</h2>
<p>Version 2 adds local folders and PDF files to the ingestion pipelines.</p></main>
<footer>Copyright and cookie banner text</footer></body></html>"""


def test_files_ingest_indexes_a_folder_and_a_rerun_converts_only_what_changed(
    tmp_path: Path, env: dict[str, str]
) -> None:
    docs = tmp_path / "docs"
    (docs / "guide").mkdir(parents=True)
    (docs / "guide" / "install.md").write_text(
        "# Install\n\nRun pip install factflow.\n\n## Check\n\nRun factflow --help.\n"
    )
    (docs / "notes.html").write_text(HTML)
    (docs / "manual.pdf").write_bytes(make_pdf(GUIDE, title="Operator manual"))
    shipped = (REPO_ROOT / "pipelines" / "files-ingest.yaml").read_text()
    pipeline = tmp_path / "files-ingest.yaml"
    pipeline.write_text(shipped)
    run_env = {**env, "FACTFLOW_STORE_STAGES": "1"}

    done = factflow_run(str(pipeline), env=run_env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    segments = [r["payload"] for r in read_jsonl(tmp_path / "output/queues/files.segments.jsonl")]
    by_file = {s["url"].rsplit("/docs/", 1)[1]: s for s in segments}
    assert set(by_file) == {"guide/install.md", "notes.html", "manual.pdf"}
    assert all(s["url"].startswith((docs).as_uri()) for s in segments)
    paths = {tuple(s["heading_path"]) for s in segments}
    assert ("Install", "Check") in paths
    assert ("Operator guide", "Installing") in paths  # the PDF's headings, by font size
    assert by_file["manual.pdf"]["title"] == "Operator manual"
    html_text = " ".join(s["text"] for s in segments if s["url"].endswith("notes.html"))
    assert "local folders and PDF files" in html_text
    assert "cookie banner" not in html_text  # main content only
    assert read_jsonl(tmp_path / "output/queues/convert.dlq.jsonl") == []
    stored = list((tmp_path / "output/storage").rglob("markdown/*.md"))
    assert len(stored) == 3

    # a rerun (a new execution) after one edit converts that file only
    (docs / "guide" / "install.md").write_text("# Install\n\nRun pip install 'factflow[pdf]'.\n")
    again = factflow_run(str(pipeline), env=run_env, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    rows = read_jsonl(tmp_path / "output/queues/files.segments.jsonl")[len(segments) :]
    assert [r["payload"]["text"] for r in rows] == ["# Install\n\nRun pip install 'factflow[pdf]'."]
