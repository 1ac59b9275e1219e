"""ObjectStore - whole-object put/get/list on a local folder or any S3 API, errors translated.

An object is written whole or not at all: a single PUT of an in-memory buffer on S3, a temp file
and an atomic rename on a local disk. Never a streamed write that can leave a truncated file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from shadow.errors import BucketNotFound, ObjectNotFound, StoreAccessDenied, StoreError
from shadow.settings import StoreSettings

if TYPE_CHECKING:
    import pyarrow.fs

logger = logging.getLogger(__name__)


class ObjectStore(Protocol):
    """Where datasets and model files live; keys are '/'-separated, relative to the root."""

    uri: str

    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def list(self, prefix: str = "") -> list[str]: ...
    def delete(self, key: str) -> None: ...
    def arrow(self) -> tuple[pyarrow.fs.FileSystem, str]:
        """A pyarrow filesystem and the root path inside it, for pyarrow.dataset readers."""
        ...


def open_store(settings: StoreSettings, owner: str | None = None) -> ObjectStore:
    """The store named by store.uri: `s3://bucket/prefix` or a local folder (whose temp files
    carry ``owner``, see LocalStore)."""
    if settings.uri.startswith("s3://"):
        return S3Store(settings)
    return LocalStore(Path(settings.uri), owner)


class LocalStore:
    """A folder on a local disk; writes go to a temp file in the same folder, then rename.

    Temp files are named ``.tmp-<owner>.<random>``; ``owner`` defaults to ``<host>-<pid>``
    (a worker passes its worker_id). Any failure removes the temp file; ``sweep_temp`` removes
    those a crash left behind (see there).
    """

    def __init__(self, root: Path, owner: str | None = None) -> None:
        self.root = root.expanduser().resolve()
        self.uri = str(self.root)
        self.owner = temp_tag(owner or default_owner())

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        tmp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{self.owner}.", dir=path.parent)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            # rename is atomic on one filesystem: readers see the old object or the whole new one
            os.replace(tmp, path)
        except OSError as exc:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            raise StoreError(self.uri, f"cannot write {key}: {_why(exc)}") from None

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFound(self.uri, f"no object {key}") from None
        except OSError as exc:
            raise StoreError(self.uri, f"cannot read {key}: {_why(exc)}") from None

    def sweep_temp(self) -> int:
        """Remove the temp files a crashed writer left; returns how many. A temp file is this
        store's to remove when it is its owner's (the same worker_id: an earlier run of this
        worker), a dead process's of this host (``<host>-<pid>``, that pid no longer runs), or
        older than STALE_TEMP_SECONDS (no write takes that long)."""
        removed = 0
        for path in self.root.rglob(f"{TEMP_PREFIX}*"):
            with contextlib.suppress(OSError):
                if path.is_file() and self._stale(path):
                    path.unlink()
                    removed += 1
        if removed:
            logger.info("removed %d stale temp files from %s", removed, self.uri)
        return removed

    def _stale(self, path: Path) -> bool:
        tag = path.name[len(TEMP_PREFIX) :].rpartition(".")[0]
        if tag == self.owner:
            return True
        if time.time() - path.stat().st_mtime > STALE_TEMP_SECONDS:
            return True
        host, _, pid = tag.rpartition("-")
        return host == temp_tag(socket.gethostname()) and pid.isdigit() and not _alive(int(pid))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        base = self.root / prefix if prefix else self.root
        if not base.exists():
            return []
        files = base.rglob("*") if base.is_dir() else [base]
        keys = (p.relative_to(self.root).as_posix() for p in files if p.is_file())
        return sorted(k for k in keys if not Path(k).name.startswith(".tmp-"))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def arrow(self) -> tuple[pyarrow.fs.FileSystem, str]:
        import pyarrow.fs

        return pyarrow.fs.LocalFileSystem(), str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise StoreError(self.uri, f"key {key!r} points outside the store")
        return path


TEMP_PREFIX = ".tmp-"
STALE_TEMP_SECONDS = 3600


def default_owner() -> str:
    """The temp-file owner of a process that names none: ``<host>-<pid>``."""
    return f"{socket.gethostname()}-{os.getpid()}"


def temp_tag(owner: str) -> str:
    """An owner as it appears in a temp file's name (letters, digits, '_' and '-')."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", owner)[:64]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, and is not ours to signal
    return True


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


