"""`factflow run` with two workers, and with two processes, writes the same output multiset
as one worker: file sources split lines between partitions, ids are derived from line
numbers and parents (not from who ran them), and keyed deduplication sees every key once."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import factflow_run, read_jsonl, worker_env, write_jsonl

PIPELINE = """\
version: "1.0"
name: parallel
queue: {provider: file, path: ./queues}
error_handling: {max_retries: 0}
routes:
  ingest:
    inbound: {queue: docs}
    adapters:
      - type: set_metadata
        config: {values: {seen: true}}
      - type: split
        config: {field: paragraphs}
    outbound: [paragraphs, all]
  dedupe:
    inbound: {queue: paragraphs}
    key: payload
    adapters:
      - type: deduplicate
    outbound:
      - queue: unique.long
        condition: {field: payload, operator: matches, value: "^.{12,}$"}
      - queue: unique
"""

QUEUES = ("all", "unique", "unique.long", "ingest.dlq", "dedupe.dlq")


def _documents() -> list[Any]:
    rng = random.Random(7)
    pool = [f"paragraph {i} " + "words " * rng.randrange(3) for i in range(60)]
    docs: list[Any] = [{"paragraphs": rng.sample(pool, 4)} for _ in range(400)]
    docs[17] = {"paragraphs": "not a list"}  # one dead letter, wherever it is read
    return docs


def _run(root: Path, name: str, *args: str) -> dict[str, Counter[str]]:
    cwd = root / name
    cwd.mkdir()
    env = worker_env(FACTFLOW_RECOVERY_DIR=str(cwd / "recovery"))
    (cwd / "p.yaml").write_text(PIPELINE)
    done = factflow_run("p.yaml", "--input", f"docs={root / 'docs.jsonl'}", *args, env=env, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    if "-p" in args:  # each process read its share of the input
        [progress] = (cwd / "output" / "runs").glob("*/progress")
        counts = [json.loads(f.read_text()) for f in progress.glob("*.json")]
        assert len(counts) == 2
        assert all(c.get("route:ingest:in", 0) > 0 for c in counts)
    outputs: dict[str, Counter[str]] = {}
    for queue in QUEUES:
        records = read_jsonl(cwd / "queues" / f"{queue}.jsonl")
        if queue.endswith(".dlq"):
            keys = [json.dumps(r["message"]["payload"]) + r["error_type"] for r in records]
        elif queue == "all":
            keys = [
                json.dumps([r[k] for k in ("message_id", "correlation_id", "payload")])
                for r in records
            ]
        else:  # which duplicate comes first depends on timing: compare payloads
            keys = [json.dumps(r["payload"]) for r in records]
        outputs[queue] = Counter(keys)
    return outputs


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Counter[str]]]:
    root = tmp_path_factory.mktemp("parallel")
    write_jsonl(root / "docs.jsonl", _documents())
    return root, _run(root, "one")


def test_one_worker_baseline_is_complete(
    one_worker: tuple[Path, dict[str, Counter[str]]],
) -> None:
    _, outputs = one_worker
    docs = [d for d in _documents() if isinstance(d["paragraphs"], list)]
    assert sum(outputs["all"].values()) == 4 * len(docs)
    distinct = {p for d in docs for p in d["paragraphs"]}
    assert outputs["unique"] == Counter(json.dumps(p) for p in distinct)
    assert outputs["unique.long"] == Counter(json.dumps(p) for p in distinct if len(p) >= 12)
    assert sum(outputs["ingest.dlq"].values()) == 1
    assert not outputs["dedupe.dlq"]


@pytest.mark.parametrize("args", [("-w", "2"), ("-p", "2")], ids=["2-workers", "2-processes"])
def test_same_output_multiset_as_one_worker(
    one_worker: tuple[Path, dict[str, Counter[str]]], args: tuple[str, ...]
) -> None:
    root, expected = one_worker
    assert _run(root, "".join(args), *args) == expected
