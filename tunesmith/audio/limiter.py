"""A transparent look-ahead peak limiter that brings a mix to a loudness under a true-peak ceiling.

    limited = limit(total, sr=44100, target_lufs=-14.0)    # one gain curve, (n,) float32, static gain included
    mixed = total * limited.envelope                       # the same curve on every stem keeps their sum the mix

The gain curve is computed from the mix alone, in chunks of :data:`HOP` seconds (vectorised, no loop over
samples): each chunk's true peak (4x oversampled, as :func:`peak_db` measures it) under the static gain gives the
reduction the chunk needs to stay under the ceiling; that is held over the look-ahead, released with a one-pole
decay (:data:`RELEASE`), then averaged over the look-ahead (the attack: a ramp that is complete when the peak
arrives); between chunk edges the gain is interpolated. The static gain is raised until the loudness under that
curve (from the mix's K-weighted power) reaches the target, but only as far as the deepest reduction stays within
:data:`MAX_REDUCTION_DB`: a mix whose peaks would need more stays quieter, and the result says so in its notes.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr
from scipy.ndimage import maximum_filter1d, uniform_filter1d

from tunesmith.audio.dsp import (
    TRUE_PEAK_OVERSAMPLING,
    TRUE_PEAK_QUALITY,
    check_loudness_channels,
    check_rate,
    integrated_loudness,
    k_weighted_sums,
    validate_audio,
)
from tunesmith.errors import ParameterError

CEILING_DB = -1.0  # dBTP
LOOKAHEAD = 0.005  # seconds: the attack ramp, complete when the peak arrives
RELEASE = 0.1  # seconds: the one-pole time constant of the gain's recovery
MAX_REDUCTION_DB = 8.0  # the deepest gain reduction allowed
HOP = 0.0005  # seconds: the gain curve's resolution (interpolated in between)
MARGIN_DB = 0.1  # under the ceiling: the 4x oversampled estimate and the interpolated gain are not exact
TOLERANCE_LU = 0.05  # the static gain is refined until the loudness is this close to the target
SHORT_LU = 0.1  # a mix further below the target than this says so in its notes
MAX_ROUNDS = 8
STREAM_CHUNKS = 2048  # chunks of the gain curve oversampled at a time for the true peaks (~1 s at 44.1 kHz)


@dataclass(frozen=True)
class Limited:
    """A mix's gain curve and what it achieves (loudness and true peak estimated from the mix under the curve)."""

    envelope: np.ndarray  # (n,) float32: the linear gain for each sample, the static gain included
    gain_db: float  # the static gain
    max_reduction_db: float  # the limiter's deepest reduction below the static gain
    loudness_lufs: float
    true_peak_db: float
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The figures for a job's result (rounded), and any notes."""
        out: dict[str, Any] = {"loudness_lufs": round(self.loudness_lufs, 2),
                               "true_peak_dbtp": round(self.true_peak_db, 2), "gain_db": round(self.gain_db, 2),
                               "limiter_max_reduction_db": round(self.max_reduction_db, 2)}
        return out | ({"notes": list(self.notes)} if self.notes else {})


def limit(y: np.ndarray, *, sr: float, target_lufs: float, ceiling_db: float = CEILING_DB,
          lookahead: float = LOOKAHEAD, release: float = RELEASE,
          max_reduction_db: float = MAX_REDUCTION_DB) -> Limited:
    """The gain curve that brings ``y`` ((n,) or (channels, n); every channel gets the same gain) to
    ``target_lufs`` with its true peak at most ``ceiling_db``, limiting its peaks by at most ``max_reduction_db``
    (0: a static gain only). Silence gets unit gain."""
    y = validate_audio(y)
    sr = check_rate(sr)
    for name, value in (("target_lufs", target_lufs), ("ceiling_db", ceiling_db), ("lookahead", lookahead),
                        ("release", release), ("max_reduction_db", max_reduction_db)):
        if not math.isfinite(value) or (name not in ("target_lufs", "ceiling_db") and value < 0):
            raise ParameterError(f"{name} must be a finite number{'' if name.endswith(('lufs', 'db')) else ' >= 0'},"
                                 f" got {value!r}", field=name)
    if ceiling_db > 0:
        raise ParameterError(f"ceiling_db must be <= 0 dBTP, got {ceiling_db}", field="ceiling_db")
    n = y.shape[-1]
    if n < 2 or not np.any(y):
        return Limited(np.ones(n, np.float32), 0.0, 0.0, -math.inf, -math.inf, ["silence: left as it is"])
    hop = max(1, round(HOP * sr))
    channels = np.atleast_2d(check_loudness_channels(y))  # (at most 5: checked before any thread starts)
    # each channel oversampled in a thread beside the K-weighting filters (all run without the GIL)
    with ThreadPoolExecutor(len(channels)) as pool:
        oversampled = [pool.submit(_chunk_peaks_db, channel, hop) for channel in channels]
        chunk_power = k_weighted_sums(y, sr=sr, hop=hop)
        peaks = np.maximum.reduce([future.result() for future in oversampled])
    start = integrated_loudness(chunk_power, sr=sr, hop=hop, length=n)
    if math.isinf(start):  # under the absolute gate
        return Limited(np.ones(n, np.float32), 0.0, 0.0, start, float(peaks.max()), ["too quiet to measure: left as"
                                                                                     " it is"])
    threshold = ceiling_db - MARGIN_DB
    cap = threshold + max_reduction_db - float(peaks.max())  # the most static gain the reduction allows
    width = 2 * max(1, round(lookahead * sr / hop / 2)) + 1 if lookahead > 0 else 1
    decay = hop / (release * sr) if release > 0 else math.inf
    wanted = target_lufs - start
    for _ in range(MAX_ROUNDS):
        gain = min(wanted, cap)
        reduction = _reduction(np.maximum(peaks + gain - threshold, 0.0), width, decay)
        edges = _edge_gains(reduction)
        under = chunk_power * ((edges[:-1] ** 2 + edges[1:] ** 2) * (0.5 * 10.0 ** (gain / 10.0)))
        level = integrated_loudness(under, sr=sr, hop=hop, length=n)
        if abs(target_lufs - level) <= TOLERANCE_LU or (gain >= cap and level < target_lufs):
            break
        wanted = gain + target_lufs - level
    notes = []
    if level < target_lufs - SHORT_LU:
        notes.append(f"loudness {level:.1f} LUFS, not the {target_lufs:g} asked: reaching it would take more than "
                     f"{max_reduction_db:g} dB of peak limiting")
    envelope = _expand(edges * 10.0 ** (gain / 20.0), hop, n)
    return Limited(envelope, gain, float(reduction.max()), level, float(np.max(peaks + gain - reduction)), notes)


