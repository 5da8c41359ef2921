"""A mix of stems: each stem's level and place in the stereo field, summed and loudness-normalized.

    stems = {"drums": y1, "bass": y2, ...}          # stereo (2, n) float32 stems of one length
    mixed, applied, report = mix(stems, {"drums": MixSetting(0.0, 0.0), "bass": MixSetting(-2.0, 0.0)}, sr=44100)

A stem's pan is a constant-power balance (-1 left .. +1 right) of its own stereo image, so the reverb and the
synthesizer's width stay in it. The sum is brought to :data:`TARGET_LUFS` (streaming loudness) under a -1 dBTP
ceiling by a look-ahead peak limiter (`tunesmith.audio.limiter`: at most 8 dB of gain reduction, else the mix stays
quieter and the report says so); its one gain curve is applied to every placed stem too, so the stems still add up
to the mix."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from tunesmith.audio.dsp import ensure_channels, loudness_gain_db
from tunesmith.audio.limiter import MAX_REDUCTION_DB, Limited, limit
from tunesmith.errors import ParameterError

TARGET_LUFS = -14.0


@dataclass(frozen=True)
class MixSetting:
    """A stem's level and its pan (-1 left .. +1 right). ``level_lufs``: first bring the stem to this loudness
    (so a role sits where it should whatever its instrument's patch level), then apply ``gain_db``."""

    gain_db: float = 0.0
    pan: float = 0.0
    level_lufs: float | None = None


def balance(y: np.ndarray, pan: float, gain: float = 1.0, *, out: np.ndarray | None = None) -> np.ndarray:
    """A stereo signal moved towards one side with constant power (``pan`` -1 .. 1; 0 leaves it) and scaled by
    ``gain``, as a new float32 array (or into ``out``, which may be ``y`` itself)."""
    if not -1.0 <= pan <= 1.0:
        raise ParameterError(f"pan must be -1..1, got {pan}", field="pan")
    angle = (pan + 1.0) * math.pi / 4.0  # 0 (left) .. pi/2 (right); pi/4 centre
    left, right = math.cos(angle) * math.sqrt(2.0), math.sin(angle) * math.sqrt(2.0)
    out = np.empty((2, y.shape[-1]), np.float32) if out is None else out
    np.multiply(y[0], np.float32(gain * min(left, 1.0)), out=out[0])
    np.multiply(y[1], np.float32(gain * min(right, 1.0)), out=out[1])
    return out


class Mixed(NamedTuple):
    """The stereo mix, each stem as it sits in it (they add up to the mix) and the limiter's report (None when the
    sum was left as summed)."""

    audio: np.ndarray
    stems: dict[str, np.ndarray]
    report: Limited | None


def place(y: np.ndarray, setting: MixSetting, *, sr: int, length: int | None = None,
          in_place: bool = False) -> np.ndarray:
    """A stem as it sits in the mix: stereo, ``length`` samples (padded with silence; default its own), brought to
    its setting's loudness, gained and panned. ``in_place``: a float32 stereo stem of that length is the caller's
    to give up, and is placed in its own array (no copy of a long song's stem)."""
    given = y
    y = ensure_channels(np.asarray(y, dtype=np.float32), 2)
    length = y.shape[-1] if length is None else length
    if y.shape[-1] < length:
        y = np.pad(y, ((0, 0), (0, length - y.shape[-1])))
    gain_db = setting.gain_db
    if setting.level_lufs is not None:
        gain_db += loudness_gain_db(y, sr=sr, target_lufs=setting.level_lufs, peak_ceiling_db=None)
    own = in_place and y is given  # not a converted, padded or viewed one
    return balance(y, setting.pan, 10.0 ** (gain_db / 20.0), out=y if own else None)


def mix(stems: Mapping[str, np.ndarray], settings: Mapping[str, MixSetting], *, sr: int,
        target_lufs: float | None = TARGET_LUFS, max_reduction_db: float = MAX_REDUCTION_DB,
        in_place: bool = False) -> Mixed:
    """Levels and pans applied (`place`), the sum brought to ``target_lufs`` under a -1 dBTP ceiling (None: left as
    summed) by the limiter's gain curve (``max_reduction_db`` 0: one static gain), the same curve applied to every
    placed stem so they add up to the mix. ``in_place``: the stems are the caller's to give up (`place`)."""
    if not stems:
        raise ParameterError("nothing to mix: no stems", field="stems")
    length = max(s.shape[-1] for s in stems.values())

    def placed_stem(name: str) -> np.ndarray:
        return place(stems[name], settings.get(name, MixSetting()), sr=sr, length=length, in_place=in_place)

    # the stems are measured side by side (the loudness filters run without the GIL)
    with ThreadPoolExecutor(max(1, min(len(stems), os.cpu_count() or 1, 4))) as pool:
        placed = dict(zip(stems, pool.map(placed_stem, stems), strict=True))
    return mix_placed(placed, sr=sr, target_lufs=target_lufs, max_reduction_db=max_reduction_db)


def mix_placed(placed: dict[str, np.ndarray], *, sr: int, target_lufs: float | None = TARGET_LUFS,
               max_reduction_db: float = MAX_REDUCTION_DB) -> Mixed:
    """Stems already placed (`place`, all stereo float32 of one length, given up by the caller) summed and limited
    as `mix` does; the limiter's curve scales them in place."""
    if not placed:
        raise ParameterError("nothing to mix: no stems", field="stems")
    lengths = {y.shape for y in placed.values()}
    if len(lengths) != 1 or next(iter(lengths))[0] != 2:
        raise ParameterError(f"placed stems must be stereo and of one length, got shapes {sorted(lengths)}",
                             field="stems")
    total = np.zeros(next(iter(lengths)), np.float32)
    for y in placed.values():
        total += y
    if target_lufs is None:
        return Mixed(total, dict(placed), None)
    limited = limit(total, sr=sr, target_lufs=target_lufs, max_reduction_db=max_reduction_db)
    gain = limited.envelope
    for y in (total, *placed.values()):  # arrays of this call's own: scaled in place
        y *= gain
    return Mixed(total, dict(placed), limited)
