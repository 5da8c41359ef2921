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
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tunesmith.errors import DatasetError, ParameterError
from tunesmith.progress import progress

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


def index_for_audio_dataset(dataset_dir: str | os.PathLike[str], analyzer: Any, *, split: str = "train",
                            cache_dir: str | os.PathLike[str] | None = None,
                            cancel: threading.Event | None = None) -> EmbeddingIndex:
    """The embedding index of a built audio dataset's ``split``, from the cache when it is there.

    ``cancel``, once set, stops a build between two batches (DatasetError): a server that stops does not leave
    a thread embedding audio while the interpreter shuts down."""
    from tunesmith.data.dataset import Dataset

    dataset = Dataset(dataset_dir)
    if not dataset.info.get("audio"):
        raise DatasetError(f"{dataset_dir} is a '{dataset.kind}' dataset without audio; the audio gate needs one")
    weights = str(analyzer.card.get("weights_sha256", ""))[:16]
    cache = (Path(cache_dir) / f"audio-index-{dataset.manifest_sha256[:16]}-{weights}-{split}.npz"
             if cache_dir is not None else None)
    if cache is not None and cache.is_file():
        return EmbeddingIndex.load(cache)
    records = dataset.split(split)
    if not records:
        raise DatasetError(f"{dataset_dir} has no '{split}' items to index")
    sr = int(dataset.info["sr"])
    parts = []
    for start in progress(range(0, len(records), BATCH), desc="embedding training audio", unit="batch"):
        if cancel is not None and cancel.is_set():
            raise DatasetError(f"the index of {dataset_dir} was not finished: its build was cancelled")
        clips = [np.asarray(dataset.array("audio", r), dtype=np.float32) for r in records[start:start + BATCH]]
        if len({c.shape for c in clips}) == 1:
            parts.append(analyzer.embed(np.stack(clips), sr))
        else:  # clips of different lengths: one at a time
            parts.append(np.stack([analyzer.embed(c, sr) for c in clips]))
    index = EmbeddingIndex([r.id for r in records], np.concatenate(parts))
    if cache is not None:
        index.save(cache)
    return index


def audio_originality(y: np.ndarray, sr: int, card: dict[str, Any], *, cache_dir: str | os.PathLike[str] | None,
                      threshold: float = AUDIO_THRESHOLD, analyzer: Any = None) -> dict[str, Any]:
    """The originality report of a generated sound against the training data named on its model's card.

    JSON-ready: the report's fields and ``status`` "checked", or ``status`` "unchecked" with the reason when the
    training dataset or the analyzer is not on this machine (never an error: the sound is still delivered)."""
    from tunesmith.compose.weights import dataset_of

    try:
        dataset = dataset_of(card)
    except DatasetError as exc:
        return {"status": "unchecked", "reason": exc.message}
    if analyzer is None:
        from tunesmith.analyze.analyzer import Analyzer

        try:
            analyzer = Analyzer.load("analyzer")
        except ParameterError as exc:
            return {"status": "unchecked", "reason": f"no analyzer model: {exc}"}
    index = index_for_audio_dataset(dataset, analyzer, cache_dir=cache_dir)
    return {"status": "checked", **check_audio(y, sr, index, analyzer, threshold).to_dict()}
