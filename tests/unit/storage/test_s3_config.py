"""S3 / MinIO storage settings, checked without a server: URIs, environment, defaults,
pickling, masking. The calls against a real server are in tests/integration/storage."""

from __future__ import annotations

import pickle
import socket

import pytest

from factflow.storage import StorageConfigurationError, StorageUnavailableError, open_storage
from factflow.storage.s3 import S3Storage

SECRET = "s3cr3t-Value-123"


def test_uri_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENDPOINT", "ACCESS_KEY", "SECRET_KEY", "SECURE", "REGION"):
        monkeypatch.delenv(f"FACTFLOW_S3_{name}", raising=False)
    storage = open_storage("minio://artefacts/team/a/")
    assert isinstance(storage, S3Storage)
    assert (storage.scheme, storage.bucket, storage.prefix) == ("minio", "artefacts", "team/a")
    assert storage.uri == "minio://artefacts/team/a"
    assert storage.endpoint_url == "http://127.0.0.1:9000"
    assert open_storage("s3://artefacts").uri == "s3://artefacts"


def test_environment_and_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACTFLOW_S3_ENDPOINT", "s3.example.com")
    monkeypatch.setenv("FACTFLOW_S3_SECRET_KEY", SECRET)
    assert open_storage("s3://b1b").endpoint_url == "https://s3.example.com"  # type: ignore[attr-defined]
    local = open_storage("s3://b1b", {"endpoint": "localhost:9100"})
    assert local.endpoint_url == "http://localhost:9100"  # type: ignore[attr-defined]
    explicit = open_storage("s3://b1b", {"endpoint": "http://10.0.0.5:9000"})
    assert explicit.endpoint_url == "http://10.0.0.5:9000"  # type: ignore[attr-defined]
    monkeypatch.setenv("FACTFLOW_S3_SECURE", "false")
    assert open_storage("s3://b1b").endpoint_url == "http://s3.example.com"  # type: ignore[attr-defined]


def test_environ_can_be_passed_explicitly() -> None:
    storage = S3Storage("bucket", environ={"FACTFLOW_S3_ENDPOINT": "[::1]:9000"})
    assert storage.endpoint_url == "http://[::1]:9000"


@pytest.mark.parametrize(
    ("uri", "options", "match"),
    [
        ("s3://Bad_Bucket/x", None, "bucket name"),
        ("s3://ab/x", None, "bucket name"),
        ("s3:///x", None, "bucket name"),
        ("s3://bucket/../x", None, "prefix segment"),
        ("s3://bucket/x?region=eu", None, "query or fragment"),
        ("s3://bucket", {"endpoint": "ftp://host"}, "http or https"),
        ("s3://bucket", {"endpoint": "host:9000/path"}, "HOST"),
        ("s3://bucket", {"endpoint": "host:99999"}, "invalid port"),
        ("s3://bucket", {"endpoint": "https://h", "secure": False}, "contradicts"),
        ("s3://bucket", {"secure": "sometimes"}, "true or false"),
        ("s3://bucket", {"read_timeout": 0}, "positive number"),
        ("s3://bucket", {"acess_key": "x"}, "did you mean 'access_key'"),
    ],
)
def test_bad_settings_are_configuration_errors(
    uri: str, options: dict[str, object] | None, match: str
) -> None:
    with pytest.raises(StorageConfigurationError, match=match):
        open_storage(uri, options)


def test_credentials_never_appear_in_errors_or_repr() -> None:
    with pytest.raises(StorageConfigurationError, match="may not carry credentials") as info:
        open_storage(f"s3://admin:{SECRET}@bucket/x")
    assert SECRET not in str(info.value)
    with pytest.raises(StorageConfigurationError, match="may not carry credentials") as info:
        open_storage("s3://bucket", {"endpoint": f"http://admin:{SECRET}@host:9000"})
    assert SECRET not in str(info.value)
    storage = open_storage("s3://bucket", {"access_key": "admin", "secret_key": SECRET})
    assert SECRET not in repr(storage)
    assert SECRET not in storage.uri


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_constructing_connects_nothing_and_pickles() -> None:
    port = free_port()
    storage = open_storage("s3://bucket/p", {"endpoint": f"127.0.0.1:{port}", "secret_key": SECRET})
    copy = pickle.loads(pickle.dumps(storage))
    assert repr(copy) == repr(storage)
    storage.close()  # closing an unused storage is fine, and so is closing twice
    storage.close()


def test_unreachable_server_is_unavailable_with_masked_message() -> None:
    port = free_port()  # nothing listens there: a refused connection, not a real server
    storage = open_storage(
        "s3://bucket/p",
        {"endpoint": f"127.0.0.1:{port}", "secret_key": SECRET, "connect_timeout": 1},
    )
    with storage, pytest.raises(StorageUnavailableError, match="cannot be reached") as info:
        storage.put("executions/e/r/s/m.json", b"{}")
    text = str(info.value)
    assert f"127.0.0.1:{port}" in text
    assert "FACTFLOW_S3_ENDPOINT" in text
    assert SECRET not in text
    assert SECRET not in repr(info.value.__cause__)
    # Usable again after close: it reconnects lazily (and fails the same way).
    with pytest.raises(StorageUnavailableError):
        storage.exists("executions/e/r/s/m.json")
    storage.close()
