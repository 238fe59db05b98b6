"""Lineage written by a real run (`python -m bytewax.run factflow.flow` with
FACTFLOW_DATABASE_URL): one row per input message per adapter invocation, for fan-out,
filtering, dead letters and gates, with parents that chain a leaf back to its root.

Route `explode` splits each document into its items and filters out those without
`keep`; route `finish` runs an always-failing adapter gated on `doom` (so only doomed
items reach it) and then a passthrough. Rows are matched to payloads by `input_hash`.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from factflow.dataflows.lineage import payload_hash
from factflow.db import connect
from factflow.db.lineage_writer import LineageRecord
from factflow.db.repositories.dead_letters import list_dead_letters
from factflow.db.repositories.lineage import (
    adapter_stats,
    ancestors,
    children,
    descendants,
    execution_stats,
    failures,
    route_stats,
)
from tests.e2e.helpers import T, bytewax_run, read_jsonl, worker_env, write_jsonl
from tests.integration.flows import database, lineage_rows, write_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DOCS: list[dict[str, Any]] = [
    {
        "doc": 0,
        "items": [
            {"i": 0, "keep": True},
            {"i": 1, "keep": False},
            {"i": 2, "keep": True, "doom": True},
            {"i": 3, "keep": True},
        ],
    },
    {"doc": 1, "items": []},
    {"doc": 2, "items": [{"i": 4, "keep": True}, {"i": 5, "keep": False}]},
    {"doc": 3, "items": [{"i": 6, "keep": True, "doom": True}]},
]
ITEMS = [item for doc in DOCS for item in doc["items"]]
KEPT = [item for item in ITEMS if item["keep"]]
DOOMED = [item for item in KEPT if item.get("doom")]
PASSED = [item for item in KEPT if not item.get("doom")]
MAX_RETRIES = 1

PIPELINE = f"""
error_handling:
  max_retries: {MAX_RETRIES}
  retry_delay_seconds: 0
  circuit_breaker_threshold: 100
routes:
  explode:
    inbound: {{queue: docs}}
    adapters:
      - type: split
        config: {{field: items}}
      - type: filter
        config: {{field: keep, operator: eq, value: true}}
    outbound: kept
  finish:
    inbound: {{queue: kept}}
    adapters:
      - type: "{T}:AlwaysFails"
        condition: {{field: doom, operator: eq, value: true}}
      - type: passthrough
    outbound: out
