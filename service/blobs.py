"""The blob store: uploads, containers and restored outputs, addressed by content digest.

``BlobStore`` is the interface; ``LocalBlobStore`` (the default) writes atomically (temporary
file, fsync, rename, fsync of the directory), ``S3BlobStore`` talks to any S3-compatible store
through boto3 (an optional dependency, imported only when selected). Writing a key that exists is
a no-op, so a job that runs twice stores one blob. Keys look like ``containers/<sha256>.air``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from service.settings import CommonSettings


class BlobNotFound(KeyError):
    """No blob under that key."""


def digest(data: bytes) -> str:
    """The content address of ``data`` (hex SHA-256)."""
    return hashlib.sha256(data).hexdigest()


def upload_key(sha256: str) -> str:
    return f"uploads/{sha256}"


def container_key(sha256: str) -> str:
    return f"containers/{sha256}.air"


def output_key(sha256: str) -> str:
    return f"outputs/{sha256}.png"


class BlobStore(Protocol):
    def put(self, key: str, data: bytes) -> bool:
        """Store ``data`` durably under ``key``; False when it was already there."""
        ...

    def get(self, key: str) -> bytes:
        """The blob's bytes (raises ``BlobNotFound``)."""
        ...

    def exists(self, key: str) -> bool: ...


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid blob key {key!r}")
    return key


class LocalBlobStore:
    """Blobs as files under a root directory."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def put(self, key: str, data: bytes) -> bool:
        path = self.path(key)
        if path.exists():
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                if self.fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if self.fsync:
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return True

    def get(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(key) from None

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()


class S3BlobStore:
    """Blobs in an S3-compatible bucket (boto3 must be installed)."""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None) -> None:
        try:
            import boto3
        except ImportError as exc:  # pragma: no cover - optional dependency
            raise RuntimeError("ACCELIR_BLOB_BACKEND=s3 needs boto3 installed") from exc
        self.bucket, self.prefix = bucket, prefix
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url)

    def _key(self, key: str) -> str:
        return self.prefix + _check_key(key)

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.ClientError:
            return False
        return True

    def put(self, key: str, data: bytes) -> bool:
        if self.exists(key):
            return False
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)
        return True

    def get(self, key: str) -> bytes:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except self.client.exceptions.NoSuchKey:
            raise BlobNotFound(key) from None
        return bytes(obj["Body"].read())


def make_blob_store(settings: CommonSettings) -> BlobStore:
    """The store the settings select."""
    if settings.blob_backend == "s3":
        if not settings.s3_bucket:
            raise ValueError("ACCELIR_S3_BUCKET is required with ACCELIR_BLOB_BACKEND=s3")
        return S3BlobStore(settings.s3_bucket, settings.s3_prefix, settings.s3_endpoint_url)
    return LocalBlobStore(settings.blob_dir, fsync=settings.blob_fsync)
