"""Content-addressed artifact store: ``artifacts/<sha256[:2]>/<sha256>.<ext>`` under the data directory.

Identical bytes are stored once. Files are written to a temporary name in the store and renamed into place,
so a reader never sees a partial file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tunesmith.errors import ParameterError
from tunesmith.files import sha256_file

CONTENT_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg", "ogg": "audio/ogg",
                 "mid": "audio/midi", "png": "image/png", "zip": "application/zip"}


def _check_ext(ext: str) -> str:
    if ext not in CONTENT_TYPES:
        raise ParameterError(f"unknown artifact type {ext!r}; known: {', '.join(CONTENT_TYPES)}", field="format")
    return ext


def _check_digest(sha256: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ParameterError(f"not a sha256 digest: {sha256!r}", field="sha256")
    return sha256


class ArtifactStore:
    """Artifacts by content hash under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.scratch = self.root / ".tmp"
        self.scratch.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str, ext: str) -> Path:
        digest = _check_digest(sha256)
        return self.root / digest[:2] / f"{digest}.{_check_ext(ext)}"

    def exists(self, sha256: str, ext: str) -> bool:
        return self.path(sha256, ext).is_file()

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
        target = self.path(digest, ext)
        size = source.stat().st_size
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, name = tempfile.mkstemp(suffix=".part", dir=self.scratch)
            os.close(handle)
            try:
                shutil.copyfile(source, name)
                os.replace(name, target)
            finally:
                Path(name).unlink(missing_ok=True)
        return digest, size

    def remove(self, sha256: str, ext: str) -> None:
        self.path(sha256, ext).unlink(missing_ok=True)
