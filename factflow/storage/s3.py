"""`s3://BUCKET/PREFIX` and `minio://BUCKET/PREFIX`: stage artefacts as S3 objects.

Both schemes talk to any S3-compatible server through the `minio` client; they differ only
in name. Metadata travels as `x-amz-meta-*` object metadata (see `metadata.py` for how
values that are not header-safe are encoded). The server and credentials come from options,
else the environment:

    endpoint     FACTFLOW_S3_ENDPOINT    127.0.0.1:9000 (`http://` / `https://` allowed)
    access_key   FACTFLOW_S3_ACCESS_KEY  minioadmin
    secret_key   FACTFLOW_S3_SECRET_KEY  minioadmin
    secure       FACTFLOW_S3_SECURE      false for localhost / 127.x / ::1, else true
    region       FACTFLOW_S3_REGION      (asked from the server)

plus `create_bucket` (default true: the bucket is made on the first put if missing),
`connect_timeout` (5 s) and `read_timeout` (60 s).

Idempotence is stat-then-put: a put first asks for the key's metadata (a HEAD) and writes
nothing when the object exists. Overwriting blindly would also leave one object per key,
but it would replace the first artefact with a retry's (whose envelope may differ, e.g. its
timestamp), add a version in a versioned bucket, and upload the bytes again; stat-first keeps
first-write-wins, as the filesystem backend does. Conditional writes (`If-None-Match: *`)
would close the window between the HEAD and the PUT, but the minio client's `put_object`
cannot send that header and not every S3-compatible server honours it. In that window two
writers of one key both write; S3 keeps one whole object (PUTs are atomic), so the only
effect is that both report `created=True`.

Credentials are never in a message: errors name the URI and endpoint, and any server text
is masked before use. The client is made on first use, so the object pickles.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import ipaddress
import os
import re
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import certifi
import urllib3
from minio import Minio
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError

from factflow.storage.base import ObjectInfo, StageStorage, StoredObject
from factflow.storage.exceptions import (
    InvalidKeyError,
    ObjectNotFoundError,
    StorageConfigurationError,
    StorageError,
    StorageUnavailableError,
)
from factflow.storage.keys import MAX_KEY_BYTES, segment_problem
from factflow.storage.metadata import decode_value, encode_value
from factflow.storage.options import as_bool, as_positive_float, as_text, check_options

ENV_ENDPOINT = "FACTFLOW_S3_ENDPOINT"
ENV_ACCESS_KEY = "FACTFLOW_S3_ACCESS_KEY"
ENV_SECRET_KEY = "FACTFLOW_S3_SECRET_KEY"
ENV_SECURE = "FACTFLOW_S3_SECURE"
ENV_REGION = "FACTFLOW_S3_REGION"

DEFAULT_ENDPOINT = "127.0.0.1:9000"
DEFAULT_ACCESS_KEY = "minioadmin"
DEFAULT_SECRET_KEY = "minioadmin"  # MinIO's documented development default

S3_SCHEMES = frozenset({"s3", "minio"})
S3_OPTIONS = frozenset(
    {
        "endpoint",
        "access_key",
        "secret_key",
        "secure",
        "region",
        "create_bucket",
        "connect_timeout",
        "read_timeout",
    }
)

_META_PREFIX = "x-amz-meta-"
# S3 bucket names: 3-63 characters, lowercase letters, digits, '.' and '-'.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_NOT_FOUND = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchObject", "ResourceNotFound"})
_DENIED = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken"})
_TRANSIENT = frozenset(
    {
        "SlowDown",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
        "XMinioServerNotInitialized",
    }
)


class S3Storage(StageStorage):
    """Stage storage in an S3 / MinIO bucket, under an optional key prefix.

    Arguments left as None come from `environ` (default `os.environ`) and then the defaults
    in the module docstring. Nothing connects until the first call.
    """

    scheme = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        secure: bool | None = None,
        region: str | None = None,
        create_bucket: bool = True,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        scheme: str = "s3",
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        if scheme not in S3_SCHEMES:
            msg = f"S3 storage scheme must be one of {sorted(S3_SCHEMES)}, got {scheme!r}"
            raise StorageConfigurationError(msg)
        self.scheme = scheme
        self._bucket = _check_bucket(bucket)
        self._prefix = _check_store_prefix(prefix, bucket)
        host, scheme_secure = _split_endpoint(endpoint or env.get(ENV_ENDPOINT) or DEFAULT_ENDPOINT)
        self._endpoint = host
        self._secure = _resolve_secure(secure, scheme_secure, env.get(ENV_SECURE), host)
        self._access_key = as_text(
            access_key or env.get(ENV_ACCESS_KEY) or DEFAULT_ACCESS_KEY, "access_key"
        )
        self._secret_key = as_text(
            secret_key or env.get(ENV_SECRET_KEY) or DEFAULT_SECRET_KEY, "secret_key"
        )
        region = region or env.get(ENV_REGION) or None
        self._region = None if region is None else as_text(region, "region")
        self._create_bucket = as_bool(create_bucket, "create_bucket")
        self._connect_timeout = as_positive_float(connect_timeout, "connect_timeout")
        self._read_timeout = as_positive_float(read_timeout, "read_timeout")
        self._reset_connection()

    @classmethod
    def from_uri(cls, uri: str, options: Mapping[str, Any] | None = None) -> S3Storage:
        """From `s3://BUCKET[/PREFIX]` or `minio://BUCKET[/PREFIX]` and `storage.options`."""
        scheme, _, rest = uri.partition("://")
        if scheme not in S3_SCHEMES or not rest:
            msg = f"not an S3 storage URI (expected s3://BUCKET/PREFIX): {_scheme_only(uri)}"
            raise StorageConfigurationError(msg)
        authority, _, path = rest.partition("/")
        if "@" in authority:
            # The URI is not echoed: the part before '@' is a credential.
            msg = (
                f"{scheme}:// storage URIs may not carry credentials; set the options "
                f"access_key / secret_key or {ENV_ACCESS_KEY} / {ENV_SECRET_KEY}"
            )
            raise StorageConfigurationError(msg)
        if "?" in rest or "#" in rest:
            msg = f"storage URI {uri!r} has a query or fragment; put settings in storage.options"
            raise StorageConfigurationError(msg)
        checked = check_options(options, S3_OPTIONS, uri)
        return cls(
            authority,
            path,
            endpoint=_optional_text(checked, "endpoint"),
            access_key=_optional_text(checked, "access_key"),
            secret_key=_optional_text(checked, "secret_key"),
            secure=None if checked.get("secure") is None else as_bool(checked["secure"], "secure"),
            region=_optional_text(checked, "region"),
            create_bucket=as_bool(checked.get("create_bucket", True), "create_bucket"),
            connect_timeout=as_positive_float(
                checked.get("connect_timeout", 5.0), "connect_timeout"
            ),
            read_timeout=as_positive_float(checked.get("read_timeout", 60.0), "read_timeout"),
            scheme=scheme,
        )

    @property
    def uri(self) -> str:
        return f"{self.scheme}://{self._bucket}/{self._prefix}".rstrip("/")

    @property
    def bucket(self) -> str:
        return self._bucket

    @property
    def prefix(self) -> str:
        return self._prefix

    @property
    def endpoint_url(self) -> str:
        return f"{'https' if self._secure else 'http'}://{self._endpoint}"

    def __repr__(self) -> str:
        return f"S3Storage({self.uri!r}, endpoint={self.endpoint_url!r})"

    # Connection: made on first use, dropped when pickled or closed.

    def _reset_connection(self) -> None:
        self._lock = threading.Lock()
        self._http: urllib3.PoolManager | None = None
        self._minio: Minio | None = None
        self._bucket_ready = False

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in ("_lock", "_http", "_minio", "_bucket_ready"):
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset_connection()

    def _client(self) -> Minio:
        with self._lock:
            if self._minio is None:
                self._http = urllib3.PoolManager(
                    timeout=urllib3.Timeout(connect=self._connect_timeout, read=self._read_timeout),
                    maxsize=10,
                    cert_reqs="CERT_REQUIRED",
                    ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
                    # Few, quick retries: a refused connection should surface in about a
                    # second as StorageUnavailableError, and the engine retries the message.
                    retries=urllib3.Retry(
                        total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
                    ),
                )
                self._minio = Minio(
                    self._endpoint,
                    access_key=self._access_key,
                    secret_key=self._secret_key,
                    secure=self._secure,
                    region=self._region,
                    http_client=self._http,
                )
            return self._minio

    def close(self) -> None:
        with self._lock:
            http, self._http, self._minio = self._http, None, None
            self._bucket_ready = False
        if http is not None:
            http.clear()

    # Backend hooks

    def _put(
        self, key: str, data: bytes, metadata: dict[str, str], content_type: str
    ) -> StoredObject:
        name = self._object_name(key)
        client = self._client()
        with self._errors("write", key):
            self._ensure_bucket(client)
            existing = self._stat(client, name)
            if existing is not None:
                return StoredObject(key, existing.size or 0, created=False)
            client.put_object(
                self._bucket,
                name,
                io.BytesIO(data),
                len(data),
                content_type=content_type,
                # Prefixed here, not by the client: a bare name such as `content-type` would
                # otherwise be sent as that standard header instead of as metadata.
                metadata={_META_PREFIX + k: encode_value(v) for k, v in metadata.items()},
            )
        return StoredObject(key, len(data), created=True)

    def _get(self, key: str) -> bytes:
        name = self._object_name(key)
        client = self._client()
        with self._errors("read", key):
            response = client.get_object(self._bucket, name)
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

    def _metadata(self, key: str) -> dict[str, str]:
        name = self._object_name(key)
        client = self._client()
        with self._errors("read metadata of", key):
            stat = client.stat_object(self._bucket, name)
        found: dict[str, str] = {}
        for header, value in (stat.metadata or {}).items():
            lowered = str(header).lower()
            if lowered.startswith(_META_PREFIX):
                found[lowered[len(_META_PREFIX) :]] = decode_value(str(value))
        return found

    def _exists(self, key: str) -> bool:
        name = self._object_name(key)
        client = self._client()
        with self._errors("check", key):
            return self._stat(client, name) is not None

    def _list(self, prefix: str, limit: int | None) -> builtins.list[ObjectInfo]:
        client = self._client()
        full = f"{self._prefix}/{prefix}" if self._prefix else prefix
        cut = len(self._prefix) + 1 if self._prefix else 0
        found: builtins.list[ObjectInfo] = []
        with self._errors("list", prefix):
            try:
                for item in client.list_objects(self._bucket, prefix=full, recursive=True):
                    name = str(item.object_name)
                    if item.is_dir or name.endswith("/"):
                        continue  # a folder marker made by some other tool
                    modified = item.last_modified or datetime.fromtimestamp(0, UTC)
                    found.append(ObjectInfo(name[cut:], int(item.size or 0), modified))
                    if limit is not None and len(found) >= limit:
                        break
            except S3Error as exc:
                if exc.code != "NoSuchBucket":
                    raise
                return []  # nothing was ever stored here
        return found

    def _delete(self, key: str) -> bool:
        name = self._object_name(key)
        client = self._client()
        with self._errors("delete", key):
            if self._stat(client, name) is None:
                return False
            client.remove_object(self._bucket, name)
        return True

    # Helpers

    def _object_name(self, key: str) -> str:
        name = f"{self._prefix}/{key}" if self._prefix else key
        if len(name.encode()) > MAX_KEY_BYTES:
            msg = f"{self.uri}: object name for {key!r} is longer than {MAX_KEY_BYTES} bytes"
            raise InvalidKeyError(msg)
        return name

    def _stat(self, client: Minio, name: str) -> Any:
        """The object's stat, or None when the key (or the bucket) does not exist."""
        try:
            return client.stat_object(self._bucket, name)
        except S3Error as exc:
            if exc.code in _NOT_FOUND:
                return None
            raise

    def _ensure_bucket(self, client: Minio) -> None:
        if self._bucket_ready:
            return
        if not client.bucket_exists(self._bucket):
            if not self._create_bucket:
                msg = (
                    f"{self._where()}: bucket {self._bucket!r} does not exist "
                    "and create_bucket is false"
                )
                raise StorageConfigurationError(msg)
            try:
                client.make_bucket(self._bucket)
            except S3Error as exc:
                # Another worker made it first.
                if exc.code != "BucketAlreadyOwnedByYou":
                    raise
        self._bucket_ready = True

    def _where(self) -> str:
        return f"{self.uri} at {self.endpoint_url}"

    def _mask(self, text: str) -> str:
        for secret in (self._secret_key, self._access_key):
            if secret:
                text = text.replace(secret, "***")
        return text

    @contextlib.contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        """Turn client and network errors into storage errors with masked messages."""
        try:
            yield
        except StorageError:
            raise
        except S3Error as exc:
            detail = self._mask(f"{exc.code}: {exc.message}")
            if exc.code in _NOT_FOUND:
                msg = f"{self._where()}: no object stored under {key!r} ({detail})"
                raise ObjectNotFoundError(msg) from exc
            if exc.code in _DENIED:
                msg = (
                    f"{self._where()}: cannot {action} {key!r}: {detail}; check the "
                    f"credentials (options access_key / secret_key or {ENV_ACCESS_KEY} / "
                    f"{ENV_SECRET_KEY})"
                )
                raise StorageConfigurationError(msg) from exc
            error = StorageUnavailableError if exc.code in _TRANSIENT else StorageError
            msg = f"{self._where()}: cannot {action} {key!r}: {detail}"
            raise error(msg) from exc
        except ServerError as exc:
            msg = f"{self._where()}: cannot {action} {key!r}: server error {exc.status_code}"
            raise StorageUnavailableError(msg) from exc
        except InvalidResponseError as exc:
            msg = (
                f"{self._where()}: cannot {action} {key!r}: the endpoint did not answer like "
                f"an S3 server ({self._mask(str(exc))[:200]})"
            )
            raise StorageError(msg) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            msg = (
                f"{self._where()}: cannot {action} {key!r}: the server cannot be reached "
                f"({type(exc).__name__}); is it running? (endpoint option or {ENV_ENDPOINT})"
            )
            raise StorageUnavailableError(msg) from exc
        except (MinioException, ValueError) as exc:
            msg = f"{self._where()}: cannot {action} {key!r}: {self._mask(str(exc))}"
            raise StorageError(msg) from exc


