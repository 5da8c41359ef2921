"""The audio originality gate: is a generated sound a copy of a training recording?

Each training clip is represented by the analyzer's embedding (its penultimate layer), L2-normalised; a
generated sound is embedded the same way and compared with its nearest neighbour by cosine distance. The
report names the nearest training item and the distance; a distance under the threshold flags the sound as a
near-copy. The embedding is made to tell instruments and pitches apart, so a new violin E4 lies near the
training violin E4s (typical distances 0.1-0.2 on held-out notes): only a near-exact copy falls under the
default threshold. The index is built once from a dataset's training split and cached as `.npz` (no pickles),
keyed by the dataset's manifest hash and the analyzer's weights hash.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.errors import DatasetError, ParameterError

AUDIO_THRESHOLD = 0.02  # cosine distance; under it a sound is a near-copy of its nearest training item
BATCH = 64


@dataclass(frozen=True)
class AudioOriginalityReport:
    """The nearest training item in the analyzer's embedding space, its distance, and the verdict."""

    distance: float
    nearest_item: str
    threshold: float
    flagged: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class EmbeddingIndex:
    """Normalised embeddings of training clips with their record ids."""

    def __init__(self, ids: list[str], embeddings: np.ndarray) -> None:
        if len(ids) != len(embeddings) or not len(ids):
            raise DatasetError(f"an embedding index needs one embedding per id, got {len(ids)} ids and "
                               f"{len(embeddings)} embeddings")
        self.ids = list(ids)
        self.embeddings = _normalise(np.asarray(embeddings, dtype=np.float32))

    def nearest(self, embedding: np.ndarray) -> tuple[float, str]:
        """(cosine distance, id) of the training clip closest to ``embedding`` (D,)."""
        similarity = self.embeddings @ _normalise(np.asarray(embedding, dtype=np.float32)[None])[0]
        best = int(np.argmax(similarity))
        return max(0.0, float(1.0 - similarity[best])), self.ids[best]

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")  # two processes may build it at once
        np.savez(tmp, ids=np.asarray(self.ids, dtype=str), embeddings=self.embeddings)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> EmbeddingIndex:
        with np.load(path, allow_pickle=False) as data:
            return cls([str(i) for i in data["ids"]], data["embeddings"])


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.clip(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9, None)


def check_audio(y: np.ndarray, sr: int, index: EmbeddingIndex, analyzer: Any,
                threshold: float = AUDIO_THRESHOLD) -> AudioOriginalityReport:
    """Flag the sound ``y`` (a note-length clip) when it lies within ``threshold`` of a training clip."""
    if not 0.0 <= float(threshold) < 1.0:
        raise ParameterError(f"audio originality threshold must be a cosine distance in [0, 1), got {threshold!r}",
                             field="threshold")
    distance, item = index.nearest(analyzer.embed(np.asarray(y, dtype=np.float32), sr))
    return AudioOriginalityReport(distance=round(distance, 5), nearest_item=item, threshold=float(threshold),
                                  flagged=distance < threshold)
