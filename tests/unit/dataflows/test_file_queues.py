"""The `file` provider's source and sink partitions, driven directly as Bytewax would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from factflow.connectors.file import FileOffset, FileSink, FileSource
from factflow.deadletter import Undecodable
from factflow.messages import Message


def _drain(source: FileSource, part: str = "0", resume: Any = None) -> list[Any]:
    """Every item of one partition until StopIteration (bounded: a source that never ends
    fails the test instead of hanging it)."""
    partition = source.build_part("step", part, resume)
    items: list[Any] = []
    try:
        for _ in range(100):
            items += partition.next_batch()
    except StopIteration:
        return items
    finally:
        partition.close()
    msg = "the source did not end at EOF"
    raise AssertionError(msg)


def _payloads(items: list[Any]) -> list[Any]:
    return [m.payload for m in items if isinstance(m, Message)]


def test_source_reads_envelopes_and_bare_payloads(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(
        json.dumps({"message_id": "m1", "payload": {"a": 1}, "metadata": {"k": "v"}})
        + "\n"
        + json.dumps([1, 2])
        + "\n\n"
    )
    first, second = _drain(FileSource(path, "q"))
    assert (first.message_id, first.payload, first.metadata) == ("m1", {"a": 1}, {"k": "v"})
    assert second.payload == [1, 2]


def test_last_line_without_newline_is_read_and_the_source_ends(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"n": 1}\n{"n": 2}')
    assert _payloads(_drain(FileSource(path, "q"))) == [{"n": 1}, {"n": 2}]


def test_undecodable_line_is_an_item_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"n": 1}\nnot json\n{"n": 2}\n')
    items = _drain(FileSource(path, "q"))
    assert _payloads(items) == [{"n": 1}, {"n": 2}]
    [bad] = [i for i in items if isinstance(i, Undecodable)]
    assert (bad.queue, bad.body, bad.preview) == ("q", b"not json", "not json")


def test_source_resumes_from_its_snapshot_with_the_same_ids(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps({"n": n}) + "\n" for n in range(10)))
    everything = _drain(FileSource(path, "q"))
    partition = FileSource(path, "q").build_part("step", "0", None)
    read = 0
    while read < 10:  # batches start small (connectors/batching.py)
        read += len(partition.next_batch())
    at = partition.snapshot()
    partition.close()
    assert at == FileOffset(path.stat().st_size, 10)
    assert _drain(FileSource(path, "q"), resume=at) == []
    # an offset in the middle: the rest of the lines, with the ids of the first read
    middle = FileOffset(_offset(path, 4), 4)
    rest = _drain(FileSource(path, "q"), resume=middle)
    assert [m.message_id for m in rest] == [m.message_id for m in everything[4:]]
    assert _payloads(rest) == [{"n": n} for n in range(4, 10)]


def _offset(path: Path, line: int) -> int:
    return sum(len(x) + 1 for x in path.read_bytes().split(b"\n")[:line])


def test_partitions_share_the_lines_and_keep_ids(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps({"n": n}) + "\n" for n in range(9)))
    one = {m.message_id: m.payload for m in _drain(FileSource(path, "q"))}
    source = FileSource(path, "q", partitions=3)
    assert source.list_parts() == ["0", "1", "2"]
    parts = [_drain(source, part) for part in source.list_parts()]
    assert _payloads(parts[1]) == [{"n": 1}, {"n": 4}, {"n": 7}]
    assert {m.message_id: m.payload for p in parts for m in p} == one


def test_missing_source_file_ends_at_once(tmp_path: Path) -> None:
    assert _drain(FileSource(tmp_path / "nothing.jsonl", "q")) == []


def test_sink_appends_envelopes_as_lines(tmp_path: Path) -> None:
    sink = FileSink(tmp_path, "/queue/out", fsync=False)
    assert sink.path == tmp_path / "_queue_out.jsonl"
    first = sink.build("step", 0, 2)
    second = sink.build("step", 1, 2)
    first.write_batch([Message({"n": 1}, message_id="a")])
    second.write_batch([Message({"n": 2}, message_id="b"), Message({"n": 3}, message_id="c")])
    first.write_batch([])
    first.close()
    second.close()
    records = [json.loads(line) for line in sink.path.read_text().splitlines()]
    assert [(r["message_id"], r["payload"]) for r in records] == [
        ("a", {"n": 1}),
        ("b", {"n": 2}),
        ("c", {"n": 3}),
    ]


def test_sink_after_a_torn_line_keeps_its_records_whole(tmp_path: Path) -> None:
    # a writer killed in the middle of a write leaves a line without its newline
    sink = FileSink(tmp_path, "out", fsync=False)
    sink.path.write_bytes(b'{"payload": 1}\n{"payload": 2, "meta')
    partition = sink.build("step", 0, 1)
    partition.write_batch([Message({"n": 3}, message_id="c")])
    partition.close()
    lines = sink.path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    assert lines[1] == b'{"payload": 2, "meta'
    assert json.loads(lines[-2])["message_id"] == "c"