"""


@pytest.fixture
def db_url(pg_url: str) -> Iterator[str]:
    # not migrated: the workers apply the schema themselves at start
    with database(pg_url, migrated=False) as url:
        yield url


def _by_hash(rows: list[LineageRecord], payloads: list[Any]) -> dict[int, LineageRecord]:
    """Index in `payloads` -> the one row whose input was that payload."""
    wanted = {payload_hash(p): i for i, p in enumerate(payloads)}
    found: dict[int, LineageRecord] = {}
    for row in rows:
        index = wanted[row.input_hash or ""]
        assert index not in found, f"two rows for {payloads[index]}"
        found[index] = row
    assert sorted(found) == list(range(len(payloads)))
    return found


def test_lineage_of_fan_out_filter_gate_and_dead_letters(tmp_path: Path, db_url: str) -> None:
    execution = uuid.uuid4()
    write_jsonl(tmp_path / "queues" / "docs.jsonl", DOCS)
    pipeline = write_pipeline(tmp_path, "lineage", PIPELINE)
    env = worker_env(
        FACTFLOW_PIPELINE=str(pipeline),
        FACTFLOW_EXECUTION_ID=str(execution),
        FACTFLOW_DATABASE_URL=db_url,
    )
    done = bytewax_run("factflow.flow", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]

    rows = lineage_rows(db_url, execution)
    steps = Counter((r.route_id, r.adapter_index) for r in rows)
    # the gate let only doomed items reach adapter 0 of `finish`: the others have no row
    assert steps == {
        ("explode", 0): len(DOCS),
        ("explode", 1): len(ITEMS),
        ("finish", 0): len(DOOMED),
        ("finish", 1): len(PASSED),
    }
    split = _by_hash([r for r in rows if r.adapter_name == "split"], DOCS)
    filtered = _by_hash([r for r in rows if r.adapter_name == "filter"], ITEMS)
    dead = _by_hash([r for r in rows if r.route_id == "finish" and r.adapter_index == 0], DOOMED)
    passed = _by_hash([r for r in rows if r.adapter_name == "passthrough"], PASSED)

    # fan-out: documents are roots; every item's row descends from its document's row
    for d, doc in enumerate(DOCS):
        assert split[d].parent_id is None
        assert split[d].status == ("completed" if doc["items"] else "filtered")
        assert split[d].output_hash == (payload_hash(doc["items"]) if doc["items"] else None)
    doc_of = [d for d, doc in enumerate(DOCS) for _ in doc["items"]]
    for i, item in enumerate(ITEMS):
        row = filtered[i]
        assert row.parent_id == split[doc_of[i]].id
        assert row.status == ("completed" if item["keep"] else "filtered")
        assert (row.attempts, row.error) == (1, None)
    # dead letters: every attempt counted, the error kept, the parent is the filter's row
    for k, item in enumerate(DOOMED):
        row = dead[k]
        assert row.status == "dead_lettered"
        assert row.attempts == MAX_RETRIES + 1
        assert row.error == f"RuntimeError: always fails on {item!r}"
        assert row.parent_id == filtered[ITEMS.index(item)].id
        assert row.output_hash is None
    # past a gate that did not hold, the parent is the last row written before it
    for k, item in enumerate(PASSED):
        assert passed[k].status == "completed"
        assert passed[k].parent_id == filtered[ITEMS.index(item)].id

    # sink output: correlation_id is the row of the route's last adapter
    out = read_jsonl(tmp_path / "queues" / "out.jsonl")
    assert sorted(o["payload"]["i"] for o in out) == [item["i"] for item in PASSED]
    for envelope in out:
        row = passed[PASSED.index(envelope["payload"])]
        assert envelope["correlation_id"] == str(row.id)
        assert envelope["message_id"] == row.message_id
        assert envelope["execution_id"] == str(execution)

    with connect(db_url) as conn:
        # the dead letters went to the table (file provider), linked to their rows
        letters = list_dead_letters(conn, execution_id=execution)
        assert {letter.lineage_id for letter in letters} == {r.id for r in dead.values()}
        assert {(letter.route_id, letter.queue, letter.attempts) for letter in letters} == {
            ("finish", "kept", MAX_RETRIES + 1)
        }
        assert not (tmp_path / "queues" / "finish.dlq.jsonl").exists()

        leaf = passed[0]  # item 0 of document 0
        chain = ancestors(conn, leaf.id)
        assert [r.id for r in chain] == [filtered[0].id, split[0].id]
        assert chain[-1].parent_id is None
        root = split[0].id
        doc0 = [i for i, d in enumerate(doc_of) if d == 0]
        assert {r.id for r in children(conn, root)} == {filtered[i].id for i in doc0}
        below = descendants(conn, root)
        doc0_items = [ITEMS[i] for i in doc0]
        expected_below = (
            {filtered[i].id for i in doc0}
            | {dead[k].id for k, item in enumerate(DOOMED) if item in doc0_items}
            | {passed[k].id for k, item in enumerate(PASSED) if item in doc0_items}
        )
        assert {r.id for r in below} == expected_below
        assert [r.route_id for r in below[: len(doc0)]] == ["explode"] * len(doc0)
        assert descendants(conn, split[1].id) == []  # an empty document fanned out nothing

        assert {r.id for r in failures(conn, execution)} == {r.id for r in dead.values()}
        stats = execution_stats(conn, execution)
        per_route = {s.route_id: s for s in route_stats(conn, execution)}
        per_adapter = {(s.route_id, s.adapter_index): s for s in adapter_stats(conn, execution)}

    empty_docs = sum(1 for doc in DOCS if not doc["items"])
    dropped = len(ITEMS) - len(KEPT)
    assert (stats.total, stats.completed, stats.filtered, stats.dead_lettered) == (
        len(rows),
        len(DOCS) - empty_docs + len(KEPT) + len(PASSED),
        empty_docs + dropped,
        len(DOOMED),
    )
    assert (stats.failed, stats.in_progress) == (0, 0)
    assert stats.retries == len(DOOMED) * MAX_RETRIES
    assert stats.first_started_at is not None
    assert stats.last_completed_at is not None
    assert stats.first_started_at <= stats.last_completed_at
    assert (per_route["explode"].total, per_route["explode"].filtered) == (
        len(DOCS) + len(ITEMS),
        empty_docs + dropped,
    )
    assert (per_route["finish"].total, per_route["finish"].dead_lettered) == (
        len(KEPT),
        len(DOOMED),
    )
    assert {key: s.total for key, s in per_adapter.items()} == steps
    assert per_adapter[("finish", 1)].adapter_name == "passthrough"
