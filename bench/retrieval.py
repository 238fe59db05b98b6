"""Retrieval quality over factflow's own docs: hit@1, hit@5 and MRR of semantic, keyword,
hybrid and RRF search, side by side, on the demo's site and a question set shipped here.

    python bench/retrieval.py [--questions bench/retrieval_questions.yaml] [--candidates 50]
                              [--misses]

1. Builds the site the README's main job crawls (scripts/docsite.py: one page per `##`
   section of README.md, one per docs/*.md) and serves it on a free 127.0.0.1 port.
2. Runs `factflow run pipelines/docs-search.yaml` (the shipped pipeline, its sitemap URL
   pointed at that site) into a scratch database (benchdb.py: FACTFLOW_DATABASE_URL's
   server, else a throwaway embedded one): crawl, markdown, segments by headings and
   tokens, the local all-MiniLM-L6-v2, the index writer.
3. Asks every question of bench/retrieval_questions.yaml in each mode through the search
   service (the code behind POST /api/v1/search, /keyword, /hybrid and /rrf, with their
   defaults) for the top 10 segments. A question is answered at rank r when the r-th
   segment comes from one of its pages: hit@1 and hit@5 count the questions answered at
   rank 1 and within 5, MRR is the mean of 1/r (0 when no page is in the top 10).

4. The chat path: each question asked as `POST /api/v1/chat` answers it in extractive
   mode (chat retrieval: RRF, top 5, the relevance bar; the numbered citations; the
   extractive answer): how often a page that answers it is among the first three
   citations (the issue's target on a hidden set: >= 42/45), and how often the answer
   says nothing was found.

`--misses` lists, per mode, the questions not answered at rank 1 with what came first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from benchdb import scratch_postgres

from factflow.chat.extractive import NOTHING_FOUND, extract
from factflow.chat.retrieval import RetrievalSettings, cite, retrieve
from factflow.db.connection import DbConnection, connect
from factflow.search import QueryEmbedder, SearchOptions, SearchResult, SearchService

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PIPELINE = REPO / "pipelines" / "docs-search.yaml"
SHIPPED_SITEMAP = "http://127.0.0.1:8765/sitemap.xml"
TOP = 10
MODES = ("semantic", "keyword", "hybrid", "rrf")
RUN_TIMEOUT_SECONDS = 900


@dataclass(frozen=True)
class Question:
    text: str
    pages: tuple[str, ...]


@dataclass
class Score:
    mode: str
    ranks: list[int | None] = field(default_factory=list)
    """Per question, the rank of the first segment from an answering page."""
    milliseconds: list[float] = field(default_factory=list)
    misses: list[tuple[str, str]] = field(default_factory=list)

    def hits_at(self, k: int) -> int:
        return sum(1 for r in self.ranks if r is not None and r <= k)

    def mrr(self) -> float:
        return sum(1 / r for r in self.ranks if r is not None) / len(self.ranks)


def load_questions(path: Path) -> list[Question]:
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [Question(str(e["q"]), tuple(str(p) for p in e["pages"])) for e in entries]


@contextmanager
def docs_site(root: Path) -> Iterator[str]:
    """The demo's site, built into `root` and served; yields its base URL."""
    folder = root / "site"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "docsite.py"), "serve", str(folder), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        sitemap = proc.stdout.readline().strip()  # it prints its sitemap URL once it listens
        base = sitemap.removesuffix("/sitemap.xml")
        build = [sys.executable, str(REPO / "scripts" / "docsite.py"), "build", str(folder)]
        subprocess.run([*build, "--base-url", base], check=True, stdout=subprocess.DEVNULL)
        yield base
    finally:
        proc.terminate()
        proc.wait()


def ingest(root: Path, site: str, database_url: str) -> float:
    """docs-search.yaml over the site into the database; returns its wall-clock seconds."""
    pipeline = root / "docs-search.yaml"
    pipeline.write_text(
        PIPELINE.read_text(encoding="utf-8").replace(SHIPPED_SITEMAP, f"{site}/sitemap.xml")
    )
    env = {**os.environ, "FACTFLOW_DATABASE_URL": database_url, "HF_HUB_OFFLINE": "1"}
    env["FACTFLOW_RECOVERY_DIR"] = str(root / "recovery")
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "factflow", "run", str(pipeline)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n", file=sys.stderr)
        msg = f"factflow run {PIPELINE.name} failed with exit status {done.returncode}"
        raise SystemExit(msg)
    return time.perf_counter() - started


