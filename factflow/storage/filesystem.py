"""`file://PATH`: stage artefacts as files under a directory, metadata in sidecars.

Key `a/b/c.json` is the file `PATH/a/b/c.json`, its metadata the JSON sidecar
`PATH/a/b/c.json.meta.json`:

    {"key": ..., "content_type": ..., "size": ..., "sha256": ..., "stored_at": ...,
     "metadata": {"execution-id": ..., ...}}

Every file is written to a hidden temporary file in the same directory and renamed into
place (`os.replace` is atomic within a filesystem), so a crash leaves either nothing or the
whole file, and at worst a hidden `.tmp-*` file that listing ignores. The sidecar is renamed
into place before the object: the object is the commit point, so whenever an object is
visible its metadata is complete, and a crash between the two leaves only a sidecar that the
next put of that key overwrites. With `fsync` (the default) data and directory entries are
flushed before a put returns, so an acknowledged artefact survives power loss too, not only
a killed process.

Two writers racing on one key (not expected: a message id is handled by one worker at a
time) both end with a complete object and a complete sidecar, possibly from different
writers; both describe the same message.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from factflow.storage.base import ObjectInfo, StageStorage, StoredObject
from factflow.storage.exceptions import (
    ObjectNotFoundError,
    StorageConfigurationError,
    StorageError,
    StorageUnavailableError,
)
from factflow.storage.keys import SIDECAR_SUFFIX
from factflow.storage.options import as_bool, check_options

FILE_OPTIONS = frozenset({"fsync"})


class FileSystemStorage(StageStorage):
    """Stage storage in a local (or mounted) directory; see the module docstring.

    The directory is resolved to an absolute path when the object is made, so a copy
    unpickled in a worker with another working directory writes to the same place; it is
    created on the first put.
    """

    scheme = "file"

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        if not isinstance(root, str | os.PathLike) or not os.fspath(root):
            msg = f"file storage needs a directory, got {root!r}"
            raise StorageConfigurationError(msg)
        if not isinstance(fsync, bool):
            msg = f"file storage option fsync must be true or false, got {fsync!r}"
            raise StorageConfigurationError(msg)
        self._root = Path(root).expanduser().absolute()
        self._fsync = fsync

    @classmethod
    def from_uri(cls, uri: str, options: Mapping[str, Any] | None = None) -> FileSystemStorage:
        """From `file://PATH`: `file:///abs/dir` or `file://./relative/dir`.

        Everything after `file://` is the path, taken literally (no host part, no
        percent-decoding), which is how pipelines write `file://./output/storage`.
        """
        if not uri.startswith("file://"):
            msg = f"not a file storage URI: {uri!r} (expected file://PATH)"
            raise StorageConfigurationError(msg)
        path = uri[len("file://") :]
        if not path:
            msg = f"storage URI {uri!r} has no path; write file://./dir or file:///abs/dir"
            raise StorageConfigurationError(msg)
        checked = check_options(options, FILE_OPTIONS, uri)
        return cls(path, fsync=as_bool(checked.get("fsync", True), "fsync"))

    @property
    def root(self) -> Path:
        return self._root

    @property
    def uri(self) -> str:
        return f"file://{self._root}"

    # Paths

    def _path(self, key: str) -> Path:
        # Keys are checked (no '..', no leading '/', no '\\'), so this stays under root.
        return self._root.joinpath(*key.split("/"))

    @staticmethod
    def _sidecar(path: Path) -> Path:
        return path.with_name(path.name + SIDECAR_SUFFIX)

    # Backend hooks

    def _put(
        self, key: str, data: bytes, metadata: dict[str, str], content_type: str
    ) -> StoredObject:
        path = self._path(key)
        try:
            existing = self._stat_object(path)
            if existing is not None:
                return StoredObject(key, existing.st_size, created=False)
            if path.is_dir():
                msg = f"{self.uri}: cannot store {key!r}: other keys already live under it"
                raise StorageError(msg)
            self._make_parent(key, path)
            document = {
                "key": key,
                "content_type": content_type,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "stored_at": datetime.now(UTC).isoformat(timespec="microseconds"),
                "metadata": metadata,
            }
            sidecar = json.dumps(document, ensure_ascii=False, indent=2).encode()
            self._write_atomic(self._sidecar(path), sidecar)
            self._write_atomic(path, data)
            if self._fsync:
                self._fsync_dir(path.parent)
        except OSError as exc:
            msg = f"{self.uri}: cannot write {key!r}: {exc.strerror or exc}"
            raise StorageUnavailableError(msg) from exc
        return StoredObject(key, len(data), created=True)

    def _get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise self._not_found(key) from exc
        except OSError as exc:
            msg = f"{self.uri}: cannot read {key!r}: {exc.strerror or exc}"
            raise StorageUnavailableError(msg) from exc

    def _metadata(self, key: str) -> dict[str, str]:
        path = self._path(key)
        try:
            if self._stat_object(path) is None:
                raise self._not_found(key)
            try:
                text = self._sidecar(path).read_text(encoding="utf-8")
            except FileNotFoundError:
                # An object copied in by hand has no sidecar: no metadata, not an error.
                return {}
        except OSError as exc:
            msg = f"{self.uri}: cannot read metadata of {key!r}: {exc.strerror or exc}"
            raise StorageUnavailableError(msg) from exc
        try:
            document = json.loads(text)
            stored = document["metadata"]
            if not isinstance(stored, dict):
                raise TypeError(type(stored).__name__)
        except (ValueError, KeyError, TypeError) as exc:
            msg = f"{self.uri}: metadata sidecar of {key!r} is not valid: {exc}"
            raise StorageError(msg) from exc
        return {str(name): str(value) for name, value in stored.items()}

    def _exists(self, key: str) -> bool:
        try:
            return self._stat_object(self._path(key)) is not None
        except OSError as exc:
            msg = f"{self.uri}: cannot check {key!r}: {exc.strerror or exc}"
            raise StorageUnavailableError(msg) from exc

    def _list(self, prefix: str, limit: int | None) -> builtins.list[ObjectInfo]:
        directory, _, partial = prefix.rpartition("/")
        start = self._root.joinpath(*directory.split("/")) if directory else self._root
        base = f"{directory}/" if directory else ""
        found: builtins.list[ObjectInfo] = []
        try:
            for info in self._walk(start, base, partial):
                found.append(info)
                if limit is not None and len(found) >= limit:
                    break
        except OSError as exc:
            msg = f"{self.uri}: cannot list {prefix!r}: {exc.strerror or exc}"
            raise StorageUnavailableError(msg) from exc
        return found

    def _delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            if self._stat_object(path) is None:
                return False
            # the object first: without it the sidecar is never read (see `_metadata`)
            path.unlink()
            self._sidecar(path).unlink(missing_ok=True)
            self._remove_empty_folders(path.parent)
        except OSError as exc:
            msg = f"{self.uri}: cannot delete {key!r}: {exc.strerror or exc}"
            raise StorageUnavailableError(msg) from exc
        return True

    # Helpers

    def _remove_empty_folders(self, folder: Path) -> None:
        """`folder` and its parents up to the root, while they are empty."""
        while folder != self._root and self._root in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return  # not empty (or gone): the folders above are not empty either
            folder = folder.parent

    def _not_found(self, key: str) -> ObjectNotFoundError:
        return ObjectNotFoundError(f"{self.uri}: no object stored under {key!r}")

    @staticmethod
    def _stat_object(path: Path) -> os.stat_result | None:
        """The object's stat if `path` is a regular file, else None (missing or a directory)."""
        try:
            result = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return result if path.is_file() else None

    def _make_parent(self, key: str, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            # On S3 `a/b` and `a/b/c` can both be objects; here `a/b` would have to be both a
            # file and a directory. Stage keys all have the same depth, so they never clash.
            msg = f"{self.uri}: cannot store {key!r}: a parent of it is already an object"
            raise StorageError(msg) from exc

    def _write_atomic(self, path: Path, data: bytes) -> None:
        # A short random name, not derived from the target's: the target name may already be
        # near the filesystem's 255-byte limit. The leading dot hides it from listing.
        temporary = path.with_name(f".tmp-{secrets.token_hex(8)}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        # 0o666 so the umask decides the final mode, as for any ordinary file.
        descriptor = os.open(temporary, flags, 0o666)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
                if self._fsync:
                    handle.flush()
                    os.fsync(handle.fileno())
            temporary.replace(path)  # os.replace: atomic within one filesystem
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise

    @staticmethod
    def _fsync_dir(directory: Path) -> None:
        # Makes the renames themselves durable; not every platform can open a directory.
        try:
            descriptor = os.open(directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(descriptor)
        except OSError:
            pass
        finally:
            os.close(descriptor)

    def _walk(self, directory: Path | str, base: str, partial: str = "") -> Iterator[ObjectInfo]:
        """Objects under `directory` in key order.

        Entries are sorted by name, a directory's as `name/`: every key under directory `d`
        starts with `d/`, so this visits keys in the same order as sorting the full keys.
        """
        try:
            with os.scandir(directory) as scan:
                entries = builtins.list(scan)
        except (FileNotFoundError, NotADirectoryError):
            return
        ordered: builtins.list[tuple[str, os.DirEntry[str], bool]] = []
        for entry in entries:
            name = entry.name
            if name.startswith(".") or name.endswith(SIDECAR_SUFFIX):
                continue
            if partial and not name.startswith(partial):
                continue
            is_dir = entry.is_dir(follow_symlinks=False)
            ordered.append((f"{name}/" if is_dir else name, entry, is_dir))
        ordered.sort(key=lambda item: item[0])
        for _, entry, is_dir in ordered:
            if is_dir:
                yield from self._walk(entry.path, f"{base}{entry.name}/")
            elif entry.is_file(follow_symlinks=False):
                stat = entry.stat(follow_symlinks=False)
                modified = datetime.fromtimestamp(stat.st_mtime, UTC)
                yield ObjectInfo(f"{base}{entry.name}", stat.st_size, modified)
