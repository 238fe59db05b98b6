"""Segments shaped as `segment_publisher` emits them (payload `text`, `token_count`,
`heading_path`, `index`, `segment_count`, `url`, `title`, `document_id`; the same
provenance in metadata), over three small pages, for indexing and search tests."""

from __future__ import annotations

from typing import Any

PAGES: dict[str, tuple[str, list[tuple[list[str], str]]]] = {
    "http://docs.test/recovery": (
        "Recovery",
        [
            (["Recovery"], "Bytewax snapshots each partition at the end of every epoch."),
            (
                ["Recovery", "Resuming"],
                "A worker killed with SIGKILL resumes from its last snapshot; duplicates are "
                "bounded by one epoch.",
            ),
        ],
    ),
    "http://docs.test/queues": (
        "Queue providers",
        [
            (["Queue providers"], "RabbitMQ queues use manual acknowledgements."),
            (["Queue providers", "Kafka"], "Kafka offsets live in the recovery snapshot."),
        ],
    ),
    "http://docs.test/cooking": (
        "Pancakes",
        [(["Pancakes"], "Whisk flour, eggs and milk into a smooth batter, then fry it.")],
    ),
}


def segments(pages: dict[str, tuple[str, list[tuple[list[str], str]]]] = PAGES) -> list[Any]:
    """Envelopes (`payload` + `metadata`) of every page's segments."""
    out: list[Any] = []
    for url, (title, parts) in pages.items():
        document_id = url.rsplit("/", 1)[-1]
        for index, (heading_path, text) in enumerate(parts):
            provenance = {"url": url, "title": title, "document_id": document_id}
            out.append(
                {
                    "payload": {
                        "text": text,
                        "token_count": len(text.split()),
                        "heading_path": heading_path,
                        "index": index,
                        "segment_count": len(parts),
                        **provenance,
                    },
                    "metadata": {**provenance, "heading_path": heading_path},
                }
            )
    return out
