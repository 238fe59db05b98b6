"""Search index scale: index writes/s, RRF search latency under concurrent clients, and
HNSW recall@10 against exact search, on synthetic segments (same database, one run).

    python bench/search.py [--segments 100000] [--batch 2000] [--clients 8]
                           [--queries 400] [--recall-queries 50]

Uses FACTFLOW_DATABASE_URL's server when set (a throwaway database on it), else a
throwaway embedded Postgres. Vectors are 384-dimensional (all-MiniLM-L6-v2's size), unit
length, drawn around 200 random topic centres (real embeddings cluster; uniform random
vectors are HNSW's worst case); texts are 40 words from a 5,000-word vocabulary.

1. Writes: `upsert_segments` (COPY + one upsert, the embedding_index writer's path) in
   batches of `--batch`, HNSW and GIN maintained as rows arrive. Target >= 5,000 seg/s.
2. RRF: `--clients` threads, each with its own connection, run `ranked_search` (the SQL
   behind POST /search/rrf: HNSW + full text fused in one statement, candidates 50,
   limit 10) with a random query vector and three random words. Targets: p50 <= 20 ms,
   p99 <= 100 ms.
3. Recall@10: HNSW top 10 (ef_search 40, the default) against exact top 10 (index scans
   off). Target >= 0.95.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from psycopg.conninfo import make_conninfo

from factflow.db.connection import connect
from factflow.db.embedded import start_embedded, stop_embedded
from factflow.db.migrate import migrate
from factflow.db.repositories.search_index import SegmentRow, ensure_slot, upsert_segments
from factflow.db.repositories.search_queries import ranked_search

DIMENSIONS = 384
SLOT = "bench"


@contextmanager
def server() -> Iterator[str]:
    url = os.environ.get("FACTFLOW_DATABASE_URL")
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="ffbench-") as tmp:
        data_dir = Path(tmp) / "pg"
        started = start_embedded(data_dir, keep_running=False)
        try:
            yield started.url
        finally:
            stop_embedded(data_dir)


@contextmanager
def database(server_url: str) -> Iterator[str]:
    name = f"ffbench_search_{uuid.uuid4().hex[:8]}"
    with connect(server_url) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield make_conninfo(server_url, dbname=name)
    finally:
        with connect(server_url) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


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


def write(url: str, corpus: Corpus, segments: int, batch: int) -> float:
    with connect(url) as conn:
        migrate(conn)
        ensure_slot(conn, SLOT, "synthetic", "local", DIMENSIONS)
        written, seconds = 0, 0.0
        while written < segments:
            size = min(batch, segments - written)
            vectors = corpus.vectors(size).tolist()
            rows = [
                SegmentRow(
                    content_hash=uuid.uuid4().hex,
                    document_key=f"doc-{(written + i) // 10}",
                    text=corpus.text(),
                    execution_id="bench",
                    message_id=str(uuid.uuid4()),
                    url=f"https://docs.bench/{(written + i) // 10}",
                    title=corpus.text(4),
                    heading_path=(corpus.text(3),),
                    vectors={SLOT: vectors[i]},
                )
                for i in range(size)
            ]
            started = time.perf_counter()
            upsert_segments(conn, rows)
            seconds += time.perf_counter() - started
            written += size
        conn.execute("ANALYZE search_segments")
        conn.execute(f"ANALYZE search_vectors_{SLOT}")
    return segments / seconds


def rrf_latencies(url: str, corpus: Corpus, clients: int, queries: int) -> list[float]:
    vectors = corpus.vectors(queries).tolist()
    texts = [corpus.text(3) for _ in range(queries)]
    latencies: list[float] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        with connect(url) as conn:
            for q in range(index, queries, clients):
                started = time.perf_counter()
                ranked_search(
                    conn, query=texts[q], language="english", slot=SLOT,
                    vector=vectors[q], use_keyword=True, candidates=50, limit=10,
                )  # fmt: skip
                with lock:
                    latencies.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


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
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--recall-queries", type=int, default=50)
    args = parser.parse_args()
    corpus = Corpus()
    with server() as server_url, database(server_url) as url:
        rate = write(url, corpus, args.segments, args.batch)
        latencies = rrf_latencies(url, corpus, args.clients, args.queries)
        hit_share = recall(url, corpus, args.recall_queries)
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    checks = [
        (f"index writes  {rate:10,.0f} segments/s", "target >= 5,000", rate >= 5000),
        (f"RRF p50       {p50:10.1f} ms ({args.clients} clients)", "target <= 20", p50 <= 20),
        (f"RRF p99       {p99:10.1f} ms", "target <= 100", p99 <= 100),
        (f"HNSW recall@10 {hit_share:9.3f}", "target >= 0.95", hit_share >= 0.95),
    ]
    print(f"{args.segments:,} segments, {DIMENSIONS} dimensions, cpu count {os.cpu_count()}")
    for line, target, ok in checks:
        print(f"  {line:48} {target:18} {'ok' if ok else 'MISSED'}")
    print(f"  RRF mean      {statistics.mean(latencies):10.1f} ms over {len(latencies)} queries")
    return 0 if all(ok for *_, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
