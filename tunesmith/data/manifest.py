"""Dataset manifests: one JSON line per item (id, source, licence, sha256, split, labels, duration).

Splits are assigned from a *group* key (a piece, a recording, an instrument-and-pitch), hashed, so
every transposition or segment of one piece lands in the same split on every machine and every run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.errors import DatasetError
from tunesmith.files import sha256_file

__all__ = ["SPLITS", "Record", "assign_split", "read_manifest", "sha256_bytes", "sha256_file", "write_manifest"]

SPLITS = ("train", "valid", "test")
MANIFEST_NAME = "manifest.jsonl"


@dataclass(slots=True)
class Record:
    """One dataset item. ``index`` points into the dataset's cache; ``labels`` is free-form per kind."""

    id: str
    source: str
    licence: str
    sha256: str
    split: str
    duration: float
    labels: dict[str, Any] = field(default_factory=dict)
    index: int = -1

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        return cls(**{k: data[k] for k in cls.__slots__ if k in data})  # type: ignore[attr-defined]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def assign_split(group: str, *, valid: float = 0.1, test: float = 0.1, salt: str = "tunesmith") -> str:
    """Deterministic split of a group key: the same group always gets the same split."""
    if not 0.0 <= valid < 1.0 or not 0.0 <= test < 1.0 or valid + test >= 1.0:
        raise DatasetError(f"split fractions valid={valid} test={test} must be in [0, 1) and sum below 1")
    digest = hashlib.sha256(f"{salt}:{group}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < test:
        return "test"
    if u < test + valid:
        return "valid"
    return "train"


def write_manifest(path: Path, records: Iterable[Record]) -> str:
    """Write records as JSONL; returns the sha256 of the written file."""
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(record.to_json() + "\n")
    return sha256_file(path)


def read_manifest(path: Path) -> Iterator[Record]:
    """Yield the records of a manifest, naming the line of any malformed entry."""
    if not path.is_file():
        raise DatasetError(f"{path} is not a dataset manifest (file not found)")
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield Record.from_dict(json.loads(line))
            except (json.JSONDecodeError, TypeError, KeyError) as exc:
                raise DatasetError(f"{path}:{number}: malformed manifest line ({exc})") from exc
