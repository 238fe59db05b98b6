"""Outage status (factflow/outage.py) as the live view, the routes endpoint and the metrics
read it: through the progress files and the metrics text of a worker process; and stable
ids of raw records without one (factflow/ids.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from factflow.dataflows.metrics import WorkerMetrics
from factflow.dataflows.progress import Progress, read_waiting
from factflow.ids import record_id, record_position
from factflow.outage import Outage, waiting


def test_waiting_status_goes_through_the_progress_files_and_metrics(tmp_path: Path) -> None:
    broker = Outage("rabbitmq at amqp://guest:***@host/", queue="orders")
    other = Outage("rabbitmq at amqp://guest:***@host/", queue="events")
    try:
        broker.failed(ConnectionError("refused"))
        other.failed(ConnectionError("refused"))
        Progress(tmp_path / "1.json").flush()
        [w] = [w for w in read_waiting(tmp_path) if w.what == broker.what]
        assert (w.what, w.waiters, w.queues) == (broker.what, 2, ("events", "orders"))
        assert w.since == broker.since()
        metrics = WorkerMetrics("e1").text().decode()
        assert f'factflow_waiting{{execution_id="e1",what="{broker.what}"}} 2.0' in metrics
    finally:
        broker.recovered()
        other.recovered()
    # another test of this pytest worker may have left its own outage in the status
    assert broker.what not in [w.what for w in waiting()]
    Progress(tmp_path / "1.json").flush()
    assert broker.what not in [w.what for w in read_waiting(tmp_path)]
    assert f'what="{broker.what}"' not in WorkerMetrics("e1").text().decode()


def test_a_raw_record_without_an_id_gets_the_same_id_in_every_process() -> None:
    body = b"\xff\xfe not utf-8"
    code = (
        "from factflow.ids import record_id, record_position;"
        f"print(record_id('q', record_position(None, {body!r}, 'corr', None)))"
    )
    ids = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={"PYTHONHASHSEED": str(seed), "PYTHONPATH": str(Path.cwd())},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in (1, 2)
    }
    assert ids == {record_id("q", record_position(None, body, "corr", None))}
    # the broker's own id wins; the publisher's properties tell equal bodies apart
    assert record_position("m-1", body) == "m-1"
    assert record_position(None, body, "a") != record_position(None, body, "b")
