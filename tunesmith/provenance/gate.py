"""The symbolic originality gate: is a generated score a copy of a training piece?

`check_symbolic` reports the longest run of notes (pitch intervals + durations, so any key) that the score
shares with any piece of the model's training corpus, names that piece, and flags the score when the run is
longer than the threshold. `index_for_dataset` builds the index from a built dataset directory (the pieces of
its training split, decoded from the token cache) and can keep it in a cache file keyed by the dataset's
manifest hash, so a service builds it once.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.errors import DatasetError, ParameterError
from tunesmith.provenance.originality import SymbolicIndex
from tunesmith.symbolic.score import Score

ORIGINALITY_THRESHOLD = 12  # notes; the limit the lm evaluation holds generated pieces to
CACHE_VERSION = 1


@dataclass(frozen=True)
class OriginalityReport:
    """The longest run shared with the training corpus, the piece it comes from, and the verdict."""

    longest_shared_run: int
    closest_piece: str | None
    threshold: int
    flagged: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_threshold(threshold: object) -> int:
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise ParameterError(f"originality threshold must be a positive number of notes, got {threshold!r}",
                             field="threshold")
    return threshold


def check_symbolic(score: Score, index: SymbolicIndex, threshold: int = ORIGINALITY_THRESHOLD) -> OriginalityReport:
    """Flag `score` when it shares a run of more than `threshold` notes with a piece of `index`."""
    threshold = check_threshold(threshold)
    match = index.longest_shared_run(score)
    return OriginalityReport(longest_shared_run=match.length, closest_piece=match.source, threshold=threshold,
                             flagged=match.length > threshold)


def save_index(index: SymbolicIndex, path: str | os.PathLike[str]) -> Path:
    """Write the index's voices as arrays (no pickles) to an .npz file; returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = sorted({pid for pid, _ in index.voices})
    number = {pid: i for i, pid in enumerate(ids)}
    lengths = np.array([len(steps) for _, steps in index.voices], dtype=np.int64)
    owners = np.array([number[pid] for pid, _ in index.voices], dtype=np.int64)
    intervals = np.array([s[0] for _, steps in index.voices for s in steps], dtype=np.int16)
    durations = np.array([s[1] for _, steps in index.voices for s in steps], dtype=np.float64)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, version=np.array([CACHE_VERSION]), ids=np.array(json.dumps(ids)), lengths=lengths, owners=owners,
             intervals=intervals, durations=durations, max_length=np.array([index.max_length]))
    os.replace(tmp, path)
    return path


def load_index(path: str | os.PathLike[str]) -> SymbolicIndex:
    """Read an index written by `save_index`."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["version"][0]) != CACHE_VERSION:
                raise DatasetError(f"{path}: originality index of another version; delete it to rebuild")
            ids = json.loads(str(data["ids"]))
            bounds = np.concatenate([[0], np.cumsum(data["lengths"])])
            intervals, durations = data["intervals"].tolist(), data["durations"].tolist()
            voices = [(ids[owner], list(zip(intervals[a:b], durations[a:b], strict=True)))
                      for owner, a, b in zip(data["owners"].tolist(), bounds[:-1], bounds[1:], strict=True)]
            return SymbolicIndex.from_voices(voices, max_length=int(data["max_length"][0]))
    except (OSError, KeyError, ValueError) as exc:
        raise DatasetError(f"{path}: not a readable originality index ({exc})") from exc
