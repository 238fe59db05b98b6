"""`s3://` / `minio://` stage storage against a real S3-compatible server. No mocks.

The server is whatever answers at FACTFLOW_TEST_S3_ENDPOINT (default 127.0.0.1:9000, keys
FACTFLOW_TEST_S3_ACCESS_KEY / FACTFLOW_TEST_S3_SECRET_KEY, default minioadmin/minioadmin):
MinIO when `scripts/services.sh start s3` started it, or moto's standalone server
(`moto_server -H 127.0.0.1 -p 9000`). The `s3_server` fixture reads the server's `Server`
header and prints which one the run used; the tests skip, with the reason, when nothing
answers. Every test works in its own bucket, removed afterwards.
"""

from __future__ import annotations

import http.client
import json
import os
import pickle
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import urllib3
from minio import Minio

from factflow.messages import Message
from factflow.storage import (
    ObjectNotFoundError,
    StorageConfigurationError,
    open_storage,
    store_message,
)
from factflow.storage.filesystem import FileSystemStorage
from factflow.storage.s3 import S3Storage

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
KEY = "executions/e1/ingest/split/m1.json"


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # host:port
    secure: bool
    access_key: str
    secret_key: str
    name: str  # which server, from its Server header

    def options(self, **extra: Any) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "secure": self.secure,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            **extra,
        }


def _identify(server_headers: list[str]) -> str:
    joined = ", ".join(server_headers) or "no Server header"
    if any("minio" in h.lower() for h in server_headers):
        return f"MinIO (Server: {joined})"
    if any("werkzeug" in h.lower() for h in server_headers):
        return f"moto standalone server (Server: {joined})"
    return f"unidentified S3-compatible server (Server: {joined})"


@pytest.fixture(scope="module")
def s3_server(request: pytest.FixtureRequest) -> S3Server:
    raw = os.environ.get("FACTFLOW_TEST_S3_ENDPOINT", "127.0.0.1:9000")
    parts = urlsplit(raw if "://" in raw else f"http://{raw}")
    secure = parts.scheme == "https"
    connection_type = http.client.HTTPSConnection if secure else http.client.HTTPConnection
    connection = connection_type(parts.hostname or "", parts.port, timeout=3)
    try:
        connection.request("HEAD", "/")
        response = connection.getresponse()
        server_headers = response.headers.get_all("Server") or []
    except OSError as exc:
        reason = (
            f"no S3-compatible server at {raw} ({exc}); start one with "
            "`scripts/services.sh start s3` or `moto_server -H 127.0.0.1 -p 9000`, "
            "or set FACTFLOW_TEST_S3_ENDPOINT"
        )
        print(reason)
        pytest.skip(reason)
    finally:
        connection.close()
    server = S3Server(
        endpoint=parts.netloc,
        secure=secure,
        access_key=os.environ.get("FACTFLOW_TEST_S3_ACCESS_KEY", "minioadmin"),
        secret_key=os.environ.get("FACTFLOW_TEST_S3_SECRET_KEY", "minioadmin"),
        name=_identify(server_headers),
    )
    # Shown in the run's output, not only on failure: which server this really was.
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if capture is not None and reporter is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\nS3 storage tests run against {server.name} at {raw}")
    return server


@pytest.fixture
def raw_client(s3_server: S3Server) -> Iterator[Minio]:
    """A plain minio client, to look at what the backend really wrote."""
    http = urllib3.PoolManager()
    yield Minio(
        s3_server.endpoint,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
        secure=s3_server.secure,
        http_client=http,
    )
    http.clear()


@pytest.fixture
def bucket(raw_client: Minio) -> Iterator[str]:
    name = f"factflow-test-{uuid.uuid4().hex[:12]}"
    yield name
    if raw_client.bucket_exists(name):
        for item in raw_client.list_objects(name, recursive=True):
            raw_client.remove_object(name, item.object_name)
        raw_client.remove_bucket(name)


@pytest.fixture
def storage(s3_server: S3Server, bucket: str) -> Iterator[S3Storage]:
    opened = open_storage(f"minio://{bucket}/run-1", s3_server.options())
    assert isinstance(opened, S3Storage)
    with opened:
        yield opened


def raw_names(raw_client: Minio, bucket: str) -> list[str]:
    return sorted(str(o.object_name) for o in raw_client.list_objects(bucket, recursive=True))


def test_put_creates_the_bucket_and_keeps_metadata_on_the_object(
    storage: S3Storage, raw_client: Minio, bucket: str
) -> None:
    assert not raw_client.bucket_exists(bucket)
    metadata = {"route-id": "ingest", "note": "ünïcode ✓", "padded": " x ", "odd": "=?no?="}
    stored = storage.put(KEY, b'{"a": 1}', metadata, "application/json")
    assert (stored.key, stored.size, stored.created) == (KEY, 8, True)
    assert raw_client.bucket_exists(bucket)
    assert storage.get(KEY) == b'{"a": 1}'
    assert storage.exists(KEY)
    assert storage.metadata(KEY) == metadata
    # Object metadata on the object itself, under the prefix; no sidecar objects.
    assert raw_names(raw_client, bucket) == [f"run-1/{KEY}"]
    stat = raw_client.stat_object(bucket, f"run-1/{KEY}")
    assert stat.content_type == "application/json"
    headers = {k.lower(): v for k, v in (stat.metadata or {}).items()}
    assert headers["x-amz-meta-route-id"] == "ingest"
    assert headers["x-amz-meta-note"].startswith("=?UTF-8?B?")


