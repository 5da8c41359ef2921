"""The embedding matcher: the prompt's unexplained words compared with the vocabulary's described entries.

The vocabulary's entries (each one's description and each of its phrases, one row per text) are embedded once per
model and process and kept (:func:`semantic_index`). A prompt's leftover words are cut into chunks at punctuation
and joining words ("a video game boss fight, something to fall asleep to" gives two chunks); each chunk is embedded
(one batch for the prompt) and matched with the entry whose nearest row is most similar. A match counts when its
cosine similarity reaches the model's threshold (:data:`THRESHOLDS`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

import numpy as np

from tunesmith.prompting.embedding import SentenceEncoder
from tunesmith.prompting.lexicon import units_of
from tunesmith.prompting.text import has_cjk
from tunesmith.prompting.vocabulary import Vocabulary

# Cosine similarity a chunk needs to count as meaning an entry, per model (set from the calibration sentences in
# docs/prompts.md: unrelated text stays below, paraphrases of an entry reach it).
THRESHOLDS = {"minilm": 0.5, "use": 0.5}
MAX_CHUNKS = 4
_SPLIT = re.compile(r"[,;.!?:()\[\]/，。；！？：、\n]+|\s(?:and|with|for|but|or|to|in|on|at|like|of|from|by|plus)\s"
                    r"|[和与跟及或但]|的")


@dataclass(frozen=True)
class SemanticMatch:
    entry: str  # "mood:sad"
    words: str
    similarity: float


class SemanticIndex:
    """The embedded rows of a vocabulary for one model."""

    def __init__(self, encoder: SentenceEncoder, vocabulary: Vocabulary) -> None:
        multilingual = encoder.info.name != "minilm"
        texts, owners = [], []
        for entry in vocabulary.described():
            for text in (entry.description, *entry.words):
                if multilingual or not has_cjk(text):
                    texts.append(text)
                    owners.append(entry.key)
        self.encoder = encoder
        self.entries = list(dict.fromkeys(owners))
        position = {key: i for i, key in enumerate(self.entries)}
        owner = np.array([position[key] for key in owners])
        self.starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])  # each entry's rows are contiguous
        self.matrix = np.concatenate([encoder.encode(texts[i:i + 64]) for i in range(0, len(texts), 64)])
        self.rows = len(texts)

    def best(self, vectors: np.ndarray) -> list[tuple[str, float]]:
        """For each vector, the most similar entry and the similarity of its nearest row."""
        per_entry = np.maximum.reduceat(vectors @ self.matrix.T, self.starts, axis=1)  # (chunks, entries)
        best = per_entry.argmax(axis=1)
        return [(self.entries[i], float(per_entry[row, i])) for row, i in enumerate(best)]


@cache
def _blas_limit():  # discovering the BLAS libraries takes a while: once per process
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Hold numpy's BLAS to one thread: a small product is fastest there, and a parse must not wake the pool's
    other threads (on a busy machine that costs more than the product)."""
    with _blas_limit().limit(limits=1, user_api="blas"):
        yield


_INDEXES: dict[tuple[str, str], SemanticIndex] = {}
_INDEX_LOCK = threading.Lock()


def semantic_index(encoder: SentenceEncoder, vocabulary: Vocabulary) -> SemanticIndex:
    """The index of ``vocabulary`` for ``encoder``'s model: computed once per process, then kept."""
    key = (encoder.info.name, vocabulary.sha256)
    with _INDEX_LOCK:
        if key not in _INDEXES:
            _INDEXES[key] = SemanticIndex(encoder, vocabulary)
        return _INDEXES[key]


def _content(piece: str, vocabulary: Vocabulary) -> str:
    """``piece`` without filler words (English) and filler phrases (Chinese); "" if too little is left."""
    if has_cjk(piece):
        for filler in vocabulary.fillers_zh:
            piece = piece.replace(filler, " ")
        cjk = sum(1 for c in piece if has_cjk(c))
        latin = [u for u, _, _ in units_of(piece.lower()) if not has_cjk(u) and u not in vocabulary.fillers_en]
        return " ".join(piece.split()) if cjk >= 2 or any(len(u) >= 3 for u in latin) else ""
    words = [u for u, _, _ in units_of(piece.lower())]
    kept = [w for w in words if w not in vocabulary.fillers_en and not w.isdigit()]
    return " ".join(piece.split()) if any(len(w) >= 3 for w in kept) else ""


def chunks(leftover: str, vocabulary: Vocabulary) -> list[tuple[str, int, int]]:
    """(text to embed, start, end) of the leftover text's pieces that hold more than filler words."""
    found, start = [], 0
    for separator in [*_SPLIT.finditer(leftover), None]:
        end = separator.start() if separator else len(leftover)
        piece = leftover[start:end]
        content = _content(piece, vocabulary)
        if content:
            offset = len(piece) - len(piece.lstrip())
            found.append((content, start + offset, start + len(piece.rstrip())))
        if separator:
            start = separator.end()
    return found[:MAX_CHUNKS]


def match_chunks(texts: list[str], index: SemanticIndex) -> list[SemanticMatch]:
    """Each chunk's best entry, if it reaches the model's threshold."""
    if not texts:
        return []
    threshold = THRESHOLDS.get(index.encoder.info.name, 0.5)
    with one_blas_thread():
        best = index.best(index.encoder.encode(texts))
    return [SemanticMatch(entry, text, similarity) for text, (entry, similarity) in zip(texts, best, strict=True)
            if similarity >= threshold]
