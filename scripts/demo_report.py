"""What scripts/demo.sh prints about its execution, from the server's API and CLI output.

python scripts/demo_report.py progress EXECUTION_ID     # live counts until it ends
python scripts/demo_report.py segments SEGMENTS.jsonl   # totals and a sample segment
factflow lineage chain ROW -o json | python scripts/demo_report.py chain
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

TERMINAL = {"completed", "failed", "cancelled", "interrupted"}
# the execution's counters (`stats.counts`) the progress line shows, under short names
SHOWN = {
    "adapter:discover:sitemap_parser:sitemap_parser.urls": "urls in sitemap",
    "adapter:fetch:web_scraper:web_scraper.fetched": "pages fetched",
    "route:convert:in": "pages converted",
    "queue:docs.segments": "segments",
}


def progress(execution_id: str) -> int:
    """Print the counters whenever they change; exit 0 when the execution completed."""
    server = os.environ.get("FACTFLOW_SERVER_URL", "http://127.0.0.1:8000")
    url = f"{server}/api/v1/executions/{execution_id}"
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


def segments(path: str) -> None:
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    urls = {r["payload"]["url"] for r in rows}
    tokens = sum(r["payload"]["token_count"] for r in rows)
    print(f"pages fetched and converted: {len(urls)}")
    print(f"segments made:               {len(rows)} ({tokens} tokens, <= 256 each)")
    # a segment deep in its page shows the heading path best
    sample = max(rows, key=lambda r: (len(r["payload"]["heading_path"]), r["payload"]["url"]))
    p = sample["payload"]
    text = " ".join(p["text"].split())
    print("\nsample segment")
    print(f"  source url:   {p['url']}")
    print(f"  title:        {p['title']}")
    print(f"  heading path: {' > '.join(p['heading_path'])}")
    print(f"  tokens:       {p['token_count']}")
    print(f"  text:         {text[:240]}{'...' if len(text) > 240 else ''}")
    print(f"  lineage row:  {sample['correlation_id']}")


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
    if command == "segments" and len(argv) == 2:
        segments(argv[1])
        return 0
    if command == "chain" and len(argv) == 1:
        chain(json.load(sys.stdin))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
