"""Where each token of a voice-grid sequence sits: its voice slot and its step in the bar.

Sequence models read these two streams beside the token ids. They follow from the tokens alone: after
the header, every ``BAR`` restarts the step counter and the k-th step token of a bar belongs to voice
``k % voices`` at step ``k // voices``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tunesmith.symbolic.tokens import HEADER_LENGTH, MAX_VOICES, VOCAB, Vocabulary

BAR_SLOT = MAX_VOICES  # slot of BAR tokens
OTHER_SLOT = MAX_VOICES + 1  # header, EOS, PAD
N_SLOTS = MAX_VOICES + 2
N_POSITIONS = 49  # steps 0..47 of a bar (12/8 at 4 steps per beat is 24) + one for non-step tokens
OFF_GRID = N_POSITIONS - 1


class GridCursor:
    """Tracks slot and bar step while a sequence is read or generated one token at a time."""

    def __init__(self, voices: int, vocab: Vocabulary = VOCAB) -> None:
        self.voices = voices
        self.vocab = vocab
        self.seen = 0
        self.k = 0  # step tokens since the last BAR

    def where(self, token_id: int) -> tuple[int, int]:
        """Slot and position of ``token_id`` placed next; advances the cursor."""
        index = self.seen
        self.seen += 1
        if index < HEADER_LENGTH or token_id in (self.vocab.eos_id, self.vocab.pad_id, self.vocab.bos_id):
            return OTHER_SLOT, OFF_GRID
        if token_id == self.vocab.bar_id:
            self.k = 0
            return BAR_SLOT, OFF_GRID
        slot, step = self.k % self.voices, self.k // self.voices
        self.k += 1
        return slot, min(step, OFF_GRID - 1)


def voices_of(ids: Sequence[int], vocab: Vocabulary = VOCAB) -> int:
    """The ``VOICES_<n>`` value of a sequence's header."""
    token = vocab.token(int(ids[3]))
    if not token.startswith("VOICES_"):
        raise ValueError(f"token 3 of the sequence is {token}, not a VOICES token")
    return int(token.split("_")[1])


def grid_streams(ids: Sequence[int], vocab: Vocabulary = VOCAB) -> tuple[np.ndarray, np.ndarray]:
    """Slot and position arrays (int64, same length as ``ids``) of a whole sequence."""
    cursor = GridCursor(voices_of(ids, vocab), vocab)
    pairs = [cursor.where(int(t)) for t in ids]
    slots = np.fromiter((p[0] for p in pairs), dtype=np.int64, count=len(pairs))
    positions = np.fromiter((p[1] for p in pairs), dtype=np.int64, count=len(pairs))
    return slots, positions
