"""Content-addressed artifact store: ``<sha256[:2]>/<sha256>.<ext>`` in a folder of objects.

Identical bytes are stored once. The objects live in the data directory (:class:`LocalObjects`, the default:
``<data dir>/artifacts``) or, with ``TUNESMITH_ARTIFACTS_URL=s3://BUCKET/PREFIX``, in an S3-compatible object
store shared by every host (:class:`tunesmith.service.object_store.S3Objects`). Both write whole objects only,
so a reader never sees a partial file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tunesmith.config import Settings
from tunesmith.errors import ParameterError
from tunesmith.files import sha256_file

CONTENT_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg", "ogg": "audio/ogg",
                 "mid": "audio/midi", "png": "image/png", "zip": "application/zip"}
READ_CHUNK = 1 << 16


def _check_ext(ext: str) -> str:
    if ext not in CONTENT_TYPES:
        raise ParameterError(f"unknown artifact type {ext!r}; known: {', '.join(CONTENT_TYPES)}", field="format")
    return ext


def _check_digest(sha256: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ParameterError(f"not a sha256 digest: {sha256!r}", field="sha256")
    return sha256


class Objects(Protocol):
    """Where stored files live, by key (``ab/abcd....wav``): a folder here, or a bucket an object store serves."""

    shared: bool  # seen by every host (an object store), not only this machine's processes

    def put(self, source: Path, key: str) -> None: ...
    def size(self, key: str) -> int | None: ...
    def local(self, key: str) -> Path | None: ...
    def read(self, key: str, start: int, stop: int) -> Iterator[bytes]: ...
    def remove(self, key: str) -> None: ...


class LocalObjects:
    """Objects as files under ``root`` (written under a temporary name in ``scratch``, then renamed)."""

    shared = False

    def __init__(self, root: Path, scratch: Path) -> None:
        self.root = Path(root)
        self.scratch = Path(scratch)

    def file(self, key: str) -> Path:
        return self.root / key

    def put(self, source: Path, key: str) -> None:
        target = self.file(key)
        if target.is_file():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(suffix=".part", dir=self.scratch)
        os.close(handle)
        try:
            shutil.copyfile(source, name)
            os.replace(name, target)
        finally:
            Path(name).unlink(missing_ok=True)

    def size(self, key: str) -> int | None:
        try:
            return self.file(key).stat().st_size
        except FileNotFoundError:
            return None

    def local(self, key: str) -> Path | None:
        path = self.file(key)
        return path if path.is_file() else None

    def read(self, key: str, start: int, stop: int) -> Iterator[bytes]:
        with self.file(key).open("rb") as handle:
            handle.seek(start)
            left = stop - start
            while left > 0 and (chunk := handle.read(min(READ_CHUNK, left))):
                left -= len(chunk)
                yield chunk

    def remove(self, key: str) -> None:
        self.file(key).unlink(missing_ok=True)


@dataclass(frozen=True)
class StoredFile:
    """A stored artifact a route answers with: its digest, type and content type."""

    sha256: str
    ext: str
    content_type: str


class ArtifactStore:
    """Artifacts by content hash in ``objects`` (default: files under ``root``); ``root/.tmp`` is the scratch
    folder where files are written before :meth:`put_file`. :func:`make_store` builds the one settings name."""

    def __init__(self, root: Path, objects: Objects | None = None, upload_objects: Objects | None = None) -> None:
        self.root = Path(root)
        self.scratch = self.root / ".tmp"
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.objects: Objects = objects if objects is not None else LocalObjects(self.root, self.scratch)
        self.upload_objects = upload_objects  # where uploaded scores live with an object store (else the data dir)

    @property
    def shared(self) -> bool:
        return self.objects.shared

    @staticmethod
    def key(sha256: str, ext: str) -> str:
        digest = _check_digest(sha256)
        return f"{digest[:2]}/{digest}.{_check_ext(ext)}"

    def path(self, sha256: str, ext: str) -> Path:
        """Where the artifact is (or would be) in a local store's folder."""
        return self.root / self.key(sha256, ext)

    def exists(self, sha256: str, ext: str) -> bool:
        return self.size(sha256, ext) is not None

    def size(self, sha256: str, ext: str) -> int | None:
        """The artifact's size in bytes; None when it is not stored."""
        return self.objects.size(self.key(sha256, ext))

    def local(self, sha256: str, ext: str) -> Path | None:
        """A file on this machine with the artifact's bytes, to read (an object store's copy is fetched into a
        cache first); None when it is not stored."""
        return self.objects.local(self.key(sha256, ext))

    def read(self, sha256: str, ext: str, start: int, stop: int) -> Iterator[bytes]:
        """Bytes ``start`` up to (not including) ``stop`` of the artifact, in chunks."""
        return self.objects.read(self.key(sha256, ext), start, stop)

    @contextmanager
    def scratch_file(self, ext: str) -> Iterator[Path]:
        """A temporary path (in the store's file system) to write a file to before :meth:`put_file`."""
        handle, name = tempfile.mkstemp(suffix=f".{_check_ext(ext)}", dir=self.scratch)
        os.close(handle)
        path = Path(name)
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    def put_file(self, source: Path, ext: str) -> tuple[str, int]:
        """Store a copy of ``source``; returns (sha256, size in bytes)."""
        digest = sha256_file(source)
        self.objects.put(source, self.key(digest, ext))
        return digest, source.stat().st_size

    def remove(self, sha256: str, ext: str) -> None:
        self.objects.remove(self.key(sha256, ext))


def make_store(settings: Settings) -> ArtifactStore:
    """The artifact store of ``settings``: the data directory's ``artifacts/``, or the object store of an
    ``s3://`` artifacts URL (with its uploads beside, and a read cache in ``<data dir>/object-cache``)."""
    if not settings.artifacts_url:
        return ArtifactStore(settings.artifacts_dir)
    from tunesmith.service.object_store import s3_objects

    folders = s3_objects(settings.artifacts_url, settings.s3_endpoint, settings.data_dir / "object-cache",
                         settings.s3_cache_megabytes)
    return ArtifactStore(settings.artifacts_dir, folders["artifacts"], folders["uploads"])
