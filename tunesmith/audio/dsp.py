"""Signal-level helpers: validation, resampling, channels, trimming, segmentation, loudness.

Audio arrays are float32, shape ``(n,)`` for mono or ``(channels, n)`` for multichannel.
"""

from __future__ import annotations

import math
import numbers
from functools import lru_cache
from typing import Literal, NamedTuple

import numpy as np
import pyloudnorm
import scipy.signal
import soxr

from tunesmith.errors import ParameterError

RESAMPLE_QUALITIES = ("QQ", "LQ", "MQ", "HQ", "VHQ")
PAD_MODES = ("zero", "drop", "reflect")
MAX_CHANNELS = 256
LOUDNESS_BLOCK = 0.400  # seconds: the ITU-R BS.1770 gating block
TRUE_PEAK_OVERSAMPLING = 4
# soxr's medium quality reads a tone's inter-sample peak within 0.03 dB of its high quality up to 19.5 kHz at
# 44.1 kHz (the limiter keeps 0.1 dB of margin), in a third of the time
TRUE_PEAK_QUALITY = "MQ"
LOUDNESS_CHANNEL_GAINS = (1.0, 1.0, 1.0, 1.41, 1.41)  # BS.1770 weights of L, R, C, Ls, Rs
ABSOLUTE_GATE_LUFS = -70.0
DENORMAL_GUARD = 1e-18
LOUDNESS_CHUNK = 1 << 16  # samples filtered at a time by `k_weighted_sums` (half a megabyte a stereo chunk)


class Segments(NamedTuple):
    """Fixed-length segments of a signal: ``frames[i]`` starts at sample ``starts[i]``."""

    frames: np.ndarray
    starts: np.ndarray


# --------------------------------------------------------------------------- validation


def validate_audio(y: object, *, name: str = "y") -> np.ndarray:
    """Return `y` as float32 of shape (n,) or (channels, n), or raise ParameterError.

    Rejects non-float dtypes, other ranks, more than MAX_CHANNELS channels (usually an
    (n, channels) array passed by mistake) and NaN/inf samples.
    """
    arr = np.asarray(y)
    if not np.issubdtype(arr.dtype, np.floating):
        raise ParameterError(f"{name} must be a floating-point array, got dtype {arr.dtype}", field=name)
    if arr.ndim not in (1, 2):
        raise ParameterError(f"{name} must have shape (n,) or (channels, n), got {arr.shape}", field=name)
    if arr.ndim == 2 and not 1 <= arr.shape[0] <= MAX_CHANNELS:
        raise ParameterError(
            f"{name} has shape {arr.shape}: expected (channels, n) with 1..{MAX_CHANNELS} channels "
            "(did you pass (n, channels)? transpose it)",
            field=name,
        )
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise ParameterError(f"{name} contains NaN or infinite samples", field=name)
    return arr


def check_rate(value: object, name: str = "sr") -> float:
    """Return a sample rate as a positive finite number, or raise ParameterError."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value <= 0:
        raise ParameterError(f"{name} must be a positive number of Hz, got {value!r}", field=name)
    return value


def check_int(value: object, name: str, *, minimum: int = 1) -> int:
    """Return `value` as an int >= minimum, or raise ParameterError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ParameterError(f"{name} must be an integer >= {minimum}, got {value!r}", field=name)
    return int(value)


