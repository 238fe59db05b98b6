"""Search index scale: index writes/s, RRF search latency under concurrent clients, and
HNSW recall@10 against exact search, on synthetic segments (same database, one run).

    python bench/search.py [--segments 100000] [--batch 5000] [--incremental 2000]
                           [--clients 8] [--queries 400] [--recall-queries 50]

Uses FACTFLOW_DATABASE_URL's server when set (a scratch database on it), else a
throwaway embedded Postgres (bench/benchdb.py). Vectors are 384-dimensional
(all-MiniLM-L6-v2's size), unit length, drawn around 200 random topic centres (real
embeddings cluster; uniform random vectors are HNSW's worst case); texts are 40 words from
a 5,000-word vocabulary.

1. Writes. Bulk: `--segments` rows by `upsert_segments` (binary COPY into temp tables,
   one upsert; the embedding_index writer's path) in batches of `--batch` inside
   `bulk_load` (the slot's HNSW index dropped and built once at the end, the GIN pending
   list merged), timed from the first batch to the built index. Baseline: `--incremental`
   more rows in batches of 500 with the HNSW index in place (what a pipeline's writer
   does per epoch). Target: bulk >= 5,000 segments/s.
2. Latency at `--clients` threads, each with its own connection (as the API's pool gives
   one per request): baseline, the bare HNSW top 10 (one statement); RRF, `ranked_search`
   (the SQL behind POST /search/rrf: HNSW and full text fused in one statement,
   candidates 50, limit 10) with a random query vector and three random words. Targets:
   RRF p50 <= 20 ms, p99 <= 100 ms.
3. Recall@10: HNSW top 10 (ef_search 40, the default) against exact top 10 (index scans
   off). Target >= 0.95.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from benchdb import scratch_postgres

from factflow.db.connection import DbConnection, connect
from factflow.db.migrate import migrate
from factflow.db.repositories.search_index import (
    SegmentRow,
    bulk_load,
    ensure_slot,
    upsert_segments,
)
from factflow.db.repositories.search_queries import ranked_search

DIMENSIONS = 384
SLOT = "bench"


def unit(rows: np.ndarray) -> np.ndarray:
    norms: np.ndarray = np.linalg.norm(rows, axis=1, keepdims=True)
    scaled: np.ndarray = rows / norms
    return scaled


class Corpus:
    def __init__(self, seed: int = 7) -> None:
        self.rng = np.random.default_rng(seed)
        self.centres = unit(self.rng.normal(size=(200, DIMENSIONS)))
        self.words = [f"w{i}" for i in range(5000)]
        self.random = random.Random(seed)

    def vectors(self, count: int) -> np.ndarray:
        picks = self.rng.integers(0, len(self.centres), size=count)
        noise = self.rng.normal(scale=0.6 / np.sqrt(DIMENSIONS), size=(count, DIMENSIONS))
        return unit(self.centres[picks] + noise)

    def text(self, words: int = 40) -> str:
        return " ".join(self.random.choices(self.words, k=words))


def make_rows(corpus: Corpus, start: int, size: int) -> list[SegmentRow]:
    vectors = corpus.vectors(size).tolist()
    return [
        SegmentRow(
            content_hash=uuid.uuid4().hex,
            document_key=f"doc-{(start + i) // 10}",
            text=corpus.text(),
            execution_id="bench",
            message_id=str(uuid.uuid4()),
            url=f"https://docs.bench/{(start + i) // 10}",
            title=corpus.text(4),
            heading_path=(corpus.text(3),),
            vectors={SLOT: vectors[i]},
        )
        for i in range(size)
    ]


@dataclass(frozen=True)
class Writes:
    bulk_rate: float
    build_seconds: float
    incremental_rate: float


def write(url: str, corpus: Corpus, segments: int, batch: int, incremental: int) -> Writes:
    with connect(url) as conn:
        migrate(conn)
        ensure_slot(conn, SLOT, "synthetic", "local", DIMENSIONS)
        # rows are made before the clock starts: a pipeline has them from its messages
        batches = [
            make_rows(corpus, i, min(batch, segments - i)) for i in range(0, segments, batch)
        ]
        started = time.perf_counter()
        with bulk_load(conn, [SLOT]):
            for rows in batches:
                upsert_segments(conn, rows)
            loaded = time.perf_counter()
        bulk_seconds = time.perf_counter() - started
        build_seconds = time.perf_counter() - loaded
        small = min(batch, 500)  # an epoch's worth, as the writer gets them
        more = [make_rows(corpus, segments + i, small) for i in range(0, incremental, small)]
        started = time.perf_counter()
        for rows in more:
            upsert_segments(conn, rows)
        incremental_seconds = time.perf_counter() - started
    return Writes(segments / bulk_seconds, build_seconds, sum(map(len, more)) / incremental_seconds)


def vector_top10(conn: DbConnection, vector: list[float], text: str) -> None:
    literal = "[" + ",".join(map(repr, vector)) + "]"
    conn.execute(
        f"SELECT segment_id FROM search_vectors_{SLOT} ORDER BY embedding <=> %s::vector LIMIT 10",
        (literal,),
    ).fetchall()


def rrf(conn: DbConnection, vector: list[float], text: str) -> None:
    ranked_search(
        conn, query=text, language="english", slot=SLOT, vector=vector,
        use_keyword=True, candidates=50, limit=10,
    )  # fmt: skip


def latencies(
    url: str,
    corpus: Corpus,
    clients: int,
    queries: int,
    search: Callable[[DbConnection, list[float], str], None],
) -> list[float]:
    vectors = corpus.vectors(queries).tolist()
    texts = [corpus.text(3) for _ in range(queries)]
    found: list[float] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        with connect(url) as conn:
            for q in range(index, queries, clients):
                started = time.perf_counter()
                search(conn, vectors[q], texts[q])
                with lock:
                    found.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return found


def recall(url: str, corpus: Corpus, queries: int) -> float:
    found = 0
    with connect(url) as conn:
        for vector in corpus.vectors(queries).tolist():
            literal = "[" + ",".join(map(repr, vector)) + "]"
            statement = (
                f"SELECT segment_id FROM search_vectors_{SLOT}"
                " ORDER BY embedding <=> %s::vector LIMIT 10"
            )
            approximate = {r[0] for r in conn.execute(statement, (literal,)).fetchall()}
            with conn.transaction():
                conn.execute("SET LOCAL enable_indexscan = off")
                exact = {r[0] for r in conn.execute(statement, (literal,)).fetchall()}
            found += len(approximate & exact)
    return found / (10 * queries)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--segments", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--incremental", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--recall-queries", type=int, default=50)
    args = parser.parse_args()
    corpus = Corpus()
    load_before = os.getloadavg()[0]
    with scratch_postgres("search") as url:
        writes = write(url, corpus, args.segments, args.batch, args.incremental)
        base = latencies(url, corpus, args.clients, args.queries, vector_top10)
        fused = latencies(url, corpus, args.clients, args.queries, rrf)
        hit_share = recall(url, corpus, args.recall_queries)
    p50, p99 = percentile(fused, 0.5), percentile(fused, 0.99)
    b50, b99 = percentile(base, 0.5), percentile(base, 0.99)
    rate = writes.bulk_rate
    print(
        f"{args.segments:,} segments, {DIMENSIONS} dimensions, cpu count {os.cpu_count()},"
        f" load average {load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end"
    )
    print(
        f"  writes: bulk {rate:,.0f} segments/s (HNSW build {writes.build_seconds:.1f} s of it);"
        f" incremental, HNSW maintained {writes.incremental_rate:,.0f} segments/s"
        f" = {rate / writes.incremental_rate:.1f}x"
    )
    print(
        f"  latency at {args.clients} clients: HNSW top 10 p50 {b50:.1f} ms, p99 {b99:.1f} ms;"
        f" RRF p50 {p50:.1f} ms = {p50 / b50:.1f}x, p99 {p99:.1f} ms = {p99 / b99:.1f}x"
        f" (RRF mean {statistics.mean(fused):.1f} ms over {len(fused)} queries)"
    )
    checks = [
        (f"index writes  {rate:10,.0f} segments/s (bulk)", "target >= 5,000", rate >= 5000),
        (f"RRF p50       {p50:10.1f} ms ({args.clients} clients)", "target <= 20", p50 <= 20),
        (f"RRF p99       {p99:10.1f} ms", "target <= 100", p99 <= 100),
        (f"HNSW recall@10 {hit_share:9.3f}", "target >= 0.95", hit_share >= 0.95),
    ]
    for line, target, ok in checks:
        print(f"  {line:48} {target:18} {'ok' if ok else 'MISSED'}")
    return 0 if all(ok for *_, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
