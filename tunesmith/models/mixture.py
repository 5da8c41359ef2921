"""The mixture tagger: which instrument families (and instruments) sound in each moment of a recording.

A small fully convolutional network over the analyzer's log-mel front end (`tunesmith.models.analyzer.FrontEnd`):
four VGG-style blocks pool frequency away and time by ``time_pool`` (4: one output frame per 128 ms at the
default hop), a projection of each frame's remaining frequency bands, two dilated 1-D convolutions over time for
context (about two seconds either way), and per-frame multi-label heads (sigmoid logits). Recordings of any
length give one output frame per ``time_pool`` input frames.
"""

from __future__ import annotations

import torch
from torch import nn

from tunesmith.models.analyzer import _block


class MixtureCNN(nn.Module):
    """Log-mel (batch, n_mels, frames) -> {head: logits (batch, classes, frames // time_pool)}."""

    def __init__(self, *, n_mels: int = 128, channels: tuple[int, ...] = (16, 32, 64, 96),
                 time_pools: tuple[int, ...] = (2, 2, 1, 1), hidden: int = 192, dropout: float = 0.2,
                 heads: dict[str, int]) -> None:
        super().__init__()
        if len(time_pools) != len(channels):
            raise ValueError(f"time_pools {time_pools} needs one entry per block of channels {channels}")
        self.kwargs = {"n_mels": n_mels, "channels": list(channels), "time_pools": list(time_pools),
                       "hidden": hidden, "dropout": dropout, "heads": dict(heads)}
        blocks, c_in, freq = [], 1, n_mels
        for c_out, pool in zip(channels, time_pools, strict=True):
            blocks.append(_block(c_in, c_out, (2, pool)))
            c_in, freq = c_out, freq // 2
        self.trunk = nn.Sequential(*blocks)
        self.time_pool = 1
        for pool in time_pools:
            self.time_pool *= pool
        self.project = nn.Sequential(nn.Dropout(dropout), nn.Conv1d(c_in * freq, hidden, 1), nn.ReLU())
        self.context = nn.Sequential(
            nn.Conv1d(hidden, hidden, 3, padding=2, dilation=2), nn.BatchNorm1d(hidden), nn.ReLU(),
            nn.Conv1d(hidden, hidden, 3, padding=4, dilation=4), nn.BatchNorm1d(hidden), nn.ReLU(),
        )
        self.heads = nn.ModuleDict({name: nn.Sequential(nn.Dropout(dropout), nn.Conv1d(hidden, size, 1))
                                    for name, size in heads.items()})

    def frames(self, mel_frames: int) -> int:
        """Output frames for an input of ``mel_frames`` frames."""
        return mel_frames // self.time_pool

    def forward(self, mel: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.trunk(mel.unsqueeze(1))  # (batch, C, F', T')
        h = h.flatten(1, 2)  # (batch, C * F', T')
        h = self.project(h)
        h = h + self.context(h)
        return {name: head(h) for name, head in self.heads.items()}
