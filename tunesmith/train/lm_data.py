"""Token sequences for language-model training: transposition, windows with their header, batches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tunesmith.data.dataset import Dataset
from tunesmith.errors import DatasetError
from tunesmith.symbolic.grid import grid_streams
from tunesmith.symbolic.tokens import HEADER_LENGTH, VOCAB, Vocabulary

LOWEST, HIGHEST = 24, 102  # transposition keeps every note inside this range
IGNORE = -100


def transposition_table(shift: int, vocab: Vocabulary = VOCAB) -> np.ndarray:
    """id -> id map that moves every pitch and the key token by ``shift`` semitones."""
    table = np.arange(vocab.size)
    for pitch in range(128):
        if 0 <= pitch + shift <= 127:
            table[vocab.pitch_id(pitch)] = vocab.pitch_id(pitch + shift)
    for token_id, token in enumerate(vocab.tokens):
        if token.startswith("KEY_"):
            _, tonic, mode = token.split("_")
            table[token_id] = vocab.key_id((int(tonic) + shift) % 12, mode)
    return table


@dataclass
class Sequence_:
    ids: np.ndarray  # (T,) int64
    slots: np.ndarray
    positions: np.ndarray
    bars: np.ndarray  # indices of BAR tokens
    low: int  # lowest and highest pitch
    high: int


class TokenCorpus:
    """The sequences of one split of a tokenized dataset, ready to cut into training windows."""

    def __init__(self, dataset: Dataset, split: str, vocab: Vocabulary = VOCAB) -> None:
        if dataset.info.get("audio"):
            raise DatasetError(f"{dataset.root} holds audio, not token sequences")
        self.vocab = vocab
        self.sequences: list[Sequence_] = []
        pitch_lo = vocab.pitch_ids[0]
        for record in dataset.split(split):
            ids = dataset.array("tokens", record).astype(np.int64)
            slots, positions = grid_streams(ids.tolist(), vocab)
            pitches = ids[(ids >= pitch_lo) & (ids <= vocab.pitch_ids[-1])] - pitch_lo
            if pitches.size == 0:
                continue
            self.sequences.append(Sequence_(ids, slots, positions, np.flatnonzero(ids == vocab.bar_id),
                                            int(pitches.min()), int(pitches.max())))
        if not self.sequences:
            raise DatasetError(f"{dataset.root} has no token sequences in its {split!r} split")
        self.tables = {s: transposition_table(s, vocab) for s in range(-12, 13)}
        self.tokens = int(sum(len(s.ids) for s in self.sequences))

    def shifts(self, seq: Sequence_, limit: int) -> list[int]:
        """Transpositions within ``limit`` semitones that keep the piece inside the allowed range."""
        return [s for s in range(-limit, limit + 1) if seq.low + s >= LOWEST and seq.high + s <= HIGHEST] or [0]

    def window(self, seq: Sequence_, start: int, length: int, shift: int) -> tuple[np.ndarray, ...]:
        """Header + ``length`` + 1 body tokens from ``start``; returns (ids, slots, positions)."""
        index = np.concatenate([np.arange(HEADER_LENGTH), np.arange(start, min(start + length + 1, len(seq.ids)))])
        return self.tables[shift][seq.ids[index]], seq.slots[index], seq.positions[index]

    def batch(self, rng: np.random.Generator, *, size: int, length: int, transpose: int) -> dict[str, torch.Tensor]:
        """Random windows starting at bar lines, randomly transposed; targets are the next tokens."""
        weights = np.array([len(s.ids) for s in self.sequences], dtype=float)
        picks = rng.choice(len(self.sequences), size=size, p=weights / weights.sum())
        windows = []
        for i in picks:
            seq = self.sequences[i]
            start = int(rng.choice(seq.bars)) if len(seq.bars) else HEADER_LENGTH
            shift = int(rng.choice(self.shifts(seq, transpose)))
            windows.append(self.window(seq, start, length, shift))
        return collate(windows, pad_id=self.vocab.pad_id)

    def evaluation_windows(self, length: int) -> list[dict[str, torch.Tensor]]:
        """Every sequence cut into consecutive windows (header prepended); each body token is a target once."""
        out = []
        for seq in self.sequences:
            start = HEADER_LENGTH
            first = True
            while start < len(seq.ids) - 1:
                ids, slots, positions = self.window(seq, start, length, 0)
                batch = collate([(ids, slots, positions)], pad_id=self.vocab.pad_id)
                if not first:  # header tokens are context only; count each body target once
                    batch["targets"][:, : HEADER_LENGTH] = IGNORE
                else:
                    batch["targets"][:, : HEADER_LENGTH - 1] = IGNORE
                out.append(batch)
                start += length
                first = False
        return out


def collate(windows: list[tuple[np.ndarray, ...]], *, pad_id: int) -> dict[str, torch.Tensor]:
    """Pad windows into (B, T) inputs and next-token targets (padding ignored by the loss)."""
    width = max(len(w[0]) for w in windows) - 1
    ids = np.full((len(windows), width), pad_id, dtype=np.int64)
    slots = np.zeros_like(ids)
    positions = np.zeros_like(ids)
    targets = np.full_like(ids, IGNORE)
    for row, (w_ids, w_slots, w_pos) in enumerate(windows):
        n = len(w_ids) - 1
        ids[row, :n], slots[row, :n], positions[row, :n] = w_ids[:-1], w_slots[:-1], w_pos[:-1]
        targets[row, :n] = w_ids[1:]
    return {k: torch.from_numpy(v) for k, v in
            {"ids": ids, "slots": slots, "positions": positions, "targets": targets}.items()}
