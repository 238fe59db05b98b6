"""Reading a Bytewax 0.21 recovery directory: what a resumed run will start from.

A resumed execution starts at the resume epoch, the lowest frontier the workers of the last
execution reached (table `fronts`), and each step's state is its newest snapshot from
before that epoch (table `snaps`, pickled). A snapshot with no data is a discarded state.
"""

from __future__ import annotations

import pickle
import sqlite3
from pathlib import Path
from typing import Any


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def resume_epoch(recovery_dir: Path) -> int:
    fronts: list[tuple[int, int]] = []
    for part in sorted(recovery_dir.glob("part-*.sqlite3")):
        with _connect(part) as db:
            fronts += db.execute("SELECT ex_num, worker_frontier FROM fronts").fetchall()
    if not fronts:
        return 1
    last = max(ex for ex, _ in fronts)
    return min(frontier for ex, frontier in fronts if ex == last)


def resume_state(recovery_dir: Path, step_id: str) -> dict[str, Any]:
    """state key -> the state the step gets back when the execution is resumed."""
    epoch = resume_epoch(recovery_dir)
    newest: dict[str, tuple[int, bytes | None]] = {}
    for part in sorted(recovery_dir.glob("part-*.sqlite3")):
        with _connect(part) as db:
            rows = db.execute(
                "SELECT state_key, snap_epoch, ser_change FROM snaps "
                "WHERE step_id = ? AND snap_epoch < ?",
                (step_id, epoch),
            ).fetchall()
        for key, snap_epoch, data in rows:
            if key not in newest or snap_epoch > newest[key][0]:
                newest[key] = (snap_epoch, data)
    return {key: pickle.loads(data) for key, (_, data) in newest.items() if data is not None}
