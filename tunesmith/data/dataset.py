"""Build and open datasets: a directory with ``manifest.jsonl``, ``dataset.json`` and ``cache/``.

A build writes into a temporary sibling directory and moves it into place only when it finishes, so an
interrupted or failed build never leaves a half-written dataset where a good one was.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tunesmith import __version__
from tunesmith.data.manifest import MANIFEST_NAME, Record, read_manifest, write_manifest
from tunesmith.data.store import ShardReader, ShardWriter
from tunesmith.errors import DatasetError

if TYPE_CHECKING:
    from tunesmith.symbolic.score import Score

INFO_NAME = "dataset.json"
CACHE_DIR = "cache"


@dataclass
class Skipped:
    """A source file the build could not use, and why."""

    source: str
    reason: str


@dataclass
class BuildSummary:
    """What a build produced: shown by the CLI and stored in dataset.json."""

    kind: str
    out: str
    items: int
    pieces: int
    audio_hours: float
    splits: dict[str, int]
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0
    manifest_sha256: str = ""
    excluded: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable closing summary."""
        out = [
            f"built {self.kind} dataset in {self.out}: {self.items} items from {self.pieces} pieces/recordings",
            "splits: " + ", ".join(f"{k} {v}" for k, v in sorted(self.splits.items())),
        ]
        if self.audio_hours:
            out.append(f"audio: {self.audio_hours:.3f} hours")
        if self.excluded:
            out.append(f"excluded by opt-out: {len(self.excluded)}")
        out.append(f"skipped: {len(self.skipped)} file(s)")
        out.extend(f"  skipped {s.source}: {s.reason}" for s in self.skipped)
        out.append(f"time: {self.seconds:.1f} s")
        return out


class DatasetWriter:
    """Collects records and cached arrays for one dataset build.

    Use as a context manager; `finish()` writes the manifest and info and moves the build into place.
    """

    def __init__(
        self,
        out: str | Path,
        *,
        kind: str,
        cache: dict[str, tuple[str, int]],
        info: dict[str, Any] | None = None,
        opt_out: frozenset[str] = frozenset(),
    ) -> None:
        self.out = Path(out)
        self.kind = kind
        if self.out.exists() and any(self.out.iterdir()) and not (self.out / INFO_NAME).is_file():
            raise DatasetError(f"{self.out} exists and is not a Tunesmith dataset; choose an empty --out")
        self.tmp = self.out.with_name(f".{self.out.name}.partial-{os.getpid()}")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self.writers = {
            name: ShardWriter(self.tmp / CACHE_DIR, name, dtype=dtype, ndim=ndim)
            for name, (dtype, ndim) in cache.items()
        }
        self.records: list[Record] = []
        self.skipped: list[Skipped] = []
        self.excluded: list[str] = []
        self.info = dict(info or {})
        self.opt_out = opt_out
        self.started = time.monotonic()
        self._ids: set[str] = set()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def is_opted_out(self, *keys: str) -> bool:
        """True (and recorded) when any of ``keys`` (an id, a source path) is on the opt-out list."""
        hit = next((k for k in keys if k in self.opt_out), None)
        if hit is not None:
            self.excluded.append(hit)
        return hit is not None

    def add(self, record: Record, arrays: dict[str, np.ndarray]) -> Record | None:
        """Add one item; ``arrays`` holds one array per cache name (all caches share the index).

        An item whose id or source is on the opt-out list is not stored; it is counted as excluded.
        """
        if self.is_opted_out(record.id, record.source):
            return None
        if record.id in self._ids:
            raise DatasetError(f"duplicate item id {record.id!r} in {self.kind} build")
        indices = {self.writers[name].add(array) for name, array in arrays.items()}
        if len(indices) != 1 or set(arrays) != set(self.writers):
            raise DatasetError(f"item {record.id!r} must give exactly one array for each of {sorted(self.writers)}")
        record.index = indices.pop()
        self._ids.add(record.id)
        self.records.append(record)
        return record

    def skip(self, source: str | Path, reason: str) -> None:
        """Report a file that could not be used; it is listed in the summary, never dropped silently."""
        self.skipped.append(Skipped(str(source), reason))

    def finish(self, *, pieces: int | None = None) -> BuildSummary:
        """Write manifest + info, move the dataset into place, return the summary."""
        for writer in self.writers.values():
            writer.close()
        manifest_sha = write_manifest(self.tmp / MANIFEST_NAME, self.records)
        groups = {r.labels.get("group", r.id) for r in self.records}
        audio_seconds = sum(r.duration for r in self.records if self.info.get("audio"))
        summary = BuildSummary(
            kind=self.kind,
            out=str(self.out),
            items=len(self.records),
            pieces=pieces if pieces is not None else len(groups),
            audio_hours=audio_seconds / 3600.0,
            splits=dict(Counter(r.split for r in self.records)),
            skipped=self.skipped,
            seconds=time.monotonic() - self.started,
            manifest_sha256=manifest_sha,
            excluded=self.excluded,
        )
        info = {
            "kind": self.kind,
            "tunesmith_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "licences": dict(Counter(r.licence for r in self.records)),
            "summary": asdict(summary),
            **self.info,
        }
        (self.tmp / INFO_NAME).write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
        if self.out.exists():
            shutil.rmtree(self.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp.rename(self.out)
        return summary


class Dataset:
    """A built dataset opened for reading: records, info and memory-mapped caches."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        info_path = self.root / INFO_NAME
        if not info_path.is_file():
            raise DatasetError(
                f"{self.root} is not a Tunesmith dataset (no {INFO_NAME}); build one with 'tunesmith data build'"
            )
        self.info: dict[str, Any] = json.loads(info_path.read_text())
        self.kind: str = self.info["kind"]
        self.records: list[Record] = list(read_manifest(self.root / MANIFEST_NAME))
        self._readers: dict[str, ShardReader] = {}

    def __len__(self) -> int:
        return len(self.records)

    def split(self, name: str) -> list[Record]:
        """Records of one split (train, valid or test)."""
        return [r for r in self.records if r.split == name]

    def array(self, cache: str, record: Record | int) -> np.ndarray:
        """The cached array of ``record`` in cache ``cache`` (e.g. "audio" or "tokens")."""
        if cache not in self._readers:
            self._readers[cache] = ShardReader(self.root / CACHE_DIR, cache)
        index = record.index if isinstance(record, Record) else int(record)
        return self._readers[cache][index]

    def score(self, record: Record | int) -> Score:
        """The score of a symbolic dataset's ``record``, decoded from its token cache."""
        from tunesmith.symbolic.tokens import decode

        return decode(self.array("tokens", record).astype(int).tolist())

    @property
    def manifest_sha256(self) -> str:
        return str(self.info.get("summary", {}).get("manifest_sha256", ""))
