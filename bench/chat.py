"""Chat latency: factflow's overhead before the first token of an LLM answer (retrieval,
citations with lineage, prompt packing), against a local OpenAI-compatible server that
answers every call after a fixed latency, over a synthetic index.

    python bench/chat.py [--segments 100000] [--questions 40] [--latency 0.2]

1. Index: `--segments` synthetic segments (bench/search.py's corpus: 384-dimensional unit
   vectors around 200 topic centres, 40-word texts) in a slot bound to the local
   all-MiniLM-L6-v2, so each question is embedded by the real model; bulk loaded with
   the HNSW graph built once (bulk_load). Uses FACTFLOW_DATABASE_URL's server when
   set, else a throwaway embedded Postgres (benchdb.py).
2. Provider: tests/llm_provider.py (the tests' declared test double for an LLM provider;
   none is reachable here), answering after `--latency` seconds and streaming 20 tokens.
3. Per question, the baseline first: the same prompt streamed straight through
   `LiteLLMClient.stream` (what any client of that provider waits for its first token).
   Then factflow: `ChatService.prepare` (embed the question, RRF top 5, citations with
   their lineage chains, prompt packed within the token budget) and `answer` until its
   first token, as `POST /api/v1/chat` runs them. Overhead before the first token =
   factflow's time to first token minus the baseline's, paired per question; the target
   is p50 <= 100 ms. `prepare` alone is printed too (no LLM time in it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

from benchdb import scratch_postgres
from search import DIMENSIONS, SLOT, Corpus, make_rows

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the repository: tests/llm_provider.py

from factflow.chat import Ask, ChatService, ChatSettings, RetrievalSettings, Token  # noqa: E402
from factflow.db.connection import connect, create_pool  # noqa: E402
from factflow.db.migrate import migrate  # noqa: E402
from factflow.db.repositories.search_index import (  # noqa: E402
    bulk_load,
    ensure_slot,
    upsert_segments,
)
from factflow.db.settings import DatabaseSettings  # noqa: E402
from factflow.llm import LiteLLMClient, LLMConfig  # noqa: E402
from factflow.search import QueryEmbedder, SearchService  # noqa: E402
from tests.llm_provider import serve_provider  # noqa: E402

MODEL = "openai/bench-model"  # no price: the bench is about time
# every source counts: the synthetic texts are unrelated to any question by design
RETRIEVAL = RetrievalSettings(min_similarity=0.0)


def build_index(url: str, corpus: Corpus, segments: int, batch: int) -> float:
    started = time.perf_counter()
    with connect(url) as conn:
        migrate(conn)
        ensure_slot(conn, SLOT, "all-MiniLM-L6-v2", "local", DIMENSIONS)
        with bulk_load(conn, [SLOT]):  # builds HNSW once, then analyses the tables
            for start in range(0, segments, batch):
                size = min(batch, segments - start)
                upsert_segments(conn, make_rows(corpus, start, size))
    return time.perf_counter() - started


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(
    url: str, provider_url: str, questions: list[str]
) -> tuple[list[float], list[float], list[float], list[float]]:
    pool = create_pool(DatabaseSettings(database_url=url, pool_max_size=4), name="bench-chat")
    settings = ChatSettings(model=MODEL, api_base=provider_url, api_key="sk-bench")
    service = ChatService(SearchService(QueryEmbedder()), settings)
    direct = LiteLLMClient(LLMConfig(model=MODEL, api_base=provider_url, api_key="sk-bench"))
    base, ours, prepare, total = [], [], [], []
    try:
        # warm-up: the model, the tokenizer, litellm's import and connections
        for _ in range(2):
            warm = await service.prepare(pool, Ask(questions[0], retrieval=RETRIEVAL))
            async for _event in service.answer(warm):
                pass
        for question in questions:
            prepared = await service.prepare(pool, Ask(question, retrieval=RETRIEVAL))
            started = time.perf_counter()
            stream = direct.stream(prepared.messages)
            await anext(stream)
            base.append((time.perf_counter() - started) * 1000)
            await stream.aclose()

            started = time.perf_counter()
            prepared = await service.prepare(pool, Ask(question, retrieval=RETRIEVAL))
            prepare.append((time.perf_counter() - started) * 1000)
            first = None
            async for event in service.answer(prepared):
                if first is None and isinstance(event, Token):
                    first = (time.perf_counter() - started) * 1000
            assert first is not None
            ours.append(first)
            total.append((time.perf_counter() - started) * 1000)
    finally:
        pool.close()
    return base, ours, prepare, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.2, help="provider seconds per call")
    args = parser.parse_args()
    corpus = Corpus()
    questions = [f"how does {corpus.text(6)} work?" for _ in range(args.questions)]
    with scratch_postgres("chat") as url, serve_provider() as provider:
        provider.latency = args.latency
        provider.reply = " ".join(f"token{i}" for i in range(20))
        seconds = build_index(url, corpus, args.segments, args.batch)
        base, ours, prepare, total = asyncio.run(measure(url, provider.url, questions))
    overhead = [o - b for o, b in zip(ours, base, strict=True)]
    print(
        f"{args.questions} questions over {args.segments} segments (index built in "
        f"{seconds:.0f} s), provider latency {args.latency * 1000:.0f} ms; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"  {'':34} {'p50':>8} {'p90':>8}")
    for name, values in (
        ("baseline: provider first token", base),
        ("factflow: first token", ours),
        ("factflow: prepare (no LLM)", prepare),
        ("factflow: whole answer", total),
        ("overhead before first token", overhead),
    ):
        print(f"  {name:34} {statistics.median(values):6.1f}ms {percentile(values, 0.9):6.1f}ms")
    p50 = statistics.median(overhead)
    verdict = "meets" if p50 <= 100 else "misses"
    print(f"overhead p50 {p50:.1f} ms: {verdict} the 100 ms target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
