"""Spectral features: log-mel and constant-Q spectrograms in dB (librosa conventions).

`log_mel` computes the STFT itself (numpy framing + scipy's float32 FFT, chunked over frames)
rather than calling librosa.stft: same numbers as librosa (Hann window, centred frames with zero
padding, Slaney mel filters), about twice as fast and with bounded memory on long inputs.
"""

from __future__ import annotations

import numbers
from functools import lru_cache

import librosa
import numpy as np
import scipy.fft

from tunesmith.audio.dsp import check_int, check_rate
from tunesmith.errors import ParameterError

AMIN = 1e-10  # power floor before the log (-100 dB)
_FRAME_CHUNK = 2048  # STFT frames per FFT call: bounds the temporary (chunk, n_fft) buffer


@lru_cache(maxsize=32)
def mel_filters(sr: float, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    """Slaney-normalised mel filterbank (n_mels, 1 + n_fft // 2), float32, cached and read-only."""
    fb = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax).astype(np.float32)
    fb.setflags(write=False)
    return fb


@lru_cache(maxsize=8)
def _hann(n_fft: int) -> np.ndarray:
    win = librosa.filters.get_window("hann", n_fft, fftbins=True).astype(np.float32)
    win.setflags(write=False)
    return win


def _check_audio_nd(y: object) -> np.ndarray:
    arr = np.asarray(y)
    if not np.issubdtype(arr.dtype, np.floating) or arr.ndim < 1 or arr.shape[-1] == 0:
        raise ParameterError(
            f"y must be a non-empty float array (..., n), got {arr.dtype} {arr.shape}", field="y"
        )
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise ParameterError("y contains NaN or infinite samples", field="y")
    return arr


def _check_mel_params(
    sr: float, n_fft: int, hop_length: int, n_mels: int, fmin: float, fmax: float | None
) -> None:
    check_rate(sr)
    check_int(n_fft, "n_fft", minimum=16)
    check_int(hop_length, "hop_length")
    check_int(n_mels, "n_mels")
    top = sr / 2 if fmax is None else fmax
    numeric = isinstance(fmin, numbers.Real) and isinstance(top, numbers.Real)
    if not numeric or not 0 <= fmin < top <= sr / 2:
        raise ParameterError(f"need 0 <= fmin < fmax <= sr/2 = {sr / 2}, got fmin={fmin!r} fmax={fmax!r}")


def _check_top_db(top_db: object) -> None:
    if top_db is not None and (not isinstance(top_db, numbers.Real) or not top_db > 0):
        raise ParameterError(f"top_db must be a positive number or None, got {top_db!r}", field="top_db")


def _to_db(power: np.ndarray, top_db: float | None) -> np.ndarray:
    """10*log10(power), floored at top_db below each spectrogram's own maximum (last two axes)."""
    db = np.log10(np.maximum(power, AMIN, out=power), out=power)
    db *= 10.0
    if top_db is not None:
        floor = db.max(axis=(-2, -1), keepdims=True) - top_db
        np.maximum(db, floor, out=db)
    return db


def _mel_power(y: np.ndarray, fb: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """Mel power spectrogram (..., n_mels, frames) of y (..., n), centred zero-padded frames."""
    lead, n = y.shape[:-1], y.shape[-1]
    n_frames = 1 + n // hop_length
    rows = y.reshape(-1, n)
    out = np.empty((rows.shape[0], fb.shape[0], n_frames), dtype=np.float32)
    win = _hann(n_fft)
    for i, row in enumerate(rows):
        padded = np.pad(row, n_fft // 2)
        frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop_length]
        for j in range(0, n_frames, _FRAME_CHUNK):
            spec = scipy.fft.rfft(frames[j : j + _FRAME_CHUNK] * win, axis=-1)
            power = np.square(spec.real) + np.square(spec.imag)
            np.matmul(fb, power.T, out=out[i, :, j : j + _FRAME_CHUNK])
    return out.reshape(*lead, fb.shape[0], n_frames)


def log_mel(
    y: np.ndarray | None = None,
    *,
    sr: int,
    S: np.ndarray | None = None,
    n_fft: int = 1024,
    hop_length: int = 256,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    top_db: float | None = 80.0,
) -> np.ndarray:
    """Log-mel spectrogram in dB (ref 1.0), shape (..., n_mels, 1 + n // hop_length).

    Pass audio `y` (..., n) or a power spectrogram `S` (..., 1 + n_fft // 2, frames), as in
    librosa. top_db floors each spectrogram (each item of a batch separately) at top_db below
    its own maximum; None disables the floor.
    """
    _check_mel_params(sr, n_fft, hop_length, n_mels, fmin, fmax)
    _check_top_db(top_db)
    if (y is None) == (S is None):
        raise ParameterError("pass exactly one of y (audio) or S (power spectrogram)")
    fb = mel_filters(float(sr), n_fft, n_mels, float(fmin), None if fmax is None else float(fmax))
    if y is not None:
        return _to_db(_mel_power(_check_audio_nd(y), fb, n_fft, hop_length), top_db)
    spec = np.asarray(S)
    if spec.ndim < 2 or spec.shape[-2] != fb.shape[1] or not np.issubdtype(spec.dtype, np.floating):
        raise ParameterError(
            f"S must be a float power spectrogram (..., {fb.shape[1]}, frames) for n_fft={n_fft}, "
            f"got {spec.dtype} {spec.shape}",
            field="S",
        )
    return _to_db(np.matmul(fb, spec.astype(np.float32, copy=False)), top_db)


def cqt(
    y: np.ndarray,
    *,
    sr: int,
    hop_length: int = 512,
    fmin: float | None = None,
    n_bins: int = 84,
    bins_per_octave: int = 12,
    top_db: float | None = 80.0,
) -> np.ndarray:
    """Constant-Q magnitude in dB (ref 1.0), shape (..., n_bins, frames); fmin defaults to C1."""
    y = _check_audio_nd(y)
    check_rate(sr)
    _check_top_db(top_db)
    check_int(hop_length, "hop_length")
    check_int(n_bins, "n_bins")
    check_int(bins_per_octave, "bins_per_octave")
    fmin = float(librosa.note_to_hz("C1")) if fmin is None else fmin
    if not isinstance(fmin, numbers.Real) or not fmin > 0:
        raise ParameterError(f"fmin must be a positive frequency in Hz, got {fmin!r}", field="fmin")
    fmax = fmin * 2.0 ** (n_bins / bins_per_octave)
    if fmax >= sr / 2:
        raise ParameterError(
            f"the top CQT bin ({fmax:.0f} Hz from fmin={fmin:.2f}, n_bins={n_bins}) "
            f"must lie below sr/2 = {sr / 2}"
        )
    try:
        spec = librosa.cqt(
            y, sr=sr, hop_length=hop_length, fmin=fmin, n_bins=n_bins, bins_per_octave=bins_per_octave
        )
    except librosa.util.exceptions.ParameterError as exc:
        raise ParameterError(f"cqt: {exc}") from exc
    return _to_db(np.square(np.abs(spec), dtype=np.float32), top_db)