def check_seconds(value: object, name: str, *, allow_zero: bool = False) -> float:
    """Return a duration in seconds (finite, > 0, or >= 0 with allow_zero), or raise ParameterError."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ParameterError(f"{name} must be finite and {bound} (seconds), got {value!r}", field=name)
    return float(value)


# --------------------------------------------------------------------------- resampling and channels


def resample(y: np.ndarray, *, orig_sr: float, target_sr: float, quality: str = "HQ") -> np.ndarray:
    """Resample `y` (mono or (channels, n)) from orig_sr to target_sr with soxr."""
    y = validate_audio(y)
    orig_sr = check_rate(orig_sr, "orig_sr")
    target_sr = check_rate(target_sr, "target_sr")
    if quality not in RESAMPLE_QUALITIES:
        raise ParameterError(f"quality must be one of {RESAMPLE_QUALITIES}, got {quality!r}", field="quality")
    if orig_sr == target_sr or y.shape[-1] == 0:
        return y.copy()
    if y.ndim == 1:
        return soxr.resample(y, orig_sr, target_sr, quality=quality)
    out = soxr.resample(np.ascontiguousarray(y.T), orig_sr, target_sr, quality=quality)
    return np.ascontiguousarray(out.T)


def to_mono(y: np.ndarray) -> np.ndarray:
    """Average the channels of `y`; a mono (n,) array is returned as is."""
    y = validate_audio(y)
    if y.ndim == 1:
        return y
    return y.mean(axis=0, dtype=np.float32)


def ensure_channels(y: np.ndarray, channels: int) -> np.ndarray:
    """Return `y` with `channels` channels: (n,) for 1, else (channels, n).

    Mono is duplicated up to any count and any count mixes down to mono; other changes
    (say 6 -> 2) need a channel layout and raise ParameterError.
    """
    y = validate_audio(y)
    channels = check_int(channels, "channels")
    if channels == 1:
        return to_mono(y)
    have = 1 if y.ndim == 1 or y.shape[0] == 1 else y.shape[0]
    if have == channels:
        return y
    if have == 1:
        return np.ascontiguousarray(np.broadcast_to(y.reshape(1, -1), (channels, y.shape[-1])))
    raise ParameterError(
        f"cannot map {have} channels to channels={channels}; mix down with to_mono first", field="channels"
    )


# --------------------------------------------------------------------------- trimming and segmentation


def _frame_rms_db(mono: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """RMS in dBFS of frames starting every hop_length samples (the last ones zero-padded)."""
    n = mono.shape[0]
    n_frames = max(1, math.ceil(n / hop_length))
    energy = np.concatenate(([0.0], np.cumsum(mono.astype(np.float64) ** 2)))
    starts = np.arange(n_frames) * hop_length
    ends = np.minimum(starts + frame_length, n)
    mean_sq = (energy[ends] - energy[starts]) / frame_length
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(mean_sq)


def trim_silence(
    y: np.ndarray,
    *,
    sr: int,
    threshold_db: float = -60.0,
    frame_length: int = 2048,
    hop_length: int = 512,
) -> tuple[np.ndarray, tuple[int, int]]:
    """Cut leading and trailing frames whose RMS is below threshold_db (dBFS).

    Channels are judged by their loudest one. Returns the kept audio and its sample range
    ``(start, stop)``; the kept range is accurate to within one frame. All-silent input gives
    an empty array and ``(0, 0)``.
    """
    y = validate_audio(y)
    check_rate(sr)
    frame_length = check_int(frame_length, "frame_length")
    hop_length = check_int(hop_length, "hop_length")
    if not isinstance(threshold_db, numbers.Real) or not math.isfinite(threshold_db):
        raise ParameterError(
            f"threshold_db must be a finite number, got {threshold_db!r}", field="threshold_db"
        )
    n = y.shape[-1]
    if n == 0:
        return y.copy(), (0, 0)
    rows = y.reshape(-1, n)
    db = np.max([_frame_rms_db(row, frame_length, hop_length) for row in rows], axis=0)
    active = np.flatnonzero(db > threshold_db)
    if active.size == 0:
        return y[..., :0].copy(), (0, 0)
    start = int(active[0]) * hop_length
    stop = min(n, int(active[-1]) * hop_length + frame_length)
    return y[..., start:stop].copy(), (start, stop)


def _segment_count(n: int, size: int, step: int, pad: str) -> int:
    if pad == "drop":
        return 0 if n < size else (n - size) // step + 1
    if n == 0:
        return 0
    if n <= size:
        return 1
    # enough segments to reach the last sample, but none that would start past the end
    return min(math.ceil((n - size) / step) + 1, math.ceil(n / step))


def segment(
    y: np.ndarray,
    *,
    sr: int,
    length: float,
    hop: float | None = None,
    pad: Literal["zero", "drop", "reflect"] = "zero",
) -> Segments:
    """Cut `y` into segments of `length` seconds every `hop` seconds (default: length).

    Returns ``Segments(frames, starts)``: frames of shape (n_segments, [channels,] length_samples)
    and the start sample of each. Padding policy for the tail:

    - ``"zero"``: the last partial segment is zero-padded, so the segments cover every sample
      (when hop <= length); a signal shorter than one segment gives one padded segment.
    - ``"drop"``: a final partial segment is dropped; a short signal gives no segments.
    - ``"reflect"``: like "zero" but the padding mirrors the signal's end (zeros for 1 sample).

    An empty signal gives no segments under every policy.
    """
    y = validate_audio(y)
    sr = check_rate(sr)
    size = round(check_seconds(length, "length") * sr)
    step = size if hop is None else round(check_seconds(hop, "hop") * sr)
    if size < 1 or step < 1:
        raise ParameterError(f"length={length} s / hop={hop} s is shorter than one sample at sr={sr}")
    if pad not in PAD_MODES:
        raise ParameterError(f"pad must be one of {PAD_MODES}, got {pad!r}", field="pad")
    n = y.shape[-1]
    count = _segment_count(n, size, step, pad)
    if count == 0:
        return Segments(np.zeros((0, *y.shape[:-1], size), np.float32), np.zeros(0, np.int64))
    total = (count - 1) * step + size
    if total > n:
        widths = [(0, 0)] * (y.ndim - 1) + [(0, total - n)]
        mode = "reflect" if pad == "reflect" and n > 1 else "constant"
        y = np.pad(y, widths, mode=mode)
    windows = np.lib.stride_tricks.sliding_window_view(y[..., :total], size, axis=-1)[..., ::step, :]
    frames = np.ascontiguousarray(np.moveaxis(windows, -2, 0))
    return Segments(frames, np.arange(count, dtype=np.int64) * step)


# --------------------------------------------------------------------------- loudness and peaks


@lru_cache(maxsize=16)
def _k_weighting(sr: float) -> np.ndarray:
    """The BS.1770 K-weighting at ``sr`` (pyloudnorm's high shelf, then its high pass) as second-order sections."""
    return np.array([np.concatenate([stage.b, stage.a]) for stage in pyloudnorm.Meter(sr)._filters.values()])


def check_loudness_channels(y: np.ndarray) -> np.ndarray:
    """``y`` if loudness can measure it (at most 5 channels, BS.1770's L, R, C, Ls, Rs), else a ParameterError."""
    if y.ndim == 2 and y.shape[0] > 5:
        raise ParameterError(
            f"loudness supports at most 5 channels (L, R, C, Ls, Rs), got {y.shape[0]}; mix down first"
        )
    return y


def k_weighted_power(y: np.ndarray, *, sr: float) -> np.ndarray:
    """The K-weighted power of each sample, the channels summed with their BS.1770 weights (float32, (n,)): what
    :func:`integrated_loudness` averages. At most 5 channels (L, R, C, Ls, Rs)."""
    y = np.atleast_2d(check_loudness_channels(validate_audio(y)))
    power, _ = _k_weighted(y, _k_weighting(check_rate(sr)).astype(np.float32))
    return power


def _k_weighted(y: np.ndarray, sos: np.ndarray, state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(the K-weighted power of each sample of (channels, n) ``y``, the filters' state after it); ``state``: the
    filters' state before it (None: at rest)."""
    # a DC offset far below hearing that the high pass removes: its decaying tails in silence would otherwise fall
    # into denormal numbers, which make the filter ten times slower
    # filtered in float32 (twice as fast as float64; within 1e-4 LU of pyloudnorm, `tests/test_audio_dsp.py`), summed in
    # float64 by `integrated_loudness`
    data = np.add(y, np.float32(DENORMAL_GUARD), dtype=np.float32)  # one new array
    if state is None:
        state = np.zeros((len(sos), len(y), 2), np.float32)
    weighted, state = scipy.signal.sosfilt(sos, data, axis=-1, zi=state)
    np.square(weighted, out=weighted)
    return np.asarray(LOUDNESS_CHANNEL_GAINS[: len(y)], dtype=np.float32) @ weighted, state


def integrated_loudness(power: np.ndarray, *, sr: float, hop: int = 1, length: int | None = None) -> float:
    """BS.1770 gated loudness (LUFS) of a K-weighted power curve (:func:`k_weighted_power`); -inf when no block
    passes the gates. ``hop`` > 1: each value is the summed power of ``hop`` samples (the blocks' edges rounded to
    them) of a signal ``length`` samples long (default ``hop`` times the values). Blocks of 400 ms every 100 ms as
    pyloudnorm places them; a signal shorter than a block is one block spanning it."""
    n = len(power) * hop if length is None else length
    if n < 2:
        return float("-inf")
    block = LOUDNESS_BLOCK if n >= LOUDNESS_BLOCK * sr else (n - 0.5) / sr
    count = int(np.round((n / sr - block) / (block * 0.25))) + 1
    starts = np.arange(count) * 0.25
    lower = (block * starts * sr).astype(np.int64)
    upper = np.minimum((block * (starts + 1.0) * sr).astype(np.int64), n)
    if hop > 1:  # a block that ends with the signal takes its last, short hop whole
        lower = np.rint(lower / hop).astype(np.int64)
        upper = np.where(upper >= n, len(power), np.rint(upper / hop)).astype(np.int64)
    sums = np.zeros(len(power) + 1)
    np.cumsum(power, dtype=np.float64, out=sums[1:])
    mean_square = np.maximum(sums[upper] - sums[lower], 0.0) / (block * sr)
    with np.errstate(divide="ignore"):
        level = -0.691 + 10.0 * np.log10(mean_square)
    above = mean_square[level >= ABSOLUTE_GATE_LUFS]
    if not above.size:
        return float("-inf")
    relative = -0.691 + 10.0 * math.log10(above.mean()) - 10.0
    kept = mean_square[(level > relative) & (level > ABSOLUTE_GATE_LUFS)]
    return float(-0.691 + 10.0 * math.log10(kept.mean())) if kept.size else float("-inf")


def k_weighted_sums(y: np.ndarray, *, sr: float, hop: int) -> np.ndarray:
    """The K-weighted power (:func:`k_weighted_power`) summed over each run of ``hop`` samples (the last may be
    short), filtered a chunk at a time (:data:`LOUDNESS_CHUNK`): no long temporary arrays, so a long signal
    stays in the cache."""
    y = np.atleast_2d(check_loudness_channels(validate_audio(y)))
    return _k_weighted_sums(y, sr=check_rate(sr), hop=check_int(hop, "hop"))


def _k_weighted_sums(y: np.ndarray, *, sr: float, hop: int) -> np.ndarray:
    sos = _k_weighting(sr).astype(np.float32)
    n = y.shape[-1]
    sums = np.zeros(-(-n // hop))
    state = None
    chunk = hop * max(1, LOUDNESS_CHUNK // hop)
    for start in range(0, n, chunk):
        power, state = _k_weighted(y[:, start:start + chunk], sos, state)
        whole = len(power) // hop * hop
        first = start // hop
        sums[first:first + whole // hop] = power[:whole].reshape(-1, hop).sum(axis=1, dtype=np.float64)
        if whole < len(power):
            sums[first + whole // hop] = power[whole:].sum(dtype=np.float64)
    return sums


def loudness(y: np.ndarray, *, sr: int) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770: pyloudnorm's K-weighting and gating, vectorised); -inf for
    silence.

    Multichannel input follows the BS.1770 order L, R, C, Ls, Rs (at most 5 channels).
    Clips shorter than the 400 ms gating block are measured as one block spanning the whole
    clip: the K-weighted mean square with only the absolute -70 LUFS gate applied. A long signal at a rate whose
    tenth of a second is whole samples (where the gating blocks' edges fall) is filtered and summed in chunks
    (:func:`k_weighted_sums`: the same figure, twice as fast).
    """
    y = check_loudness_channels(validate_audio(y))
    sr = check_rate(sr)
    n = y.shape[-1]
    if n < 2 or not np.any(y):
        return float("-inf")
    hop = round(sr * LOUDNESS_BLOCK / 4)
    if hop == sr * LOUDNESS_BLOCK / 4 and n >= LOUDNESS_CHUNK:
        return integrated_loudness(_k_weighted_sums(np.atleast_2d(y), sr=sr, hop=hop), sr=sr, hop=hop, length=n)
    return integrated_loudness(k_weighted_power(y, sr=sr), sr=sr)


def peak_db(y: np.ndarray, *, true_peak: bool = False) -> float:
    """Peak level in dBFS; with true_peak, of the 4x oversampled signal (BS.1770 style).

    The true peak is never below the sample peak; -inf for silence or empty input.
    """
    y = validate_audio(y)
    if y.shape[-1] == 0:
        return float("-inf")
    peak = float(np.max(np.abs(y)))
    if true_peak and peak > 0:
        # soxr's band-limited 4x interpolation: the inter-sample peaks a DAC would produce
        over = soxr.resample(y if y.ndim == 1 else np.ascontiguousarray(y.T), 1, TRUE_PEAK_OVERSAMPLING,
                             quality=TRUE_PEAK_QUALITY)
        peak = max(peak, float(np.max(np.abs(over))))
    return 20.0 * math.log10(peak) if peak > 0 else float("-inf")


def loudness_gain_db(
    y: np.ndarray,
    *,
    sr: int,
    target_lufs: float = -16.0,
    peak_ceiling_db: float | None = -1.0,
    true_peak: bool = True,
) -> float:
    """The one gain (dB) that makes `y` measure target_lufs, limited by a peak ceiling.

    If the gained (true, 4x oversampled, when true_peak) peak would exceed peak_ceiling_db, the
    gain is reduced so the peak sits at the ceiling, and the loudness then lands *below* the
    target. peak_ceiling_db=None disables the ceiling. Silence gets 0 dB.
    """
    y = validate_audio(y)
    for name, value in (("target_lufs", target_lufs), ("peak_ceiling_db", peak_ceiling_db)):
        if value is not None and (not isinstance(value, numbers.Real) or not math.isfinite(value)):
            raise ParameterError(f"{name} must be a finite number of dB, got {value!r}", field=name)
    if peak_ceiling_db is not None and peak_ceiling_db > 0:
        raise ParameterError(f"peak_ceiling_db must be <= 0 dBFS, got {peak_ceiling_db}")
    current = loudness(y, sr=sr)
    if math.isinf(current):
        return 0.0
    gain_db = target_lufs - current
    if peak_ceiling_db is not None:
        gain_db = min(gain_db, peak_ceiling_db - peak_db(y, true_peak=true_peak))
    return gain_db


def normalize_loudness(
    y: np.ndarray,
    *,
    sr: int,
    target_lufs: float = -16.0,
    peak_ceiling_db: float | None = -1.0,
    true_peak: bool = True,
) -> np.ndarray:
    """`y` with the gain of :func:`loudness_gain_db` applied (silence is returned unchanged)."""
    gain_db = loudness_gain_db(y, sr=sr, target_lufs=target_lufs, peak_ceiling_db=peak_ceiling_db,
                               true_peak=true_peak)
    y = validate_audio(y)
    return (y * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32, copy=False)