def page_of(url: str | None, site: str) -> str:
    return (url or "").removeprefix(site).strip("/")


def check_pages(conn: DbConnection, site: str, questions: list[Question]) -> tuple[int, int]:
    """Every page a question names is in the index (else the question set is stale)."""
    rows = conn.execute("SELECT url FROM search_segments").fetchall()
    indexed = {page_of(r[0], site) for r in rows}
    unknown = sorted({p for q in questions for p in q.pages} - indexed)
    if unknown:
        msg = (
            f"pages named in the questions are not on the site: {unknown} "
            f"(pages: {sorted(indexed)}); a README section was renamed?"
        )
        raise SystemExit(msg)
    return len(rows), len(indexed)


def evaluate(
    conn: DbConnection,
    site: str,
    questions: list[Question],
    mode: str,
    search: Callable[[DbConnection, SearchOptions], SearchResult],
    candidates: int,
) -> Score:
    score = Score(mode)
    for question in questions:
        started = time.perf_counter()
        result = search(conn, SearchOptions(query=question.text, limit=TOP, candidates=candidates))
        score.milliseconds.append((time.perf_counter() - started) * 1000)
        pages = [page_of(h.hit.url, site) for h in result.hits]
        rank = next((i for i, p in enumerate(pages, start=1) if p in question.pages), None)
        score.ranks.append(rank)
        if rank != 1:
            first = pages[0] if pages else "(no hit)"
            score.misses.append((question.text, f"rank {rank or '>10'}, first: /{first}/"))
    return score


@dataclass
class ChatScore:
    top3: int = 0
    nothing_found: int = 0
    misses: list[tuple[str, str]] = field(default_factory=list)


def evaluate_chat(
    conn: DbConnection, site: str, questions: list[Question], service: SearchService
) -> ChatScore:
    """The chat path's citations (what an extractive answer cites, in its order)."""
    score = ChatScore()
    for question in questions:
        citations = cite(conn, retrieve(conn, service, question.text, RetrievalSettings()))
        if extract(question.text, citations) == NOTHING_FOUND:
            score.nothing_found += 1
        pages = [page_of(c.url, site) for c in citations[:3]]
        if any(p in question.pages for p in pages):
            score.top3 += 1
        else:
            score.misses.append((question.text, f"cited: {', '.join(pages) or '(nothing)'}"))
    return score


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, default=HERE / "retrieval_questions.yaml")
    parser.add_argument("--candidates", type=int, default=50, help="per search type")
    parser.add_argument("--misses", action="store_true", help="list the rank-1 misses")
    args = parser.parse_args()
    questions = load_questions(args.questions)
    with (
        tempfile.TemporaryDirectory(prefix="ffbench-retrieval-") as tmp,
        docs_site(Path(tmp)) as site,
        scratch_postgres("retrieval") as url,
    ):
        seconds = ingest(Path(tmp), site, url)
        service = SearchService(QueryEmbedder())
        with connect(url) as conn:
            segments, pages = check_pages(conn, site, questions)
            service.semantic(conn, SearchOptions(query="warm up"))  # loads the model
            scores = [
                evaluate(conn, site, questions, mode, getattr(service, mode), args.candidates)
                for mode in MODES
            ]
            chat = evaluate_chat(conn, site, questions, service)
    n = len(questions)
    print(
        f"{n} questions over {pages} pages, {segments} segments "
        f"(docs-search.yaml ingest {seconds:.0f} s; load average {os.getloadavg()[0]:.1f})"
    )
    print(f"  {'mode':10} {'hit@1':>9} {'hit@5':>9} {'MRR':>6} {'ms/query':>9}")
    for s in scores:
        print(
            f"  {s.mode:10} {s.hits_at(1):>4}/{n:<4} {s.hits_at(5):>4}/{n:<4}"
            f" {s.mrr():6.3f} {statistics.median(s.milliseconds):9.1f}"
        )
    print(
        f"  chat (extractive): answering page among the first three citations "
        f"{chat.top3}/{n}, nothing found {chat.nothing_found}/{n}"
    )
    if args.misses:
        print("\nchat: no answering page among the first three citations")
        for text, what in chat.misses:
            print(f"  {text:70} {what}")
        for s in scores:
            print(f"\n{s.mode}: not first")
            for text, what in s.misses:
                print(f"  {text:70} {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
