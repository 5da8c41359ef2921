"""A mix of stems: each stem's level and place in the stereo field, summed and loudness-normalized.

    stems = {"drums": y1, "bass": y2, ...}          # stereo (2, n) float32 stems of one length
    mixed, applied = mix(stems, {"drums": MixSetting(0.0, 0.0), "bass": MixSetting(-2.0, 0.0)}, sr=44100)

A stem's pan is a constant-power balance (-1 left .. +1 right) of its own stereo image, so the reverb and the
synthesizer's width stay in it. The sum is normalized to :data:`TARGET_LUFS` (streaming loudness) under a -1 dBTP
ceiling."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from tunesmith.audio.dsp import ensure_channels, loudness_gain_db
from tunesmith.errors import ParameterError

TARGET_LUFS = -14.0


@dataclass(frozen=True)
class MixSetting:
    """A stem's level and its pan (-1 left .. +1 right). ``level_lufs``: first bring the stem to this loudness
    (so a role sits where it should whatever its instrument's patch level), then apply ``gain_db``."""

    gain_db: float = 0.0
    pan: float = 0.0
    level_lufs: float | None = None


def balance(y: np.ndarray, pan: float) -> np.ndarray:
    """A stereo signal moved towards one side with constant power (``pan`` -1 .. 1; 0 leaves it)."""
    if not -1.0 <= pan <= 1.0:
        raise ParameterError(f"pan must be -1..1, got {pan}", field="pan")
    angle = (pan + 1.0) * math.pi / 4.0  # 0 (left) .. pi/2 (right); pi/4 centre
    left, right = math.cos(angle) * math.sqrt(2.0), math.sin(angle) * math.sqrt(2.0)
    return np.stack([y[0] * np.float32(min(left, 1.0)), y[1] * np.float32(min(right, 1.0))]).astype(np.float32)


def mix(stems: Mapping[str, np.ndarray], settings: Mapping[str, MixSetting], *, sr: int,
        target_lufs: float | None = TARGET_LUFS) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(the stereo mix, each stem as it sits in the mix): levels and pans applied, the sum normalized to
    ``target_lufs`` (None: left as summed), the same gain applied to the placed stems so they add up to the mix."""
    if not stems:
        raise ParameterError("nothing to mix: no stems", field="stems")
    length = max(s.shape[-1] for s in stems.values())

    def place(name: str) -> np.ndarray:
        setting = settings.get(name, MixSetting())
        y = ensure_channels(np.asarray(stems[name], dtype=np.float32), 2)
        y = np.pad(y, ((0, 0), (0, length - y.shape[-1])))
        gain_db = setting.gain_db
        if setting.level_lufs is not None:
            gain_db += loudness_gain_db(y, sr=sr, target_lufs=setting.level_lufs, peak_ceiling_db=None)
        return balance(y * np.float32(10.0 ** (gain_db / 20.0)), setting.pan)

    # the stems are measured side by side (the loudness filters run without the GIL)
    with ThreadPoolExecutor(max(1, min(len(stems), os.cpu_count() or 1, 4))) as pool:
        placed = dict(zip(stems, pool.map(place, stems), strict=True))
    total = np.sum(list(placed.values()), axis=0).astype(np.float32)
    if target_lufs is None:
        return total, placed
    gain = np.float32(10.0 ** (loudness_gain_db(total, sr=sr, target_lufs=target_lufs) / 20.0))
    return (total * gain).astype(np.float32), {name: (y * gain).astype(np.float32) for name, y in placed.items()}
