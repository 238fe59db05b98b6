"""Bytewax recovery partitions archived in Postgres, and restored from there.

Workers keep recovery in a local directory (Bytewax has no other backend); while an
execution runs, each process copies the partitions it owns into Postgres every few
seconds (its processes may run on several hosts, each with a directory of its own), so
a worker whose machine or directory is gone resumes from Postgres alone. Bytewax keeps old
snapshots for `backup_interval`, which must exceed the archive interval so that an
archived set of partitions always shares a resumable epoch.
"""

from __future__ import annotations

import atexit
import logging
import threading
import uuid
from pathlib import Path

from factflow.db.connection import connect
from factflow.db.exceptions import DatabaseError
from factflow.db.recovery_files import archive_directory, local_is_stale, restore_directory
from factflow.outage import Outage, postgres_what

log = logging.getLogger(__name__)

ARCHIVE_SECONDS = 5.0


def restore_if_stale(
    url: str, execution_id: uuid.UUID, recovery_dir: Path, steps: str, *, always: bool = False
) -> int:
    """Restore the newest archived set when the local directory is missing or older
    (or, `always`, whenever there is one).

    Returns the number of partitions restored (0 when the local copy is current).
    A set of another Bytewax version or other step ids raises RecoveryArchiveError.
    """
    with connect(url) as conn:
        if not always and not local_is_stale(conn, execution_id, recovery_dir):
            return 0
        return restore_directory(conn, execution_id, recovery_dir, step_fingerprint=steps)


class RecoveryArchiver:
    """Archives a recovery directory every `interval` seconds from a daemon thread."""

    def __init__(
        self,
        url: str,
        execution_id: uuid.UUID,
        recovery_dir: Path,
        steps: str,
        partitions: set[int] | None = None,
        interval: float = ARCHIVE_SECONDS,
    ) -> None:
        self.url, self.execution_id, self.recovery_dir = url, execution_id, recovery_dir
        self.steps, self.interval = steps, interval
        self.partitions = partitions
        """Only these partitions (the process's own); None: all of them."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="factflow-archiver", daemon=True)
        # the local directory has everything: the archive alone never fails the run
        self._outage = Outage(postgres_what(url), fatal=False)

    def start(self) -> None:
        """Archive periodically, and once more when the process exits normally (a run
        that ended must not resume from an older archive)."""
        self._thread.start()
        atexit.register(self._final)

    def _final(self) -> None:
        self.stop()
        try:
            self.archive_once()
        except DatabaseError as exc:
            log.warning("final recovery archive of %s failed: %s", self.execution_id, exc)

    def stop(self) -> None:
        self._stop.set()

    def archive_once(self) -> int:
        with connect(self.url) as conn:
            archived = archive_directory(
                conn,
                self.execution_id,
                self.recovery_dir,
                step_fingerprint=self.steps,
                partitions=self.partitions,
            )
        return len(archived)

    def _run(self) -> None:
        # once at the start too: a resume on other hosts needs every partition archived,
        # a process killed in its first seconds included
        while True:
            try:
                self.archive_once()
            except DatabaseError as exc:
                # the next round tries again; the local directory still has everything
                self._outage.failed(f"recovery archive of {self.execution_id}: {exc}")
            else:
                self._outage.recovered()
            if self._stop.wait(self.interval):
                self._outage.forget()
                return
