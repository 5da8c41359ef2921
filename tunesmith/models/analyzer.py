"""The analyzer CNN: log-mel front end, a small VGG-style trunk and multi-task heads.

The trunk keeps frequency resolution longer than time resolution (pitch lives on the frequency axis), then
pools time globally (mean and max), so clips of any length give one embedding. Heads are named: a model
trained on the note corpus has ``family``, ``instrument``, ``pitch`` and ``drum`` heads; one trained on
MagnaTagATune has a ``tags`` head (multi-label). The penultimate layer is the embedding (``embed_dim``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from tunesmith.audio.dsp import resample
from tunesmith.audio.features import log_mel


@dataclass(frozen=True)
class FrontEnd:
    """How audio becomes the CNN's input: mono at ``sr``, log-mel in dB, scaled to roughly unit range."""

    sr: int = 16000
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    fmin: float = 27.5
    fmax: float = 8000.0
    top_db: float = 80.0

    def features(self, y: np.ndarray, sr: int) -> np.ndarray:
        """(n,) or (batch, n) audio at ``sr`` -> (n_mels, frames) or (batch, n_mels, frames) float32.

        Each clip is referenced to its own peak (0 dB) and floored at -top_db, then mapped to [-1, 1]: the
        analyzer hears timbre and pitch independently of the recording level."""
        y = np.asarray(y, dtype=np.float32)
        if sr != self.sr:
            y = resample(y, orig_sr=sr, target_sr=self.sr)
        mel = log_mel(y, sr=self.sr, n_fft=self.n_fft, hop_length=self.hop_length, n_mels=self.n_mels,
                      fmin=self.fmin, fmax=self.fmax, top_db=None)
        peak = mel.max(axis=(-2, -1), keepdims=True)
        mel = np.maximum(mel - peak, -self.top_db)
        return (mel / (self.top_db / 2) + 1.0).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _block(c_in: int, c_out: int, pool: tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
        nn.MaxPool2d(pool),
    )


class AnalyzerCNN(nn.Module):
    """Log-mel (batch, n_mels, frames) -> embedding (batch, embed_dim) and one logit tensor per head."""

    def __init__(self, *, n_mels: int = 128, channels: tuple[int, ...] = (16, 32, 64, 128), embed_dim: int = 256,
                 dropout: float = 0.3, freq_pools: tuple[int, ...] | None = None, heads: dict[str, int]) -> None:
        super().__init__()
        # frequency pooling per block (time is always halved); keeping the first blocks at full frequency
        # resolution keeps semitone steps of the upper harmonics apart (about half a semitone per mel bin)
        freq_pools = tuple(freq_pools) if freq_pools is not None else (2,) * len(channels)
        if len(freq_pools) != len(channels):
            raise ValueError(f"freq_pools {freq_pools} needs one entry per block of channels {channels}")
        self.kwargs = {"n_mels": n_mels, "channels": list(channels), "embed_dim": embed_dim, "dropout": dropout,
                       "freq_pools": list(freq_pools), "heads": dict(heads)}
        blocks, c_in, freq = [], 1, n_mels
        for c_out, pool in zip(channels, freq_pools, strict=True):
            blocks.append(_block(c_in, c_out, (pool, 2)))
            c_in, freq = c_out, freq // pool
        self.trunk = nn.Sequential(*blocks)
        # (batch, C, F, T) -> mean and max over time -> (batch, 2 * C * F)
        self.project = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * c_in * freq, embed_dim), nn.ReLU())
        self.heads = nn.ModuleDict({name: nn.Sequential(nn.Dropout(dropout), nn.Linear(embed_dim, size))
                                    for name, size in heads.items()})

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        """(batch, n_mels, frames) -> (batch, embed_dim), the penultimate layer."""
        h = self.trunk(mel.unsqueeze(1))  # (batch, C, F', T')
        pooled = torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=1)  # (batch, 2C, F')
        return self.project(pooled.flatten(1))

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        embedding = self.embed(mel)
        return embedding, {name: head(embedding) for name, head in self.heads.items()}
