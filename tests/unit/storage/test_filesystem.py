"""The `file://` backend: sidecars, first-write-wins, listing, and crashes that leave no half
object behind (real processes killed with SIGKILL, not simulated)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from factflow.storage import (
    InvalidKeyError,
    InvalidMetadataError,
    ObjectNotFoundError,
    StorageConfigurationError,
    StorageError,
    open_storage,
)
from factflow.storage.filesystem import FileSystemStorage

REPO = Path(__file__).resolve().parents[3]
KEY = "executions/e1/ingest/split/m1.json"


@pytest.fixture
def storage(tmp_path: Path) -> FileSystemStorage:
    return FileSystemStorage(tmp_path / "store")


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_put_get_round_trip(storage: FileSystemStorage) -> None:
    stored = storage.put(KEY, b'{"a": 1}', {"route-id": "ingest"}, "application/json")
    assert (stored.key, stored.size, stored.created) == (KEY, 8, True)
    assert storage.get(KEY) == b'{"a": 1}'
    assert storage.exists(KEY)
    assert storage.metadata(KEY) == {"route-id": "ingest"}


def test_sidecar_sits_beside_the_object(storage: FileSystemStorage) -> None:
    before = datetime.now(UTC)
    storage.put(KEY, b"data", {"execution-id": "e1", "note": "ünïcode"}, "text/plain")
    obj = storage.root / KEY
    sidecar = obj.with_name("m1.json.meta.json")
    assert obj.read_bytes() == b"data"
    document = json.loads(sidecar.read_text(encoding="utf-8"))
    assert document["key"] == KEY
    assert document["content_type"] == "text/plain"
    assert document["size"] == 4
    assert document["sha256"] == hashlib.sha256(b"data").hexdigest()
    assert datetime.fromisoformat(document["stored_at"]) >= before
    assert document["metadata"] == {"execution-id": "e1", "note": "ünïcode"}
    assert files_under(storage.root) == [KEY, KEY + ".meta.json"]


def test_put_is_idempotent_first_write_wins(storage: FileSystemStorage) -> None:
    first = storage.put(KEY, b"first", {"attempt": "1"})
    sidecar_before = (storage.root / (KEY + ".meta.json")).read_bytes()
    again = storage.put(KEY, b"second, longer", {"attempt": "2"})
    assert first.created and not again.created
    assert again.size == len(b"first")
    assert storage.get(KEY) == b"first"
    assert storage.metadata(KEY) == {"attempt": "1"}
    assert (storage.root / (KEY + ".meta.json")).read_bytes() == sidecar_before
    assert files_under(storage.root) == [KEY, KEY + ".meta.json"]


def test_concurrent_puts_of_one_key_leave_one_whole_object(storage: FileSystemStorage) -> None:
    payloads = [bytes([i]) * 100_000 for i in range(8)]
    barrier = threading.Barrier(len(payloads))

    def write(data: bytes) -> None:
        barrier.wait()
        storage.put(KEY, data, {"size": str(len(data))})

    threads = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert storage.get(KEY) in payloads
    assert storage.metadata(KEY) == {"size": "100000"}
    assert files_under(storage.root) == [KEY, KEY + ".meta.json"]


def test_list_by_prefix_in_key_order(storage: FileSystemStorage) -> None:
    keys = [
        "executions/e1/r/s/m2.json",
        "executions/e1/r/s/m1.json",
        "executions/e1/r.b/s/m1.json",  # '.' sorts before '/': r.b/... comes before r/...
        "executions/e10/r/s/m1.json",
        "executions/e2/r/s/m1.json",
        "other/x",
    ]
    for key in keys:
        storage.put(key, key.encode())
    everything = storage.list()
    assert [i.key for i in everything] == sorted(keys)
    assert all(i.size == len(i.key) for i in everything)
    assert all(i.last_modified.tzinfo is not None for i in everything)
    assert [i.key for i in storage.list("executions/e1/")] == sorted(keys[:3])
    assert [i.key for i in storage.list("executions/e1")] == sorted(keys[:4])
    assert [i.key for i in storage.list("executions/e1/r/")] == sorted(keys[:2])
    assert [i.key for i in storage.list("executions/e1/r")] == sorted(keys[:3])
    assert [i.key for i in storage.list("executions/", limit=2)] == sorted(keys)[:2]
    assert storage.list("executions/", limit=0) == []
    assert storage.list("executions/e3/") == []
    assert storage.list("other/x/deeper") == []


def test_list_of_a_store_never_written_is_empty(tmp_path: Path) -> None:
    assert FileSystemStorage(tmp_path / "never").list() == []
    assert not (tmp_path / "never").exists()


def test_list_skips_sidecars_and_temporary_files(storage: FileSystemStorage) -> None:
    storage.put(KEY, b"x")
    (storage.root / "executions/e1/ingest/split/.tmp-0123456789abcdef").write_bytes(b"half")
    assert [i.key for i in storage.list()] == [KEY]


def test_missing_objects(storage: FileSystemStorage) -> None:
    assert not storage.exists(KEY)
    with pytest.raises(ObjectNotFoundError, match="no object stored under"):
        storage.get(KEY)
    with pytest.raises(ObjectNotFoundError):
        storage.metadata(KEY)
    storage.put("executions/e1/ingest/split/other.json", b"x")
    assert not storage.exists("executions/e1/ingest/split")  # a directory is not an object
    with pytest.raises(ObjectNotFoundError):
        storage.get("executions/e1/ingest/split")


def test_object_without_sidecar_has_empty_metadata(storage: FileSystemStorage) -> None:
    path = storage.root / "copied/by/hand.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"{}")
    assert storage.metadata("copied/by/hand.json") == {}


def test_key_that_is_also_a_prefix_fails_clearly(storage: FileSystemStorage) -> None:
    storage.put("a/b", b"x")
    with pytest.raises(StorageError, match="already an object"):
        storage.put("a/b/c", b"y")
    storage.put("d/e/f", b"z")
    with pytest.raises(StorageError, match="other keys already live under it"):
        storage.put("d/e", b"w")


def test_bad_input_is_rejected_before_any_io(tmp_path: Path) -> None:
    storage = FileSystemStorage(tmp_path / "store")
    with pytest.raises(InvalidKeyError):
        storage.put("../escape.json", b"x")
    with pytest.raises(InvalidKeyError):
        storage.put("/etc/passwd", b"x")
    with pytest.raises(InvalidMetadataError, match="lowercase"):
        storage.put(KEY, b"x", {"Route_ID": "r"})
    with pytest.raises(InvalidMetadataError, match="must be a string"):
        storage.put(KEY, b"x", {"attempt": 1})  # type: ignore[dict-item]
    with pytest.raises(InvalidMetadataError, match="2048-byte"):
        storage.put(KEY, b"x", {"big": "x" * 2100})
    with pytest.raises(StorageError, match="must be bytes"):
        storage.put(KEY, "text")  # type: ignore[arg-type]
    with pytest.raises(InvalidKeyError):
        storage.list("../")
    assert not (tmp_path / "store").exists()
    assert not (tmp_path / "escape.json").exists()


def test_constructor_does_no_io_and_pickles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    storage = FileSystemStorage("relative/store")
    assert storage.root == tmp_path / "relative/store"  # resolved now, not at first use
    assert not (tmp_path / "relative").exists()
    copy = pickle.loads(pickle.dumps(storage))
    monkeypatch.chdir("/")
    copy.put(KEY, b"x")
    assert (tmp_path / "relative/store" / KEY).read_bytes() == b"x"


def test_open_storage_file_uris(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_storage("file://./output/storage")
    assert isinstance(relative, FileSystemStorage)
    assert relative.root == tmp_path / "output/storage"
    absolute = open_storage(f"FILE://{tmp_path}/abs", {"fsync": False})
    assert absolute.uri == f"file://{tmp_path}/abs"
    with pytest.raises(StorageConfigurationError, match="did you mean 'fsync'"):
        open_storage("file://./x", {"fsyn": True})
    with pytest.raises(StorageConfigurationError, match="true or false"):
        open_storage("file://./x", {"fsync": "maybe"})
    with pytest.raises(StorageConfigurationError, match="has no path"):
        open_storage("file://")


def test_unknown_scheme_names_the_known_ones() -> None:
    with pytest.raises(StorageConfigurationError, match=r"did you mean file://\?"):
        open_storage("fil://x")
    with pytest.raises(StorageConfigurationError, match="known: file, minio, s3") as info:
        open_storage("gs://user:hunter2@bucket/x")
    assert "hunter2" not in str(info.value)
    with pytest.raises(StorageConfigurationError, match="scheme://"):
        open_storage("./output/storage")


# Crash safety: a child process writes and is SIGKILLed; the parent then checks that no
# partial object or partial sidecar is visible, and that the key can still be written.

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from factflow.storage.filesystem import FileSystemStorage

    root, mode, arg = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "kill-at-fsync":
        # Die at the Nth fsync: N=1 with the sidecar's temporary file written, N=2 with the
        # sidecar in place and the object's temporary file written, neither renamed yet.
        real_fsync, calls = os.fsync, [0]
        def fsync(fd):
            calls[0] += 1
            if calls[0] == arg:
                os.kill(os.getpid(), signal.SIGKILL)
            real_fsync(fd)
        os.fsync = fsync
        FileSystemStorage(root).put("executions/e1/r/s/m1.json", b"x" * 1_000_000, {"a": "b"})
    else:
        storage = FileSystemStorage(root, fsync=False)
        print("ready", flush=True)
        for i in range(1_000_000):
            storage.put(f"executions/e1/r/s/m{i}.bin", bytes([i % 251]) * arg, {"i": str(i)})
    """
)


