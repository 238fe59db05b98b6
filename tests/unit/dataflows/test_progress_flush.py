"""Progress files written by two flushes at once (the flushing thread and exit's flush)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from factflow.dataflows.progress import WAITING_SUFFIX, Progress, read_counts


def test_concurrent_flushes_leave_each_file_its_own_content(tmp_path: Path) -> None:
    # they shared one temporary file: a waiting file could get the counters' JSON (a dict,
    # which `factflow run` then failed to read) and a slow flush could overwrite newer
    # counters with older ones
    progress = Progress(tmp_path / "1.json")
    progress.add("messages_in", 1)
    errors: list[BaseException] = []

    def flush_many() -> None:
        try:
            for _ in range(300):
                progress.add("messages_in", 1)
                progress.flush()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=flush_many) for _ in range(3)]
    for thread in threads:
        thread.start()
    waiting_file = (tmp_path / "1.json").with_suffix(WAITING_SUFFIX)
    seen_kinds = set()
    while any(t.is_alive() for t in threads):
        if waiting_file.exists():
            seen_kinds.add(type(json.loads(waiting_file.read_text())))
    for thread in threads:
        thread.join()
    assert errors == []
    assert seen_kinds <= {list}  # never the counters' dict
    progress.flush()
    assert read_counts(tmp_path) == {"messages_in": 901}