def _scheme_only(uri: str) -> str:
    scheme, sep, _ = uri.partition("://")
    return f"{scheme}://..." if sep else "(no scheme)"


def _optional_text(options: Mapping[str, Any], name: str) -> str | None:
    value = options.get(name)
    return None if value is None else as_text(value, name)


def _check_bucket(bucket: str) -> str:
    if not isinstance(bucket, str) or not _BUCKET.match(bucket) or ".." in bucket:
        msg = (
            f"S3 bucket name {bucket!r} is not valid: 3-63 lowercase letters, digits, '.' "
            "and '-', starting and ending with a letter or digit (s3://BUCKET/PREFIX)"
        )
        raise StorageConfigurationError(msg)
    return bucket


def _check_store_prefix(prefix: str, bucket: str) -> str:
    if not isinstance(prefix, str):
        msg = f"S3 storage prefix must be a string, got {type(prefix).__name__}"
        raise StorageConfigurationError(msg)
    cleaned = prefix.strip("/")
    for segment in cleaned.split("/") if cleaned else ():
        problem = segment_problem(segment)
        if problem is not None:
            msg = f"s3://{bucket}/{prefix}: prefix segment {segment!r} {problem}"
            raise StorageConfigurationError(msg)
    return cleaned


def _split_endpoint(endpoint: str) -> tuple[str, bool | None]:
    """`host[:port]` and, when the endpoint names a scheme, whether it is https."""
    if not isinstance(endpoint, str) or not endpoint.strip():
        msg = "S3 endpoint must be HOST[:PORT] or http(s)://HOST[:PORT]"
        raise StorageConfigurationError(msg)
    endpoint = endpoint.strip()
    if "://" not in endpoint:
        endpoint_secure = None
        parts = urlsplit(f"//{endpoint}")
    else:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https"):
            msg = f"S3 endpoint scheme must be http or https, got {parts.scheme!r}"
            raise StorageConfigurationError(msg)
        endpoint_secure = parts.scheme == "https"
    if parts.username is not None or parts.password is not None:
        msg = f"the S3 endpoint may not carry credentials; use {ENV_ACCESS_KEY} / {ENV_SECRET_KEY}"
        raise StorageConfigurationError(msg)
    if parts.path not in ("", "/") or parts.query or parts.fragment or not parts.hostname:
        msg = f"S3 endpoint must be HOST[:PORT] or http(s)://HOST[:PORT], got {endpoint!r}"
        raise StorageConfigurationError(msg)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        msg = f"S3 endpoint {endpoint!r} has an invalid port"
        raise StorageConfigurationError(msg) from exc
    return parts.netloc, endpoint_secure


def _is_local(netloc: str) -> bool:
    host = urlsplit(f"//{netloc}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _resolve_secure(
    explicit: bool | None, from_endpoint: bool | None, from_env: str | None, netloc: str
) -> bool:
    if explicit is not None:
        secure = as_bool(explicit, "secure")
        if from_endpoint is not None and secure != from_endpoint:
            msg = "S3 option secure contradicts the endpoint's http(s):// scheme"
            raise StorageConfigurationError(msg)
        return secure
    if from_endpoint is not None:
        return from_endpoint
    if from_env:
        return as_bool(from_env, ENV_SECURE)
    # Plain HTTP only where traffic cannot leave the machine.
    return not _is_local(netloc)
