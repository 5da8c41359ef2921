"""Artifacts and uploads in an S3-compatible object store (``TUNESMITH_ARTIFACTS_URL=s3://BUCKET/PREFIX``), so
that API and worker hosts share them without a shared file system.

One boto3 client per process is kept (boto3 clients are thread-safe and pool their connections). The endpoint
is ``TUNESMITH_S3_ENDPOINT``, else boto3's own settings (``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, or
AWS S3 itself); credentials and region come from boto3's usual chain (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, a profile, an instance role). With an endpoint of its own the
client addresses buckets by path (``http://host/bucket/key``: MinIO, Ceph RGW, R2, s3rver), and it sends and
checks checksums only where the S3 API requires them (the newer default checksums of boto3 are refused by some
compatible stores).

Objects are immutable (named by their content's sha256), so a copy is never stale: a file the service must read
as a file (to transcode, draw, zip, or read an upload) is fetched once into ``<data dir>/object-cache`` and
kept there up to ``TUNESMITH_S3_CACHE_MEGABYTES`` (the least recently used go first). Downloads through the API
do not go through that cache: they stream from the store with the request's byte range passed on
(:func:`tunesmith.service.routes.files.stored_response`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tunesmith.errors import DependencyError, ParameterError

CHUNK = 1 << 16
MULTIPART_BYTES = 64 * 1024 * 1024  # files above this are uploaded in parts


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or ending in "/"

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """``s3://BUCKET`` or ``s3://BUCKET/PREFIX``; ParameterError naming the setting otherwise."""
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ParameterError(f"artifacts_url must be s3://BUCKET/PREFIX, got {url!r}", field="artifacts_url")
        prefix = parsed.path.strip("/")
        return cls(bucket=parsed.netloc, prefix=f"{prefix}/" if prefix else "")


def s3_client(endpoint: str | None) -> Any:
    """A boto3 S3 client for ``endpoint`` (None: boto3's own choice) with bounded retries and time-outs."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        raise DependencyError("an s3:// artifacts URL needs boto3: pip install boto3") from exc
    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30,
                    max_pool_connections=32, request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                    s3={"addressing_style": "path"} if endpoint else None)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return boto3.session.Session().client("s3", endpoint_url=endpoint or None, region_name=region, config=config)


class S3Objects:
    """Objects under ``location.prefix + folder`` in a bucket; a size-bounded local cache for :meth:`local`."""

    shared = True

    def __init__(self, client: Any, location: S3Location, folder: str, cache: Path, cache_bytes: int) -> None:
        self.client = client
        self.bucket = location.bucket
        self.prefix = f"{location.prefix}{folder}/"
        self.cache = Path(cache) / folder
        self.cache_bytes = cache_bytes
        (self.cache / ".tmp").mkdir(parents=True, exist_ok=True)
        self._pruning = threading.Lock()

    def _key(self, key: str) -> str:
        return self.prefix + key

    def put(self, source: Path, key: str) -> None:
        if self.size(key) is not None:  # content-addressed: the same bytes are there already
            return
        from boto3.s3.transfer import TransferConfig

        self.client.upload_file(str(source), self.bucket, self._key(key),
                                Config=TransferConfig(multipart_threshold=MULTIPART_BYTES, use_threads=False))

    def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def local(self, key: str) -> Path | None:
        from botocore.exceptions import ClientError

        path = self.cache / key
        if path.is_file():
            with contextlib.suppress(OSError):
                os.utime(path)  # recently used
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(suffix=".part", dir=self.cache / ".tmp")
        os.close(handle)
        try:
            self.client.download_file(self.bucket, self._key(key), name)
            os.replace(name, path)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        finally:
            Path(name).unlink(missing_ok=True)
        self._prune(keep=path)
        return path

    def read(self, key: str, start: int, stop: int) -> Iterator[bytes]:
        if stop <= start:
            return
        answer = self.client.get_object(Bucket=self.bucket, Key=self._key(key), Range=f"bytes={start}-{stop - 1}")
        body = answer["Body"]
        try:
            yield from body.iter_chunks(CHUNK)
        finally:
            body.close()

    def remove(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        (self.cache / key).unlink(missing_ok=True)

    def _prune(self, keep: Path) -> None:
        """Delete the least recently used cached files until the cache holds at most ``cache_bytes``."""
        with self._pruning:
            files = [(p.stat().st_mtime, p.stat().st_size, p) for p in self.cache.glob("??/*") if p.is_file()]
            total = sum(size for _, size, _ in files)
            for _, size, path in sorted(files):
                if total <= self.cache_bytes:
                    break
                if path != keep:
                    path.unlink(missing_ok=True)
                    total -= size

    def check(self) -> None:
        """DependencyError naming the bucket and endpoint when the store cannot be reached (asked at start-up)."""
        from botocore.exceptions import BotoCoreError, ClientError

        started = time.monotonic()
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise DependencyError(f"the object store at {self.client.meta.endpoint_url} does not answer for bucket "
                                  f"{self.bucket!r} after {time.monotonic() - started:.1f} s: {exc}") from exc


def s3_objects(url: str, endpoint: str | None, cache: Path, cache_megabytes: int) -> dict[str, S3Objects]:
    """The object folders of an ``s3://`` artifacts URL: ``artifacts`` and ``uploads``, sharing one client
    (checked to answer)."""
    location = S3Location.parse(url)
    client = s3_client(endpoint)
    folders = {name: S3Objects(client, location, name, cache, cache_megabytes * 1024 * 1024)
               for name in ("artifacts", "uploads")}
    folders["artifacts"].check()
    return folders
