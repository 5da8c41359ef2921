"""A compact array cache that training reads without decoding again.

Items (mono audio, token ids, feature matrices) are appended to shards: each shard is one flat
``.npy`` of the concatenated items plus an ``.index.npy`` of (offset, *shape) rows. Readers memory-map
the shards, so opening a large dataset costs nothing and items are read on demand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tunesmith.errors import DatasetError


class ShardWriter:
    """Append arrays of one dtype and rank; a shard is written every ``shard_items`` items or
    ``shard_bytes`` bytes, whichever comes first, so memory stays bounded for long clips."""

    def __init__(self, root: Path, name: str, *, dtype: str, ndim: int, shard_items: int = 2048,
                 shard_bytes: int = 256 << 20) -> None:
        self.root, self.name, self.dtype, self.ndim = Path(root), name, np.dtype(dtype), ndim
        self.shard_items, self.shard_bytes = shard_items, shard_bytes
        self._buffered = 0
        self.count = 0
        self._chunks: list[np.ndarray] = []
        self._shapes: list[tuple[int, ...]] = []
        self._shard = 0
        self.root.mkdir(parents=True, exist_ok=True)

    def add(self, array: np.ndarray) -> int:
        """Store ``array``; returns its global index."""
        array = np.asarray(array)
        if array.ndim != self.ndim:
            raise DatasetError(f"cache {self.name!r} holds {self.ndim}-D items, got shape {array.shape}")
        self._chunks.append(np.ascontiguousarray(array, dtype=self.dtype).ravel())
        self._shapes.append(array.shape)
        self.count += 1
        self._buffered += self._chunks[-1].nbytes
        if len(self._chunks) >= self.shard_items or self._buffered >= self.shard_bytes:
            self._flush()
        return self.count - 1

    def _flush(self) -> None:
        if not self._chunks:
            return
        sizes = np.array([c.size for c in self._chunks], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        index = np.column_stack([offsets, np.array(self._shapes, dtype=np.int64).reshape(len(sizes), -1)])
        stem = self.root / f"{self.name}-{self._shard:05d}"
        np.save(f"{stem}.npy", np.concatenate(self._chunks))
        np.save(f"{stem}.index.npy", index)
        self._chunks, self._shapes, self._buffered = [], [], 0
        self._shard += 1

    def close(self) -> None:
        self._flush()


class ShardReader:
    """Random access to the items a `ShardWriter` stored, memory-mapped."""

    def __init__(self, root: Path, name: str) -> None:
        stems = sorted(p for p in Path(root).glob(f"{name}-*.index.npy"))
        if not stems:
            raise DatasetError(f"no cache named {name!r} in {root}")
        self._data = [np.load(str(p).replace(".index.npy", ".npy"), mmap_mode="r") for p in stems]
        self._index = [np.load(p) for p in stems]
        self._starts = np.cumsum([0] + [len(i) for i in self._index])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, item: int) -> np.ndarray:
        if not 0 <= item < len(self):
            raise IndexError(f"cache index {item} out of range 0..{len(self) - 1}")
        shard = int(np.searchsorted(self._starts, item, side="right") - 1)
        row = self._index[shard][item - self._starts[shard]]
        shape = tuple(int(s) for s in row[1:])
        offset = int(row[0])
        size = int(np.prod(shape)) if shape else 1
        return np.asarray(self._data[shard][offset : offset + size]).reshape(shape)
