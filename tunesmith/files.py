"""Checks on input files shared by every reader (audio, symbolic): exists, is a file, not empty, readable."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tunesmith.errors import InputFileError


def check_input_file(path: str | os.PathLike[str]) -> Path:
    """The path as a `Path` if it names a readable, non-empty regular file; InputFileError naming it if not."""
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{p}: no such file", field="path")
    if not p.is_file():
        raise InputFileError(f"{p}: not a regular file", field="path")
    if p.stat().st_size == 0:
        raise InputFileError(f"{p}: file is empty", field="path")
    if not os.access(p, os.R_OK):
        raise InputFileError(f"{p}: file is not readable (permission denied)", field="path")
    return p


def sha256_file(path: str | os.PathLike[str], *, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