class S3Store:
    """An S3 bucket and prefix on AWS or any S3 API (MinIO, moto); one PUT per object."""

    def __init__(self, settings: StoreSettings) -> None:
        bucket, _, prefix = settings.uri.removeprefix("s3://").partition("/")
        self.settings = settings
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.uri = settings.uri
        self._client = self._make_client()

    def put(self, key: str, data: bytes) -> None:
        self._call("put_object", key, Bucket=self.bucket, Key=self._key(key), Body=data)

    def get(self, key: str) -> bytes:
        response = self._call("get_object", key, Bucket=self.bucket, Key=self._key(key))
        return bytes(response["Body"].read())

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _status(exc) == 404:
                return False
            raise _translate(exc, self.uri, key) from None
        except Exception as exc:  # noqa: BLE001 - connection errors are transient store errors
            raise StoreError(self.uri, f"{key}: {type(exc).__name__}") from None
        return True

    def list(self, prefix: str = "") -> list[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        keys: list[str] = []
        pages = paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix))
        try:
            for page in pages:
                keys.extend(item["Key"] for item in page.get("Contents", []))
        except Exception as exc:  # noqa: BLE001
            raise _translate(exc, self.uri, prefix) from None
        cut = len(self.prefix) + 1 if self.prefix else 0
        return sorted(k[cut:] for k in keys)

    def delete(self, key: str) -> None:
        self._call("delete_object", key, Bucket=self.bucket, Key=self._key(key))

    def create_bucket(self) -> None:
        """Create the bucket of store.uri unless it exists (local S3 servers, benches)."""
        if not self._has_bucket():
            self._call("create_bucket", self.bucket, Bucket=self.bucket)

    def _has_bucket(self) -> bool:
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except Exception:  # noqa: BLE001 - any failure: try to create it
            return False
        return True

    def arrow(self) -> tuple[pyarrow.fs.FileSystem, str]:
        import pyarrow.fs

        s = self.settings
        fs = pyarrow.fs.S3FileSystem(
            access_key=s.access_key_id.get_secret_value() if s.access_key_id else None,
            secret_key=s.secret_access_key.get_secret_value() if s.secret_access_key else None,
            endpoint_override=s.endpoint_url,
            region=s.region,
            allow_bucket_creation=False,
        )
        return fs, f"{self.bucket}/{self.prefix}".rstrip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, method: str, key: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, method)(**kwargs)
        except Exception as exc:  # noqa: BLE001 - translated where it enters
            raise _translate(exc, self.uri, key) from None

    def _make_client(self) -> Any:
        import boto3
        from botocore.config import Config

        s = self.settings
        return boto3.client(
            "s3",
            endpoint_url=s.endpoint_url,
            region_name=s.region,
            aws_access_key_id=s.access_key_id.get_secret_value() if s.access_key_id else None,
            aws_secret_access_key=(
                s.secret_access_key.get_secret_value() if s.secret_access_key else None
            ),
            config=Config(
                retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=30
            ),
        )


def _status(exc: Exception) -> int:
    response = getattr(exc, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _translate(exc: Exception, uri: str, key: str) -> StoreError:
    """botocore errors -> StoreAccessDenied, BucketNotFound (terminal) or StoreError (transient)."""
    code = str((getattr(exc, "response", None) or {}).get("Error", {}).get("Code", ""))
    if code == "NoSuchBucket":
        return BucketNotFound(uri, "the bucket does not exist: create it or fix store.uri")
    if _status(exc) == 403 or code in {"AccessDenied", "InvalidAccessKeyId"}:
        return StoreAccessDenied(uri, "access denied: check store.access_key_id and its policy")
    if code in {"NoSuchKey", "404"}:
        return ObjectNotFound(uri, f"no object {key}")
    return StoreError(uri, f"{key}: {type(exc).__name__} {code}".strip())
