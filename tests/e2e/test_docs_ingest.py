"""The ingestion pipelines end to end through `factflow run` (real worker processes, file
queues and file storage) against the local documentation site (tests/docsite.py)."""

from __future__ import annotations

import json
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from factflow.dataflows.launch import Launch
from factflow.storage import open_storage
from factflow.workflows.webscraper.browser import find_chromium
from tests.docsite import CONTENT_PATHS, MANY_PAGES, DocSite, serve_docsite
from tests.e2e.helpers import REPO_ROOT, factflow_run, read_jsonl, wait_until
from tests.unit.compiler.test_shipped_pipelines import SEED_WEBSCRAPER

pytestmark = pytest.mark.slow


@pytest.fixture
def site() -> Iterator[DocSite]:
    with serve_docsite() as served:
        yield served


def _pipeline(tmp_path: Path, text: str, site: DocSite) -> Path:
    """The pipeline as shipped, but pointed at the local site's sitemap index."""
    path = tmp_path / "pipeline.yaml"
    for placeholder in ("http://127.0.0.1:8765/sitemap.xml", "https://example.com/sitemap.xml"):
        text = text.replace(placeholder, site.url("/sitemap_index.xml"))
    text = text.replace("http://127.0.0.1:8765/", site.url("/docs/"))  # docs-crawl's start
    path.write_text(text)
    return path


