"""What scripts/demo.sh prints about its execution, from the server's API and CLI output.

python scripts/demo_report.py progress EXECUTION_ID     # live counts until it ends
python scripts/demo_report.py warm EXECUTION_ID &      # the server loads the query model
python scripts/demo_report.py made EXECUTION_ID         # pages, segments, what was indexed
python scripts/demo_report.py ask QUESTION...           # POST /search/rrf: the top hits
factflow lineage chain ROW -o json | python scripts/demo_report.py chain
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import httpx

TERMINAL = {"completed", "failed", "cancelled", "interrupted"}
# the execution's counters (`stats.counts`) the progress line shows, under short names
SHOWN = {
    "adapter:discover:sitemap_parser:sitemap_parser.urls": "urls in sitemap",
    "adapter:fetch:web_scraper:web_scraper.fetched": "pages fetched",
    "route:convert:in": "pages converted",
    "route:index:in": "segments",
    "adapter:index:embedding_generator:embedding_generator.embedded": "embedded",
}
TOP_HITS = 3


def _server() -> str:
    return os.environ.get("FACTFLOW_SERVER_URL", "http://127.0.0.1:8000")


def progress(execution_id: str) -> int:
    """Print the counters whenever they change; exit 0 when the execution completed."""
    url = f"{_server()}/api/v1/executions/{execution_id}"
    started, last = time.monotonic(), ""
    with httpx.Client(timeout=10) as client:
        while True:
            execution = client.get(url).raise_for_status().json()
            counts = execution["stats"].get("counts", {})
            shown = ", ".join(f"{name} {counts[k]}" for k, name in SHOWN.items() if k in counts)
            line = f"{execution['status']}" + (f": {shown}" if shown else " (workers starting)")
            if line != last:
                print(f"  {time.monotonic() - started:5.1f} s  {line}", flush=True)
                last = line
            if execution["status"] in TERMINAL:
                if execution["error"]:
                    print(f"  error: {execution['error']}")
                return 0 if execution["status"] == "completed" else 1
            time.sleep(0.5)


def warm(execution_id: str) -> int:
    """Once the execution has made its slot, one POST /embeddings, so that the server loads
    the slot's model while the pipeline still embeds, not on the first question."""
    with httpx.Client(base_url=f"{_server()}/api/v1", timeout=300) as client:
        while not client.get("/search/capabilities").raise_for_status().json()["slots"]:
            status = client.get(f"/executions/{execution_id}").raise_for_status().json()
            if status["status"] in TERMINAL:
                return 0
            time.sleep(0.5)
        client.post("/embeddings", json={"texts": ["warm up"]}).raise_for_status()
    return 0


def made(execution_id: str) -> None:
    """Pages and segments the execution made, and what the index holds for it."""
    with httpx.Client(base_url=f"{_server()}/api/v1", timeout=30) as client:
        execution = client.get(f"/executions/{execution_id}").raise_for_status().json()
        indexes = client.get("/indexes").raise_for_status().json()
        sources = client.get("/search/sources").raise_for_status().json()
    counts = execution["stats"].get("counts", {})
    print(f"pages fetched and converted: {counts.get('route:convert:in', 0)}")
    print(f"segments embedded, indexed:  {counts.get('route:index:in', 0)}")
    for slot in indexes["slots"]:
        print(
            f"index slot {slot['name']}: {slot['model']} ({slot['dimensions']} dimensions),"
            f" {slot['vectors']} vectors, HNSW m={slot['hnsw_m']}"
        )
    for source in sources:
        segments, pages = source["segments"], source["documents"]
        print(f"origin {source['origin']}: {segments} segments of {pages} pages")


def ask(questions: list[str]) -> int:
    """Each question through POST /search/rrf, its top hits with heading path and URL."""
    with httpx.Client(base_url=f"{_server()}/api/v1", timeout=120) as client:
        for question in questions:
            started = time.monotonic()
            response = client.post("/search/rrf", json={"query": question, "limit": TOP_HITS})
            if response.status_code != 200:
                print(f"search failed: {response.status_code} {response.text}")
                return 1
            hits = response.json()["results"]
            took = (time.monotonic() - started) * 1000
            print(f"\nQ: {question}  ({len(hits)} hits in {took:.0f} ms)")
            for hit in hits:
                snippet = " ".join(hit["snippet"].split())
                print(f"  {hit['rank']}. {' > '.join(hit['heading_path']) or hit['title']}")
                print(f"     {hit['url']}  (rrf {hit['score']:.4f}{_components(hit)})")
                print(f"     {snippet[:200]}{'...' if len(snippet) > 200 else ''}")
            if hits:
                print(f"  lineage row: {hits[0]['lineage_id']}")
    return 0


def _components(hit: dict[str, Any]) -> str:
    parts = [f"{name} #{hit[name]['rank']}" for name in ("semantic", "keyword") if hit.get(name)]
    return f"; {', '.join(parts)}" if parts else ""


def chain(document: dict[str, Any]) -> None:
    """Oldest first: the sitemap, the URL, the fetch, ... down to the segment."""
    rows = [*reversed(document["ancestors"]), document["entry"]]
    for depth, row in enumerate(rows):
        url = (row.get("metadata") or {}).get("url")
        where = f"  url={url}" if url and row["adapter_name"] == "web_scraper" else ""
        print(
            f"  {'  ' * depth}{row['route_id']}/{row['adapter_name']}: {row['status']}"
            f" in {row['duration_ms']:.0f} ms{where}"
        )


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if command == "progress" and len(argv) == 2:
        return progress(argv[1])
    if command == "warm" and len(argv) == 2:
        return warm(argv[1])
    if command == "made" and len(argv) == 2:
        made(argv[1])
        return 0
    if command == "ask" and len(argv) > 1:
        return ask(argv[1:])
    if command == "chain" and len(argv) == 1:
        chain(json.load(sys.stdin))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
