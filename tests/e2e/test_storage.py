"""Stage storage from a real run: every adapter's output under
`executions/<execution-id>/<route-id>/<stage>/<message-id>.json` with a `.meta.json`
sidecar on `file://` storage, except where `store: false`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.helpers import factflow_run, read_jsonl, write_jsonl


def test_every_stage_output_is_stored_with_a_sidecar(tmp_path: Path, env: dict[str, str]) -> None:
    storage = tmp_path / "storage"
    (tmp_path / "p.yaml").write_text(
        f"""\
version: "1.0"
name: stored
queue: {{provider: file, path: ./queues}}
storage: {{uri: "file://{storage}"}}
routes:
  ingest:
    inbound: {{queue: docs}}
    adapters:
      - type: set_metadata
        config: {{values: {{url: "https://example.org/doc"}}}}
      - type: split
        config: {{field: items}}
        store: false
    outbound: mid
  tag:
    inbound: {{queue: mid}}
    adapters:
      - type: set_metadata
        name: tagged
        config: {{values: {{tagged: true}}}}
    outbound: out
"""
    )
    write_jsonl(tmp_path / "docs.jsonl", [{"items": [1, 2]}, {"items": [3]}, {"items": []}])
    done = factflow_run(
        "p.yaml",
        "--input",
        f"docs={tmp_path / 'docs.jsonl'}",
        "--execution-id",
        "exec-1",
        env={**env, "FACTFLOW_STORE_STAGES": "1"},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # the summary says where everything went
    assert "outputs: queues/out.jsonl (file queues are appended to" in done.stderr
    assert f"stage storage: {storage}/executions/exec-1/" in done.stderr
    assert "logs: output/runs/exec-1/logs/" in done.stderr
    out = read_jsonl(tmp_path / "queues" / "out.jsonl")
    assert sorted(r["payload"] for r in out) == [1, 2, 3]

    root = storage / "executions" / "exec-1"
    assert sorted(p.name for p in root.iterdir()) == ["ingest", "tag"]
    assert sorted(p.name for p in (root / "ingest").iterdir()) == ["set_metadata"]  # split: no
    assert sorted(p.name for p in (root / "tag").iterdir()) == ["tagged"]

    # the last stage's artefacts are exactly the messages on the output queue
    stored = {p.name for p in (root / "tag" / "tagged").iterdir()}
    ids = {r["message_id"] for r in out}
    assert stored == {f"{i}.json" for i in ids} | {f"{i}.json.meta.json" for i in ids}
    for record in out:
        artefact = root / "tag" / "tagged" / f"{record['message_id']}.json"
        body = json.loads(artefact.read_text())
        assert body["payload"] == record["payload"]
        assert body["message_id"] == record["message_id"]
        sidecar = json.loads(Path(f"{artefact}.meta.json").read_text())
        meta = sidecar["metadata"]
        assert meta["execution-id"] == "exec-1"
        assert meta["route-id"] == "tag"
        assert meta["stage"] == "tagged"
        assert meta["message-id"] == record["message_id"]
        assert meta["correlation-id"] == record["correlation_id"]
        assert meta["source-url"] == "https://example.org/doc"
        assert sidecar["content_type"] == "application/json"
        assert sidecar["size"] == artefact.stat().st_size

    first_stage = sorted((root / "ingest" / "set_metadata").glob("*.json"))
    objects = [p for p in first_stage if not p.name.endswith(".meta.json")]
    assert len(objects) == 3  # one per document, the empty one included
    for artefact in objects:
        body = json.loads(artefact.read_text())
        assert body["metadata"]["url"] == "https://example.org/doc"
        assert artefact.name == f"{body['message_id']}.json"
        assert Path(f"{artefact}.meta.json").is_file()
