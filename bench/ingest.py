"""Document ingestion throughput: the docs-ingest pipeline against a plain loop, same site.

    python bench/ingest.py [--copies 20] [--rounds 2] [--processes 1,2]

Builds the demo's documentation site (scripts/docsite.py: factflow's README sections and
docs, `--copies` times over) and serves it from a separate process on
127.0.0.1. Then, interleaved for `--rounds` rounds, keeping each case's fastest:

  loop           one thread: httpx.Client GET of every sitemap URL, then the same
                 converter (`html_to_markdown`) and segmenter (`Segmenter`, 256 tokens,
                 overlap 32) the pipeline runs; nothing stored
  pipeline -p N  `factflow run` of pipelines/docs-ingest.yaml (sitemap_parser ->
                 url_expander -> web_scraper -> web_content_storage -> storage_retriever
                 -> html_to_markdown -> smart_segmenter -> markdown_storage_writer ->
                 segment_publisher) on N worker processes, file queues and file storage;
                 the per-domain rate limit starts at 1000 req/s so the bench measures the
                 engine, not politeness (the shipped default starts at 4 req/s and climbs)

Timing: the pipeline's span runs from its first stored HTML page to its last segment
written, so interpreter start, imports, compiling, the sitemap and the drain detection at
the end are excluded (shown as "startup s"); the loop's span covers all its pages.
pages/s is pages fetched and converted over the span, segments/s the segments over it.
"CPU ms/page" is the steadier figure on a shared machine: the loop's process CPU over its
pages; for the pipeline, the CPU (user + system, every process) of the run over the whole
site minus that of a run over one copy, over the pages between them, so start-up costs
cancel out. "CPU vs loop" is the loop's CPU per page over the case's (higher is better).
Every case must produce the same pages and segments, or the bench fails. Target:
the pipeline on one process >= 0.8x the loop's pages/s (exit status 1 when missed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from factflow.workflows.markdown.convert import HtmlToMarkdownConfig, html_to_markdown
from factflow.workflows.markdown.segment import Segmenter
from factflow.workflows.markdown.tokens import get_tokenizer

REPO = Path(__file__).resolve().parent.parent
TARGET_PIPELINE_VS_LOOP = 0.8
TIMEOUT_SECONDS = 600


@dataclass
class Result:
    case: str
    pages: int
    segments: int
    seconds: float
    cpu_per_page_ms: float
    startup: float | None = None

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds

    @property
    def segments_per_second(self) -> float:
        return self.segments / self.seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def serve_site(folder: Path, copies: int) -> tuple[subprocess.Popen[bytes], str, str]:
    """Build and serve the site; returns the server, its sitemap and a one-copy sitemap."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    script = str(REPO / "scripts" / "docsite.py")
    subprocess.run(
        [sys.executable, script, "build", str(folder), "--base-url", base, "--copies", str(copies)],
        check=True,
    )
    sitemap = (folder / "sitemap.xml").read_text()
    first_copy = [u for u in re.findall(r"<url>.*?</url>", sitemap) if "/copy-" not in u]
    (folder / "sitemap-one.xml").write_text(
        re.sub(r"<url>.*</url>", "".join(first_copy), sitemap, flags=re.DOTALL)
    )
    server = subprocess.Popen([sys.executable, script, "serve", str(folder), "--port", str(port)])
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{base}/sitemap.xml").raise_for_status()
            return server, f"{base}/sitemap.xml", f"{base}/sitemap-one.xml"
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.1)


def sitemap_urls(sitemap: str) -> list[str]:
    return re.findall(r"<loc>(.*?)</loc>", httpx.get(sitemap).text)


def run_loop(sitemap: str) -> Result:
    config = HtmlToMarkdownConfig()
    segmenter = Segmenter(get_tokenizer(), 256, 32)
    urls = sitemap_urls(sitemap)
    segments = 0
    with httpx.Client(http2=True) as client:
        started, cpu = time.perf_counter(), time.process_time()
        for url in urls:
            response = client.get(url)
            response.raise_for_status()
            markdown, _front = html_to_markdown(response.text, config)
            segments += len(segmenter.segments(markdown))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Result("loop", len(urls), segments, seconds, cpu / len(urls) * 1000)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_pipeline(sitemap: str) -> str:
    text = (REPO / "pipelines" / "docs-ingest.yaml").read_text()
    text = text.replace("http://127.0.0.1:8765/sitemap.xml", sitemap)
    text = text.replace(
        "config: {follow_redirects: true, timeout: 30, max_bytes: 2097152}",
        "config: {follow_redirects: true, timeout: 30, max_bytes: 2097152,"
        " rate_limit: {initial_rate: 1000, max_rate: 1000}}",
    )
    if "initial_rate: 1000" not in text:
        msg = "pipelines/docs-ingest.yaml changed: update the bench's rate-limit override"
        raise RuntimeError(msg)
    return text


