"""The batch sizer, and the file and memory sources handing out what it allows and no more."""

from __future__ import annotations

import json
import time
from itertools import pairwise
from pathlib import Path

import pytest

from factflow.connectors.batching import GROWTH, TARGET_BATCH_SECONDS, BatchSizer
from factflow.connectors.file import BATCH_LINES, FileOffset, FileSource
from factflow.connectors.memory import MemoryQueues, MemorySource
from factflow.messages import Message


def _full_batches(sizer: BatchSizer, seconds_per_message: float, batches: int) -> list[int]:
    """The limits after each of `batches` batches as large as allowed, at that cost."""
    limits = [sizer.observe(0.0, 0)]
    for _ in range(batches):
        limits.append(sizer.observe(limits[-1] * seconds_per_message, limits[-1]))
    return limits[1:]


def _grew_at_most_by_growth(sizes: list[int]) -> bool:
    return all(size <= GROWTH * prev for prev, size in pairwise(sizes))


def test_the_first_batch_is_one_message() -> None:
    assert BatchSizer(1000).limit() == 1


def test_a_fast_pipeline_doubles_up_to_the_maximum() -> None:
    limits = _full_batches(BatchSizer(1000), 1e-6, 12)
    assert limits == [2, 4, 8, 16, 32, 64, 128, 256, 512, 1000, 1000, 1000]


def test_a_slow_pipeline_settles_where_a_batch_takes_the_target() -> None:
    limits = _full_batches(BatchSizer(5000), 0.005, 20)
    assert limits[-1] == round(TARGET_BATCH_SECONDS / 0.005)  # 50 messages of 5 ms
    assert max(limits) * 0.005 <= TARGET_BATCH_SECONDS


def test_a_batch_slower_than_planned_shrinks_the_next_one_at_once() -> None:
    sizer = BatchSizer(1000)
    _full_batches(sizer, 1e-6, 12)
    assert sizer.observe(1000 * 0.1, 1000) == 2  # the adapter got slow: 100 ms a message
    assert sizer.observe(10.0, 1) == 1  # slower than a whole batch should take


def test_growth_is_bounded_when_cheap_messages_come_first() -> None:
    sizer = BatchSizer(5000)
    [*_, settled] = _full_batches(sizer, 0.005, 20)
    assert sizer.observe(0.0, settled) == GROWTH * settled  # too quick for the clock


def test_empty_batches_say_nothing_about_cost() -> None:
    sizer = BatchSizer(1000)
    [*_, before] = _full_batches(sizer, 1e-6, 5)
    assert sizer.observe(30.0, 0) == before  # a long wait for messages that did not come


def test_limit_prices_the_time_since_the_previous_call() -> None:
    sizer = BatchSizer(1000)
    _full_batches(sizer, 1e-6, 6)  # limit 64
    handed = sizer.limit()
    sizer.handed_out(handed)
    time.sleep(0.2)  # the worker took at least 200 ms for them
    kept = sizer.limit()
    assert kept <= int(TARGET_BATCH_SECONDS / (0.2 / handed)) < GROWTH * handed
    # nothing handed out since: the next call observes nothing and keeps the limit
    time.sleep(0.05)
    assert sizer.limit() == kept


@pytest.mark.parametrize(
    ("minimum", "maximum", "target"), [(1, 0, 0.25), (0, 10, 0.25), (1, 10, 0.0)]
)
def test_bad_arguments_are_rejected(minimum: int, maximum: int, target: float) -> None:
    with pytest.raises(ValueError, match="minimum and maximum must be >= 1"):
        BatchSizer(maximum, minimum=minimum, target_seconds=target)


def _lines(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"n": i}) + "\n" for i in range(n)))
    return path


def test_file_source_snapshot_covers_only_the_lines_handed_out(tmp_path: Path) -> None:
    path = _lines(tmp_path / "q.jsonl", 3 * BATCH_LINES)
    partition = FileSource(path, "q").build_part("step", "0", None)
    sizes = [len(partition.next_batch()) for _ in range(4)]
    at = partition.snapshot()
    partition.close()
    assert sizes[0] == 1
    assert _grew_at_most_by_growth(sizes)
    assert isinstance(at, FileOffset)
    assert at.line == sum(sizes)  # the rest is not read, so a resume reads it
    resumed = FileSource(path, "q").build_part("step", "0", at)
    [first] = resumed.next_batch()
    resumed.close()
    assert isinstance(first, Message)
    assert first.payload == {"n": sum(sizes)}


def test_file_source_limit_counts_the_partitions_own_lines(tmp_path: Path) -> None:
    path = _lines(tmp_path / "q.jsonl", 40)
    partition = FileSource(path, "q", partitions=2).build_part("step", "1", None)
    sizes, got = [], []
    for _ in range(3):
        batch = partition.next_batch()
        sizes.append(len(batch))
        got += [m.payload for m in batch if isinstance(m, Message)]
    partition.close()
    assert sizes[0] == 1
    assert _grew_at_most_by_growth(sizes)
    assert got == [{"n": n} for n in range(1, 2 * len(got), 2)]


def test_memory_source_hands_out_what_the_sizer_allows() -> None:
    MemoryQueues.clear()
    MemoryQueues.put("q", [{"n": i} for i in range(100)])
    try:
        partition = MemorySource("q").build_part("step", "0", None)
        sizes = [len(partition.next_batch()) for _ in range(3)]
        assert sizes[0] == 1
        assert _grew_at_most_by_growth(sizes)
        assert partition.snapshot() == sum(sizes) < 100
    finally:
        MemoryQueues.clear()


def test_the_minimum_holds_however_slow_messages_are() -> None:
    # a route running 8 async calls at once: 8 take as long as one
    sizer = BatchSizer(1000, minimum=8)
    assert sizer.limit() == 8
    assert sizer.observe(2.0, 8) == 8
    assert BatchSizer(100, minimum=500).limit() == 100  # never above the maximum