def test_put_is_idempotent_first_write_wins(
    storage: S3Storage, raw_client: Minio, bucket: str
) -> None:
    assert storage.put(KEY, b"first", {"attempt": "1"}).created
    again = storage.put(KEY, b"second, longer", {"attempt": "2"})
    assert not again.created
    assert again.size == 5
    assert storage.get(KEY) == b"first"
    assert storage.metadata(KEY) == {"attempt": "1"}
    assert raw_names(raw_client, bucket) == [f"run-1/{KEY}"]


def test_concurrent_puts_of_one_key_leave_one_object(
    storage: S3Storage, raw_client: Minio, bucket: str
) -> None:
    storage.put("executions/e1/r/s/warmup.json", b"{}")  # bucket made before the race
    payloads = [bytes([i]) * 50_000 for i in range(8)]
    barrier = threading.Barrier(len(payloads))
    errors: list[BaseException] = []

    def write(data: bytes) -> None:
        barrier.wait()
        try:
            storage.put(KEY, data)
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert storage.get(KEY) in payloads
    assert raw_names(raw_client, bucket).count(f"run-1/{KEY}") == 1


def test_list_by_prefix_matches_the_filesystem_backend(storage: S3Storage, tmp_path: Path) -> None:
    files = FileSystemStorage(tmp_path, fsync=False)
    keys = [
        "executions/e1/r/s/m2.json",
        "executions/e1/r/s/m1.json",
        "executions/e1/r.b/s/m1.json",
        "executions/e10/r/s/m1.json",
        "executions/e2/r/s/m1.json",
        "other/x",
    ]
    for key in keys:
        storage.put(key, key.encode())
        files.put(key, key.encode())
    for prefix, limit in [
        ("", None),
        ("executions/e1/", None),
        ("executions/e1", None),
        ("executions/e1/r", None),
        ("executions/", 2),
        ("executions/e3/", None),
    ]:
        on_s3 = [(i.key, i.size) for i in storage.list(prefix, limit)]
        on_disk = [(i.key, i.size) for i in files.list(prefix, limit)]
        assert on_s3 == on_disk, prefix
    assert [i.key for i in storage.list()] == sorted(keys)
    assert all(i.last_modified.tzinfo is not None for i in storage.list())


def test_missing_keys_and_buckets(storage: S3Storage, s3_server: S3Server) -> None:
    assert storage.list() == []  # the bucket does not exist yet
    assert not storage.exists(KEY)
    with pytest.raises(ObjectNotFoundError):
        storage.get(KEY)
    storage.put("executions/e1/r/s/other.json", b"{}")
    with pytest.raises(ObjectNotFoundError, match="no object stored under"):
        storage.get(KEY)
    with pytest.raises(ObjectNotFoundError):
        storage.metadata(KEY)
    assert not storage.exists(KEY)


def test_no_bucket_creation_when_disabled(s3_server: S3Server, bucket: str) -> None:
    storage = open_storage(f"s3://{bucket}", s3_server.options(create_bucket=False))
    with storage, pytest.raises(StorageConfigurationError, match="does not exist"):
        storage.put(KEY, b"{}")


def test_store_message_end_to_end(storage: S3Storage) -> None:
    message = Message(
        {"url": "https://example.org/doc", "text": "hello"},
        metadata={"embedding_model": "text-embedding-3-small"},
        message_id="m1",
    )
    key = store_message(
        storage,
        message,
        execution_id="e1",
        route_id="ingest",
        stage="split",
        lineage_id=7,
        config_hash="cafe",
    )
    assert key == KEY
    assert json.loads(storage.get(key))["payload"] == message.payload
    metadata = storage.metadata(key)
    assert metadata["execution-id"] == "e1"
    assert metadata["lineage-id"] == "7"
    assert metadata["config-hash"] == "cafe"
    assert metadata["source-url"] == "https://example.org/doc"
    assert metadata["embedding-model"] == "text-embedding-3-small"
    assert key == store_message(
        storage, message, execution_id="e1", route_id="ingest", stage="split"
    )


CHILD = """
import pickle, sys
storage = pickle.loads(sys.stdin.buffer.read())
print(storage.put("executions/e1/r/s/from-child.json", b"child").created)
print(storage.get("executions/e1/r/s/parent.json").decode())
storage.close()
"""


def test_pickled_storage_works_in_another_process(storage: S3Storage) -> None:
    """What Bytewax does with a storage object built before the workers start."""
    storage.put("executions/e1/r/s/parent.json", b"parent")  # connected: must still pickle
    result = subprocess.run(
        [sys.executable, "-c", CHILD],
        input=pickle.dumps(storage),
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
        check=True,
    )
    assert result.stdout.decode().split() == ["True", "parent"]
    assert storage.get("executions/e1/r/s/from-child.json") == b"child"


def test_wrong_credentials_fail_clearly_and_masked(s3_server: S3Server, bucket: str) -> None:
    secret = "wrong-" + uuid.uuid4().hex
    options = s3_server.options(secret_key=secret)
    with open_storage(f"s3://{bucket}", options) as storage:
        try:
            storage.put(KEY, b"{}")
        except StorageConfigurationError as exc:
            texts = [str(exc), repr(exc), str(exc.__cause__), repr(exc.__cause__)]
            assert all(secret not in text for text in texts)
            assert "check the credentials" in str(exc)
            return
    reason = f"{s3_server.name} accepts any credentials; nothing to check"
    print(reason)
    pytest.skip(reason)


def test_delete_removes_the_object(storage: S3Storage, raw_client: Minio, bucket: str) -> None:
    storage.put(KEY, b"data", {"attempt": "1"})
    storage.put(KEY + ".other", b"kept")
    assert storage.delete(KEY) is True
    assert not storage.exists(KEY)
    assert storage.delete(KEY) is False
    assert raw_names(raw_client, bucket) == [f"run-1/{KEY}.other"]