@dataclass
class PipelineRun:
    pages: int
    segments: int
    seconds: float
    startup: float
    cpu: float


def run_pipeline(pipeline: str, processes: int, folder: Path) -> PipelineRun:
    folder.mkdir(parents=True)
    path = folder / "docs-ingest.yaml"
    path.write_text(pipeline)
    path_env = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path_env}
    started, cpu = time.time(), children_cpu()
    command = [sys.executable, "-m", "factflow", "run", str(path), "--processes", str(processes)]
    with (folder / "run.log").open("wb") as log:
        done = subprocess.run(
            command,
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=TIMEOUT_SECONDS,
        )
    cpu = children_cpu() - cpu
    if done.returncode != 0:
        msg = f"pipeline failed, see {folder / 'run.log'}"
        raise RuntimeError(msg)
    out = folder / "output" / "queues" / "docs.segments.jsonl"
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    stored = list((folder / "output" / "storage").rglob("web_content_storage/*.html"))
    first = min(p.stat().st_mtime for p in stored)
    last = out.stat().st_mtime
    pages = len({r["payload"]["url"] for r in rows})
    return PipelineRun(pages, len(rows), last - first, first - started, cpu)


def pipeline_case(sitemaps: tuple[str, str], processes: int, folder: Path) -> Result:
    """The run over the whole site, its CPU per page net of a one-copy run's: what a
    page costs once the processes are up."""
    big = run_pipeline(bench_pipeline(sitemaps[0]), processes, folder / "all")
    small = run_pipeline(bench_pipeline(sitemaps[1]), processes, folder / "one")
    cpu_per_page = (big.cpu - small.cpu) / max(1, big.pages - small.pages) * 1000
    case = f"pipeline -p {processes}"
    return Result(case, big.pages, big.segments, big.seconds, cpu_per_page, big.startup)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=20, help="copies of the site")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--processes", default="1,2", help="pipeline process counts")
    args = parser.parse_args()
    process_counts = [int(p) for p in args.processes.split(",")]
    best: dict[str, Result] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        server, sitemap, one_copy = serve_site(Path(tmp) / "site", args.copies)
        try:
            for round_index in range(args.rounds):
                results = [run_loop(sitemap)]
                for n in process_counts:
                    folder = Path(tmp) / f"run-{round_index}-{n}"
                    results.append(pipeline_case((sitemap, one_copy), n, folder))
                for r in results:
                    print(
                        f"round {round_index + 1}: {r.case:<14} {r.pages} pages, "
                        f"{r.segments} segments in {r.seconds:.2f} s, "
                        f"{r.cpu_per_page_ms:.1f} ms CPU a page",
                        flush=True,
                    )
                    if r.case not in best or r.seconds < best[r.case].seconds:
                        best[r.case] = r
        finally:
            server.kill()
            server.wait()
    loop = best["loop"]
    print(
        f"\n{'case':<14} {'pages':>6} {'segments':>9} {'pages/s':>8} {'segs/s':>8} "
        f"{'vs loop':>8} {'CPU ms/page':>12} {'CPU vs loop':>12} {'startup s':>10}"
    )
    for r in best.values():
        startup = "" if r.startup is None else f"{r.startup:.1f}"
        print(
            f"{r.case:<14} {r.pages:>6} {r.segments:>9} {r.pages_per_second:>8.1f} "
            f"{r.segments_per_second:>8.1f} {r.pages_per_second / loop.pages_per_second:>7.2f}x "
            f"{r.cpu_per_page_ms:>12.1f} {loop.cpu_per_page_ms / r.cpu_per_page_ms:>11.2f}x "
            f"{startup:>10}"
        )
    wrong = [r.case for r in best.values() if (r.pages, r.segments) != (loop.pages, loop.segments)]
    if wrong:
        print(f"FAIL: {', '.join(wrong)} made other pages or segments than the loop")
        return 1
    one = best.get("pipeline -p 1")
    if one is not None:
        ratio = one.pages_per_second / loop.pages_per_second
        verdict = "ok" if ratio >= TARGET_PIPELINE_VS_LOOP else "MISSED"
        print(f"target pipeline -p 1 >= {TARGET_PIPELINE_VS_LOOP}x loop: {ratio:.2f}x {verdict}")
        if ratio < TARGET_PIPELINE_VS_LOOP:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