def test_docs_ingest_turns_the_site_into_segments_with_provenance(
    tmp_path: Path, site: DocSite, env: dict[str, str]
) -> None:
    shipped = (REPO_ROOT / "pipelines" / "docs-ingest.yaml").read_text()
    pipeline = _pipeline(tmp_path, shipped, site)
    done = factflow_run(str(pipeline), env={**env, "FACTFLOW_STORE_STAGES": "1"}, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr

    segments = read_jsonl(tmp_path / "output/queues/docs.segments.jsonl")
    urls = {s["payload"]["url"] for s in segments}
    assert urls == {site.url(p) for p in CONTENT_PATHS}
    install = [s for s in segments if s["payload"]["url"] == site.url("/docs/install")]
    paths = [s["payload"]["heading_path"] for s in install]
    assert ["Installing factflow", "Requirements", "Optional services"] in paths
    for s in segments:
        payload, metadata = s["payload"], s["metadata"]
        assert 0 < payload["token_count"] <= 256
        assert metadata["url"] == payload["url"]
        assert metadata["document_id"] == payload["document_id"]
        assert metadata["heading_path"] == payload["heading_path"]
    nb = [s for s in segments if s["payload"]["url"] == site.url("/nb/installere")]
    assert {s["payload"]["language"] for s in nb} == {"nb"}

    # rejected pages were filtered, not dead-lettered; the 429 page was retried into content
    assert read_jsonl(tmp_path / "output/queues/fetch.dlq.jsonl") == []
    assert site.hits["/private/secret"] == 0
    assert site.hits["/docs/slow"] == 2
    # the canonical markdown with front matter and the segments are stored
    stored = list((tmp_path / "output/storage").rglob("markdown/*.md"))
    assert len(stored) == len(CONTENT_PATHS)
    document = next(p for p in stored if "url: " + site.url("/docs/install") in p.read_text())
    assert document.read_text().startswith("---\nurl: ")
    segment_files = list((tmp_path / "output/storage").rglob("markdown/*.segments.json"))
    assert all(json.loads(p.read_text()) for p in segment_files)


def test_the_seed_webscraper_example_runs_unchanged(
    tmp_path: Path, site: DocSite, env: dict[str, str]
) -> None:
    pipeline = _pipeline(tmp_path, SEED_WEBSCRAPER, site)
    run_env = {**env, "FACTFLOW_STORE_STAGES": "1", "FACTFLOW_STORAGE_URI": "file://./store"}
    done = factflow_run(str(pipeline), env=run_env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    html = list((tmp_path / "store").rglob("web_content_storage/*.html"))
    # the content pages, plus the redirect's copy of the guide
    assert len(html) == len(CONTENT_PATHS) + 1
    assert any("Installing factflow" in p.read_text() for p in html)


def test_docs_crawl_follows_the_sites_links_into_segments(
    tmp_path: Path, site: DocSite, env: dict[str, str]
) -> None:
    shipped = (REPO_ROOT / "pipelines" / "docs-crawl.yaml").read_text()
    pipeline = _pipeline(tmp_path, shipped, site)
    done = factflow_run(str(pipeline), env={**env, "FACTFLOW_STORE_STAGES": "1"}, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    segments = read_jsonl(tmp_path / "output/queues/docs.segments.jsonl")
    # what the links reach: not /nb/installere (nothing links it), not the denied page
    linked = {"/docs/", "/docs/install", "/docs/guide", "/docs/slow"}
    assert {s["payload"]["url"] for s in segments} == {site.url(p) for p in linked}
    assert all(s["metadata"]["url"] == s["payload"]["url"] for s in segments)
    assert site.hits["/private/secret"] == 0
    assert {p: site.hits[p] for p in ("/docs/", "/docs/install", "/docs/guide")} == dict.fromkeys(
        ("/docs/", "/docs/install", "/docs/guide"), 1
    )
    assert read_jsonl(tmp_path / "output/queues/crawl.dlq.jsonl") == []
    stored = list((tmp_path / "output/storage").rglob("markdown/*.md"))
    assert len(stored) == len(linked)


def test_sigkill_mid_crawl_then_rerun_fetches_no_stored_page_again_and_loses_none(
    tmp_path: Path, site: DocSite, env: dict[str, str], started: list[subprocess.Popen[bytes]]
) -> None:
    text = (REPO_ROOT / "pipelines" / "docs-ingest.yaml").read_text()
    text = text.replace("http://127.0.0.1:8765/sitemap.xml", site.url("/sitemap-many.xml"))
    text = text.replace("./output/queues", str(tmp_path / "queues"))
    text = text.replace("file://./output/storage", f"file://{tmp_path}/storage")
    # 8 pages/s: the crawl takes ~5 s, so the kill lands in the middle of it
    text = text.replace(
        "config: {follow_redirects: true, timeout: 30, max_bytes: 2097152}",
        "config: {rate_limit: {initial_rate: 8, max_rate: 8, increase: 0}}",
    )
    assert "initial_rate: 8" in text
    pipeline = tmp_path / "docs-ingest.yaml"
    pipeline.write_text(text)
    execution = "killed-mid-crawl"
    launch = Launch(
        pipeline=pipeline,
        execution_id=execution,
        run_dir=tmp_path / "run",
        recovery_dir=tmp_path / "recovery",
        snapshot_seconds=1,
        extra_env={**env, "FACTFLOW_STORE_STAGES": "1"},
    )
    storage = open_storage(f"file://{tmp_path}/storage")
    prefix = f"executions/{execution}/fetch/web_content_storage/"

    def stored_urls() -> set[str]:
        objects = [o.key for o in storage.list(prefix) if o.key.endswith(".html")]
        return {storage.metadata(key)["source-url"] for key in objects}

    [proc] = launch.start()
    started.append(proc)
    wait_until(lambda: len(stored_urls()) >= 10 or proc.poll() is not None, 60, "10 pages")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the crawl ended before it could be killed"
    stored_before = stored_urls()
    hits_before = Counter(site.hits)
    assert 10 <= len(stored_before) < MANY_PAGES

    [proc] = launch.start()
    started.append(proc)
    assert proc.wait(timeout=120) == 0, (launch.log_dir / "process-0.log").read_text()[-3000:]

    pages = {site.url(f"/many/{i}") for i in range(MANY_PAGES)}
    refetched = {url for url in stored_before if site.hits[url.removeprefix(site.base)] > 1}
    assert refetched == set(), "pages stored before the kill were fetched again"
    # the rerun fetched what was missing, and only that (a page in flight at the kill may
    # have been requested but not stored: fetched twice, but stored once)
    rerun_hits = {p: n for p, n in (Counter(site.hits) - hits_before).items() if "/many/" in p}
    assert {site.url(p) for p in rerun_hits} == pages - stored_before
    assert stored_urls() == pages
    segments = read_jsonl(tmp_path / "queues" / "docs.segments.jsonl")
    assert {s["payload"]["url"] for s in segments} == pages, "every page became segments"


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium here: apt-get install chromium")
def test_web_crawler_renders_in_a_worker_and_its_browser_closes_with_it(
    tmp_path: Path, site: DocSite, env: dict[str, str]
) -> None:
    pipeline = tmp_path / "render.yaml"
    pipeline.write_text(
        f"""version: "1.0"
name: render
queue: {{provider: file, path: ./output/queues}}
routes:
  render:
    inbound: {{queue: urls}}
    adapters:
      - type: url_expander
      - type: web_crawler
        config: {{timeout: 30}}
    outbound: rendered
init_message:
  route: render
  payload: {{urls: ["{site.url("/js/app")}", "{site.url("/docs/install")}"]}}
"""
    )
    before = _chromium_pids()
    done = factflow_run(str(pipeline), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    rendered = {
        r["payload"]["url"]: r["payload"]
        for r in read_jsonl(tmp_path / "output/queues/rendered.jsonl")
    }
    assert set(rendered) == {site.url("/js/app"), site.url("/docs/install")}
    assert "<h2>Rendered in the browser</h2>" in rendered[site.url("/js/app")]["html"]
    # the worker closed its browser on exit: none of its Chromium processes is left (its
    # helper processes may take a moment to go once the browser has been closed)
    wait_until(lambda: _chromium_pids() - before == set(), 15, "the worker's Chromium to exit")


def _chromium_pids() -> set[str]:
    found = subprocess.run(["pgrep", "-f", "chromium"], capture_output=True, text=True)
    return set(found.stdout.split())