def _chunk_peaks_db(y: np.ndarray, hop: int) -> np.ndarray:
    """The peak (dBFS, all channels) of each chunk of ``hop`` samples: of its samples and of the 4x oversampled
    signal between them (as :func:`peak_db` measures a true peak). The oversampled signal is made and read in
    blocks by a streaming resampler (the same samples as one call; a long mix's 4x copy is never held whole)."""
    frames = np.ascontiguousarray(np.atleast_2d(y).T)  # (n, channels)
    peaks = _chunk_peak(frames, hop)
    size = hop * TRUE_PEAK_OVERSAMPLING  # a chunk of the oversampled signal
    stream = soxr.ResampleStream(1, TRUE_PEAK_OVERSAMPLING, frames.shape[1], dtype="float32",
                                 quality=TRUE_PEAK_QUALITY)
    between = np.zeros(len(peaks))
    done, pending = 0, frames[:0]
    block = hop * STREAM_CHUNKS
    for start in range(0, len(frames), block):
        out = stream.resample_chunk(frames[start:start + block], last=start + block >= len(frames))
        out = np.concatenate([pending, out]) if len(pending) else out
        whole = min(len(out) // size, len(peaks) - done) * size
        if whole:
            between[done:done + whole // size] = _chunk_peak(out[:whole], size)
            done += whole // size
        pending = out[whole:]
    if len(pending) and done < len(peaks):  # the last, short chunk
        between[done] = float(np.abs(pending).max())
    peaks = np.maximum(peaks, between)
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(peaks)


def _chunk_peak(frames: np.ndarray, size: int) -> np.ndarray:
    """max |x| over each run of ``size`` frames (the last run may be short)."""
    whole = len(frames) // size * size
    flat = frames[:whole].reshape(-1, size * frames.shape[1])
    peak = np.maximum(flat.max(axis=1), -flat.min(axis=1)) if whole else np.zeros(0, frames.dtype)
    if whole < len(frames):
        peak = np.append(peak, np.abs(frames[whole:]).max())
    return peak.astype(np.float64)


def _reduction(needed: np.ndarray, width: int, decay: float) -> np.ndarray:
    """The smooth reduction curve (dB per chunk) that is at least ``needed`` everywhere: held over ``width``
    chunks either side, released by ``decay`` nepers a chunk, averaged over ``width`` chunks (the attack)."""
    if not needed.any():
        return needed
    held = maximum_filter1d(needed, size=width, mode="nearest")
    if math.isfinite(decay):  # max over earlier chunks of held * exp(-decay * distance): a running max of logs
        ramp = np.arange(len(held)) * decay
        with np.errstate(divide="ignore"):
            held = np.exp(np.maximum.accumulate(np.log(held) + ramp) - ramp)
    smooth = uniform_filter1d(held, size=width, mode="nearest")
    return np.maximum(smooth, needed)  # the mean is >= needed already; this absorbs its rounding


def _edge_gains(reduction: np.ndarray) -> np.ndarray:
    """Linear gains at the chunks' edges: each the lower of its two chunks', so the gain interpolated across a chunk
    never exceeds that chunk's."""
    gain = 10.0 ** (-reduction / 20.0)
    return np.minimum(np.concatenate([gain[:1], gain]), np.concatenate([gain, gain[-1:]]))


def _expand(edges: np.ndarray, hop: int, n: int) -> np.ndarray:
    """The per-sample gain: linear from each chunk's first edge to its last."""
    steps = np.arange(hop, dtype=np.float32) / np.float32(hop)
    start = edges[:-1].astype(np.float32)
    curve = start[:, None] + (edges[1:].astype(np.float32) - start)[:, None] * steps[None, :]
    return curve.reshape(-1)[:n]