def run_child(root: Path, mode: str, arg: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), mode, str(arg)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("nth_fsync", [1, 2])
def test_kill_before_commit_leaves_nothing_visible(tmp_path: Path, nth_fsync: int) -> None:
    root = tmp_path / "store"
    with run_child(root, "kill-at-fsync", nth_fsync) as child:
        assert child.wait(timeout=60) == -signal.SIGKILL
    storage = FileSystemStorage(root)
    key = "executions/e1/r/s/m1.json"
    leftovers = [p.name for p in (root / "executions/e1/r/s").iterdir()]
    assert any(name.startswith(".tmp-") for name in leftovers)  # the crash really was mid-put
    assert not storage.exists(key)
    assert storage.list() == []
    with pytest.raises(ObjectNotFoundError):
        storage.get(key)
    with pytest.raises(ObjectNotFoundError):
        storage.metadata(key)
    # The next attempt (the engine's retry after restart) writes it whole.
    assert storage.put(key, b"retried", {"a": "retry"}).created
    assert storage.get(key) == b"retried"
    assert storage.metadata(key) == {"a": "retry"}


def test_kill_at_a_random_moment_leaves_only_whole_objects(tmp_path: Path) -> None:
    root = tmp_path / "store"
    size = 256 * 1024
    with run_child(root, "loop", size) as child:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL

    storage = FileSystemStorage(root)
    listed = storage.list()
    assert len(listed) > 0
    for info in listed:
        i = int(info.key.rsplit("/m", 1)[1].removesuffix(".bin"))
        assert info.size == size
        assert storage.get(info.key) == bytes([i % 251]) * size
        assert storage.metadata(info.key) == {"i": str(i)}


def test_delete_removes_object_sidecar_and_empty_folders(storage: FileSystemStorage) -> None:
    storage.put(KEY, b"data", {"execution-id": "e1"})
    other = KEY.rsplit("/", 2)[0] + "/other/m2.json"
    storage.put(other, b"kept")
    assert storage.delete(KEY) is True
    assert not storage.exists(KEY)
    assert storage.delete(KEY) is False  # nothing there any more
    # the sidecar went with it, and so did the stage folder it emptied
    assert files_under(storage.root) == sorted([other, other + ".meta.json"])
    assert not (storage.root / KEY).parent.exists()
    assert storage.get(other) == b"kept"
